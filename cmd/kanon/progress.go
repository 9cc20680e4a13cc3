package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progressBar redraws one line on stderr while a large scan runs.
type progressBar struct {
	w     io.Writer
	total int64
	done  *atomic.Int64
	stopc chan struct{}
	wg    sync.WaitGroup
	mu    sync.Mutex
	begin time.Time
}

func newProgressBar(w io.Writer, total int64, done *atomic.Int64) *progressBar {
	return &progressBar{w: w, total: total, done: done, stopc: make(chan struct{})}
}

func (b *progressBar) run() {
	b.begin = time.Now()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-b.stopc:
				return
			case <-t.C:
				b.draw()
			}
		}
	}()
}

func (b *progressBar) draw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.done.Load()
	rate := float64(n) / time.Since(b.begin).Seconds()
	if b.total <= 0 {
		fmt.Fprintf(b.w, "\r%s read (%s/s)   ", humanBytes(n), humanBytes(int64(rate)))
		return
	}
	frac := float64(n) / float64(b.total)
	if frac > 1 {
		frac = 1
	}
	width := 30
	fill := int(frac * float64(width))
	eta := ""
	if rate > 0 {
		eta = fmt.Sprintf(" eta %s", time.Duration(float64(b.total-n)/rate*float64(time.Second)).Round(time.Second))
	}
	fmt.Fprintf(b.w, "\r[%s%s] %3.0f%% %s/%s %s/s%s   ", strings.Repeat("#", fill), strings.Repeat(".", width-fill), frac*100, humanBytes(n), humanBytes(b.total), humanBytes(int64(rate)), eta)
}

// clear erases the bar's line (before other stderr output).
func (b *progressBar) clear() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(b.w, "\r%s\r", strings.Repeat(" ", 100))
}

func (b *progressBar) stop() {
	if b == nil {
		return
	}
	close(b.stopc)
	b.wg.Wait()
	b.clear()
}
