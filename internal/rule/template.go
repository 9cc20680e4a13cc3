package rule

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/query/kql"
)

// Template is a text with {{ field }} placeholders over the canonical
// document: {{ kubernetes.audit.userAgent }} inserts the field's values
// joined by ", ", {{ kubernetes.audit.sourceIPs[0] }} the first value only,
// and {{ field | "text" }} uses "text" when the field has no value. A
// missing field without a default inserts nothing.
type Template struct {
	Text  string
	parts []tmplPart
}

type tmplPart struct {
	lit   string
	field event.Field
	index int // -1: all values
	def   string
	isRef bool
}

// ParseTemplate parses a template.
func ParseTemplate(text string) (*Template, error) {
	t := &Template{Text: text}
	rest := text
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, tmplPart{lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, tmplPart{lit: rest[:i]})
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("unclosed {{ in template %q", text)
		}
		expr := strings.TrimSpace(rest[i+2 : i+j])
		rest = rest[i+j+2:]
		p := tmplPart{isRef: true, index: -1}
		if name, def, ok := strings.Cut(expr, "|"); ok {
			expr = strings.TrimSpace(name)
			d, err := strconv.Unquote(strings.TrimSpace(def))
			if err != nil {
				return nil, fmt.Errorf("template default must be a quoted string: %s", strings.TrimSpace(def))
			}
			p.def = d
		}
		if k := strings.IndexByte(expr, '['); k >= 0 {
			if !strings.HasSuffix(expr, "]") {
				return nil, fmt.Errorf("bad index in template placeholder %q", expr)
			}
			n, err := strconv.Atoi(expr[k+1 : len(expr)-1])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("bad index in template placeholder %q", expr)
			}
			p.index, expr = n, expr[:k]
		}
		if expr == "" || strings.ContainsAny(expr, " \t{}") {
			return nil, fmt.Errorf("bad field name %q in template", expr)
		}
		p.field = event.Lookup(expr)
		t.parts = append(t.parts, p)
	}
	return t, nil
}

// Fields adds the fields the template reads to fs.
func (t *Template) Fields(fs *event.FieldSet) {
	for _, p := range t.parts {
		if p.isRef {
			fs.Add(p.field)
		}
	}
}

// Render renders the template for e.
func (t *Template) Render(e *event.Event) string {
	var stack [128]byte
	return string(t.AppendRender(stack[:0], e))
}

// AppendRender appends the template rendered for e to dst.
func (t *Template) AppendRender(dst []byte, e *event.Event) []byte {
	var buf [8]event.Value
	for _, p := range t.parts {
		if !p.isRef {
			dst = append(dst, p.lit...)
			continue
		}
		vs := e.Get(p.field, buf[:0])
		switch {
		case len(vs) == 0 || p.index >= len(vs):
			dst = append(dst, p.def...)
		case p.index >= 0:
			dst = append(dst, vs[p.index].String()...)
		default:
			for i, v := range vs {
				if i > 0 {
					dst = append(dst, ", "...)
				}
				dst = append(dst, v.String()...)
			}
		}
	}
	return dst
}

// TitleTemplate is a parsed title case: When (nil = always) and the template.
type TitleTemplate struct {
	When     kql.Expr
	Template *Template
}
