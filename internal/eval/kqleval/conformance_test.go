package kqleval

import (
	"bufio"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

//go:embed testdata/*.kqltest
var conformance embed.FS

// confCase is one query of a conformance file with its expectations.
type confCase struct {
	file    string
	line    int
	query   string
	err     string // expected parse or compile error substring
	docs    []confDoc
	options []Option
}

type confDoc struct {
	line  int
	match bool
	json  string
}

// loadConformance reads every testdata/*.kqltest file (format: README.md).
func loadConformance(t testing.TB) []*confCase {
	var out []*confCase
	names, err := fs.Glob(conformance, "testdata/*.kqltest")
	if err != nil || len(names) == 0 {
		t.Fatalf("no conformance files: %v", err)
	}
	for _, name := range names {
		b, err := conformance.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var cur *confCase
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				continue
			}
			key, val, ok := strings.Cut(line, ": ")
			if !ok {
				t.Fatalf("%s:%d: want \"key: value\"", name, n)
			}
			if key != "query" && cur == nil {
				t.Fatalf("%s:%d: %s before any query", name, n, key)
			}
			switch key {
			case "query":
				cur = &confCase{file: name, line: n, query: val}
				out = append(out, cur)
			case "match", "nomatch":
				cur.docs = append(cur.docs, confDoc{line: n, match: key == "match", json: val})
			case "error":
				cur.err = val
			case "default_fields":
				cur.options = append(cur.options, WithDefaultFields(strings.Fields(val)...))
			default:
				t.Fatalf("%s:%d: unknown key %q", name, n, key)
			}
		}
	}
	return out
}

// TestConformance runs the data-driven KQL conformance suite.
func TestConformance(t *testing.T) {
	cases := loadConformance(t)
	docs := 0
	for _, c := range cases {
		where := fmt.Sprintf("%s:%d", c.file, c.line)
		src := pos.NewSource(where, c.query)
		expr, err := kql.Parse(src)
		var m *Matcher
		if err == nil {
			m, err = Compile(expr, append([]Option{WithSource(src)}, c.options...)...)
		}
		if c.err != "" {
			if err == nil {
				t.Errorf("%s: %q compiled, want error containing %q", where, c.query, c.err)
			} else if !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %q: error %q does not contain %q", where, c.query, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %q: %v", where, c.query, err)
			continue
		}
		if len(c.docs) == 0 {
			t.Errorf("%s: query without documents", where)
		}
		for _, d := range c.docs {
			docs++
			e, err := eventFromJSON([]byte(d.json))
			if err != nil {
				t.Errorf("%s:%d: bad document: %v", c.file, d.line, err)
				continue
			}
			if got := m.Match(e); got != d.match {
				t.Errorf("%s:%d: %s\n  on %s\n  got match=%v, want %v (compiled %s)", c.file, d.line, c.query, d.json, got, d.match, describe(m.root))
			}
		}
	}
	if docs < 100 {
		t.Errorf("only %d documents in the conformance suite", docs)
	}
}

// auditJSON is the Kubernetes audit Event as conformance documents write it.
type auditJSON struct {
	Kind             string            `json:"kind"`
	APIVersion       string            `json:"apiVersion"`
	Level            string            `json:"level"`
	AuditID          string            `json:"auditID"`
	Stage            string            `json:"stage"`
	RequestURI       string            `json:"requestURI"`
	Verb             string            `json:"verb"`
	User             userJSON          `json:"user"`
	ImpersonatedUser userJSON          `json:"impersonatedUser"`
	SourceIPs        []string          `json:"sourceIPs"`
	UserAgent        string            `json:"userAgent"`
	ObjectRef        map[string]string `json:"objectRef"`
	ResponseStatus   *struct {
		Code    *int64 `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	} `json:"responseStatus"`
	RequestReceivedTimestamp string            `json:"requestReceivedTimestamp"`
	StageTimestamp           string            `json:"stageTimestamp"`
	Annotations              map[string]string `json:"annotations"`
	RequestObject            json.RawMessage   `json:"requestObject"`
	ResponseObject           json.RawMessage   `json:"responseObject"`
}

type userJSON struct {
	Username string              `json:"username"`
	UID      string              `json:"uid"`
	Groups   []string            `json:"groups"`
	Extra    map[string][]string `json:"extra"`
}

// eventFromJSON builds an Event from a Kubernetes audit Event in JSON, the
// way Elastic's pipeline maps it (annotation keys with "." as "_"; request
// and response objects and user.extra kept raw for lazy fields).
func eventFromJSON(b []byte) (*event.Event, error) {
	var a auditJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return nil, err
	}
	e := &event.Event{
		Kind: a.Kind, APIVersion: a.APIVersion, Level: a.Level, AuditID: a.AuditID, Stage: a.Stage,
		RequestURI: a.RequestURI, Verb: a.Verb, UserAgent: a.UserAgent, SourceIPs: a.SourceIPs,
		User:             event.UserInfo{Username: a.User.Username, UID: a.User.UID, Groups: a.User.Groups},
		ImpersonatedUser: event.UserInfo{Username: a.ImpersonatedUser.Username, UID: a.ImpersonatedUser.UID, Groups: a.ImpersonatedUser.Groups},
	}
	for k := range a.ObjectRef {
		switch k {
		case "resource", "namespace", "name", "uid", "apiGroup", "apiVersion", "resourceVersion", "subresource":
		default:
			return nil, fmt.Errorf("unknown objectRef key %q", k)
		}
	}
	o := a.ObjectRef
	e.ObjectRef = event.ObjectRef{Resource: o["resource"], Namespace: o["namespace"], Name: o["name"], UID: o["uid"],
		APIGroup: o["apiGroup"], APIVersion: o["apiVersion"], ResourceVersion: o["resourceVersion"], Subresource: o["subresource"]}
	if rs := a.ResponseStatus; rs != nil {
		e.ResponseStatus = event.ResponseStatus{Status: rs.Status, Message: rs.Message, Reason: rs.Reason}
		if rs.Code != nil {
			e.ResponseStatus.Code, e.ResponseStatus.HasCode = *rs.Code, true
		}
	}
	for _, ts := range []struct {
		raw string
		dst *event.Timestamp
	}{{a.RequestReceivedTimestamp, &e.RequestReceivedTimestamp}, {a.StageTimestamp, &e.StageTimestamp}} {
		if ts.raw == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, ts.raw)
		if err != nil {
			return nil, err
		}
		*ts.dst = event.Timestamp{Raw: ts.raw, T: t.UTC()}
	}
	for k, v := range a.Annotations {
		e.Annotations = append(e.Annotations, event.Annotation{Key: strings.ReplaceAll(k, ".", "_"), Value: v})
	}
	if len(a.RequestObject) > 0 {
		e.Raws = append(e.Raws, event.Raw{Prefix: "kubernetes.audit", Key: "requestObject", JSON: a.RequestObject, DropKey: "metadata"})
	}
	if len(a.ResponseObject) > 0 {
		e.Raws = append(e.Raws, event.Raw{Prefix: "kubernetes.audit", Key: "responseObject", JSON: a.ResponseObject, DropKey: "metadata"})
	}
	if len(a.User.Extra) > 0 {
		extra, err := json.Marshal(a.User.Extra)
		if err != nil {
			return nil, err
		}
		e.Raws = append(e.Raws, event.Raw{Prefix: "kubernetes.audit.user", Key: "extra", JSON: extra})
	}
	return e, nil
}
