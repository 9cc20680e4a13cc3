package report

import (
	"sort"
	"time"

	"github.com/kanon-dev/kanon/internal/rule"
)

// ladder lists the widths of timeline buckets in minutes, each a divisor
// of the next, so that buckets of one width merge exactly into the next.
// Past the last, widths double.
var ladder = []int64{1, 2, 10, 30, 60, 120, 360, 720, 1440, 10080}

// nextWidth is the width after w.
func nextWidth(w int64) int64 {
	for i, x := range ladder {
		if x == w && i+1 < len(ladder) {
			return ladder[i+1]
		}
	}
	return w * 2
}

// floorDiv divides rounding towards minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// bucket counts one bucket of the timeline.
type bucket struct {
	allowed, forbidden, none int64 // anonymous requests by decision
	all                      int64 // every event
	alerts                   int64
	severity                 int // highest severity rank of the alerts; -1: none
}

// timeline counts events per bucket of width minutes, keeping at most max
// buckets: when one more is needed, the buckets widen.
type timeline struct {
	width   int64
	max     int
	m       map[int64]*bucket // by bucket start, in Unix minutes
	lastKey int64
	last    *bucket
}

func newTimeline(max int) timeline {
	return timeline{width: 1, max: max, m: map[int64]*bucket{}}
}

// at returns the bucket of t, widening the buckets if it is one too many.
func (tl *timeline) at(t time.Time) *bucket {
	k := floorDiv(floorDiv(t.Unix(), 60), tl.width) * tl.width
	if tl.last != nil && k == tl.lastKey {
		return tl.last
	}
	b := tl.m[k]
	if b == nil {
		for len(tl.m) >= tl.max {
			tl.widen()
			k = floorDiv(k, tl.width) * tl.width
		}
		if b = tl.m[k]; b == nil {
			b = &bucket{severity: -1}
			tl.m[k] = b
		}
	}
	tl.lastKey, tl.last = k, b
	return b
}

// widen merges the buckets into buckets of the next width.
func (tl *timeline) widen() {
	w := nextWidth(tl.width)
	m := make(map[int64]*bucket, len(tl.m)/2+1)
	for k, b := range tl.m {
		nk := floorDiv(k, w) * w
		if to := m[nk]; to != nil {
			to.merge(b)
		} else {
			m[nk] = b
		}
	}
	tl.width, tl.m, tl.last = w, m, nil
}

func (b *bucket) merge(o *bucket) {
	b.allowed += o.allowed
	b.forbidden += o.forbidden
	b.none += o.none
	b.all += o.all
	b.alerts += o.alerts
	b.severity = max(b.severity, o.severity)
}

// Point is one bucket of the timeline.
type Point struct {
	// Start is the bucket's start; it lasts the timeline's width.
	Start time.Time
	// Allowed, Forbidden and NoDecision are the anonymous requests by
	// decision; All counts every event of the bucket.
	Allowed, Forbidden, NoDecision, All int64
	// Alerts are the alerts whose time is in the bucket, Severity the
	// highest of their severities ("" when none).
	Alerts   int64
	Severity string
}

// Anonymous is the point's anonymous requests.
func (p Point) Anonymous() int64 { return p.Allowed + p.Forbidden + p.NoDecision }

// Timeline is the activity per bucket over the scanned period: the
// buckets that saw an event or an alert, in time order.
type Timeline struct {
	Width   time.Duration
	Buckets []Point
}

func (tl *timeline) export() Timeline {
	out := Timeline{Width: time.Duration(tl.width) * time.Minute}
	keys := make([]int64, 0, len(tl.m))
	for k := range tl.m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		b := tl.m[k]
		out.Buckets = append(out.Buckets, Point{Start: time.Unix(k*60, 0).UTC(), Allowed: b.allowed, Forbidden: b.forbidden,
			NoDecision: b.none, All: b.all, Alerts: b.alerts, Severity: severityName(b.severity)})
	}
	return out
}

func severityName(rank int) string {
	if rank < 0 || rank >= len(rule.Severities) {
		return ""
	}
	return rule.Severities[rank]
}

// Points returns the timeline from its first bucket to its last, empty
// buckets included, in buckets of the narrowest width (of 1, 2, 10, 30
// minutes, 1, 2, 6, 12 hours, 1 day, 1 week, then doubling) at least
// Width that gives at most maxPoints points, and that width.
func (t Timeline) Points(maxPoints int) (time.Duration, []Point) {
	if len(t.Buckets) == 0 {
		return t.Width, nil
	}
	maxPoints = max(maxPoints, 1)
	w := max(int64(t.Width/time.Minute), 1)
	first, last := t.Buckets[0].Start.Unix()/60, t.Buckets[len(t.Buckets)-1].Start.Unix()/60
	for (floorDiv(last, w)-floorDiv(first, w))+1 > int64(maxPoints) {
		w = nextWidth(w)
	}
	from := floorDiv(first, w)
	pts := make([]Point, floorDiv(last, w)-from+1)
	for i := range pts {
		pts[i].Start = time.Unix((from+int64(i))*w*60, 0).UTC()
	}
	for _, b := range t.Buckets {
		p := &pts[floorDiv(b.Start.Unix()/60, w)-from]
		p.Allowed += b.Allowed
		p.Forbidden += b.Forbidden
		p.NoDecision += b.NoDecision
		p.All += b.All
		p.Alerts += b.Alerts
		if rule.SeverityRank(b.Severity) > rule.SeverityRank(p.Severity) {
			p.Severity = b.Severity
		}
	}
	return time.Duration(w) * time.Minute, pts
}
