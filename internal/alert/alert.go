package alert

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Alert is one alert.
type Alert struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"@timestamp"`
	Title     string    `json:"title,omitempty"`
	Rule      Rule      `json:"rule"`
	// Fields are the output fields (short names, e.g. "username") or, for
	// aggregating ES|QL rules, the columns of the output row.
	Fields Fields `json:"fields"`
	// Window is the rule run that raised the alert: the run of a
	// scheduled rule (Elastic's semantics), with its max_signals.
	Window *Window `json:"window,omitempty"`
	// Evidence names the events an aggregating (ES|QL STATS) alert counts.
	Evidence *Evidence `json:"evidence,omitempty"`
	// Dropped marks a hit that was not raised because its run reached
	// max_signals: delivered only when asked for (kanon scan
	// --dropped-hits), never counted as raised, never recorded in the
	// state store.
	Dropped bool `json:"dropped,omitempty"`
	// Group is set when repeated alerts are grouped (dedup).
	Group *Group `json:"group,omitempty"`
	// Origin is where the event came from (file:line or input name).
	Origin string `json:"origin,omitempty"`
	// Reader is the format the event was read with.
	Reader string `json:"reader,omitempty"`
	// Event is the matching event as its canonical ECS document.
	Event map[string]any `json:"event,omitempty"`
}

// Rule describes the rule that raised an alert.
type Rule struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Type is Elastic's rule type (query, esql, new_terms), for rules that
	// have Elastic's semantics; empty otherwise.
	Type string `json:"type,omitempty"`
	// Language is what the rule's query is written in (kuery, esql).
	Language string `json:"language,omitempty"`
	// Firing is when the rule fires (per_event, scheduled, new_terms).
	Firing         string   `json:"firing,omitempty"`
	Severity       string   `json:"severity"`
	RiskScore      int      `json:"risk_score"`
	Threat         []Threat `json:"threat,omitempty"`
	References     []string `json:"references,omitempty"`
	Tags           []string `json:"tags,omitempty"`
	Runbook        string   `json:"runbook,omitempty"`
	Note           string   `json:"note,omitempty"`
	Description    string   `json:"description,omitempty"`
	FalsePositives []string `json:"false_positives,omitempty"`
	Source         string   `json:"source,omitempty"`
}

// Threat is a MITRE ATT&CK mapping.
type Threat struct {
	Framework string      `json:"framework"`
	Tactic    Ref         `json:"tactic"`
	Technique []Technique `json:"technique,omitempty"`
}

// Ref is a tactic or sub-technique.
type Ref struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Reference string `json:"reference,omitempty"`
}

// Technique is a technique with its sub-techniques.
type Technique struct {
	Ref
	Subtechnique []Ref `json:"subtechnique,omitempty"`
}

// Window is a rule run: [Start, End).
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// MaxSignals is the run's cap on alerts (0: lifted, or no cap).
	MaxSignals int `json:"max_signals,omitempty"`
	// Dropped is how many hits of the run were not raised because it
	// reached MaxSignals, when known: always for aggregating rules, whose
	// runs close before they alert; for per-event hits, only in outputs
	// written once the input ended (a table, -o json), as a streamed
	// alert is written before its run is over.
	Dropped int64 `json:"dropped,omitempty"`
}

// Evidence is what an aggregating alert counts: Total events, of which
// Events are the first few (at most esqleval.EvidenceLimit) in time order.
type Evidence struct {
	Total  int64      `json:"total"`
	Events []EventRef `json:"events"`
}

// EventRef names one event behind an alert.
type EventRef struct {
	Timestamp time.Time `json:"@timestamp"`
	AuditID   string    `json:"audit_id,omitempty"`
	Origin    string    `json:"origin,omitempty"`
}

// Group describes a group of repeated alerts (Panther's dedup).
type Group struct {
	Key       string           `json:"key"`
	Count     int64            `json:"count"`
	FirstSeen time.Time        `json:"first_seen"`
	LastSeen  time.Time        `json:"last_seen"`
	Samples   []map[string]any `json:"samples,omitempty"`
}

// Field is one output field.
type Field struct {
	Name  string
	Value any // string, int64, float64, bool, []any, or nil
}

// Fields are output fields in a fixed order; they marshal as a JSON
// object with keys in that order.
type Fields []Field

// Get returns the value of the field named name.
func (fs Fields) Get(name string) (any, bool) {
	for _, f := range fs {
		if f.Name == name {
			return f.Value, true
		}
	}
	return nil, false
}

// MarshalJSON writes the fields as an object in order.
func (fs Fields) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, f := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(f.Name)
		v, err := json.Marshal(f.Value)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads an object (order as written is kept).
func (fs *Fields) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytesReader(b))
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t == nil {
		*fs = nil
		return nil
	}
	*fs = (*fs)[:0]
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*fs = append(*fs, Field{Name: kt.(string), Value: v})
	}
	return nil
}

// ID returns a deterministic alert id from its parts: the hex of the first
// 16 bytes of SHA-256 over the parts, each followed by a zero byte.
func ID(parts ...string) string {
	var stack [256]byte
	b := stack[:0]
	for _, p := range parts {
		b = AppendIDPart(b, p)
	}
	return IDOf(b)
}

// AppendIDPart appends part p of an alert id, for IDOf.
func AppendIDPart(b []byte, p string) []byte {
	return append(append(b, p...), 0)
}

// IDOf is ID of the parts appended to b by AppendIDPart (or written there
// in pieces: a part, then a zero byte).
func IDOf(b []byte) string {
	sum := sha256.Sum256(b)
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

// Marshal returns the alert as one line of JSON (no newline).
func Marshal(a *Alert) ([]byte, error) {
	return json.Marshal(a)
}
