package loadgen

import (
	"io"
	"testing"
)

// BenchmarkGenerate measures the generator alone, writing to io.Discard:
// load tests need it to be faster than the code under test.
func BenchmarkGenerate(b *testing.B) {
	const events = 10_000
	opts := DefaultOptions(events, 1)
	st, err := Generate(io.Discard, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Generate(io.Discard, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
