package alert

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsConfig configures the NATS transport.
type natsConfig struct {
	NATSDial
	subject string
}

// NATSDial says how kanon connects to a NATS server, for the NATS output
// and the NATS source (internal/source/nats) alike.
type NATSDial struct {
	// URL is the server's (nats:// or tls://; env:NAME or file:PATH).
	URL string
	// TLS, CAFile and InsecureSkipVerify configure TLS (implied by
	// tls://, CAFile or InsecureSkipVerify).
	TLS                bool
	CAFile             string
	InsecureSkipVerify bool
	// Token, or Username and Password, or CredsFile (a NATS credentials
	// file: a user JWT and its NKey seed) authenticate; Token and
	// Password may be env:NAME or file:PATH, a file read again when it
	// changes.
	Token              string
	Username, Password string
	CredsFile          string
	// Timeout bounds connecting (0: DefaultTimeout); ReconnectWait is the
	// pause between reconnections (0: DefaultMinBackoff).
	Timeout, ReconnectWait time.Duration
}

// Connect connects to the server. The connection reconnects for ever,
// starting at once; a server that is down at first is retried the same
// way (the connection's Status says where it is). Errors are about the
// configuration.
func (c NATSDial) Connect() (*nats.Conn, error) {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = DefaultMinBackoff
	}
	u, err := ResolveSecret(c.URL)
	if err != nil {
		return nil, fmt.Errorf("url: %w", err)
	}
	opts := []nats.Option{
		nats.Name("kanon"),
		nats.Timeout(c.Timeout),
		// Publishing while disconnected fails rather than filling a
		// client-side buffer that a crash would lose.
		nats.MaxReconnects(-1),
		nats.ReconnectWait(c.ReconnectWait),
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(true),
		nats.NoCallbacksAfterClientClose(),
	}
	if c.TLS || c.CAFile != "" || c.InsecureSkipVerify || strings.HasPrefix(u, "tls://") {
		tc, err := tlsClientConfig(c.CAFile, c.InsecureSkipVerify)
		if err != nil {
			return nil, err
		}
		if tc == nil {
			tc = tlsDefaultConfig()
		}
		opts = append(opts, nats.Secure(tc))
	}
	if c.Token != "" {
		tok, err := newSecretValue(c.Token)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		opts = append(opts, nats.TokenHandler(func() string {
			v, _ := tok.get()
			return v
		}))
	}
	if c.Username != "" {
		pass, err := newSecretValue(c.Password)
		if err != nil {
			return nil, fmt.Errorf("password: %w", err)
		}
		user := c.Username
		opts = append(opts, nats.UserInfoHandler(func() (string, string) {
			v, _ := pass.get()
			return user, v
		}))
	}
	if c.CredsFile != "" {
		if _, err := os.Stat(c.CredsFile); err != nil {
			return nil, fmt.Errorf("creds file: %w", err)
		}
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	nc, err := nats.Connect(u, opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot connect: %w", err)
	}
	return nc, nil
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
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	nc, err := c.Connect()
	if err != nil {
		return nil, errf("%w", err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(c.Timeout), jetstream.WithDefaultTimeout(c.Timeout))
	if err != nil {
		nc.Close()
		return nil, errf("%w", err)
	}
	return &natsTransport{typ: typ, name: name, subject: c.subject, timeout: c.Timeout, nc: nc, js: js}, nil
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
