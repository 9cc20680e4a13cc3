package rule

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"sort"
	"strings"

	"github.com/kanon-dev/kanon/internal/pos"
	"gopkg.in/yaml.v3"
)

// Error categories; test with errors.Is.
var (
	ErrSyntax    = errors.New("rule file is not valid YAML")
	ErrUnknown   = errors.New("unknown key")
	ErrType      = errors.New("wrong type")
	ErrInvalid   = errors.New("invalid rule")
	ErrQuery     = errors.New("invalid query")
	ErrDuplicate = errors.New("duplicate")
)

// fieldError is an error at a YAML node, turned into a *pos.Error by the
// loader (which has the source).
type fieldError struct {
	line, col int
	code      error
	msg       string
}

func (e *fieldError) Error() string { return fmt.Sprintf("%d:%d: %s", e.line, e.col, e.msg) }

func errAt(n *yaml.Node, code error, format string, args ...any) error {
	return &fieldError{line: n.Line, col: n.Column, code: code, msg: fmt.Sprintf(format, args...)}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
var nodeType = reflect.TypeFor[yaml.Node]()

// decodeStrict decodes n into out (a pointer), refusing unknown and
// duplicate keys, with the position of every error.
func decodeStrict(n *yaml.Node, out any) error {
	return decodeValue(n, reflect.ValueOf(out).Elem())
}

func decodeValue(n *yaml.Node, v reflect.Value) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return nil
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			var fe *fieldError
			if errors.As(err, &fe) {
				return fe
			}
			return errAt(n, ErrType, "%s", cleanYAMLError(err))
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := decodeValue(n, p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return errAt(n, ErrType, "expected a mapping, got %s", kindName(n))
		}
		t := v.Type()
		fields := map[string]int{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			fields[tag] = i
			names = append(names, tag)
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			idx, ok := fields[k.Value]
			if !ok {
				return errAt(k, ErrUnknown, "unknown key %q (known keys: %s)", k.Value, strings.Join(sortedCopy(names), ", "))
			}
			if seen[k.Value] {
				return errAt(k, ErrDuplicate, "key %q appears twice", k.Value)
			}
			seen[k.Value] = true
			if err := decodeValue(val, v.Field(idx)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if n.Tag == "!!null" {
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return errAt(n, ErrType, "expected a list, got %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := decodeValue(item, s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return errAt(n, ErrType, "expected a mapping, got %s", kindName(n))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if seen[n.Content[i].Value] {
				return errAt(n.Content[i], ErrDuplicate, "key %q appears twice", n.Content[i].Value)
			}
			seen[n.Content[i].Value] = true
		}
	}
	if n.Kind != yaml.ScalarNode && v.Kind() != reflect.Map && v.Kind() != reflect.Interface {
		return errAt(n, ErrType, "expected a %s, got %s", v.Kind(), kindName(n))
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return errAt(n, ErrType, "%s", cleanYAMLError(err))
	}
	return nil
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// cleanYAMLError removes yaml.v3's "yaml: line N:" prefixes (the position
// is added by the loader).
func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "yaml: unmarshal errors:\n")
	s = strings.TrimSpace(s)
	if i := strings.Index(s, ": "); i > 0 && strings.HasPrefix(s, "line ") {
		s = s[i+2:]
	}
	return s
}

// Parse parses one rule file. name is used in error positions. The rule
// is validated and its queries parsed; compile it with Compile.
func Parse(name string, data []byte) (*Rule, error) {
	src := pos.NewSource(name, string(data))
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line := 1
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		if _, e := fmt.Sscanf(msg, "line %d:", &line); e == nil {
			msg = strings.TrimSpace(msg[strings.IndexByte(msg, ':')+1:])
		}
		return nil, pos.Errorf(src, pos.Span{Start: src.Offset(line, 1), End: src.Offset(line, 1) + 1}, ErrSyntax, "cannot parse rule file: %s", msg)
	}
	if len(doc.Content) == 0 {
		return nil, pos.Errorf(src, pos.Span{}, ErrInvalid, "rule file is empty")
	}
	root := doc.Content[0]
	r := &Rule{File: name}
	if err := decodeStrict(root, r); err != nil {
		return nil, toPosError(src, err)
	}
	var errs pos.ErrorList
	validate(r, root, src, &errs)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

func toPosError(src *pos.Source, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		off := src.Offset(fe.line, fe.col)
		return pos.Errorf(src, pos.Span{Start: off, End: off + 1}, fe.code, "%s", fe.msg)
	}
	return pos.Errorf(src, pos.Span{}, ErrInvalid, "%s", err.Error())
}

// node returns the value node of key in a mapping node, or nil.
func node(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// keyNode returns the key node of key in a mapping node, or m itself.
func keyNode(m *yaml.Node, key string) *yaml.Node {
	if m != nil && m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i]
			}
		}
	}
	return m
}

// embeddedSource places the text of a scalar node at its position in the
// file, so that errors in a query point into the rule file.
func embeddedSource(src *pos.Source, n *yaml.Node) *pos.Source {
	text := strings.TrimRight(n.Value, "\n")
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		// The text starts on the line after the indicator, at the block's
		// indentation.
		line := n.Line + 1
		for line <= strings.Count(src.Text, "\n")+1 {
			off := src.Offset(line, 1)
			lt := src.LineText(off)
			if strings.TrimSpace(lt) != "" {
				indent := len(lt) - len(strings.TrimLeft(lt, " "))
				return pos.NewEmbeddedSource(src.Name, text, line, indent+1, indent)
			}
			line++
		}
		return pos.NewEmbeddedSource(src.Name, text, n.Line, n.Column, 0)
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		return pos.NewEmbeddedSource(src.Name, text, n.Line, n.Column+1, n.Column)
	default:
		return pos.NewEmbeddedSource(src.Name, text, n.Line, n.Column, n.Column-1)
	}
}

// LoadFS loads every rule file (*.yaml, *.yml) under dir of fsys,
// recursively in name order. It returns all errors of all files together;
// on any error it returns no rules.
func LoadFS(fsys fs.FS, dir string) ([]*Rule, error) {
	return LoadFSNamed(fsys, dir, "")
}

// LoadFSNamed is LoadFS with prefix put before every file name in rules
// and errors (e.g. "builtin:" or the directory given by the user).
func LoadFSNamed(fsys fs.FS, dir, prefix string) ([]*Rule, error) {
	rules, _, err := LoadFSSkipping(fsys, dir, prefix)
	return rules, err
}

// LoadFSSkipping is LoadFSNamed that also returns the Elastic rule files
// (*.toml) it did not load because kanon does not run their type (errors
// wrapping ErrUnsupportedType): a folder of Elastic's rules holds EQL and
// threshold rules too, and they should be listed, not stop the rest.
func LoadFSSkipping(fsys fs.FS, dir, prefix string) ([]*Rule, []error, error) {
	var files []string
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if ext := path.Ext(p); ext == ".yaml" || ext == ".yml" || ext == ".toml" {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot read rules: %w", err)
	}
	sort.Strings(files)
	return loadFiles(fsys, files, prefix)
}

func loadFiles(fsys fs.FS, files []string, displayPrefix string) ([]*Rule, []error, error) {
	var all pos.ErrorList
	var other []error
	var rules []*Rule
	var skipped []error
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			other = append(other, fmt.Errorf("cannot read rule file: %w", err))
			continue
		}
		var r *Rule
		if path.Ext(f) == ".toml" {
			r, err = ParseElastic(displayPrefix+f, data)
			if errors.Is(err, ErrUnsupportedType) {
				skipped = append(skipped, err)
				continue
			}
		} else {
			r, err = Parse(displayPrefix+f, data)
		}
		if err != nil {
			var l *pos.ErrorList
			var e *pos.Error
			switch {
			case errors.As(err, &l):
				for _, x := range l.Errs {
					all.Add(x)
				}
			case errors.As(err, &e):
				all.Add(e)
			default:
				other = append(other, err)
			}
			continue
		}
		rules = append(rules, r)
	}
	if len(other) > 0 {
		return nil, nil, errors.Join(append(other, all.Err())...)
	}
	if err := all.Err(); err != nil {
		return nil, nil, err
	}
	return rules, skipped, nil
}

// where names a rule's definition: file:line:col of its id, or its file.
func where(r *Rule) string {
	if r.Positions.ID.Line > 0 {
		return r.Positions.ID.String()
	}
	return r.File
}

// CheckUnique refuses two rules with the same id.
func CheckUnique(rules []*Rule) error {
	seen := map[string]*Rule{}
	var errs []string
	for _, r := range rules {
		if prev, ok := seen[r.ID]; ok {
			errs = append(errs, fmt.Sprintf("rule id %q is defined twice: in %s and in %s", r.ID, where(prev), where(r)))
			continue
		}
		seen[r.ID] = r
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrDuplicate, strings.Join(errs, "; "))
	}
	return nil
}
