package alert

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// column is a column of the table: its header, what it shows of a view,
// the most columns it takes (max), the fewest it is cut to while columns
// of lower priority can be left out instead (want), and the fewest at all
// (min; 0: never cut), how it is cut, its priority (when the table does
// not fit, the columns of lowest priority are left out first; those of
// priority essential or more stay) and its weight: when columns must
// shrink, the one widest for its weight shrinks first, so a column of
// weight 20 keeps twice the width of one of weight 10 (0 counts as 10).
type column struct {
	header         string
	cell           func(v *view, c *tableCtx) string
	min, want, max int
	middle         bool // cut out the middle, not the end
	prio           int
	weight         int
}

// essential is the priority of the columns a narrow table keeps.
const essential = 80

// tableCtx is what cells need beyond their view: how times are written,
// and the shorter forms a narrow table takes.
type tableCtx struct {
	layout, rulePrefix string
	shortSeverity      bool // four letters: crit, high, med, low, info, drop
	compactRequest     bool // the verb and the resource, not the URI
}

// shortSeverities are the four-letter severities of a narrow table.
var shortSeverities = map[string]string{"critical": "crit", "medium": "med", "dropped": "drop"}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return dash(strings.Join(out, " "))
}

var (
	colTime = column{header: "TIME", prio: 100, cell: func(v *view, c *tableCtx) string { return v.at.UTC().Format(c.layout) }}
	colSev  = column{header: "SEVERITY", prio: 95, cell: func(v *view, c *tableCtx) string {
		s := dash(v.severity)
		if v.dropped {
			s = "dropped"
		}
		if short, ok := shortSeverities[s]; ok && c.shortSeverity {
			return short
		}
		return s
	}}
	colRule = column{header: "RULE", prio: 90, min: 14, want: 24, max: 32, middle: true, weight: 14, cell: func(v *view, c *tableCtx) string {
		return strings.TrimPrefix(v.rule, c.rulePrefix)
	}}
	colUser   = column{header: "USER", prio: 70, min: 10, want: 16, max: 18, cell: func(v *view, _ *tableCtx) string { return dash(v.user) }}
	colSource = column{header: "SOURCE", prio: 84, min: 11, want: 13, max: 15, cell: func(v *view, _ *tableCtx) string { return dash(v.source) }}
	colAgent  = column{header: "USER AGENT", prio: 50, min: 12, want: 20, max: 32, cell: func(v *view, _ *tableCtx) string { return dash(v.agent) }}
	colClust  = column{header: "CLUSTER", prio: 40, min: 8, want: 10, max: 16, cell: func(v *view, _ *tableCtx) string { return dash(v.cluster) }}
	colReason = column{header: "REASON", prio: 35, min: 12, want: 24, max: 40, cell: func(v *view, _ *tableCtx) string { return dash(v.reason) }}
)

// narrowColumns are the table's columns: the first ones a responder reads
// are when, how bad, which rule, from where, did it succeed (the response
// code and the authorizer's decision) and what was asked (verb and URI).
var narrowColumns = []column{
	colTime, colSev, colRule, colUser, colSource,
	{header: "RESULT", prio: 86, min: 10, want: 10, max: 18, cell: func(v *view, _ *tableCtx) string { return join(v.code, v.decision) }},
	{header: "REQUEST", prio: 88, min: 16, want: 28, max: 60, weight: 20, cell: func(v *view, c *tableCtx) string {
		if c.compactRequest && v.resource != "" {
			// namespace/resource/name, as kubectl names objects.
			res := v.resource
			if v.namespace != "" {
				res = v.namespace + "/" + res
			}
			if v.name != "" && !v.aggregate {
				res += "/" + v.name
			}
			return join(v.verb, v.countTag(), res)
		}
		return join(v.verb, v.target())
	}},
	colAgent, colClust, colReason,
}

// wideColumns are the columns of -o wide: every value in a column of its
// own.
var wideColumns = []column{
	colTime, colSev, colRule, colUser, colSource,
	{header: "VERB", cell: func(v *view, _ *tableCtx) string { return dash(v.verb) }},
	{header: "RESOURCE", cell: func(v *view, _ *tableCtx) string { return dash(v.resource) }},
	{header: "NAMESPACE", cell: func(v *view, _ *tableCtx) string { return dash(v.namespace) }},
	{header: "CODE", cell: func(v *view, _ *tableCtx) string { return dash(v.code) }},
	{header: "DECISION", cell: func(v *view, _ *tableCtx) string { return dash(v.decision) }},
	colReason, colClust,
	{header: "TARGET", cell: func(v *view, _ *tableCtx) string { return dash(v.target()) }},
	colAgent,
	{header: "RUN DROPPED", cell: func(v *view, _ *tableCtx) string {
		if v.run == nil || v.run.MaxSignals == 0 {
			return "-"
		}
		return fmt.Sprint(v.runDropped())
	}},
	{header: "RULE ID", cell: func(v *view, _ *tableCtx) string { return v.ruleID }},
	{header: "ORIGIN", cell: func(v *view, _ *tableCtx) string { return dash(v.origin) }},
	{header: "ID", cell: func(v *view, _ *tableCtx) string { return v.id }},
}

// gapFor is the space between columns: two, or one on a narrow terminal.
func gapFor(width int) int {
	if width > 0 && width <= 100 {
		return 1
	}
	return 2
}

// fit chooses the columns and their widths. Without a width, every column
// is as wide as its widest cell. Otherwise each column first takes its
// widest cell up to its max; when that fits, the room left goes to the
// columns cut by their max, in priority order; when it does not, the cut
// columns shrink (by weight) down to their want, and when that is not
// enough the column of lowest priority is left out and the fitting starts
// again; once only essential columns are left they shrink down to their
// min. Unless keepEmpty, a column with nothing in it ("-" in every row) is
// left out.
func fit(cols []column, cells [][]string, width, gap int, keepEmpty bool) (keep []int, widths []int) {
	natural := make([]int, len(cols))
	for i, c := range cols {
		natural[i] = displayWidth(c.header)
		empty := true
		for _, row := range cells {
			natural[i] = max(natural[i], displayWidth(row[i]))
			empty = empty && row[i] == "-"
		}
		if keepEmpty || !empty || i == 0 {
			keep = append(keep, i)
		}
	}
	for {
		widths = make([]int, len(keep))
		total := gap * (len(keep) - 1)
		for k, i := range keep {
			widths[k] = natural[i]
			if width > 0 && cols[i].max > 0 {
				widths[k] = min(natural[i], max(cols[i].max, displayWidth(cols[i].header)))
			}
			total += widths[k]
		}
		if width == 0 {
			return keep, widths
		}
		if total <= width {
			byPrio := slices.Clone(keep)
			sort.SliceStable(byPrio, func(a, b int) bool { return cols[byPrio[a]].prio > cols[byPrio[b]].prio })
			for _, i := range byPrio {
				k := slices.Index(keep, i)
				add := min(natural[i]-widths[k], width-total)
				widths[k] += add
				total += add
			}
			return keep, widths
		}
		last := true // only essential columns are left
		for _, i := range keep {
			last = last && cols[i].prio >= essential
		}
		for total > width {
			best, bestScore := -1, 0
			for k, i := range keep {
				floor := max(cols[i].min, displayWidth(cols[i].header))
				if !last {
					floor = max(floor, cols[i].want)
				}
				if cols[i].min == 0 || widths[k] <= floor {
					continue
				}
				w := cols[i].weight
				if w == 0 {
					w = 10
				}
				if score := widths[k] * 1000 / w; best < 0 || score > bestScore {
					best, bestScore = k, score
				}
			}
			if best < 0 {
				break
			}
			widths[best]--
			total--
		}
		if total <= width || last {
			return keep, widths
		}
		low := 1
		for k := range keep {
			if k > 0 && cols[keep[k]].prio < cols[keep[low]].prio {
				low = k
			}
		}
		keep = append(keep[:low], keep[low+1:]...)
	}
}

// maxCell is the width of the widest cell of column i.
func maxCell(cells [][]string, i int) int {
	n := 0
	for _, row := range cells {
		n = max(n, displayWidth(row[i]))
	}
	return n
}

// severityColor is the ANSI colour of each severity.
var severityColor = map[string]string{
	"critical": "\x1b[1;31m", "high": "\x1b[31m", "medium": "\x1b[33m", "low": "\x1b[36m", "info": "\x1b[2m", "dropped": "\x1b[2m",
}

// renderTable writes the views in order as a table fitted to opts.
func renderTable(b *strings.Builder, vs []view, order []int, notes [][]string, opts TableOptions) {
	layout, caption := timeFormat(vs)
	ctx := &tableCtx{layout: layout}
	cols, width := narrowColumns, opts.Width
	if opts.Wide {
		cols, width = wideColumns, 0
	}
	gap := gapFor(width)
	if ctx.shortSeverity = width > 0 && width <= 100; ctx.shortSeverity {
		cols = slices.Clone(cols)
		cols[1].header = "SEV"
	}
	var cells [][]string
	fill := func() {
		cells = make([][]string, len(order))
		for r, i := range order {
			cells[r] = make([]string, len(cols))
			for k := range cols {
				cells[r][k] = cols[k].cell(&vs[i], ctx)
			}
		}
	}
	fill()
	keep, widths := fit(cols, cells, width, gap, opts.Wide)
	// When rule names must be cut, the words they all begin with go
	// first (Kubernetes ...): what is left tells the rules apart. When
	// requests must be cut, they say the verb and the resource.
	refit := false
	if k := slices.Index(keep, 2); k >= 0 && widths[k] < maxCell(cells, 2) {
		ctx.rulePrefix = commonPrefix(vs)
		refit = ctx.rulePrefix != ""
	}
	if i := slices.IndexFunc(cols, func(c column) bool { return c.header == "REQUEST" }); i >= 0 {
		if k := slices.Index(keep, i); k >= 0 && widths[k] < maxCell(cells, i) {
			ctx.compactRequest, refit = true, true
		}
	}
	if refit {
		fill()
		keep, widths = fit(cols, cells, width, gap, opts.Wide)
	}
	if caption != "" {
		b.WriteString(caption + "\n")
	}
	// line writes one line; text(i) is the text of column i.
	line := func(text func(i int) string, color string) {
		for k, i := range keep {
			s := text(i)
			if cols[i].middle {
				s = cutMiddle(s, widths[k])
			} else {
				s = cut(s, widths[k])
			}
			if k > 0 {
				b.WriteString(strings.Repeat(" ", gap))
			}
			if k == len(keep)-1 {
				b.WriteString(s)
				continue
			}
			if color != "" && cols[i].header == "SEVERITY" {
				b.WriteString(color + s + "\x1b[0m" + strings.Repeat(" ", widths[k]-displayWidth(s)))
				continue
			}
			b.WriteString(pad(s, widths[k]))
		}
		b.WriteString("\n")
	}
	line(func(i int) string { return cols[i].header }, "")
	for r, i := range order {
		color := ""
		if opts.Color {
			color = severityColor[cells[r][1]]
		}
		line(func(i int) string { return cells[r][i] }, color)
		for _, n := range notes[i] {
			b.WriteString(cut("    "+n, width) + "\n")
		}
	}
	writeRunNotes(b, vs, order, width)
}

// writeRunNotes says, under the table, which runs dropped hits at
// max_signals, and how many.
func writeRunNotes(b *strings.Builder, vs []view, order []int, width int) {
	type run struct {
		rule       string
		start, end time.Time
	}
	seen := map[run]bool{}
	var lines []string
	for _, i := range order {
		v := &vs[i]
		if v.dropped || v.runDropped() == 0 {
			continue
		}
		k := run{v.rule, v.run.Start, v.run.End}
		if seen[k] {
			continue
		}
		seen[k] = true
		lines = append(lines, fmt.Sprintf("run %s–%s dropped %d hits over max_signals (%d): %s",
			v.run.Start.UTC().Format("2006-01-02 15:04"), v.run.End.UTC().Format("15:04"), v.run.Dropped, v.run.MaxSignals, v.rule))
	}
	sort.Strings(lines)
	for _, l := range lines {
		b.WriteString(cut(l, width) + "\n")
	}
}
