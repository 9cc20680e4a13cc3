package bolt_test

import (
	"testing"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/statetest"
)

func BenchmarkStore(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts bolt.Options
	}{
		{"fsync", bolt.Options{}},
		{"nosync", bolt.Options{NoSync: true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			statetest.Bench(b, func(b *testing.B) state.Store {
				s, err := bolt.Open(b.TempDir(), tc.opts)
				if err != nil {
					b.Fatal(err)
				}
				return s
			})
		})
	}
}
