package state

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Position is how far an input has read one file: the file's identity
// (device and inode, so that a different file at the same path is told
// apart) and the offset after the last record handed on, with the number
// of lines read up to it (for the origins of records after a restart).
type Position struct {
	Dev    uint64
	Ino    uint64
	Offset int64
	Line   int64
}

// positionSize is the encoded size of a Position.
const positionSize = 32

// Positions is the read positions of one input (a tailed file's input
// name), kept in a Store under NSPositions, one entry per path, without
// expiry. Positions is safe for concurrent use.
type Positions struct {
	s      Store
	input  string
	prefix []byte
}

// NewPositions returns the positions of input, kept in s.
func NewPositions(s Store, input string) (*Positions, error) {
	if input == "" {
		return nil, errors.New("invalid input positions: input name is empty")
	}
	return &Positions{s: s, input: input, prefix: AppendPrefix(nil, NSPositions, input)}, nil
}

// AppendKey appends the store key of path to dst.
func (p *Positions) AppendKey(dst []byte, path string) []byte {
	return AppendPartString(append(dst, p.prefix...), path)
}

// Get returns the stored position of path, and false if there is none.
func (p *Positions) Get(ctx context.Context, path string) (Position, bool, error) {
	v, err := p.s.Get(ctx, p.AppendKey(nil, path), time.Time{})
	if errors.Is(err, ErrNotFound) {
		return Position{}, false, nil
	}
	if err != nil {
		return Position{}, false, fmt.Errorf("cannot read the position of input %q in %s: %w", p.input, path, err)
	}
	pos, err := DecodePosition(v)
	if err != nil {
		return Position{}, false, fmt.Errorf("cannot read the position of input %q in %s: %w", p.input, path, err)
	}
	return pos, true, nil
}

// Put stores the position of path in a transaction of its own.
func (p *Positions) Put(ctx context.Context, path string, pos Position) error {
	err := p.s.Update(ctx, time.Time{}, func(tx Tx) error { return p.PutTx(tx, path, pos) })
	if err != nil {
		return fmt.Errorf("cannot store the position of input %q in %s: %w", p.input, path, err)
	}
	return nil
}

// PutTx stores the position of path inside a transaction, so that a
// position can be committed with the state its records produced.
func (p *Positions) PutTx(tx Tx, path string, pos Position) error {
	var vb [positionSize]byte
	return tx.Put(p.AppendKey(nil, path), AppendPosition(vb[:0], pos), time.Time{})
}

// AppendPosition appends the encoding of pos to dst: four big-endian
// 8-byte numbers (device, inode, offset, line).
func AppendPosition(dst []byte, pos Position) []byte {
	dst = binary.BigEndian.AppendUint64(dst, pos.Dev)
	dst = binary.BigEndian.AppendUint64(dst, pos.Ino)
	dst = binary.BigEndian.AppendUint64(dst, uint64(pos.Offset))
	return binary.BigEndian.AppendUint64(dst, uint64(pos.Line))
}

// DecodePosition decodes a value written by AppendPosition.
func DecodePosition(v []byte) (Position, error) {
	if len(v) != positionSize {
		return Position{}, fmt.Errorf("%w: position entry of %d bytes, want %d", ErrCorrupt, len(v), positionSize)
	}
	pos := Position{
		Dev:    binary.BigEndian.Uint64(v[0:]),
		Ino:    binary.BigEndian.Uint64(v[8:]),
		Offset: int64(binary.BigEndian.Uint64(v[16:])),
		Line:   int64(binary.BigEndian.Uint64(v[24:])),
	}
	if pos.Offset < 0 || pos.Line < 0 {
		return Position{}, fmt.Errorf("%w: position entry with a negative offset or line", ErrCorrupt)
	}
	return pos, nil
}
