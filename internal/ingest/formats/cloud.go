package formats

import (
	"github.com/kanon-dev/kanon/internal/ingest/aks"
	"github.com/kanon-dev/kanon/internal/ingest/eks"
	"github.com/kanon-dev/kanon/internal/ingest/gke"
	"github.com/kanon-dev/kanon/internal/ingest/panther"
)

// The cloud formats are asked before the Kubernetes and ECS formats:
// Panther events first (p_log_type, whatever else they hold), then the
// CloudWatch Logs envelopes of EKS (logEvents, messageType, awslogs,
// events), the diagnostic records of AKS (records, or category with
// properties) and the LogEntry objects of GKE (protoPayload). Each of them
// declines objects that another one claims, so the order among them only
// matters for odd records that carry several envelopes' keys.
func init() {
	extra = append(extra, panther.New(), eks.New(), aks.New(), gke.New())
}
