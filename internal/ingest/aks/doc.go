// Package aks reads the Kubernetes audit logs of Azure AKS as diagnostic
// settings export them: categories kube-audit (every request, reads
// included) and kube-audit-admin (without get and list). The format reads
//
//   - the {"records": [...]} envelope that Event Hubs delivers, and
//   - the JSON lines of a storage account export (insights-logs-<category>
//     blobs: one record per line, no envelope).
//
// A record carries the audit event in properties.log, as a JSON string (the
// API server's log line, usually ending in "\n") or, in some exports, as a
// JSON object; both are decoded with k8saudit.DecodeEvent.
//
// Every event gets cloud.provider "azure", kanon.reader "aks" (or the
// reader of an enclosing envelope, such as "panther/aks") and
// orchestrator.cluster.name from resourceId: the path segment after
// MANAGEDCLUSTERS, as written (ARM ids are upper case in exports). The
// record's own fields are kept as kubernetes.audit.aks_metadata.* when the
// reader keeps untyped fields, named as Elastic's kubernetes integration
// names them: category, container_id, operation_name, pod, resource_id,
// service_build, stream, time; the other envelope fields that Elastic's
// expected output does not show (ccpNamespace, Cloud, Environment,
// UnderlayClass, UnderlayName) are kept the same way in snake case
// (ccp_namespace, cloud, environment, underlay_class, underlay_name).
//
// What is not an event:
//   - records of other categories (kube-apiserver, kube-controller-manager,
//     cluster-autoscaler, guard ...: their properties.log is text) are
//     skipped: errors wrapping ingest.ErrSkipped, counted apart from bad
//     records;
//   - a record without category, with properties.log missing or not a JSON
//     audit event, or a records value that is not an array, is a bad record
//     with the reason (a bad element of records names its index); the
//     other records are read.
//
// Deviation from Elastic's mapping: @timestamp is the audit event's
// stageTimestamp (as for every other reader), not the record's time field,
// which Elastic uses; the record's time stays in aks_metadata.time.
package aks
