package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/kanon-dev/kanon/internal/ingest/eks"
	"github.com/kanon-dev/kanon/internal/ingest/gke"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source/cloudwatch"
	natssource "github.com/kanon-dev/kanon/internal/source/nats"
	"github.com/kanon-dev/kanon/internal/source/pubsub"
)

// cloudScheme reports whether a source URL names a cloud delivery whose
// source lives in internal/source (and so is built here, not by run).
func cloudScheme(raw string) bool {
	return strings.HasPrefix(raw, cloudwatch.Scheme+"://") || strings.HasPrefix(raw, pubsub.Scheme+"://") ||
		strings.HasPrefix(raw, natssource.Scheme+"://")
}

// validateCloudSources checks the cloud source URLs among urls.
func validateCloudSources(urls []string) error {
	var errs []error
	seen := map[string]bool{}
	for _, raw := range urls {
		if !cloudScheme(raw) {
			errs = append(errs, fmt.Errorf("sources: %s: unknown scheme (cloudwatch://, pubsub://, nats://)", raw))
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
// Firehose and CloudWatch, LogEntry objects (gke) for Pub/Sub.
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
		}
	}
	return errors.Join(errs...)
}

// cloudSource builds the source of a cloudwatch://, pubsub:// or nats://
// URL.
func cloudSource(raw string, maxRecord int, log *slog.Logger) (run.Source, error) {
	switch {
	case strings.HasPrefix(raw, natssource.Scheme+"://"):
		c, err := natssource.ParseURL(raw)
		if err != nil {
			return nil, err
		}
		return &natssource.Source{Config: c, MaxRecordBytes: maxRecord, Logger: log}, nil
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
	}
	return nil, fmt.Errorf("source %s: unknown scheme (cloudwatch://, pubsub://, nats://)", raw)
}
