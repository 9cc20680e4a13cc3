package natstest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert/alerttest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSServer is a nats-server process with JetStream enabled, listening
// on 127.0.0.1. Stop and Start stop it and start it again on the same
// port and store directory, so that streams survive (a receiver that is
// down, then up).
type NATSServer struct {
	t    testing.TB
	bin  string
	Port int
	// Dir is the JetStream store directory.
	Dir string

	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  bytes.Buffer
}

// NATSBinary returns the path of nats-server, failing the test when it
// is not installed.
func NATSBinary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	t.Fatal("nats-server is not installed (Debian package nats-server): the NATS tests need a real server")
	return ""
}

// StartNATS starts a nats-server with JetStream on a free port and a
// temporary store directory, with more command-line arguments if given
// (e.g. "--auth", TOKEN); it is stopped when the test ends.
func StartNATS(t testing.TB, args ...string) *NATSServer {
	t.Helper()
	s := &NATSServer{t: t, bin: NATSBinary(t), Port: alerttest.FreePort(t), Dir: t.TempDir(), args: args}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// URL is the server's client URL.
func (s *NATSServer) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(s.Port) }

// Log returns what the server printed.
func (s *NATSServer) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// Start starts the server (again) and waits until it takes clients.
func (s *NATSServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return
	}
	args := append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-js", "-sd", s.Dir, "-n", "kanon-test"}, s.args...)
	cmd := exec.Command(s.bin, args...)
	w := lockedWriter{&s.mu, &s.log}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatalf("cannot start nats-server: %v", err)
	}
	done := make(chan struct{})
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := s.ping()
		if err == nil {
			return
		}
		select {
		case <-done:
			s.t.Fatalf("nats-server exited at start: %s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server on port %d not ready: %v\n%s", s.Port, err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping connects and reads the server's INFO line, which says whether
// JetStream is on.
func (s *NATSServer) ping() error {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.Port), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "INFO ") {
		return fmt.Errorf("unexpected greeting %q", line)
	}
	if !strings.Contains(line, `"jetstream":true`) {
		return errors.New("JetStream is not ready")
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 10s) and waits for
// it to exit; its port is then closed.
func (s *NATSServer) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// JetStream runs f with a JetStream context on a connection of its own to
// the server, closed when f returns; f has 30 seconds.
func (s *NATSServer) JetStream(t testing.TB, f func(context.Context, jetstream.JetStream)) {
	t.Helper()
	nc, err := nats.Connect(s.URL(), nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f(ctx, js)
}
