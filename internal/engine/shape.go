package engine

import (
	"strings"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/eval/esqleval"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/rule"
)

// Shape is the JSON shape of an alert field: it depends on the field and
// the rule, never on the event, so that jq filters and Elasticsearch
// mappings see one type per field.
type Shape uint8

// Shapes of alert fields.
const (
	// ShapeValue is one value (string, number or boolean) or null.
	ShapeValue Shape = iota + 1
	// ShapeList is a list of values, or null when there are none.
	ShapeList
	// ShapeObject is an object (a part of the event's document) or null.
	ShapeObject
)

// String names the shape.
func (s Shape) String() string {
	switch s {
	case ShapeValue:
		return "value"
	case ShapeList:
		return "list"
	case ShapeObject:
		return "object"
	}
	return "unknown"
}

// listField reports whether an event field is a list: the fields that are
// arrays in audit events (source IPs, groups, and source.ip made of the
// source IPs), and fields outside kanon's schema, whose shape is not known.
func listField(f event.Field) bool {
	switch f.ID() {
	case event.FieldSourceIPs, event.FieldSourceIP, event.FieldGroups, event.FieldImpGroups:
		return true
	case event.FieldLazy:
		return f.Type != event.TypeObject
	}
	return false
}

// fieldShape is the shape of an output field.
func fieldShape(f event.Field) Shape {
	switch {
	case f.Type == event.TypeObject:
		return ShapeObject
	case listField(f):
		return ShapeList
	}
	return ShapeValue
}

// FieldShape returns the shape of the alert field named name in r's alerts
// (an output field, an ES|QL column, or new_terms), and false when r's
// alerts have no such field. A field outside kanon's schema is a list,
// except that one that holds an object in the event's document gives that
// object. A single-valued field that holds several values in an odd record
// (an ECS document with an array where the schema has one value) gives the
// first.
func FieldShape(r *rule.Compiled, name string) (Shape, bool) {
	if r.Program != nil {
		l := r.Program.Lineage()
		out := l.Output()
		for i := len(out) - 1; i >= 0; i-- {
			if out[i].Name == name {
				if l.MultiValued(out[i], listField) {
					return ShapeList, true
				}
				return ShapeValue, true
			}
		}
		if !r.Program.PerEvent() {
			return 0, false // aggregate alerts carry the columns only
		}
	}
	if name == "new_terms" && r.NewTerms != nil || name == AmbiguousField {
		return ShapeList, true
	}
	for _, o := range r.Outputs {
		if o.Name == name {
			return fieldShape(o.Field), true
		}
	}
	return 0, false
}

// columnShapes returns, for each output column of p, whether it is a list.
func columnShapes(p *esqleval.Program) []bool {
	l := p.Lineage()
	out := make([]bool, len(p.Columns()))
	for i, c := range l.Output() {
		if i < len(out) {
			out[i] = l.MultiValued(c, listField)
		}
	}
	return out
}

// OutputFields returns the rule's output fields of e, each in its shape
// (FieldShape). An output field that names an object
// (kubernetes.audit.annotations, ...) carries that part of doc, the event's
// canonical document (nil: such fields are null).
func OutputFields(r *rule.Compiled, e *event.Event, doc map[string]any) alert.Fields {
	var buf [8]event.Value
	out := make(alert.Fields, 0, len(r.Outputs))
	for _, o := range r.Outputs {
		shape := fieldShape(o.Field)
		var vs []event.Value
		if shape != ShapeObject {
			vs = e.Get(o.Field, buf[:0])
		}
		if shape == ShapeObject || o.Field.ID() == event.FieldLazy && len(vs) == 0 {
			if v, ok := docPath(doc, o.Field.Name).(map[string]any); ok {
				out = append(out, alert.Field{Name: o.Name, Value: v})
				continue
			}
		}
		out = append(out, alert.Field{Name: o.Name, Value: shaped(vs, shape == ShapeList)})
	}
	return out
}

// shaped returns values as one value (the first) or as a list; none is
// nil. Strings are copied: the values may lie in a batch's memory, and
// an alert outlives its batch in the outputs that hold alerts to the end.
func shaped(vs []event.Value, list bool) any {
	switch {
	case len(vs) == 0:
		return nil
	case !list:
		return owned(vs[0])
	}
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = owned(v)
	}
	return out
}

// owned returns v.Any() with a string copied.
func owned(v event.Value) any {
	if v.Kind == event.KindString {
		return strings.Clone(v.S)
	}
	return v.Any()
}

// docPath returns the value at a dotted path of a document, or nil.
func docPath(doc map[string]any, path string) any {
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

// rowFields turns an output row into alert fields, each column in its
// shape (lists[i]: the column is a list); a null cell is null.
func rowFields(cols []string, row esqleval.Row, lists []bool) alert.Fields {
	out := make(alert.Fields, 0, len(cols))
	for i, c := range cols {
		var cell []event.Value
		if i < len(row) {
			cell = row[i]
		}
		out = append(out, alert.Field{Name: c, Value: shaped(cell, i < len(lists) && lists[i])})
	}
	return out
}
