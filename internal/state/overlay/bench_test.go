package overlay_test

import (
	"crypto/sha256"
	"testing"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/overlay"
)

// BenchmarkCommit is the commit stage: a group of writes like a batch's
// (raised-alert marks: a rule's prefix and a 32-byte id, 8-byte values,
// 30 days' expiry) made through the overlay, then committed to the store
// in one transaction: into memory (a stateless scan), and into the
// embedded store on disk with and without its fsync (kanon scan
// --state-dir syncs). SetBytes counts the keys' and values' bytes.
func BenchmarkCommit(b *testing.B) {
	const group = 4096
	keys := make([][]byte, group)
	for i := range keys {
		id := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		keys[i] = state.AppendPart(state.AppendPrefix(nil, state.NSAlerts, "Kubernetes.API.AnonymousAccess"), id[:])
	}
	for _, c := range []struct {
		name string
		open func(b *testing.B) state.Store
	}{
		{"mem", func(*testing.B) state.Store { return mem.New() }},
		{"bolt", func(b *testing.B) state.Store { return openBolt(b, bolt.Options{}) }},
		{"bolt-nosync", func(b *testing.B) state.Store { return openBolt(b, bolt.Options{NoSync: true}) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			base := c.open(b)
			defer base.Close()
			o := overlay.New(base, nil)
			b.SetBytes(int64(group * (len(keys[0]) + 8)))
			b.ReportAllocs()
			at := t0
			for b.Loop() {
				at = at.Add(1)
				err := o.Update(ctx, at, func(tx state.Tx) error {
					var v [8]byte
					v[0] = byte(at.Nanosecond())
					for _, k := range keys {
						if err := tx.Put(k, v[:], at.Add(30*24*3600e9)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				if err := o.Commit(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(group)*float64(b.N)/b.Elapsed().Seconds(), "writes/s")
		})
	}
}

func openBolt(b *testing.B, opts bolt.Options) state.Store {
	s, err := bolt.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
