package formats_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
)

// anchors is ../shared/anchors relative to the repository root.
func anchors(t testing.TB) string {
	t.Helper()
	dir, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(filepath.Dir(dir), "shared", "anchors")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("reference material missing (%v): the tests need ../shared next to the repository", err)
	}
	return p
}

// readAll reads path with every field and returns the ECS documents.
func readAll(t *testing.T, path string) ([]map[string]any, []ingest.BadRecord) {
	t.Helper()
	var bad []ingest.BadRecord
	r, err := ingest.NewReader(formats.Registry(), ingest.Options{Fields: event.AllFields(), OnBad: func(b ingest.BadRecord) { bad = append(bad, b) }})
	if err != nil {
		t.Fatal(err)
	}
	var docs []map[string]any
	err = r.ReadPaths(context.Background(), []string{path}, nil, func(e *event.Event) error {
		var m map[string]any
		if err := json.Unmarshal(e.AppendECS(nil), &m); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return docs, bad
}

func get(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// TestElasticConformance checks the documents kanon makes of the audit
// events in Elastic's pipeline test inputs against Elastic's expected
// outputs, on the fields the issue names (fields added at ingest time,
// such as event.original and related.*, are not kanon's).
func TestElasticConformance(t *testing.T) {
	dir := filepath.Join(anchors(t), "elastic-integration-audit")
	var expected struct {
		Expected []map[string]any `json:"expected"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "test-audit.log-expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &expected); err != nil {
		t.Fatal(err)
	}
	// Read each input line on its own so that GKE lines (another reader)
	// are matched with their expected documents by position.
	f, err := os.Open(filepath.Join(dir, "test-audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	n, compared := 0, 0
	for sc.Scan() {
		want := expected.Expected[n]
		n++
		if get(want, "kubernetes.audit.protoPayload") != nil {
			continue // GKE: covered by the GKE reader's own conformance test
		}
		tmp := filepath.Join(t.TempDir(), "line.log")
		if err := os.WriteFile(tmp, sc.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		docs, bad := readAll(t, tmp)
		if len(bad) != 0 || len(docs) != 1 {
			t.Fatalf("line %d: %d docs, bad %v", n, len(docs), bad)
		}
		got := docs[0]
		compared++
		if get(got, "kubernetes.audit.auditID") == nil {
			t.Fatalf("line %d: no kubernetes.audit in %v", n, got)
		}
		for _, field := range []string{"kubernetes.audit", "user_agent.original", "source.ip", "user.name", "user.id", "event.action", "event.outcome", "client.ip"} {
			if !reflect.DeepEqual(normalise(get(got, field)), normalise(get(want, field))) {
				gj, _ := json.MarshalIndent(get(got, field), "", " ")
				wj, _ := json.MarshalIndent(get(want, field), "", " ")
				t.Errorf("line %d: %s differs\n got: %s\nwant: %s", n, field, gj, wj)
			}
		}
	}
	if compared != 3 {
		t.Fatalf("compared %d native audit documents, want 3", compared)
	}
	if n != len(expected.Expected) {
		t.Fatalf("%d input lines, %d expected documents", n, len(expected.Expected))
	}
}

// normalise makes JSON numbers comparable (float64 from the expected file,
// float64 from our re-decoded output).
func normalise(v any) any {
	b, _ := json.Marshal(v)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
