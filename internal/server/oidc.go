package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Google's OIDC tokens: their issuers and the keys that sign them.
const GoogleJWKSURL = "https://www.googleapis.com/oauth2/v3/certs"

// GoogleIssuers are the iss values of the ID tokens Google signs (Pub/Sub
// push authentication uses both).
var GoogleIssuers = []string{"https://accounts.google.com", "accounts.google.com"}

// Errors of OIDCVerifier.Verify; test with errors.Is.
var (
	// ErrTokenNotForUs is a token whose signature and times are valid but
	// that was not issued for this endpoint: another issuer, audience or
	// service account (403).
	ErrTokenNotForUs = errors.New("token not issued for this endpoint")
	// ErrInvalidToken is a token that is not a valid signed JWT, is signed
	// by an unknown key or with a bad signature, or is expired (401).
	ErrInvalidToken = errors.New("invalid token")
)

// DefaultJWKSRefresh is the least time between two fetches of the JWKS
// (a token signed by an unknown key makes the verifier fetch it again).
const DefaultJWKSRefresh = time.Minute

// OIDCConfig configures an OIDCVerifier.
type OIDCConfig struct {
	// Audience is the aud claim wanted: the push subscription's audience
	// (by default, Pub/Sub uses the push endpoint's URL). Required.
	Audience string
	// Issuers are the iss values accepted (nil: GoogleIssuers).
	Issuers []string
	// JWKSURL is where the signing keys are fetched from (a JSON Web Key
	// Set: GoogleJWKSURL for Google's tokens); JWKSFile is a file holding
	// them. Exactly one is required.
	JWKSURL  string
	JWKSFile string
	// Emails, if set, are the service accounts whose tokens are accepted
	// (the email claim, which must be verified).
	Emails []string
	// Client fetches JWKSURL (nil: a client with a 10 s timeout).
	Client *http.Client
	// Refresh is the least time between two reads of the keys
	// (0: DefaultJWKSRefresh).
	Refresh time.Duration
	// Leeway is the clock skew allowed on exp, nbf and iat (0: a minute).
	Leeway time.Duration
}

// OIDCVerifier verifies OIDC ID tokens (JWTs) against a JSON Web Key Set:
// signature, issuer, audience, times and, optionally, the service
// account. It is safe for concurrent use.
type OIDCVerifier struct {
	cfg OIDCConfig

	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	read    time.Time // when the keys were last read
	loadErr error
}

// NewOIDCVerifier returns a verifier for cfg. A JWKS file is read at
// once; a JWKS URL is fetched when the first token comes.
func NewOIDCVerifier(cfg OIDCConfig) (*OIDCVerifier, error) {
	if cfg.Audience == "" {
		return nil, errors.New("OIDC: no audience")
	}
	if (cfg.JWKSURL == "") == (cfg.JWKSFile == "") {
		return nil, errors.New("OIDC: set one of a JWKS URL and a JWKS file")
	}
	if len(cfg.Issuers) == 0 {
		cfg.Issuers = GoogleIssuers
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultJWKSRefresh
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = time.Minute
	}
	v := &OIDCVerifier{cfg: cfg}
	if cfg.JWKSFile != "" {
		set, err := v.load(context.Background())
		if err != nil {
			return nil, err
		}
		v.keys, v.read = set, time.Now()
	}
	return v, nil
}

// load reads the key set from the file or the URL.
func (v *OIDCVerifier) load(ctx context.Context) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	var data []byte
	where := v.cfg.JWKSFile
	if where != "" {
		b, err := os.ReadFile(where)
		if err != nil {
			return set, fmt.Errorf("OIDC: cannot read the JWKS: %w", err)
		}
		data = b
	} else {
		where = v.cfg.JWKSURL
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
		if err != nil {
			return set, fmt.Errorf("OIDC: JWKS URL %s: %w", where, err)
		}
		resp, err := v.cfg.Client.Do(req)
		if err != nil {
			return set, fmt.Errorf("OIDC: cannot fetch the JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return set, fmt.Errorf("OIDC: cannot fetch the JWKS from %s: status %d", where, resp.StatusCode)
		}
		if data, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20)); err != nil {
			return set, fmt.Errorf("OIDC: cannot fetch the JWKS from %s: %w", where, err)
		}
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return set, fmt.Errorf("OIDC: the JWKS of %s is not a JSON Web Key Set: %w", where, err)
	}
	if len(set.Keys) == 0 {
		return set, fmt.Errorf("OIDC: the JWKS of %s holds no key", where)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return set, fmt.Errorf("OIDC: the JWKS of %s holds a private key (kid %q): it must hold public keys only", where, k.KeyID)
		}
	}
	return set, nil
}

// lookup returns the keys that may have signed a token with key id kid,
// reading the set again (at most once per Refresh) when none matches.
func (v *OIDCVerifier) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	find := func() []jose.JSONWebKey {
		if kid == "" {
			return v.keys.Keys
		}
		return v.keys.Key(kid)
	}
	if ks := find(); len(ks) > 0 {
		return ks, nil
	}
	if time.Since(v.read) >= v.cfg.Refresh || v.read.IsZero() {
		set, err := v.load(ctx)
		v.read = time.Now()
		v.loadErr = err
		if err == nil {
			v.keys = set
		}
	}
	if ks := find(); len(ks) > 0 {
		return ks, nil
	}
	if v.loadErr != nil {
		return nil, fmt.Errorf("%w: no key %q: %w", ErrInvalidToken, kid, v.loadErr)
	}
	return nil, fmt.Errorf("%w: signed by an unknown key %q", ErrInvalidToken, kid)
}

// signingAlgs are the algorithms accepted: those of OIDC providers'
// asymmetric keys (never HMAC or none).
var signingAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.ES512}

// idClaims are the claims of a Google ID token read beside the
// registered ones.
type idClaims struct {
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
}

// Verify checks the token raw at now. Errors wrap ErrInvalidToken or
// ErrTokenNotForUs.
func (v *OIDCVerifier) Verify(ctx context.Context, raw string, now time.Time) error {
	tok, err := jwt.ParseSigned(raw, signingAlgs)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if len(tok.Headers) != 1 {
		return fmt.Errorf("%w: %d signatures, want 1", ErrInvalidToken, len(tok.Headers))
	}
	keys, err := v.lookup(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return err
	}
	var std jwt.Claims
	var id idClaims
	verified := false
	for _, k := range keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if err := tok.Claims(k.Key, &std, &id); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return fmt.Errorf("%w: bad signature", ErrInvalidToken)
	}
	if std.Expiry == nil {
		return fmt.Errorf("%w: no expiry (exp)", ErrInvalidToken)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Time: now}, v.cfg.Leeway); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !slices.Contains(v.cfg.Issuers, std.Issuer) {
		return fmt.Errorf("%w: issuer %q", ErrTokenNotForUs, std.Issuer)
	}
	if !std.Audience.Contains(v.cfg.Audience) {
		return fmt.Errorf("%w: audience %q, want %q", ErrTokenNotForUs, []string(std.Audience), v.cfg.Audience)
	}
	if len(v.cfg.Emails) > 0 && (!id.EmailVerified || !slices.Contains(v.cfg.Emails, id.Email)) {
		return fmt.Errorf("%w: service account %q (verified %t)", ErrTokenNotForUs, id.Email, id.EmailVerified)
	}
	return nil
}
