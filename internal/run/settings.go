package run

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/tail"
	"github.com/spf13/pflag"
)

// Settings are the driver's keys of kanon serve's configuration file —
// its inputs and how it judges them — each with a flag (RegisterFlags).
type Settings struct {
	// Inputs are followed files, and "-" for standard input.
	Inputs []string `yaml:"inputs"`
	// SourceURLs are sources named by URL (cloudwatch://, pubsub://,
	// nats://, kafka://, eventhubs://),
	// built by kanon serve from packages outside run (internal/source/*).
	SourceURLs []string `yaml:"sources"`
	// Format forces one input format.
	Format string `yaml:"format"`
	// TailFrom is where a followed file with no stored position starts:
	// "start" or "end".
	TailFrom string `yaml:"tail_from"`
	// TailPoll is how often a followed file is checked at its end.
	TailPoll time.Duration `yaml:"tail_poll"`
	// MaxRecordBytes limits one record.
	MaxRecordBytes alert.ByteSize `yaml:"max_record_bytes"`
	// Lateness, LearnOnly, GroupUpdates, GroupUpdateEvery and QueueSize
	// are Config's.
	Lateness         time.Duration `yaml:"lateness"`
	LearnOnly        bool          `yaml:"learn_only"`
	GroupUpdates     bool          `yaml:"group_updates"`
	GroupUpdateEvery time.Duration `yaml:"group_update_interval"`
	QueueSize        int           `yaml:"queue_size"`
	// QueueBytes is Config.QueueBytes.
	QueueBytes alert.ByteSize `yaml:"queue_bytes"`
	// Replica is Config.Replica: this serve's name among the replicas on
	// a shared store (ReplicaName gives the default).
	Replica string `yaml:"replica"`
	// OutboxLease is Config.OutboxLease.
	OutboxLease time.Duration `yaml:"outbox_lease"`
}

// ReplicaName is the replica name serve runs as: Replica if set, else,
// on a shared store, the host name (a Deployment's pods are then
// replicas without configuration), else "" (alone with its store).
func (s *Settings) ReplicaName(shared bool) (string, error) {
	if s.Replica != "" || !shared {
		return s.Replica, nil
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "", fmt.Errorf("replica: no host name to default to (%v): set replica", err)
	}
	return h, nil
}

// DefaultGroupUpdateEvery is how often serve delivers a growing dedup
// group again by default.
const DefaultGroupUpdateEvery = time.Minute

// DefaultSettings are serve's defaults.
func DefaultSettings() Settings {
	return Settings{Format: "auto", TailFrom: "start", TailPoll: tail.DefaultPoll, MaxRecordBytes: ingest.DefaultMaxRecordBytes,
		Lateness: DefaultLiveLateness, GroupUpdates: true, GroupUpdateEvery: DefaultGroupUpdateEvery, QueueSize: DefaultQueueSize,
		QueueBytes: DefaultQueueBytes, OutboxLease: engine.DefaultOutboxLease}
}

// RegisterFlags registers a flag per key, bound to s (whose values are the
// flags' defaults); formats are the names --format takes.
func (s *Settings) RegisterFlags(fs *pflag.FlagSet, formats []string) {
	fs.StringArrayVar(&s.Inputs, "input", s.Inputs, "follow the audit log `PATH` as it is written, or - for standard input (repeatable) (key inputs)")
	fs.StringArrayVar(&s.SourceURLs, "source", s.SourceURLs, "read a source `URL`: cloudwatch://REGION/LOG_GROUP, pubsub://PROJECT/SUBSCRIPTION, nats://HOST:PORT/STREAM?consumer=NAME, kafka://BROKER[,BROKER]/TOPIC?group=NAME, eventhubs://NAMESPACE/HUB?group=NAME&connection_string_file=PATH (repeatable) (key sources)")
	fs.StringVar(&s.Format, "format", s.Format, "input format: auto, "+strings.Join(formats, ", ")+" (key format)")
	fs.StringVar(&s.TailFrom, "tail-from", s.TailFrom, "where to start a followed file with no stored position: start or end (key tail_from)")
	fs.DurationVar(&s.TailPoll, "tail-poll", s.TailPoll, "how often a followed file is checked at its end (key tail_poll)")
	fs.Var(&s.MaxRecordBytes, "max-record-bytes", "size limit of one record (key max_record_bytes)")
	fs.DurationVar(&s.Lateness, "lateness", s.Lateness, "how far behind the newest event time a windowed run still takes events (key lateness)")
	fs.BoolVar(&s.LearnOnly, "learn-only", s.LearnOnly, "learn new-terms history without alerting (key learn_only)")
	fs.BoolVar(&s.GroupUpdates, "group-updates", s.GroupUpdates, "deliver the first alert of a dedup group at once, then the group again with its count when it closes (key group_updates); false: once, when it closes")
	fs.DurationVar(&s.GroupUpdateEvery, "group-update-interval", s.GroupUpdateEvery, "with --group-updates, also deliver an open group again while alerts join it, at most once per this much event time, with its count so far; 0: only when it opens and closes (key group_update_interval)")
	fs.IntVar(&s.QueueSize, "queue-size", s.QueueSize, "batches waiting for the engine; more get 429 (key queue_size)")
	fs.Var(&s.QueueBytes, "queue-bytes", "input bytes of the batches the engine holds until they are durable; more get 429, and broker sources wait (key queue_bytes)")
	fs.DurationVar(&s.OutboxLease, "outbox-lease", s.OutboxLease, "on a shared store, how long the alerts a replica decided are left to it to deliver before another replica delivers them: the delay of a killed replica's alerts (key outbox_lease)")
	fs.StringVar(&s.Replica, "replica", s.Replica, "this serve's `NAME` among the replicas sharing a redis:// store (key replica; default on a shared store: the host name)")
}

// Validate checks the settings against the formats of reg.
func (s *Settings) Validate(reg *ingest.Registry) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	stdin := 0
	for _, in := range s.Inputs {
		if in == "-" {
			stdin++
		} else if in == "" {
			bad("inputs: empty path")
		}
	}
	if stdin > 1 {
		bad("inputs: standard input (-) given %d times", stdin)
	}
	if s.TailFrom != "start" && s.TailFrom != "end" {
		bad("tail_from: %q is not start or end", s.TailFrom)
	}
	if s.Lateness < 0 {
		bad("lateness: %s is negative", s.Lateness)
	}
	if s.GroupUpdateEvery < 0 {
		bad("group_update_interval: %s is negative", s.GroupUpdateEvery)
	}
	for _, v := range []struct {
		key string
		n   int64
	}{{"max_record_bytes", int64(s.MaxRecordBytes)}, {"queue_size", int64(s.QueueSize)}, {"queue_bytes", int64(s.QueueBytes)}, {"outbox_lease", int64(s.OutboxLease)}, {"tail_poll", int64(s.TailPoll)}} {
		if v.n <= 0 {
			bad("%s: must be positive", v.key)
		}
	}
	if _, err := ingest.NewReader(reg, ingest.Options{Format: s.Format}); err != nil {
		bad("format: %v", err)
	}
	return errors.Join(errs...)
}

// Policy is the live policy with the configured lateness.
func (s *Settings) Policy() Policy { return LivePolicy(s.Lateness) }

// Sources returns a source per input: a Tail per followed file, and Files
// reading stdin as it is written for "-".
func (s *Settings) Sources(stdin io.Reader) []Source {
	var out []Source
	for _, in := range s.Inputs {
		if in == "-" {
			out = append(out, &Files{Paths: []string{"-"}, Stdin: stdin, Live: true, MaxRecordBytes: int(s.MaxRecordBytes)})
			continue
		}
		out = append(out, &Tail{Path: in, MaxRecordBytes: int(s.MaxRecordBytes),
			Options: tail.Options{FromEnd: s.TailFrom == "end", Poll: s.TailPoll}})
	}
	return out
}

// StreamsOnly reports whether every input is standard input: serve then
// ends when it does.
func (s *Settings) StreamsOnly() bool {
	if len(s.SourceURLs) > 0 {
		return false
	}
	for _, in := range s.Inputs {
		if in != "-" {
			return false
		}
	}
	return true
}
