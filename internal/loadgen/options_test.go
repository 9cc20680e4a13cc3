package loadgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"testing"
	"time"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

func TestOptionsValidate(t *testing.T) {
	ok := DefaultOptions(10, 1)
	tests := []struct {
		name   string
		modify func(*Options)
		valid  bool
	}{
		{"defaults", func(*Options) {}, true},
		{"zero value", func(o *Options) { *o = Options{} }, true},
		{"no anonymous, no bodies", func(o *Options) { o.AnonymousRatio, o.BodyRatio = 0, 0 }, true},
		{"ratios summing to 1", func(o *Options) { o.AnonymousRatio, o.BodyRatio = 0.25, 0.75 }, true},
		{"negative events", func(o *Options) { o.Events = -1 }, false},
		{"negative rate", func(o *Options) { o.Rate = -5 }, false},
		{"NaN rate", func(o *Options) { o.Rate = math.NaN() }, false},
		{"infinite rate", func(o *Options) { o.Rate = math.Inf(1) }, false},
		{"anonymous ratio above 1", func(o *Options) { o.AnonymousRatio = 1.5 }, false},
		{"negative body ratio", func(o *Options) { o.BodyRatio = -0.1 }, false},
		{"NaN body ratio", func(o *Options) { o.BodyRatio = math.NaN() }, false},
		{"ratios above 1 together", func(o *Options) { o.AnonymousRatio, o.BodyRatio = 0.6, 0.6 }, false},
		{"too many clusters", func(o *Options) { o.Clusters = MaxClusters + 1 }, false},
		{"negative nodes", func(o *Options) { o.NodesPerCluster = -1 }, false},
		{"bursts", func(o *Options) { o.Bursts = 12 }, true},
		{"negative bursts", func(o *Options) { o.Bursts = -1 }, false},
		{"NaN bursts", func(o *Options) { o.Bursts = math.NaN() }, false},
		{"infinite bursts", func(o *Options) { o.Bursts = math.Inf(1) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.modify(&o)
			err := o.Validate()
			if tt.valid && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
			if !tt.valid && !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Validate() = %v, want ErrInvalidOptions", err)
			}
			if !tt.valid {
				if _, err := Generate(io.Discard, o); !errors.Is(err, ErrInvalidOptions) {
					t.Fatalf("Generate() = %v, want ErrInvalidOptions", err)
				}
			}
		})
	}
}

func TestGenerateDeterministic(t *testing.T) {
	gen := func(seed int64) []byte {
		t.Helper()
		var buf bytes.Buffer
		if _, err := Generate(&buf, DefaultOptions(3000, seed)); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	a, b, c := gen(42), gen(42), gen(43)
	if !bytes.Equal(a, b) {
		t.Fatal("two runs with seed 42 differ")
	}
	if bytes.Equal(a, c) {
		t.Fatal("seeds 42 and 43 give the same log")
	}
	// The first 100 events do not depend on how many follow.
	var buf bytes.Buffer
	if _, err := Generate(&buf, DefaultOptions(100, 42)); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(a, buf.Bytes()) {
		t.Fatal("a shorter log is not a prefix of the longer one")
	}
}

func TestGenerateTime(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	opts := DefaultOptions(20_000, 9)
	opts.Start, opts.Rate = start, 1000
	var buf bytes.Buffer
	if _, err := Generate(&buf, opts); err != nil {
		t.Fatal(err)
	}
	var first, last auditv1.Event
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	if err := json.Unmarshal(lines[0], &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(lines[len(lines)-1], &last); err != nil {
		t.Fatal(err)
	}
	if d := first.StageTimestamp.Sub(start); d < 0 || d > 2*time.Millisecond {
		t.Errorf("first event at %v, want within 2ms after %v", first.StageTimestamp, start)
	}
	// 20,000 events at 1000/s span about 20 s (Poisson: ± a few percent).
	if span := last.StageTimestamp.Sub(first.StageTimestamp.Time); span < 19*time.Second || span > 21*time.Second {
		t.Errorf("20000 events at 1000/s span %v, want about 20s", span)
	}
}

func TestGenerateRatios(t *testing.T) {
	tests := []struct{ anonymous, body float64 }{
		{0, 0},
		{0.3, 0.5},
		{0, 1},
		{1, 0},
	}
	for _, tt := range tests {
		opts := DefaultOptions(20_000, 5)
		opts.AnonymousRatio, opts.BodyRatio = tt.anonymous, tt.body
		st, err := Generate(io.Discard, opts)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(st.AnonymousRatio()-tt.anonymous) > 0.01 || math.Abs(st.BodyRatio()-tt.body) > 0.01 {
			t.Errorf("asked anonymous %.2f body %.2f, got %.4f and %.4f", tt.anonymous, tt.body, st.AnonymousRatio(), st.BodyRatio())
		}
	}
}

func TestGenerateClusters(t *testing.T) {
	opts := DefaultOptions(5000, 2)
	opts.Clusters, opts.NodesPerCluster = 9, 3
	var buf bytes.Buffer
	if _, err := Generate(&buf, opts); err != nil {
		t.Fatal(err)
	}
	kubelets := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n")) {
		var e auditv1.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatal(err)
		}
		if u := e.User.Username; len(u) > 12 && u[:12] == "system:node:" {
			kubelets[u] = true
		}
	}
	if len(kubelets) != 27 {
		t.Errorf("%d kubelets seen, want 9 clusters × 3 nodes", len(kubelets))
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestGenerateWriteError(t *testing.T) {
	if _, err := Generate(failingWriter{}, DefaultOptions(1000, 1)); !errors.Is(err, errDiskFull) {
		t.Fatalf("Generate() = %v, want the writer's error", err)
	}
}

// TestGenerateEventList checks that the webhook batches hold the same events
// as Generate, in order, batchSize at a time.
func TestGenerateEventList(t *testing.T) {
	opts := DefaultOptions(1234, 8)
	var buf bytes.Buffer
	want, err := Generate(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	batches, st, err := GenerateEventList(opts, 500)
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 3 {
		t.Fatalf("%d batches, want 3", len(batches))
	}
	if st.Events != want.Events || st.EventBytes != want.EventBytes || st.Anonymous != want.Anonymous || st.WithBody != want.WithBody {
		t.Errorf("event list stats %+v, Generate's %+v", st, want)
	}
	var total int64
	i := 0
	for b, body := range batches {
		total += int64(len(body))
		var list auditv1.EventList
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&list); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		if list.Kind != "EventList" || list.APIVersion != "audit.k8s.io/v1" {
			t.Fatalf("batch %d: kind %q apiVersion %q", b, list.Kind, list.APIVersion)
		}
		if wantN := min(500, 1234-500*b); len(list.Items) != wantN {
			t.Fatalf("batch %d has %d items, want %d", b, len(list.Items), wantN)
		}
		for _, item := range list.Items {
			got, err := json.Marshal(&item)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(got, '\n'), lines[i]) {
				t.Fatalf("batch %d: event %d differs from Generate's line", b, i)
			}
			i++
		}
	}
	if total != st.Bytes {
		t.Errorf("batches hold %d bytes, stats say %d", total, st.Bytes)
	}
	if _, _, err := GenerateEventList(opts, 0); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("batch size 0: %v, want ErrInvalidOptions", err)
	}
}
