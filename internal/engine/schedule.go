package engine

import "time"

// Schedule lays Elastic's runs over event time.
type Schedule struct {
	Interval time.Duration
	Lookback time.Duration
}

// FirstRun returns the end of the first run that covers t: runs are
// [end-Lookback, end) with end a multiple of Interval.
func (s Schedule) FirstRun(t time.Time) int64 {
	iv := int64(s.Interval)
	ns := t.UnixNano()
	end := (floorDiv(ns, iv) + 1) * iv
	return end
}

// Runs calls fn with the end of every run that covers t, earliest first.
func (s Schedule) Runs(t time.Time, fn func(end int64) bool) {
	ns := t.UnixNano()
	for end := s.FirstRun(t); end-int64(s.Lookback) <= ns; end += int64(s.Interval) {
		if !fn(end) {
			return
		}
	}
}

// Window returns the run window ending at end.
func (s Schedule) Window(end int64) (start, stop time.Time) {
	return time.Unix(0, end-int64(s.Lookback)).UTC(), time.Unix(0, end).UTC()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
