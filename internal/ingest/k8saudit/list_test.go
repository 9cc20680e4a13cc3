package k8saudit_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// exampleLines returns the audit events of examples/logs/audit.log.
func exampleLines(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile("../../../examples/logs/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, l := range bytes.Split(data, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	if len(out) < 100 {
		t.Fatalf("examples/logs/audit.log has only %d events", len(out))
	}
	return out
}

// list wraps items into an EventList body as kube-apiserver sends it.
func list(items ...string) []byte {
	return []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[` + strings.Join(items, ",") + `]}`)
}

// ev is a small audit event whose auditID is id.
func ev(id string) string {
	return `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"` + id + `","stage":"ResponseComplete","requestURI":"/api","verb":"get","user":{"username":"system:anonymous"}}`
}

// split runs EachItem and describes what fn saw: "<index>:<auditID>" for
// each event, "<index>!<error>" for each bad item; err is EachItem's.
func split(t *testing.T, body []byte) (trace []string, err error) {
	t.Helper()
	err = k8saudit.EachItem(body, func(i int, item []byte, ierr error) error {
		if end, err := jsonx.SkipSyntax(item, 0); err != nil || end != len(item) {
			t.Fatalf("item %d is not one JSON value: %q", i, item)
		}
		if ierr != nil {
			var ie *k8saudit.ItemError
			if !errors.As(ierr, &ie) || ie.Index != i {
				t.Fatalf("item %d: error %v does not name the item", i, ierr)
			}
			trace = append(trace, fmt.Sprintf("%d!%v", i, ierr))
			return nil
		}
		if _, err := jsonx.Skip(item, 0); err != nil {
			t.Fatalf("item %d handed on unvalidated: %v", i, err)
		}
		var id []byte
		jsonx.Walk(item, 0, []string{"auditID"}, func(at int) {
			var scratch []byte
			id, _, _ = jsonx.ReadString(item, at, &scratch)
		})
		trace = append(trace, fmt.Sprintf("%d:%s", i, id))
		return nil
	})
	return trace, err
}

func TestEachItem(t *testing.T) {
	// want lists the trace: "0:a" an event, "1!text" a bad item whose
	// error contains text. wantErr is a substring of EachItem's error, and
	// is, when not nil, what it must wrap.
	f := func(name string, body []byte, want []string, wantErr string, is error) {
		t.Helper()
		got, err := split(t, body)
		if len(got) != len(want) {
			t.Errorf("%s: saw %q, want %q", name, got, want)
			return
		}
		for i := range want {
			if g, w := got[i], want[i]; g != w && !(strings.Contains(w, "!") && strings.HasPrefix(g, w[:strings.Index(w, "!")+1]) && strings.Contains(g, w[strings.Index(w, "!")+1:])) {
				t.Errorf("%s: item %d: saw %q, want %q", name, i, g, w)
			}
		}
		switch {
		case wantErr == "" && err != nil:
			t.Errorf("%s: error %v", name, err)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s: error %v, want one containing %q", name, err, wantErr)
		case is != nil && !errors.Is(err, is):
			t.Errorf("%s: error %v does not wrap %v", name, err, is)
		}
	}
	ok := func(ids ...string) []string {
		var out []string
		for i, id := range ids {
			out = append(out, fmt.Sprintf("%d:%s", i, id))
		}
		return out
	}
	f("events", list(ev("a"), ev("b"), ev("c")), ok("a", "b", "c"), "", nil)
	f("spaces", []byte(" {\n \"kind\" : \"EventList\" ,\n \"items\" : [\n  "+ev("a")+" ,\n  "+ev("b")+"\n ]\n}\n"), ok("a", "b"), "", nil)
	f("empty", list(), nil, "", nil)
	f("items null", []byte(`{"kind":"EventList","items":null}`), nil, "", nil)
	f("no kind", []byte(`{"items":[`+ev("a")+`]}`), ok("a"), "", nil)
	f("kind after items", []byte(`{"items":[`+ev("a")+`],"kind":"EventList"}`), ok("a"), "", nil)
	f("escaped kinds", []byte(`{"kind":"Event\u004cist","items":[{"kind":"\u0045vent","auditID":"a"}]}`), ok("a"), "", nil)
	f("no kind in items", list(`{"auditID":"a","stage":"ResponseComplete"}`, `{"requestURI":"/api","verb":"get","auditID":"b"}`), ok("a", "b"), "", nil)
	f("kind Event with other keys", list(`{"kind":"Event","auditID":"a","kubernetes":{"pod":"x"},"items":[],"@timestamp":"t","category":"x"}`), ok("a"), "", nil)

	// Bad items: reported for themselves, wherever they are.
	f("duplicate key", list(ev("a"), `{"kind":"Event","auditID":"b","user":{},"user":{}}`, ev("c")),
		[]string{"0:a", `1!items[1]: offset 294: duplicate key "user"`, "2:c"}, "", nil)
	f("nested duplicate", list(`{"kind":"Event","auditID":"a","requestObject":{"spec":{"x":[{"k":1,"k":2}]}}}`, ev("b")),
		[]string{`0!duplicate key "k"`, "1:b"}, "", nil)
	f("escaped duplicate", list(`{"kind":"Event","auditID":"a","verb":"get","v\u0065rb":"list"}`, ev("b")),
		[]string{`0!duplicate key "verb"`, "1:b"}, "", nil)
	f("duplicate kind", list(`{"kind":"Event","kind":"Event","auditID":"a"}`, ev("b")), []string{`0!duplicate key "kind"`, "1:b"}, "", nil)
	f("duplicate inside a non-object", list(`[{"a":1,"a":2}]`, ev("b")), []string{`0!duplicate key "a"`, "1:b"}, "", nil)
	for _, v := range []string{`1`, `"x"`, `[]`, `null`, `true`, `[` + ev("x") + `]`} {
		f("non-object "+v+" first", list(v, ev("a"), ev("b")), []string{"0!not an object", "1:a", "2:b"}, "", nil)
		f("non-object "+v+" later", list(ev("a"), ev("b"), v), []string{"0:a", "1:b", "2!not an object"}, "", nil)
	}
	for _, v := range []string{
		`{"foo":1}`, `{}`, `{"auditID":"x"}`, `{"auditID":5}`, `{"requestURI":"/","stage":"x"}`,
		`{"kind":"Pod","auditID":"x","stage":"y"}`, `{"kind":"EventList","items":[]}`, `{"kind":null,"auditID":"x","stage":"y"}`,
		`{"kind":1}`, `{"kind":"event","auditID":"x"}`,
		`{"auditID":"x","stage":"y","items":[]}`, `{"auditID":"x","stage":"y","kubernetes":{}}`, `{"auditID":"x","stage":"y","kubernetes.audit.verb":"get"}`,
		`{"kind":"Event","auditID":"x","p_log_type":"Amazon.EKS.Audit"}`, `{"kind":"Event","auditID":"x","protoPayload":{}}`,
		`{"kind":"Event","auditID":"x","logEvents":[]}`, `{"kind":"Event","auditID":"x","messageType":"DATA_MESSAGE"}`,
		`{"kind":"Event","auditID":"x","awslogs":{}}`, `{"requestURI":"/","verb":"get","events":[]}`,
		`{"kind":"Event","auditID":"x","records":[]}`, `{"auditID":"x","stage":"y","category":"kube-audit","properties":{}}`,
	} {
		f("not an event "+v+" first", list(v, ev("a"), ev("b")), []string{"0!not an audit event", "1:a", "2:b"}, "", nil)
		f("not an event "+v+" between", list(ev("a"), v, ev("b")), []string{"0:a", "1!not an audit event", "2:b"}, "", nil)
	}
	f("shape error of the kind", list(`{"kind":"Pod"}`), []string{`0!items[0]: wrong shape: not an audit event: kind "Pod"`}, "", nil)
	f("several bad", list(`1`, `{"foo":1}`, ev("a"), `{"a":1,"a":2}`, `"x"`, ev("b")),
		[]string{"0!not an object", "1!not an audit event", "2:a", `3!duplicate key "a"`, "4!not an object", "5:b"}, "", nil)

	// Breaks: the items before are delivered, the break is returned with
	// its index.
	f("invalid literal", list(ev("a"), `{"kind":"Event","auditID":"b","x":tru}`, ev("c")), ok("a"), "items[1]: offset", ingest.ErrSyntax)
	f("duplicate then bad syntax", list(ev("a"), `{"kind":"Event","k":1,"k":2,"x":}`, ev("c")), ok("a"), "items[1]:", ingest.ErrSyntax)
	f("bad string in kind", list(ev("a"), `{"kind":"Ev\qent"}`, ev("c")), ok("a"), "items[1]:", ingest.ErrSyntax)
	f("missing comma", []byte(`{"kind":"EventList","items":[`+ev("a")+` `+ev("b")+`]}`), ok("a"), "items[1]: offset", ingest.ErrSyntax)
	f("trailing comma", list(ev("a"), ""), ok("a"), "items[1]:", ingest.ErrSyntax)
	f("cut off after an item", []byte(`{"kind":"EventList","items":[`+ev("a")+`,`+ev("b")), ok("a", "b"), "items[2]: offset", ingest.ErrSyntax)
	f("cut off inside an item", []byte(`{"kind":"EventList","items":[`+ev("a")+`,`+ev("b")[:40]), ok("a"), "items[1]:", ingest.ErrSyntax)
	f("cut off at the start", []byte(`{"kind":"EventList","items":[`), nil, "items[0]:", ingest.ErrSyntax)
	f("too deep", list(ev("a"), `{"kind":"Event","x":`+strings.Repeat("[", jsonx.MaxDepth+1)+strings.Repeat("]", jsonx.MaxDepth+1)+`}`, ev("b")), ok("a"), "items[1]:", jsonx.ErrTooDeep)

	// Errors of the body.
	f("not an object", []byte(`[`+ev("a")+`]`), nil, "an EventList is a JSON object", ingest.ErrShape)
	f("not JSON", []byte(`EventList`), nil, "an EventList is a JSON object", ingest.ErrShape)
	f("without items", []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1"}`), nil, "EventList without items", ingest.ErrShape)
	f("items not an array", []byte(`{"kind":"EventList","items":{}}`), nil, "items: expected an array", ingest.ErrShape)
	f("items bad null", []byte(`{"kind":"EventList","items":nul}`), nil, "offset", ingest.ErrSyntax)
	f("wrong kind", []byte(`{"kind":"Event","items":[`+ev("a")+`]}`), nil, `kind "Event": expected "EventList"`, ingest.ErrShape)
	f("kind not a string", []byte(`{"kind":7,"items":[]}`), nil, `kind: expected "EventList"`, ingest.ErrShape)
	f("wrong kind after items", []byte(`{"items":[`+ev("a")+`],"kind":"Pod"}`), ok("a"), `kind "Pod"`, ingest.ErrShape)
	f("two items", []byte(`{"kind":"EventList","items":[`+ev("a")+`],"items":[`+ev("b")+`]}`), ok("a"), `duplicate key "items"`, ingest.ErrDuplicate)
	// A key repeated in the envelope's parts that nothing reads costs
	// nothing; a repeated kind or items is an error (above).
	f("duplicate metadata key", []byte(`{"kind":"EventList","metadata":{"a":1,"a":1},"metadata":{},"items":[`+ev("a")+`]}`), ok("a"), "", nil)
	f("two kinds", []byte(`{"kind":"EventList","kind":"EventList","items":[`+ev("a")+`]}`), nil, `duplicate key "kind"`, ingest.ErrDuplicate)
	f("bad JSON after items", []byte(`{"kind":"EventList","items":[`+ev("a")+`],"x":}`), ok("a"), "offset", ingest.ErrSyntax)
	f("data after the body", append(list(ev("a")), ` {"kind":"Event"}`...), ok("a"), "unexpected data after the EventList", ingest.ErrSyntax)
}

// fn's error stops EachItem and comes back as it is.
func TestEachItemStops(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := k8saudit.EachItem(list(ev("a"), `1`, ev("b"), ev("c")), func(i int, _ []byte, _ error) error {
		n++
		if i == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Fatalf("EachItem = %v after %d items; want the consumer's error after 3", err, n)
	}
}

// Splitting a list of real audit events allocates nothing.
func TestEachItemAllocations(t *testing.T) {
	var items []string
	for _, l := range exampleLines(t) {
		items = append(items, string(l))
	}
	body := list(items...)
	n := 0
	fn := func(_ int, _ []byte, err error) error {
		if err != nil {
			return err
		}
		n++
		return nil
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := k8saudit.EachItem(body, fn); err != nil {
			t.Fatal(err)
		}
	})
	if n != 21*len(items) {
		t.Fatalf("%d items seen, want %d", n, 21*len(items))
	}
	if allocs != 0 {
		t.Fatalf("EachItem allocates %v times per list of %d events", allocs, len(items))
	}
}
