package alert

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Tally says how many hits the run of rule ruleID that ended at end
// dropped at max_signals (engine.Stats.RunDrops); 0 when none.
type Tally func(ruleID string, end time.Time) int64

// Tallied is a sink that holds its alerts until Close (a table, -o json):
// given the runs' tallies once the input has ended, it says in each alert
// of a run how many hits the run dropped (Window.Dropped).
type Tallied interface {
	SetTally(Tally)
}

// view is what the table, wide and CSV outputs show of an alert: the
// fields a responder reads first, taken from the output fields, the
// columns of an aggregating ES|QL alert (by Elastic's naming of them) or
// the event's document.
type view struct {
	at                             time.Time
	severity, rule, ruleID, title  string
	user, source, verb, resource   string
	name                           string // the object's name
	namespace, uri, code, decision string
	reason, cluster, agent         string
	count                          int64 // events an aggregate counts, or alerts a group holds
	aggregate, dropped             bool
	run                            *Window
	origin, id                     string
}

// field is one value a view shows: its short output name and ECS name.
type field struct{ short, ecs string }

var (
	fUser      = field{"username", "kubernetes.audit.user.username"}
	fSource    = field{"source_ips", "kubernetes.audit.sourceIPs"}
	fAgent     = field{"user_agent", "kubernetes.audit.userAgent"}
	fVerb      = field{"verb", "kubernetes.audit.verb"}
	fResource  = field{"resource", "kubernetes.audit.objectRef.resource"}
	fSub       = field{"subresource", "kubernetes.audit.objectRef.subresource"}
	fName      = field{"name", "kubernetes.audit.objectRef.name"}
	fNamespace = field{"namespace", "kubernetes.audit.objectRef.namespace"}
	fURI       = field{"request_uri", "kubernetes.audit.requestURI"}
	fCode      = field{"response_code", "kubernetes.audit.responseStatus.code"}
	fDecision  = field{"decision", "kubernetes.audit.annotations.authorization_k8s_io/decision"}
	fReason    = field{"reason", "kubernetes.audit.annotations.authorization_k8s_io/reason"}
	fCluster   = field{"cluster", "orchestrator.cluster.name"}
)

// esqlNames are the names Elastic's ES|QL rules give the VALUES of a field
// ("Esql.kubernetes_audit_verb_values"), and a few they give otherwise.
var esqlAliases = map[string][]string{
	fDecision.ecs: {"Esql.kubernetes_audit_decision_values"},
}

func esqlValues(ecs string) string {
	return "Esql." + strings.NewReplacer(".", "_", "/", "_").Replace(ecs) + "_values"
}

// get returns the text of f in a: an output field or column by its short
// name, its ECS name or Elastic's ES|QL name of its values; else the
// event's document. Several values are joined with ", ".
func get(a *Alert, f field) string {
	names := append([]string{f.short, f.ecs, esqlValues(f.ecs)}, esqlAliases[f.ecs]...)
	for _, n := range names {
		if v, ok := a.Fields.Get(n); ok && v != nil {
			return clean(valueText(v))
		}
	}
	if v := docGet(a.Event, f.ecs); v != nil {
		return clean(valueText(v))
	}
	return ""
}

// valueText renders a field's value: a list as its items joined.
func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []any:
		parts := make([]string, 0, len(x))
		for _, p := range x {
			if p != nil {
				parts = append(parts, valueText(p))
			}
		}
		return strings.Join(parts, ",")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + valueText(x[k])
		}
		return strings.Join(parts, " ")
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
	}
	return fmt.Sprint(v)
}

// docGet returns the value at a dotted path of a document, or nil.
func docGet(doc map[string]any, path string) any {
	var cur any = doc
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		if cur, ok = m[p]; !ok {
			return nil
		}
	}
	return cur
}

// newView reads what the outputs show of a.
func newView(a *Alert) view {
	v := view{
		at: a.Timestamp, severity: a.Rule.Severity, rule: clean(a.Rule.Name), ruleID: a.Rule.ID, title: clean(a.Title),
		user: get(a, fUser), source: get(a, fSource), verb: get(a, fVerb), resource: get(a, fResource),
		namespace: get(a, fNamespace), name: get(a, fName), uri: get(a, fURI), code: get(a, fCode), decision: get(a, fDecision),
		reason: get(a, fReason), cluster: get(a, fCluster), agent: get(a, fAgent),
		dropped: a.Dropped, origin: clean(a.Origin), id: a.ID,
	}
	if sub := get(a, fSub); sub != "" && v.resource != "" {
		v.resource += "/" + sub
	}
	if a.Window != nil {
		w := *a.Window
		v.run = &w
	}
	switch {
	case a.Evidence != nil:
		v.aggregate, v.count = true, a.Evidence.Total
	case a.Group != nil && a.Group.Count > 1:
		v.count = a.Group.Count
	}
	return v
}

// target is what the request reached: the URI, or for an aggregate the
// URIs of the events it counts, after their number (countTag).
func (v *view) target() string {
	t := v.uri
	if t == "" {
		t = v.resource
	}
	if c := v.countTag(); c != "" {
		return c + " " + t
	}
	return t
}

// countTag says how many events an aggregate counts ("[10 events]"), or
// how many alerts a group holds ("[x5]").
func (v *view) countTag() string {
	switch {
	case v.aggregate:
		return fmt.Sprintf("[%d events]", v.count)
	case v.count > 1:
		return fmt.Sprintf("[x%d]", v.count)
	}
	return ""
}

// runDropped is how many hits the alert's run dropped at max_signals.
func (v *view) runDropped() int64 {
	if v.run == nil {
		return 0
	}
	return v.run.Dropped
}

// applyTally sets the run's dropped count from t when it says more.
func (v *view) applyTally(t Tally) {
	if t != nil && v.run != nil {
		v.run.Dropped = max(v.run.Dropped, t(v.ruleID, v.run.End))
	}
}

// orderOf returns the indices of vs ordered by time, then rule and id.
func orderOf(vs []view) []int {
	idx := make([]int, len(vs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool {
		a, b := &vs[idx[i]], &vs[idx[j]]
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		if a.ruleID != b.ruleID {
			return a.ruleID < b.ruleID
		}
		return a.id < b.id
	})
	return idx
}

// SeverityRank orders the rule schema's severities, lowest first: info 0,
// low 1, medium 2, high 3, critical 4; -1 for another word.
func SeverityRank(s string) int { return severityRank(s) }
