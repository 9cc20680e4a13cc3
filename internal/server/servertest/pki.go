// Package servertest generates the certificates that tests of the audit
// webhook need: a CA, a server certificate for 127.0.0.1 and localhost,
// a client certificate signed by the CA, and one signed by another CA.
package servertest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI names the PEM files WritePKI wrote.
type PKI struct {
	CAFile                string // the CA of the server and the client certificates
	ServerCert, ServerKey string // for 127.0.0.1 and localhost
	ClientCert, ClientKey string // signed by the CA
	RogueCert, RogueKey   string // signed by another CA
	pool                  *x509.CertPool
	client, rogue         tls.Certificate
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial int64 = 1

func newCert(t testing.TB, tmpl *x509.Certificate, parent *issuer) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial++
	tmpl.SerialNumber = big.NewInt(serial)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	pc, pk := tmpl, key
	if parent != nil {
		pc, pk = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, pc, &key.PublicKey, pk)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key, der
}

func newCA(t testing.TB, name string) (*issuer, []byte) {
	c, k, der := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}, nil)
	return &issuer{c, k}, der
}

func write(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func writeKey(t testing.TB, path string, k *ecdsa.PrivateKey) {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, "EC PRIVATE KEY", der)
}

// WritePKI generates the certificates into dir.
func WritePKI(t testing.TB, dir string) *PKI {
	t.Helper()
	ca, caDER := newCA(t, "kanon test CA")
	other, _ := newCA(t, "another CA")
	p := &PKI{
		CAFile: filepath.Join(dir, "ca.crt"), ServerCert: filepath.Join(dir, "server.crt"), ServerKey: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.crt"), ClientKey: filepath.Join(dir, "client.key"),
		RogueCert: filepath.Join(dir, "rogue.crt"), RogueKey: filepath.Join(dir, "rogue.key"),
	}
	write(t, p.CAFile, "CERTIFICATE", caDER)
	_, sk, sder := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "kanon"}, DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, ca)
	write(t, p.ServerCert, "CERTIFICATE", sder)
	writeKey(t, p.ServerKey, sk)
	client := func(certPath, keyPath string, by *issuer) tls.Certificate {
		_, k, der := newCert(t, &x509.Certificate{Subject: pkix.Name{CommonName: "kube-apiserver"}, KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, by)
		write(t, certPath, "CERTIFICATE", der)
		writeKey(t, keyPath, k)
		c, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	p.client = client(p.ClientCert, p.ClientKey, ca)
	p.rogue = client(p.RogueCert, p.RogueKey, other)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(ca.cert)
	return p
}

// ClientTLS returns a client TLS configuration that trusts the CA and
// presents the client certificate (cert "client"), the other CA's
// certificate ("rogue"), or none ("").
func (p *PKI) ClientTLS(cert string) *tls.Config {
	cfg := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	switch cert {
	case "client":
		cfg.Certificates = []tls.Certificate{p.client}
	case "rogue":
		cfg.Certificates = []tls.Certificate{p.rogue}
	}
	return cfg
}
