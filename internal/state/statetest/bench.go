package statetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
)

// benchKeys is how many distinct keys the benchmarks cycle through.
const benchKeys = 10000

// FootprintTerms is how many terms the TermsFootprint benchmark stores.
const FootprintTerms = 100000

// benchTerm returns a realistic new-terms term: a service account name.
func benchTerm(i int) []byte {
	return fmt.Appendf(nil, "system:serviceaccount:namespace-%d:workload-%d", i%97, i)
}

// Bench runs the same benchmarks against stores made by newStore, each one
// new and empty:
//
//   - UpdatePut: an Update with one Put of a 100-byte value;
//   - GetHit and GetMiss: Get of a stored and of a missing key;
//   - TermsSeen: Terms.Seen of a known term (the per-event lookup);
//   - TermsLearn: Terms.Observe of a new term (a lookup, then an Update);
//   - TermsFootprint: stores FootprintTerms terms in batches of 1000 and
//     reports B/term, the store's logical bytes per term, and, for durable
//     stores, disk-B/term, the disk space per term.
func Bench(b *testing.B, newStore func(b *testing.B) state.Store) {
	b.Run("UpdatePut", func(b *testing.B) {
		s := newStore(b)
		defer s.Close()
		keys := make([][]byte, benchKeys)
		for i := range keys {
			keys[i] = state.Key(state.NSGroups, "bench", fmt.Appendf(nil, "key-%d", i))
		}
		val := make([]byte, 100)
		exp := t0.Add(time.Hour)
		b.ReportAllocs()
		b.SetBytes(int64(len(val)))
		i := 0
		for b.Loop() {
			key := keys[i%len(keys)]
			i++
			if err := s.Update(ctx, t0, func(tx state.Tx) error { return tx.Put(key, val, exp) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	getBench := func(b *testing.B, hit bool) {
		s := newStore(b)
		defer s.Close()
		keys := make([][]byte, benchKeys)
		for i := range keys {
			keys[i] = state.Key(state.NSGroups, "bench", fmt.Appendf(nil, "key-%d", i))
		}
		fill(b, s, keys)
		if !hit {
			for i := range keys {
				keys[i] = state.Key(state.NSGroups, "bench", fmt.Appendf(nil, "missing-%d", i))
			}
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, err := s.Get(ctx, keys[i%len(keys)], t0)
			i++
			if hit && err != nil || !hit && err == nil {
				b.Fatalf("get: %v", err)
			}
		}
	}
	b.Run("GetHit", func(b *testing.B) { getBench(b, true) })
	b.Run("GetMiss", func(b *testing.B) { getBench(b, false) })
	b.Run("TermsSeen", func(b *testing.B) {
		s := newStore(b)
		defer s.Close()
		terms := newBenchTerms(b, s)
		known := make([][]byte, benchKeys)
		for i := range known {
			known[i] = benchTerm(i)
		}
		learn(b, s, terms, known)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, ok, err := terms.Seen(ctx, known[i%len(known)], t0.Add(time.Minute))
			i++
			if err != nil || !ok {
				b.Fatalf("seen = %t, %v", ok, err)
			}
		}
	})
	b.Run("TermsLearn", func(b *testing.B) {
		s := newStore(b)
		defer s.Close()
		terms := newBenchTerms(b, s)
		b.ReportAllocs()
		i := 0
		var term []byte
		for b.Loop() {
			term = fmt.Appendf(term[:0], "system:serviceaccount:namespace-%d:workload-%d", i%97, i)
			i++
			_, isNew, err := terms.Observe(ctx, term, t0)
			if err != nil || !isNew {
				b.Fatalf("observe = %t, %v", isNew, err)
			}
		}
	})
	b.Run("TermsFootprint", func(b *testing.B) {
		all := make([][]byte, FootprintTerms)
		for i := range all {
			all[i] = benchTerm(i)
		}
		var st state.Stats
		for b.Loop() {
			s := newStore(b)
			learn(b, s, newBenchTerms(b, s), all)
			var err error
			if st, err = s.Stats(ctx); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
		b.ReportMetric(float64(st.Bytes)/FootprintTerms, "B/term")
		if st.DiskBytes > 0 {
			b.ReportMetric(float64(st.DiskBytes)/FootprintTerms, "disk-B/term")
		}
	})
}

func newBenchTerms(b *testing.B, s state.Store) *state.Terms {
	terms, err := state.NewTerms(s, state.TermsConfig{Rule: "bench-new-terms", Window: 7 * 24 * time.Hour, Slack: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	return terms
}

// fill stores keys with 100-byte values in batches.
func fill(b *testing.B, s state.Store, keys [][]byte) {
	val := make([]byte, 100)
	for lo := 0; lo < len(keys); lo += 1000 {
		err := s.Update(ctx, t0, func(tx state.Tx) error {
			for _, k := range keys[lo:min(lo+1000, len(keys))] {
				if err := tx.Put(k, val, time.Time{}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// learn observes terms at t0 in batches.
func learn(b *testing.B, s state.Store, terms *state.Terms, all [][]byte) {
	for lo := 0; lo < len(all); lo += 1000 {
		err := s.Update(ctx, t0, func(tx state.Tx) error {
			for _, term := range all[lo:min(lo+1000, len(all))] {
				if _, _, err := terms.ObserveTx(tx, term); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
