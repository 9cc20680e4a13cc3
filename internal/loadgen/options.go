package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrInvalidOptions is wrapped by every error Options.Validate returns.
var ErrInvalidOptions = errors.New("invalid load generator options")

// DefaultStart is the event time of the first event when Options.Start is
// zero. It is fixed, not time.Now, so that a seed alone names the output.
var DefaultStart = time.Date(2024, time.May, 6, 9, 0, 0, 0, time.UTC)

// Defaults used by DefaultOptions and, for the fields whose zero value is
// meaningless, by Generate.
const (
	DefaultRate            = 200.0
	DefaultAnonymousRatio  = 0.02
	DefaultBodyRatio       = 0.10
	DefaultClusters        = 4
	DefaultNodesPerCluster = 12

	// MaxClusters and MaxNodesPerCluster bound the simulated fleet.
	MaxClusters        = 64
	MaxNodesPerCluster = 5000
)

// Options configures a generated log. Start from DefaultOptions: the two
// ratios are used as given, so a zero ratio means "none"; Start, Rate,
// Clusters and NodesPerCluster fall back to their defaults when zero.
type Options struct {
	// Events is the number of events to generate.
	Events int
	// Seed selects the output: the same Options give the same bytes.
	Seed int64
	// Start is the stageTimestamp of the first event (DefaultStart if zero).
	Start time.Time
	// Rate is the mean number of events per second of event time
	// (DefaultRate if zero). Arrivals are a Poisson process.
	Rate float64
	// AnonymousRatio is the fraction of events sent by system:anonymous:
	// health probes and scanners.
	AnonymousRatio float64
	// BodyRatio is the fraction of events logged at level Request or
	// RequestResponse, carrying a requestObject and/or a responseObject.
	BodyRatio float64
	// Clusters is the number of simulated clusters sharing the log
	// (DefaultClusters if zero). Each has its own nodes, versions, flavour
	// (EKS, GKE, AKS or kubeadm naming) and anonymous-auth setup.
	Clusters int
	// NodesPerCluster is the number of kubelets in each cluster
	// (DefaultNodesPerCluster if zero).
	NodesPerCluster int
	// Bursts is the mean number of anonymous enumeration bursts per hour
	// of event time (zero: none). A burst is one source IP and user agent
	// asking one cluster for 10 to 24 distinct API paths within a minute,
	// logged at level Request; its events count in Events and are
	// interleaved with the rest of the traffic by time.
	Bursts float64
}

// DefaultOptions returns the options of the project's benchmark logs for
// the given number of events and seed.
func DefaultOptions(events int, seed int64) Options {
	return Options{
		Events:          events,
		Seed:            seed,
		Start:           DefaultStart,
		Rate:            DefaultRate,
		AnonymousRatio:  DefaultAnonymousRatio,
		BodyRatio:       DefaultBodyRatio,
		Clusters:        DefaultClusters,
		NodesPerCluster: DefaultNodesPerCluster,
	}
}

// Validate reports the first invalid field, wrapping ErrInvalidOptions.
// Zero values that Generate replaces by defaults are valid.
func (o Options) Validate() error {
	switch {
	case o.Events < 0:
		return fmt.Errorf("%w: events must not be negative, got %d", ErrInvalidOptions, o.Events)
	case math.IsNaN(o.Rate) || math.IsInf(o.Rate, 0) || o.Rate < 0:
		return fmt.Errorf("%w: rate must be a positive number of events per second, got %v", ErrInvalidOptions, o.Rate)
	case !isRatio(o.AnonymousRatio):
		return fmt.Errorf("%w: anonymous ratio must be in [0, 1], got %v", ErrInvalidOptions, o.AnonymousRatio)
	case !isRatio(o.BodyRatio):
		return fmt.Errorf("%w: body ratio must be in [0, 1], got %v", ErrInvalidOptions, o.BodyRatio)
	case o.AnonymousRatio+o.BodyRatio > 1:
		// Anonymous events never carry bodies.
		return fmt.Errorf("%w: anonymous ratio %v plus body ratio %v exceeds 1", ErrInvalidOptions, o.AnonymousRatio, o.BodyRatio)
	case o.Clusters < 0 || o.Clusters > MaxClusters:
		return fmt.Errorf("%w: clusters must be in [1, %d], got %d", ErrInvalidOptions, MaxClusters, o.Clusters)
	case math.IsNaN(o.Bursts) || math.IsInf(o.Bursts, 0) || o.Bursts < 0:
		return fmt.Errorf("%w: bursts must be a number of bursts per hour, zero or more, got %v", ErrInvalidOptions, o.Bursts)
	case o.NodesPerCluster < 0 || o.NodesPerCluster > MaxNodesPerCluster:
		return fmt.Errorf("%w: nodes per cluster must be in [1, %d], got %d", ErrInvalidOptions, MaxNodesPerCluster, o.NodesPerCluster)
	}
	return nil
}

func isRatio(f float64) bool { return f >= 0 && f <= 1 } // false for NaN

// withDefaults fills the zero fields that have defaults.
func (o Options) withDefaults() Options {
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Clusters == 0 {
		o.Clusters = DefaultClusters
	}
	if o.NodesPerCluster == 0 {
		o.NodesPerCluster = DefaultNodesPerCluster
	}
	return o
}

// StageLog is one of the logs kanon's per-stage benchmarks run on.
type StageLog struct {
	// Name is the benchmark's sub-name: "realistic" or "anonymous".
	Name string
	// Log is the generated log, one JSON event a line.
	Log []byte
	// Records are Log's lines, without their newlines (aliasing Log).
	Records [][]byte
}

// StageLogs generates the per-stage benchmarks' logs of events events
// (seed 1): a realistic one (the default options) and one where every
// event is anonymous and carries no body, so that every event is fully
// read and evaluated by rules about anonymous access.
func StageLogs(events int) ([]StageLog, error) {
	var out []StageLog
	for _, c := range []struct {
		name string
		anon float64
	}{{"realistic", DefaultAnonymousRatio}, {"anonymous", 1}} {
		o := DefaultOptions(events, 1)
		o.AnonymousRatio = c.anon
		if c.anon == 1 {
			o.BodyRatio = 0
		}
		var log bytes.Buffer
		if _, err := Generate(&log, o); err != nil {
			return nil, err
		}
		recs := bytes.Split(bytes.TrimSuffix(log.Bytes(), []byte("\n")), []byte("\n"))
		out = append(out, StageLog{Name: c.name, Log: log.Bytes(), Records: recs})
	}
	return out, nil
}
