package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/kafkaopt"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Defaults of Source.
const (
	// DefaultMaxInFlight bounds the batches submitted and not yet durable.
	DefaultMaxInFlight = 8
	// DefaultPingEvery is how often the brokers are pinged for Healthy.
	DefaultPingEvery = 5 * time.Second
	// drainWait bounds how long a revocation or the shutdown waits for
	// the batches in flight of the partitions it gives up.
	drainWait = 30 * time.Second
)

// RetryWait is how long the source waits before it reads again the
// records of a batch that failed.
var RetryWait = time.Second

// ErrAuth is the category of a source whose brokers refused its
// credentials (or its TLS handshake failed): trying again cannot help.
var ErrAuth = errors.New("the brokers refused the connection's credentials")

// Source consumes one topic in a consumer group (see the package
// documentation). It implements run.Source and run.Health.
type Source struct {
	Config *Config
	// MaxRecordBytes limits one record (0: ingest.DefaultMaxRecordBytes).
	MaxRecordBytes int
	// MaxInFlight bounds the batches not yet durable (0:
	// DefaultMaxInFlight).
	MaxInFlight int
	// PingEvery is how often Healthy's state is refreshed (0:
	// DefaultPingEvery).
	PingEvery time.Duration
	// Logger receives the source's log (nil: slog.Default()).
	Logger *slog.Logger

	health sync.Mutex
	status error // nil: reachable
	pinged bool

	mu    sync.Mutex
	cond  *sync.Cond
	parts map[tp]*part
	wake  chan struct{} // the committer has offsets to commit
	sasl  saslHook
	// commitMu orders the commits of the committer and of a revocation,
	// so that no commit of a partition given up follows the new owner's.
	commitMu sync.Mutex
}

// Healthy implements run.Health: nil while a broker answered the last
// ping.
func (s *Source) Healthy() error {
	s.health.Lock()
	defer s.health.Unlock()
	switch {
	case !s.pinged:
		return fmt.Errorf("source %s: not connected to the brokers yet", s.Config.Name())
	case s.status != nil:
		return fmt.Errorf("source %s: brokers unreachable: %w", s.Config.Name(), s.status)
	}
	return nil
}

func (s *Source) setHealth(err error) {
	s.health.Lock()
	s.status, s.pinged = err, true
	s.health.Unlock()
}

// authError reports whether err says the brokers refused the credentials.
func authError(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) ||
			errors.Is(err, kerr.UnsupportedSaslMechanism) || errors.Is(err, kerr.TopicAuthorizationFailed) ||
			errors.Is(err, kerr.GroupAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed)
	}
	return false
}

// saslHook notes a connection that the broker closed while it
// authenticated: how brokers may refuse SASL PLAIN credentials, without
// an error code.
type saslHook struct{ refused atomic.Bool }

func (h *saslHook) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if key == int16(kmsg.SASLAuthenticate) && e2e.ReadErr != nil {
		h.refused.Store(true)
	}
}

// clientOpts are the consumer's options.
func (s *Source) clientOpts() ([]kgo.Opt, error) {
	c := s.Config
	kc := kafkaopt.Config{Brokers: c.Brokers, TLS: c.TLS, SASL: c.SASL, Username: c.Username, DialTimeout: 10 * time.Second}
	if c.TLS {
		tc, err := alert.TLSClientConfig(c.CAFile, c.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		kc.TLSConfig = tc
	}
	if c.SASL != "" {
		ref := "file:" + c.PasswordFile
		if c.PasswordEnv != "" {
			ref = "env:" + c.PasswordEnv
		}
		if _, err := alert.ResolveSecret(ref); err != nil {
			return nil, fmt.Errorf("password: %w", err)
		}
		kc.Password = func() (string, error) { return alert.ResolveSecret(ref) }
	}
	opts, err := kc.Opts()
	if err != nil {
		return nil, err
	}
	reset := kgo.NewOffset().AtStart()
	if c.Start == "latest" {
		reset = kgo.NewOffset().AtEnd()
	}
	opts = append(opts,
		kgo.ConsumeTopics(c.Topic), kgo.ConsumerGroup(c.Group), kgo.ConsumeResetOffset(reset),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(s.revoked), kgo.OnPartitionsLost(s.lost), kgo.WithHooks(&s.sasl),
	)
	if c.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(c.SessionTimeout), kgo.HeartbeatInterval(c.SessionTimeout/5))
	}
	return opts, nil
}

// Check builds the client's options without connecting: a bad CA file or
// an unreadable password is an error before serve starts.
func (s *Source) Check() error {
	_, err := s.clientOpts()
	if err != nil {
		return fmt.Errorf("source %s: %w", s.Config.Name(), err)
	}
	return nil
}

// Run implements run.Source: it consumes until ctx ends (and returns
// nil), the driver closes, or the brokers refuse the credentials.
func (s *Source) Run(ctx context.Context, d *run.Driver) error {
	c := s.Config
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("source", c.Name(), "group", c.Group)
	d.Watch("source "+c.Name(), s)
	s.mu.Lock()
	s.parts, s.wake = map[tp]*part{}, make(chan struct{}, 1)
	s.cond = sync.NewCond(&s.mu)
	s.mu.Unlock()
	opts, err := s.clientOpts()
	if err != nil {
		return fmt.Errorf("source %s: %w", c.Name(), err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("source %s: %w", c.Name(), err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var bg sync.WaitGroup
	bg.Go(func() { s.pinger(ctx, cl, cancel) })
	bg.Go(func() { s.committer(ctx, cl, log) })
	err = s.poll(ctx, cl, d, log)
	if cause := context.Cause(ctx); err == nil && errors.Is(cause, ErrAuth) {
		err = cause
	}
	cancel(nil)
	bg.Wait()
	// Leaving the group revokes every partition: the revocation waits for
	// the batches in flight and commits what became durable.
	cl.CloseAllowingRebalance()
	if err != nil && !errors.Is(err, run.ErrClosed) {
		return fmt.Errorf("source %s: %w", c.Name(), err)
	}
	return nil
}

// pinger keeps Healthy's state; credentials refused end the source.
func (s *Source) pinger(ctx context.Context, cl *kgo.Client, fail context.CancelCauseFunc) {
	every := s.PingEvery
	if every <= 0 {
		every = DefaultPingEvery
	}
	refusals := 0
	for {
		s.sasl.refused.Store(false)
		pctx, cancel := context.WithTimeout(ctx, every)
		err := cl.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.setHealth(err)
		if err != nil && authError(err) {
			fail(fmt.Errorf("%w: %v", ErrAuth, err))
			return
		}
		// Two pings in a row cut during authentication: the password.
		if err != nil && s.sasl.refused.Load() {
			refusals++
		} else {
			refusals = 0
		}
		if refusals >= 2 {
			fail(fmt.Errorf("%w: the broker closed the connection during SASL %s authentication of user %q: wrong username or password", ErrAuth, s.Config.SASL, s.Config.Username))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// poll polls, and submits a batch per partition of each poll.
func (s *Source) poll(ctx context.Context, cl *kgo.Client, d *run.Driver, log *slog.Logger) error {
	maxIn := s.MaxInFlight
	if maxIn <= 0 {
		maxIn = DefaultMaxInFlight
	}
	slots := make(chan struct{}, maxIn)
	for {
		if s.applyRewinds(cl, log) {
			// The store or the outputs failed: give them a moment
			// rather than failing the same records at once again.
			select {
			case <-ctx.Done():
			case <-time.After(RetryWait):
			}
		}
		fs := cl.PollRecords(ctx, s.Config.MaxRecords)
		if ctx.Err() != nil || fs.IsClientClosed() {
			cl.AllowRebalance()
			return nil
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			if authError(err) {
				ferr = fmt.Errorf("%w: %v", ErrAuth, err)
			}
			log.Warn("fetch error", "topic", topic, "partition", p, "err", err)
		})
		if ferr != nil {
			cl.AllowRebalance()
			return ferr
		}
		var err error
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if err == nil && len(fp.Records) > 0 {
				err = s.submit(ctx, d, fp.Topic, fp.Partition, fp.Records, slots)
			}
		})
		cl.AllowRebalance()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// submit hands the records of one partition to the driver as one batch.
func (s *Source) submit(ctx context.Context, d *run.Driver, topic string, partition int32, recs []*kgo.Record, slots chan struct{}) error {
	key := tp{topic, partition}
	s.mu.Lock()
	p := s.parts[key]
	if p == nil {
		p = &part{durable: -1, committed: -1, rewind: -1, want: -1}
		s.parts[key] = p
	}
	if p.rewind >= 0 {
		// Read again from the failed batch once applyRewinds has run.
		s.mu.Unlock()
		return nil
	}
	for len(recs) > 0 && p.want >= 0 && recs[0].Offset < p.want {
		recs = recs[1:] // fetched before a rewind or a repeat
	}
	if len(recs) == 0 {
		s.mu.Unlock()
		return nil
	}
	last := recs[len(recs)-1]
	bt := &batch{gen: p.gen, first: recs[0].Offset, next: last.Offset + 1, epoch: last.LeaderEpoch}
	p.batches = append(p.batches, bt)
	p.want = bt.next
	p.inflight++
	s.mu.Unlock()

	name := s.Config.Name() + "/" + strconv.Itoa(int(partition)) + "@"
	var out []ingest.Record
	var n int64
	for _, r := range recs {
		out = ingest.FrameMessage(name+strconv.FormatInt(r.Offset, 10), r.Value, s.MaxRecordBytes, out)
		n += int64(len(r.Value))
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		s.finish(key, p, bt, ctx.Err())
		return ctx.Err()
	}
	b := &run.Batch{Input: Scheme, Cluster: s.Config.Cluster, Records: out, Bytes: n, Received: time.Now(),
		Done: func(res run.Result) {
			<-slots
			s.finish(key, p, bt, res.Err)
		}}
	if err := d.Submit(ctx, b); err != nil {
		<-slots
		s.finish(key, p, bt, err)
		return err
	}
	return nil
}
