package run_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
)

// scanReport runs data through a driver with n decoding goroutines and
// returns its alerts as JSON lines, in the order raised, and its reports
// (bad records, warnings, the error that ended the input), in the order
// reported.
func scanReport(t *testing.T, data []byte, decoders int) (alerts, reports string, st run.Stats) {
	return scanReportWith(t, data, decoders, false, nil)
}

func scanReportWith(t *testing.T, data []byte, decoders int, noPrefilter bool, rs []*rule.Compiled) (alerts, reports string, st run.Stats) {
	t.Helper()
	return scanVariant(t, data, variant{decoders: decoders, noPrefilter: noPrefilter}, rs)
}

// variant is a set of the driver's optimisations: decoding goroutines,
// the prefilter off, and the record size limit (0: the default).
type variant struct {
	decoders    int
	noPrefilter bool
	maxRecord   int
}

func scanVariant(t testing.TB, data []byte, v variant, rs []*rule.Compiled) (alerts, reports string, st run.Stats) {
	t.Helper()
	var rep strings.Builder
	pol := run.BatchPolicy()
	pol.Windows = engine.WindowsInMemory
	col := &alert.Collector{}
	if rs == nil {
		rs = builtinRules(t)
	}
	d, err := run.New(run.Config{Rules: rs, Registry: formats.Registry(), Sink: col, Policy: pol, Decoders: v.decoders, NoPrefilter: v.noPrefilter,
		Dedup: run.DefaultDedup, MaxRecordBytes: v.maxRecord,
		OnBad:  func(_ string, b ingest.BadRecord) { fmt.Fprintf(&rep, "bad %v\n", b) },
		OnWarn: func(_ string, b ingest.BadRecord) { fmt.Fprintf(&rep, "warn %v\n", b) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Run(ctx, &run.Files{Paths: []string{"-"}, Stdin: bytes.NewReader(data), BlockBytes: 8192, MaxRecordBytes: v.maxRecord}); err != nil {
		// An input the driver refuses (UTF-16 text) is refused alike
		// with every optimisation: the error is part of the reports.
		fmt.Fprintf(&rep, "error %v\n", err)
	}
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, a := range col.Alerts {
		j, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String(), rep.String(), d.Stats()
}

// Decoding on other goroutines, and the prefilter, change nothing: the same alerts, byte for
// byte and in the same order, the same bad records and warnings in the
// same order, the same counts — over the bundled log, a generated log with
// anonymous bursts, one where every event is anonymous (full alert groups
// joined at every event), and a log with bad records, repeated keys, escapes and
// repeated deliveries.
func TestDecodersChangeNothing(t *testing.T) {
	var gen bytes.Buffer
	opts := loadgen.DefaultOptions(6000, 3)
	opts.AnonymousRatio = 0.2
	if _, err := loadgen.Generate(&gen, opts); err != nil {
		t.Fatal(err)
	}
	var anon bytes.Buffer
	opts = loadgen.DefaultOptions(5000, 4)
	opts.AnonymousRatio, opts.BodyRatio = 1, 0
	if _, err := loadgen.Generate(&anon, opts); err != nil {
		t.Fatal(err)
	}
	ex := exampleLog(t)
	lines := bytes.Split(bytes.TrimSpace(ex), []byte("\n"))
	var mixed bytes.Buffer
	for i, l := range lines {
		switch i % 7 {
		case 1:
			mixed.WriteString("not json\n")
		case 2:
			l = bytes.Replace(l, []byte(`"user":{`), []byte(`"user":{"username":"alice",`), 1)
		case 3:
			l = bytes.Replace(l, []byte(`"userAgent":"`), []byte(`"userAgent":"\u0063url\t`), 1)
		case 4:
			mixed.Write(lines[i-1])
			mixed.WriteByte('\n')
		}
		mixed.Write(l)
		mixed.WriteByte('\n')
	}
	for name, data := range map[string][]byte{"bundled": ex, "generated": gen.Bytes(), "anonymous": anon.Bytes(), "mixed": mixed.Bytes()} {
		if a, _ := requireSameWithEveryOptimisation(t, name, data, 0, nil); a == "" {
			t.Fatalf("%s: no alert", name)
		}
	}
}

// optimised are the variants compared with decoding everything in the
// driver's goroutine without the prefilter.
var optimised = []variant{{0, false, 0}, {1, true, 0}, {1, false, 0}, {2, false, 0}, {4, false, 0}, {2, true, 0}}

// requireSameWithEveryOptimisation scans data without any optimisation
// (no prefilter, decoded in the driver's goroutine) and with each of
// optimised, all with the record size limit maxRecord, and fails unless
// every scan raises the same alerts, byte for byte and in the same order,
// reports the same bad records and warnings (input, line, offset,
// message) in the same order, and counts the same. It returns the
// unoptimised scan's alerts and reports.
func requireSameWithEveryOptimisation(t testing.TB, name string, data []byte, maxRecord int, rs []*rule.Compiled) (alerts, reports string) {
	t.Helper()
	a0, r0, s0 := scanVariant(t, data, variant{noPrefilter: true, maxRecord: maxRecord}, rs)
	for _, v := range optimised {
		v.maxRecord = maxRecord
		a, r, s := scanVariant(t, data, v, rs)
		if a != a0 || r != r0 {
			if r != r0 {
				t.Logf("reports:\n%s\nwant:\n%s", r, r0)
			} else {
				al, bl := strings.Split(a, "\n"), strings.Split(a0, "\n")
				for i := range min(len(al), len(bl)) {
					if al[i] != bl[i] {
						t.Logf("alert %d:\n%s\nwant\n%s", i, al[i], bl[i])
						break
					}
				}
				t.Logf("%d alerts, want %d", len(al)-1, len(bl)-1)
			}
			t.Fatalf("%s with %d decoders (prefilter %v): alerts or reports differ from decoding everything in the driver's goroutine", name, v.decoders, !v.noPrefilter)
		}
		if statsText(s) != statsText(s0) {
			t.Fatalf("%s with %d decoders (prefilter %v): stats %s, want %s", name, v.decoders, !v.noPrefilter, statsText(s), statsText(s0))
		}
	}
	return a0, r0
}

// statsText prints stats with the engine's counts by value.
func statsText(s run.Stats) string {
	var b strings.Builder
	es := s.Engine
	s.Engine = engine.Stats{}
	fmt.Fprintf(&b, "%+v events %d swept %d", s, es.Events, es.Swept)
	for _, id := range []string{"Kubernetes.API.AnonymousAccess", "elastic-k8s-anonymous-endpoint-permission-enumeration",
		"elastic-k8s-anonymous-request-authorized", "elastic-k8s-anonymous-request-authorized-unusual-user-agent"} {
		if r := es.Rules[id]; r != nil {
			fmt.Fprintf(&b, " %s %+v", id, *r)
		}
	}
	return b.String()
}
