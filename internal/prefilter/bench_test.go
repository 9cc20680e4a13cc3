package prefilter_test

import (
	"testing"

	"github.com/kanon-dev/kanon/internal/loadgen"
	"github.com/kanon-dev/kanon/internal/prefilter"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/rules"
)

// BenchmarkCandidate is the prefilter stage: the built-in pack's
// prefilter tested on events already decoded with its fields, over a
// realistic generated log (~2 % anonymous: most events ruled out) and
// one where every event is anonymous (every event passes). SetBytes
// counts the records' bytes.
func BenchmarkCandidate(b *testing.B) {
	rs, err := rule.Load(rules.FS, ".")
	if err != nil {
		b.Fatal(err)
	}
	p := prefilter.New(rs)
	if p == nil {
		b.Fatal("no prefilter for the built-in pack")
	}
	logs, err := loadgen.StageLogs(20_000)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range logs {
		b.Run(c.Name, func(b *testing.B) {
			evs := readAll(b, c.Log, p.Fields)
			chk := p.NewChecker()
			b.SetBytes(int64(len(c.Log)))
			b.ReportAllocs()
			pass := 0
			for b.Loop() {
				pass = 0
				for _, e := range evs {
					if chk.Candidate(e) {
						pass++
					}
				}
			}
			b.ReportMetric(float64(len(evs))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(pass)/float64(len(evs)), "passed")
		})
	}
}
