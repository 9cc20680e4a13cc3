package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kanon-dev/kanon/internal/kafkaopt"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaDeliveryKeyHeader is the record header that holds the alert's
// delivery key (Alert.DeliveryKey); the record key is the alert id.
const KafkaDeliveryKeyHeader = "kanon-delivery-key"

// kafkaConfig configures the Kafka transport.
type kafkaConfig struct {
	brokers            []string
	topic              string
	tls                bool
	caFile             string
	insecureSkipVerify bool
	sasl               string
	username, password string
	timeout            time.Duration
}

// kafkaTransport produces each alert as one record to a topic with
// franz-go's idempotent producer, waiting for every in-sync replica
// (acks=all): the record key is the alert id, so that all deliveries of
// an alert (a dedup group's updates) go to one partition in order and a
// compacted topic keeps the latest; the value is the alert as kanon's
// JSON; the header kanon-delivery-key holds the delivery key, by which a
// consumer drops the repeats that a retry after a lost acknowledgement
// can produce. The record's timestamp is the time it is produced (not the
// alert's, so that retention does not expire the alerts of an old log
// at once).
type kafkaTransport struct {
	typ, name, topic string
	timeout          time.Duration
	client           *kgo.Client
}

func newKafkaTransport(typ, name string, c kafkaConfig) (*kafkaTransport, error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s output %q: "+format, append([]any{typ, name}, args...)...)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	kc := kafkaopt.Config{Brokers: c.brokers, TLS: c.tls, SASL: c.sasl, Username: c.username, DialTimeout: c.timeout}
	if c.tls {
		tc, err := tlsClientConfig(c.caFile, c.insecureSkipVerify)
		if err != nil {
			return nil, errf("%w", err)
		}
		kc.TLSConfig = tc
	}
	if c.sasl != "" {
		pass, err := newSecretValue(c.password)
		if err != nil {
			return nil, errf("password: %w", err)
		}
		kc.Password = pass.get
	}
	opts, err := kc.Opts()
	if err != nil {
		return nil, errf("%w", err)
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(c.topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProduceRequestTimeout(c.timeout),
		kgo.RecordDeliveryTimeout(c.timeout),
		kgo.UnknownTopicRetries(-1),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, errf("%w", err)
	}
	return &kafkaTransport{typ: typ, name: name, topic: c.topic, timeout: c.timeout, client: cl}, nil
}

// alertIDOf returns the alert id of a delivery key.
func alertIDOf(key string) string {
	id, _, _ := strings.Cut(key, "#")
	return id
}

// kafkaPermanent reports whether a produce error cannot be fixed by
// trying again: the record is too large or refused as invalid.
func kafkaPermanent(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kerr.InvalidRecord) || errors.Is(err, kerr.CorruptMessage)
}

func (t *kafkaTransport) deliver(ctx context.Context, batch []entry, res []error) time.Duration {
	pctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	errs := make([]error, len(batch))
	var wg sync.WaitGroup
	for i, e := range batch {
		rec := &kgo.Record{
			Topic: t.topic, Key: []byte(alertIDOf(e.id)), Value: e.body,
			Headers: []kgo.RecordHeader{{Key: KafkaDeliveryKeyHeader, Value: []byte(e.id)}},
		}
		wg.Add(1)
		t.client.Produce(pctx, rec, func(_ *kgo.Record, err error) {
			errs[i] = err
			wg.Done()
		})
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	// The client fails records whose context ended when it is safe to
	// (idempotent sequence numbers stay valid); a record in a request
	// that got no answer waits for the request's own timeout.
	limit := time.NewTimer(2*t.timeout + 5*time.Second)
	defer limit.Stop()
	select {
	case <-done:
	case <-limit.C:
		fill(res, fmt.Errorf("%s output %q: %s: no answer from the brokers", t.typ, t.name, batchText(batch)))
		return 0
	case <-ctx.Done():
		// Shutting down: what the client still holds is failed when it
		// closes, and stays in the spool.
		fill(res, fmt.Errorf("%s output %q: %s: %w", t.typ, t.name, batchText(batch), ctx.Err()))
		return 0
	}
	for i, err := range errs {
		switch {
		case err == nil:
			res[i] = nil
		case kafkaPermanent(err):
			res[i] = &permanentError{fmt.Errorf("%s output %q: cannot produce alert %s to %s: %w", t.typ, t.name, batch[i].id, t.topic, err)}
		default:
			res[i] = fmt.Errorf("%s output %q: cannot produce alert %s to %s: %w", t.typ, t.name, batch[i].id, t.topic, err)
		}
	}
	return 0
}

func (t *kafkaTransport) close() error {
	t.client.Close()
	return nil
}
