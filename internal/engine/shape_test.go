package engine_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/ruletest"
	"github.com/kanon-dev/kanon/rules"
)

// jsonShape is the shape of a field's value as it is written in JSON
// (null fits every shape).
func jsonShape(v any) (engine.Shape, bool) {
	b, _ := json.Marshal(v)
	var x any
	_ = json.Unmarshal(b, &x)
	switch x.(type) {
	case nil:
		return 0, false
	case []any:
		return engine.ShapeList, true
	case map[string]any:
		return engine.ShapeObject, true
	}
	return engine.ShapeValue, true
}

// TestFieldShapesOfBuiltinRules runs the embedded tests of every built-in
// rule and checks that every field of every alert has the shape FieldShape
// gives for the rule: a field is a list in every alert or in none,
// whatever the event.
func TestFieldShapesOfBuiltinRules(t *testing.T) {
	all, err := rule.Load(rules.FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]map[string]engine.Shape{} // rule -> field -> shape seen
	check := func(r *rule.Compiled, a *alert.Alert) {
		t.Helper()
		for _, f := range a.Fields {
			want, ok := engine.FieldShape(r, f.Name)
			if !ok {
				t.Errorf("rule %s: alert field %s has no shape", r.ID, f.Name)
				continue
			}
			got, notNull := jsonShape(f.Value)
			if !notNull {
				continue
			}
			if got != want {
				t.Errorf("rule %s: field %s is a %s (%v), its shape is %s", r.ID, f.Name, got, f.Value, want)
			}
			if seen[r.ID] == nil {
				seen[r.ID] = map[string]engine.Shape{}
			}
			seen[r.ID][f.Name] = got
		}
	}
	byID := map[string]*rule.Compiled{}
	for _, r := range all {
		byID[r.ID] = r
	}
	n := 0
	for _, res := range ruletest.Run(context.Background(), all, formats.Registry()) {
		for _, a := range res.Alerts {
			check(byID[res.Rule], a)
			n++
		}
	}
	if n == 0 {
		t.Fatal("the built-in rules' tests raised no alert")
	}
	// Every built-in rule raised, and its list fields are lists.
	for _, r := range all {
		if len(seen[r.ID]) == 0 {
			t.Errorf("rule %s raised no alert with a field in its tests", r.ID)
		}
	}
	for id, fields := range seen {
		if f, ok := fields["source_ips"]; ok && f != engine.ShapeList {
			t.Errorf("rule %s: source_ips is a %s", id, f)
		}
		if f, ok := fields["username"]; ok && f != engine.ShapeValue {
			t.Errorf("rule %s: username is a %s", id, f)
		}
	}
	es := seen["elastic-k8s-anonymous-endpoint-permission-enumeration"]
	if es["Esql.kubernetes_audit_verb_values"] != engine.ShapeList || es["Esql.document_count"] != engine.ShapeValue || es["kubernetes.audit.sourceIPs"] != engine.ShapeValue {
		t.Errorf("ES|QL columns' shapes: %v", es)
	}
}
