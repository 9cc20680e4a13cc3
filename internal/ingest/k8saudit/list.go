package k8saudit

import (
	"errors"
	"fmt"

	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// ItemError is the error of one item of an EventList: a bad item, or the
// place where the items array stops being readable.
type ItemError struct {
	// Index is the item's position in the items array, from 0.
	Index int
	// Err is what is wrong with it.
	Err error
}

func (e *ItemError) Error() string { return fmt.Sprintf("items[%d]: %v", e.Index, e.Err) }

// Unwrap returns the reason, for errors.Is against ingest.ErrShape,
// ingest.ErrSyntax and ingest.ErrDuplicate.
func (e *ItemError) Unwrap() error { return e.Err }

// EachItem calls fn with each item of the audit.k8s.io EventList body, in
// order: its index in the items array, the item (a sub-slice of body, from
// its first byte to its last) and nil when the item is an audit event, or
// an *ItemError saying why it is not. It is the only reader of EventLists:
// decoding an EventList record uses it, and a webhook can split a body in
// the request's goroutine and decode the items in another.
//
// Every item fn sees is one well-formed JSON value, and an item handed to
// fn with a nil error is validated in full, as jsonx.Skip validates: its
// syntax and duplicate keys at every depth. It may therefore be decoded
// without checking it again (Reader.RecordValidated, or a Decoder with
// Validated set), in another goroutine too: the item aliases body.
//
// An item is an audit event when it is a JSON object that
//   - has kind "Event" or no kind at all (an item whose kind is any other
//     value, null included, is not an event);
//   - has none of the keys that other formats' records are known by:
//     p_log_type (Panther), protoPayload (GKE), logEvents, messageType,
//     awslogs or events (EKS's CloudWatch Logs envelopes), records, or
//     category with properties (AKS diagnostic logs);
//   - when it has no kind: has auditID and stage, or requestURI and verb
//     (the keys Format.Detect asks of an object without kind), and has
//     neither items (it would be a list) nor kubernetes nor a
//     "kubernetes.audit." key (it would be an ECS document).
//
// These are the objects that the formats registry decodes as Kubernetes
// audit events when it reads them as records of their own, so decoding an
// item on its own gives the event that decoding the whole list gives.
//
// A bad item — a duplicate key, a value that is not an object (1, "x",
// []), an object that is not an audit event — is reported to fn for that
// item alone (`items[4]: offset 2310: duplicate key "user"`), and the
// items after it are still read: the rule is the same at every position.
//
// When fn returns an error, EachItem stops and returns that error as it
// is. Otherwise EachItem returns nil once it has read the whole body, or
// an error for the body as a whole:
//
//   - the body is not a JSON object, has a kind other than "EventList",
//     has no items, or its items are neither an array nor null (null is
//     an empty list); an error wrapping ingest.ErrShape;
//   - a duplicate key or invalid JSON outside the items array, or
//     anything but whitespace after the body's object;
//   - the items array breaks: an item with invalid JSON syntax (or nested
//     deeper than jsonx.MaxDepth), whose end therefore cannot be found, or
//     a missing ',' or ']' between items. fn has been called for the items
//     before the break; the *ItemError names the index of the item where
//     the break is, and nothing after it is read.
//
// Members of the body are read in order, so an error found after the
// items array (a second items, a kind after the items that is not
// EventList) is returned after fn has seen the items. Offsets in errors
// are offsets in body.
//
// On the common path (items that are audit events) EachItem allocates
// nothing per item: only the scratch space for keys with escapes, which
// grows a few times per body at most. It keeps no reference to body or fn
// after it returns.
func EachItem(body []byte, fn func(index int, item []byte, err error) error) error {
	i := jsonx.SkipWS(body, 0)
	if jsonx.TypeAt(body, i) != jsonx.Object {
		return fmt.Errorf("%w: an EventList is a JSON object", ingest.ErrShape)
	}
	var top, item jsonx.ObjectIter
	// The envelope's members are read for their syntax only: a key
	// repeated in parts nothing reads (metadata) costs nothing, while a
	// repeated kind or items is an error (two lists in one body).
	top.Trusted = true
	if err := top.Begin(body, i); err != nil {
		return err
	}
	found, kinds := false, 0
	for top.Next() {
		switch ingest.BytesToString(top.Key) {
		case "kind":
			if kinds++; kinds > 1 {
				return &jsonx.SyntaxError{Off: top.Value, Msg: `duplicate key "kind"`, Code: jsonx.ErrDuplicateKey}
			}
			end, err := listKind(body, top.Value, &top.Scratch)
			if err != nil {
				return err
			}
			top.Consumed(end)
		case "items":
			if found {
				return &jsonx.SyntaxError{Off: top.Value, Msg: `duplicate key "items"`, Code: jsonx.ErrDuplicateKey}
			}
			found = true
			end, err := eachItem(body, top.Value, &item, fn)
			if err != nil {
				return err
			}
			top.Consumed(end)
		default:
			end, err := jsonx.SkipSyntax(body, top.Value)
			if err != nil {
				return err
			}
			top.Consumed(end)
		}
	}
	if top.Err != nil {
		return top.Err
	}
	if !found {
		return fmt.Errorf("%w: EventList without items", ingest.ErrShape)
	}
	if j := jsonx.SkipWS(body, top.End); j < len(body) {
		return &jsonx.SyntaxError{Off: j, Msg: "unexpected data after the EventList", Code: jsonx.ErrSyntax}
	}
	return nil
}

// listKind checks the kind of an EventList body, at body[at].
func listKind(body []byte, at int, scratch *[]byte) (int, error) {
	if jsonx.TypeAt(body, at) != jsonx.String {
		if _, err := jsonx.Skip(body, at); err != nil {
			return at, err
		}
		return at, fmt.Errorf("%w: kind: expected \"EventList\"", ingest.ErrShape)
	}
	kind, end, err := jsonx.ReadString(body, at, scratch)
	if err != nil {
		return at, err
	}
	if string(kind) != "EventList" {
		return at, fmt.Errorf("%w: kind %q: expected \"EventList\"", ingest.ErrShape, kind)
	}
	return end, nil
}

// eachItem reads the items value at body[at] and returns the offset after
// it; it is an error of the body (not of an item) when it is neither an
// array nor null.
func eachItem(body []byte, at int, it *jsonx.ObjectIter, fn func(int, []byte, error) error) (int, error) {
	switch jsonx.TypeAt(body, at) {
	case jsonx.Array:
	case jsonx.Null:
		return jsonx.Skip(body, at)
	default:
		if _, err := jsonx.Skip(body, at); err != nil {
			return at, err
		}
		return at, fmt.Errorf("%w: items: expected an array", ingest.ErrShape)
	}
	j := jsonx.SkipWS(body, at+1)
	if j < len(body) && body[j] == ']' {
		return j + 1, nil
	}
	for idx := 0; ; idx++ {
		j = jsonx.SkipWS(body, j)
		end, bad, err := scanItem(body, j, it)
		if err != nil {
			return j, &ItemError{Index: idx, Err: err}
		}
		if bad != nil {
			err = fn(idx, body[j:end], &ItemError{Index: idx, Err: bad})
		} else {
			err = fn(idx, body[j:end], nil)
		}
		if err != nil {
			return end, err
		}
		j = jsonx.SkipWS(body, end)
		switch {
		case j >= len(body):
			return j, &ItemError{Index: idx + 1, Err: &jsonx.SyntaxError{Off: j, Msg: "unterminated items array", Code: jsonx.ErrSyntax}}
		case body[j] == ']':
			return j + 1, nil
		case body[j] != ',':
			return j, &ItemError{Index: idx + 1, Err: &jsonx.SyntaxError{Off: j, Msg: "expected ',' or ']' after an item", Code: jsonx.ErrSyntax}}
		}
		j++
	}
}

// scanItem validates the item at body[at] and returns its end and, when
// the item is bad but its end is known, why it is bad. brk is set instead
// when the end cannot be found (invalid syntax, nesting too deep).
func scanItem(body []byte, at int, it *jsonx.ObjectIter) (end int, bad, brk error) {
	if jsonx.TypeAt(body, at) != jsonx.Object {
		end, err := jsonx.Skip(body, at)
		if err != nil {
			return endAfterDuplicate(body, at, err)
		}
		return end, fmt.Errorf("%w: not an audit event: %s, not an object", ingest.ErrShape, typeName(jsonx.TypeAt(body, at))), nil
	}
	var keys ingest.Keys
	var kind []byte
	kindString := false
	if err := it.Begin(body, at); err != nil {
		return at, nil, err
	}
	for it.Next() {
		k := it.Key
		switch ingest.BytesToString(k) {
		case "kind":
			keys |= ingest.KeyKind
			if jsonx.TypeAt(body, it.Value) == jsonx.String {
				s, end, err := jsonx.ReadString(body, it.Value, &it.Scratch)
				if err != nil {
					return at, nil, err
				}
				kind, kindString = s, true
				it.Consumed(end)
			}
		case "auditID":
			keys |= ingest.KeyAuditID
		case "stage":
			keys |= ingest.KeyStage
		case "requestURI":
			keys |= ingest.KeyRequestURI
		case "verb":
			keys |= ingest.KeyVerb
		case "items":
			keys |= ingest.KeyItems
		case "kubernetes":
			keys |= ingest.KeyKubernetes
		case "p_log_type":
			keys |= ingest.KeyPLogType
		case "protoPayload":
			keys |= ingest.KeyProtoPayload
		case "logEvents":
			keys |= ingest.KeyLogEvents
		case "messageType":
			keys |= ingest.KeyMessageType
		case "awslogs":
			keys |= ingest.KeyAwslogs
		case "events":
			keys |= ingest.KeyEvents
		case "records":
			keys |= ingest.KeyRecords
		case "category":
			keys |= ingest.KeyCategory
		case "properties":
			keys |= ingest.KeyProperties
		default:
			if len(k) > len(dottedAudit) && string(k[:len(dottedAudit)]) == dottedAudit {
				keys |= ingest.KeyDottedAudit
			}
		}
	}
	if it.Err != nil {
		return endAfterDuplicate(body, at, it.Err)
	}
	return it.End, notEvent(keys, kind, kindString), nil
}

// dottedAudit starts the flattened keys of ECS documents (as ingest.Sniff
// recognises them).
const dottedAudit = "kubernetes.audit."

// CheckItem applies EachItem's rule to one item without repeated keys:
// nil when it is an audit event, the reason otherwise.
func CheckItem(item []byte) error {
	var it jsonx.ObjectIter
	_, bad, brk := scanItem(item, 0, &it)
	if brk != nil {
		return brk
	}
	return bad
}

// endAfterDuplicate turns the validation error err of the item at
// body[at] into scanItem's results: a duplicate key is the item's
// problem when the item is otherwise well-formed (its end is then
// known); anything else breaks the list.
func endAfterDuplicate(body []byte, at int, err error) (int, error, error) {
	if !errors.Is(err, jsonx.ErrDuplicateKey) {
		return at, nil, err
	}
	end, serr := jsonx.SkipSyntax(body, at)
	if serr != nil {
		return at, nil, serr
	}
	return end, err, nil
}

// otherFormats are the top-level keys that make an object another
// format's record, whatever its kind (see EachItem).
var otherFormats = []struct {
	keys ingest.Keys
	name string
}{
	{ingest.KeyPLogType, "p_log_type (a Panther record)"},
	{ingest.KeyProtoPayload, "protoPayload (a GKE log entry)"},
	{ingest.KeyLogEvents, "logEvents (a CloudWatch Logs envelope)"},
	{ingest.KeyMessageType, "messageType (a CloudWatch Logs envelope)"},
	{ingest.KeyAwslogs, "awslogs (a CloudWatch Logs envelope)"},
	{ingest.KeyEvents, "events (a CloudWatch Logs envelope)"},
	{ingest.KeyRecords, "records (an AKS diagnostic log)"},
	{ingest.KeyCategory | ingest.KeyProperties, "category and properties (an AKS diagnostic log)"},
}

// otherFormatKeys is the union of otherFormats' keys but the pair.
const otherFormatKeys = ingest.KeyPLogType | ingest.KeyProtoPayload | ingest.KeyLogEvents | ingest.KeyMessageType |
	ingest.KeyAwslogs | ingest.KeyEvents | ingest.KeyRecords

// notEvent returns why an object item with these top-level keys (and kind,
// when kindString) is not an audit event, or nil when it is one.
func notEvent(keys ingest.Keys, kind []byte, kindString bool) error {
	if keys.Has(ingest.KeyKind) {
		if !kindString {
			return fmt.Errorf("%w: not an audit event: kind is not a string", ingest.ErrShape)
		}
		if string(kind) != "Event" {
			return fmt.Errorf("%w: not an audit event: kind %q", ingest.ErrShape, kind)
		}
	}
	if keys.Any(otherFormatKeys) || keys.Has(ingest.KeyCategory|ingest.KeyProperties) {
		for _, o := range otherFormats {
			if keys.Has(o.keys) {
				return fmt.Errorf("%w: not an audit event: it has %s", ingest.ErrShape, o.name)
			}
		}
	}
	if keys.Has(ingest.KeyKind) {
		return nil
	}
	switch {
	case keys.Any(ingest.KeyKubernetes | ingest.KeyDottedAudit):
		return fmt.Errorf("%w: not an audit event: no kind, and kubernetes fields of an ECS document", ingest.ErrShape)
	case keys.Has(ingest.KeyItems):
		return fmt.Errorf("%w: not an audit event: no kind, and items of a list", ingest.ErrShape)
	case !keys.Has(ingest.KeyAuditID|ingest.KeyStage) && !keys.Has(ingest.KeyRequestURI|ingest.KeyVerb):
		return fmt.Errorf("%w: not an audit event: no kind, and neither auditID and stage nor requestURI and verb", ingest.ErrShape)
	}
	return nil
}

func typeName(t jsonx.Type) string {
	switch t {
	case jsonx.Null:
		return "null"
	case jsonx.Bool:
		return "a boolean"
	case jsonx.Number:
		return "a number"
	case jsonx.String:
		return "a string"
	case jsonx.Array:
		return "an array"
	}
	return "an object"
}
