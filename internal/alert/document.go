package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"gopkg.in/yaml.v3"
)

// DocumentSink writes the alerts at Close as one document, in JSON or
// YAML:
//
//	{"alerts": [...], "rules": {"<rule id>": {...}}}
//
// alerts are in time order (a dropped hit among them, marked "dropped"),
// each with its rule's id, name, severity and risk score (SlimRule) unless
// the sink was made with ruleDetails; rules holds the whole static
// description of every rule that raised or dropped an alert, once.
//
// It keeps a copy of each alert (sharing the alert's event document and
// field values, which the engine builds anew for every alert and never
// changes). It is safe for concurrent use.
type DocumentSink struct {
	mu          sync.Mutex
	w           io.Writer
	yaml        bool
	ruleDetails bool
	alerts      []*Alert
	rules       map[string]Rule
	tally       Tally
}

// NewJSONDocumentSink writes a JSON document to w.
func NewJSONDocumentSink(w io.Writer, ruleDetails bool) *DocumentSink {
	return &DocumentSink{w: w, ruleDetails: ruleDetails, rules: map[string]Rule{}}
}

// NewYAMLDocumentSink writes the same document as YAML, keys in the same
// order.
func NewYAMLDocumentSink(w io.Writer, ruleDetails bool) *DocumentSink {
	s := NewJSONDocumentSink(w, ruleDetails)
	s.yaml = true
	return s
}

// Write implements Sink.
func (s *DocumentSink) Write(_ context.Context, a *Alert) error {
	c := *a
	c.Fields = append(Fields(nil), a.Fields...)
	if a.Window != nil {
		w := *a.Window
		c.Window = &w
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rules[a.Rule.ID]; !ok {
		s.rules[a.Rule.ID] = a.Rule
	}
	if !s.ruleDetails {
		c.Rule = SlimRule(a.Rule)
	}
	s.alerts = append(s.alerts, &c)
	return nil
}

// SetTally implements Tallied.
func (s *DocumentSink) SetTally(t Tally) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tally = t
}

// document is what DocumentSink writes.
type document struct {
	Alerts []*Alert         `json:"alerts"`
	Rules  map[string]*Rule `json:"rules"`
}

// Close writes the document.
func (s *DocumentSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sort.SliceStable(s.alerts, func(i, j int) bool {
		a, b := s.alerts[i], s.alerts[j]
		if !a.Timestamp.Equal(b.Timestamp) {
			return a.Timestamp.Before(b.Timestamp)
		}
		if a.Rule.ID != b.Rule.ID {
			return a.Rule.ID < b.Rule.ID
		}
		return a.ID < b.ID
	})
	doc := document{Alerts: s.alerts, Rules: map[string]*Rule{}}
	if doc.Alerts == nil {
		doc.Alerts = []*Alert{}
	}
	for _, a := range s.alerts {
		if s.tally != nil && a.Window != nil {
			a.Window.Dropped = max(a.Window.Dropped, s.tally(a.Rule.ID, a.Window.End))
		}
	}
	for id, r := range s.rules {
		doc.Rules[id] = &r
	}
	s.alerts = nil
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot write alerts: %w", err)
	}
	if s.yaml {
		n, err := jsonToYAML(b)
		if err != nil {
			return fmt.Errorf("BUG: cannot convert alerts to YAML: %w", err)
		}
		enc := yaml.NewEncoder(s.w)
		enc.SetIndent(2)
		if err := enc.Encode(n); err != nil {
			return fmt.Errorf("cannot write alerts: %w", err)
		}
		return enc.Close()
	}
	if _, err := s.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("cannot write alerts: %w", err)
	}
	return nil
}

// jsonToYAML converts one JSON value into a YAML node, keeping the order
// of object keys (a map would sort them).
func jsonToYAML(b []byte) (*yaml.Node, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := yamlValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return n, nil
}

func yamlValue(dec *json.Decoder) (*yaml.Node, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch x := t.(type) {
	case json.Delim:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		if x == '{' {
			n = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		}
		for dec.More() {
			if x == '{' {
				k, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := k.(string)
				n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key})
			}
			v, err := yamlValue(dec)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: x}, nil
	case json.Number:
		tag := "!!int"
		if bytes.ContainsAny([]byte(x), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: x.String()}, nil
	case bool:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: fmt.Sprint(x)}, nil
	case nil:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", t)
}
