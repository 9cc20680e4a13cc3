package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gonats "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source"
	"github.com/kanon-dev/kanon/internal/state"
)

// Scheme is the scheme of the source's URLs.
const Scheme = "nats"

// Source reads one durable consumer (see the package documentation).
type Source struct {
	Config *Config
	// MaxRecordBytes limits one record (0: ingest.DefaultMaxRecordBytes).
	MaxRecordBytes int
	// Logger receives the source's log (nil: slog.Default()).
	Logger *slog.Logger

	mu sync.Mutex
	nc *gonats.Conn
	// loseAcks drops the acknowledgements of durable batches (tests: an
	// acknowledgement lost on the way).
	loseAcks atomic.Bool
}

// Healthy implements run.Health: the connection to the server is up.
func (s *Source) Healthy() error {
	s.mu.Lock()
	nc := s.nc
	s.mu.Unlock()
	if nc == nil {
		return errors.New("not connected yet")
	}
	if st := nc.Status(); st != gonats.CONNECTED {
		return fmt.Errorf("NATS connection %s", strings.ToLower(st.String()))
	}
	return nil
}

// Run implements run.Source: it fetches batches until ctx ends (and
// returns nil) or the driver closes.
func (s *Source) Run(ctx context.Context, d *run.Driver) error {
	c := s.Config
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("source", "nats:"+c.Name())
	nc, err := c.Dial.Connect()
	if err != nil {
		return fmt.Errorf("source nats:%s: %w", c.Name(), err)
	}
	s.mu.Lock()
	s.nc = nc
	s.mu.Unlock()
	d.Watch("source nats:"+c.Name(), s)
	// Batches in flight are acknowledged in their Done, which may come
	// after Run returns (the driver drains them): the connection closes
	// once the last is done.
	var inflight sync.WaitGroup
	defer func() {
		go func() {
			inflight.Wait()
			nc.Close()
		}()
	}()
	ledger, err := source.NewLedger(d.Store(), "nats:"+c.Stream, source.NATSRetention)
	if err != nil {
		return err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("source nats:%s: %w", c.Name(), err)
	}
	cons, err := s.consumer(ctx, js, log)
	if cons == nil {
		return err
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		msgs, err := s.fetch(ctx, cons)
		if err != nil && len(msgs) == 0 {
			if ctx.Err() != nil {
				break
			}
			log.Warn("cannot fetch: trying again", "err", err)
			sleep(ctx, backoff)
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		if len(msgs) == 0 {
			continue
		}
		if err := s.submit(ctx, d, ledger, msgs, &inflight, log); err != nil {
			if errors.Is(err, run.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// consumer returns the durable consumer, creating it if the stream has
// none of its name; while the server is unreachable or the stream does
// not exist it tries again until ctx ends (nil, nil).
func (s *Source) consumer(ctx context.Context, js jetstream.JetStream, log *slog.Logger) (jetstream.Consumer, error) {
	c := s.Config
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cons, err := js.Consumer(cctx, c.Stream, c.Consumer)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			cfg := jetstream.ConsumerConfig{Durable: c.Consumer, AckPolicy: jetstream.AckExplicitPolicy,
				AckWait: c.AckWait, FilterSubject: c.Subject, DeliverPolicy: jetstream.DeliverAllPolicy,
				MaxAckPending: c.MaxAckPending}
			cons, err = js.CreateConsumer(cctx, c.Stream, cfg)
			if err == nil {
				log.Info("consumer created", "consumer", c.Consumer, "ack_wait", c.AckWait, "max_ack_pending", cons.CachedInfo().Config.MaxAckPending)
			}
		}
		cancel()
		if err == nil {
			if f := cons.CachedInfo().Config.FilterSubject; c.Subject != "" && f != c.Subject {
				return nil, fmt.Errorf("source nats:%s: the consumer filters subject %q, not %q", c.Name(), f, c.Subject)
			}
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		log.Warn("consumer not available: trying again", "err", err)
		sleep(ctx, wait)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// fetch fetches up to Batch messages, waiting at most MaxWait.
func (s *Source) fetch(ctx context.Context, cons jetstream.Consumer) ([]jetstream.Msg, error) {
	fctx, cancel := context.WithTimeout(ctx, s.Config.MaxWait)
	defer cancel()
	mb, err := cons.Fetch(s.Config.Batch, jetstream.FetchContext(fctx))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, nil
		}
		return nil, err
	}
	var msgs []jetstream.Msg
	for m := range mb.Messages() {
		msgs = append(msgs, m)
	}
	if err := mb.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, gonats.ErrTimeout) {
		return msgs, err
	}
	return msgs, nil
}

// submit hands the messages of one fetch to the driver as one batch,
// acknowledging those the ledger knows durable at once, and the others
// in the batch's Done.
func (s *Source) submit(ctx context.Context, d *run.Driver, ledger *source.Ledger, msgs []jetstream.Msg, inflight *sync.WaitGroup, log *slog.Logger) error {
	c := s.Config
	received := time.Now()
	var claims []*source.Claim
	var pending []jetstream.Msg
	var recs []ingest.Record
	var size int64
	counts := make([]int, 0, len(msgs))
	for _, m := range msgs {
		meta, err := m.Metadata()
		if err != nil { // not a JetStream message: nothing to acknowledge
			log.Warn("message without JetStream metadata dropped", "subject", m.Subject(), "err", err)
			continue
		}
		id := c.Stream + "/" + strconv.FormatUint(meta.Sequence.Stream, 10)
		var claim *source.Claim
		if meta.NumDelivered <= 1 {
			claim = ledger.Begin(id, received)
		} else {
			var dup bool
			claim, dup, err = ledger.Claim(ctx, id, received)
			switch {
			case err != nil:
				log.Warn("cannot check a message for a redelivery: delivered again later", "seq", meta.Sequence.Stream, "err", err)
				_ = m.Nak()
				continue
			case dup:
				log.Debug("message delivered again: acknowledged", "seq", meta.Sequence.Stream)
				_ = m.Ack()
				continue
			}
		}
		n := len(recs)
		recs = frame("nats:"+id, m.Data(), s.MaxRecordBytes, recs)
		claims, pending, counts = append(claims, claim), append(pending, m), append(counts, len(recs)-n)
		size += int64(len(m.Data()))
	}
	if len(pending) == 0 {
		return nil
	}
	finish := func(ok bool) {
		for i, m := range pending {
			claims[i].Finish(ok)
			if ok {
				if !s.loseAcks.Load() {
					_ = m.Ack()
				}
			} else {
				_ = m.Nak()
			}
		}
	}
	b := &run.Batch{Input: Scheme, Cluster: c.Cluster, Records: recs, Bytes: size, Received: received,
		Commit: func(tx state.Tx) error {
			for i, cl := range claims {
				if err := cl.Record(tx, counts[i]); err != nil {
					return err
				}
			}
			return nil
		},
		Done: func(r run.Result) {
			defer inflight.Done()
			if r.Err != nil {
				log.Warn("batch not committed: its messages are delivered again", "messages", len(pending), "err", r.Err)
			} else if r.Bad > 0 {
				log.Warn("bad records acknowledged", "bad", r.Bad, "errors", r.Errors)
			}
			finish(r.Err == nil)
		}}
	inflight.Add(1)
	if err := d.Submit(ctx, b); err != nil {
		inflight.Done()
		finish(false)
		return err
	}
	return nil
}

// frame appends the records of one message's data, framed as kanon scan
// frames a file (lines, multi-line JSON values, gzip), to recs: in place
// for plain text, the records aliasing the message's data, which the
// message holds until it is acknowledged anyway (ingest.FrameMessage).
// (A copy into a file-sized block of a MiB per message held over a GB for
// a replica fetching ahead of its driver.)
func frame(name string, data []byte, maxRecord int, recs []ingest.Record) []ingest.Record {
	return ingest.FrameMessage(name, data, maxRecord, recs)
}
