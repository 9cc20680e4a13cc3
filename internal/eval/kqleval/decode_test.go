package kqleval

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/ingest/k8saudit"
)

// auditKeys are the keys of a Kubernetes audit Event (audit.k8s.io/v1)
// and of the objects in it that conformance documents use.
var auditKeys = map[string][]string{
	"": {"kind", "apiVersion", "level", "auditID", "stage", "requestURI", "verb", "user", "impersonatedUser",
		"sourceIPs", "userAgent", "objectRef", "responseStatus", "requestObject", "responseObject",
		"requestReceivedTimestamp", "stageTimestamp", "annotations"},
	"user":             {"username", "uid", "groups", "extra"},
	"impersonatedUser": {"username", "uid", "groups", "extra"},
	"objectRef":        {"resource", "namespace", "name", "uid", "apiGroup", "apiVersion", "resourceVersion", "subresource"},
	"responseStatus":   {"kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"},
}

// checkAuditKeys reports a key that a Kubernetes audit Event does not
// have: the reader ignores such keys (or keeps them raw), so a typo in a
// document would silently test a missing field.
func checkAuditKeys(doc []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return err
	}
	for k, v := range top {
		if !slices.Contains(auditKeys[""], k) {
			return fmt.Errorf("%q is not a field of an audit Event", k)
		}
		allowed, nested := auditKeys[k]
		if !nested {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil {
			continue // null, or a shape error the reader reports
		}
		for kk := range obj {
			if !slices.Contains(allowed, kk) {
				return fmt.Errorf("%q is not a field of %s", kk, k)
			}
		}
	}
	return nil
}

// readAudit reads doc, one Kubernetes audit Event in JSON, with kanon's
// production reader (the k8s format of the formats registry, as
// `--format k8s` selects it), materialising the fields of fields only, and
// calls fn with the event; the event is valid during the call only.
func readAudit(doc string, fields event.FieldSet, fn func(*event.Event)) error {
	if err := checkAuditKeys([]byte(doc)); err != nil {
		return err
	}
	r, err := ingest.NewReader(formats.Registry(), ingest.Options{Format: k8saudit.Name, Fields: fields, Strict: true})
	if err != nil {
		return err
	}
	n := 0
	err = r.Record(event.Origin{Name: "document"}, []byte(doc), func(e *event.Event) error {
		n++
		fn(e)
		return nil
	})
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("the reader yields %d events, want 1", n)
	}
	return nil
}

// TestReadAudit checks the conformance suite's reading of documents: the
// production reader's fields, typos and records the reader rejects.
func TestReadAudit(t *testing.T) {
	var fs event.FieldSet
	fs.Add(event.Lookup("kubernetes.audit.verb"))
	fs.Add(event.Lookup("kubernetes.audit.annotations.authorization_k8s_io/decision"))
	got := ""
	err := readAudit(`{"verb":"get","annotations":{"authorization.k8s.io/decision":"allow"}}`, fs, func(e *event.Event) {
		got = e.Verb + " " + e.Annotations[0].Key + "=" + e.Annotations[0].Value
	})
	if err != nil || got != "get authorization_k8s_io/decision=allow" {
		t.Fatalf("read %q, %v", got, err)
	}
	for doc, want := range map[string]string{
		`{"verbb":"get"}`:                 `"verbb" is not a field of an audit Event`,
		`{"objectRef":{"resources":"x"}}`: `"resources" is not a field of objectRef`,
		`{"verb":1}`:                      "kubernetes.audit.verb: expected a string",
		`{"verb":"get"`:                   "unexpected end of JSON input",
	} {
		if err := readAudit(doc, fs, func(*event.Event) {}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", doc, err, want)
		}
	}
}
