package server

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state/mem"
)

// One client that sends its bodies slowly, on as many connections as
// there are slots, holds at most its share of them: another client's
// batch is answered 200 at once, the slow client's requests beyond its
// share get 429, and those it holds get 408 once the body timeout is up,
// freeing their slots.
func TestSlowClientDoesNotStarveOthers(t *testing.T) {
	d, err := run.New(run.Config{Rules: builtinRules(t), Store: mem.New(), Sink: &discard{}, Registry: formats.Registry(),
		Policy: run.LivePolicy(run.DefaultLiveLateness), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	const bodyTimeout = 1500 * time.Millisecond
	s, err := New(Config{Driver: d, Tokens: []string{"tok-slow", "tok-other"}, MaxInFlight: 4, BodyTimeout: bodyTimeout,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())

	// The slow client: four requests whose bodies never finish.
	type slow struct {
		conn net.Conn
		r    *bufio.Reader
	}
	var conns []slow
	started := time.Now()
	for range 4 {
		c, err := net.Dial("tcp", addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /audit/slow HTTP/1.1\r\nHost: kanon\r\nAuthorization: Bearer tok-slow\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"kind\":")
		conns = append(conns, slow{c, bufio.NewReader(c)})
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.slots.inUse() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := s.slots.inUse(); n != 2 {
		t.Fatalf("the slow client holds %d slots, want 2 (half of 4)", n)
	}

	// Another client is served meanwhile.
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr.String()+"/audit/other", strings.NewReader(string(eventList(exampleLines(t)[:3]))))
	req.Header.Set("Authorization", "Bearer tok-other")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || time.Since(started) >= bodyTimeout {
		t.Fatalf("the other client got %d after %s, want 200 before the slow bodies time out", resp.StatusCode, time.Since(started))
	}

	// The slow client: two 429 at once, two 408 after the body timeout.
	codes := map[int]int{}
	for _, c := range conns {
		c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(c.r, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
	}
	if codes[429] != 2 || codes[408] != 2 || time.Since(started) < bodyTimeout {
		t.Fatalf("the slow client's answers %v after %s, want two 429 and two 408 after %s", codes, time.Since(started), bodyTimeout)
	}
	if n := s.slots.inUse(); n != 0 {
		t.Fatalf("%d slots still held", n)
	}
}
