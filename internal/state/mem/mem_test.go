package mem_test

import (
	"testing"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/internal/state/statetest"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return mem.New() })
}

func BenchmarkStore(b *testing.B) {
	statetest.Bench(b, func(b *testing.B) state.Store { return mem.New() })
}
