package alert

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Output types accepted in OutputConfig.Type.
const (
	TypeStdout  = "stdout"
	TypeFile    = "file"
	TypeWebhook = "webhook"
	TypeSlack   = "slack"
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
	defaultRecentIDs     = 1 << 16
	maxResponseBodyBytes = 64 << 10
)

// OutputConfig configures one output of NewOutputs. It decodes from YAML
// (gopkg.in/yaml.v3 and sigs.k8s.io/yaml) and JSON; durations are strings
// such as "10s" and sizes are strings such as "100MiB" or byte counts.
type OutputConfig struct {
	// Name identifies the output in stats and errors; it defaults to the
	// type, followed by "-2", "-3", ... when a type is used more than once.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Type is stdout, file, webhook or slack.
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

	// URL is the receiver of a webhook output or Slack's incoming-webhook
	// URL.
	URL string `yaml:"url,omitempty" json:"url,omitempty"`
	// Headers are sent with every request (e.g. Authorization).
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Timeout bounds each request (default 10s).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// CAFile is a PEM bundle of the CAs that sign the receiver's
	// certificate; empty uses the system roots.
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// InsecureSkipVerify disables verification of the receiver's
	// certificate (tests only).
	InsecureSkipVerify bool `yaml:"insecure_skip_verify,omitempty" json:"insecure_skip_verify,omitempty"`
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

// Validate checks the configuration without touching the file system or
// the network. It returns every problem found, each naming the field.
func (c *OutputConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	switch c.Type {
	case TypeStdout, TypeFile, TypeWebhook, TypeSlack:
	case "":
		bad("type", "missing; want one of stdout, file, webhook, slack")
	default:
		bad("type", "%q is not one of stdout, file, webhook, slack", c.Type)
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
		if !set || c.Type == "" {
			return
		}
		for _, t := range types {
			if c.Type == t {
				return
			}
		}
		bad(field, "not used by a %s output", c.Type)
	}
	only("path", c.Path != "", TypeFile)
	only("max_size", c.MaxSize != 0, TypeFile)
	only("max_age", c.MaxAge != 0, TypeFile)
	only("max_backups", c.MaxBackups != 0, TypeFile)
	only("url", c.URL != "", TypeWebhook, TypeSlack)
	only("headers", len(c.Headers) > 0, TypeWebhook, TypeSlack)
	only("timeout", c.Timeout != 0, TypeWebhook, TypeSlack)
	only("ca_file", c.CAFile != "", TypeWebhook, TypeSlack)
	only("insecure_skip_verify", c.InsecureSkipVerify, TypeWebhook, TypeSlack)
	only("spool_dir", c.SpoolDir != "", TypeWebhook, TypeSlack)
	only("spool_max_size", c.SpoolMaxSize != 0, TypeWebhook, TypeSlack)
	only("min_backoff", c.MinBackoff != 0, TypeWebhook, TypeSlack)
	only("max_backoff", c.MaxBackoff != 0, TypeWebhook, TypeSlack)
	only("block_timeout", c.BlockTimeout != 0, TypeStdout, TypeFile)

	switch c.Type {
	case TypeFile:
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
	case TypeWebhook, TypeSlack:
		if c.URL == "" {
			bad("url", "missing; a %s output needs a url", c.Type)
		} else if u, err := url.Parse(c.URL); err != nil {
			bad("url", "cannot parse %q: %v", c.URL, err)
		} else if u.Scheme != "http" && u.Scheme != "https" {
			bad("url", "%q: scheme must be http or https", c.URL)
		} else if u.Host == "" {
			bad("url", "%q has no host", c.URL)
		}
		for k := range c.Headers {
			if k == "" || strings.ContainsAny(k, " \t\r\n:") {
				bad("headers", "%q is not a valid header name", k)
			}
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
	}
	return errors.Join(errs...)
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

// ParseOutputFlag turns the value of an -o flag (stdout, file:PATH,
// webhook:URL, slack:URL) into an output configuration.
func ParseOutputFlag(o string) (OutputConfig, error) {
	typ, arg, _ := strings.Cut(o, ":")
	oc := OutputConfig{Type: typ}
	switch typ {
	case TypeStdout:
	case TypeFile:
		oc.Path = arg
	case TypeWebhook, TypeSlack:
		oc.URL = arg
	default:
		return oc, fmt.Errorf("--output %q: want stdout, file:PATH, webhook:URL or slack:URL", o)
	}
	return oc, nil
}
