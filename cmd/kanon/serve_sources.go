package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/kanon-dev/kanon/internal/ingest/aks"
	"github.com/kanon-dev/kanon/internal/ingest/eks"
	"github.com/kanon-dev/kanon/internal/ingest/gke"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source/cloudwatch"
	"github.com/kanon-dev/kanon/internal/source/kafka"
	natssource "github.com/kanon-dev/kanon/internal/source/nats"
	"github.com/kanon-dev/kanon/internal/source/pubsub"
)

// sourceSchemes are the schemes of the sources in internal/source, for
// messages.
const sourceSchemes = "cloudwatch://, pubsub://, nats://, kafka://, eventhubs://"

// cloudScheme reports whether a source URL names a source that lives in
// internal/source (and so is built here, not by run).
func cloudScheme(raw string) bool {
	for _, s := range []string{cloudwatch.Scheme, pubsub.Scheme, natssource.Scheme, kafka.Scheme, kafka.EventHubsScheme} {
		if strings.HasPrefix(raw, s+"://") {
			return true
		}
	}
	return false
}

// validateCloudSources checks the cloud source URLs among urls.
func validateCloudSources(urls []string) error {
	var errs []error
	seen := map[string]bool{}
	for _, raw := range urls {
		if !cloudScheme(raw) {
			errs = append(errs, fmt.Errorf("sources: %s: unknown scheme (%s)", raw, sourceSchemes))
			continue
		}
		if seen[raw] {
			errs = append(errs, fmt.Errorf("sources: %s given twice", raw))
		}
		seen[raw] = true
		if _, err := cloudSource(raw, 0, nil); err != nil {
			errs = append(errs, fmt.Errorf("sources: %w", err))
		}
	}
	return errors.Join(errs...)
}

// validateCloudFormat checks that a forced format reads what the cloud
// deliveries configured deliver: CloudWatch Logs payloads (eks) for
// Firehose and CloudWatch, LogEntry objects (gke) for Pub/Sub, diagnostic
// records envelopes (aks) for Event Hubs; a Kafka topic holds whatever
// its producers write.
func (c *serveConfig) validateCloudFormat() error {
	if c.Format == "" || c.Format == "auto" {
		return nil
	}
	var errs []error
	need := func(what, format string) {
		if c.Format != format {
			errs = append(errs, fmt.Errorf("format: %s delivers %s records, which format %s cannot read: use auto or %s", what, format, c.Format, format))
		}
	}
	if c.FirehoseEnabled() {
		need("the Firehose endpoint", eks.Name)
	}
	if c.PubSubEnabled() {
		need("the Pub/Sub push endpoint", gke.Name)
	}
	for _, raw := range c.SourceURLs {
		switch {
		case strings.HasPrefix(raw, cloudwatch.Scheme+"://"):
			need("source "+raw, eks.Name)
		case strings.HasPrefix(raw, pubsub.Scheme+"://"):
			need("source "+raw, gke.Name)
		case strings.HasPrefix(raw, kafka.EventHubsScheme+"://"):
			need("source "+raw, aks.Name)
		}
	}
	return errors.Join(errs...)
}

// cloudSource builds the source of a URL of cloudScheme; maxRecordBytes
// limits a record of the sources that frame records.
func cloudSource(raw string, maxRecordBytes int, log *slog.Logger) (run.Source, error) {
	switch {
	case strings.HasPrefix(raw, cloudwatch.Scheme+"://"):
		c, err := cloudwatch.ParseURL(raw)
		if err != nil {
			return nil, err
		}
		return &cloudwatch.Source{Config: c, Logger: log}, nil
	case strings.HasPrefix(raw, pubsub.Scheme+"://"):
		c, err := pubsub.ParseURL(raw)
		if err != nil {
			return nil, err
		}
		return &pubsub.Source{Config: c, Logger: log}, nil
	case strings.HasPrefix(raw, natssource.Scheme+"://"):
		c, err := natssource.ParseURL(raw)
		if err != nil {
			return nil, err
		}
		return &natssource.Source{Config: c, MaxRecordBytes: maxRecordBytes, Logger: log}, nil
	case strings.HasPrefix(raw, kafka.Scheme+"://"), strings.HasPrefix(raw, kafka.EventHubsScheme+"://"):
		c, err := kafka.ParseURL(raw)
		if err != nil {
			return nil, err
		}
		return &kafka.Source{Config: c, MaxRecordBytes: maxRecordBytes, Logger: log}, nil
	}
	return nil, fmt.Errorf("source %s: unknown scheme (%s)", raw, sourceSchemes)
}

// sources builds every input: followed files and standard input, then the
// sources of URLs; names name them in logs. A source whose input can be
// out of reach (a broker) watches itself on the driver (run.Health,
// Driver.Watch): /readyz fails while it is not healthy.
func (c *serveConfig) sources(stdin io.Reader, log *slog.Logger) (srcs []run.Source, names []string, err error) {
	srcs = c.Sources(stdin)
	names = append(names, c.Inputs...)
	for _, raw := range c.SourceURLs {
		src, serr := cloudSource(raw, int(c.MaxRecordBytes), log)
		if serr != nil && err == nil {
			err = serr
		}
		srcs, names = append(srcs, src), append(names, raw)
	}
	return srcs, names, err
}

// runningInputs are the inputs started: errs gets their errors, done is
// closed once all have returned, sources once those of URLs have.
type runningInputs struct {
	errs    chan error
	done    chan struct{}
	sources chan struct{}
}

// startInputs runs each input on d until ctx ends.
func (c *serveConfig) startInputs(ctx context.Context, d *run.Driver, srcs []run.Source, names []string, log *slog.Logger) *runningInputs {
	in := &runningInputs{errs: make(chan error, len(srcs)), done: make(chan struct{}), sources: make(chan struct{})}
	var all, urls sync.WaitGroup
	for i, src := range srcs {
		url := i >= len(c.Inputs)
		if url {
			log.Info("reading", "source", names[i])
			urls.Add(1)
		} else if names[i] != "-" {
			log.Info("following", "path", names[i])
		}
		all.Go(func() {
			if url {
				defer urls.Done()
			}
			if err := src.Run(ctx, d); err != nil && !errors.Is(err, run.ErrClosed) {
				in.errs <- fmt.Errorf("input %s: %w", names[i], err)
			}
		})
	}
	go func() { all.Wait(); close(in.done) }()
	go func() { urls.Wait(); close(in.sources) }()
	return in
}

// waitSources waits, until ctx ends, for the sources of URLs to return
// once their context ended: a Kafka source commits its last offsets and
// leaves its group then. Followed files and standard input are not
// waited for (a read of standard input cannot be interrupted).
func (in *runningInputs) waitSources(ctx context.Context) {
	select {
	case <-in.sources:
	case <-ctx.Done():
	}
}
