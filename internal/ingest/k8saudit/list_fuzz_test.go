package k8saudit_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// newReader returns a generic reader (every format, detected) that
// materialises every field and appends "bad: <error>" to *out for each bad
// record or part of one.
func newReader(t testing.TB, out *[]string) *ingest.Reader {
	t.Helper()
	rd, err := ingest.NewReader(formats.Registry(), ingest.Options{
		Fields: event.AllFields(),
		OnBad:  func(b ingest.BadRecord) { *out = append(*out, "bad: "+b.Err.Error()) },
		OnSkip: func(b ingest.BadRecord) { *out = append(*out, "skipped: "+b.Err.Error()) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return rd
}

// describe appends an event as its reader and ECS document.
func describe(t testing.TB, out *[]string) func(*event.Event) error {
	return func(e *event.Event) error {
		doc, err := json.Marshal(e.Document())
		if err != nil {
			t.Fatalf("document of %s: %v", e.Origin, err)
		}
		*out = append(*out, "event "+e.Reader+": "+string(doc))
		return nil
	}
}

var origin = event.Origin{Name: "body"}

// whole reads body as one record through the generic reader.
func whole(t testing.TB, body []byte) []string {
	var out []string
	if err := newReader(t, &out).Record(origin, body, describe(t, &out)); err != nil {
		t.Fatalf("Record: %v", err)
	}
	return out
}

// itemByItem splits body with EachItem and reads each good item as a
// record of its own through the generic reader, as a webhook that splits
// in one goroutine and decodes in another does.
func itemByItem(t testing.TB, body []byte) []string {
	var out, bad []string
	rd := newReader(t, &bad)
	err := k8saudit.EachItem(body, func(i int, item []byte, err error) error {
		dup := errors.Is(err, jsonx.ErrDuplicateKey)
		if err != nil && !dup {
			out = append(out, "bad: "+err.Error())
			return nil
		}
		if dup {
			// As the webhook does: an item whose only problem is a
			// repeated key is a record of its own, read both ways.
			if err := rd.Record(origin, item, describe(t, &out)); err != nil {
				t.Fatalf("Record: %v", err)
			}
		} else {
			if end, err := jsonx.Skip(item, 0); err != nil || end != len(item) {
				t.Fatalf("item %d handed on as an event is not one valid JSON value (%v): %q", i, err, item)
			}
			if err := rd.RecordValidated(origin, item, describe(t, &out)); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
		for _, b := range bad {
			// The whole list names the item of a bad part; a record of
			// its own does not.
			out = append(out, strings.Replace(b, "bad: ", fmt.Sprintf("bad: items[%d]: ", i), 1))
		}
		bad = bad[:0]
		return nil
	})
	if err != nil {
		out = append(out, "bad: "+err.Error())
	}
	return out
}

// agree checks the differential property on body: one record through the
// generic reader gives exactly what EachItem and item-by-item decoding
// give, in order (events by their ECS documents, bad items by their
// errors).
func agree(t testing.TB, body []byte) {
	t.Helper()
	body = bytes.TrimLeft(body, " \t\r\n")
	if kind, ok := ingest.FirstKind(body); !ok || string(kind) != "EventList" {
		// Only a body that starts {"kind":"EventList" is known to be a
		// list without reading it (the webhook splits only those).
		body = []byte(`{"kind":"EventList","items":` + string(body) + `}`)
	}
	w, s := whole(t, body), itemByItem(t, body)
	if !slices.Equal(w, s) {
		t.Fatalf("body %q\nread whole:\n  %s\nitem by item:\n  %s", clip(body), strings.Join(w, "\n  "), strings.Join(s, "\n  "))
	}
}

func clip(b []byte) string {
	if len(b) > 2000 {
		return string(b[:2000]) + "..."
	}
	return string(b)
}

// brokenItems are items with every problem EachItem reports for the item
// alone, and items that EachItem passes but decoding refuses.
var brokenItems = []string{
	`{"kind":"Event","auditID":"dup","user":{"username":"a"},"user":{"username":"b"}}`,
	`{"kind":"Event","auditID":"nested","requestObject":{"a":{"b":1,"b":2}}}`,
	`1`, `"x"`, `[]`, `null`, `[{"kind":"Event","auditID":"in-array"}]`,
	`{"foo":1}`, `{}`, `{"kind":"Pod","auditID":"p","stage":"s"}`, `{"kind":null,"auditID":"n","stage":"s"}`,
	`{"kind":"EventList","items":[{"kind":"Event","auditID":"inner"}]}`, `{"auditID":"l","stage":"s","items":[]}`,
	`{"auditID":"e","stage":"s","kubernetes":{"audit":{}}}`, `{"kind":"Event","p_log_type":"Amazon.EKS.Audit"}`,
	`{"kind":"Event","auditID":"g","protoPayload":{}}`, `{"kind":"Event","messageType":"DATA_MESSAGE","logEvents":[]}`,
	`{"records":[{"category":"kube-audit"}]}`, `{"requestURI":"/","verb":"get","events":[]}`,
	`{"kind":"Event","auditID":"shape","stageTimestamp":42}`, `{"kind":"Event","auditID":5}`,
	`{"kind":"Event","auditID":"t","requestReceivedTimestamp":"yesterday"}`, `{"kind":"Event","user":{"groups":"x"}}`,
}

// breaks are bodies whose items array breaks.
var breaks = []string{
	`{"kind":"EventList","items":[{"kind":"Event","auditID":"a"},{"kind":"Event","x":tru},{"kind":"Event","auditID":"c"}]}`,
	`{"kind":"EventList","items":[{"kind":"Event","auditID":"a"} {"kind":"Event","auditID":"b"}]}`,
	`{"kind":"EventList","items":[{"kind":"Event","auditID":"a"},]}`,
	`{"kind":"EventList","items":[{"kind":"Event","auditID":"a"},{"kind":"Event","aud`,
	`{"kind":"EventList","items":[{"kind":"Event","auditID":"a"}],"items":[]}`,
	`{"kind":"EventList","items":[{"kind":"Event","auditID":"a"}]} trailing`,
	`{"kind":"EventList","items":{}}`, `{"kind":"EventList"}`, `{"kind":"EventList","items":null}`,
	`{"kind":"EventList","metadata":{"a":1,"a":2},"items":[]}`,
}

// seeds returns the real events wrapped in EventLists (as they are, and
// without kind and apiVersion, as some senders write items), the broken
// items among them, and the breaks. With full, the first two lists hold
// all the example events; the fuzz target takes short lists, which it
// mutates faster.
func seeds(t testing.TB, full bool) [][]byte {
	lines := exampleLines(t)
	var out [][]byte
	var all, bare []string
	for _, l := range lines {
		all = append(all, string(l))
		bare = append(bare, strings.Replace(string(l), `{"kind":"Event","apiVersion":"audit.k8s.io/v1",`, `{`, 1))
	}
	if full {
		out = append(out, list(all...), list(bare...))
	} else {
		out = append(out, list(all[:3]...), list(bare[3:6]...))
	}
	for i := 0; i+5 <= len(lines); i += 37 {
		out = append(out, list(all[i:i+5]...))
	}
	for i, b := range brokenItems {
		out = append(out, list(all[i%len(all)], b, bare[(i+1)%len(bare)]))
	}
	for _, b := range breaks {
		out = append(out, []byte(b))
	}
	return out
}

// The seeds agree, so the fuzz target starts from a passing corpus.
func TestEachItemAgreesWithReader(t *testing.T) {
	for _, s := range seeds(t, true) {
		agree(t, s)
	}
}

// FuzzEachItem: for any body, reading it as one record through the
// generic reader gives the same events (their ECS documents, in order)
// and the same bad items as splitting it with EachItem and reading each
// item as a record of its own.
func FuzzEachItem(f *testing.F) {
	for _, s := range seeds(f, false) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		agree(t, body)
	})
}

// Inserting one bad item anywhere into a good list loses no other item:
// every event of the list is read, in order, and the bad item is reported
// once with its index.
func TestEachItemLosesNothingElse(t *testing.T) {
	lines := exampleLines(t)[:12]
	var good []string
	for _, l := range lines {
		good = append(good, string(l))
	}
	want := whole(t, list(good...))
	if len(want) != len(good) {
		t.Fatalf("the good list reads as %q", want)
	}
	for _, b := range brokenItems {
		for pos := 0; pos <= len(good); pos++ {
			insertOne(t, good, want, b, pos)
		}
	}
}

// insertOne checks the list good with item inserted at pos: the events
// of good (want) are all read, and item is either one more event at pos
// or one bad item named items[pos].
func insertOne(t testing.TB, good, want []string, item string, pos int) {
	t.Helper()
	items := slices.Insert(slices.Clone(good), pos, item)
	got := whole(t, list(items...))
	prefix := fmt.Sprintf("bad: items[%d]: ", pos)
	switch {
	case len(got) == len(want)+1 && strings.HasPrefix(got[pos], prefix):
	case len(got) == len(want)+1 && strings.HasPrefix(got[pos], "event "):
	default:
		t.Fatalf("item %q at %d: read\n  %s\nwant the %d events with one more line at %d", item, pos, strings.Join(got, "\n  "), len(want), pos)
	}
	if rest := slices.Delete(slices.Clone(got), pos, pos+1); !slices.Equal(rest, want) {
		t.Fatalf("item %q at %d: the other items read as\n  %s\nwant\n  %s", item, pos, strings.Join(rest, "\n  "), strings.Join(want, "\n  "))
	}
}

// FuzzEachItemInsert: any one JSON value inserted anywhere into a good
// list loses no other item (a value with invalid syntax breaks the list,
// which EachItem documents; it is not tried).
func FuzzEachItemInsert(f *testing.F) {
	for _, b := range brokenItems {
		f.Add([]byte(b), uint8(len(b)))
	}
	f.Add([]byte(`{"kind":"Event","auditID":"new"}`), uint8(3))
	lines := exampleLines(f)[:6]
	var good []string
	for _, l := range lines {
		good = append(good, string(l))
	}
	want := whole(f, list(good...))
	f.Fuzz(func(t *testing.T, item []byte, pos uint8) {
		item = bytes.TrimSpace(item)
		if end, err := jsonx.SkipSyntax(item, 0); err != nil || end != len(item) {
			return
		}
		insertOne(t, good, want, string(item), int(pos)%(len(good)+1))
	})
}

// An item EachItem passes is one the formats registry reads as a
// Kubernetes audit event on its own, for every combination of the keys
// that formats are detected by.
func TestItemRuleMatchesRegistry(t *testing.T) {
	keys := []string{
		`"auditID":"a"`, `"stage":"ResponseComplete"`, `"requestURI":"/api"`, `"verb":"get"`, `"items":[]`,
		`"kubernetes":{}`, `"kubernetes.audit.verb":"get"`, `"p_log_type":"Amazon.EKS.Audit"`, `"protoPayload":{}`,
		`"logEvents":[]`, `"messageType":"DATA_MESSAGE"`, `"awslogs":{}`, `"records":[]`, `"events":[]`,
		`"category":"kube-audit"`, `"properties":{}`,
	}
	kinds := []string{``, `"kind":"Event"`, `"kind":"EventList"`, `"kind":"Pod"`, `"kind":null`}
	passed := 0
	var members []string
	for _, kind := range kinds {
		for set := 0; set < 1<<len(keys); set++ {
			members = members[:0]
			if kind != "" {
				members = append(members, kind)
			}
			for i, k := range keys {
				if set&(1<<i) != 0 {
					members = append(members, k)
				}
			}
			item := "{" + strings.Join(members, ",") + "}"
			var itemErr error
			if err := k8saudit.EachItem(list(item), func(_ int, _ []byte, err error) error { itemErr = err; return nil }); err != nil {
				t.Fatalf("%s: %v", item, err)
			}
			if itemErr != nil {
				if !errors.Is(itemErr, ingest.ErrShape) {
					t.Fatalf("%s: %v, want a shape error", item, itemErr)
				}
				continue
			}
			passed++
			var out []string
			rd := newReader(t, &out)
			if err := rd.Record(origin, []byte(item), describe(t, &out)); err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || !strings.HasPrefix(out[0], "event k8s: ") {
				t.Fatalf("EachItem passes %s, but on its own it reads as %q", item, out)
			}
		}
	}
	// kind "Event": auditID, stage, requestURI, verb, items, kubernetes and
	// a kubernetes.audit. key in any combination, with category or
	// properties or neither (2^7*3); no kind: the 7 combinations of the
	// four with auditID and stage or requestURI and verb, times the same 3.
	if passed != 2*2*2*2*2*2*2*3+7*3 {
		t.Fatalf("%d combinations pass, want %d", passed, 2*2*2*2*2*2*2*3+7*3)
	}
}
