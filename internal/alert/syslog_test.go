package alert

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/server/servertest"
)

// syslogMsg is an RFC 5424 message as the test's receiver parsed it.
type syslogMsg struct {
	pri                               int
	ts, host, app, procid, msgid, msg string
	sd                                map[string]map[string]string
}

// parseRFC5424 parses SYSLOG-MSG of RFC 5424 section 6.
func parseRFC5424(b []byte) (syslogMsg, error) {
	var m syslogMsg
	s := string(b)
	if !strings.HasPrefix(s, "<") {
		return m, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return m, errors.New("bad PRI")
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri > 191 {
		return m, fmt.Errorf("bad PRI %q", s[1:end])
	}
	m.pri = pri
	s = s[end+1:]
	fields := strings.SplitN(s, " ", 7)
	if len(fields) < 7 || fields[0] != "1" {
		return m, fmt.Errorf("bad header %q", s)
	}
	m.ts, m.host, m.app, m.procid, m.msgid = fields[1], fields[2], fields[3], fields[4], fields[5]
	for _, f := range fields[2:6] {
		if !syslogToken(f, 255) {
			return m, fmt.Errorf("bad header field %q", f)
		}
	}
	if m.ts != "-" {
		if _, err := time.Parse(time.RFC3339Nano, m.ts); err != nil {
			return m, fmt.Errorf("bad TIMESTAMP %q", m.ts)
		}
	}
	rest := fields[6]
	m.sd = map[string]map[string]string{}
	if strings.HasPrefix(rest, "-") {
		rest = rest[1:]
	} else {
		for strings.HasPrefix(rest, "[") {
			rest = rest[1:]
			sp := strings.IndexAny(rest, " ]")
			if sp < 1 {
				return m, errors.New("bad SD-ID")
			}
			id := rest[:sp]
			params := map[string]string{}
			rest = rest[sp:]
			for strings.HasPrefix(rest, " ") {
				eq := strings.Index(rest, `="`)
				if eq < 2 {
					return m, errors.New("bad SD-PARAM")
				}
				name := rest[1:eq]
				rest = rest[eq+2:]
				var v strings.Builder
				for {
					if rest == "" {
						return m, errors.New("unterminated PARAM-VALUE")
					}
					c := rest[0]
					rest = rest[1:]
					if c == '\\' && rest != "" && strings.ContainsRune(`"\]`, rune(rest[0])) {
						v.WriteByte(rest[0])
						rest = rest[1:]
						continue
					}
					if c == '"' {
						break
					}
					if c == ']' {
						return m, errors.New("unescaped ] in PARAM-VALUE")
					}
					v.WriteByte(c)
				}
				params[name] = v.String()
			}
			if !strings.HasPrefix(rest, "]") {
				return m, errors.New("unterminated SD-ELEMENT")
			}
			rest = rest[1:]
			m.sd[id] = params
		}
	}
	if rest != "" {
		if rest[0] != ' ' {
			return m, errors.New("no space before MSG")
		}
		m.msg = rest[1:]
	}
	return m, nil
}

// syslogReceiver is a TCP (or TLS) listener of the test's own that
// reads RFC 6587 octet-counted frames and parses each as RFC 5424.
type syslogReceiver struct {
	t    *testing.T
	addr string
	tls  *tls.Config

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]bool
	msgs  []syslogMsg
	bad   []string
	wg    sync.WaitGroup
}

func newSyslogReceiver(t *testing.T, tc *tls.Config) *syslogReceiver {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &syslogReceiver{t: t, addr: l.Addr().String(), tls: tc, conns: map[net.Conn]bool{}}
	r.serve(l)
	t.Cleanup(func() {
		r.stop()
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.bad) > 0 {
			t.Errorf("the syslog receiver read bad frames: %q", r.bad)
		}
	})
	return r
}

func (r *syslogReceiver) serve(l net.Listener) {
	if r.tls != nil {
		l = tls.NewListener(l, r.tls)
	}
	r.mu.Lock()
	r.l = l
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = true
			r.mu.Unlock()
			r.wg.Add(1)
			go r.read(c)
		}
	}()
}

func (r *syslogReceiver) read(c net.Conn) {
	defer r.wg.Done()
	defer func() {
		c.Close()
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
	}()
	br := bufio.NewReader(c)
	for {
		lenText, err := br.ReadString(' ')
		if err != nil {
			if lenText != "" && !errors.Is(err, net.ErrClosed) {
				r.fail("torn frame length %q: %v", lenText, err)
			}
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenText, " "))
		if err != nil || n <= 0 || n > 1<<20 || lenText[0] == '0' {
			r.fail("bad MSG-LEN %q", lenText)
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(br, frame); err != nil {
			r.fail("frame of %d bytes cut short: %v", n, err)
			return
		}
		m, err := parseRFC5424(frame)
		if err != nil {
			r.fail("%v: %q", err, frame)
			continue
		}
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	}
}

func (r *syslogReceiver) fail(format string, args ...any) {
	r.mu.Lock()
	r.bad = append(r.bad, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// dropConns closes the connections but keeps listening.
func (r *syslogReceiver) dropConns() {
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
}

func (r *syslogReceiver) stop() {
	r.mu.Lock()
	l := r.l
	r.l = nil
	r.mu.Unlock()
	if l == nil {
		return
	}
	l.Close()
	r.dropConns()
	r.wg.Wait()
}

func (r *syslogReceiver) start() { r.serve(listenAgain(r.t, r.addr)) }

func (r *syslogReceiver) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []string
	for _, m := range r.msgs {
		ks = append(ks, m.sd[SyslogSDID]["key"])
	}
	return ks
}

func TestSyslogTCPDownThenUp(t *testing.T) {
	r := newSyslogReceiver(t, nil)
	oc, err := ParseOutputFlag("syslog://" + r.addr)
	if err != nil {
		t.Fatal(err)
	}
	oc.BatchSize = 6
	checkDownThenUp(t, oc, r)
}

func TestSyslogTLSDownThenUp(t *testing.T) {
	pki := servertest.WritePKI(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(pki.ServerCert, pki.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	r := newSyslogReceiver(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	oc, err := ParseOutputFlag("syslog+tls://" + r.addr)
	if err != nil {
		t.Fatal(err)
	}
	if !oc.TLS || oc.Addr != r.addr {
		t.Fatalf("parsed %+v", oc)
	}
	oc.CAFile = pki.CAFile
	checkDownThenUp(t, oc, r)
}

// kanon does not deliver to a receiver whose certificate its CA bundle
// does not sign.
func TestSyslogTLSVerifiesTheReceiver(t *testing.T) {
	pki := servertest.WritePKI(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(pki.RogueCert, pki.RogueKey)
	if err != nil {
		t.Fatal(err)
	}
	r := newSyslogReceiver(t, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeSyslog, Addr: r.addr, TLS: true, CAFile: pki.CAFile}), t.TempDir())
	defer o.Close()
	if err := o.Write(context.Background(), testAlert(1)); err != nil {
		t.Fatal(err)
	}
	st := waitStats(t, o, "refused certificate retried", 10*time.Second, func(st OutputStats) bool { return st.Retried > 0 })
	if st.Delivered != 0 || !strings.Contains(st.LastError, "certificate") {
		t.Errorf("stats %+v", st)
	}
	if len(r.keys()) != 0 {
		t.Errorf("delivered to an untrusted receiver: %v", r.keys())
	}
}

// A receiver that closes the connection between batches (a restart
// behind a load balancer, an idle timeout) loses nothing: kanon sees the
// connection closed and dials again before writing.
func TestSyslogReconnectsAfterTheReceiverClosed(t *testing.T) {
	r := newSyslogReceiver(t, nil)
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeSyslog, Addr: r.addr}), t.TempDir())
	defer o.Close()
	ctx := context.Background()
	for i := range 20 {
		if err := o.Write(ctx, testAlert(i)); err != nil {
			t.Fatal(err)
		}
		waitKeys(t, r, i+1, 10*time.Second)
		if i%3 == 0 {
			r.dropConns()
			time.Sleep(20 * time.Millisecond) // the FIN reaches kanon
		}
	}
	if got, want := r.keys(), testIDs(0, 20); !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
	if st := o.Stats()[0]; st.Delivered != 20 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The messages are RFC 5424 with kanon's structured data and the alert
// as JSON.
func TestSyslogMessageShape(t *testing.T) {
	r := newSyslogReceiver(t, nil)
	o := openOutputs(t, fastOutput(OutputConfig{Type: TypeSyslog, Addr: r.addr, Facility: "local4", AppName: "kanon-prod", Hostname: "kanon-0"}), t.TempDir())
	a := slackEventAlert()
	a.Rule.ID = `odd"rule]\id`
	g := groupAlert(1, 2)
	g.Rule.Severity = "info"
	for _, x := range []*Alert{a, g} {
		if err := o.Write(context.Background(), x); err != nil {
			t.Fatal(err)
		}
	}
	waitKeys(t, r, 2, 10*time.Second)
	o.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.msgs[0]
	if m.pri != 20*8+2 || m.ts != "2026-03-01T12:04:05.000000Z" || m.host != "kanon-0" || m.app != "kanon-prod" ||
		m.procid != strconv.Itoa(os.Getpid()) || m.msgid != "alert" {
		t.Errorf("header: %+v", m)
	}
	want := map[string]string{"id": a.ID, "key": a.ID, "rule": a.Rule.ID, "severity": "critical", "risk_score": "73", "cluster": "prod-eu"}
	if got := m.sd[SyslogSDID]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("structured data %v, want %v", got, want)
	}
	var got Alert
	if err := json.Unmarshal([]byte(m.msg), &got); err != nil || got.ID != a.ID {
		t.Errorf("MSG %q: %v", m.msg, err)
	}
	if m := r.msgs[1]; m.pri != 20*8+6 || m.sd[SyslogSDID]["key"] != g.DeliveryKey() {
		t.Errorf("group message: pri %d, sd %v", m.pri, m.sd)
	}
}
