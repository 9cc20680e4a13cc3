package run

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/prometheus/client_golang/prometheus"
)

// Policy is how a driver paces its commits and its clock: what tells a
// batch run (kanon scan, rule tests) from a live one (kanon serve). Events
// are judged the same under every policy.
type Policy struct {
	// Lateness is how far behind the newest event time seen a windowed
	// run still takes events; negative keeps every run open until Close
	// (a scan of files: the input is complete, order does not matter).
	Lateness time.Duration
	// CommitEvery, when positive, commits at most this often (wall
	// clock) and at Close: a scan, whose batches nobody waits for. Zero
	// commits as soon as the queue is empty, in groups bounded by
	// GroupEvents and GroupDelay: serve, whose senders wait.
	CommitEvery time.Duration
	// GroupEvents and GroupDelay bound a commit group under CommitEvery
	// zero (0: DefaultGroupEvents, DefaultGroupDelay).
	GroupEvents int
	GroupDelay  time.Duration
	// IdleCheck, when positive, is how often an idle input's windows are
	// advanced by the wall clock: event time is taken to go on at the
	// wall clock's pace from the newest event seen. Zero: never (a file's
	// event time does not move when nothing is read).
	IdleCheck time.Duration
	// SweepEvery, when positive, removes the store's expired entries each
	// time the newest event time has moved on by this much, and at Close.
	SweepEvery time.Duration
	// Windows is what becomes of the ES|QL runs the store holds from an
	// earlier run (engine.WindowMode). It must be WindowsInMemory
	// without a store.
	Windows engine.WindowMode
	// UntimedAtReceipt judges an event that has no time of its own at the
	// time its batch was received (rule tests, whose events may omit it).
	// Otherwise such an event is a bad record (ingest.ErrNoTime), reported
	// and not evaluated: an alert dated the year 1 helps nobody, and no
	// window would ever hold it.
	UntimedAtReceipt bool
}

// DefaultDecoders is the number of decoding goroutines for the cores the
// process may use (GOMAXPROCS): none on one core, where decoding in the
// driver's goroutine costs least, else one per core.
func DefaultDecoders() int {
	if n := runtime.GOMAXPROCS(0); n > 1 {
		return n
	}
	return 0
}

// Defaults of Policy and Config.
const (
	DefaultGroupEvents = 50000
	DefaultGroupDelay  = 100 * time.Millisecond
	DefaultQueueSize   = 64
	// DefaultQueueBytes bounds the input bytes of the batches a driver
	// holds (Config.QueueBytes).
	DefaultQueueBytes = 64 << 20
	DefaultDedup      = ingest.DefaultDedupCapacity
	// DefaultLiveLateness is serve's lateness.
	DefaultLiveLateness = 30 * time.Second
	// DefaultCommitTimeout bounds one commit (outputs flushed, store
	// written).
	DefaultCommitTimeout = 30 * time.Second
)

// BatchPolicy is the policy of a run over complete inputs (kanon scan):
// runs stay open to the end, state is committed once a second and at the
// end, expired state is swept every hour of event time.
func BatchPolicy() Policy {
	return Policy{Lateness: -1, CommitEvery: time.Second, SweepEvery: time.Hour, Windows: engine.WindowsRebuild}
}

// LivePolicy is the policy of a long-running run (kanon serve): runs close
// lateness after their end, batches are committed in groups as soon as
// the queue is empty, idle inputs advance by the wall clock, open runs are
// restored after a restart.
func LivePolicy(lateness time.Duration) Policy {
	return Policy{Lateness: lateness, IdleCheck: time.Second, SweepEvery: time.Minute, Windows: engine.WindowsRestore}
}

// TestPolicy is the policy of rule tests: a batch run in memory, where an
// event without a time is judged at the time the test runs.
func TestPolicy() Policy {
	return Policy{Lateness: -1, Windows: engine.WindowsInMemory, UntimedAtReceipt: true}
}

// Config configures a Driver.
type Config struct {
	// Rules are the compiled rules to run. Required.
	Rules []*rule.Compiled
	// Registry holds the input formats. Required.
	Registry *ingest.Registry
	// Store is the state store (alert ids raised, new-terms history,
	// dedup groups, open ES|QL runs, input positions). The driver writes
	// to it in groups, through a write overlay, and never closes it. nil
	// keeps state in memory for the driver's life.
	Store state.Store
	// Sink receives the alerts. Required. A sink that is an alert.Flusher
	// (or has a Flush() error method) is flushed before each commit, so
	// that no alert is marked raised in the store before it is durable.
	Sink alert.Sink
	// Policy paces commits and the clock.
	Policy Policy
	// Format forces one input format ("" or "auto" detects each record).
	Format string
	// MaxRecordBytes limits one record (0: ingest.DefaultMaxRecordBytes).
	MaxRecordBytes int
	// Dedup is how many recent (auditID, stage) keys are remembered to
	// drop repeated deliveries of an event, for every input (0: none).
	Dedup int
	// Strict makes the first bad record fail the run.
	Strict bool
	// LearnOnly makes new_terms rules learn without alerting.
	LearnOnly bool
	// GroupUpdates delivers the first alert of a dedup group at once and
	// the group again, with its count, when it closes (engine.Options).
	GroupUpdates bool
	// GroupUpdateEvery, with GroupUpdates, delivers an open group again as
	// it grows, at most once per this much event time
	// (engine.Options.GroupUpdateEvery; 0: at its opening and close only).
	GroupUpdateEvery time.Duration
	// Replica names this driver among the drivers that share Store as
	// replicas (kanon serve replicas on one Redis): its engine keeps its
	// part of each ES|QL run in a slot of its own and takes every decision
	// that replicas could take twice in a transaction on Store, with an
	// outbox there for alerts decided and not yet delivered
	// (engine.Options.Replica and Shared). Empty: the driver is alone with
	// its store. Needs Store.
	Replica string
	// OutboxLease is how long the alerts a replica decided are left to it
	// to deliver before another replica delivers them (0:
	// engine.DefaultOutboxLease): the delay of a killed replica's alerts.
	OutboxLease time.Duration
	// NoPrefilter reads every event in full and evaluates it, without the
	// prefilter derived from the rules (internal/prefilter): the alerts are
	// the same, more slowly (for checking exactly that).
	NoPrefilter bool
	// Decoders is the number of goroutines that decode batches ahead of
	// the driver's goroutine, which evaluates them in input order
	// (0: none; batches are decoded in the driver's goroutine). The
	// alerts are the same, in the same order, whatever the number.
	Decoders int
	// QueueSize bounds the batches waiting for the driver
	// (0: DefaultQueueSize).
	QueueSize int
	// QueueBytes bounds the input bytes (Batch.Bytes) of the batches the
	// driver holds, from their submission until they are done: waiting,
	// evaluated, or committing (0: DefaultQueueBytes). A batch's records
	// hold its bytes until then, so this bounds the memory of a source
	// that reads ahead of the driver whatever its batches' size. A batch
	// larger than the bound waits until the driver holds nothing else.
	QueueBytes int64
	// RuleMemoryBudget bounds the open runs of one windowed rule
	// (0: rule.MemoryBudget).
	RuleMemoryBudget int64
	// Hunt is passed to the engine (engine.Options.Hunt): kanon scan's
	// narrowing and its hits dropped at max_signals.
	Hunt engine.Hunt
	// Metrics is the registry the driver's metrics go to (nil: a new one;
	// see Driver.Metrics).
	Metrics *prometheus.Registry
	// Logger receives the driver's log (nil: slog.Default()).
	Logger *slog.Logger
	// OnBad, if set, is called in the driver's goroutine for every bad
	// record, with its input.
	OnBad func(input string, b ingest.BadRecord)
	// OnWarn, if set, is called in the driver's goroutine for every record
	// read with a warning (ingest.ErrAmbiguous), with its input.
	OnWarn func(input string, b ingest.BadRecord)
	// OnRuleError, if set, is called for a rule-level problem that does
	// not stop the run (a memory budget exceeded).
	OnRuleError func(ruleID string, err error)
	// OnAlert, if set, is called in the driver's goroutine with each alert
	// and the time since its batch was received (tests, load tests).
	OnAlert func(a *alert.Alert, sinceReceipt time.Duration)
	// Observers see every event evaluated, after the rules (a report's
	// counts of activity).
	Observers []Observer
	// Now is the wall clock (nil: time.Now). The driver is the only part
	// of kanon that reads it while judging events: for alert latency, for
	// the pace of commits, and for the idle clock.
	Now func() time.Time
}

// validate checks cfg and fills its defaults.
func (c *Config) validate() error {
	var errs []error
	switch {
	case len(c.Rules) == 0:
		errs = append(errs, errors.New("no rules"))
	case c.Registry == nil:
		errs = append(errs, errors.New("no format registry"))
	case c.Sink == nil:
		errs = append(errs, errors.New("no alert sink"))
	}
	if c.Policy.Windows != engine.WindowsInMemory && c.Store == nil {
		errs = append(errs, fmt.Errorf("window mode %s needs a state store", c.Policy.Windows))
	}
	if c.Replica != "" && c.Store == nil {
		errs = append(errs, fmt.Errorf("replica %s needs the state store it shares", c.Replica))
	}
	if c.Dedup < 0 {
		errs = append(errs, fmt.Errorf("dedup %d is negative", c.Dedup))
	}
	if _, err := ingest.NewReader(c.Registry, ingest.Options{Format: c.Format}); c.Registry != nil && err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("run: %w", err)
	}
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = ingest.DefaultMaxRecordBytes
	}
	if c.Policy.GroupEvents <= 0 {
		c.Policy.GroupEvents = DefaultGroupEvents
	}
	if c.Policy.GroupDelay <= 0 {
		c.Policy.GroupDelay = DefaultGroupDelay
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Observer sees every event the driver evaluates, after the rules: what an
// incident report counts (requests per minute, top sources). Observe runs
// in the driver's goroutine; the event is valid only during the call and
// must not be changed.
type Observer interface {
	// Fields are the fields Observe reads: the readers fill them beside
	// those the rules read.
	Fields() event.FieldSet
	Observe(e *event.Event)
}
