package esqleval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
)

// eventFromECS builds an Event from an ECS document (nested objects, or
// dotted keys, or both). internal/event has no JSON constructor (readers
// live in internal/ingest), so the test sets the typed fields by field ID
// and keeps the whole document as a raw part for lazy fields.
func eventFromECS(doc []byte) (*event.Event, error) {
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	e := &event.Event{Raws: []event.Raw{{JSON: append([]byte(nil), doc...)}}}
	flat := map[string][]any{}
	flatten("", m, flat)
	names := make([]string, 0, len(flat))
	for n := range flat {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		vals := flat[name]
		strs := make([]string, 0, len(vals))
		for _, v := range vals {
			strs = append(strs, fmt.Sprint(v))
		}
		s := ""
		if len(strs) > 0 {
			s = strs[0]
		}
		f := event.Lookup(name)
		switch f.ID() {
		case event.FieldTimestamp:
			t, ok := event.ParseTime(s)
			if !ok {
				return nil, fmt.Errorf("bad @timestamp %q", s)
			}
			e.Timestamp = t
		case event.FieldDataStreamNS:
			e.Namespace = s
		case event.FieldCloudProvider:
			e.CloudProvider = s
		case event.FieldClusterName:
			e.ClusterName = s
		case event.FieldKind:
			e.Kind = s
		case event.FieldAPIVersion:
			e.APIVersion = s
		case event.FieldLevel:
			e.Level = s
		case event.FieldAuditID:
			e.AuditID = s
		case event.FieldStage:
			e.Stage = s
		case event.FieldRequestURI:
			e.RequestURI = s
		case event.FieldVerb:
			e.Verb = s
		case event.FieldUsername:
			e.User.Username = s
		case event.FieldUID:
			e.User.UID = s
		case event.FieldGroups:
			e.User.Groups = strs
		case event.FieldImpUsername:
			e.ImpersonatedUser.Username = s
		case event.FieldImpUID:
			e.ImpersonatedUser.UID = s
		case event.FieldImpGroups:
			e.ImpersonatedUser.Groups = strs
		case event.FieldSourceIPs, event.FieldSourceIP:
			e.SourceIPs = strs
		case event.FieldUserAgent:
			e.UserAgent = s
		case event.FieldObjResource:
			e.ObjectRef.Resource = s
		case event.FieldObjNamespace:
			e.ObjectRef.Namespace = s
		case event.FieldObjName:
			e.ObjectRef.Name = s
		case event.FieldObjUID:
			e.ObjectRef.UID = s
		case event.FieldObjAPIGroup:
			e.ObjectRef.APIGroup = s
		case event.FieldObjAPIVersion:
			e.ObjectRef.APIVersion = s
		case event.FieldObjSubresource:
			e.ObjectRef.Subresource = s
		case event.FieldRespCode:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad response code %q", s)
			}
			e.ResponseStatus.Code, e.ResponseStatus.HasCode = n, true
		case event.FieldRespStatus:
			e.ResponseStatus.Status = s
		case event.FieldRespMessage:
			e.ResponseStatus.Message = s
		case event.FieldRespReason:
			e.ResponseStatus.Reason = s
		case event.FieldRequestReceived, event.FieldStageTimestamp:
			t, ok := event.ParseTime(s)
			if !ok {
				return nil, fmt.Errorf("bad %s %q", name, s)
			}
			ts := event.Timestamp{Raw: s, T: t}
			if f.ID() == event.FieldStageTimestamp {
				e.StageTimestamp = ts
			} else {
				e.RequestReceivedTimestamp = ts
			}
		case event.FieldAnnotation:
			e.Annotations = append(e.Annotations, event.Annotation{
				Key: strings.TrimPrefix(name, "kubernetes.audit.annotations."), Value: s})
		}
	}
	return e, nil
}

// flatten collects the scalar values of a document by dotted name; arrays
// of scalars give several values; arrays of objects are left to the raw
// part.
func flatten(prefix string, v any, out map[string][]any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			flatten(name, x, out)
		}
	case []any:
		for _, x := range v {
			if _, obj := x.(map[string]any); !obj {
				out[prefix] = append(out[prefix], x)
			}
		}
	case nil:
	default:
		out[prefix] = append(out[prefix], v)
	}
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
