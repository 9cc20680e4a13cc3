package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/server/servertest"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/prometheus/client_golang/prometheus"
)

// secretVolume lays files out as the kubelet lays out a Secret volume:
// each file a symbolic link through "..data" to a timestamped directory,
// and an update a new directory that "..data" is swapped to at once (a
// rename of a new link), the old directory then removed.
type secretVolume struct {
	t   *testing.T
	dir string
	gen int
}

func (v *secretVolume) update(files map[string][]byte) {
	t := v.t
	t.Helper()
	v.gen++
	data := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", v.gen, v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, data), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(v.dir, data, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(v.dir, "..data"))
	if err := os.Symlink(data, filepath.Join(v.dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(v.dir, "..data_tmp"), filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
	if old != "" {
		os.RemoveAll(filepath.Join(v.dir, old))
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pkiFiles are the Secret's files of one PKI, with a token.
func pkiFiles(t *testing.T, p *servertest.PKI, token string) map[string][]byte {
	return map[string][]byte{"tls.crt": readFile(t, p.ServerCert), "tls.key": readFile(t, p.ServerKey),
		"ca.crt": readFile(t, p.CAFile), "token": []byte(token + "\n")}
}

// syncLog collects log lines written from several goroutines.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *syncLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// The certificate, the client CA and the bearer token rotate under a
// running server with real TLS: when the Secret volume's "..data" is
// swapped to new files, a new handshake gets the new certificate, a
// client certificate of the new CA is accepted and one of the old CA is
// not, and the new token is accepted and the old one refused; a broken
// certificate swapped in keeps the one before, says why in the log, and
// is counted as a failed reload.
func TestCredentialsRotate(t *testing.T) {
	pkiA, pkiB := servertest.WritePKI(t, t.TempDir()), servertest.WritePKI(t, t.TempDir())
	vol := &secretVolume{t: t, dir: t.TempDir()}
	vol.update(pkiFiles(t, pkiA, "token-a"))
	in := func(name string) string { return filepath.Join(vol.dir, name) }
	cert, err := LoadCertificate(TLSFiles{CertFile: in("tls.crt"), KeyFile: in("tls.key"), ClientCAFile: in("ca.crt")})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := LoadTokens([]string{in("token")})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncLog
	log := slog.New(slog.NewTextHandler(&logs, nil))
	reg := prometheus.NewRegistry()
	d, err := run.New(run.Config{Rules: builtinRules(t), Store: mem.New(), Sink: &discard{}, Registry: formats.Registry(),
		Policy: run.LivePolicy(run.DefaultLiveLateness), Metrics: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	creds := &Credentials{Cert: cert, Tokens: tokens, Log: log}
	creds.Register(reg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := creds.Watch(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Driver: d, TokenSet: tokens, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tc, err := cert.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Listen("127.0.0.1:0", tc)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	url := "https://" + addr.String() + "/audit/lab"

	// served returns the certificate a new handshake gets, verified
	// against p's CA.
	served := func(p *servertest.PKI) ([]byte, error) {
		conn, err := tls.Dial("tcp", addr.String(), p.ClientTLS(""))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw, nil
	}
	der := func(path string) []byte {
		b, _ := pem.Decode(readFile(t, path))
		return b.Bytes
	}
	status := func(c *http.Client, hdr ...string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(eventList(exampleLines(t)[:2])))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			return -1 // the handshake refused the client certificate
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	client := func(p *servertest.PKI, cert string) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: p.ClientTLS(cert), DisableKeepAlives: true}}
	}
	if got, err := served(pkiA); err != nil || !bytes.Equal(got, der(pkiA.ServerCert)) {
		t.Fatalf("before the rotation: %v", err)
	}
	if c := status(client(pkiA, "client")); c != 200 {
		t.Fatalf("client certificate of the first CA: %d", c)
	}

	vol.update(pkiFiles(t, pkiB, "token-b"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := served(pkiB)
		if err == nil && bytes.Equal(got, der(pkiB.ServerCert)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new certificate is not served: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for time.Now().Before(deadline) && status(client(pkiB, "client")) != 200 {
		time.Sleep(20 * time.Millisecond)
	}
	if c := status(client(pkiB, "client")); c != 200 {
		t.Fatalf("client certificate of the new CA: %d", c)
	}
	if c := status(client(pkiA, "client")); c == 200 {
		t.Fatalf("client certificate of the old CA still accepted")
	}
	for time.Now().Before(deadline) && status(client(pkiB, ""), "Authorization", "Bearer token-b") != 200 {
		time.Sleep(20 * time.Millisecond)
	}
	if c := status(client(pkiB, ""), "Authorization", "Bearer token-b"); c != 200 {
		t.Fatalf("new token: %d", c)
	}
	if c := status(client(pkiB, ""), "Authorization", "Bearer token-a"); c != 403 {
		t.Fatalf("old token: %d, want 403", c)
	}

	// A broken certificate: the one before stays.
	broken := pkiFiles(t, pkiB, "token-b")
	broken["tls.crt"] = []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
	vol.update(broken)
	for time.Now().Before(deadline) && !strings.Contains(logs.String(), "credential not reloaded") {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), `msg="credential not reloaded: the old one stays" kind=certificate err="cannot load the TLS certificate`) {
		t.Fatalf("the refused certificate is not logged:\n%s", logs.String())
	}
	if got, err := served(pkiB); err != nil || !bytes.Equal(got, der(pkiB.ServerCert)) {
		t.Fatalf("after a broken certificate: %v", err)
	}
	if err := creds.Reload(); err == nil || !strings.Contains(err.Error(), "cannot load the TLS certificate") {
		t.Fatalf("SIGHUP's reload with a broken certificate: %v", err)
	}
	for _, c := range []struct {
		kind, result string
		min          float64
	}{{"certificate", "ok", 1}, {"client_ca", "ok", 1}, {"tokens", "ok", 1}, {"certificate", "failed", 2}, {"client_ca", "failed", 0}} {
		if v := counterValue(t, reg, "kanon_credential_reloads_total", map[string]string{"kind": c.kind, "result": c.result}); v < c.min || c.min == 0 && v != 0 {
			t.Errorf("kanon_credential_reloads_total{kind=%q,result=%q} = %v, want %v or more", c.kind, c.result, v, c.min)
		}
	}
}

// discard is a sink that keeps nothing.
type discard struct{}

func (discard) Write(context.Context, *alert.Alert) error { return nil }
func (discard) Close() error                              { return nil }

// counterValue is the value of the counter name whose labels include want
// (0 if there is none).
func counterValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
