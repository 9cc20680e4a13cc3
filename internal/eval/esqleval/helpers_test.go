package esqleval

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/ecs"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
)

// readECS reads doc, one ECS document of Elastic's kubernetes.audit_logs
// data stream (nested objects, dotted keys, or both), with kanon's
// production reader (the ecs format of the formats registry, as `--format
// ecs` selects it), materialising the fields of fields, and calls fn with
// the event; the event is valid during the call only.
func readECS(doc string, fields event.FieldSet, fn func(*event.Event) error) error {
	r, err := ingest.NewReader(formats.Registry(), ingest.Options{Format: ecs.Name, Fields: fields, Strict: true})
	if err != nil {
		return err
	}
	n := 0
	err = r.Record(event.Origin{Name: "document"}, []byte(doc), func(e *event.Event) error {
		n++
		return fn(e)
	})
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("the reader yields %d events, want 1", n)
	}
	return nil
}

// ecsEvent reads doc as readECS does, for p, and returns a copy of the
// event that owns its memory.
func ecsEvent(t testing.TB, p *Program, doc string) *event.Event {
	t.Helper()
	var out *event.Event
	if err := readECS(doc, p.Fields(), func(e *event.Event) error { out = e.Clone(); return nil }); err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	return out
}

// formatCell renders a cell canonically: null, a scalar, or [a, b] for a
// multi-valued cell. Strings and dates are JSON-quoted (dates in RFC 3339),
// longs are plain and doubles always show a decimal point or exponent, so
// that an expectation of 3 (long) differs from 3.0 (double).
func formatCell(vs []event.Value) string {
	if len(vs) == 0 {
		return "null"
	}
	parts := make([]string, len(vs))
	for i, v := range vs {
		switch v.Kind {
		case event.KindString:
			b, _ := json.Marshal(v.S)
			parts[i] = string(b)
		case event.KindTime:
			parts[i] = strconv.Quote(v.String())
		case event.KindFloat:
			s := strconv.FormatFloat(v.F, 'g', -1, 64)
			if !strings.ContainsAny(s, ".eEnN") {
				s += ".0"
			}
			parts[i] = s
		default:
			parts[i] = v.String()
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// formatJSONCell renders an expected cell (decoded with UseNumber) in the
// same canonical form; numbers keep their text.
func formatJSONCell(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case []any:
		if len(v) == 0 {
			return "null"
		}
		if len(v) == 1 {
			return formatJSONCell(v[0])
		}
		parts := make([]string, len(v))
		for i, x := range v {
			parts[i] = formatJSONCell(x)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case json.Number:
		return v.String()
	case string:
		b, _ := json.Marshal(v)
		return string(b)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

func formatRow(r Row) string {
	parts := make([]string, len(r))
	for i, c := range r {
		parts[i] = formatCell(c)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
