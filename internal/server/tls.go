package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
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

// Certificate holds the server's certificate and the client CA bundle,
// and reads them again on demand (SIGHUP, or a change of the files seen by
// Watch), so that a renewed certificate or CA is used without a restart.
// A file that does not load keeps what was loaded before. Its methods are
// safe for concurrent use.
type Certificate struct {
	files TLSFiles
	mu    sync.RWMutex
	cert  *tls.Certificate
	pool  *x509.CertPool
	// certPEM, keyPEM and caPEM are the bytes loaded last, to tell a
	// change from a touch.
	certPEM, keyPEM, caPEM []byte
	// conf is the TLS configuration with the current client CAs, handed
	// to each handshake (GetConfigForClient).
	conf atomic.Pointer[tls.Config]
}

// LoadCertificate reads the certificate and key, checks that the
// certificate is valid now, and reads the client CA bundle if there is
// one.
func LoadCertificate(files TLSFiles) (*Certificate, error) {
	c := &Certificate{files: files}
	if _, err := c.ReloadCert(); err != nil {
		return nil, err
	}
	if _, err := c.ReloadClientCA(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the certificate and the client CA bundle again; on error
// the old ones stay.
func (c *Certificate) Reload() error {
	_, errCert := c.ReloadCert()
	_, errCA := c.ReloadClientCA()
	return errors.Join(errCert, errCA)
}

// ReloadCert reads the certificate and key again and reports whether they
// changed. A pair that does not load, whose key does not match, or whose
// certificate is not valid now is refused with the reason, and the old
// certificate stays.
func (c *Certificate) ReloadCert() (changed bool, err error) {
	if c.files.CertFile == "" || c.files.KeyFile == "" {
		return false, errors.New("TLS needs a certificate file and a key file")
	}
	certPEM, err := os.ReadFile(c.files.CertFile)
	if err != nil {
		return false, fmt.Errorf("cannot load the TLS certificate %s: %w", c.files.CertFile, err)
	}
	keyPEM, err := os.ReadFile(c.files.KeyFile)
	if err != nil {
		return false, fmt.Errorf("cannot load the TLS key %s: %w", c.files.KeyFile, err)
	}
	c.mu.RLock()
	same := c.cert != nil && bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM)
	c.mu.RUnlock()
	if same {
		return false, nil
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return false, fmt.Errorf("cannot load the TLS certificate %s with key %s: %w", c.files.CertFile, c.files.KeyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return false, fmt.Errorf("cannot parse the TLS certificate %s: %w", c.files.CertFile, err)
		}
	}
	now := time.Now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return false, fmt.Errorf("the TLS certificate %s is valid from %s to %s, not now", c.files.CertFile,
			leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	c.mu.Lock()
	c.cert, c.certPEM, c.keyPEM = &cert, certPEM, keyPEM
	c.mu.Unlock()
	return true, nil
}

// ReloadClientCA reads the client CA bundle again (when one is
// configured) and reports whether it changed. A bundle that cannot be
// read or holds no certificate is refused, and the old one stays.
func (c *Certificate) ReloadClientCA() (changed bool, err error) {
	if c.files.ClientCAFile == "" {
		return false, nil
	}
	pem, err := os.ReadFile(c.files.ClientCAFile)
	if err != nil {
		return false, fmt.Errorf("cannot read the client CA bundle: %w", err)
	}
	c.mu.RLock()
	same := c.pool != nil && bytes.Equal(pem, c.caPEM)
	c.mu.RUnlock()
	if same {
		return false, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return false, fmt.Errorf("the client CA bundle %s holds no PEM certificate", c.files.ClientCAFile)
	}
	c.mu.Lock()
	c.pool, c.caPEM = pool, pem
	c.mu.Unlock()
	if base := c.conf.Load(); base != nil {
		c.conf.Store(c.withPool(base, pool))
	}
	return true, nil
}

// Files returns the files the certificate is read from.
func (c *Certificate) Files() TLSFiles { return c.files }

// get implements tls.Config.GetCertificate.
func (c *Certificate) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, nil
}

func (c *Certificate) withPool(base *tls.Config, pool *x509.CertPool) *tls.Config {
	cfg := base.Clone()
	cfg.ClientCAs = pool
	return cfg
}

// TLSConfig returns the server's TLS configuration: TLS 1.2 or later, the
// certificate (reloadable), and, with a client CA, client certificates
// verified against it when given (reloadable: each handshake uses the
// bundle loaded last). A client certificate is not required at the
// handshake, so that probes reach /healthz; the webhook refuses requests
// with neither a verified certificate nor a bearer token.
func (c *Certificate) TLSConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.get, NextProtos: []string{"h2", "http/1.1"}}
	if c.files.ClientCAFile == "" {
		return cfg, nil
	}
	c.mu.RLock()
	pool := c.pool
	c.mu.RUnlock()
	if pool == nil {
		return nil, fmt.Errorf("the client CA bundle %s is not loaded", c.files.ClientCAFile)
	}
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	cfg.ClientCAs = pool
	if c.conf.Load() == nil {
		c.conf.Store(c.withPool(cfg, pool))
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return c.conf.Load(), nil }
	return cfg, nil
}
