package main

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source/cloudwatch"
	"github.com/kanon-dev/kanon/internal/source/pubsub"
)

// cloudScheme reports whether a source URL names a cloud delivery whose
// source lives in internal/source (and so is built here, not by run).
func cloudScheme(raw string) bool {
	return strings.HasPrefix(raw, cloudwatch.Scheme+"://") || strings.HasPrefix(raw, pubsub.Scheme+"://")
}

// validateCloudSources checks the cloud source URLs among urls.
func validateCloudSources(urls []string) error {
	var errs []error
	seen := map[string]bool{}
	for _, raw := range urls {
		if !cloudScheme(raw) {
			errs = append(errs, fmt.Errorf("sources: %s: unknown scheme (cloudwatch://, pubsub://)", raw))
			continue
		}
		if seen[raw] {
			errs = append(errs, fmt.Errorf("sources: %s given twice", raw))
		}
		seen[raw] = true
		if _, err := cloudSource(raw, nil); err != nil {
			errs = append(errs, fmt.Errorf("sources: %w", err))
		}
	}
	return errors.Join(errs...)
}

// cloudSource builds the source of a cloudwatch:// or pubsub:// URL.
func cloudSource(raw string, log *slog.Logger) (run.Source, error) {
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
	}
	return nil, fmt.Errorf("source %s: unknown scheme (cloudwatch://, pubsub://)", raw)
}
