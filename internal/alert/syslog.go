package alert

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// syslogFacilities are the facility names of RFC 5424 section 6.2.1, in
// code order (local0 to local7 follow as 16 to 23).
var syslogFacilities = []string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
}

// syslogFacility returns the code of a facility name; -1 if unknown.
func syslogFacility(name string) int {
	for i, f := range syslogFacilities {
		if f == name {
			return i
		}
	}
	if n, ok := strings.CutPrefix(name, "local"); ok && len(n) == 1 && n[0] >= '0' && n[0] <= '7' {
		return 16 + int(n[0]-'0')
	}
	return -1
}

// syslogSeverity maps an alert's severity to a syslog severity: critical
// 2 (crit), high 3 (err), medium 4 (warning), low 5 (notice), info 6
// (info); anything else 5.
func syslogSeverity(s string) int {
	switch s {
	case "critical":
		return 2
	case "high":
		return 3
	case "medium":
		return 4
	case "info":
		return 6
	}
	return 5
}

// syslogToken reports whether s is 1 to n printable US-ASCII characters
// without spaces (RFC 5424's HOSTNAME and APP-NAME).
func syslogToken(s string, n int) bool {
	if s == "" || len(s) > n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// SyslogOptions shape the messages of the syslog output.
type SyslogOptions struct {
	// Facility is the facility code (default 4, auth).
	Facility int
	// Hostname is the HOSTNAME (default: the machine's host name).
	Hostname string
	// AppName is the APP-NAME (default kanon).
	AppName string
}

// SyslogSDID is the SD-ID of the structured data element of kanon's
// syslog messages. 32473 is the private enterprise number that RFC 5612
// reserves for documentation: kanon has none of its own.
const SyslogSDID = "kanon@32473"

// SyslogMessage returns the alert as an RFC 5424 message (without the
// RFC 6587 framing the transport adds):
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID alert [kanon@32473 id=".." key=".." rule=".." severity=".." risk_score=".." cluster=".."] JSON
//
// PRI is the facility and the severity (critical 2, high 3, medium 4,
// low 5, info 6); TIMESTAMP is the alert's time in UTC with
// microseconds; PROCID is kanon's process id; MSGID is "alert"; the
// structured data carries the alert id, its delivery key (a receiver
// drops repeats by it), the rule id, severity, risk score and cluster;
// MSG is the alert as kanon's JSON.
func SyslogMessage(a *Alert, o SyslogOptions) ([]byte, error) {
	body, err := Marshal(a)
	if err != nil {
		return nil, err
	}
	host := o.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	if !syslogToken(host, 255) {
		host = "-"
	}
	app := o.AppName
	if !syslogToken(app, 48) {
		app = "kanon"
	}
	b := make([]byte, 0, len(body)+256)
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(o.Facility*8+syslogSeverity(a.Rule.Severity)), 10)
	b = append(b, ">1 "...)
	if a.Timestamp.IsZero() {
		b = append(b, '-')
	} else {
		b = a.Timestamp.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	}
	b = append(b, ' ')
	b = append(b, host...)
	b = append(b, ' ')
	b = append(b, app...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	b = append(b, " alert ["...)
	b = append(b, SyslogSDID...)
	param := func(name, v string) {
		if v == "" {
			return
		}
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, `="`...)
		for i := 0; i < len(v); i++ {
			if c := v[i]; c == '"' || c == '\\' || c == ']' {
				b = append(b, '\\')
			}
			b = append(b, v[i])
		}
		b = append(b, '"')
	}
	param("id", a.ID)
	param("key", a.DeliveryKey())
	param("rule", a.Rule.ID)
	param("severity", a.Rule.Severity)
	param("risk_score", strconv.Itoa(a.Rule.RiskScore))
	param("cluster", fieldText(a.Fields, "cluster"))
	b = append(b, "] "...)
	return append(b, body...), nil
}

// syslogTransport writes RFC 5424 messages over TCP or TLS with RFC
// 6587 octet-counting framing ("LEN SP MSG"). Syslog over TCP has no
// acknowledgement: an alert counts as delivered once the connection took
// it. Before each batch the transport checks that the receiver has not
// closed the connection, and dials again if it has, so that an alert is
// not written into a connection the receiver already left; a receiver
// that dies after taking a batch and before reading it can still lose
// that batch, as with any syslog sender. The delivery key in the
// structured data lets a receiver drop the repeats of a retried batch.
type syslogTransport struct {
	typ, name string
	addr      string
	tls       *tls.Config
	timeout   time.Duration
	conn      net.Conn
	buf       []byte
}

func newSyslogTransport(typ, name, addr string, useTLS bool, caFile string, insecure bool, timeout time.Duration) (*syslogTransport, error) {
	t := &syslogTransport{typ: typ, name: name, addr: addr, timeout: timeout}
	if t.timeout <= 0 {
		t.timeout = DefaultTimeout
	}
	if useTLS {
		tc, err := tlsClientConfig(caFile, insecure)
		if err != nil {
			return nil, fmt.Errorf("%s output %q: %w", typ, name, err)
		}
		if tc == nil {
			tc = tlsDefaultConfig()
		}
		if host, _, err := net.SplitHostPort(addr); err == nil && tc.ServerName == "" {
			tc.ServerName = host
		}
		t.tls = tc
	}
	return t, nil
}

func (t *syslogTransport) errorf(format string, args ...any) error {
	return fmt.Errorf("%s output %q: "+format, append([]any{t.typ, t.name}, args...)...)
}

// alive reports whether the receiver still holds the connection open: a
// read that times out means it does; end of file or an error means it
// closed or reset it. Anything the receiver sent is discarded.
func (t *syslogTransport) alive() bool {
	var b [256]byte
	if err := t.conn.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return false
	}
	_, err := t.conn.Read(b[:])
	_ = t.conn.SetReadDeadline(time.Time{})
	var ne net.Error
	return err == nil || errors.As(err, &ne) && ne.Timeout()
}

func (t *syslogTransport) dial(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	var c net.Conn
	var err error
	if t.tls != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: t.tls}).DialContext(ctx, "tcp", t.addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", t.addr)
	}
	if err != nil {
		return err
	}
	t.conn = c
	return nil
}

func (t *syslogTransport) deliver(ctx context.Context, batch []entry, res []error) time.Duration {
	if t.conn != nil && !t.alive() {
		t.conn.Close()
		t.conn = nil
	}
	if t.conn == nil {
		if err := t.dial(ctx); err != nil {
			fill(res, t.errorf("cannot connect to %s: %w", t.addr, err))
			return 0
		}
	}
	t.buf = t.buf[:0]
	for _, e := range batch {
		t.buf = strconv.AppendInt(t.buf, int64(len(e.body)), 10)
		t.buf = append(t.buf, ' ')
		t.buf = append(t.buf, e.body...)
	}
	deadline := time.Now().Add(t.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = t.conn.SetWriteDeadline(deadline)
	conn := t.conn
	stop := context.AfterFunc(ctx, func() { _ = conn.SetWriteDeadline(time.Now()) })
	_, err := t.conn.Write(t.buf)
	stop()
	if err != nil {
		t.conn.Close()
		t.conn = nil
		fill(res, t.errorf("cannot deliver %s to %s: %w", batchText(batch), t.addr, err))
		return 0
	}
	clear(res)
	return 0
}

func (t *syslogTransport) close() error {
	if t.conn == nil {
		return nil
	}
	err := t.conn.Close()
	t.conn = nil
	return err
}
