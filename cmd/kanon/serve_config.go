package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/server"
	"github.com/kanon-dev/kanon/internal/state/open"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// The parts of serve's configuration, named for embedding.
type (
	// Webhook is the webhook's part.
	Webhook = server.Settings
	// Driver is the driver's part: inputs and how they are judged.
	Driver = run.Settings
)

// serveConfig is the configuration of kanon serve: the YAML file's keys,
// and a flag for each. Each part belongs to the package that uses it,
// which registers its flags and validates it; this file only puts them
// together.
type serveConfig struct {
	Webhook      `yaml:",inline"`
	Driver       `yaml:",inline"`
	Rules        serveRules           `yaml:"rules"`
	StateDir     string               `yaml:"state_dir"`
	Store        string               `yaml:"store"`
	NoState      bool                 `yaml:"no_state"`
	Outputs      []alert.OutputConfig `yaml:"outputs"`
	SpoolDir     string               `yaml:"spool_dir"`
	ShutdownWait time.Duration        `yaml:"shutdown_timeout"`
	Log          serveLog             `yaml:"log"`
}

type serveRules struct {
	Dirs      []string `yaml:"dirs"`
	IDs       []string `yaml:"ids"`
	NoBuiltin bool     `yaml:"no_builtin"`
}

type serveLog struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

func newServeConfig() *serveConfig {
	return &serveConfig{
		Webhook: server.DefaultSettings(), Driver: run.DefaultSettings(), StateDir: defaultStateDir(),
		ShutdownWait: 30 * time.Second, Log: serveLog{Format: "text", Level: "info"},
	}
}

// registerFlags registers a flag for every key, bound to c.
func (c *serveConfig) registerFlags(fs *pflag.FlagSet) {
	c.Webhook.RegisterFlags(fs)
	c.Driver.RegisterFlags(fs, registry().Names())
	fs.StringArrayVar(&c.Rules.Dirs, "rules", c.Rules.Dirs, "load rule files from `DIR` too (repeatable) (key rules.dirs)")
	fs.StringArrayVar(&c.Rules.IDs, "rule", c.Rules.IDs, "run only the rule with this `ID` (repeatable) (key rules.ids)")
	fs.BoolVar(&c.Rules.NoBuiltin, "no-builtin", c.Rules.NoBuiltin, "do not load the built-in rule pack (key rules.no_builtin)")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "directory of the state store (key state_dir)")
	fs.StringVar(&c.Store, "store", c.Store, storeFlagUsage+" (key store)")
	fs.BoolVar(&c.NoState, "no-state", c.NoState, "keep state in memory only (key no_state)")
	fs.StringVar(&c.SpoolDir, "spool-dir", c.SpoolDir, "parent directory of the spools of the outputs that deliver over the network (default STATE_DIR/spool) (key spool_dir)")
	fs.DurationVar(&c.ShutdownWait, "shutdown-timeout", c.ShutdownWait, "how long SIGTERM waits for in-flight batches and outputs (key shutdown_timeout)")
	fs.StringVar(&c.Log.Format, "log-format", c.Log.Format, "log format on stderr: text or json (key log.format)")
	fs.StringVar(&c.Log.Level, "log-level", c.Log.Level, "log level: debug, info, warn or error (key log.level)")
}

// loadServeConfig reads the configuration file (if any) over the defaults
// and applies the flags given on the command line (set in given, whose
// flags registerFlags bound to a configuration of their own).
func loadServeConfig(path string, given *pflag.FlagSet, outputs []string) (*serveConfig, error) {
	cfg := newServeConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("cannot read the configuration: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
			return nil, yamlError(path, err)
		}
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	cfg.registerFlags(fs)
	var errs []error
	given.Visit(func(f *pflag.Flag) {
		to := fs.Lookup(f.Name)
		if to == nil {
			return // a flag of the command, not of the configuration
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			errs = append(errs, to.Value.(pflag.SliceValue).Replace(sv.GetSlice()))
		} else {
			errs = append(errs, to.Value.Set(f.Value.String()))
		}
	})
	if given.Changed("output") {
		cfg.Outputs = nil
		for _, o := range outputs {
			oc, err := alert.ParseOutputFlag(o)
			errs = append(errs, err)
			cfg.Outputs = append(cfg.Outputs, oc)
		}
	}
	if len(cfg.Outputs) == 0 {
		cfg.Outputs = []alert.OutputConfig{{Type: alert.TypeStdout}}
	}
	return cfg, errors.Join(errs...)
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// yamlError rewrites yaml.v3's errors ("line N: ...") as path:N: ..., one
// per line.
func yamlError(path string, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs []error
	for _, m := range msgs {
		if sm := yamlLineRe.FindStringSubmatch(m); sm != nil {
			errs = append(errs, fmt.Errorf("%s:%s: %s", path, sm[1], m[len(sm[0]):]))
		} else {
			errs = append(errs, fmt.Errorf("%s: %s", path, strings.TrimPrefix(m, "yaml: ")))
		}
	}
	return errors.Join(errs...)
}

// validate checks the configuration without opening anything: each part
// validates itself, and this checks what spans parts.
func (c *serveConfig) validate() error {
	errs := []error{c.Webhook.Validate(), c.Driver.Validate(registry()), validateCloudSources(c.SourceURLs), c.validateCloudFormat()}
	if !c.Webhook.Enabled() && len(c.Inputs) == 0 && len(c.SourceURLs) == 0 {
		errs = append(errs, errors.New("no input: set listen, insecure_listen, inputs or sources"))
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log.format: %q is not text or json", c.Log.Format))
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Log.Level)); err != nil {
		errs = append(errs, fmt.Errorf("log.level: %q is not debug, info, warn or error", c.Log.Level))
	}
	if c.ShutdownWait <= 0 {
		errs = append(errs, errors.New("shutdown_timeout: must be positive"))
	}
	if err := alert.ValidateOutputs(c.Outputs); err != nil {
		errs = append(errs, fmt.Errorf("outputs: %v", err))
	}
	if err := open.Validate(c.Store); err != nil {
		errs = append(errs, fmt.Errorf("store: %v", err))
	}
	return errors.Join(errs...)
}

func (c *serveConfig) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.Log.Level))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// replica is run.Config.Replica: the configured name, or on a shared
// (redis) store the host name.
func (c *serveConfig) replica() string {
	if c.Replica != "" || !strings.HasPrefix(c.Store, "redis") {
		return c.Replica
	}
	h, _ := os.Hostname()
	return h
}

func (c *serveConfig) ruleFlags() ruleFlags {
	return ruleFlags{dirs: c.Rules.Dirs, ids: c.Rules.IDs, noBuiltin: c.Rules.NoBuiltin}
}

// checkServe is --check: everything is loaded as serve would, nothing is
// opened for writing.
func checkServe(io *streams, c *serveConfig) error {
	var errs []error
	if err := c.validate(); err != nil {
		errs = append(errs, err)
	}
	rf := c.ruleFlags()
	compiled, err := rf.load()
	if err != nil {
		errs = append(errs, fmt.Errorf("rules: %w", err))
	}
	// Without the certificate's files validate has said so: loading it
	// would say it again.
	if c.Listen == "" || c.TLS.CertFile != "" && c.TLS.KeyFile != "" {
		if _, err := c.Certificate(); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := c.Tokens(); err != nil {
		errs = append(errs, err)
	}
	for _, in := range c.Inputs {
		if in == "-" {
			continue
		}
		if st, err := os.Stat(in); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("inputs: %w", err))
		} else if err == nil && !st.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("inputs: %s is not a regular file", in))
		}
	}
	if err := onceEach(errs); err != nil {
		return &exitError{code: 1, err: err}
	}
	fmt.Fprintf(io.out, "configuration OK: %d rules", len(compiled))
	if c.Listen != "" {
		fmt.Fprintf(io.out, ", HTTPS webhook on %s", c.Listen)
	}
	if c.InsecureListen != "" {
		fmt.Fprintf(io.out, ", plain-HTTP webhook on %s", c.InsecureListen)
	}
	if len(c.Inputs) > 0 {
		fmt.Fprintf(io.out, ", inputs %s", strings.Join(c.Inputs, ", "))
	}
	fmt.Fprintf(io.out, ", %d outputs\n", len(c.Outputs))
	return nil
}

// checkErrors are --check's errors, each rendered (with its source line
// and caret when it has a position) and each once.
type checkErrors []string

func (e checkErrors) Error() string { return strings.Join(e, "\n") }

// onceEach flattens errs (errors.Join trees; a positioned error list
// stays whole), renders each error with pos.Pretty and drops repeats, so
// that every problem is printed once and none hides another (a list of
// rule errors would otherwise be printed alone). It returns nil for no
// error.
func onceEach(errs []error) error {
	var out checkErrors
	seen := map[string]bool{}
	var walk func(err error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if _, list := err.(*pos.ErrorList); !list {
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					walk(e)
				}
				return
			}
		}
		if msg := pos.Pretty(err); !seen[msg] {
			seen[msg] = true
			out = append(out, msg)
		}
	}
	for _, err := range errs {
		walk(err)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
