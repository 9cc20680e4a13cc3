// Package kafkaopt builds the connection options of kanon's Kafka clients
// — the alert output's producer (internal/alert) and the source's
// consumer (internal/source/kafka) — from one description: seed brokers,
// TLS, and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), so that both speak
// to a cluster the same way. Azure Event Hubs' Kafka endpoint is such a
// cluster: TLS, SASL PLAIN with the user $ConnectionString.
package kafkaopt

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The SASL mechanisms, as configured.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Mechanisms lists the SASL mechanisms, for messages.
const Mechanisms = SASLPlain + ", " + SASLScramSHA256 + ", " + SASLScramSHA512

// Config is how a client reaches the brokers.
type Config struct {
	// Brokers are the seed brokers, HOST:PORT.
	Brokers []string
	// TLS turns TLS on; TLSConfig, if set, is its configuration (a CA
	// bundle), else the system roots with TLS 1.2 at least.
	TLS       bool
	TLSConfig *tls.Config
	// SASL is the mechanism ("" for none), Username the user, and
	// Password returns the password each time a connection authenticates
	// (a rotated secret file is read again).
	SASL     string
	Username string
	Password func() (string, error)
	// DialTimeout bounds a connection's dial (0: franz-go's default).
	DialTimeout time.Duration
}

// ValidSASL checks a mechanism's name ("" is none).
func ValidSASL(m string) error {
	switch m {
	case "", SASLPlain, SASLScramSHA256, SASLScramSHA512:
		return nil
	}
	return fmt.Errorf("%q is not one of %s", m, Mechanisms)
}

// SplitBrokers reads a comma-separated list of HOST:PORT.
func SplitBrokers(s string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(s, ",") {
		b = strings.TrimSpace(b)
		if err := ValidBroker(b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// ValidBroker checks one broker address, HOST:PORT with a port number.
func ValidBroker(b string) error {
	host, port, err := net.SplitHostPort(b)
	if err == nil && validHost(host) {
		if n, perr := strconv.Atoi(port); perr == nil && n > 0 && n < 1<<16 && port[0] != '0' && port[0] != '+' {
			return nil
		}
	}
	return fmt.Errorf("broker %q is not HOST:PORT", b)
}

// Opts returns the client options of c: seed brokers, client id kanon,
// TLS and SASL.
func (c *Config) Opts() ([]kgo.Opt, error) {
	if len(c.Brokers) == 0 {
		return nil, errors.New("no broker")
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID("kanon")}
	if c.DialTimeout > 0 {
		opts = append(opts, kgo.DialTimeout(c.DialTimeout))
	}
	if c.TLS {
		tc := c.TLSConfig
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL == "" {
		return opts, nil
	}
	if c.Password == nil {
		return nil, errors.New("SASL without a password")
	}
	user, pass := c.Username, c.Password
	var mech sasl.Mechanism
	switch c.SASL {
	case SASLPlain:
		mech = plain.Plain(func(context.Context) (plain.Auth, error) {
			p, err := pass()
			return plain.Auth{User: user, Pass: p}, err
		})
	case SASLScramSHA256, SASLScramSHA512:
		fn := func(context.Context) (scram.Auth, error) {
			p, err := pass()
			return scram.Auth{User: user, Pass: p}, err
		}
		if c.SASL == SASLScramSHA256 {
			mech = scram.Sha256(fn)
		} else {
			mech = scram.Sha512(fn)
		}
	default:
		return nil, fmt.Errorf("sasl: %w", ValidSASL(c.SASL))
	}
	return append(opts, kgo.SASL(mech)), nil
}

// validHost reports whether h is an IP address or a DNS name.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
