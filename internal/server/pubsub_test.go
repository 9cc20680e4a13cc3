package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/kanon-dev/kanon/internal/run"
)

const (
	testAudience = "https://kanon.example.com/pubsub"
	testPusher   = "pubsub-push@kanon-test.iam.gserviceaccount.com"
)

// issuer signs ID tokens as Google does for push subscriptions, and
// serves its keys from a local JWKS endpoint.
type issuer struct {
	key     *rsa.PrivateKey
	kid     string
	jwksURL string
	fetches atomic.Int32
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key, kid: "test-key-1"}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: is.kid, Algorithm: "RS256", Use: "sig"}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	is.jwksURL = srv.URL
	return is
}

// token is an ID token; change edits its claims before signing.
type tokenClaims struct {
	jwt.Claims
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
}

func (is *issuer) sign(t *testing.T, key *rsa.PrivateKey, kid string, change func(*tokenClaims)) string {
	t.Helper()
	now := time.Now()
	c := tokenClaims{Claims: jwt.Claims{Issuer: "https://accounts.google.com", Audience: jwt.Audience{testAudience},
		Subject: "1234567890", IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour))},
		Email: testPusher, EmailVerified: true}
	if change != nil {
		change(&c)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (is *issuer) token(t *testing.T, change func(*tokenClaims)) string {
	return is.sign(t, is.key, is.kid, change)
}

// withPubSub serves the push endpoint, verifying tokens of is.
func withPubSub(t *testing.T, is *issuer, allowUnsigned bool) serverOpt {
	return func(_ *run.Config, sc *Config) {
		v, err := NewOIDCVerifier(OIDCConfig{Audience: testAudience, JWKSURL: is.jwksURL, Emails: []string{testPusher}})
		if err != nil {
			t.Fatal(err)
		}
		sc.PubSub = &PubSubConfig{OIDC: v, AllowUnsigned: allowUnsigned}
	}
}

// pushEnvelope is the body of a push of data.
func pushEnvelope(t testing.TB, msgID string, data []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"message": map[string]any{"data": base64.StdEncoding.EncodeToString(data), "messageId": msgID, "message_id": msgID,
			"publishTime": "2021-04-29T08:19:22.123Z", "publish_time": "2021-04-29T08:19:22.123Z",
			"attributes": map[string]string{"logging.googleapis.com/timestamp": "2021-04-29T08:19:21.5Z"}},
		"subscription": "projects/kanon-test/subscriptions/gke-audit-push",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// gkeEntries are the LogEntry objects of the GKE sample, one JSON value
// each.
func gkeEntries(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile("../../../shared/anchors/cloud-samples/gke-logentry.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, r := range raw {
		var buf bytes.Buffer
		if err := json.Compact(&buf, r); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out
}

// Only pushes with a valid token of the configured issuer, audience and
// service account are let in: 401 for no token or a token that is not
// valid (signature, key, expiry), 403 for a valid token not for us.
func TestPubSubPushAuthentication(t *testing.T) {
	is := newIssuer(t)
	ts := startServer(t, withPubSub(t, is, false))
	c := ts.client("")
	url := ts.url + "/pubsub"
	entry := gkeEntries(t)[2]
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		token string
		want  int
	}{
		{"valid", is.token(t, nil), 200},
		{"no token", "", 401},
		{"not a JWT", "not.a.jwt", 401},
		{"signed by another key", is.sign(t, other, is.kid, nil), 401},
		{"unknown key id", is.sign(t, other, "rotated-away", nil), 401},
		{"expired", is.token(t, func(c *tokenClaims) {
			c.Expiry = jwt.NewNumericDate(time.Now().Add(-10 * time.Minute))
			c.IssuedAt = jwt.NewNumericDate(time.Now().Add(-70 * time.Minute))
		}), 401},
		{"no expiry", is.token(t, func(c *tokenClaims) { c.Expiry = nil }), 401},
		{"wrong issuer", is.token(t, func(c *tokenClaims) { c.Issuer = "https://evil.example.com" }), 403},
		{"wrong audience", is.token(t, func(c *tokenClaims) { c.Audience = jwt.Audience{"https://other.example.com/push"} }), 403},
		{"other service account", is.token(t, func(c *tokenClaims) { c.Email = "intruder@other.iam.gserviceaccount.com" }), 403},
		{"unverified email", is.token(t, func(c *tokenClaims) { c.EmailVerified = false }), 403},
	}
	for i, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			var hdr []string
			if cs.token != "" {
				hdr = []string{"Authorization", "Bearer " + cs.token}
			}
			r := mustPost(t, c, url, pushEnvelope(t, fmt.Sprintf("m-%d", i), entry), hdr...)
			if r.code != cs.want {
				t.Fatalf("status %d (%s), want %d", r.code, r.body, cs.want)
			}
		})
	}
	if n := ts.d.Stats().Records; n != 1 {
		t.Fatalf("%d messages read, want only the valid one", n)
	}
	// The keys were fetched once at the first push, and once more for the
	// unknown key id (at most once per refresh interval).
	if n := is.fetches.Load(); n > 2 {
		t.Fatalf("the JWKS was fetched %d times", n)
	}
}

// Unsigned pushes are refused unless explicitly allowed; a push that does
// carry a token has it verified still.
func TestPubSubPushUnsigned(t *testing.T) {
	is := newIssuer(t)
	ts := startServer(t, withPubSub(t, is, true))
	c := ts.client("")
	entry := gkeEntries(t)[2]
	if r := mustPost(t, c, ts.url+"/pubsub", pushEnvelope(t, "u-1", entry)); r.code != 200 {
		t.Fatalf("unsigned push allowed: %d %s", r.code, r.body)
	}
	bad := is.token(t, func(c *tokenClaims) { c.Audience = jwt.Audience{"x"} })
	if r := mustPost(t, c, ts.url+"/pubsub", pushEnvelope(t, "u-2", entry), "Authorization", "Bearer "+bad); r.code != 403 {
		t.Fatalf("a wrong token on an endpoint that allows unsigned pushes: %d", r.code)
	}
	if _, err := New(Config{Driver: ts.d, PubSub: &PubSubConfig{}}); err == nil {
		t.Fatal("a push endpoint with neither a verifier nor unsigned pushes allowed was built")
	}
}

// The GKE sample pushed one entry per message — out of order, a bad
// message among them, a message pushed twice under its id — raises the
// alerts a scan of the same entries raises, once each, with the cluster
// named by the entries.
func TestPubSubPushAlertsMatchScan(t *testing.T) {
	is := newIssuer(t)
	ts := startServer(t, withPubSub(t, is, false))
	c := ts.client("")
	url := ts.url + "/pubsub/fallback-cluster"
	entries := gkeEntries(t)
	order := []int{3, 0, 5, 1, 4, 2} // out of order
	var delivered [][]byte
	tok := "Bearer " + is.token(t, nil)
	for k, i := range order {
		delivered = append(delivered, entries[i])
		r := mustPost(t, c, url, pushEnvelope(t, fmt.Sprintf("1000%d", i), entries[i]), "Authorization", tok)
		if r.code != 200 {
			t.Fatalf("message %d: %d %s", i, r.code, r.body)
		}
		if k == 2 {
			// A bad message in the middle costs only itself: it is
			// acknowledged (pushed again it would fail again), counted
			// as bad.
			r := mustPost(t, c, url, pushEnvelope(t, "bad-1", []byte(`{"insertId":"x","protoPayload":`)), "Authorization", tok)
			if r.code != 200 || !strings.Contains(r.body, `"bad":1`) {
				t.Fatalf("bad message: %d %s", r.code, r.body)
			}
		}
	}
	before := ts.d.Stats()
	if before.Bad != 1 {
		t.Fatalf("%d bad records, want 1", before.Bad)
	}
	// Pushed again (the answer was lost): acknowledged, not evaluated.
	if r := mustPost(t, c, url, pushEnvelope(t, "10003", entries[3]), "Authorization", tok); r.code != 200 {
		t.Fatalf("redelivery: %d %s", r.code, r.body)
	}
	if st := ts.d.Stats(); st.Records != before.Records {
		t.Fatalf("a message pushed again under its id was read again")
	}
	// Malformed envelopes.
	for _, body := range []string{`{"message":{"data":"e30=","messageId":""}}`, `{"message":{"data":"%%%","messageId":"9"}}`, `[`} {
		if r := mustPost(t, c, url, []byte(body), "Authorization", tok); r.code != 400 {
			t.Fatalf("envelope %s: %d", body, r.code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.d.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, want := distinctIDs(ts.col.Alerts), scanIDs(t, delivered)
	if len(want) == 0 || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("push alerts %d, scan alerts %d:\n%v\n%v", len(got), len(want), got, want)
	}
	checkCluster(t, ts.col.Alerts, "gcp", "analysis-cluster", "example-cluster")
}
