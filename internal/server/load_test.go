package server

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/server/servertest"
	"github.com/kanon-dev/kanon/internal/state/bolt"
)

var (
	loadDuration = flag.Duration("loadtest.duration", 10*time.Second, "how long BenchmarkWebhookLoad sustains load")
	loadBatch    = flag.Int("loadtest.batch", 400, "events per webhook request (kube-apiserver's default batch size is 400)")
	loadSenders  = flag.Int("loadtest.senders", 16, "concurrent webhook clients")
	loadEvents   = flag.Int("loadtest.events", 60000, "distinct generated events sent over and over (each round shifted in time)")
)

// roundBody is a generated EventList with the places that make each round
// of sends distinct: the first four hex digits of every auditID and the
// year of every timestamp of the generated day.
type roundBody struct {
	data   []byte
	ids    []int // offsets of auditID values
	years  []int // offsets of "2024-05-06T"
	events int
}

func prepareBodies(t testing.TB, events, batch int) []roundBody {
	t.Helper()
	bodies, _, err := loadgen.GenerateEventList(loadgen.DefaultOptions(events, 1), batch)
	if err != nil {
		t.Fatal(err)
	}
	day := []byte(loadgen.DefaultStart.Format("2006-01-02T"))
	idKey := []byte(`"auditID":"`)
	out := make([]roundBody, len(bodies))
	for i, b := range bodies {
		rb := roundBody{data: b}
		for at := 0; ; {
			j := bytes.Index(b[at:], idKey)
			if j < 0 {
				break
			}
			rb.ids = append(rb.ids, at+j+len(idKey))
			rb.events++
			at += j + len(idKey)
		}
		for at := 0; ; {
			j := bytes.Index(b[at:], day)
			if j < 0 {
				break
			}
			rb.years = append(rb.years, at+j)
			at += j + len(day)
		}
		out[i] = rb
	}
	return out
}

// patch copies the body into dst for round r.
func (rb *roundBody) patch(dst []byte, r int) []byte {
	dst = append(dst[:0], rb.data...)
	id := fmt.Appendf(nil, "%04x", r&0xffff)
	year := fmt.Appendf(nil, "%04d", loadgen.DefaultStart.Year()+r)
	for _, o := range rb.ids {
		copy(dst[o:], id)
	}
	for _, o := range rb.years {
		copy(dst[o:], year)
	}
	return dst
}

// loadResult is what a load run measured.
type loadResult struct {
	rate                               float64 // acknowledged events per second
	elapsed                            time.Duration
	acked, requests                    int64
	retries                            int64
	alertP50, alertP99, reqP50, reqP99 time.Duration
	alerts                             int
}

// pantherRule is the rule whose groups count every matching event: the
// load run checks that none is lost or counted twice.
const pantherRule = "Kubernetes.API.AnonymousAccess"

// runLoad sustains webhook traffic on 127.0.0.1 for duration — TLS with
// client certificates, generated EventLists of realistic audit events,
// the built-in rules, a bbolt state store and a file output, both synced
// at every commit — and checks what must hold whatever the speed: every
// event sent is acknowledged and evaluated exactly once; no alert is
// written twice; every event that Panther's rule matches is counted once
// in its groups (the rule has no per-run cap). It asserts no speed.
func runLoad(tb testing.TB, duration time.Duration) loadResult {
	tb.Helper()
	if duration > 2*time.Minute {
		tb.Fatalf("-loadtest.duration %s is over the bound of 2m", duration)
	}
	genStart := time.Now()
	bodies := prepareBodies(tb, *loadEvents, *loadBatch)
	matches := pantherMatches(tb, bodies)
	tb.Logf("generated %d events in %d bodies in %s", *loadEvents, len(bodies), time.Since(genStart).Round(time.Millisecond))

	dir := tb.TempDir()
	pki := servertest.WritePKI(tb, dir)
	store, err := bolt.Open(dir+"/state", bolt.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer store.Close()
	alertsPath := dir + "/alerts.ndjson"
	outs, err := alert.NewOutputs([]alert.OutputConfig{{Type: alert.TypeFile, Path: alertsPath, QueueSize: 65536}}, alert.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer outs.Close()
	var latMu sync.Mutex
	var lat []time.Duration
	quiet := slog.New(slog.DiscardHandler)
	d, err := run.New(run.Config{Rules: builtinRules(tb), Store: store, Sink: outs, Registry: formats.Registry(),
		Policy: run.LivePolicy(run.DefaultLiveLateness), Dedup: run.DefaultDedup, GroupUpdates: true, Logger: quiet,
		OnAlert: func(_ *alert.Alert, d time.Duration) {
			latMu.Lock()
			lat = append(lat, d)
			latMu.Unlock()
		}})
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(Config{Driver: d, Logger: quiet, MaxInFlight: 64, MaxInFlightPerClient: 64})
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := LoadCertificate(TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile})
	if err != nil {
		tb.Fatal(err)
	}
	tc, _ := cert.TLSConfig()
	addr, err := s.Listen("127.0.0.1:0", tc)
	if err != nil {
		tb.Fatal(err)
	}
	url := "https://" + addr.String() + "/audit/load"
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: pki.ClientTLS("client"),
		MaxIdleConnsPerHost: *loadSenders, ForceAttemptHTTP2: false}}

	var next, sentEvents, ackedEvents, ackedMatches, retries atomic.Int64
	var reqMu sync.Mutex
	var reqLat []time.Duration
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, *loadSenders)
	start := time.Now()
	for range *loadSenders {
		wg.Go(func() {
			var buf []byte
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				rb := &bodies[k%len(bodies)]
				buf = rb.patch(buf, k/len(bodies))
				sentEvents.Add(int64(rb.events))
				for {
					t0 := time.Now()
					req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(buf))
					req.Header.Set("Content-Type", "application/json")
					resp, err := client.Do(req)
					if err != nil {
						errs <- err
						return
					}
					io.Copy(io.Discard, resp.Body) // so the connection is reused
					resp.Body.Close()
					if resp.StatusCode == 429 || resp.StatusCode == 503 {
						retries.Add(1)
						time.Sleep(10 * time.Millisecond)
						continue // kube-apiserver retries too
					}
					if resp.StatusCode != 200 {
						errs <- fmt.Errorf("status %d", resp.StatusCode)
						return
					}
					reqMu.Lock()
					reqLat = append(reqLat, time.Since(t0))
					reqMu.Unlock()
					ackedEvents.Add(int64(rb.events))
					ackedMatches.Add(matches[k%len(bodies)])
					break
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	s.Shutdown(sctx)
	if err := d.Close(sctx); err != nil {
		tb.Fatal(err)
	}
	if err := outs.Shutdown(sctx); err != nil {
		tb.Fatal(err)
	}

	evaluated := counterSum(tb, d, "kanon_events_evaluated_total")
	if int64(evaluated) != ackedEvents.Load() || sentEvents.Load() != ackedEvents.Load() {
		tb.Fatalf("sent %d events, acknowledged %d, evaluated %d", sentEvents.Load(), ackedEvents.Load(), int64(evaluated))
	}
	if len(lat) == 0 {
		tb.Fatal("no alert raised")
	}
	checkAlertsFile(tb, alertsPath, ackedMatches.Load(), d.Stats().Engine.Rules[pantherRule].Matched)
	slices.Sort(lat)
	slices.Sort(reqLat)
	q := func(d []time.Duration, f float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(f*float64(len(d))))]
	}
	res := loadResult{rate: float64(ackedEvents.Load()) / elapsed.Seconds(), elapsed: elapsed, acked: ackedEvents.Load(),
		requests: int64(len(reqLat)), retries: retries.Load(), alerts: len(lat),
		alertP50: q(lat, 0.50), alertP99: q(lat, 0.99), reqP50: q(reqLat, 0.50), reqP99: q(reqLat, 0.99)}
	tb.Logf("sustained %.0f events/s for %s: %d events in %d requests of %d (%d senders, %d retried on 429/503)",
		res.rate, elapsed.Round(time.Millisecond), res.acked, res.requests, *loadBatch, *loadSenders, res.retries)
	tb.Logf("receipt to alert handed to the outputs: p50 %s, p99 %s over %d alerts; request to acknowledgement: p50 %s, p99 %s",
		res.alertP50, res.alertP99, res.alerts, res.reqP50, res.reqP99)
	return res
}

// pantherMatches counts, per body, the events Panther's rule matches, by
// running each body once through a driver of its own.
func pantherMatches(tb testing.TB, bodies []roundBody) []int64 {
	tb.Helper()
	var rs []*rule.Compiled
	for _, r := range builtinRules(tb) {
		if r.ID == pantherRule {
			rs = append(rs, r)
		}
	}
	out := make([]int64, len(bodies))
	for i := range bodies {
		d, err := run.New(run.Config{Rules: rs, Registry: formats.Registry(), Sink: &alert.Collector{}, Policy: run.TestPolicy()})
		if err != nil {
			tb.Fatal(err)
		}
		rec := ingest.Record{Origin: event.Origin{Name: "body"}, Data: bodies[i].data}
		ctx := context.Background()
		if _, err := d.SubmitWait(ctx, &run.Batch{Input: "webhook", Records: []ingest.Record{rec}}, true); err != nil {
			tb.Fatal(err)
		}
		if err := d.Close(ctx); err != nil {
			tb.Fatal(err)
		}
		out[i] = d.Stats().Engine.Rules[pantherRule].Matched
	}
	return out
}

// checkAlertsFile checks that the alerts file holds no delivery twice and
// that the final counts of Panther's groups add up to the events it
// matched among those acknowledged.
func checkAlertsFile(tb testing.TB, path string, wantMatches, matched int64) {
	tb.Helper()
	if matched != wantMatches {
		tb.Fatalf("Panther's rule matched %d events; the acknowledged bodies hold %d it matches", matched, wantMatches)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	seen := map[string]bool{}
	counts := map[string]int64{}
	for i, line := range bytes.Split(bytes.TrimSpace(data), []byte{'\n'}) {
		var a alert.Alert
		if err := json.Unmarshal(line, &a); err != nil {
			tb.Fatalf("%s:%d: %v", path, i+1, err)
		}
		if seen[a.DeliveryKey()] {
			tb.Fatalf("%s:%d: alert %s delivered twice", path, i+1, a.DeliveryKey())
		}
		seen[a.DeliveryKey()] = true
		if a.Rule.ID == pantherRule {
			n := int64(1)
			if a.Group != nil {
				n = a.Group.Count
			}
			counts[a.ID] = max(counts[a.ID], n)
		}
	}
	var sum int64
	for _, n := range counts {
		sum += n
	}
	if sum != wantMatches {
		tb.Fatalf("Panther's groups count %d events in %d groups; it matched %d", sum, len(counts), wantMatches)
	}
}

// TestLoad runs the load for a few seconds inside go test ./..., for its
// assertions; BenchmarkWebhookLoad is the measurement.
func TestLoad(t *testing.T) {
	runLoad(t, 3*time.Second)
}

// BenchmarkWebhookLoad measures the webhook under load for
// -loadtest.duration (one run whatever -benchtime says) and reports
// events/s and the p50 and p99 time from a request's receipt to each of
// its alerts being handed to the outputs. Run it alone:
//
//	go test -run XXX -bench WebhookLoad -benchtime 1x ./internal/server -loadtest.duration=60s
func BenchmarkWebhookLoad(b *testing.B) {
	var res loadResult
	for b.Loop() {
		res = runLoad(b, *loadDuration)
	}
	b.ReportMetric(res.rate, "events/s")
	b.ReportMetric(float64(res.alertP50.Microseconds())/1000, "p50-alert-ms")
	b.ReportMetric(float64(res.alertP99.Microseconds())/1000, "p99-alert-ms")
	b.ReportMetric(float64(res.reqP99.Microseconds())/1000, "p99-ack-ms")
}

// counterSum adds the values of a counter over its labels.
func counterSum(tb testing.TB, d *run.Driver, name string) float64 {
	tb.Helper()
	mfs, err := d.Metrics().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
