package loadgen

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// burstOptions are 20,000 events over about 17 minutes of event time
// with a burst every 2 minutes on average.
func burstOptions(events int) Options {
	opts := DefaultOptions(events, 8)
	opts.Rate, opts.Bursts = 20, 30
	return opts
}

func generated(t *testing.T, opts Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := Generate(&buf, opts); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// isBurst says whether a line is a request of an enumeration burst: the
// only anonymous events at level Request.
func isBurst(t *testing.T, line []byte) (auditv1.Event, bool) {
	t.Helper()
	var e auditv1.Event
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatal(err)
	}
	return e, e.User.Username == "system:anonymous" && e.Level == auditv1.LevelRequest
}

// TestGenerateBursts: bursts are interleaved with the traffic without
// changing it (the lines that are not bursts are the log without bursts),
// a shorter log is a prefix of a longer one, and each burst is one client
// asking one cluster (all 401 where anonymous requests are limited to
// health checks, none elsewhere), within a minute at level Request, for 10 to 24
// distinct paths over at least four resources, answered 401, 403, 404 or
// 200 as anonymous requests are; the lines are what the apiserver's audit
// codec writes.
func TestGenerateBursts(t *testing.T) {
	opts := burstOptions(20_000)
	data := generated(t, opts)
	short := opts
	short.Events = 5000
	if !bytes.HasPrefix(data, generated(t, short)) {
		t.Fatal("a shorter log with bursts is not a prefix of the longer one")
	}
	if !bytes.Equal(data, generated(t, opts)) {
		t.Fatal("two logs with the same options differ")
	}
	plain := opts
	plain.Bursts = 0
	without := bytes.SplitAfter(generated(t, plain), []byte("\n"))

	type client struct {
		ip, agent string
	}
	type seen struct {
		first, last time.Time
		uris        map[string]bool
		resources   map[string]bool
		answers     map[bool]bool // whether requests but /version got 401
		n           int
	}
	bursts := map[client]*seen{}
	codes := map[int32]int{}
	codecs := auditCodecs()
	encoder := codecs.LegacyCodec(auditv1.SchemeGroupVersion)
	decoder := codecs.UniversalDecoder(auditinternal.SchemeGroupVersion)
	other := 0
	var last time.Time
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		e, burst := isBurst(t, line)
		if stage := e.StageTimestamp.Time; last.Sub(stage) > time.Second {
			t.Fatalf("event at %v more than 1s before an earlier one at %v", stage, last)
		} else if stage.After(last) {
			last = stage
		}
		if !burst {
			if !bytes.Equal(line, without[other]) {
				t.Fatalf("traffic line %d differs from the log without bursts:\n%s\n%s", other+1, line, without[other])
			}
			other++
			continue
		}
		obj, err := runtime.Decode(decoder, line)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := runtime.Encode(encoder, obj); err != nil || !bytes.Equal(got, line) {
			t.Fatalf("burst line differs from the log backend's encoding (%v)\n%s\n%s", err, line, got)
		}
		if e.RequestObject != nil || e.ResponseObject != nil || e.ResponseStatus == nil {
			t.Fatalf("burst request with a body or without a response: %s", line)
		}
		codes[e.ResponseStatus.Code]++
		c := client{e.SourceIPs[0], e.UserAgent}
		s := bursts[c]
		if s == nil {
			s = &seen{first: e.StageTimestamp.Time, uris: map[string]bool{}, resources: map[string]bool{}, answers: map[bool]bool{}}
			bursts[c] = s
		}
		s.last, s.n = e.StageTimestamp.Time, s.n+1
		s.uris[e.RequestURI] = true
		if e.ObjectRef != nil {
			s.resources[e.ObjectRef.Resource] = true
		}
		if e.RequestURI != "/version" {
			s.answers[e.ResponseStatus.Code == 401] = true
		}
	}
	// About 17 minutes at 30 an hour.
	if n := len(bursts); n < 3 || n > 20 {
		t.Fatalf("%d bursts, want about 8", n)
	}
	for c, s := range bursts {
		if last.Sub(s.first) < burstLength+time.Second {
			continue // cut by the end of the log
		}
		if s.n < minBurst || s.n > maxBurst || len(s.uris) != s.n || len(s.resources) < 4 || len(s.answers) != 1 || s.last.Sub(s.first) > burstLength+2*time.Millisecond {
			t.Errorf("burst of %v: %d requests, %d URIs, %d resources, answers %v over %v", c, s.n, len(s.uris), len(s.resources), s.answers, s.last.Sub(s.first))
		}
	}
	for _, code := range []int32{401, 403} {
		if codes[code] == 0 {
			t.Errorf("no burst request answered %d: %v", code, codes)
		}
	}
	for code := range codes {
		if code != 200 && code != 401 && code != 403 && code != 404 {
			t.Errorf("burst requests answered %d: %v", code, codes)
		}
	}
}

// The burst rate is per hour of event time.
func TestGenerateBurstRate(t *testing.T) {
	opts := DefaultOptions(200_000, 3)
	opts.Rate, opts.Bursts, opts.BodyRatio = 1000, 360, 0
	var buf bytes.Buffer
	st, err := Generate(&buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	starts := 0
	agents := map[string]bool{}
	for _, line := range bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n")) {
		if !bytes.Contains(line, []byte(`"level":"Request"`)) {
			continue
		}
		e, burst := isBurst(t, line)
		if burst && !agents[e.SourceIPs[0]+" "+e.UserAgent] {
			agents[e.SourceIPs[0]+" "+e.UserAgent] = true
			starts++
		}
	}
	// 200 s of event time at 360 an hour: 20 bursts (Poisson, sd 4.5).
	if math.Abs(float64(starts)-20) > 12 {
		t.Errorf("%d bursts in %d events, want about 20", starts, st.Events)
	}
}
