package esqleval

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// HyperLogLog sketch for COUNT_DISTINCT beyond its precision threshold.
//
// The precision p follows Elasticsearch's HyperLogLogPlusPlus
// (precisionFromThreshold: enough registers for threshold/0.75 entries of 4
// bytes, clamped to [4, 18]), so p = 14 for the default threshold of 3000.
// Values are hashed with MurmurHash3 (x64, 128-bit, first half) as
// Elasticsearch does. The estimate uses Ertl's improved raw estimator
// ("New cardinality estimation algorithms for HyperLogLog sketches", 2017),
// which needs no empirical bias tables; its error is within the same bounds
// as HLL++ (about 1.04/sqrt(2^p)), but individual estimates can differ from
// Elasticsearch's.

const (
	hllMinP = 4
	hllMaxP = 18
)

// precisionFromThreshold mirrors Elasticsearch's
// HyperLogLogPlusPlus.precisionFromThreshold.
func precisionFromThreshold(threshold int) uint8 {
	entries := int64(math.Ceil(float64(threshold) / 0.75))
	p := bits.Len64(uint64(entries * 4))
	return uint8(min(max(p, hllMinP), hllMaxP))
}

type hll struct {
	p   uint8
	reg []uint8
}

func newHLL(p uint8) *hll { return &hll{p: p, reg: make([]uint8, 1<<p)} }

func (h *hll) add(x uint64) {
	idx := x >> (64 - h.p)
	w := x<<h.p | 1<<(h.p-1) // guard bit bounds the rank
	r := uint8(bits.LeadingZeros64(w) + 1)
	if r > h.reg[idx] {
		h.reg[idx] = r
	}
}

// merge folds o (of the same precision) into h.
func (h *hll) merge(o *hll) {
	for i, r := range o.reg {
		if r > h.reg[i] {
			h.reg[i] = r
		}
	}
}

// estimate returns the cardinality estimate (Ertl's improved estimator).
func (h *hll) estimate() int64 {
	m := float64(len(h.reg))
	q := 64 - int(h.p)
	counts := make([]int, q+2)
	for _, r := range h.reg {
		counts[min(int(r), q+1)]++
	}
	z := m * hllTau(1-float64(counts[q+1])/m)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + float64(counts[k]))
	}
	z += m * hllSigma(float64(counts[0])/m)
	return int64(math.Round(m * m / (2 * math.Ln2) / z))
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		zp := z
		z += x * y
		y += y
		if z == zp {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		zp := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == zp {
			return z / 3
		}
	}
}

// murmur3 returns the first 64 bits of MurmurHash3 x64 128 with seed 0.
func murmur3(data []byte) uint64 {
	h1, _ := murmur3x64(data, 0)
	return h1
}

// murmur3x64 is MurmurHash3_x64_128.
func murmur3x64(data []byte, seed uint32) (uint64, uint64) {
	const c1, c2 = 0x87c37b91114253d5, 0x4cf5ad432745937f
	h1, h2 := uint64(seed), uint64(seed)
	n := len(data)
	for len(data) >= 16 {
		k1 := binary.LittleEndian.Uint64(data)
		k2 := binary.LittleEndian.Uint64(data[8:])
		data = data[16:]
		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
		h1 = bits.RotateLeft64(h1, 27)
		h1 += h2
		h1 = h1*5 + 0x52dce729
		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
		h2 = bits.RotateLeft64(h2, 31)
		h2 += h1
		h2 = h2*5 + 0x38495ab5
	}
	var k1, k2 uint64
	switch len(data) {
	case 15:
		k2 ^= uint64(data[14]) << 48
		fallthrough
	case 14:
		k2 ^= uint64(data[13]) << 40
		fallthrough
	case 13:
		k2 ^= uint64(data[12]) << 32
		fallthrough
	case 12:
		k2 ^= uint64(data[11]) << 24
		fallthrough
	case 11:
		k2 ^= uint64(data[10]) << 16
		fallthrough
	case 10:
		k2 ^= uint64(data[9]) << 8
		fallthrough
	case 9:
		k2 ^= uint64(data[8])
		k2 *= c2
		k2 = bits.RotateLeft64(k2, 33)
		k2 *= c1
		h2 ^= k2
		fallthrough
	case 8:
		k1 ^= uint64(data[7]) << 56
		fallthrough
	case 7:
		k1 ^= uint64(data[6]) << 48
		fallthrough
	case 6:
		k1 ^= uint64(data[5]) << 40
		fallthrough
	case 5:
		k1 ^= uint64(data[4]) << 32
		fallthrough
	case 4:
		k1 ^= uint64(data[3]) << 24
		fallthrough
	case 3:
		k1 ^= uint64(data[2]) << 16
		fallthrough
	case 2:
		k1 ^= uint64(data[1]) << 8
		fallthrough
	case 1:
		k1 ^= uint64(data[0])
		k1 *= c1
		k1 = bits.RotateLeft64(k1, 31)
		k1 *= c2
		h1 ^= k1
	}
	h1 ^= uint64(n)
	h2 ^= uint64(n)
	h1 += h2
	h2 += h1
	h1 = fmix64(h1)
	h2 = fmix64(h2)
	h1 += h2
	h2 += h1
	return h1, h2
}

func fmix64(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	return k
}
