package nats

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
)

// Defaults of the URL's parameters.
const (
	DefaultConsumer = "kanon"
	DefaultBatch    = 256
	DefaultMaxWait  = time.Second
	DefaultAckWait  = 5 * time.Minute
)

// params are the URL's parameters, for the error naming an unknown one.
var params = []string{"consumer", "subject", "creds", "token", "user", "password", "tls", "ca_file", "cluster", "batch", "max_wait", "ack_wait", "max_ack_pending"}

// Config is a source as its URL names it.
type Config struct {
	// Dial is how to connect (the URL's servers, TLS, credentials).
	Dial alert.NATSDial
	// Stream, Consumer and Subject (the consumer's filter, if any) name
	// what is read.
	Stream, Consumer, Subject string
	// Cluster names the cluster of events that do not name theirs.
	Cluster string
	// Batch is the most messages fetched at once; MaxWait the longest a
	// fetch waits for them; AckWait the consumer's ack wait, if it is
	// created.
	Batch            int
	MaxWait, AckWait time.Duration
	// MaxAckPending is the consumer's bound on the messages delivered and
	// not yet acknowledged, across all replicas, if it is created (0: the
	// server's default).
	MaxAckPending int
}

// ParseURL reads a nats:// URL (see the package documentation).
func ParseURL(raw string) (*Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("source %s: "+format, append([]any{redact(raw)}, args...)...)
	}
	rest, ok := strings.CutPrefix(raw, Scheme+"://")
	if !ok {
		return nil, bad("not a %s:// URL", Scheme)
	}
	hosts, rest, _ := strings.Cut(rest, "/")
	if strings.Contains(hosts, "@") {
		return nil, bad("credentials do not go in the URL: use creds, token, or user and password (a secret as env:NAME or file:PATH)")
	}
	path, query, _ := strings.Cut(rest, "?")
	c := &Config{Stream: path, Consumer: DefaultConsumer, Batch: DefaultBatch, MaxWait: DefaultMaxWait, AckWait: DefaultAckWait}
	if c.Stream == "" || strings.ContainsAny(c.Stream, "/.*> \t") {
		return nil, bad("want nats://HOST:PORT/STREAM (a stream name: no '.', '*', '>', '/' or space)")
	}
	var servers []string
	for _, h := range strings.Split(hosts, ",") {
		if h == "" {
			return nil, bad("want nats://HOST:PORT/STREAM: an empty server")
		}
		if _, err := url.Parse("nats://" + h); err != nil {
			return nil, bad("server %q: %v", h, err)
		}
		servers = append(servers, "nats://"+h)
	}
	c.Dial.URL = strings.Join(servers, ",")
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, bad("%v", err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, bad("%s given %d times", k, len(vs))
		}
		v := vs[0]
		if err := c.set(k, v); err != nil {
			return nil, bad("%v", err)
		}
	}
	if (c.Dial.Username == "") != (c.Dial.Password == "") {
		return nil, bad("user and password go together")
	}
	if n := btoi(c.Dial.Token != "") + btoi(c.Dial.Username != "") + btoi(c.Dial.CredsFile != ""); n > 1 {
		return nil, bad("creds, token, and user with password exclude each other")
	}
	return c, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// set sets the parameter k to v.
func (c *Config) set(k, v string) error {
	positive := func(p *time.Duration) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s: %q is not a positive duration", k, v)
		}
		*p = d
		return nil
	}
	nonEmpty := func(p *string) error {
		if v == "" {
			return fmt.Errorf("%s is empty", k)
		}
		*p = v
		return nil
	}
	switch k {
	case "consumer":
		if strings.ContainsAny(v, ".*> \t/") {
			return fmt.Errorf("consumer: %q is not a consumer name", v)
		}
		return nonEmpty(&c.Consumer)
	case "subject":
		return nonEmpty(&c.Subject)
	case "creds":
		return nonEmpty(&c.Dial.CredsFile)
	case "token":
		return nonEmpty(&c.Dial.Token)
	case "user":
		return nonEmpty(&c.Dial.Username)
	case "password":
		return nonEmpty(&c.Dial.Password)
	case "ca_file":
		return nonEmpty(&c.Dial.CAFile)
	case "cluster":
		return nonEmpty(&c.Cluster)
	case "tls":
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("tls: %q is not true or false", v)
		}
		c.Dial.TLS = b
	case "batch":
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 10000 {
			return fmt.Errorf("batch: %q is not a number from 1 to 10000", v)
		}
		c.Batch = n
	case "max_ack_pending":
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("max_ack_pending: %q is not a positive number", v)
		}
		c.MaxAckPending = n
	case "max_wait":
		return positive(&c.MaxWait)
	case "ack_wait":
		return positive(&c.AckWait)
	default:
		known := append([]string(nil), params...)
		sort.Strings(known)
		return fmt.Errorf("unknown parameter %q (%s)", k, strings.Join(known, ", "))
	}
	return nil
}

// redact drops the query of a URL for errors: it may hold a token.
func redact(raw string) string {
	u, _, _ := strings.Cut(raw, "?")
	return u
}

// Name names the source in logs and the delivery ledger.
func (c *Config) Name() string { return c.Stream + "/" + c.Consumer }
