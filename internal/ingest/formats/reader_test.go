package formats_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
)

const ev1 = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a1","stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["203.0.113.9"],"userAgent":"curl/8","responseStatus":{"code":200},"stageTimestamp":"2025-01-01T00:00:00Z","annotations":{"authorization.k8s.io/decision":"allow"}}`

type result struct {
	ids []string // auditID@origin per event
	bad []string // origin: reason
	err error
}

func read(t *testing.T, input string, opts ingest.Options) result {
	t.Helper()
	var res result
	opts.Fields = event.AllFields()
	opts.OnBad = func(b ingest.BadRecord) { res.bad = append(res.bad, b.Error()) }
	r, err := ingest.NewReader(formats.Registry(), opts)
	if err != nil {
		t.Fatal(err)
	}
	res.err = r.ReadStream(context.Background(), "in", strings.NewReader(input), func(e *event.Event) error {
		res.ids = append(res.ids, e.AuditID+"@"+e.Origin.String())
		return nil
	})
	return res
}

func withID(id string) string { return strings.Replace(ev1, `"a1"`, `"`+id+`"`, 1) }

func TestFraming(t *testing.T) {
	f := func(name, input string, wantIDs string, wantBad ...string) {
		t.Helper()
		res := read(t, input, ingest.Options{})
		if res.err != nil {
			t.Fatalf("%s: %v", name, res.err)
		}
		if got := strings.Join(res.ids, " "); got != wantIDs {
			t.Errorf("%s: events %q, want %q", name, got, wantIDs)
		}
		if len(res.bad) != len(wantBad) {
			t.Fatalf("%s: bad %q, want %q", name, res.bad, wantBad)
		}
		for i, w := range wantBad {
			if !strings.Contains(res.bad[i], w) {
				t.Errorf("%s: bad[%d] = %q, want it to contain %q", name, i, res.bad[i], w)
			}
		}
	}
	f("ndjson", withID("a")+"\n"+withID("b")+"\r\n\n"+withID("c"), "a@in:1 b@in:2 c@in:4")
	f("bad line in the middle", withID("a")+"\n{not json}\n"+withID("c")+"\n", "a@in:1 c@in:3", "in:2: ")
	f("truncated line", withID("a")+"\n"+withID("b")[:60]+"\n"+withID("c"), "a@in:1 c@in:3", "in:2: offset")
	f("text line", "hello\n"+withID("c"), "c@in:2", "in:1:")
	// A repeated key costs nothing: the record is read both ways (see
	// TestRepeatedKeys for what the readings give).
	f("duplicate key", strings.Replace(withID("a"), `"verb":"get"`, `"verb":"get","verb":"list"`, 1)+"\n"+withID("b"), "a@in:1 b@in:2")
	f("nested duplicate key", strings.Replace(withID("a"), `{"username":"system:anonymous"`, `{"username":"system:anonymous","username":"admin"`, 1), "a@in:1")
	f("eventlist", `{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[`+withID("a")+`,`+withID("b")+`]}`, "a@in:1 b@in:1")
	f("array without kind", `[`+strings.Replace(withID("a"), `"kind":"Event",`, ``, 1)+`,`+withID("b")+`]`, "a@in:1 b@in:1")
	f("bad item in list", `{"kind":"EventList","items":[`+withID("a")+`,{"auditID":5},`+withID("c")+`]}`, "a@in:1 c@in:1", "items[1]")
	f("pretty document", "{\n  \"kind\": \"EventList\",\n  \"items\": [\n    "+withID("a")+"\n  ]\n}\n"+withID("z"), "a@in:1 z@in:7")
	// A broken record costs only itself: a line that is a record of its
	// own, at column 0, ends a value spanning lines that never closed.
	f("stray brace", withID("a")+"\n{\n"+withID("b")+"\n"+withID("c"), "a@in:1 b@in:3 c@in:4", "in:2: invalid JSON: a JSON value spanning lines is cut short by line 3")
	f("stray brackets", "[[\n"+withID("b")+"\n"+withID("c"), "b@in:2 c@in:3", "in:1: invalid JSON: a JSON value spanning lines is cut short")
	f("stray numbers", "[1,2\n"+withID("b")+"\n"+withID("c"), "b@in:2 c@in:3", "in:1: ", "in:1: invalid JSON: a JSON value spanning lines is cut short")
	f("unindented value cut", "{\n\"items\": [\n"+withID("a")+"\n]\n}", "a@in:3", "in:1: invalid JSON: a JSON value spanning lines is cut short", "in:4:", "in:5:")
	f("streamed array", "[\n  "+withID("a")+",\n  {\n\"kind\":\"Event\", \"auditID\":\"b\",\n \"stage\":\"ResponseComplete\"\n },\n  {\"broken\": \n  }, \"x\"\n]\n"+withID("z"), "a@in:2 b@in:3 z@in:10", "in:7:", "in:8:")
	f("unterminated pretty", "{\n\"kind\":\"Event\",\n", "", "ends inside")
	f("wrong shape", strings.Replace(withID("a"), `"sourceIPs":["203.0.113.9"]`, `"sourceIPs":"203.0.113.9"`, 1), "", "sourceIPs: expected an array")
	f("bad time", strings.Replace(withID("a"), `2025-01-01T00:00:00Z`, `yesterday`, 1), "", "cannot parse time")
	f("escaped strings", strings.Replace(withID("a"), `"a"`, `"\u0061\"q"`, 1), `a"q@in:1`)
}

func TestStrictAndLimits(t *testing.T) {
	res := read(t, withID("a")+"\n{bad\n"+withID("c"), ingest.Options{Strict: true})
	var br ingest.BadRecord
	if res.err == nil || !errors.As(res.err, &br) || br.Origin.Line != 2 {
		t.Fatalf("strict: err %v", res.err)
	}
	if len(res.ids) != 1 {
		t.Fatalf("strict: events before the bad record: %v", res.ids)
	}
	big := strings.Replace(withID("b"), `"curl/8"`, `"`+strings.Repeat("x", 5000)+`"`, 1)
	res = read(t, withID("a")+"\n"+big+"\n"+withID("c"), ingest.Options{MaxRecordBytes: 2048})
	if strings.Join(res.ids, " ") != "a@in:1 c@in:3" || len(res.bad) != 1 || !strings.Contains(res.bad[0], "size limit") {
		t.Fatalf("limit: %v %v", res.ids, res.bad)
	}
}

func TestGzipAndDirectories(t *testing.T) {
	dir := t.TempDir()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, "%s\n%s\n", withID("g1"), withID("g2"))
	zw.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "b", "c"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "b", "c", "audit.log.1.gz"), gz.Bytes(), 0o600))
	must(os.WriteFile(filepath.Join(dir, "a.log"), []byte(withID("p1")+"\n"), 0o600))
	must(os.WriteFile(filepath.Join(dir, ".hidden"), []byte(withID("h")+"\n"), 0o600))
	// A gzip file cut short: what was read stands, the rest is reported.
	must(os.WriteFile(filepath.Join(dir, "z.gz"), gz.Bytes()[:gz.Len()-10], 0o600))
	var ids, bad []string
	r, err := ingest.NewReader(formats.Registry(), ingest.Options{OnBad: func(b ingest.BadRecord) { bad = append(bad, b.Error()) }})
	must(err)
	err = r.ReadPaths(context.Background(), []string{dir, "-"}, strings.NewReader(withID("s1")), func(e *event.Event) error {
		ids = append(ids, e.AuditID)
		return nil
	})
	must(err)
	if got := strings.Join(ids, " "); got != "p1 g1 g2 g1 g2 s1" {
		t.Fatalf("events %q", got)
	}
	if len(bad) != 1 || !strings.Contains(bad[0], "z.gz") {
		t.Fatalf("bad %q", bad)
	}
	if st := r.Stats(); st.Files != 3 || st.Events != 6 || st.Bad != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestForcedFormat(t *testing.T) {
	res := read(t, `{"kubernetes":{"audit":{"auditID":"e1","stage":"ResponseComplete"}},"@timestamp":"2025-01-01T00:00:00Z"}`, ingest.Options{})
	if strings.Join(res.ids, "") != "e1@in:1" {
		t.Fatalf("ecs detect: %v %v", res.ids, res.bad)
	}
	res = read(t, withID("a"), ingest.Options{Format: "ecs"})
	if len(res.ids) != 0 || len(res.bad) != 1 {
		t.Fatalf("forced ecs on an audit event: %v %v", res.ids, res.bad)
	}
	if _, err := ingest.NewReader(formats.Registry(), ingest.Options{Format: "nope"}); !errors.Is(err, ingest.ErrBadOptions) {
		t.Fatalf("unknown format: %v", err)
	}
}

// FuzzReader feeds arbitrary input to the reader: it must never panic,
// and every record is either an event or a bad record.
func FuzzReader(f *testing.F) {
	f.Add([]byte(ev1))
	f.Add([]byte("[\n" + ev1 + ",\n" + ev1 + "\n]"))
	f.Add([]byte(`{"kind":"EventList","items":[` + ev1 + `]}`))
	f.Add([]byte("{\n\"kubernetes\": {\"audit\": {\"verb\":\"get\"}}\n}"))
	f.Add([]byte(`{"kubernetes.audit.verb":"get","@timestamp":"2025-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ingest.NewReader(formats.Registry(), ingest.Options{Fields: event.AllFields(), MaxRecordBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- r.ReadStream(context.Background(), "fuzz", bytes.NewReader(b), func(e *event.Event) error {
				_ = e.AppendECS(nil)
				_ = e.Clone()
				return nil
			})
		}()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			// The fuzzer has no per-input time limit: a reader that loops
			// forever would stall it silently.
			t.Fatalf("reading %d bytes did not finish in 10s: %q", len(b), b)
		}
		if err != nil {
			t.Fatalf("read error on plain input: %v", err)
		}
	})
}

// TestRecordValidatedAgrees: decoding a record already validated (the
// webhook validates EventList items in the request goroutine) gives the
// same events as decoding it with every check.
func TestRecordValidatedAgrees(t *testing.T) {
	recs := []string{ev1, withID("b"), strings.Replace(ev1, `"level":"Metadata"`, `"level":"Request","requestObject":{"kind":"Pod","spec":{"containers":[{"image":"nginx","a\"b":1}]}}`, 1)}
	for _, rec := range recs {
		docs := map[bool]string{}
		for _, validated := range []bool{false, true} {
			r, err := ingest.NewReader(formats.Registry(), ingest.Options{Fields: event.AllFields()})
			if err != nil {
				t.Fatal(err)
			}
			read := r.Record
			if validated {
				read = r.RecordValidated
			}
			err = read(event.Origin{Name: "x"}, []byte(rec), func(e *event.Event) error {
				docs[validated] = string(e.AppendECS(nil))
				return nil
			})
			if err != nil || docs[validated] == "" {
				t.Fatalf("validated=%v: %v", validated, err)
			}
		}
		if docs[false] != docs[true] {
			t.Fatalf("documents differ:\n%s\n%s", docs[false], docs[true])
		}
	}
}

// A record that repeats a key inside an envelope — a JSON array, an
// EventList, AKS's records, CloudWatch's log events — is read both ways
// and costs no other record of the envelope.
func TestRepeatedKeyInEnvelopes(t *testing.T) {
	dupA := strings.Replace(withID("a"), `"verb":"get"`, `"verb":"get","verb":"list"`, 1)
	msg := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	cases := []struct{ name, input, want string }{
		{"array", `[` + dupA + `,` + withID("b") + `]`, "a@in:1 b@in:1"},
		{"eventlist", `{"kind":"EventList","items":[` + withID("z") + `,` + dupA + `,` + withID("b") + `]}`, "z@in:1 a@in:1 b@in:1"},
		{"aks records", `{"records":[{"category":"kube-audit","properties":{"log":` + msg(withID("z")) + `},"category":"kube-audit"},` +
			`{"category":"kube-audit","properties":{"log":` + msg(withID("b")) + `}}]}`, "z@in:1 b@in:1"},
		{"cloudwatch log events", `{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/c/cluster","logStream":"kube-apiserver-audit-1","subscriptionFilters":["f"],"logEvents":[` +
			`{"id":"1","timestamp":1,"message":` + msg(withID("z")) + `,"id":"1"},{"id":"2","timestamp":2,"message":` + msg(withID("b")) + `}]}`, "z@in:1 b@in:1"},
	}
	for _, c := range cases {
		res := read(t, c.input, ingest.Options{})
		if res.err != nil || strings.Join(res.ids, " ") != c.want || len(res.bad) != 0 {
			t.Errorf("%s: events %q, bad %q, err %v; want %q", c.name, res.ids, res.bad, res.err, c.want)
		}
	}
}
