package alert

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsConfig configures the NATS transport.
type natsConfig struct {
	url                string
	subject            string
	tls                bool
	caFile             string
	insecureSkipVerify bool
	token              string
	username, password string
	timeout            time.Duration
	reconnectWait      time.Duration
}

// natsTransport publishes each alert to a subject with JetStream: the
// message is the alert as kanon's JSON, with the delivery key in the
// Nats-Msg-Id header. An alert counts as delivered once the stream that
// captures the subject acknowledged it (stored it); the stream drops a
// message whose id it saw within its duplicate window (2 minutes by
// default), so a retry after a lost acknowledgement is stored once. A
// subject no stream captures is an error (no responders), retried until
// a stream exists. Core NATS publishing is not offered: it has no
// acknowledgement, so an alert published while no subscriber listens
// would be lost.
type natsTransport struct {
	typ, name, subject string
	timeout            time.Duration
	nc                 *nats.Conn
	js                 jetstream.JetStream
}

func newNATSTransport(typ, name string, c natsConfig) (*natsTransport, error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s output %q: "+format, append([]any{typ, name}, args...)...)
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.reconnectWait <= 0 {
		c.reconnectWait = DefaultMinBackoff
	}
	u, err := ResolveSecret(c.url)
	if err != nil {
		return nil, errf("url: %w", err)
	}
	opts := []nats.Option{
		nats.Name("kanon"),
		nats.Timeout(c.timeout),
		// Reconnect for ever, starting at once: the spool holds the alerts
		// meanwhile. Publishing while disconnected fails rather than
		// filling a client-side buffer that a crash would lose.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.reconnectWait),
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(true),
		nats.NoCallbacksAfterClientClose(),
	}
	if c.tls || c.caFile != "" || c.insecureSkipVerify || strings.HasPrefix(u, "tls://") {
		tc, err := tlsClientConfig(c.caFile, c.insecureSkipVerify)
		if err != nil {
			return nil, errf("%w", err)
		}
		if tc == nil {
			tc = tlsDefaultConfig()
		}
		opts = append(opts, nats.Secure(tc))
	}
	if c.token != "" {
		tok, err := newSecretValue(c.token)
		if err != nil {
			return nil, errf("token: %w", err)
		}
		opts = append(opts, nats.TokenHandler(func() string {
			v, _ := tok.get()
			return v
		}))
	}
	if c.username != "" {
		pass, err := newSecretValue(c.password)
		if err != nil {
			return nil, errf("password: %w", err)
		}
		user := c.username
		opts = append(opts, nats.UserInfoHandler(func() (string, string) {
			v, _ := pass.get()
			return user, v
		}))
	}
	nc, err := nats.Connect(u, opts...)
	if err != nil {
		return nil, errf("cannot connect: %w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(c.timeout), jetstream.WithDefaultTimeout(c.timeout))
	if err != nil {
		nc.Close()
		return nil, errf("%w", err)
	}
	return &natsTransport{typ: typ, name: name, subject: c.subject, timeout: c.timeout, nc: nc, js: js}, nil
}

func (t *natsTransport) deliver(ctx context.Context, batch []entry, res []error) time.Duration {
	pctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	errf := func(i int, err error) error {
		return fmt.Errorf("%s output %q: cannot publish alert %s to %s: %w", t.typ, t.name, batch[i].id, t.subject, err)
	}
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, e := range batch {
		msg := &nats.Msg{Subject: t.subject, Data: e.body, Header: nats.Header{}}
		f, err := t.js.PublishMsgAsync(msg, jetstream.WithMsgID(e.id), jetstream.WithStallWait(t.timeout))
		if err != nil {
			res[i] = errf(i, err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				res[i] = fmt.Errorf("%w: stream %s holds alert %s", errDuplicate, ack.Stream, batch[i].id)
			} else {
				res[i] = nil
			}
		case err := <-f.Err():
			res[i] = errf(i, err)
		case <-pctx.Done():
			res[i] = errf(i, pctx.Err())
		}
	}
	return 0
}

func (t *natsTransport) close() error {
	t.nc.Close()
	return nil
}
