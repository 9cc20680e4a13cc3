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

// fieldErrors are the errors of one decoding, in document order.
type fieldErrors []*fieldError

func (es fieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// decoder decodes YAML nodes strictly and keeps going after an error, so
// that a rule file's errors are reported together.
type decoder struct {
	errs fieldErrors
	// failed holds every node whose value (or a part of it) could not be
	// decoded, for validation to leave alone: its fields are zero because
	// of an error already reported, not because the file lacks them.
	failed map[*yaml.Node]bool
}

// decodeStrict decodes n into out (a pointer), refusing unknown and
// duplicate keys, with the position of every error. The error, if any, is
// a fieldErrors holding them all.
func decodeStrict(n *yaml.Node, out any) error {
	d := &decoder{}
	d.decode(n, reflect.ValueOf(out).Elem())
	if len(d.errs) > 0 {
		return d.errs
	}
	return nil
}

// fail records err (a *fieldError or fieldErrors) at n.
func (d *decoder) fail(n *yaml.Node, err error) {
	var fes fieldErrors
	var fe *fieldError
	switch {
	case errors.As(err, &fes):
		d.errs = append(d.errs, fes...)
	case errors.As(err, &fe):
		d.errs = append(d.errs, fe)
	default:
		d.errs = append(d.errs, errAt(n, ErrType, "%s", cleanYAMLError(err)).(*fieldError))
	}
	d.mark(n)
}

func (d *decoder) mark(n *yaml.Node) {
	if d.failed == nil {
		d.failed = map[*yaml.Node]bool{}
	}
	d.failed[n] = true
}

// decode decodes n into v and reports whether it did without error.
func (d *decoder) decode(n *yaml.Node, v reflect.Value) bool {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return true
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.fail(n, err)
			return false
		}
		return true
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			return true
		}
		p := reflect.New(v.Type().Elem())
		ok := d.decode(n, p.Elem())
		v.Set(p)
		if !ok {
			d.mark(n)
		}
		return ok
	case reflect.Struct:
		return d.decodeStruct(n, v)
	case reflect.Slice:
		if n.Tag == "!!null" {
			return true
		}
		if n.Kind != yaml.SequenceNode {
			d.fail(n, errAt(n, ErrType, "expected a list, got %s", kindName(n)))
			return false
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		ok := true
		for i, item := range n.Content {
			ok = d.decode(item, s.Index(i)) && ok
		}
		v.Set(s)
		if !ok {
			d.mark(n)
		}
		return ok
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(n, errAt(n, ErrType, "expected a mapping, got %s", kindName(n)))
			return false
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if seen[n.Content[i].Value] {
				d.fail(n, errAt(n.Content[i], ErrDuplicate, "key %q appears twice", n.Content[i].Value))
				return false
			}
			seen[n.Content[i].Value] = true
		}
	}
	if n.Kind != yaml.ScalarNode && v.Kind() != reflect.Map && v.Kind() != reflect.Interface {
		d.fail(n, errAt(n, ErrType, "expected a %s, got %s", v.Kind(), kindName(n)))
		return false
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.fail(n, errAt(n, ErrType, "%s", cleanYAMLError(err)))
		return false
	}
	return true
}

// decodeStruct decodes a mapping into the struct v by its yaml tags. An
// unknown or repeated key is an error; the other keys are still decoded.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value) bool {
	if n.Kind != yaml.MappingNode {
		d.fail(n, errAt(n, ErrType, "expected a mapping, got %s", kindName(n)))
		return false
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
	ok := true
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		idx, known := fields[k.Value]
		switch {
		case !known:
			d.fail(k, errAt(k, ErrUnknown, "unknown key %q (known keys: %s)", k.Value, strings.Join(sortedCopy(names), ", ")))
			ok = false
		case seen[k.Value]:
			d.fail(k, errAt(k, ErrDuplicate, "key %q appears twice", k.Value))
			d.mark(val)
			ok = false
		default:
			seen[k.Value] = true
			ok = d.decode(val, v.Field(idx)) && ok
		}
	}
	if !ok {
		d.mark(n)
	}
	return ok
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
// is validated and its queries parsed; compile it with Compile. Every error
// of the file is returned at once, as a *pos.ErrorList sorted by position:
// keys that cannot be decoded and the checks of every section (see
// validate). Only a file that is not YAML stops at its first error.
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
	r := &Rule{File: name, Src: src}
	var errs pos.ErrorList
	d := &decoder{}
	d.decode(root, reflect.ValueOf(r).Elem())
	for _, fe := range d.errs {
		errs.Add(toPosError(src, fe))
	}
	if root.Kind == yaml.MappingNode {
		validate(&checker{r: r, root: root, src: src, errs: &errs, failed: d.failed})
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return r, nil
}

func toPosError(src *pos.Source, fe *fieldError) *pos.Error {
	off := src.Offset(fe.line, fe.col)
	return pos.Errorf(src, pos.Span{Start: off, End: off + 1}, fe.code, "%s", fe.msg)
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
// recursively in name order. It returns all errors of all files together,
// and with them the rules of the files that loaded, so that a caller can
// compile those too and report every error at once (see MergeErrors); a
// caller that runs rules must run none when the error is not nil.
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
	var errs []error
	var rules []*Rule
	var skipped []error
	for _, f := range files {
		data, err := fs.ReadFile(fsys, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read rule file: %w", err))
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
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	return rules, skipped, MergeErrors(errs...)
}

// MergeErrors joins the errors of several files and stages (loading,
// compiling) into one: the positioned ones (*pos.Error, *pos.ErrorList)
// into one *pos.ErrorList sorted by file and position, which is the result
// when there are no others; the others are joined before it (errors.Join).
// Nil errors are skipped; it returns nil when all are nil.
func MergeErrors(errs ...error) error {
	var list pos.ErrorList
	var other []error
	for _, err := range errs {
		if err == nil {
			continue
		}
		var l *pos.ErrorList
		var e *pos.Error
		switch {
		case errors.As(err, &l):
			for _, x := range l.Errs {
				list.Add(x)
			}
			list.Dropped += l.Dropped
		case errors.As(err, &e):
			list.Add(e)
		default:
			other = append(other, err)
		}
	}
	if len(other) == 0 {
		return list.Err()
	}
	if list.Len() > 0 {
		other = append(other, list.Err())
	}
	return errors.Join(other...)
}

// where names a rule's definition: file:line:col of its id, or its file.
func where(r *Rule) string {
	if r.Positions.ID.Line > 0 {
		return r.Positions.ID.String()
	}
	return r.File
}

// CheckUnique refuses two rules with the same id: an error (ErrDuplicate)
// for each repeated definition, at its id when its source is known.
func CheckUnique(rules []*Rule) error {
	seen := map[string]*Rule{}
	var errs []error
	for _, r := range rules {
		prev, ok := seen[r.ID]
		if !ok {
			seen[r.ID] = r
			continue
		}
		if r.Src != nil && r.Positions.ID.Line > 0 {
			off := r.Src.Offset(r.Positions.ID.Line, r.Positions.ID.Col)
			errs = append(errs, pos.Errorf(r.Src, pos.Span{Start: off, End: off + 1}, ErrDuplicate, "rule id %q is defined twice: in %s and here", r.ID, where(prev)))
			continue
		}
		errs = append(errs, fmt.Errorf("%w: rule id %q is defined twice: in %s and in %s", ErrDuplicate, r.ID, where(prev), where(r)))
	}
	return MergeErrors(errs...)
}
