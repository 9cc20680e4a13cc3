package server

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/server/servertest"
	"github.com/kanon-dev/kanon/internal/state/bolt"
)

var (
	loadDuration = flag.Duration("loadtest.duration", 10*time.Second, "how long TestLoad sustains load (60s for the full minute)")
	loadBatch    = flag.Int("loadtest.batch", 400, "events per webhook request in TestLoad (kube-apiserver's default batch size is 400)")
	loadSenders  = flag.Int("loadtest.senders", 16, "concurrent webhook clients in TestLoad")
	loadEvents   = flag.Int("loadtest.events", 60000, "distinct generated events TestLoad sends over and over (each round shifted in time)")
	// The default floor is for go test ./..., where TestLoad shares the
	// machine with every other package's tests; .ci/run also runs it alone
	// for a minute with -loadtest.min-rate=100000.
	loadMinRate = flag.Float64("loadtest.min-rate", 25000, "events per second TestLoad must sustain")
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

func prepareBodies(t *testing.T, events, batch int) []roundBody {
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

// TestLoad sustains webhook traffic on 127.0.0.1 — TLS with client
// certificates, generated EventLists of realistic audit events, the
// built-in rules, a bbolt state store and a file output, both synced at
// every commit — and checks that every event sent is acknowledged and
// evaluated at no less than -loadtest.min-rate events per second. It
// reports the rate and the time from the receipt of a request to each of
// its alerts being handed to the outputs. It runs for -loadtest.duration
// (10s by default; -loadtest.duration=60s for the full minute).
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	if *loadDuration > 2*time.Minute {
		t.Fatalf("-loadtest.duration %s is over the bound of 2m", *loadDuration)
	}
	genStart := time.Now()
	bodies := prepareBodies(t, *loadEvents, *loadBatch)
	t.Logf("generated %d events in %d bodies in %s", *loadEvents, len(bodies), time.Since(genStart).Round(time.Millisecond))

	dir := t.TempDir()
	pki := servertest.WritePKI(t, dir)
	store, err := bolt.Open(dir+"/state", bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	outs, err := alert.NewOutputs([]alert.OutputConfig{{Type: alert.TypeFile, Path: dir + "/alerts.ndjson", QueueSize: 65536}}, alert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer outs.Close()
	var latMu sync.Mutex
	var lat []time.Duration
	quiet := slog.New(slog.DiscardHandler)
	p, err := NewPipeline(PipelineConfig{Rules: builtinRules(t), Store: store, Sink: outs, Registry: formats.Registry(),
		GroupUpdates: true, Logger: quiet, QueueSize: 64,
		OnAlert: func(_ *alert.Alert, d time.Duration) {
			latMu.Lock()
			lat = append(lat, d)
			latMu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Pipeline: p, Logger: quiet, MaxInFlight: 64})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := LoadCertificate(TLSFiles{CertFile: pki.ServerCert, KeyFile: pki.ServerKey, ClientCAFile: pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	tc, _ := cert.TLSConfig()
	addr, err := s.Listen("127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + addr.String() + "/audit/load"
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: pki.ClientTLS("client"),
		MaxIdleConnsPerHost: *loadSenders, ForceAttemptHTTP2: false}}

	var next, sentEvents, ackedEvents, retries atomic.Int64
	var reqMu sync.Mutex
	var reqLat []time.Duration
	ctx, cancel := context.WithTimeout(context.Background(), *loadDuration)
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
					break
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	s.Shutdown(sctx)
	if err := p.Close(sctx); err != nil {
		t.Fatal(err)
	}

	evaluated := counterSum(t, p, "kanon_events_evaluated_total")
	rate := float64(ackedEvents.Load()) / elapsed.Seconds()
	slices.Sort(lat)
	slices.Sort(reqLat)
	q := func(d []time.Duration, f float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(f*float64(len(d))))]
	}
	t.Logf("sustained %.0f events/s for %s: %d events in %d requests of %d (%d senders, %d retried on 429/503); evaluated %d",
		rate, elapsed.Round(time.Millisecond), ackedEvents.Load(), len(reqLat), *loadBatch, *loadSenders, retries.Load(), int64(evaluated))
	t.Logf("receipt to alert handed to the outputs: p50 %s, p99 %s over %d alerts; request to acknowledgement: p50 %s, p99 %s",
		q(lat, 0.50), q(lat, 0.99), len(lat), q(reqLat, 0.50), q(reqLat, 0.99))
	if int64(evaluated) != ackedEvents.Load() || sentEvents.Load() != ackedEvents.Load() {
		t.Fatalf("sent %d events, acknowledged %d, evaluated %d", sentEvents.Load(), ackedEvents.Load(), int64(evaluated))
	}
	if len(lat) == 0 {
		t.Fatal("no alert raised")
	}
	if rate < *loadMinRate {
		t.Fatalf("sustained %.0f events/s, want at least %.0f", rate, *loadMinRate)
	}
}

// counterSum adds the values of a counter over its labels.
func counterSum(t *testing.T, p *Pipeline, name string) float64 {
	t.Helper()
	mfs, err := p.MetricsRegistry().Gather()
	if err != nil {
		t.Fatal(err)
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
