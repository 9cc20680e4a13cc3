// Package pubsub is the source of GKE's audit logs pulled from a Pub/Sub
// subscription with cloud.google.com/go/pubsub/v2 (kanon serve --source
// pubsub://PROJECT/SUBSCRIPTION), the alternative to the push endpoint
// (internal/server) when kanon cannot be reached from Google:
//
//	pubsub://PROJECT/SUBSCRIPTION[?max_outstanding=N][&cluster=NAME][&endpoint=HOST:PORT]
//
// The subscription is one of the topic a Cloud Logging sink publishes the
// cluster's audit entries to (each message's data one LogEntry, read by
// the ingest/gke format, which names the cluster from
// resource.labels.cluster_name; cluster names the cluster of entries that
// do not). max_outstanding bounds the messages being evaluated at once
// (default 1000; 1 evaluates them one at a time, in the order Pub/Sub
// delivers them). endpoint replaces Pub/Sub's (a regional or private
// endpoint); the library's PUBSUB_EMULATOR_HOST points it at an emulator.
// Credentials are the library's: Application Default Credentials (GKE
// Workload Identity, a service account key in
// GOOGLE_APPLICATION_CREDENTIALS, the metadata server).
//
// Each message is a batch of its own. It is acknowledged only once its
// batch is durable, and its id is written to the delivery ledger
// (internal/source) in the same commit: a message Pub/Sub delivers again
// — its ack deadline passed, or its ack was lost — is acknowledged at
// once, by this replica or another on the same store, after a restart
// too. A message whose batch failed is nacked, and Pub/Sub delivers it
// again. A message whose entry cannot be read is acknowledged and
// counted as a bad record: delivered again it would fail again.
package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	gps "cloud.google.com/go/pubsub/v2"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source"
	"github.com/kanon-dev/kanon/internal/state"
	"google.golang.org/api/option"
)

// Scheme is the scheme of the source's URLs.
const Scheme = "pubsub"

// DefaultMaxOutstanding is the library's default bound on the messages
// being handled at once.
const DefaultMaxOutstanding = 1000

// Config is a source as its URL names it.
type Config struct {
	Project, Subscription string
	MaxOutstanding        int
	Cluster               string
	Endpoint              string
}

// ParseURL reads a pubsub:// URL.
func ParseURL(raw string) (*Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", raw, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("source %s: "+format, append([]any{raw}, args...)...)
	}
	if u.Scheme != Scheme {
		return nil, bad("not a %s:// URL", Scheme)
	}
	if u.User != nil {
		return nil, bad("credentials do not go in the URL: they are Application Default Credentials")
	}
	c := &Config{Project: u.Host, Subscription: strings.TrimPrefix(u.Path, "/"), MaxOutstanding: DefaultMaxOutstanding}
	if c.Project == "" || c.Subscription == "" || strings.Contains(c.Subscription, "/") {
		return nil, bad("want pubsub://PROJECT/SUBSCRIPTION")
	}
	for k, vs := range u.Query() {
		if len(vs) != 1 {
			return nil, bad("%s given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "max_outstanding":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, bad("max_outstanding: %q is not a positive number", v)
			}
			c.MaxOutstanding = n
		case "cluster":
			c.Cluster = v
		case "endpoint":
			c.Endpoint = v
		default:
			return nil, bad("unknown parameter %q (max_outstanding, cluster, endpoint)", k)
		}
	}
	return c, nil
}

// Name is the subscription's full name.
func (c *Config) Name() string {
	return "projects/" + c.Project + "/subscriptions/" + c.Subscription
}

// Source pulls one subscription (see the package documentation).
type Source struct {
	Config *Config
	// Options are given to the client beside the configured endpoint
	// (tests: a connection to an in-process server).
	Options []option.ClientOption
	// Logger receives the source's log (nil: slog.Default()).
	Logger *slog.Logger
}

// Run implements run.Source: it pulls until ctx ends (and returns nil),
// the driver closes, or Pub/Sub refuses the subscription.
func (s *Source) Run(ctx context.Context, d *run.Driver) error {
	c := s.Config
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("source", c.Name())
	opts := s.Options
	if c.Endpoint != "" {
		opts = append([]option.ClientOption{option.WithEndpoint(c.Endpoint)}, opts...)
	}
	client, err := gps.NewClient(ctx, c.Project, opts...)
	if err != nil {
		return fmt.Errorf("source %s: cannot connect to Pub/Sub: %w", c.Name(), err)
	}
	defer client.Close()
	ledger, err := source.NewLedger(d.Store(), "pubsub", source.PubSubRetention)
	if err != nil {
		return err
	}
	sub := client.Subscriber(c.Name())
	sub.ReceiveSettings.MaxOutstandingMessages = c.MaxOutstanding
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = sub.Receive(ctx, func(mctx context.Context, m *gps.Message) {
		received := time.Now()
		claim, dup, err := ledger.Claim(mctx, c.Name()+"/"+m.ID, received)
		switch {
		case err != nil:
			log.Warn("cannot check a message for a redelivery", "message_id", m.ID, "err", err)
			m.Nack()
			return
		case dup:
			log.Debug("message delivered again: acknowledged", "message_id", m.ID)
			m.Ack()
			return
		}
		b := &run.Batch{Input: Scheme, Cluster: c.Cluster, Bytes: int64(len(m.Data)), Received: received,
			Records: []ingest.Record{{Origin: event.Origin{Name: "pubsub:" + m.ID}, Data: m.Data}},
			Commit:  func(tx state.Tx) error { return claim.Record(tx, 1) }}
		res, err := d.SubmitWait(mctx, b, true)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			claim.Finish(false)
			m.Nack()
			if errors.Is(err, run.ErrClosed) {
				cancel()
				return
			}
			log.Warn("message not committed: delivered again later", "message_id", m.ID, "err", err)
			return
		}
		claim.Finish(true)
		if res.Bad > 0 {
			log.Warn("bad message acknowledged", "message_id", m.ID, "errors", res.Errors)
		}
		m.Ack()
	})
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("source %s: %w", c.Name(), err)
	}
	return nil
}
