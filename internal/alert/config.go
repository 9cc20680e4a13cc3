package alert

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/kafkaopt"
)

// Output types accepted in OutputConfig.Type.
const (
	TypeStdout        = "stdout"
	TypeFile          = "file"
	TypeWebhook       = "webhook"
	TypeSlack         = "slack"
	TypeElasticsearch = "elasticsearch"
	TypeOpenSearch    = "opensearch"
	TypeSplunk        = "splunk"
	TypeAlertmanager  = "alertmanager"
	TypeLoki          = "loki"
	TypeSyslog        = "syslog"
	TypeKafka         = "kafka"
	TypeNATS          = "nats"
)

// outputTypes lists the types in the order the documentation gives them.
var outputTypes = []string{
	TypeStdout, TypeFile, TypeWebhook, TypeSlack, TypeElasticsearch, TypeOpenSearch,
	TypeSplunk, TypeAlertmanager, TypeLoki, TypeSyslog, TypeKafka, TypeNATS,
}

// Groups of output types, for the keys they take.
var (
	httpTypes    = []string{TypeWebhook, TypeSlack, TypeElasticsearch, TypeOpenSearch, TypeSplunk, TypeAlertmanager, TypeLoki}
	networkTypes = append(slices.Clone(httpTypes), TypeSyslog, TypeKafka, TypeNATS)
	batchTypes   = []string{TypeElasticsearch, TypeOpenSearch, TypeSplunk, TypeAlertmanager, TypeLoki, TypeSyslog, TypeKafka, TypeNATS}
)

// Defaults applied by NewOutputs to zero fields of an OutputConfig.
const (
	DefaultQueueSize     = 1024
	DefaultBlockTimeout  = 100 * time.Millisecond
	DefaultMaxFileSize   = 100 << 20
	DefaultMaxBackups    = 5
	DefaultTimeout       = 10 * time.Second
	DefaultMinBackoff    = 500 * time.Millisecond
	DefaultMaxBackoff    = time.Minute
	DefaultSpoolMaxSize  = 256 << 20
	DefaultSegmentSize   = 4 << 20
	DefaultSyncInterval  = time.Second
	DefaultDrainTimeout  = 10 * time.Second
	DefaultBatchSize     = 100
	DefaultBatchBytes    = 4 << 20
	defaultRecentIDs     = 1 << 16
	maxResponseBodyBytes = 64 << 10
)

// OutputConfig configures one output of NewOutputs. It decodes from YAML
// (gopkg.in/yaml.v3 and sigs.k8s.io/yaml) and JSON; durations are strings
// such as "10s" and sizes are strings such as "100MiB" or byte counts.
//
// Secrets never need to be written into the configuration: url, the
// values of headers, token and password take env:NAME (an environment
// variable) or file:PATH (a file, read again when it changes), see
// ResolveSecret; token and password take nothing else.
type OutputConfig struct {
	// Name identifies the output in stats and errors; it defaults to the
	// type, followed by "-2", "-3", ... when a type is used more than once.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Type is stdout, file, webhook, slack, elasticsearch, opensearch,
	// splunk, alertmanager, loki, syslog, kafka or nats.
	Type string `yaml:"type" json:"type"`
	// MinSeverity drops alerts below it (info, low, medium, high,
	// critical); empty passes every alert.
	MinSeverity string `yaml:"min_severity,omitempty" json:"min_severity,omitempty"`
	// Rules, when set, pass only alerts whose rule id matches one of them;
	// a pattern may use * for any run of characters.
	Rules []string `yaml:"rules,omitempty" json:"rules,omitempty"`
	// ExcludeRules drops alerts whose rule id matches one of them.
	ExcludeRules []string `yaml:"exclude_rules,omitempty" json:"exclude_rules,omitempty"`
	// QueueSize bounds the in-memory queue in front of the output
	// (default 1024 alerts).
	QueueSize int `yaml:"queue_size,omitempty" json:"queue_size,omitempty"`
	// BlockTimeout is how long Write waits for room in a full queue of an
	// output without a spool (stdout, file) before dropping the alert
	// (default 100ms).
	BlockTimeout Duration `yaml:"block_timeout,omitempty" json:"block_timeout,omitempty"`

	// Path is the file of a file output.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// MaxSize rotates the file when the next alert would pass it
	// (default 100MiB).
	MaxSize ByteSize `yaml:"max_size,omitempty" json:"max_size,omitempty"`
	// MaxAge rotates the file when it has been written to for that long
	// since kanon opened or created it; zero disables age rotation.
	MaxAge Duration `yaml:"max_age,omitempty" json:"max_age,omitempty"`
	// MaxBackups is how many rotated files are kept (default 5).
	MaxBackups int `yaml:"max_backups,omitempty" json:"max_backups,omitempty"`

	// URL is the receiver: a webhook's URL, Slack's incoming-webhook URL,
	// the base URL of Elasticsearch or OpenSearch (/_bulk is added),
	// Splunk's HEC (/services/collector/event is added), Alertmanager
	// (/api/v2/alerts is added) or Loki (/loki/api/v1/push is added) —
	// a URL whose path already ends in that endpoint is used as it is —
	// or the NATS servers (nats://HOST:PORT, several separated by commas).
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Headers are sent with every request of an HTTP output (values may
	// be env:NAME or file:PATH).
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Token authenticates to the receiver: Splunk's HEC token
	// ("Authorization: Splunk TOKEN", required), an Elasticsearch or
	// OpenSearch API key ("Authorization: ApiKey TOKEN", the encoded key),
	// a bearer token for webhook, Alertmanager and Loki, or a NATS token.
	// It must be env:NAME or file:PATH.
	Token string `yaml:"token,omitempty" json:"token,omitempty"`
	// Username and Password authenticate with HTTP basic authentication
	// (webhook, Elasticsearch, OpenSearch, Alertmanager, Loki), NATS user
	// and password, or Kafka SASL (with SASL). Password must be env:NAME
	// or file:PATH.
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// Timeout bounds each delivery (default 10s).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// CAFile is a PEM bundle of the CAs that sign the receiver's
	// certificate; empty uses the system roots.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// InsecureSkipVerify disables verification of the receiver's
	// certificate (tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
	// TLS connects with TLS (syslog, Kafka, NATS; HTTP outputs and NATS
	// take it from the URL's scheme, https:// or tls://).
	TLS bool `yaml:"tls,omitempty" json:"tls,omitempty"`
	// SpoolDir holds the alerts not yet delivered; it defaults to
	// Options.SpoolRoot/<name>. One sink at a time may use a directory.
	SpoolDir string `yaml:"spool_dir,omitempty" json:"spool_dir,omitempty"`
	// SpoolMaxSize bounds the spool (default 256MiB); alerts that do not
	// fit are dropped and counted.
	SpoolMaxSize ByteSize `yaml:"spool_max_size,omitempty" json:"spool_max_size,omitempty"`
	// MinBackoff and MaxBackoff bound the wait between retries
	// (defaults 500ms and 1m); the wait doubles per failed attempt, with
	// jitter.
	MinBackoff Duration `yaml:"min_backoff,omitempty" json:"min_backoff,omitempty"`
	MaxBackoff Duration `yaml:"max_backoff,omitempty" json:"max_backoff,omitempty"`
	// BatchSize bounds the alerts sent in one request or produce call
	// (default 100) of the outputs that batch: Elasticsearch, OpenSearch,
	// Splunk, Alertmanager, Loki, syslog, Kafka, NATS.
	BatchSize int `yaml:"batch_size,omitempty" json:"batch_size,omitempty"`

	// Index is the Elasticsearch or OpenSearch index or data stream
	// (default logs-kanon.alerts-default for Elasticsearch, kanon-alerts
	// for OpenSearch), or the Splunk index (default: the token's).
	Index string `yaml:"index,omitempty" json:"index,omitempty"`
	// Source and Sourcetype are the Splunk event's source and sourcetype
	// (defaults kanon and kanon:alert).
	Source     string `yaml:"source,omitempty" json:"source,omitempty"`
	Sourcetype string `yaml:"sourcetype,omitempty" json:"sourcetype,omitempty"`
	// Hostname is the host of a Splunk event and the HOSTNAME of a syslog
	// message (default: the machine's host name).
	Hostname string `yaml:"hostname,omitempty" json:"hostname,omitempty"`
	// Labels are added to the labels of Loki streams and Alertmanager
	// alerts (e.g. env: prod).
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
	// ResolveAfter is how long after its delivery Alertmanager keeps an
	// alert firing (endsAt; default 1h); delivering it again (a dedup
	// group's update) extends it.
	ResolveAfter Duration `yaml:"resolve_after,omitempty" json:"resolve_after,omitempty"`
	// GeneratorURL is sent as the Alertmanager alerts' generatorURL.
	GeneratorURL string `yaml:"generator_url,omitempty" json:"generator_url,omitempty"`

	// Addr is the syslog receiver, HOST:PORT.
	Addr string `yaml:"addr,omitempty" json:"addr,omitempty"`
	// Facility is the syslog facility (kern, user, ..., auth, authpriv,
	// ..., local0 to local7; default auth).
	Facility string `yaml:"facility,omitempty" json:"facility,omitempty"`
	// AppName is the syslog APP-NAME (default kanon).
	AppName string `yaml:"app_name,omitempty" json:"app_name,omitempty"`

	// Brokers are the Kafka seed brokers, HOST:PORT.
	Brokers []string `yaml:"brokers,omitempty" json:"brokers,omitempty"`
	// Topic is the Kafka topic alerts are produced to.
	Topic string `yaml:"topic,omitempty" json:"topic,omitempty"`
	// SASL is the Kafka SASL mechanism: plain, scram-sha-256 or
	// scram-sha-512 (with Username and Password); empty: none.
	SASL string `yaml:"sasl,omitempty" json:"sasl,omitempty"`

	// Subject is the NATS subject alerts are published to; a JetStream
	// stream must capture it.
	Subject string `yaml:"subject,omitempty" json:"subject,omitempty"`
}

// label names the output in error messages.
func (c *OutputConfig) label(i int) string {
	if c.Name != "" {
		return fmt.Sprintf("output %d (%q)", i+1, c.Name)
	}
	if c.Type != "" {
		return fmt.Sprintf("output %d (%s)", i+1, c.Type)
	}
	return fmt.Sprintf("output %d", i+1)
}

// Validate checks the configuration without touching the file system, the
// environment or the network (values that name a secret are resolved when
// the output opens). It returns every problem found, each naming the
// field.
func (c *OutputConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	known := slices.Contains(outputTypes, c.Type)
	switch {
	case c.Type == "":
		bad("type", "missing; want one of %s", strings.Join(outputTypes, ", "))
	case !known:
		bad("type", "%q is not one of %s", c.Type, strings.Join(outputTypes, ", "))
	}
	if c.MinSeverity != "" && severityRank(c.MinSeverity) < 0 {
		bad("min_severity", "%q is not one of %s", c.MinSeverity, strings.Join(severities, ", "))
	}
	for i, p := range c.Rules {
		if strings.TrimSpace(p) == "" {
			bad(fmt.Sprintf("rules[%d]", i), "empty pattern")
		}
	}
	for i, p := range c.ExcludeRules {
		if strings.TrimSpace(p) == "" {
			bad(fmt.Sprintf("exclude_rules[%d]", i), "empty pattern")
		}
	}
	if c.QueueSize < 0 {
		bad("queue_size", "%d is negative", c.QueueSize)
	}
	if c.BlockTimeout < 0 {
		bad("block_timeout", "%s is negative", c.BlockTimeout)
	}
	only := func(field string, set bool, types ...string) {
		if !set || !known || slices.Contains(types, c.Type) {
			return
		}
		bad(field, "not used by a %s output", c.Type)
	}
	only("path", c.Path != "", TypeFile)
	only("max_size", c.MaxSize != 0, TypeFile)
	only("max_age", c.MaxAge != 0, TypeFile)
	only("max_backups", c.MaxBackups != 0, TypeFile)
	only("block_timeout", c.BlockTimeout != 0, TypeStdout, TypeFile)
	only("url", c.URL != "", append(slices.Clone(httpTypes), TypeNATS)...)
	only("headers", len(c.Headers) > 0, httpTypes...)
	only("token", c.Token != "", TypeWebhook, TypeElasticsearch, TypeOpenSearch, TypeSplunk, TypeAlertmanager, TypeLoki, TypeNATS)
	only("username", c.Username != "", TypeWebhook, TypeElasticsearch, TypeOpenSearch, TypeAlertmanager, TypeLoki, TypeNATS, TypeKafka)
	only("password", c.Password != "", TypeWebhook, TypeElasticsearch, TypeOpenSearch, TypeAlertmanager, TypeLoki, TypeNATS, TypeKafka)
	only("timeout", c.Timeout != 0, networkTypes...)
	only("ca_file", c.CAFile != "", networkTypes...)
	only("insecure_skip_verify", c.InsecureSkipVerify, networkTypes...)
	only("tls", c.TLS, TypeSyslog, TypeKafka, TypeNATS)
	only("spool_dir", c.SpoolDir != "", networkTypes...)
	only("spool_max_size", c.SpoolMaxSize != 0, networkTypes...)
	only("min_backoff", c.MinBackoff != 0, networkTypes...)
	only("max_backoff", c.MaxBackoff != 0, networkTypes...)
	only("batch_size", c.BatchSize != 0, batchTypes...)
	only("index", c.Index != "", TypeElasticsearch, TypeOpenSearch, TypeSplunk)
	only("source", c.Source != "", TypeSplunk)
	only("sourcetype", c.Sourcetype != "", TypeSplunk)
	only("hostname", c.Hostname != "", TypeSplunk, TypeSyslog)
	only("labels", len(c.Labels) > 0, TypeLoki, TypeAlertmanager)
	only("resolve_after", c.ResolveAfter != 0, TypeAlertmanager)
	only("generator_url", c.GeneratorURL != "", TypeAlertmanager)
	only("addr", c.Addr != "", TypeSyslog)
	only("facility", c.Facility != "", TypeSyslog)
	only("app_name", c.AppName != "", TypeSyslog)
	only("brokers", len(c.Brokers) > 0, TypeKafka)
	only("topic", c.Topic != "", TypeKafka)
	only("sasl", c.SASL != "", TypeKafka)
	only("subject", c.Subject != "", TypeNATS)

	if c.Type == TypeFile {
		if c.Path == "" {
			bad("path", "missing; a file output needs a path")
		}
		if c.MaxSize < 0 {
			bad("max_size", "%s is negative", c.MaxSize)
		}
		if c.MaxAge < 0 {
			bad("max_age", "%s is negative", c.MaxAge)
		}
		if c.MaxBackups < 0 {
			bad("max_backups", "%d is negative", c.MaxBackups)
		}
	}
	if !slices.Contains(networkTypes, c.Type) {
		return errors.Join(errs...)
	}
	if slices.Contains(httpTypes, c.Type) {
		checkHTTPURL(bad, c.Type, c.URL)
		for k := range c.Headers {
			if k == "" || strings.ContainsAny(k, " \t\r\n:") {
				bad("headers", "%q is not a valid header name", k)
			}
		}
	}
	for _, s := range []struct{ field, v string }{{"token", c.Token}, {"password", c.Password}} {
		if s.v != "" && !IsSecretRef(s.v) {
			bad(s.field, "write env:NAME or file:PATH: kanon takes no secret written in its configuration")
		}
	}
	if c.Password != "" && c.Username == "" {
		bad("username", "missing; a password needs a username")
	}
	if c.Username != "" && c.Password == "" {
		bad("password", "missing; a username needs a password")
	}
	if c.Token != "" && c.Password != "" {
		bad("token", "give a token or a username and password, not both")
	}
	if c.Timeout < 0 {
		bad("timeout", "%s is negative", c.Timeout)
	}
	if c.SpoolMaxSize < 0 {
		bad("spool_max_size", "%s is negative", c.SpoolMaxSize)
	}
	if c.MinBackoff < 0 || c.MaxBackoff < 0 {
		bad("min_backoff", "backoffs must not be negative")
	} else if c.MaxBackoff != 0 && c.MinBackoff > c.MaxBackoff {
		bad("min_backoff", "%s is above max_backoff %s", c.MinBackoff, c.MaxBackoff)
	}
	if c.BatchSize < 0 {
		bad("batch_size", "%d is negative", c.BatchSize)
	}
	switch c.Type {
	case TypeElasticsearch, TypeOpenSearch:
		if c.Index != "" {
			if err := checkIndexName(c.Index); err != nil {
				bad("index", "%v", err)
			}
		}
	case TypeSplunk:
		if c.Token == "" {
			bad("token", "missing; a splunk output needs the HEC token (env:NAME or file:PATH)")
		}
	case TypeAlertmanager:
		checkLabels(bad, c.Labels, alertmanagerLabels)
		if c.ResolveAfter < 0 {
			bad("resolve_after", "%s is negative", c.ResolveAfter)
		}
		if c.GeneratorURL != "" {
			if u, err := url.Parse(c.GeneratorURL); err != nil || !u.IsAbs() {
				bad("generator_url", "%q is not an absolute URL", c.GeneratorURL)
			}
		}
	case TypeLoki:
		checkLabels(bad, c.Labels, lokiLabels)
	case TypeSyslog:
		if c.Addr == "" {
			bad("addr", "missing; a syslog output needs the receiver's HOST:PORT")
		} else if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			bad("addr", "%q is not HOST:PORT", c.Addr)
		}
		if c.Facility != "" && syslogFacility(c.Facility) < 0 {
			bad("facility", "%q is not a syslog facility (%s, local0 ... local7)", c.Facility, strings.Join(syslogFacilities, ", "))
		}
		if c.AppName != "" && !syslogToken(c.AppName, 48) {
			bad("app_name", "%q is not 1 to 48 printable ASCII characters without spaces", c.AppName)
		}
		if c.Hostname != "" && !syslogToken(c.Hostname, 255) {
			bad("hostname", "%q is not 1 to 255 printable ASCII characters without spaces", c.Hostname)
		}
	case TypeKafka:
		if len(c.Brokers) == 0 {
			bad("brokers", "missing; a kafka output needs its seed brokers (HOST:PORT)")
		}
		for i, b := range c.Brokers {
			if err := kafkaopt.ValidBroker(b); err != nil {
				bad(fmt.Sprintf("brokers[%d]", i), "%q is not HOST:PORT", b)
			}
		}
		if c.Topic == "" {
			bad("topic", "missing; a kafka output needs a topic")
		}
		switch err := kafkaopt.ValidSASL(c.SASL); {
		case err != nil:
			bad("sasl", "%v", err)
		case c.SASL == "" && c.Username != "":
			bad("sasl", "missing; a username and password need a SASL mechanism (%s)", kafkaopt.Mechanisms)
		case c.SASL != "" && c.Username == "":
			bad("username", "missing; SASL needs a username and password")
		}
	case TypeNATS:
		if c.URL == "" {
			bad("url", "missing; a nats output needs the servers' URL (nats://HOST:PORT)")
		} else if !IsSecretRef(c.URL) {
			for _, s := range strings.Split(c.URL, ",") {
				if u, err := url.Parse(strings.TrimSpace(s)); err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls") {
					bad("url", "%q is not a nats:// or tls:// URL with a host", s)
				}
			}
		}
		if c.Subject == "" {
			bad("subject", "missing; a nats output needs a subject")
		} else if strings.ContainsAny(c.Subject, " \t\r\n*>") || strings.HasPrefix(c.Subject, ".") || strings.HasSuffix(c.Subject, ".") || strings.Contains(c.Subject, "..") {
			bad("subject", "%q is not a subject to publish to (no spaces, wildcards or empty tokens)", c.Subject)
		}
	}
	return errors.Join(errs...)
}

// checkHTTPURL checks the url of an HTTP output (a URL naming a secret
// is checked when the output opens).
func checkHTTPURL(bad func(string, string, ...any), typ, raw string) {
	switch {
	case raw == "":
		bad("url", "missing; a %s output needs a url", typ)
	case IsSecretRef(raw):
	default:
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			bad("url", "cannot parse %q: %v", raw, err)
		case u.Scheme != "http" && u.Scheme != "https":
			bad("url", "%q: scheme must be http or https", raw)
		case u.Host == "":
			bad("url", "%q has no host", raw)
		}
	}
}

// checkLabels checks extra labels: Prometheus label names, not one of
// the labels the output sets itself.
func checkLabels(bad func(string, string, ...any), labels map[string]string, reserved []string) {
	for k := range labels {
		switch {
		case !labelName(k):
			bad("labels", "%q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)", k)
		case slices.Contains(reserved, k):
			bad("labels", "%q is set by kanon (%s)", k, strings.Join(reserved, ", "))
		}
	}
}

func labelName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// checkIndexName applies Elasticsearch's rules for index names.
func checkIndexName(s string) error {
	switch {
	case s == "." || s == "..":
		return fmt.Errorf("%q is not an index name", s)
	case len(s) > 255:
		return fmt.Errorf("%q is longer than 255 bytes", s)
	case strings.ToLower(s) != s:
		return fmt.Errorf("%q: index names are lower case", s)
	case strings.ContainsAny(s, "\\/*?\"<>| ,#:"):
		return fmt.Errorf("%q holds a character index names cannot (\\ / * ? \" < > | space , # :)", s)
	case strings.HasPrefix(s, "-") || strings.HasPrefix(s, "_") || strings.HasPrefix(s, "+"):
		return fmt.Errorf("%q: an index name cannot start with -, _ or +", s)
	}
	return nil
}

// ValidateOutputs validates each configuration and the set (names must be
// unique, spool directories not shared). Errors name the output by its
// position and name.
func ValidateOutputs(cfgs []OutputConfig) error {
	if len(cfgs) == 0 {
		return errors.New("no outputs configured")
	}
	var errs []error
	names := map[string]int{}
	spools := map[string]int{}
	for i := range cfgs {
		c := &cfgs[i]
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.label(i), err))
		}
		if c.Name != "" {
			if j, ok := names[c.Name]; ok {
				errs = append(errs, fmt.Errorf("%s: name: %q is also the name of output %d", c.label(i), c.Name, j+1))
			}
			names[c.Name] = i
		}
		if c.SpoolDir != "" {
			if j, ok := spools[c.SpoolDir]; ok {
				errs = append(errs, fmt.Errorf("%s: spool_dir: %q is also the spool of output %d", c.label(i), c.SpoolDir, j+1))
			}
			spools[c.SpoolDir] = i
		}
	}
	return errors.Join(errs...)
}

// Duration is a time.Duration written as a string ("1m30s") in YAML and
// JSON.
type Duration time.Duration

// String returns the duration as time.Duration prints it.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as "1m30s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a duration such as "500ms" or "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("cannot parse duration %q: want a number with a unit, e.g. 500ms, 10s, 1m", b)
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size in bytes written as a count ("1048576") or with a
// unit: B, KB, MB, GB (powers of 1000), KiB, MiB, GiB (powers of 1024).
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

// String returns the size in the largest binary unit that divides it.
func (s ByteSize) String() string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.mult == 0 {
			return strconv.FormatInt(int64(s)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// MarshalText writes the size as String does.
func (s ByteSize) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a size such as "64MiB", "10MB" or "4096".
func (s *ByteSize) UnmarshalText(b []byte) error {
	t := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return fmt.Errorf("cannot parse size %q: want a byte count or a number with KiB, MiB, GiB, KB, MB or GB", b)
	}
	*s = ByteSize(n * mult)
	return nil
}

// Set implements pflag.Value (a size flag: --max-body-bytes 32MiB).
func (s *ByteSize) Set(v string) error { return s.UnmarshalText([]byte(v)) }

// Type implements pflag.Value.
func (s *ByteSize) Type() string { return "size" }

// SplunkTokenEnv is the environment variable that holds the HEC token of
// a Splunk output given as -o splunk:URL.
const SplunkTokenEnv = "SPLUNK_HEC_TOKEN"

// OutputFlagForms lists the forms of an -o flag, for help texts.
const OutputFlagForms = "stdout, file:PATH, webhook:URL, slack:URL, elasticsearch:URL, opensearch:URL, " +
	"splunk:URL, alertmanager:URL, loki:URL, syslog://HOST:PORT, syslog+tls://HOST:PORT, " +
	"kafka:BROKER[,BROKER]/TOPIC, nats://HOST:PORT/SUBJECT"

// ParseOutputFlag turns the value of an -o flag into an output
// configuration (NewOutputs validates it):
//
//   - stdout; file:PATH;
//   - webhook:URL, slack:URL, elasticsearch:URL, opensearch:URL,
//     alertmanager:URL, loki:URL (URL may be env:NAME or file:PATH, so
//     that a secret URL such as Slack's stays off the command line);
//   - splunk:URL, with the HEC token in the environment variable
//     SPLUNK_HEC_TOKEN;
//   - syslog://HOST:PORT (TCP) and syslog+tls://HOST:PORT (TLS); also
//     syslog:HOST:PORT;
//   - kafka:BROKER[,BROKER...]/TOPIC; also kafka://...;
//   - nats://HOST:PORT[,HOST:PORT...]/SUBJECT and tls://... for NATS
//     with TLS; also nats:HOST:PORT/SUBJECT.
//
// Other settings (credentials, index, batch size, ...) need the
// configuration file's outputs key.
func ParseOutputFlag(o string) (OutputConfig, error) {
	typ, arg, _ := strings.Cut(o, ":")
	oc := OutputConfig{Type: typ}
	want := func(form string) error {
		return fmt.Errorf("--output %q: want %s", o, form)
	}
	switch typ {
	case TypeStdout:
		if arg != "" {
			return oc, want("stdout")
		}
	case TypeFile:
		oc.Path = arg
	case TypeWebhook, TypeSlack, TypeElasticsearch, TypeOpenSearch, TypeAlertmanager, TypeLoki:
		oc.URL = arg
	case TypeSplunk:
		oc.URL = arg
		oc.Token = secretEnvPrefix + SplunkTokenEnv
	case TypeSyslog, TypeSyslog + "+tls":
		addr := strings.TrimPrefix(arg, "//")
		if typ != TypeSyslog && addr == arg {
			return oc, want("syslog+tls://HOST:PORT")
		}
		oc.Type, oc.Addr, oc.TLS = TypeSyslog, addr, typ != TypeSyslog
		if addr == "" || strings.Contains(addr, "/") {
			return oc, want("syslog://HOST:PORT or syslog+tls://HOST:PORT")
		}
	case TypeKafka:
		brokers, topic, ok := strings.Cut(strings.TrimPrefix(arg, "//"), "/")
		if !ok || brokers == "" || topic == "" {
			return oc, want("kafka:BROKER[,BROKER]/TOPIC")
		}
		oc.Topic = topic
		for _, b := range strings.Split(brokers, ",") {
			oc.Brokers = append(oc.Brokers, strings.TrimSpace(b))
		}
	case TypeNATS, "tls":
		servers, subject, ok := strings.Cut(strings.TrimPrefix(arg, "//"), "/")
		if !ok || servers == "" || subject == "" {
			return oc, want("nats://HOST:PORT/SUBJECT")
		}
		scheme := typ
		oc.Type, oc.Subject = TypeNATS, subject
		var urls []string
		for _, s := range strings.Split(servers, ",") {
			urls = append(urls, scheme+"://"+strings.TrimSpace(s))
		}
		oc.URL = strings.Join(urls, ",")
	default:
		return oc, fmt.Errorf("--output %q: want one of %s", o, OutputFlagForms)
	}
	return oc, nil
}
