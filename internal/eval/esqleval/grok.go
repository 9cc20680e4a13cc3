package esqleval

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/elastic/go-grok"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/pos"
	"github.com/kanon-dev/kanon/internal/query/esql"
)

// extractFn matches s and calls set(i, v) for each extracted column i. When
// s does not match, set is not called and every column is null.
type extractFn func(s string, set func(i int, v event.Value))

// extractor compiles GROK or DISSECT: the input expression, the extraction
// function, and the names and types of the columns it adds.
func (cp *compiler) extractor(cmd esql.Cmd) (cexpr, extractFn, []string, []typ) {
	var x esql.Expr
	var ex extractFn
	var names []string
	var types []typ
	var err error
	var patLoc pos.Span
	switch c := cmd.(type) {
	case *esql.GrokCmd:
		x, patLoc = c.X, c.PatternLoc
		ex, names, types, err = compileGrok(c.Pattern)
	case *esql.DissectCmd:
		x, patLoc = c.X, c.PatternLoc
		sep := ""
		if c.AppendSeparator != nil {
			sep = *c.AppendSeparator
		}
		ex, names, err = compileDissect(c.Pattern, sep)
		types = make([]typ, len(names))
		for i := range types {
			types[i] = tyString
		}
	}
	if err != nil {
		cp.errorf(patLoc, ErrInvalid, "invalid %s pattern: %v", cmd.Name(), err)
		return cexpr{}, nil, nil, nil
	}
	e, ok := cp.operand(x)
	if !ok {
		return cexpr{}, nil, nil, nil
	}
	return e, ex, names, types
}

// extracted records the columns that a GROK or DISSECT command adds and
// returns their lineage, in order.
func (cp *compiler) extracted(cmd esql.Cmd, names []string, types []typ) []*Column {
	origin := OriginGrok
	if _, ok := cmd.(*esql.DissectCmd); ok {
		origin = OriginDissect
	}
	lines := make([]*Column, len(names))
	for i, n := range names {
		lines[i] = cp.define(cmd, &Column{Name: n, Origin: origin, Type: typeName(types[i])})
	}
	return lines
}

// grokRef finds %{SYNTAX:name[:type]} references, as go-grok reads them.
var grokRef = regexp.MustCompile(`%{(\w+)(?::([\w+.]+)(?::(\w+))?)?}`)

// compileGrok compiles a grok pattern with Elastic's go-grok library and
// its default pattern set. Columns are the named captures in pattern order;
// ":int"/":long" give long, ":float"/":double" double, ":bool"/":boolean"
// boolean, and anything else keyword. A capture that matches the empty
// string is null.
func compileGrok(pattern string) (extractFn, []string, []typ, error) {
	g := grok.New()
	if err := g.Compile(pattern, true); err != nil {
		return nil, nil, nil, err
	}
	var names []string
	var types []typ
	index := map[string]int{}
	for _, m := range grokRef.FindAllStringSubmatch(pattern, -1) {
		if m[2] == "" {
			continue
		}
		if _, dup := index[m[2]]; dup {
			continue
		}
		index[m[2]] = len(names)
		names = append(names, m[2])
		t := tyString
		switch strings.ToLower(m[3]) {
		case "int", "long":
			t = tyLong
		case "float", "double":
			t = tyDouble
		case "bool", "boolean":
			t = tyBool
		}
		types = append(types, t)
	}
	ex := func(s string, set func(int, event.Value)) {
		captures, err := g.ParseTypedString(s)
		if err != nil {
			return
		}
		for name, v := range captures {
			i, ok := index[name]
			if !ok {
				continue
			}
			switch v := v.(type) {
			case string:
				set(i, event.Str(v))
			case int:
				set(i, event.Int(int64(v)))
			case float64:
				set(i, event.Float(v))
			case bool:
				set(i, event.Bool(v))
			}
		}
	}
	return ex, names, types, nil
}

// dissectKey is one %{...} of a dissect pattern.
type dissectKey struct {
	name   string
	skip   bool // %{} or %{?name}
	append bool // %{+name}
	pad    bool // %{name->}: the delimiter after it may repeat
}

// compileDissect compiles a dissect pattern: literal delimiters and %{key}
// fields, with the modifiers %{?key} (skip), %{+key} (append, joined by the
// append separator) and %{key->} (skip repeated delimiters). Reference keys
// (%{*key}, %{&key}) are not supported.
func compileDissect(pattern, sep string) (extractFn, []string, error) {
	var keys []dissectKey
	var delims []string // delims[0] precedes the first key; delims[i+1] follows key i
	rest := pattern
	i := strings.Index(rest, "%{")
	if i < 0 {
		return nil, nil, fmt.Errorf("no %%{key} in %q", pattern)
	}
	delims = append(delims, rest[:i])
	rest = rest[i:]
	for rest != "" {
		end := strings.IndexByte(rest, '}')
		if !strings.HasPrefix(rest, "%{") || end < 0 {
			return nil, nil, fmt.Errorf("unterminated key in %q", pattern)
		}
		spec := rest[2:end]
		rest = rest[end+1:]
		k := dissectKey{}
		if strings.HasSuffix(spec, "->") {
			k.pad, spec = true, strings.TrimSuffix(spec, "->")
		}
		switch {
		case spec == "" || strings.HasPrefix(spec, "?"):
			k.skip = true
		case strings.HasPrefix(spec, "+"):
			k.append, spec = true, spec[1:]
			if j := strings.IndexByte(spec, '/'); j >= 0 {
				spec = spec[:j]
			}
		case strings.HasPrefix(spec, "*") || strings.HasPrefix(spec, "&"):
			return nil, nil, fmt.Errorf("reference keys (%%{*key}, %%{&key}) are not supported")
		}
		k.name = spec
		keys = append(keys, k)
		next := strings.Index(rest, "%{")
		if next < 0 {
			delims = append(delims, rest)
			rest = ""
		} else {
			if next == 0 {
				return nil, nil, fmt.Errorf("keys must be separated by a delimiter in %q", pattern)
			}
			delims = append(delims, rest[:next])
			rest = rest[next:]
		}
	}
	var names []string
	index := map[string]int{}
	for _, k := range keys {
		if k.skip {
			continue
		}
		if _, ok := index[k.name]; !ok {
			index[k.name] = len(names)
			names = append(names, k.name)
		}
	}
	ex := func(s string, set func(int, event.Value)) {
		if !strings.HasPrefix(s, delims[0]) {
			return
		}
		s = s[len(delims[0]):]
		vals := make([]string, len(keys))
		for i := range keys {
			d := delims[i+1]
			var v string
			switch {
			case d == "":
				v, s = s, ""
			default:
				j := strings.Index(s, d)
				if j < 0 {
					return
				}
				v, s = s[:j], s[j+len(d):]
				if keys[i].pad {
					for strings.HasPrefix(s, d) {
						s = s[len(d):]
					}
				}
			}
			vals[i] = v
		}
		joined := make([]string, len(names))
		has := make([]bool, len(names))
		for i, k := range keys {
			if k.skip {
				continue
			}
			j := index[k.name]
			if has[j] && k.append {
				joined[j] += sep + vals[i]
			} else {
				joined[j] = vals[i]
			}
			has[j] = true
		}
		for j := range names {
			set(j, event.Str(joined[j]))
		}
	}
	return ex, names, nil
}
