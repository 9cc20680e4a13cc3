package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/server"
	"github.com/kanon-dev/kanon/internal/tail"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

func init() { extraCommands = append(extraCommands, newServeCmd) }

// serveConfig is the configuration of kanon serve: the YAML file's keys,
// and a flag for each.
type serveConfig struct {
	Listen         string               `yaml:"listen"`
	InsecureListen string               `yaml:"insecure_listen"`
	TLS            serveTLS             `yaml:"tls"`
	TokenFiles     []string             `yaml:"token_files"`
	Cluster        string               `yaml:"cluster"`
	Inputs         []string             `yaml:"inputs"`
	Format         string               `yaml:"format"`
	TailFrom       string               `yaml:"tail_from"`
	TailPoll       time.Duration        `yaml:"tail_poll"`
	Rules          serveRules           `yaml:"rules"`
	StateDir       string               `yaml:"state_dir"`
	NoState        bool                 `yaml:"no_state"`
	Lateness       time.Duration        `yaml:"lateness"`
	LearnOnly      bool                 `yaml:"learn_only"`
	GroupUpdates   bool                 `yaml:"group_updates"`
	MaxRecordBytes alert.ByteSize       `yaml:"max_record_bytes"`
	MaxBodyBytes   alert.ByteSize       `yaml:"max_body_bytes"`
	MaxInFlight    int                  `yaml:"max_in_flight"`
	QueueSize      int                  `yaml:"queue_size"`
	WaitTimeout    time.Duration        `yaml:"wait_timeout"`
	Outputs        []alert.OutputConfig `yaml:"outputs"`
	SpoolDir       string               `yaml:"spool_dir"`
	ShutdownWait   time.Duration        `yaml:"shutdown_timeout"`
	Log            serveLog             `yaml:"log"`
}

type serveTLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
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
		Listen: ":8443", Format: "auto", TailFrom: "start", TailPoll: tail.DefaultPoll,
		StateDir: defaultStateDir(), Lateness: server.DefaultLateness, GroupUpdates: true,
		MaxRecordBytes: alert.ByteSize(ingest.DefaultMaxRecordBytes), MaxBodyBytes: server.DefaultMaxBodyBytes,
		MaxInFlight: server.DefaultMaxInFlight, QueueSize: server.DefaultQueueSize, WaitTimeout: server.DefaultWaitTimeout,
		ShutdownWait: 30 * time.Second, Log: serveLog{Format: "text", Level: "info"},
	}
}

// serveParams are the command's own flags (not configuration).
type serveParams struct {
	configFile string
	check      bool
	outputs    []string
}

// binder registers a flag per configuration key, bound to a configuration
// of its own, and remembers how to copy each flag's value, so that flags
// given on the command line override the configuration file.
type binder struct {
	fs    *pflag.FlagSet
	flags *serveConfig
	copy  map[string]func(dst *serveConfig)
}

func bind[T any](b *binder, name string, field func(*serveConfig) *T, register func(p *T)) {
	register(field(b.flags))
	b.copy[name] = func(dst *serveConfig) { *field(dst) = *field(b.flags) }
}

type byteSizeValue struct{ p *alert.ByteSize }

func (v byteSizeValue) String() string     { return v.p.String() }
func (v byteSizeValue) Set(s string) error { return v.p.UnmarshalText([]byte(s)) }
func (v byteSizeValue) Type() string       { return "size" }

func (b *binder) register() {
	fs := b.fs
	str := func(name, usage string, f func(*serveConfig) *string) {
		bind(b, name, f, func(p *string) { fs.StringVar(p, name, *p, usage) })
	}
	strs := func(name, usage string, f func(*serveConfig) *[]string) {
		bind(b, name, f, func(p *[]string) { fs.StringArrayVar(p, name, *p, usage) })
	}
	boolean := func(name, usage string, f func(*serveConfig) *bool) {
		bind(b, name, f, func(p *bool) { fs.BoolVar(p, name, *p, usage) })
	}
	dur := func(name, usage string, f func(*serveConfig) *time.Duration) {
		bind(b, name, f, func(p *time.Duration) { fs.DurationVar(p, name, *p, usage) })
	}
	integer := func(name, usage string, f func(*serveConfig) *int) {
		bind(b, name, f, func(p *int) { fs.IntVar(p, name, *p, usage) })
	}
	size := func(name, usage string, f func(*serveConfig) *alert.ByteSize) {
		bind(b, name, f, func(p *alert.ByteSize) { fs.Var(byteSizeValue{p}, name, usage) })
	}
	str("listen", "HTTPS `ADDR` of the audit webhook (key listen; empty: none)", func(c *serveConfig) *string { return &c.Listen })
	str("insecure-listen", "plain-HTTP `ADDR` of the webhook, for loopback tests only (key insecure_listen)", func(c *serveConfig) *string { return &c.InsecureListen })
	str("tls-cert", "server certificate `FILE` (PEM, with its chain) (key tls.cert_file)", func(c *serveConfig) *string { return &c.TLS.CertFile })
	str("tls-key", "server private key `FILE` (key tls.key_file)", func(c *serveConfig) *string { return &c.TLS.KeyFile })
	str("client-ca", "CA bundle `FILE` of the client certificates accepted (mutual TLS) (key tls.client_ca_file)", func(c *serveConfig) *string { return &c.TLS.ClientCAFile })
	strs("token-file", "`FILE` holding a bearer token accepted by the webhook (repeatable) (key token_files)", func(c *serveConfig) *[]string { return &c.TokenFiles })
	str("cluster", "cluster `NAME` of events posted to /audit (/audit/NAME names its own) (key cluster)", func(c *serveConfig) *string { return &c.Cluster })
	strs("input", "follow the audit log `PATH` as it is written, or - for standard input (repeatable) (key inputs)", func(c *serveConfig) *[]string { return &c.Inputs })
	str("format", "input format: auto, "+strings.Join(registry().Names(), ", ")+" (key format)", func(c *serveConfig) *string { return &c.Format })
	str("tail-from", "where to start a followed file with no stored position: start or end (key tail_from)", func(c *serveConfig) *string { return &c.TailFrom })
	dur("tail-poll", "how often a followed file is checked at its end (key tail_poll)", func(c *serveConfig) *time.Duration { return &c.TailPoll })
	strs("rules", "load rule files from `DIR` too (repeatable) (key rules.dirs)", func(c *serveConfig) *[]string { return &c.Rules.Dirs })
	strs("rule", "run only the rule with this `ID` (repeatable) (key rules.ids)", func(c *serveConfig) *[]string { return &c.Rules.IDs })
	boolean("no-builtin", "do not load the built-in rule pack (key rules.no_builtin)", func(c *serveConfig) *bool { return &c.Rules.NoBuiltin })
	str("state-dir", "directory of the state store (key state_dir)", func(c *serveConfig) *string { return &c.StateDir })
	boolean("no-state", "keep state in memory only (key no_state)", func(c *serveConfig) *bool { return &c.NoState })
	dur("lateness", "how far behind the newest event time a windowed run still takes events (key lateness)", func(c *serveConfig) *time.Duration { return &c.Lateness })
	boolean("learn-only", "learn new-terms history without alerting (key learn_only)", func(c *serveConfig) *bool { return &c.LearnOnly })
	boolean("group-updates", "deliver the first alert of a dedup group at once and its count when it closes (key group_updates)", func(c *serveConfig) *bool { return &c.GroupUpdates })
	size("max-record-bytes", "size limit of one record (key max_record_bytes)", func(c *serveConfig) *alert.ByteSize { return &c.MaxRecordBytes })
	size("max-body-bytes", "size limit of one webhook request body (key max_body_bytes)", func(c *serveConfig) *alert.ByteSize { return &c.MaxBodyBytes })
	integer("max-in-flight", "webhook requests served at once; more get 429 (key max_in_flight)", func(c *serveConfig) *int { return &c.MaxInFlight })
	integer("queue-size", "batches waiting for the engine; more get 429 (key queue_size)", func(c *serveConfig) *int { return &c.QueueSize })
	dur("wait-timeout", "how long a request waits for its batch to be committed before 503 (key wait_timeout)", func(c *serveConfig) *time.Duration { return &c.WaitTimeout })
	str("spool-dir", "parent directory of the webhook and Slack outputs' spools (default STATE_DIR/spool) (key spool_dir)", func(c *serveConfig) *string { return &c.SpoolDir })
	dur("shutdown-timeout", "how long SIGTERM waits for in-flight batches and outputs (key shutdown_timeout)", func(c *serveConfig) *time.Duration { return &c.ShutdownWait })
	str("log-format", "log format on stderr: text or json (key log.format)", func(c *serveConfig) *string { return &c.Log.Format })
	str("log-level", "log level: debug, info, warn or error (key log.level)", func(c *serveConfig) *string { return &c.Log.Level })
}

func newServeCmd(io *streams) *cobra.Command {
	p := &serveParams{}
	b := &binder{flags: newServeConfig(), copy: map[string]func(*serveConfig){}}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the rules in real time: kube-apiserver's audit webhook, followed audit log files, stdin",
		Long: `Run the rules in real time and deliver the alerts to the outputs.

Inputs: the audit webhook of kube-apiserver (--audit-webhook-config-file
pointing at https://HOST:PORT/audit/CLUSTER), with TLS and client
authentication by certificate (--client-ca) or bearer token (--token-file);
followed audit log files (--input PATH, through rotation, resuming where the
last run stopped); standard input (--input -).

The configuration file (--config, YAML) has a key for every flag; flags
given on the command line override it. --check validates the configuration,
the rules and the certificates, and exits.

Signals: SIGTERM or SIGINT drains the batches in flight, closes the open
windowed runs, flushes the outputs and the state, and exits; SIGHUP reloads
the rules (a rule file with errors is refused and the old rules keep
running) and the TLS certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadServeConfig(p.configFile, b, cmd.Flags())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if err := applyOutputFlags(cfg, p.outputs, cmd.Flags().Changed("output")); err != nil {
				return &exitError{code: 1, err: err}
			}
			if p.check {
				return checkServe(io, cfg)
			}
			return runServe(cmd.Context(), io, cfg)
		},
	}
	fs := cmd.Flags()
	b.fs = fs
	fs.StringVarP(&p.configFile, "config", "c", "", "configuration `FILE` (YAML)")
	fs.BoolVar(&p.check, "check", false, "validate the configuration, rules and certificates, and exit")
	fs.StringArrayVarP(&p.outputs, "output", "o", nil, "alert output: stdout, file:PATH or webhook:URL (repeatable; replaces the key outputs)")
	b.register()
	return cmd
}

// loadServeConfig reads the configuration file (if any) over the defaults
// and applies the flags given on the command line.
func loadServeConfig(path string, b *binder, fs *pflag.FlagSet) (*serveConfig, error) {
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
	fs.Visit(func(f *pflag.Flag) {
		if cp := b.copy[f.Name]; cp != nil {
			cp(cfg)
		}
	})
	return cfg, nil
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

// applyOutputFlags turns --output values into output configurations.
func applyOutputFlags(cfg *serveConfig, outs []string, given bool) error {
	if given {
		cfg.Outputs = nil
		for _, o := range outs {
			typ, arg, _ := strings.Cut(o, ":")
			oc := alert.OutputConfig{Type: typ}
			switch typ {
			case alert.TypeStdout:
			case alert.TypeFile:
				oc.Path = arg
			case alert.TypeWebhook, alert.TypeSlack:
				oc.URL = arg
			default:
				return fmt.Errorf("--output %q: want stdout, file:PATH, webhook:URL or slack:URL", o)
			}
			cfg.Outputs = append(cfg.Outputs, oc)
		}
	}
	if len(cfg.Outputs) == 0 {
		cfg.Outputs = []alert.OutputConfig{{Type: alert.TypeStdout}}
	}
	return nil
}

// validate checks the configuration without opening anything.
func (c *serveConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, a := range []struct{ key, addr string }{{"listen", c.Listen}, {"insecure_listen", c.InsecureListen}} {
		if a.addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			bad("%s: %q is not HOST:PORT: %v", a.key, a.addr, err)
		}
	}
	if c.Listen != "" && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		bad("listen: the HTTPS webhook needs tls.cert_file and tls.key_file (--tls-cert, --tls-key); set listen to \"\" to run without it")
	}
	if c.Listen == "" && c.InsecureListen == "" && len(c.Inputs) == 0 {
		bad("no input: set listen, insecure_listen or inputs")
	}
	if c.Listen != "" && c.TLS.ClientCAFile == "" && len(c.TokenFiles) == 0 {
		bad("listen: no client authentication: set tls.client_ca_file (--client-ca) or token_files (--token-file)")
	}
	stdin := 0
	for _, in := range c.Inputs {
		if in == "-" {
			stdin++
		} else if in == "" {
			bad("inputs: empty path")
		}
	}
	if stdin > 1 {
		bad("inputs: standard input (-) given %d times", stdin)
	}
	if c.TailFrom != "start" && c.TailFrom != "end" {
		bad("tail_from: %q is not start or end", c.TailFrom)
	}
	if c.Lateness < 0 {
		bad("lateness: %s is negative", c.Lateness)
	}
	if c.Cluster != "" && strings.ContainsAny(c.Cluster, " /\t") {
		bad("cluster: %q is not a cluster name", c.Cluster)
	}
	for _, v := range []struct {
		key string
		n   int64
	}{{"max_record_bytes", int64(c.MaxRecordBytes)}, {"max_body_bytes", int64(c.MaxBodyBytes)}, {"max_in_flight", int64(c.MaxInFlight)},
		{"queue_size", int64(c.QueueSize)}, {"wait_timeout", int64(c.WaitTimeout)}, {"shutdown_timeout", int64(c.ShutdownWait)}, {"tail_poll", int64(c.TailPoll)}} {
		if v.n <= 0 {
			bad("%s: must be positive", v.key)
		}
	}
	if _, err := ingest.NewReader(registry(), ingest.Options{Format: c.Format}); err != nil {
		bad("format: %v", err)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format: %q is not text or json", c.Log.Format)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Log.Level)); err != nil {
		bad("log.level: %q is not debug, info, warn or error", c.Log.Level)
	}
	if err := alert.ValidateOutputs(c.Outputs); err != nil {
		bad("outputs: %v", err)
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

func (c *serveConfig) ruleFlags() ruleFlags {
	return ruleFlags{dirs: c.Rules.Dirs, ids: c.Rules.IDs, noBuiltin: c.Rules.NoBuiltin}
}

// readTokens reads the bearer tokens, one per file.
func (c *serveConfig) readTokens() ([]string, error) {
	var out []string
	for _, f := range c.TokenFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("token_files: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return nil, fmt.Errorf("token_files: %s must hold one token (no spaces or line breaks)", f)
		}
		out = append(out, t)
	}
	return out, nil
}

// certificate loads the TLS certificate of the HTTPS listener.
func (c *serveConfig) certificate() (*server.Certificate, error) {
	if c.Listen == "" {
		return nil, nil
	}
	cert, err := server.LoadCertificate(server.TLSFiles{CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile, ClientCAFile: c.TLS.ClientCAFile})
	if err != nil {
		return nil, err
	}
	if _, err := cert.TLSConfig(); err != nil {
		return nil, err
	}
	return cert, nil
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
	if _, err := c.certificate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.readTokens(); err != nil {
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
	if err := errors.Join(errs...); err != nil {
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

func runServe(ctx context.Context, io *streams, c *serveConfig) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if err := c.validate(); err != nil {
		return &exitError{code: 1, err: err}
	}
	log := c.logger(io.err)
	rf := c.ruleFlags()
	compiled, err := rf.load()
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	cert, err := c.certificate()
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	tokens, err := c.readTokens()
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	store, where, err := openStore(c.StateDir, c.NoState)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer store.Close()
	spool := c.SpoolDir
	if spool == "" {
		spool = filepath.Join(c.StateDir, "spool")
	}
	outs, err := alert.NewOutputs(c.Outputs, alert.Options{Stdout: io.out, SpoolRoot: spool,
		OnError: func(name string, err error) { log.Warn("output error", "output", name, "err", err) }})
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	shutdownOutputs := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownWait)
		defer cancel()
		return outs.Shutdown(sctx)
	}
	p, err := server.NewPipeline(server.PipelineConfig{
		Rules: compiled, Store: store, Sink: outs, Registry: registry(), Format: c.Format,
		MaxRecordBytes: int(c.MaxRecordBytes), Lateness: c.Lateness, LearnOnly: c.LearnOnly, GroupUpdates: c.GroupUpdates,
		QueueSize: c.QueueSize, Logger: log,
	})
	if err != nil {
		shutdownOutputs()
		return &exitError{code: 1, err: err}
	}
	log.Info("kanon serve started", "rules", len(compiled), "state", where, "outputs", len(c.Outputs))

	var servers []*server.Server
	listen := func(addr string, tlsOn bool) error {
		scfg := server.Config{Pipeline: p, Cluster: c.Cluster, Tokens: tokens, MaxBodyBytes: int64(c.MaxBodyBytes),
			MaxInFlight: c.MaxInFlight, WaitTimeout: c.WaitTimeout, Logger: log}
		if !tlsOn {
			// Plain HTTP is for loopback tests: with no token configured it
			// takes requests without authentication.
			scfg.AllowUnauthenticated = len(tokens) == 0
			if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" && host != "::1" && host != "localhost" {
				log.Warn("plain-HTTP webhook on a non-loopback address", "addr", addr)
			}
		}
		s, err := server.New(scfg)
		if err != nil {
			return err
		}
		var at net.Addr
		if tlsOn {
			tc, err := cert.TLSConfig()
			if err != nil {
				return err
			}
			at, err = s.Listen(addr, tc)
			if err != nil {
				return err
			}
		} else if at, err = s.Listen(addr, nil); err != nil {
			return err
		}
		log.Info("webhook listening", "addr", at.String(), "tls", tlsOn, "client_ca", tlsOn && c.TLS.ClientCAFile != "", "tokens", len(tokens))
		servers = append(servers, s)
		return nil
	}
	var startErr error
	if c.Listen != "" {
		startErr = listen(c.Listen, true)
	}
	if startErr == nil && c.InsecureListen != "" {
		startErr = listen(c.InsecureListen, false)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var inputs sync.WaitGroup
	inputErrs := make(chan error, len(c.Inputs))
	streamsOnly := len(servers) == 0
	for _, in := range c.Inputs {
		if startErr != nil {
			break
		}
		inputs.Add(1)
		if in == "-" {
			go func() {
				defer inputs.Done()
				if err := p.ReadStream(ctx, "stdin", "-", io.in); err != nil {
					inputErrs <- fmt.Errorf("standard input: %w", err)
				}
			}()
			continue
		}
		streamsOnly = false
		go func() {
			defer inputs.Done()
			log.Info("following", "path", in)
			err := p.Follow(ctx, "tail", in, tail.Options{FromEnd: c.TailFrom == "end", Poll: c.TailPoll})
			if err != nil && !errors.Is(err, server.ErrClosed) {
				inputErrs <- fmt.Errorf("input %s: %w", in, err)
			}
		}()
	}
	inputsDone := make(chan struct{})
	go func() { inputs.Wait(); close(inputsDone) }()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	var runErr error
	if startErr != nil {
		runErr = startErr
	}
	var srvErrs <-chan error
	if len(servers) > 0 {
		merged := make(chan error, 8)
		for _, s := range servers {
			go func() {
				for err := range s.Err() {
					merged <- err
				}
			}()
		}
		srvErrs = merged
	}
loop:
	for runErr == nil {
		var done <-chan struct{}
		if streamsOnly {
			done = inputsDone
		}
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload(ctx, log, p, rf, cert)
				continue
			}
			log.Info("shutting down", "signal", s.String())
			break loop
		case <-ctx.Done():
			break loop
		case err := <-inputErrs:
			runErr = err
		case err := <-srvErrs:
			runErr = err
		case <-done:
			log.Info("inputs ended")
			break loop
		}
	}
	// Drain: stop taking batches, answer those in flight, close the runs,
	// flush the outputs and commit the state.
	sctx, scancel := context.WithTimeout(context.Background(), c.ShutdownWait)
	defer scancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			log.Warn("webhook shutdown", "err", err)
		}
	}
	cancel()
	if err := p.Close(sctx); err != nil && runErr == nil {
		runErr = err
	}
	if err := shutdownOutputs(); err != nil && runErr == nil {
		runErr = err
	}
	if err := store.Close(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		log.Error("kanon serve stopped", "err", runErr)
		return &exitError{code: 1, err: runErr}
	}
	log.Info("kanon serve stopped")
	return nil
}

// reload loads the rules again and swaps them in; a rule set with errors
// is refused and the running rules stay. The TLS certificate is reloaded
// too.
func reload(ctx context.Context, log *slog.Logger, p *server.Pipeline, rf ruleFlags, cert *server.Certificate) {
	if cert != nil {
		if err := cert.Reload(); err != nil {
			log.Error("TLS certificate not reloaded", "err", err)
		} else {
			log.Info("TLS certificate reloaded")
		}
	}
	compiled, err := rf.load()
	if err != nil {
		p.RefuseReload()
		log.Error("rules not reloaded: the old rules keep running", "err", err.Error())
		return
	}
	if err := p.Reload(ctx, compiled); err != nil {
		log.Error("rules not reloaded: the old rules keep running", "err", err)
		return
	}
	log.Info("rules reloaded", "rules", len(compiled), "ids", ruleIDs(compiled))
}

func ruleIDs(rs []*rule.Compiled) string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return strings.Join(ids, ",")
}
