package redistest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a redis-server started by Start or StartTLS.
type Server struct {
	// Addr is the server's loopback host:port.
	Addr string
	// Dir is the server's working directory.
	Dir string
	// CAFile is the PEM file of the CA that signed the server's
	// certificate (StartTLS), or "".
	CAFile string

	cmd    *exec.Cmd
	log    *bytes.Buffer
	exited chan struct{} // closed when the process has exited
	once   sync.Once
	tls    *tls.Config // how ping connects to a TLS server
	extra  []string    // Start's extra arguments, for Restart
}

// Start starts a redis-server for tb and stops it when tb's cleanups run.
// extra are more configuration arguments (for example "--requirepass",
// "secret"). It fails tb if redis-server is not on PATH or does not answer
// PING within 10 seconds.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is not installed (on Debian: apt-get install redis-server, or run scripts/test-deps.sh): %v", err)
	}
	for try := 0; ; try++ {
		srv, err := start(bin, tb.TempDir(), extra, nil)
		if err == nil {
			tb.Cleanup(srv.Stop)
			return srv
		}
		if try == 2 {
			tb.Fatalf("cannot start redis-server: %v", err)
		}
	}
}

// start runs one redis-server on a port picked free just before; another
// process may take the port first, so Start tries again.
func start(bin, dir string, extra []string, tc *tlsFiles) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return startOn(bin, dir, port, extra, tc)
}

// Restart starts a new, empty redis-server of tb where s was (its port),
// once s was stopped: a Redis that comes back for clients that kept its
// address. It fails tb if the port was taken meanwhile.
func (s *Server) Restart(tb testing.TB) *Server {
	tb.Helper()
	s.Stop()
	_, port, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(port)
	srv, err := startOn(s.cmd.Path, tb.TempDir(), n, s.extra, nil)
	if err != nil {
		tb.Fatalf("cannot start redis-server again: %v", err)
	}
	tb.Cleanup(srv.Stop)
	return srv
}

func startOn(bin, dir string, port int, extra []string, tc *tlsFiles) (*Server, error) {
	args := []string{"--port", strconv.Itoa(port)}
	if tc != nil {
		args = []string{"--port", "0", "--tls-port", strconv.Itoa(port), "--tls-cert-file", tc.cert,
			"--tls-key-file", tc.key, "--tls-ca-cert-file", tc.ca, "--tls-auth-clients", "no"}
	}
	args = append(append(args, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning",
	), extra...)
	cmd := exec.Command(bin, args...)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot run %s: %w", bin, err)
	}
	srv := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, cmd: cmd, log: log, exited: make(chan struct{}), extra: extra}
	if tc != nil {
		srv.CAFile, srv.tls = tc.ca, tc.client
	}
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(srv.exited) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := srv.ping(extra); err == nil {
			return srv, nil
		} else if time.Now().After(deadline) {
			srv.Stop()
			return nil, fmt.Errorf("redis-server on %s did not answer PING: %v; its output: %s", srv.Addr, err, log)
		}
		select {
		case <-srv.exited:
			return nil, fmt.Errorf("redis-server on %s exited: %v; its output: %s", srv.Addr, waitErr, log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ping sends PING (after AUTH, if extra sets requirepass) and expects
// PONG.
func (s *Server) ping(extra []string) error {
	var conn net.Conn
	var err error
	if s.tls != nil {
		conn, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", s.Addr, s.tls)
	} else {
		conn, err = net.DialTimeout("tcp", s.Addr, time.Second)
	}
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	r := bufio.NewReader(conn)
	for i, a := range extra {
		if a == "--requirepass" && i+1 < len(extra) {
			fmt.Fprintf(conn, "*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n", len(extra[i+1]), extra[i+1])
			if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
				return fmt.Errorf("AUTH answered %q, %v", line, err)
			}
		}
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// Stop kills the server and waits for it to exit. It is idempotent.
func (s *Server) Stop() {
	s.once.Do(func() {
		s.cmd.Process.Kill()
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
		}
		os.Remove(filepath.Join(s.Dir, "dump.rdb"))
	})
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cannot find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartTLS starts a redis-server for tb that accepts TLS connections only,
// with a certificate for 127.0.0.1 signed by a CA made for the test (its
// PEM file is Server.CAFile), and stops it when tb's cleanups run. It
// fails tb as Start does.
func StartTLS(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatalf("redis-server is not installed (on Debian: apt-get install redis-server, or run scripts/test-deps.sh): %v", err)
	}
	tc, err := writePKI(tb.TempDir())
	if err != nil {
		tb.Fatalf("cannot make the test's certificates: %v", err)
	}
	for try := 0; ; try++ {
		srv, err := start(bin, tb.TempDir(), extra, tc)
		if err == nil {
			tb.Cleanup(srv.Stop)
			return srv
		}
		if try == 2 {
			tb.Fatalf("cannot start redis-server with TLS: %v", err)
		}
	}
}
