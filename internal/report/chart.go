package report

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// The timeline chart's geometry, in SVG user units (the page scales it to
// its width).
const (
	chartW      = 1200
	chartH      = 280
	plotLeft    = 56
	plotRight   = 16
	plotTop     = 34
	plotBottom  = 44
	maxXTicks   = 9
	minBarWidth = 0.6
	// minMarkerSlot and minCountSlot are the point widths from which
	// alerts are triangles, and their counts are written.
	minMarkerSlot = 10
	minCountSlot  = 18
)

// DefaultMaxPoints is how many points the HTML timeline draws at most.
const DefaultMaxPoints = 360

// chart is the timeline drawn: bars stacked by decision per point, alert
// markers above them, axes.
type chart struct {
	W, H                       int
	PlotX, PlotY, PlotW, PlotH string
	PlotBottom, PlotRight      string
	Width                      string // "minute", "10 minutes"
	Points                     []chartPoint
	Markers                    []chartMarker
	YTicks, XTicks             []chartTick
	Empty                      bool
	// Dense: the alert marks are a strip (points too narrow for triangles).
	Dense bool
}

// chartPoint is one bar: a bucket of the timeline.
type chartPoint struct {
	Start                                 string // RFC 3339
	Allowed, Forbidden, NoDecision, Total int64
	Alerts                                int64
	Title                                 string
	Rects                                 []chartRect
	X, BarW                               string // the bucket's slot, for the hover band
}

type chartRect struct{ X, Y, W, H, Class string }

type chartMarker struct {
	Count             int64
	Severity          string
	Title             string
	X, LineY1, LineY2 string
	Path              string // the triangle
	LabelX, LabelY    string
	ShowCount         bool
	CountText         string
	// Strip: the points are too narrow for triangles; a rect above the
	// bar whose opacity grows with the count.
	Strip          bool
	RX, RY, RW, RH string
	Opacity        string
}

type chartTick struct {
	Pos, Label     string
	LabelX, LabelY string
	Y1, Y2, X2     string
	Anchor         string
}

// f formats a coordinate.
func f(v float64) string { return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) }

// niceStep returns the smallest 1, 2 or 5 times a power of ten that is at
// least v (and at least 1: counts are whole).
func niceStep(v float64) float64 {
	if v <= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// tickSteps are the spacings of time labels, in minutes.
var tickSteps = []int64{1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080, 20160, 40320}

// newChart lays out the timeline in at most maxPoints bars.
func newChart(tl Timeline, maxPoints int) chart {
	c := chart{W: chartW, H: chartH}
	px, py := float64(plotLeft), float64(plotTop)
	pw, ph := float64(chartW-plotLeft-plotRight), float64(chartH-plotTop-plotBottom)
	c.PlotX, c.PlotY, c.PlotW, c.PlotH, c.PlotBottom, c.PlotRight = f(px), f(py), f(pw), f(ph), f(py+ph), f(px+pw)
	width, pts := tl.Points(maxPoints)
	c.Width = duration(width)
	if len(pts) == 0 {
		c.Empty = true
		return c
	}
	var top int64
	for _, p := range pts {
		top = max(top, p.Anonymous())
	}
	step := niceStep(float64(top) / 4)
	ymax := math.Max(step, math.Ceil(float64(top)/step)*step)
	for v := 0.0; v <= ymax+step/2; v += step {
		y := py + ph - v/ymax*ph
		c.YTicks = append(c.YTicks, chartTick{Pos: f(y), Label: count(int64(v)), LabelX: f(px - 8), LabelY: f(y + 4), X2: f(px + pw)})
	}
	slot := pw / float64(len(pts))
	var maxAlerts int64
	barW := math.Max(slot*0.8, minBarWidth)
	for i, p := range pts {
		x := px + float64(i)*slot
		cp := chartPoint{Start: p.Start.Format(time.RFC3339), Allowed: p.Allowed, Forbidden: p.Forbidden,
			NoDecision: p.NoDecision, Total: p.All, Alerts: p.Alerts, X: f(x), BarW: f(slot)}
		cp.Title = pointTitle(p, width)
		base := py + ph
		for _, part := range []struct {
			n     int64
			class string
		}{{p.Allowed, "allow"}, {p.Forbidden, "forbid"}, {p.NoDecision, "none"}} {
			if part.n == 0 {
				continue
			}
			h := float64(part.n) / ymax * ph
			base -= h
			cp.Rects = append(cp.Rects, chartRect{X: f(x + (slot-barW)/2), Y: f(base), W: f(barW), H: f(h), Class: part.class})
		}
		c.Points = append(c.Points, cp)
		if p.Alerts > 0 {
			cx := x + slot/2
			m := chartMarker{Count: p.Alerts, Severity: p.Severity, X: f(cx)}
			m.Title = fmt.Sprintf("%s: %s alert%s (highest severity %s)", timeText(p.Start), count(p.Alerts), plural(p.Alerts), p.Severity)
			if slot >= minMarkerSlot {
				m.LineY1, m.LineY2 = f(py-2), f(py+ph)
				m.Path = fmt.Sprintf("M%s %sL%s %sL%s %sZ", f(cx-5), f(py-13), f(cx+5), f(py-13), f(cx), f(py-3))
				m.ShowCount = p.Alerts > 1 && slot >= minCountSlot
				m.LabelX, m.LabelY, m.CountText = f(cx), f(py-17), count(p.Alerts)
			} else {
				m.Strip, c.Dense = true, true
				m.RX, m.RY, m.RW, m.RH = f(x), f(py-12), f(math.Max(slot, minBarWidth)), "9"
			}
			c.Markers = append(c.Markers, m)
			maxAlerts = max(maxAlerts, p.Alerts)
		}
	}
	// Dense markers are a strip whose opacity says how many alerts.
	for i := range c.Markers {
		m := &c.Markers[i]
		if m.Strip {
			m.Opacity = f(0.35 + 0.65*float64(m.Count)/float64(maxAlerts))
		}
	}
	// Time labels at round times.
	first, end := pts[0].Start, pts[len(pts)-1].Start.Add(width)
	span := int64(end.Sub(first) / time.Minute)
	tstep := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if s >= int64(width/time.Minute) && span/s+1 <= maxXTicks {
			tstep = s
			break
		}
	}
	firstMin := first.Unix() / 60
	lastDay := ""
	for m := floorDiv(firstMin+tstep-1, tstep) * tstep; m <= end.Unix()/60; m += tstep {
		t := time.Unix(m*60, 0).UTC()
		x := px + float64(t.Sub(first))/float64(end.Sub(first))*pw
		label := t.Format("15:04")
		if day := t.Format("Jan 2"); day != lastDay {
			label = day + " " + label
			lastDay = day
		}
		if tstep >= 1440 {
			label = t.Format("Jan 2")
		}
		anchor := "middle"
		if x > px+pw-40 {
			anchor = "end"
		}
		c.XTicks = append(c.XTicks, chartTick{Pos: f(x), Label: label, LabelX: f(x), LabelY: f(py + ph + 18),
			Y1: f(py + ph), Y2: f(py + ph + 5), Anchor: anchor})
	}
	return c
}

func plural(n int64) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// pointTitle is a bar's tooltip.
func pointTitle(p Point, width time.Duration) string {
	s := fmt.Sprintf("%s – %s UTC: %s anonymous request%s", timeText(p.Start), p.Start.Add(width).UTC().Format("15:04"),
		count(p.Anonymous()), plural(p.Anonymous()))
	if p.Anonymous() > 0 {
		s += fmt.Sprintf(" (%s allowed, %s forbidden, %s without decision)", count(p.Allowed), count(p.Forbidden), count(p.NoDecision))
	}
	s += fmt.Sprintf(" of %s event%s", count(p.All), plural(p.All))
	if p.Alerts > 0 {
		s += fmt.Sprintf("; %s alert%s", count(p.Alerts), plural(p.Alerts))
	}
	return s
}

// timeText formats an event time for people: UTC, to the second.
func timeText(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}

// miniBar is a row's decision split as an inline SVG bar of 100 units.
type miniBar struct {
	Rects []chartRect
	Title string
}

func newMiniBar(c Counts) miniBar {
	var b miniBar
	if c.Requests == 0 {
		return b
	}
	x := 0.0
	for _, part := range []struct {
		n     int64
		class string
	}{{c.Allowed, "allow"}, {c.Forbidden, "forbid"}, {c.NoDecision, "none"}} {
		if part.n == 0 {
			continue
		}
		w := float64(part.n) / float64(c.Requests) * 100
		b.Rects = append(b.Rects, chartRect{X: f(x), Y: "0", W: f(w), H: "10", Class: part.class})
		x += w
	}
	b.Title = fmt.Sprintf("%s allowed, %s forbidden, %s without decision", count(c.Allowed), count(c.Forbidden), count(c.NoDecision))
	return b
}
