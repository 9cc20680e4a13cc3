package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/jsonx"
)

// ErrAmbiguous is the category of the warning about a record whose
// repeated object keys make the loaded rules' fields read differently by
// parsers that keep the first member of a key and by those that keep the
// last: it is evaluated both ways.
var ErrAmbiguous = errors.New("repeated object key read two ways")

// Readings decodes a record that repeats a key in one of its objects.
// JSON parsers disagree on such a record (Go's encoding/json, and so
// kube-apiserver, keeps the last member; others keep the first, or refuse
// it), so an attacker could send a request that one reads as anonymous and
// another does not. kanon reads it both ways (jsonx.Readings) with
// decode, which must emit through d: when the two readings give every
// field the loaded rules read (d.Fields) the same values, the first is
// emitted and the repetition costs nothing; when they differ, the first
// is emitted with Ambiguous naming the fields and Alt holding the other
// reading — the engine matches a rule if either reading matches — and the
// record is reported as a warning. If one reading cannot be decoded the
// other is emitted, marked ambiguous; if neither can, the first one's
// error is returned.
func (d *Decoder) Readings(rec []byte, decode func(rec []byte) error) error {
	first, last, dups, err := jsonx.Readings(rec, 0)
	if err != nil {
		return err
	}
	d.repeated++
	a, badA, errA := d.reading(first, decode)
	b, badB, errB := d.reading(last, decode)
	// The bad parts reported are those of the reading whose events are
	// emitted: reporting both would count a part twice.
	bads := badA
	switch {
	case errA != nil && errB != nil:
		return errA
	case errA != nil:
		a, b, bads = b, nil, badB
		for _, e := range a {
			e.Ambiguous = []string{"(the record read with the first of each repeated key is not an event)"}
		}
	case errB != nil:
		for _, e := range a {
			e.Ambiguous = []string{"(the record read with the last of each repeated key is not an event)"}
		}
	}
	for _, br := range bads {
		d.Bad(br.Err)
	}
	for i, e := range a {
		if i < len(b) {
			if diff := differ(e, b[i]); len(diff) > 0 {
				e.Ambiguous, e.Alt = diff, b[i]
				b[i].Ambiguous = diff
			}
		}
		if len(e.Ambiguous) > 0 && d.warn != nil {
			d.warn(BadRecord{Origin: e.Origin, Err: fmt.Errorf("%w: the keys %q repeat, and the rules' fields %q differ between the readings; an alert raised on either says so", ErrAmbiguous, dups, e.Ambiguous)})
		}
		if err := d.Emit(e); err != nil {
			return err
		}
	}
	return nil
}

// reading decodes one reading, collecting its events and bad parts.
func (d *Decoder) reading(rec []byte, decode func([]byte) error) ([]*event.Event, []BadRecord, error) {
	var evs []*event.Event
	var bads []BadRecord
	d.collect, d.bads = &evs, &bads
	defer func() { d.collect, d.bads = nil, nil }()
	if err := decode(rec); err != nil {
		return nil, nil, err
	}
	return evs, bads, nil
}

// Element decodes one element of a batch record (a member of an
// envelope's array) with decode, which emits through d: an element that
// repeats a key is read both ways (Readings), the others as they are.
// Formats that loop over elements call it, so that a repeated key costs
// no more than the element, and is resolved like one in a record of its
// own.
func (d *Decoder) Element(rec []byte, decode func(rec []byte) error) error {
	emitted := d.emitted + int64(len(derefEvents(d.collect)))
	err := decode(rec)
	if err != nil && errors.Is(err, ErrDuplicate) && d.emitErr == nil && d.emitted+int64(len(derefEvents(d.collect))) == emitted {
		return d.Readings(rec, decode)
	}
	return err
}

func derefEvents(p *[]*event.Event) []*event.Event {
	if p == nil {
		return nil
	}
	return *p
}

// differ returns the fields whose values differ between two readings of
// one record, as the readers filled them (only the fields the rules read).
func differ(a, b *event.Event) []string {
	fa, fb := flatten(a.Document()), flatten(b.Document())
	var out []string
	for k, v := range fa {
		if w, ok := fb[k]; !ok || v != w {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// flatten maps each leaf of a document to its JSON value, by dotted path.
func flatten(doc map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
			return
		}
		b, _ := json.Marshal(v)
		out[prefix] = string(b)
	}
	walk("", doc)
	return out
}
