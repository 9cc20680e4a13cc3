package alert

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"time"
)

// Default indices of the Elasticsearch and OpenSearch outputs. The
// Elasticsearch default is a data stream that Elasticsearch's built-in
// logs-*-* index template creates on the first write, and that the
// security solution's default data view (logs-*) reads, so its alerts
// show in Kibana's Security "External alerts" views.
const (
	DefaultElasticIndex    = "logs-kanon.alerts-default"
	DefaultOpenSearchIndex = "kanon-alerts"
)

// bulkFilterPath trims Elasticsearch's bulk answer to what the output
// reads.
const bulkFilterPath = "filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason"

// newElasticSink builds an Elasticsearch or OpenSearch output on the
// _bulk API.
func newElasticSink(sc senderConfig, hc httpConfig, index string) (*SpooledSink, error) {
	if index == "" {
		index = DefaultElasticIndex
		if sc.typ == TypeOpenSearch {
			index = DefaultOpenSearchIndex
		}
	}
	u, err := endpointURL(sc, hc.URL, "/_bulk")
	if err != nil {
		return nil, err
	}
	if strings.Contains(u, "?") {
		hc.URL = u + "&" + bulkFilterPath
	} else {
		hc.URL = u + "?" + bulkFilterPath
	}
	hc.TokenScheme = "ApiKey"
	tr, err := newHTTPTransport(sc.typ, sc.name, hc, httpFormat{
		contentType: "application/x-ndjson",
		join:        joinLines,
		items:       bulkItems,
		maxResponse: 4 << 20,
	})
	if err != nil {
		return nil, err
	}
	return newSpooledSink(sc, tr, func(a *Alert) ([]byte, error) { return BulkCreate(a, index) })
}

// endpointURL resolves the configured URL (ResolveSecret) and appends
// path to it unless its path already ends in it.
func endpointURL(sc senderConfig, raw, path string) (string, error) {
	u, err := ResolveSecret(raw)
	if err != nil {
		return "", fmt.Errorf("%s output %q: url: %w", sc.typ, sc.name, err)
	}
	base, query, _ := strings.Cut(u, "?")
	if !strings.HasSuffix(strings.TrimSuffix(base, "/"), path) {
		base = strings.TrimSuffix(base, "/") + path
	}
	if query != "" {
		return base + "?" + query, nil
	}
	return base, nil
}

// BulkCreate returns the two NDJSON lines of the alert in a _bulk
// request: a create action into index whose _id is the alert's delivery
// key, so that a delivery repeated after a failure or a restart is a 409
// (the document exists) rather than a second document, and the alert's
// ECSDocument.
func BulkCreate(a *Alert, index string) ([]byte, error) {
	action := map[string]map[string]string{"create": {"_index": index, "_id": a.DeliveryKey()}}
	b, err := json.Marshal(action)
	if err != nil {
		return nil, err
	}
	doc, err := json.Marshal(ECSDocument(a, index))
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	b = append(b, doc...)
	return append(b, '\n'), nil
}

// bulkItems reads the outcome of each action from a _bulk answer: 2xx
// delivered, 409 already there (delivered), 429 and 5xx retried, any
// other status given up with the item's error.
func bulkItems(body []byte, batch []entry, res []error) error {
	var r struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Status int `json:"status"`
			Error  *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("cannot read the bulk answer: %w", err)
	}
	if !r.Errors {
		return nil
	}
	if len(r.Items) != len(batch) {
		return fmt.Errorf("the bulk answer has %d items for %d actions", len(r.Items), len(batch))
	}
	for i, it := range r.Items {
		for _, item := range it {
			st := item.Status
			why := fmt.Sprintf("status %d", st)
			if item.Error != nil {
				why += ": " + item.Error.Type + ": " + clipRunes(item.Error.Reason, 200)
			}
			err := fmt.Errorf("alert %s: %s", batch[i].id, why)
			switch {
			case st >= 200 && st < 300:
				res[i] = nil
			case st == 409:
				res[i] = fmt.Errorf("%w: %w", errDuplicate, err)
			case st == 429 || st >= 500:
				res[i] = err
			default:
				res[i] = &permanentError{err}
			}
		}
	}
	return nil
}

// ECSDocument returns the alert as the Elasticsearch document the
// Elasticsearch and OpenSearch outputs index into index: the matching
// event's canonical ECS document, as an alert. Kibana's alert views and
// Elastic Security's "External alerts" read these fields:
//
//   - @timestamp: the alert's time; event.kind: alert; event.module:
//     kanon; event.id: the alert id; event.severity and event.risk_score:
//     the rule's risk score; event.reason and message: the alert's title
//     (or the rule's name); event.start/end: the window or dedup group;
//     event.action and event.outcome stay the matching event's;
//   - event.dataset and data_stream.*: from the index when it is a data
//     stream name (logs-DATASET-NAMESPACE), else event.dataset
//     kanon.alerts and no data_stream;
//   - rule.id, rule.name, rule.description, rule.reference (the rule's
//     references), rule.category (Elastic's rule type, or how it fires),
//     rule.ruleset and rule.uuid (the rule's source, such as
//     elastic:UUID);
//   - threat.framework, threat.tactic.{id,name,reference},
//     threat.technique.{id,name,reference} and
//     threat.technique.subtechnique.{id,name,reference} from the rule's
//     MITRE ATT&CK mapping; tags: the rule's tags;
//   - kibana.alert.{uuid, status: active, workflow_status: open, severity,
//     risk_score, reason, start, original_time, original_event} and
//     kibana.alert.rule.{rule_id, name, description, type, severity,
//     risk_score, references, tags, threat} as Elastic's detection alerts
//     name them; for a dedup group kibana.alert.suppression.{docs_count
//     (the repeats), start, end, terms};
//   - the matching event's fields under their ECS names as kanon reads
//     them (kubernetes.audit.*, source.ip, client.ip, user.name,
//     user_agent.original, orchestrator.*, cloud.*);
//     orchestrator.cluster.name is the alert's cluster field when the
//     event has none;
//   - kanon.alert.{id, delivery_key, origin, reader, fields (the output
//     fields or the ES|QL row), window, group (key, count, first_seen,
//     last_seen)} and kanon.alert.rule.{type, language, firing, source}.
//
// The alert's own maps are not changed.
func ECSDocument(a *Alert, index string) map[string]any {
	d := make(map[string]any, len(a.Event)+8)
	maps.Copy(d, a.Event)
	ts := a.Timestamp.UTC().Format(time.RFC3339Nano)
	d["@timestamp"] = ts
	reason := a.Title
	if reason == "" {
		reason = a.Rule.Name
	}
	if reason == "" {
		reason = a.Rule.ID
	}
	d["message"] = reason

	orig, _ := a.Event["event"].(map[string]any)
	ev := maps.Clone(orig)
	if ev == nil {
		ev = map[string]any{}
	}
	ev["kind"] = "alert"
	ev["module"] = "kanon"
	ev["id"] = a.ID
	ev["severity"] = a.Rule.RiskScore
	ev["risk_score"] = float64(a.Rule.RiskScore)
	ev["reason"] = reason
	switch {
	case a.Window != nil:
		ev["start"] = a.Window.Start.UTC().Format(time.RFC3339Nano)
		ev["end"] = a.Window.End.UTC().Format(time.RFC3339Nano)
	case a.Group != nil:
		ev["start"] = a.Group.FirstSeen.UTC().Format(time.RFC3339Nano)
		ev["end"] = a.Group.LastSeen.UTC().Format(time.RFC3339Nano)
	}
	if typ, dataset, ns, ok := dataStreamName(index); ok {
		ev["dataset"] = dataset
		d["data_stream"] = map[string]any{"type": typ, "dataset": dataset, "namespace": ns}
	} else {
		ev["dataset"] = "kanon.alerts"
		delete(d, "data_stream")
	}
	d["event"] = ev

	rule := map[string]any{"id": a.Rule.ID, "name": a.Rule.Name}
	if a.Rule.Description != "" {
		rule["description"] = a.Rule.Description
	}
	if len(a.Rule.References) > 0 {
		rule["reference"] = a.Rule.References
	}
	if c := a.Rule.Type; c != "" {
		rule["category"] = c
	} else if a.Rule.Firing != "" {
		rule["category"] = a.Rule.Firing
	}
	if set, id, ok := strings.Cut(a.Rule.Source, ":"); ok && set != "" && id != "" {
		rule["ruleset"] = set
		rule["uuid"] = id
	} else if a.Rule.Source != "" {
		rule["ruleset"] = a.Rule.Source
	}
	d["rule"] = rule
	if t := ecsThreat(a.Rule.Threat); t != nil {
		d["threat"] = t
	}
	if len(a.Rule.Tags) > 0 {
		d["tags"] = a.Rule.Tags
	}
	if c := fieldText(a.Fields, "cluster"); c != "" {
		o, _ := d["orchestrator"].(map[string]any)
		o = maps.Clone(o)
		if o == nil {
			o = map[string]any{}
		}
		cl, _ := o["cluster"].(map[string]any)
		if _, has := cl["name"]; !has {
			cl = maps.Clone(cl)
			if cl == nil {
				cl = map[string]any{}
			}
			cl["name"] = c
			o["cluster"] = cl
		}
		if _, has := o["type"]; !has {
			o["type"] = "kubernetes"
		}
		d["orchestrator"] = o
	}

	kr := map[string]any{
		"rule_id": a.Rule.ID, "name": a.Rule.Name, "severity": a.Rule.Severity,
		"risk_score": a.Rule.RiskScore,
	}
	if a.Rule.Type != "" {
		kr["type"] = a.Rule.Type
	}
	if a.Rule.Description != "" {
		kr["description"] = a.Rule.Description
	}
	if len(a.Rule.References) > 0 {
		kr["references"] = a.Rule.References
	}
	if len(a.Rule.Tags) > 0 {
		kr["tags"] = a.Rule.Tags
	}
	if len(a.Rule.Threat) > 0 {
		kr["threat"] = a.Rule.Threat
	}
	ka := map[string]any{
		"uuid": a.ID, "status": "active", "workflow_status": "open",
		"severity": a.Rule.Severity, "risk_score": a.Rule.RiskScore,
		"reason": reason, "start": ts, "rule": kr,
	}
	if t, ok := a.Event["@timestamp"]; ok {
		ka["original_time"] = t
	}
	if orig != nil {
		ka["original_event"] = orig
	}
	if g := a.Group; g != nil {
		ka["suppression"] = map[string]any{
			"docs_count": max(g.Count-1, 0),
			"start":      g.FirstSeen.UTC().Format(time.RFC3339Nano),
			"end":        g.LastSeen.UTC().Format(time.RFC3339Nano),
			"terms":      []map[string]any{{"field": "kanon.alert.group.key", "value": []string{g.Key}}},
		}
	}
	d["kibana"] = map[string]any{"alert": ka}

	k, _ := d["kanon"].(map[string]any)
	k = maps.Clone(k)
	if k == nil {
		k = map[string]any{}
	}
	ka2 := map[string]any{"id": a.ID, "delivery_key": a.DeliveryKey(), "fields": a.Fields}
	if a.Origin != "" {
		ka2["origin"] = a.Origin
	}
	if a.Reader != "" {
		ka2["reader"] = a.Reader
	}
	if a.Window != nil {
		ka2["window"] = a.Window
	}
	if g := a.Group; g != nil {
		ka2["group"] = map[string]any{"key": g.Key, "count": g.Count,
			"first_seen": g.FirstSeen.UTC().Format(time.RFC3339Nano), "last_seen": g.LastSeen.UTC().Format(time.RFC3339Nano)}
	}
	kr2 := map[string]any{}
	for key, v := range map[string]string{"type": a.Rule.Type, "language": a.Rule.Language, "firing": a.Rule.Firing, "source": a.Rule.Source} {
		if v != "" {
			kr2[key] = v
		}
	}
	if len(kr2) > 0 {
		ka2["rule"] = kr2
	}
	k["alert"] = ka2
	d["kanon"] = k
	return d
}

// dataStreamName splits a data stream name TYPE-DATASET-NAMESPACE of the
// logs type.
func dataStreamName(index string) (typ, dataset, ns string, ok bool) {
	typ, rest, ok1 := strings.Cut(index, "-")
	i := strings.LastIndexByte(rest, '-')
	if !ok1 || typ != "logs" || i <= 0 || i == len(rest)-1 {
		return "", "", "", false
	}
	return typ, rest[:i], rest[i+1:], true
}

// ecsThreat flattens MITRE ATT&CK mappings into ECS threat fields.
func ecsThreat(ts []Threat) map[string]any {
	if len(ts) == 0 {
		return nil
	}
	type refs struct{ id, name, ref []string }
	add := func(r *refs, x Ref) {
		for _, id := range r.id {
			if id == x.ID {
				return
			}
		}
		r.id = append(r.id, x.ID)
		r.name = append(r.name, x.Name)
		if x.Reference != "" {
			r.ref = append(r.ref, x.Reference)
		}
	}
	var tac, tech, sub refs
	fw := ts[0].Framework
	for _, t := range ts {
		add(&tac, t.Tactic)
		for _, te := range t.Technique {
			add(&tech, te.Ref)
			for _, s := range te.Subtechnique {
				add(&sub, s)
			}
		}
	}
	obj := func(r refs) map[string]any {
		m := map[string]any{"id": r.id, "name": r.name}
		if len(r.ref) > 0 {
			m["reference"] = r.ref
		}
		return m
	}
	out := map[string]any{"tactic": obj(tac)}
	if fw != "" {
		out["framework"] = fw
	}
	if len(tech.id) > 0 {
		te := obj(tech)
		if len(sub.id) > 0 {
			te["subtechnique"] = obj(sub)
		}
		out["technique"] = te
	}
	return out
}
