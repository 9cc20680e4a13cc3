package alert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// httpFormat is what an HTTP output sends for a batch of alerts and how
// it reads the receiver's answer; an HTTP output is a format and an
// endpoint on the one HTTP transport.
type httpFormat struct {
	contentType string
	// join returns the request body of a batch; nil sends the body of
	// the batch's one entry (batches of one).
	join func(batch []entry) []byte
	// items, if set, reads the outcome of each entry from the body of a
	// 2xx response into res; an error retries the whole batch.
	items func(body []byte, batch []entry, res []error) error
	// maxResponse bounds the response body read (0: 64KiB).
	maxResponse int64
}

// httpConfig is the endpoint and credentials of an HTTP output.
type httpConfig struct {
	URL                string
	Headers            map[string]string
	Timeout            time.Duration
	CAFile             string
	InsecureSkipVerify bool
	// Token, if set, is sent as "Authorization: <TokenScheme> <token>".
	Token, TokenScheme string
	// Username and Password, if set, are sent as basic authentication.
	Username, Password string
}

type httpHeader struct {
	name string
	val  *secretValue
}

// httpTransport POSTs batches to one URL.
type httpTransport struct {
	typ, name string
	url       string
	client    *http.Client
	timeout   time.Duration
	headers   []httpHeader
	token     *secretValue
	scheme    string
	user      string
	pass      *secretValue
	format    httpFormat
}

// newHTTPTransport resolves the URL, header values and credentials
// (ResolveSecret) and builds the client. The URL must be http or https.
func newHTTPTransport(typ, name string, c httpConfig, f httpFormat) (*httpTransport, error) {
	errf := func(format string, args ...any) error {
		return fmt.Errorf("%s output %q: "+format, append([]any{typ, name}, args...)...)
	}
	if c.URL == "" {
		return nil, errf("no url")
	}
	u, err := ResolveSecret(c.URL)
	if err != nil {
		return nil, errf("url: %w", err)
	}
	if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
		// The URL may be a secret (Slack's): never print it.
		return nil, errf("url: not an http or https URL with a host")
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if f.maxResponse <= 0 {
		f.maxResponse = maxResponseBodyBytes
	}
	tc, err := tlsClientConfig(c.CAFile, c.InsecureSkipVerify)
	if err != nil {
		return nil, errf("%w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tc != nil {
		tr.TLSClientConfig = tc
	}
	t := &httpTransport{typ: typ, name: name, url: u, client: &http.Client{Transport: tr}, timeout: c.Timeout, format: f}
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		v, err := newSecretValue(c.Headers[k])
		if err != nil {
			return nil, errf("headers: %s: %w", k, err)
		}
		t.headers = append(t.headers, httpHeader{name: k, val: v})
	}
	if c.Token != "" {
		if t.token, err = newSecretValue(c.Token); err != nil {
			return nil, errf("token: %w", err)
		}
		t.scheme = c.TokenScheme
		if t.scheme == "" {
			t.scheme = "Bearer"
		}
	}
	if c.Username != "" || c.Password != "" {
		t.user = c.Username
		if t.pass, err = newSecretValue(c.Password); err != nil {
			return nil, errf("password: %w", err)
		}
	}
	return t, nil
}

// tlsClientConfig returns the TLS configuration for a CA bundle and the
// insecure flag; nil when neither is set (the system roots).
func tlsClientConfig(caFile string, insecure bool) (*tls.Config, error) {
	if caFile == "" && !insecure {
		return nil, nil
	}
	tc := &tls.Config{InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // asked for, for tests
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// batchText names the alerts of a batch in errors.
func batchText(batch []entry) string {
	if len(batch) == 1 {
		return "alert " + batch[0].id
	}
	return fmt.Sprintf("%d alerts (%s to %s)", len(batch), batch[0].id, batch[len(batch)-1].id)
}

func (t *httpTransport) errorf(format string, args ...any) error {
	return fmt.Errorf("%s output %q: "+format, append([]any{t.typ, t.name}, args...)...)
}

func fill(res []error, err error) {
	for i := range res {
		res[i] = err
	}
}

// deliver POSTs the batch. Responses 2xx deliver it (or, for formats
// with per-item answers, what the answer says); 408, 425, 429, 5xx and
// the authentication failures 401 and 403 (a credential being rotated)
// are retried; other 4xx give the batch up.
func (t *httpTransport) deliver(ctx context.Context, batch []entry, res []error) time.Duration {
	var body []byte
	if t.format.join != nil {
		body = t.format.join(batch)
	} else {
		body = batch[0].body
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		fill(res, &permanentError{t.errorf("cannot build request: %w", err)})
		return 0
	}
	req.Header.Set("Content-Type", t.format.contentType)
	req.Header.Set("User-Agent", "kanon")
	if len(batch) == 1 {
		req.Header.Set("Idempotency-Key", batch[0].id)
	}
	for _, h := range t.headers {
		v, err := h.val.get()
		if err != nil {
			fill(res, t.errorf("headers: %s: %w", h.name, err))
			return 0
		}
		req.Header.Set(h.name, v)
	}
	if t.token != nil {
		v, err := t.token.get()
		if err != nil {
			fill(res, t.errorf("token: %w", err))
			return 0
		}
		req.Header.Set("Authorization", t.scheme+" "+v)
	}
	if t.pass != nil {
		v, err := t.pass.get()
		if err != nil {
			fill(res, t.errorf("password: %w", err))
			return 0
		}
		req.SetBasicAuth(t.user, v)
	}
	what := batchText(batch)
	resp, err := t.client.Do(req)
	if err != nil {
		fill(res, t.errorf("cannot deliver %s: %w", what, redactURL(err)))
		return 0
	}
	msg, rerr := io.ReadAll(io.LimitReader(resp.Body, t.format.maxResponse))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBodyBytes))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		clear(res)
		if t.format.items == nil {
			return 0
		}
		if rerr != nil {
			fill(res, t.errorf("cannot read the answer for %s: %w", what, rerr))
			return 0
		}
		if err := t.format.items(msg, batch, res); err != nil {
			fill(res, t.errorf("%s: %w", what, err))
		}
		return 0
	}
	err = t.errorf("cannot deliver %s: %s: %s", what, resp.Status, clipRunes(string(bytes.TrimSpace(msg)), 200))
	var wait time.Duration
	switch c := resp.StatusCode; {
	case c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable:
		wait = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case c == http.StatusRequestTimeout || c == http.StatusTooEarly || c >= 500,
		c == http.StatusUnauthorized || c == http.StatusForbidden:
	case c >= 400:
		err = &permanentError{err}
	}
	// 1xx and 3xx that were not followed are retried.
	fill(res, err)
	return wait
}

func (t *httpTransport) close() error {
	t.client.CloseIdleConnections()
	return nil
}

// redactURL removes the URL, which may hold a secret (Slack's webhook
// URLs do), from a client error.
func redactURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// retryAfter parses a Retry-After header (seconds or an HTTP date); 0 if
// absent or invalid.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if n, err := strconv.Atoi(h); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// joinLines concatenates the bodies of a batch (NDJSON and formats that
// take concatenated JSON objects).
func joinLines(batch []entry) []byte {
	n := 0
	for _, e := range batch {
		n += len(e.body)
	}
	b := make([]byte, 0, n)
	for _, e := range batch {
		b = append(b, e.body...)
	}
	return b
}

// joinJSON returns prefix, the bodies separated by commas, and suffix.
func joinJSON(prefix string, batch []entry, suffix string) []byte {
	n := len(prefix) + len(suffix) + len(batch)
	for _, e := range batch {
		n += len(e.body)
	}
	b := make([]byte, 0, n)
	b = append(b, prefix...)
	for i, e := range batch {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e.body...)
	}
	return append(b, suffix...)
}

// tlsDefaultConfig is the TLS configuration of a connection that asks
// for TLS without a CA bundle: the system roots.
func tlsDefaultConfig() *tls.Config { return &tls.Config{MinVersion: tls.VersionTLS12} }

// TLSClientConfig is the TLS configuration of a client that trusts the
// CA bundle caFile (PEM) or, with insecure, any certificate; nil when
// neither is set (the system roots). Outputs and sources share it.
func TLSClientConfig(caFile string, insecure bool) (*tls.Config, error) {
	return tlsClientConfig(caFile, insecure)
}
