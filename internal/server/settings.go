package server

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/spf13/pflag"
)

// Settings are the webhook's keys of kanon serve's configuration file,
// each with a flag (RegisterFlags).
type Settings struct {
	// Listen is the HTTPS address of the webhook ("" for none).
	Listen string `yaml:"listen"`
	// InsecureListen is a plain-HTTP address, for loopback tests.
	InsecureListen string `yaml:"insecure_listen"`
	// InsecureNonLoopback allows InsecureListen on an address other than
	// loopback (audit events in clear on the network); it then takes
	// only requests with a bearer token.
	InsecureNonLoopback bool `yaml:"insecure_non_loopback"`
	// TLS names the certificate files.
	TLS TLSFiles `yaml:"tls"`
	// TokenFiles hold one accepted bearer token each.
	TokenFiles []string `yaml:"token_files"`
	// Cluster names the cluster of batches posted to /audit.
	Cluster string `yaml:"cluster"`
	// MaxBodyBytes, MaxInFlight, MaxInFlightPerClient, BodyTimeout and
	// WaitTimeout are Config's.
	MaxBodyBytes         alert.ByteSize `yaml:"max_body_bytes"`
	MaxInFlight          int            `yaml:"max_in_flight"`
	MaxInFlightPerClient int            `yaml:"max_in_flight_per_client"`
	BodyTimeout          time.Duration  `yaml:"body_timeout"`
	WaitTimeout          time.Duration  `yaml:"wait_timeout"`
	// Firehose and PubSub are the cloud delivery endpoints beside the
	// webhook (cloud_settings.go).
	Firehose FirehoseSettings `yaml:"firehose"`
	PubSub   PubSubSettings   `yaml:"pubsub_push"`
}

// DefaultSettings are the webhook's defaults.
func DefaultSettings() Settings {
	return Settings{Listen: ":8443", MaxBodyBytes: DefaultMaxBodyBytes, MaxInFlight: DefaultMaxInFlight, BodyTimeout: DefaultBodyTimeout, WaitTimeout: DefaultWaitTimeout,
		Firehose: FirehoseSettings{MaxBodyBytes: DefaultFirehoseMaxBodyBytes}}
}

// RegisterFlags registers a flag per key, bound to s (whose values are the
// flags' defaults).
func (s *Settings) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.Listen, "listen", s.Listen, "HTTPS `ADDR` of the audit webhook (key listen; empty: none)")
	fs.StringVar(&s.InsecureListen, "insecure-listen", s.InsecureListen, "plain-HTTP `ADDR` of the webhook, for loopback tests only (key insecure_listen)")
	fs.BoolVar(&s.InsecureNonLoopback, "insecure-non-loopback", s.InsecureNonLoopback, "allow --insecure-listen on an address other than loopback: audit events in clear, bearer tokens required (key insecure_non_loopback)")
	fs.StringVar(&s.TLS.CertFile, "tls-cert", s.TLS.CertFile, "server certificate `FILE` (PEM, with its chain) (key tls.cert_file)")
	fs.StringVar(&s.TLS.KeyFile, "tls-key", s.TLS.KeyFile, "server private key `FILE` (key tls.key_file)")
	fs.StringVar(&s.TLS.ClientCAFile, "client-ca", s.TLS.ClientCAFile, "CA bundle `FILE` of the client certificates accepted (mutual TLS) (key tls.client_ca_file)")
	fs.StringArrayVar(&s.TokenFiles, "token-file", s.TokenFiles, "`FILE` holding a bearer token accepted by the webhook (repeatable) (key token_files)")
	fs.StringVar(&s.Cluster, "cluster", s.Cluster, "cluster `NAME` of events posted to /audit (/audit/NAME names its own) (key cluster)")
	fs.Var(&s.MaxBodyBytes, "max-body-bytes", "size limit of one webhook request body (key max_body_bytes)")
	fs.IntVar(&s.MaxInFlight, "max-in-flight", s.MaxInFlight, "webhook requests served at once; more get 429 (key max_in_flight)")
	fs.IntVar(&s.MaxInFlightPerClient, "max-in-flight-per-client", s.MaxInFlightPerClient, "webhook requests of one client (certificate subject, token, or IP) served at once; more get 429 (0: half of max_in_flight) (key max_in_flight_per_client)")
	fs.DurationVar(&s.BodyTimeout, "body-timeout", s.BodyTimeout, "how long a request body may take to arrive before 408 (key body_timeout)")
	fs.DurationVar(&s.WaitTimeout, "wait-timeout", s.WaitTimeout, "how long a request waits for its batch to be committed before 503 (key wait_timeout)")
	s.registerCloudFlags(fs)
}

// Enabled reports whether a webhook listener is configured.
func (s *Settings) Enabled() bool { return s.Listen != "" || s.InsecureListen != "" }

// Validate checks the settings without opening anything.
func (s *Settings) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, a := range []struct{ key, addr string }{{"listen", s.Listen}, {"insecure_listen", s.InsecureListen}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			bad("%s: %q is not HOST:PORT: %v", a.key, a.addr, err)
		}
	}
	if s.InsecureListen != "" && !loopback(s.InsecureListen) {
		switch {
		case !s.InsecureNonLoopback:
			bad("insecure_listen: %q is not a loopback address: plain HTTP would carry the audit log in clear; use listen (HTTPS), or set insecure_non_loopback (--insecure-non-loopback) to mean it", s.InsecureListen)
		case len(s.TokenFiles) == 0:
			bad("insecure_listen: %q is not a loopback address: it takes only bearer tokens; set token_files (--token-file)", s.InsecureListen)
		}
	}
	if s.Listen != "" && (s.TLS.CertFile == "" || s.TLS.KeyFile == "") {
		bad("listen: the HTTPS webhook needs tls.cert_file and tls.key_file (--tls-cert, --tls-key); set listen to \"\" to run without it")
	}
	if s.Listen != "" && s.TLS.ClientCAFile == "" && len(s.TokenFiles) == 0 && !s.FirehoseEnabled() && !s.PubSubEnabled() {
		bad("listen: no client authentication: set tls.client_ca_file (--client-ca) or token_files (--token-file)")
	}
	errs = append(errs, s.validateCloud())
	if s.Cluster != "" && !validCluster(s.Cluster) {
		bad("cluster: %q is not a cluster name (1 to 63 letters, digits, '.', '_' or '-')", s.Cluster)
	}
	for _, v := range []struct {
		key string
		n   int64
	}{{"max_body_bytes", int64(s.MaxBodyBytes)}, {"max_in_flight", int64(s.MaxInFlight)}, {"body_timeout", int64(s.BodyTimeout)}, {"wait_timeout", int64(s.WaitTimeout)}} {
		if v.n <= 0 {
			bad("%s: must be positive", v.key)
		}
	}
	if s.MaxInFlightPerClient < 0 {
		bad("max_in_flight_per_client: must not be negative")
	} else if s.MaxInFlightPerClient > s.MaxInFlight && s.MaxInFlight > 0 {
		bad("max_in_flight_per_client: %d is over max_in_flight (%d)", s.MaxInFlightPerClient, s.MaxInFlight)
	}
	return errors.Join(errs...)
}

// Tokens reads the bearer tokens, one per file; the set reads them again
// on Reload.
func (s *Settings) Tokens() (*TokenSet, error) { return LoadTokens(s.TokenFiles) }

// Certificate loads the TLS certificate of the HTTPS listener (nil when
// there is none) and checks that it makes a TLS configuration.
func (s *Settings) Certificate() (*Certificate, error) {
	if s.Listen == "" {
		return nil, nil
	}
	cert, err := LoadCertificate(s.TLS)
	if err != nil {
		return nil, err
	}
	if _, err := cert.TLSConfig(); err != nil {
		return nil, err
	}
	return cert, nil
}

// Config returns the server configuration of one listener: with tls
// false, the plain-HTTP one, which takes requests without authentication
// when no token is configured (it is for loopback tests).
func (s *Settings) Config(tokens *TokenSet, tls bool) Config {
	c := Config{Cluster: s.Cluster, TokenSet: tokens, MaxBodyBytes: int64(s.MaxBodyBytes), MaxInFlight: s.MaxInFlight,
		MaxInFlightPerClient: s.MaxInFlightPerClient, BodyTimeout: s.BodyTimeout, WaitTimeout: s.WaitTimeout}
	if !tls {
		c.AllowUnauthenticated = tokens.Len() == 0 && loopback(s.InsecureListen)
	}
	return c
}

// loopback reports whether addr (HOST:PORT) is on a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Start starts the HTTPS webhook and the plain-HTTP one, as configured,
// on driver d. It returns the servers started, also when one of them
// failed to start. Their /readyz also fails while a source of health is
// not healthy.
func (s *Settings) Start(d *run.Driver, cert *Certificate, tokens *TokenSet, log *slog.Logger, health ...run.Health) ([]*Server, error) {
	var servers []*Server
	fh, ps, err := s.cloudConfig()
	if err != nil {
		return nil, err
	}
	start := func(addr string, tlsOn bool) error {
		cfg := s.Config(tokens, tlsOn)
		cfg.Driver, cfg.Logger = d, log
		cfg.Firehose, cfg.PubSub, cfg.Health = fh, ps, health
		if !tlsOn && !loopback(addr) {
			log.Warn("plain-HTTP webhook on a non-loopback address: audit events travel in clear", "addr", addr)
		}
		srv, err := New(cfg)
		if err != nil {
			return err
		}
		var tc *tls.Config
		if tlsOn {
			if tc, err = cert.TLSConfig(); err != nil {
				return err
			}
		}
		at, err := srv.Listen(addr, tc)
		if err != nil {
			return err
		}
		log.Info("webhook listening", "addr", at.String(), "tls", tlsOn, "client_ca", tlsOn && s.TLS.ClientCAFile != "", "tokens", tokens.Len(),
			"firehose", fh != nil, "pubsub_push", ps != nil)
		servers = append(servers, srv)
		return nil
	}
	if s.Listen != "" {
		if err := start(s.Listen, true); err != nil {
			return servers, err
		}
	}
	if s.InsecureListen != "" {
		if err := start(s.InsecureListen, false); err != nil {
			return servers, err
		}
	}
	return servers, nil
}
