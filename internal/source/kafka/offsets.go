package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Offsets. Each partition held keeps its batches in flight in offset
// order; as the first ones become durable the partition's durable offset
// moves past them and the committer commits it. A failed batch rewinds
// its partition (the batches after it no longer count); a revocation
// drains and commits, a loss forgets.

// tp is a topic's partition.
type tp struct {
	topic     string
	partition int32
}

// part is what this replica holds of one assigned partition.
type part struct {
	gen       int      // bumped by a rewind: batches of older ones are ignored
	batches   []*batch // of gen, in offset order, not yet all durable
	durable   int64    // the offset after the last record durable in order (-1: none)
	epoch     int32    // its leader epoch
	committed int64    // the offset committed last (-1: none)
	inflight  int      // batches of every gen not yet done
	rewind    int64    // where to read again after a failed batch (-1: no)
	want      int64    // the next offset expected (-1: any)
}

// batch is the offsets one submitted batch covers.
type batch struct {
	gen   int
	next  int64 // the offset after its last record
	epoch int32
	first int64
	done  bool
}

// finish records the outcome of a batch: durable, it may move the
// partition's offset to commit; failed, the partition is read again from
// the batch's first record, and the batches after it are ignored.
func (s *Source) finish(key tp, p *part, bt *batch, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.cond.Broadcast()
	p.inflight--
	if s.parts[key] != p || bt.gen != p.gen {
		return // lost, given up, or rewound since
	}
	if err != nil {
		p.rewind, p.batches, p.want = bt.first, nil, -1
		p.gen++
		return
	}
	bt.done = true
	moved := false
	for len(p.batches) > 0 && p.batches[0].done {
		p.durable, p.epoch = p.batches[0].next, p.batches[0].epoch
		p.batches = p.batches[1:]
		moved = true
	}
	if moved {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// applyRewinds moves the partitions whose batch failed back to it; it
// runs in the polling goroutine, between polls, as SetOffsets asks.
func (s *Source) applyRewinds(cl *kgo.Client, log *slog.Logger) bool {
	s.mu.Lock()
	set := map[string]map[int32]kgo.EpochOffset{}
	for key, p := range s.parts {
		if p.rewind < 0 {
			continue
		}
		if set[key.topic] == nil {
			set[key.topic] = map[int32]kgo.EpochOffset{}
		}
		set[key.topic][key.partition] = kgo.EpochOffset{Epoch: -1, Offset: p.rewind}
		log.Warn("batch not durable: its records are read again", "partition", key.partition, "offset", p.rewind)
		p.want, p.rewind = p.rewind, -1
	}
	s.mu.Unlock()
	cl.SetOffsets(set)
	return len(set) > 0
}

// toCommit returns the durable offsets not yet committed of the
// partitions in only (nil: every partition held).
func (s *Source) toCommit(only map[string][]int32) map[string]map[int32]kgo.EpochOffset {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[int32]kgo.EpochOffset{}
	for key, p := range s.parts {
		if only != nil && !held(only, key) || p.durable <= p.committed {
			continue
		}
		if out[key.topic] == nil {
			out[key.topic] = map[int32]kgo.EpochOffset{}
		}
		out[key.topic][key.partition] = kgo.EpochOffset{Epoch: p.epoch, Offset: p.durable}
	}
	return out
}

func held(m map[string][]int32, key tp) bool {
	for _, p := range m[key.topic] {
		if p == key.partition {
			return true
		}
	}
	return false
}

// commit commits offs and records what was committed.
func (s *Source) commit(ctx context.Context, cl *kgo.Client, offs map[string]map[int32]kgo.EpochOffset, log *slog.Logger) {
	if len(offs) == 0 {
		return
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err == nil {
			for _, t := range resp.Topics {
				for _, p := range t.Partitions {
					if e := kerr.ErrorForCode(p.ErrorCode); e != nil && err == nil {
						err = fmt.Errorf("partition %d: %w", p.Partition, e)
					}
				}
			}
		}
		cerr = err
	})
	if cerr != nil {
		if ctx.Err() == nil {
			log.Warn("cannot commit offsets: their records may be read again", "err", cerr)
		}
		return
	}
	s.mu.Lock()
	for topic, ps := range offs {
		for partition, eo := range ps {
			if p := s.parts[tp{topic, partition}]; p != nil && eo.Offset > p.committed {
				p.committed = eo.Offset
			}
		}
	}
	s.mu.Unlock()
}

// committer commits the durable offsets as batches become durable.
func (s *Source) committer(ctx context.Context, cl *kgo.Client, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		s.commitMu.Lock()
		s.commit(ctx, cl, s.toCommit(nil), log)
		s.commitMu.Unlock()
	}
}

// revoked waits for the batches in flight of the partitions given up,
// commits what became durable and forgets them.
func (s *Source) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.waitDrained(revoked)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainWait)
	defer cancel()
	s.commit(cctx, cl, s.toCommit(revoked), log)
	s.forget(revoked)
}

// lost forgets the partitions lost (another replica may have them already):
// their batches' outcomes are not committed.
func (s *Source) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.forget(lost)
}

func (s *Source) forget(m map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key := range s.parts {
		if held(m, key) {
			delete(s.parts, key)
		}
	}
}

// waitDrained waits, at most drainWait, until no batch of the partitions
// in m is in flight.
func (s *Source) waitDrained(m map[string][]int32) {
	timer := time.AfterFunc(drainWait, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	deadline := time.Now().Add(drainWait)
	s.mu.Lock()
	defer s.mu.Unlock()
	for time.Now().Before(deadline) {
		busy := false
		for key, p := range s.parts {
			if held(m, key) && p.inflight > 0 {
				busy = true
			}
		}
		if !busy {
			return
		}
		s.cond.Wait()
	}
}
