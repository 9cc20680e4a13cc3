// Package panther reads Panther-normalised Kubernetes audit events: the
// events of Panther's log types, with the p_* fields Panther adds (as in
// the Tests of panther-analysis rules), routed by p_log_type to the reader
// of the original shape:
//
//	p_log_type              the event is                    read as (kanon.reader)
//	Amazon.EKS.Audit        an audit.k8s.io Event            k8saudit.DecodeEvent ("panther/eks", cloud.provider aws)
//	Azure.MonitorActivity   an AKS diagnostic record         aks.DecodeRecord     ("panther/aks", azure)
//	GCP.AuditLog            a Cloud Audit Logs LogEntry      gke.DecodeEntry      ("panther/gke", gcp)
//
// Other log types are skipped (errors wrapping ingest.ErrSkipped), and so
// are the records those readers skip (an Azure activity record that is not
// kube-audit, a GCP entry of another service).
//
// The p_* fields never take part in decoding; they are kept as raw parts
// panther.<key> (panther.p_source_label, panther.p_any_ip_addresses ...)
// when the reader keeps untyped fields. p_source_label, the name of the
// Panther log source, becomes orchestrator.cluster.name when the record
// says nothing better (an AKS resourceId, a GKE resource.labels.cluster_name
// win); Panther's own rules use it as the cluster. p_event_time becomes
// @timestamp when the event has no timestamp of its own. Panther writes
// times as "2022-11-29 00:09:04.38" (UTC, no zone), which event.ParseTime
// reads.
//
// Panther's GCP data model makes requestURI "/apis/" + resourceName for
// every GKE request; kanon rebuilds the real request path instead (see
// package gke), so a GKE "readyz" request is /readyz, not /apis/readyz.
package panther
