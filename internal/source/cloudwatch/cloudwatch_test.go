package cloudwatch

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/source/cloudwatch/cloudwatchtest"
	"github.com/kanon-dev/kanon/internal/source/sourcetest"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

func exampleLines(t *testing.T) []string {
	t.Helper()
	b, err := examples.FS.ReadFile("logs/audit.log")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// subscription is the scan's record of a stream's events: the payload a
// subscription filter would deliver.
func subscription(t *testing.T, group, stream string, evs []cloudwatchtest.Event) string {
	t.Helper()
	p := payload{MessageType: "DATA_MESSAGE", LogGroup: group, LogStream: stream}
	for _, e := range evs {
		p.LogEvents = append(p.LogEvents, logEvent{e.Timestamp, e.Message})
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// live is a serve-like driver on store.
type live struct {
	d      *run.Driver
	col    *alert.Collector
	cancel context.CancelFunc
	done   chan error
	order  *order
}

// order records the events in the order the driver evaluated them, by
// stream, as the subscription payloads of a scan of the same events.
type order struct {
	streams []string
	events  [][]cloudwatchtest.Event
}

func (o *order) Fields() event.FieldSet { return event.FieldSet{} }

func (o *order) Observe(e *event.Event) {
	// The event's strings are the batch's: copied.
	stream := strings.Clone(e.Origin.Name[strings.LastIndexByte(e.Origin.Name, '/')+1:])
	if n := len(o.streams); n == 0 || o.streams[n-1] != stream {
		o.streams = append(o.streams, stream)
		o.events = append(o.events, nil)
	}
	o.events[len(o.events)-1] = append(o.events[len(o.events)-1], cloudwatchtest.Event{Timestamp: e.Time().UnixMilli(), Message: string(e.Record)})
}

func (o *order) payloads(t *testing.T) []string {
	var out []string
	for i, s := range o.streams {
		out = append(out, subscription(t, group, s, o.events[i]))
	}
	return out
}

func startLive(t *testing.T, store state.Store, src *Source) *live {
	t.Helper()
	pol := run.LivePolicy(time.Hour)
	pol.IdleCheck = time.Hour
	l := &live{col: &alert.Collector{}, done: make(chan error, 1), order: &order{}}
	d, err := run.New(run.Config{Rules: sourcetest.BuiltinRules(t), Registry: formats.Registry(), Store: store, Sink: l.col, Policy: pol,
		Dedup: run.DefaultDedup, Logger: slog.New(slog.DiscardHandler), Observers: []run.Observer{l.order}})
	if err != nil {
		t.Fatal(err)
	}
	l.d = d
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go func() { l.done <- src.Run(ctx, d) }()
	return l
}

// waitEvents waits until the driver has evaluated n events.
func (l *live) waitEvents(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := l.d.Stats().Events; got >= n {
			time.Sleep(200 * time.Millisecond) // would more come?
			if got := l.d.Stats().Events; got != n {
				t.Fatalf("%d events evaluated, want %d", got, n)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%d events evaluated, want %d", l.d.Stats().Events, n)
}

// stop stops the source and the driver: with end, at the end of the
// input (the open runs close), else as for a restart.
func (l *live) stop(t *testing.T, end bool) {
	t.Helper()
	l.cancel()
	if err := <-l.done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stop := l.d.Stop
	if end {
		stop = l.d.Close
	}
	if err := stop(ctx); err != nil {
		t.Fatal(err)
	}
}

const group = "/aws/eks/prod-eks/cluster"

func newSource(t *testing.T, endpoint string) *Source {
	t.Helper()
	c, err := ParseURL("cloudwatch://eu-west-1/aws/eks/prod-eks/cluster?poll=20ms&since=87600h&endpoint=" + endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(context.Background(), c, 10, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return &Source{Config: c, API: cl, Logger: slog.New(slog.DiscardHandler), ListEvery: 50 * time.Millisecond}
}

// events gives the lines timestamps, three lines per millisecond, from
// base on.
func events(lines []string, base int64) []cloudwatchtest.Event {
	out := make([]cloudwatchtest.Event, len(lines))
	for i, l := range lines {
		out[i] = cloudwatchtest.Event{Timestamp: base + int64(i/3), Message: l}
	}
	return out
}

// The example log in two audit streams of an EKS log group (and a stream
// of another component beside them), read through a local CloudWatch
// Logs endpoint that throttles every fourth call and fails others, raises
// the alerts a scan of the same events raises, with the cluster named by
// the log group. Then kanon stops, more events are written (some in the
// millisecond of the last one read), and a new driver on the same store
// reads exactly those: a restart neither skips nor repeats.
func TestCloudWatchPollingMatchesScanAcrossRestart(t *testing.T) {
	cloudwatchtest.Credentials(t)
	f := cloudwatchtest.New(t, group, 7)
	endpoint := f.URL
	f.ThrottleEvery(4)
	f.Fail(2, "ServiceUnavailableException") // retried by the SDK
	f.Fail(9, "InvalidParameterException")   // not retried: read again at the next poll
	f.Fail(10, "ServiceUnavailableException")
	lines := exampleLines(t)
	cut := len(lines)/2 + 1
	a1 := events(lines[:cut/2], 1747213953000)
	b1 := events(lines[cut/2:cut], 1747213953000)
	f.Add("kube-apiserver-audit-aaaa", a1...)
	f.Add("kube-apiserver-audit-bbbb", b1...)
	f.Add("kube-apiserver-xyz", cloudwatchtest.Event{Timestamp: 1747213953000, Message: "I0514 09:12:33 not an audit event"})
	store := mem.New()

	l := startLive(t, store, newSource(t, endpoint))
	l.waitEvents(t, int64(cut))
	l.stop(t, false)
	if len(l.col.Alerts) == 0 {
		t.Fatal("no alerts")
	}
	for _, a := range l.col.Alerts {
		orch, _ := a.Event["orchestrator"].(map[string]any)
		cl, _ := orch["cluster"].(map[string]any)
		if cl["name"] != "prod-eks" {
			t.Fatalf("alert %s: cluster %v", a.ID, a.Event["orchestrator"])
		}
	}
	if f.Throttled() == 0 {
		t.Fatal("no call was throttled")
	}

	// The rest is written while kanon is down; stream aaaa goes on in the
	// millisecond of its last event read.
	last := a1[len(a1)-1].Timestamp
	rest := lines[cut:]
	a2 := events(rest[:len(rest)/2], last)
	b2 := events(rest[len(rest)/2:], b1[len(b1)-1].Timestamp+1)
	f.Add("kube-apiserver-audit-aaaa", a2...)
	f.Add("kube-apiserver-audit-bbbb", b2...)
	l2 := startLive(t, store, newSource(t, endpoint))
	l2.waitEvents(t, int64(len(rest)))
	l2.stop(t, true)
	all := append(sourcetest.Distinct(l.col.Alerts), sourcetest.Distinct(l2.col.Alerts)...)
	slices.Sort(all)
	// The scan reads the same events in the order they were polled (an
	// injected failure puts a stream's page after the other stream's).
	want := sourcetest.ScanIDs(t, []byte(strings.Join(append(l.order.payloads(t), l2.order.payloads(t)...), "\n")))
	if n := len(l.order.payloads(t)) + len(l2.order.payloads(t)); n < 4 {
		t.Fatalf("%d runs of one stream's events", n)
	}
	if len(want) == 0 || !slices.Equal(slices.Compact(all), want) {
		t.Fatalf("alerts before and after the restart:\n%v\nscan:\n%v", all, want)
	}
	pos, _ := state.NewPositions(store, "cloudwatch:eu-west-1/"+group)
	p, ok, err := pos.Get(context.Background(), "kube-apiserver-audit-aaaa")
	if err != nil || !ok || p.Line != int64(len(a1)+len(a2)) || p.Offset != a2[len(a2)-1].Timestamp {
		t.Fatalf("position of stream aaaa: %+v %v %v", p, ok, err)
	}
	if _, ok, _ := pos.Get(context.Background(), "kube-apiserver-xyz"); ok {
		t.Fatal("a stream without the prefix was read")
	}
}

func TestParseURL(t *testing.T) {
	f := func(raw, wantGroup string, wantErr string) {
		t.Helper()
		c, err := ParseURL(raw)
		if wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("%s: error %v, want %q", raw, err, wantErr)
			}
			return
		}
		if err != nil || c.LogGroup != wantGroup {
			t.Fatalf("%s: %+v %v", raw, c, err)
		}
	}
	f("cloudwatch://eu-west-1/aws/eks/prod/cluster", "/aws/eks/prod/cluster", "")
	f("cloudwatch://eu-west-1//aws/eks/prod/cluster", "/aws/eks/prod/cluster", "")
	f("cloudwatch://eu-west-1/my-group?stream_prefix=x&poll=1s&since=1h", "my-group", "")
	f("cloudwatch:///aws/eks/x/cluster", "", "no region")
	f("cloudwatch://eu-west-1/", "", "no log group")
	f("cloudwatch://eu-west-1/g?poll=0s", "", "poll")
	f("cloudwatch://eu-west-1/g?bogus=1", "", "unknown parameter")
	f("cloudwatch://eu-west-1/g?endpoint=ftp://x", "", "endpoint")
	f("cloudwatch://AKID:secret@eu-west-1/g", "", "credentials")
	f("kafka://eu-west-1/g", "", "not a cloudwatch")
	c, _ := ParseURL("cloudwatch://eu-west-1/g")
	if c.StreamPrefix != "kube-apiserver-audit" || c.Poll != DefaultPoll {
		t.Fatalf("defaults: %+v", c)
	}
}
