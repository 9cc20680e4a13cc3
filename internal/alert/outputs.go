package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options are the process-wide settings of NewOutputs.
type Options struct {
	// Stdout is where stdout outputs write (default os.Stdout).
	Stdout io.Writer
	// SpoolRoot is the parent of the spools of webhook and slack outputs
	// without a spool_dir: <SpoolRoot>/<output name>. Required for them.
	SpoolRoot string
	// DrainTimeout bounds Close (default DefaultDrainTimeout); Shutdown
	// takes its own context.
	DrainTimeout time.Duration
	// OnError, if set, is called with every delivery error and dropped
	// alert, from the outputs' goroutines or from Write. It must be safe
	// for concurrent use and must not block.
	OnError func(output string, err error)
	// Now is the clock of file rotation (default time.Now).
	Now func() time.Time
}

// output is one configured output: a filter and a queued sink.
type output struct {
	name, typ string
	filter    Filter
	sink      interface {
		Sink
		Flusher
		Shutdowner
		Stats() OutputStats
	}
	filtered atomic.Uint64
}

// Outputs fans alerts out to several outputs, each behind its filter and
// its own bounded queue (see the package documentation for the delivery
// policy). Write never waits for the network; it waits at most an
// output's block timeout, and only for outputs without a spool. Outputs is
// safe for concurrent use.
type Outputs struct {
	outs    []*output
	drain   time.Duration
	onError func(string, error)

	mu     sync.RWMutex
	closed bool
}

// NewOutputs validates cfgs (ValidateOutputs) and opens every output:
// files are opened, spools read, and the webhook senders start with what
// earlier runs left in their spools. On error, outputs already opened are
// closed.
func NewOutputs(cfgs []OutputConfig, opts Options) (*Outputs, error) {
	if err := ValidateOutputs(cfgs); err != nil {
		return nil, err
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	o := &Outputs{drain: opts.DrainTimeout, onError: opts.OnError}
	names := nameOutputs(cfgs)
	for i := range cfgs {
		out, err := openOutput(&cfgs[i], names[i], opts)
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), opts.DrainTimeout)
			_ = o.Shutdown(ctx)
			cancel()
			return nil, fmt.Errorf("%s: %w", cfgs[i].label(i), err)
		}
		o.outs = append(o.outs, out)
	}
	return o, nil
}

// nameOutputs gives each output its name: the configured one, or its type
// (followed by -2, -3, ... when the type repeats).
func nameOutputs(cfgs []OutputConfig) []string {
	taken := map[string]bool{}
	for _, c := range cfgs {
		if c.Name != "" {
			taken[c.Name] = true
		}
	}
	names := make([]string, len(cfgs))
	for i, c := range cfgs {
		if c.Name != "" {
			names[i] = c.Name
			continue
		}
		n := c.Type
		for k := 2; taken[n]; k++ {
			n = fmt.Sprintf("%s-%d", c.Type, k)
		}
		taken[n] = true
		names[i] = n
	}
	return names
}

func openOutput(c *OutputConfig, name string, opts Options) (*output, error) {
	out := &output{name: name, typ: c.Type, filter: NewFilter(c.MinSeverity, c.Rules, c.ExcludeRules)}
	var onErr func(error)
	if opts.OnError != nil {
		onErr = func(err error) { opts.OnError(name, err) }
	}
	block := time.Duration(c.BlockTimeout)
	if block == 0 {
		block = DefaultBlockTimeout
	}
	switch c.Type {
	case TypeStdout:
		out.sink = newQueuedSink(name, c.Type, NewJSONSink(opts.Stdout), c.QueueSize, block, onErr)
	case TypeFile:
		fs, err := NewFileSink(FileConfig{
			Path: c.Path, MaxSize: int64(c.MaxSize), MaxAge: time.Duration(c.MaxAge),
			MaxBackups: c.MaxBackups, Now: opts.Now,
		})
		if err != nil {
			return nil, err
		}
		out.sink = newQueuedSink(name, c.Type, fs, c.QueueSize, block, onErr)
	default:
		if !slices.Contains(networkTypes, c.Type) {
			return nil, fmt.Errorf("BUG: output type %q passed validation", c.Type)
		}
		dir := c.SpoolDir
		if dir == "" {
			if opts.SpoolRoot == "" {
				return nil, errors.New("spool_dir: missing, and no spool root is configured")
			}
			dir = filepath.Join(opts.SpoolRoot, name)
		}
		sink, err := openNetworkOutput(c, c.senderConfig(name, dir, onErr))
		if err != nil {
			return nil, err
		}
		out.sink = sink
	}
	return out, nil
}

// senderConfig is the delivery configuration of a network output.
func (c *OutputConfig) senderConfig(name, dir string, onErr func(error)) senderConfig {
	batch := 1
	if slices.Contains(batchTypes, c.Type) {
		batch = c.BatchSize
		if batch <= 0 {
			batch = DefaultBatchSize
		}
	}
	return senderConfig{
		typ: c.Type, name: name, spoolDir: dir, spoolMaxSize: int64(c.SpoolMaxSize),
		queueSize: c.QueueSize, batchSize: batch,
		minBackoff: time.Duration(c.MinBackoff), maxBackoff: time.Duration(c.MaxBackoff),
		onError: onErr,
	}
}

// httpConfig is the endpoint and credentials of an HTTP output.
func (c *OutputConfig) httpConfig() httpConfig {
	return httpConfig{
		URL: c.URL, Headers: c.Headers, Timeout: time.Duration(c.Timeout),
		CAFile: c.CAFile, InsecureSkipVerify: c.InsecureSkipVerify,
		Token: c.Token, Username: c.Username, Password: c.Password,
	}
}

// openNetworkOutput opens an output that delivers over the network,
// through a SpooledSink.
func openNetworkOutput(c *OutputConfig, sc senderConfig) (*SpooledSink, error) {
	switch c.Type {
	case TypeWebhook:
		tr, err := newHTTPTransport(c.Type, sc.name, c.httpConfig(), httpFormat{contentType: "application/json"})
		if err != nil {
			return nil, err
		}
		return newSpooledSink(sc, tr, Marshal)
	case TypeSlack:
		tr, err := newHTTPTransport(c.Type, sc.name, c.httpConfig(), httpFormat{contentType: "application/json"})
		if err != nil {
			return nil, err
		}
		return newSpooledSink(sc, tr, SlackMessage)
	case TypeElasticsearch, TypeOpenSearch:
		return newElasticSink(sc, c.httpConfig(), c.Index)
	case TypeSplunk:
		return newSplunkSink(sc, c.httpConfig(), SplunkMeta{Host: c.Hostname, Source: c.Source, Sourcetype: c.Sourcetype, Index: c.Index})
	case TypeAlertmanager:
		return newAlertmanagerSink(sc, c.httpConfig(), AlertmanagerOptions{
			Labels: c.Labels, ResolveAfter: time.Duration(c.ResolveAfter), GeneratorURL: c.GeneratorURL,
		})
	case TypeLoki:
		return newLokiSink(sc, c.httpConfig(), c.Labels)
	case TypeSyslog:
		tr, err := newSyslogTransport(c.Type, sc.name, c.Addr, c.TLS, c.CAFile, c.InsecureSkipVerify, time.Duration(c.Timeout))
		if err != nil {
			return nil, err
		}
		o := SyslogOptions{Facility: 4, Hostname: c.Hostname, AppName: c.AppName}
		if c.Facility != "" {
			o.Facility = syslogFacility(c.Facility)
		}
		return newSpooledSink(sc, tr, func(a *Alert) ([]byte, error) { return SyslogMessage(a, o) })
	case TypeKafka:
		tr, err := newKafkaTransport(c.Type, sc.name, kafkaConfig{
			brokers: c.Brokers, topic: c.Topic, tls: c.TLS, caFile: c.CAFile, insecureSkipVerify: c.InsecureSkipVerify,
			sasl: c.SASL, username: c.Username, password: c.Password, timeout: time.Duration(c.Timeout),
		})
		if err != nil {
			return nil, err
		}
		return newSpooledSink(sc, tr, Marshal)
	case TypeNATS:
		tr, err := newNATSTransport(c.Type, sc.name, natsConfig{subject: c.Subject, NATSDial: NATSDial{
			URL: c.URL, TLS: c.TLS, CAFile: c.CAFile, InsecureSkipVerify: c.InsecureSkipVerify,
			Token: c.Token, Username: c.Username, Password: c.Password, Timeout: time.Duration(c.Timeout),
			ReconnectWait: time.Duration(c.MinBackoff),
		}})
		if err != nil {
			return nil, err
		}
		return newSpooledSink(sc, tr, Marshal)
	}
	return nil, fmt.Errorf("BUG: output type %q passed validation", c.Type)
}

// Write hands the alert to every output whose filter passes it. A refusal
// by one output (its spool full, or its queue full past the block
// timeout) is counted in that output's Dropped and reported to
// Options.OnError with an error wrapping ErrSpoolFull or ErrDropped, and
// is not returned: the other outputs still deliver the alert, and the
// caller (the engine) goes on evaluating. Write returns an error only
// after Shutdown (wrapping ErrClosed).
func (o *Outputs) Write(ctx context.Context, a *Alert) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return fmt.Errorf("cannot write alert %s: outputs %w", a.ID, ErrClosed)
	}
	for _, out := range o.outs {
		if !out.filter.Match(a) {
			out.filtered.Add(1)
			continue
		}
		if err := out.sink.Write(ctx, a); err != nil && o.onError != nil {
			o.onError(out.name, err)
		}
	}
	return nil
}

// Flush returns when every alert written before it is delivered or
// durable in its output (files and spools fsync'd), or when ctx ends.
// Call it before acknowledging the input that raised the alerts.
func (o *Outputs) Flush(ctx context.Context) error {
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.closed {
		return nil
	}
	return o.each(func(out *output) error { return out.sink.Flush(ctx) })
}

// each runs f on every output at once and joins the errors.
func (o *Outputs) each(f func(*output) error) error {
	errs := make([]error, len(o.outs))
	var wg sync.WaitGroup
	for i, out := range o.outs {
		wg.Go(func() { errs[i] = f(out) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Shutdown stops taking alerts, then, until ctx ends, writes what the
// queues hold and delivers what the spools hold. What the webhook and
// Slack outputs could not deliver stays in their spools for the next run;
// what stdout and file outputs could not write by then is dropped and
// counted. The error says which outputs were cut short.
func (o *Outputs) Shutdown(ctx context.Context) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	o.mu.Unlock()
	return o.each(func(out *output) error { return out.sink.Shutdown(ctx) })
}

// Close shuts down within Options.DrainTimeout.
func (o *Outputs) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	return o.Shutdown(ctx)
}

// Stats returns the counters of every output, in configuration order.
func (o *Outputs) Stats() []OutputStats {
	st := make([]OutputStats, len(o.outs))
	for i, out := range o.outs {
		st[i] = out.sink.Stats()
		st[i].Filtered = out.filtered.Load()
	}
	return st
}
