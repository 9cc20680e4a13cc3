package redis

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kanon-dev/kanon/internal/state"
)

// DeleteExpired implements state.Store. Each batch takes up to
// Options.SweepBatch candidates from the expiry index (ZRANGEBYSCORE up to
// the score of now) and runs sweepScript on them, which judges each entry
// on its exact expiry and removes the expired ones with their index
// members and counters: two round trips per batch, so a sweep costs in
// proportion to what it removes. Candidates with the score of now that are
// still live (the same millisecond) are skipped by the next batches.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	nowN := state.UnixNano(now)
	if nowN == 0 {
		return 0, nil
	}
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	var flipped [8]byte
	binary.BigEndian.PutUint64(flipped[:], uint64(nowN)^(1<<63))
	nhi, nlo := binary.BigEndian.Uint32(flipped[:4]), binary.BigEndian.Uint32(flipped[4:])
	max := strconv.FormatInt(expiryScore(nowN), 10)
	total, skip := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		cands, err := s.c.ZRangeByScore(ctx, s.expiry, &goredis.ZRangeBy{Min: "-inf", Max: max, Offset: int64(skip), Count: int64(s.opts.SweepBatch)}).Result()
		if err != nil {
			return total, fmt.Errorf("cannot delete expired state from redis state store %s: %w", s.opts.Prefix, err)
		}
		if len(cands) == 0 {
			return total, nil
		}
		keys := make([]string, 3, 3+len(cands))
		keys[0], keys[1], keys[2] = s.meta, s.index, s.expiry
		for _, k := range cands {
			keys = append(keys, s.data+k)
		}
		res, err := s.runScript(ctx, sweepScript, keys, len(s.data), nhi, nlo)
		if err != nil {
			return total, fmt.Errorf("cannot delete expired state from redis state store %s: %w", s.opts.Prefix, err)
		}
		n, live, err := sweepResult(res)
		if err != nil {
			return total, fmt.Errorf("cannot delete expired state from redis state store %s: %w", s.opts.Prefix, err)
		}
		total += n
		skip += live
		if len(cands) < s.opts.SweepBatch {
			return total, nil
		}
	}
}

// runScript runs a script by its digest, loading the scripts again if the
// server lost them.
func (s *Store) runScript(ctx context.Context, sc *goredis.Script, keys []string, args ...any) (any, error) {
	res, err := sc.EvalSha(ctx, s.c, keys, args...).Result()
	if goredis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := s.loadScripts(ctx); err != nil {
			return nil, err
		}
		res, err = sc.EvalSha(ctx, s.c, keys, args...).Result()
	}
	return res, err
}

func sweepResult(res any) (removed, live int, err error) {
	a, ok := res.([]any)
	if ok && len(a) == 2 {
		r, ok1 := a[0].(int64)
		l, ok2 := a[1].(int64)
		if ok1 && ok2 {
			return int(r), int(l), nil
		}
	}
	return 0, 0, fmt.Errorf("unexpected reply %v of the sweep script", res)
}
