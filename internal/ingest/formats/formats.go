// Package formats assembles every reader format kanon knows into one
// detection registry, in priority order: envelopes and cloud formats
// first (their records also look like JSON objects), then Kubernetes
// audit events, then ECS documents.
package formats

import (
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/ecs"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
)

// extra holds formats added by other files of this package.
var extra []ingest.Format

// Registry returns a registry of every known format.
func Registry() *ingest.Registry {
	fs := append([]ingest.Format{}, extra...)
	fs = append(fs, k8saudit.New(), ecs.New())
	return ingest.NewRegistry(fs...)
}
