package esqleval

import "testing"

var sinkRows []Row

// BenchmarkSeedPrefix measures seed 004's per-event prefix (WHERE, three
// EVALs with CASE) per event. SetBytes counts the request URI bytes, a
// rough size of the material the prefix reads.
func BenchmarkSeedPrefix(b *testing.B) {
	p := seedProgram(b)
	events := seedEvents(b, p, 64)
	ev := p.NewEvaluator(Env{})
	b.SetBytes(int64(len(events[0].RequestURI)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rows, err := ev.Eval(events[i%len(events)])
		if err != nil {
			b.Fatal(err)
		}
		sinkRows = rows
	}
}

// BenchmarkSeedAggregate measures seed 004's per-event prefix plus the
// aggregation of its row into the STATS groups (one group: a burst from
// one source), per event.
func BenchmarkSeedAggregate(b *testing.B) {
	p := seedProgram(b)
	events := seedEvents(b, p, 64)
	ev := p.NewEvaluator(Env{})
	s := p.NewState()
	b.SetBytes(int64(len(events[0].RequestURI)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.AddEvent(ev, events[i%len(events)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSeedExportMerge measures exporting a window's state, importing
// it and merging it into another (what replicas sharing state do).
func BenchmarkSeedExportMerge(b *testing.B) {
	p := seedProgram(b)
	ev := p.NewEvaluator(Env{})
	s := p.NewState()
	for _, e := range seedEvents(b, p, 64) {
		if err := s.AddEvent(ev, e); err != nil {
			b.Fatal(err)
		}
	}
	exported := s.Export()
	b.SetBytes(int64(len(exported)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		o := p.NewState()
		if err := o.Import(exported); err != nil {
			b.Fatal(err)
		}
		if err := o.Merge(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLike measures WHERE ... LIKE per event for each kind of compiled
// pattern (exact, prefix, suffix, contains, general with "?").
func BenchmarkLike(b *testing.B) {
	for _, c := range []struct{ name, pattern string }{
		{"exact", `/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef`},
		{"prefix", `/api/v1/namespaces/*`},
		{"suffix", `*/bootstrap-token-abcdef`},
		{"contains", `*secrets*`},
		{"general_star", `/api/*/secrets/*-token-*`},
		{"general_question", `/api/v?/namespaces/*`},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := mustProgram(b, `from x | where kubernetes.audit.requestURI like "`+c.pattern+`"`)
			e := uriEvent(b, p, "/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef", "get")
			ev := p.NewEvaluator(Env{})
			b.SetBytes(int64(len(e.RequestURI)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rows, err := ev.Eval(e)
				if err != nil || len(rows) != 1 {
					b.Fatalf("rows %d, err %v", len(rows), err)
				}
				sinkRows = rows
			}
		})
	}
}
