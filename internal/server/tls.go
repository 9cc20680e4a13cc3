package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// TLSFiles names the PEM files of the webhook's TLS.
type TLSFiles struct {
	// CertFile and KeyFile are the server's certificate (with its chain)
	// and private key. Required.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile is a bundle of the CAs whose client certificates are
	// accepted (mutual TLS). Empty: no client certificates; clients
	// authenticate with a bearer token.
	ClientCAFile string `yaml:"client_ca_file"`
}

// Certificate holds the server's certificate and reloads it on demand
// (SIGHUP), so that a renewed certificate is served without a restart.
type Certificate struct {
	files TLSFiles
	mu    sync.RWMutex
	cert  *tls.Certificate
}

// LoadCertificate reads the certificate and key, and checks that the
// certificate is valid now.
func LoadCertificate(files TLSFiles) (*Certificate, error) {
	c := &Certificate{files: files}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the files again; on error the old certificate stays.
func (c *Certificate) Reload() error {
	if c.files.CertFile == "" || c.files.KeyFile == "" {
		return errors.New("TLS needs a certificate file and a key file")
	}
	cert, err := tls.LoadX509KeyPair(c.files.CertFile, c.files.KeyFile)
	if err != nil {
		return fmt.Errorf("cannot load the TLS certificate %s with key %s: %w", c.files.CertFile, c.files.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("cannot parse the TLS certificate %s: %w", c.files.CertFile, err)
		}
	}
	now := time.Now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return fmt.Errorf("the TLS certificate %s is valid from %s to %s, not now", c.files.CertFile,
			leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	c.mu.Lock()
	c.cert = &cert
	c.mu.Unlock()
	return nil
}

// get implements tls.Config.GetCertificate.
func (c *Certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

// TLSConfig returns the server's TLS configuration: TLS 1.2 or later, the
// certificate (reloadable), and, with a client CA, client certificates
// verified against it when given. A client certificate is not required at
// the handshake, so that probes reach /healthz; the webhook refuses
// requests with neither a verified certificate nor a bearer token.
func (c *Certificate) TLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get, NextProtos: []string{"h2", "http/1.1"}}
	if c.files.ClientCAFile != "" {
		pem, err := os.ReadFile(c.files.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read the client CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the client CA bundle %s holds no PEM certificate", c.files.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}
