package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHEC implements Splunk's HTTP Event Collector endpoint
// /services/collector/event as documented: "Authorization: Splunk
// TOKEN", a body of one or more concatenated JSON event objects, each
// with an "event" and optional time (epoch seconds), host, source,
// sourcetype, index and fields (flat, indexed); the answer
// {"text":"Success","code":0}, 401 {"text":"Token is required","code":2},
// 403 {"text":"Invalid token","code":4} and 400 {"text":"Invalid data
// format","code":6,"invalid-event-number":N}.
type fakeHEC struct {
	token string

	mu       sync.Mutex
	events   []map[string]any
	accepted []string
	requests int
}

func (f *fakeHEC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
	if r.URL.Path != "/services/collector/event" || r.Method != http.MethodPost {
		reply(404, `{"text":"The requested URL was not found on this server.","code":404}`)
		return
	}
	auth := r.Header.Get("Authorization")
	switch {
	case auth == "":
		reply(401, `{"text":"Token is required","code":2}`)
		return
	case !strings.HasPrefix(auth, "Splunk "):
		reply(401, `{"text":"Invalid authorization","code":3}`)
		return
	case strings.TrimPrefix(auth, "Splunk ") != f.token:
		reply(403, `{"text":"Invalid token","code":4}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	dec := json.NewDecoder(bytes.NewReader(body))
	var evs []map[string]any
	for n := 0; ; n++ {
		var ev map[string]any
		err := dec.Decode(&ev)
		if errors.Is(err, io.EOF) {
			break
		}
		_, hasEvent := ev["event"]
		_, badTime := ev["time"].(string)
		fields, _ := ev["fields"].(map[string]any)
		nested := false
		for _, v := range fields {
			if _, ok := v.(map[string]any); ok {
				nested = true
			}
		}
		if err != nil || !hasEvent || badTime || nested {
			reply(400, fmt.Sprintf(`{"text":"Invalid data format","code":6,"invalid-event-number":%d}`, n))
			return
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 {
		reply(400, `{"text":"No data","code":5}`)
		return
	}
	f.mu.Lock()
	f.requests++
	for _, ev := range evs {
		f.events = append(f.events, ev)
		b, _ := json.Marshal(ev["event"])
		k, _ := LineDeliveryKey(b)
		f.accepted = append(f.accepted, k)
	}
	f.mu.Unlock()
	reply(200, `{"text":"Success","code":0}`)
}

type hecReceiver struct {
	*httpReceiver
	f *fakeHEC
}

func (r hecReceiver) keys() []string {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return slices.Clone(r.f.accepted)
}

func newHECReceiver(t *testing.T, token string) hecReceiver {
	f := &fakeHEC{token: token}
	return hecReceiver{newHTTPReceiver(t, f), f}
}

func TestSplunkDownThenUp(t *testing.T) {
	r := newHECReceiver(t, "hec-token-1")
	t.Setenv(SplunkTokenEnv, "hec-token-1")
	oc, err := ParseOutputFlag("splunk:" + r.url())
	if err != nil {
		t.Fatal(err)
	}
	oc.BatchSize = 4
	checkDownThenUp(t, oc, r)
}

// The events are HEC events with kanon's alert, metadata and indexed
// fields; a rotated token file is read again, and the 403 of a wrong
// token is retried (the alerts wait in the spool), not given up.
func TestSplunkEventShapeAndTokenRotation(t *testing.T) {
	r := newHECReceiver(t, "new-token")
	tokenFile := filepath.Join(t.TempDir(), "hec-token")
	if err := os.WriteFile(tokenFile, []byte("old-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeSplunk, URL: r.url(), Token: "file:" + tokenFile,
		Index: "security", Hostname: "kanon-0"}), t.TempDir())
	defer o.Close()
	a := slackEventAlert()
	if err := o.Write(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	st := waitStats(t, o, "403 retried", 10*time.Second, func(st OutputStats) bool { return st.Retried >= 2 })
	if st.Failed != 0 || !strings.Contains(st.LastError, "403 Forbidden") || strings.Contains(st.LastError, "old-token") {
		t.Fatalf("with the old token: %+v", st)
	}
	time.Sleep(20 * time.Millisecond) // a new modification time
	if err := os.WriteFile(tokenFile, []byte("new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitKeys(t, r, 1, 10*time.Second)
	r.f.mu.Lock()
	ev := r.f.events[0]
	r.f.mu.Unlock()
	if ev["time"] != 1772366645.0 || ev["host"] != "kanon-0" || ev["source"] != DefaultSplunkSource ||
		ev["sourcetype"] != DefaultSplunkSourcetype || ev["index"] != "security" {
		t.Errorf("metadata: time %v host %v source %v sourcetype %v index %v", ev["time"], ev["host"], ev["source"], ev["sourcetype"], ev["index"])
	}
	if e := ev["event"].(map[string]any); e["id"] != a.ID || e["rule"].(map[string]any)["id"] != a.Rule.ID {
		t.Errorf("event %v", e)
	}
	want := map[string]any{"rule_id": a.Rule.ID, "severity": "critical", "risk_score": float64(73), "alert_id": a.ID, "cluster": "prod-eu"}
	if got := ev["fields"].(map[string]any); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("fields %v, want %v", got, want)
	}
}

// fakeAlertmanager implements POST /api/v2/alerts as Alertmanager's
// OpenAPI specification documents it: a JSON array of postable alerts
// with labels (required, non-empty, valid label names), annotations,
// startsAt, endsAt (RFC 3339, endsAt not before startsAt) and
// generatorURL; 200 on success, 400 with an error message naming a
// refused alert. Alerts with the same label set are one alert: a post
// updates it (annotations, endsAt).
type fakeAlertmanager struct {
	mu       sync.Mutex
	alerts   map[string]map[string]any // label fingerprint → alert
	accepted []string
	posts    int
	refuse   func(labels map[string]string) bool
	// held, if set, holds the first post until it is closed, after
	// closing entered: what is written meanwhile makes the next batch.
	held, entered chan struct{}
	holdOnce      sync.Once
}

func fingerprint(labels map[string]string) string {
	ks := make([]string, 0, len(labels))
	for k := range labels {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var b strings.Builder
	for _, k := range ks {
		fmt.Fprintf(&b, "%s=%q,", k, labels[k])
	}
	return b.String()
}

func (f *fakeAlertmanager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v2/alerts" || r.Method != http.MethodPost {
		http.Error(w, "not found", 404)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "unsupported content type "+ct, 415)
		return
	}
	var posted []struct {
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     time.Time         `json:"startsAt"`
		EndsAt       time.Time         `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
	}
	if err := json.NewDecoder(r.Body).Decode(&posted); err != nil {
		http.Error(w, `"parsing alerts body: `+err.Error()+`"`, 400)
		return
	}
	if f.held != nil {
		f.holdOnce.Do(func() { close(f.entered); <-f.held })
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.posts++
	var refused []string
	for _, a := range posted {
		ok := len(a.Labels) > 0 && !a.StartsAt.IsZero() && !a.EndsAt.Before(a.StartsAt)
		for k := range a.Labels {
			ok = ok && labelName(k)
		}
		for k := range a.Annotations {
			ok = ok && labelName(k)
		}
		if !ok || f.refuse != nil && f.refuse(a.Labels) {
			refused = append(refused, fingerprint(a.Labels))
			continue
		}
		f.alerts[fingerprint(a.Labels)] = map[string]any{"labels": a.Labels, "annotations": a.Annotations,
			"startsAt": a.StartsAt, "endsAt": a.EndsAt, "generatorURL": a.GeneratorURL}
		key := a.Labels["alert_id"]
		if c := a.Annotations["group_count"]; c != "" {
			key += "#" + c
		}
		f.accepted = append(f.accepted, key)
	}
	if len(refused) > 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(400)
		fmt.Fprintf(w, "%q", "invalid alerts: "+strings.Join(refused, "; "))
		return
	}
	w.WriteHeader(200)
}

type alertmanagerReceiver struct {
	*httpReceiver
	f *fakeAlertmanager
}

func (r alertmanagerReceiver) keys() []string {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return slices.Clone(r.f.accepted)
}

func newAlertmanagerReceiver(t *testing.T) alertmanagerReceiver {
	f := &fakeAlertmanager{alerts: map[string]map[string]any{}}
	return alertmanagerReceiver{newHTTPReceiver(t, f), f}
}

func TestAlertmanagerDownThenUp(t *testing.T) {
	r := newAlertmanagerReceiver(t)
	checkDownThenUp(t, OutputConfig{Type: TypeAlertmanager, URL: r.url(), BatchSize: 5}, r)
	// The dedup group's update refreshed one Alertmanager alert.
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	if n := len(r.f.alerts); n != 31 {
		t.Errorf("Alertmanager holds %d alerts, want 31 (30 alerts and one group)", n)
	}
}

// The posted alerts have the documented labels and annotations; a
// refused batch is sent again alert by alert, so only the bad alert is
// given up.
func TestAlertmanagerShapeAndRefusedAlert(t *testing.T) {
	r := newAlertmanagerReceiver(t)
	r.f.refuse = func(l map[string]string) bool { return l["rule"] == "bad-rule" }
	r.f.held, r.f.entered = make(chan struct{}), make(chan struct{})
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeAlertmanager, URL: r.url() + "/api/v2/alerts",
		Labels: map[string]string{"env": "prod"}, ResolveAfter: Duration(30 * time.Minute),
		GeneratorURL: "https://kanon.example.com/alerts"}), t.TempDir())
	defer o.Close()
	a := slackEventAlert()
	bad := testAlert(7)
	bad.Rule.ID = "bad-rule"
	g := groupAlert(3, 5)
	// a alone, then the refused alert and the group in one batch: they are
	// written while a's post is held.
	write := func(xs ...*Alert) {
		for _, x := range xs {
			if err := o.Write(context.Background(), x); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(a)
	<-r.f.entered
	write(bad, g)
	close(r.f.held)
	st := waitStats(t, o, "settled", 10*time.Second, func(st OutputStats) bool { return st.Delivered+st.Failed == 3 })
	if st.Delivered != 2 || st.Failed != 1 || st.Retried != 0 {
		t.Errorf("stats %+v; want 2 delivered, the refused one failed, nothing retried", st)
	}
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	if r.f.posts != 4 {
		t.Errorf("%d posts, want 4 (a alone, the batch of the other two, then each of them)", r.f.posts)
	}
	var got map[string]any
	for _, x := range r.f.alerts {
		if x["labels"].(map[string]string)["alert_id"] == a.ID {
			got = x
		}
	}
	if got == nil {
		t.Fatalf("alert %s not in Alertmanager", a.ID)
	}
	wantLabels := map[string]string{"alertname": "Exec into a pod", "rule": "k8s-pod-exec", "severity": "critical",
		"cluster": "prod-eu", "alert_id": a.ID, "env": "prod"}
	if l := got["labels"].(map[string]string); fmt.Sprint(l) != fmt.Sprint(wantLabels) {
		t.Errorf("labels %v, want %v", l, wantLabels)
	}
	ann := got["annotations"].(map[string]string)
	if ann["summary"] != a.Title || ann["runbook_url"] != a.Rule.Runbook || ann["username"] != "alice@example.com" ||
		ann["source_ips"] != "10.0.0.7, 192.168.1.20" || ann["risk_score"] != "73" {
		t.Errorf("annotations %v", ann)
	}
	if s := got["startsAt"].(time.Time); !s.Equal(a.Timestamp) {
		t.Errorf("startsAt %v, want the alert's time %v", s, a.Timestamp)
	}
	if e := got["endsAt"].(time.Time); e.Before(time.Now().Add(29*time.Minute)) || e.After(time.Now().Add(31*time.Minute)) {
		t.Errorf("endsAt %v, want about 30m from now", e)
	}
	if got["generatorURL"] != "https://kanon.example.com/alerts" {
		t.Errorf("generatorURL %v", got["generatorURL"])
	}
}

// endsAt is ResolveAfter past now, and never before startsAt.
func TestAlertmanagerEndsAt(t *testing.T) {
	now := time.Date(2026, 3, 1, 13, 0, 0, 0, time.UTC)
	a := testAlert(1)
	f := func(ts time.Time, resolve time.Duration, wantEnd time.Time) {
		t.Helper()
		a.Timestamp = ts
		b, err := AlertmanagerAlert(a, AlertmanagerOptions{ResolveAfter: resolve, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		var pa struct{ StartsAt, EndsAt time.Time }
		if err := json.Unmarshal(b, &pa); err != nil {
			t.Fatal(err)
		}
		if !pa.StartsAt.Equal(ts) || !pa.EndsAt.Equal(wantEnd) {
			t.Errorf("startsAt %v endsAt %v, want %v and %v", pa.StartsAt, pa.EndsAt, ts, wantEnd)
		}
	}
	f(now.Add(-time.Hour), 0, now.Add(DefaultResolveAfter))
	f(now.Add(-time.Hour), 5*time.Minute, now.Add(5*time.Minute))
	f(now.Add(time.Hour), 5*time.Minute, now.Add(time.Hour+5*time.Minute))
}

// fakeLoki implements POST /loki/api/v1/push with the JSON body Loki
// documents: {"streams": [{"stream": {label: value}, "values": [["<unix
// epoch in nanoseconds>", "<log line>"]]}]}, 204 on success, 400 for a
// bad body (labels or timestamps). Like Loki, it stores an entry once:
// one with the stream, timestamp and line of a stored entry is dropped.
type fakeLoki struct {
	mu       sync.Mutex
	entries  map[string][][2]string // stream fingerprint → entries
	streams  map[string]map[string]string
	accepted []string
	dups     int
}

func (f *fakeLoki) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/loki/api/v1/push" || r.Method != http.MethodPost {
		http.Error(w, "404 page not found", 404)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "unsupported Content-Type "+ct, 415)
		return
	}
	var body struct {
		Streams []struct {
			Stream map[string]string `json:"stream"`
			Values [][]string        `json:"values"`
		} `json:"streams"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, "loghttp.PushRequest: "+err.Error(), 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range body.Streams {
		if len(s.Stream) == 0 {
			http.Error(w, "error at least one label pair is required per stream", 400)
			return
		}
		for k := range s.Stream {
			if !labelName(k) {
				http.Error(w, "invalid label name "+k, 400)
				return
			}
		}
		fp := fingerprint(s.Stream)
		f.streams[fp] = s.Stream
		for _, v := range s.Values {
			if len(v) != 2 {
				http.Error(w, "an entry is a timestamp and a line", 400)
				return
			}
			if _, err := strconv.ParseInt(v[0], 10, 64); err != nil {
				http.Error(w, "timestamp is not nanoseconds: "+v[0], 400)
				return
			}
			e := [2]string{v[0], v[1]}
			if slices.Contains(f.entries[fp], e) {
				f.dups++
				continue
			}
			f.entries[fp] = append(f.entries[fp], e)
			k, _ := LineDeliveryKey([]byte(v[1]))
			f.accepted = append(f.accepted, k)
		}
	}
	w.WriteHeader(204)
}

type lokiReceiver struct {
	*httpReceiver
	f *fakeLoki
}

func (r lokiReceiver) keys() []string {
	r.f.mu.Lock()
	defer r.f.mu.Unlock()
	return slices.Clone(r.f.accepted)
}

func newLokiReceiver(t *testing.T) lokiReceiver {
	f := &fakeLoki{entries: map[string][][2]string{}, streams: map[string]map[string]string{}}
	return lokiReceiver{newHTTPReceiver(t, f), f}
}

func TestLokiDownThenUp(t *testing.T) {
	r := newLokiReceiver(t)
	oc, err := ParseOutputFlag("loki:" + r.url())
	if err != nil {
		t.Fatal(err)
	}
	checkDownThenUp(t, oc, r)
}

// Streams are labelled by job, rule, severity, cluster and the extra
// labels; entries carry the alert's time in nanoseconds and the alert as
// JSON; the tenant header comes from the environment.
func TestLokiPushShape(t *testing.T) {
	var tenant string
	f := &fakeLoki{entries: map[string][][2]string{}, streams: map[string]map[string]string{}}
	r := newHTTPReceiver(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tenant = req.Header.Get("X-Scope-OrgID")
		f.ServeHTTP(w, req)
	}))
	t.Setenv("KANON_TEST_TENANT", "soc")
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeLoki, URL: r.url(), Labels: map[string]string{"env": "prod"},
		Headers: map[string]string{"X-Scope-OrgID": "env:KANON_TEST_TENANT"}}), t.TempDir())
	a := slackEventAlert()
	if err := o.Write(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	waitKeys(t, lokiReceiver{r, f}, 1, 10*time.Second)
	o.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if tenant != "soc" {
		t.Errorf("X-Scope-OrgID %q", tenant)
	}
	want := map[string]string{"job": "kanon", "rule": "k8s-pod-exec", "severity": "critical", "cluster": "prod-eu", "env": "prod"}
	es := f.entries[fingerprint(want)]
	if len(es) != 1 {
		t.Fatalf("streams %v; want one entry in %v", f.streams, want)
	}
	if es[0][0] != strconv.FormatInt(a.Timestamp.UnixNano(), 10) {
		t.Errorf("timestamp %s", es[0][0])
	}
	var got Alert
	if err := json.Unmarshal([]byte(es[0][1]), &got); err != nil || got.ID != a.ID {
		t.Errorf("line %s: %v", es[0][1], err)
	}
}
