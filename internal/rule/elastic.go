package rule

import (
	"errors"
	"fmt"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/kanon-dev/kanon/internal/pos"
)

// ErrUnsupportedType is the category of an Elastic rule whose type kanon
// does not run (eql, threshold, machine_learning, threat_match, ...).
var ErrUnsupportedType = errors.New("unsupported rule type")

// elasticFile is the part of an Elastic detection-rules TOML file
// (github.com/elastic/detection-rules, rules/**/*.toml) that kanon reads.
type elasticFile struct {
	Metadata struct {
		CreationDate string   `toml:"creation_date"`
		UpdatedDate  string   `toml:"updated_date"`
		Integration  []string `toml:"integration"`
		Maturity     string   `toml:"maturity"`
	} `toml:"metadata"`
	Rule struct {
		Author            []string        `toml:"author"`
		Description       string          `toml:"description"`
		FalsePositives    []string        `toml:"false_positives"`
		From              string          `toml:"from"`
		Index             []string        `toml:"index"`
		Interval          string          `toml:"interval"`
		Language          string          `toml:"language"`
		License           string          `toml:"license"`
		MaxSignals        int             `toml:"max_signals"`
		Name              string          `toml:"name"`
		Note              string          `toml:"note"`
		Setup             string          `toml:"setup"`
		Query             string          `toml:"query"`
		References        []string        `toml:"references"`
		RiskScore         int             `toml:"risk_score"`
		RuleID            string          `toml:"rule_id"`
		Severity          string          `toml:"severity"`
		Tags              []string        `toml:"tags"`
		TimestampOverride string          `toml:"timestamp_override"`
		Type              string          `toml:"type"`
		Version           int             `toml:"version"`
		Threat            []Threat        `toml:"threat"`
		NewTerms          *elasticNewTerm `toml:"new_terms"`
	} `toml:"rule"`
}

// elasticNewTerm is Elastic's new_terms block: field = "new_terms_fields"
// with the fields as value, and history_window_start as a list of one
// {field, value}.
type elasticNewTerm struct {
	Field              string   `toml:"field"`
	Value              []string `toml:"value"`
	HistoryWindowStart []struct {
		Field string `toml:"field"`
		Value string `toml:"value"`
	} `toml:"history_window_start"`
}

// ParseElastic reads an Elastic detection rule in its TOML form and
// returns the kanon rule that runs it: the query verbatim, the metadata as
// Elastic gives it, the id being Elastic's rule_id. Query errors point into
// the TOML file. The rule always has Elastic's semantics: its type sets its
// language and firing, and Elastic's schedule applies. Rules whose type
// kanon does not run are refused with an error wrapping ErrUnsupportedType.
// The errors of a file that decodes are returned together.
func ParseElastic(name string, data []byte) (*Rule, error) {
	src := pos.NewSource(name, string(data))
	var f elasticFile
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			off := src.Offset(pe.Position.Line, pe.Position.Col)
			return nil, pos.Errorf(src, pos.Span{Start: off, End: off + 1}, ErrSyntax, "cannot parse Elastic rule file: %s", pe.Message)
		}
		return nil, pos.Errorf(src, pos.Span{}, ErrSyntax, "cannot parse Elastic rule file: %v", err)
	}
	er := f.Rule
	keyAt := func(key ...string) pos.Span {
		// BurntSushi/toml has no key positions: find the key's line.
		needle := key[len(key)-1] + " = "
		if i := strings.Index(src.Text, "\n"+needle); i >= 0 {
			return pos.Span{Start: i + 1, End: i + 1 + len(needle) - 3}
		}
		return pos.Span{}
	}
	switch er.Type {
	case TypeQuery, TypeESQL, TypeNewTerms:
	case "":
		return nil, pos.Errorf(src, pos.Span{}, ErrInvalid, "not an Elastic rule file: no rule.type")
	default:
		return nil, pos.Errorf(src, keyAt("type"), ErrUnsupportedType, "rule %q is of type %s, which kanon does not run (query, esql and new_terms rules are supported)", er.Name, er.Type)
	}
	_ = md
	r := &Rule{
		File:           name,
		Src:            src,
		ID:             er.RuleID,
		Name:           er.Name,
		Description:    strings.TrimSpace(er.Description),
		Type:           er.Type,
		Language:       er.Language,
		Firing:         TypeFiring(er.Type), // always Elastic's semantics
		Query:          er.Query,
		Index:          er.Index,
		Severity:       er.Severity,
		RiskScore:      er.RiskScore,
		Threat:         er.Threat,
		Tags:           er.Tags,
		References:     er.References,
		Author:         er.Author,
		License:        er.License,
		Version:        er.Version,
		Note:           er.Note,
		FalsePositives: trimAll(er.FalsePositives),
		Source:         &Source{Vendor: "elastic", RuleID: er.RuleID, Version: f.Metadata.UpdatedDate},
	}
	var errs pos.ErrorList
	if er.Setup != "" {
		r.Note = strings.TrimSpace(r.Note + "\n\n## Setup\n\n" + er.Setup)
	}
	if er.Interval != "" {
		d, err := ParseDuration(er.Interval)
		if err != nil {
			errs.Add(pos.Errorf(src, keyAt("interval"), ErrInvalid, "interval: %v", err))
		} else {
			r.Schedule.Interval = Duration(d)
		}
	}
	r.Schedule.From = er.From
	r.Schedule.MaxSignals = er.MaxSignals
	if er.Language == "kuery" || er.Language == "" && er.Type != TypeESQL {
		r.Language = LangKuery
	}
	if er.Type == TypeNewTerms {
		nt := &NewTerms{}
		if er.NewTerms != nil {
			nt.Fields = er.NewTerms.Value
			for _, h := range er.NewTerms.HistoryWindowStart {
				if h.Field == "history_window_start" {
					nt.HistoryWindowStart = h.Value
				}
			}
		}
		r.NewTerms = nt
	}
	var notes []string
	if er.TimestampOverride != "" {
		notes = append(notes, fmt.Sprintf("Elastic runs this rule on %s (timestamp_override); kanon runs every rule on the event time, @timestamp.", er.TimestampOverride))
	}
	r.Notes = strings.Join(notes, "\n")
	// The query, parsed where it stands in the TOML file.
	if r.Query != "" {
		if i := strings.Index(src.Text, r.Query); i >= 0 {
			p := src.Position(i)
			r.QuerySrc = pos.NewEmbeddedSource(name, strings.TrimRight(r.Query, "\n"), p.Line, p.Col, 0)
		}
	}
	if sp := keyAt("rule_id"); sp.End > 0 {
		r.Positions.ID = src.Position(sp.Start)
	}
	// kanon's keys, where Elastic's file has them.
	tomlKey := map[string]string{"id": "rule_id", "schedule": "from", "new_terms": "new_terms"}
	validate(&checker{r: r, src: src, errs: &errs, keyAt: func(key string) pos.Span {
		if k, ok := tomlKey[key]; ok {
			key = k
		}
		return keyAt(key)
	}})
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

func trimAll(ss []string) []string {
	out := make([]string, 0, len(ss))
	for _, s := range ss {
		out = append(out, strings.Join(strings.Fields(s), " "))
	}
	return out
}
