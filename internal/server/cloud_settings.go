package server

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/spf13/pflag"
)

// FirehoseSettings are the keys of the Firehose endpoint (key firehose).
type FirehoseSettings struct {
	// AccessKeys are the access keys accepted, each a value, env:NAME or
	// file:PATH. The endpoint is served when one is set.
	AccessKeys []string `yaml:"access_keys"`
	// MaxBodyBytes limits a request body.
	MaxBodyBytes alert.ByteSize `yaml:"max_body_bytes"`
}

// PubSubSettings are the keys of the Pub/Sub push endpoint (key
// pubsub_push).
type PubSubSettings struct {
	// Audience is the audience of the push subscription's tokens; the
	// endpoint is served when it is set, or when AllowUnsigned is.
	Audience string `yaml:"audience"`
	// JWKSURL and JWKSFile say where the signing keys are (default:
	// Google's keys, GoogleJWKSURL).
	JWKSURL  string `yaml:"jwks_url"`
	JWKSFile string `yaml:"jwks_file"`
	// Issuers are the token issuers accepted (default GoogleIssuers).
	Issuers []string `yaml:"issuers"`
	// ServiceAccounts, if set, are the service accounts whose tokens are
	// accepted.
	ServiceAccounts []string `yaml:"service_accounts"`
	// AllowUnsigned takes pushes without a token.
	AllowUnsigned bool `yaml:"allow_unsigned"`
}

func (s *Settings) registerCloudFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&s.Firehose.AccessKeys, "firehose-access-key", s.Firehose.AccessKeys, "serve the Kinesis Data Firehose endpoint (/firehose) and accept this access `KEY` (a value, env:NAME or file:PATH; repeatable) (key firehose.access_keys)")
	fs.Var(&s.Firehose.MaxBodyBytes, "firehose-max-body-bytes", "size limit of one Firehose request body (key firehose.max_body_bytes)")
	fs.StringVar(&s.PubSub.Audience, "pubsub-audience", s.PubSub.Audience, "serve the Pub/Sub push endpoint (/pubsub), taking OIDC tokens for this `AUDIENCE` (key pubsub_push.audience)")
	fs.StringVar(&s.PubSub.JWKSURL, "pubsub-jwks-url", s.PubSub.JWKSURL, "`URL` of the keys that sign push tokens (default Google's) (key pubsub_push.jwks_url)")
	fs.StringVar(&s.PubSub.JWKSFile, "pubsub-jwks-file", s.PubSub.JWKSFile, "`FILE` holding the keys that sign push tokens (key pubsub_push.jwks_file)")
	fs.StringArrayVar(&s.PubSub.Issuers, "pubsub-issuer", s.PubSub.Issuers, "token `ISSUER` accepted (repeatable; default Google's) (key pubsub_push.issuers)")
	fs.StringArrayVar(&s.PubSub.ServiceAccounts, "pubsub-service-account", s.PubSub.ServiceAccounts, "accept only tokens of this service account `EMAIL` (repeatable) (key pubsub_push.service_accounts)")
	fs.BoolVar(&s.PubSub.AllowUnsigned, "pubsub-allow-unsigned", s.PubSub.AllowUnsigned, "take pushes without a token, for a subscription without authentication behind a proxy that checks it (key pubsub_push.allow_unsigned)")
}

// FirehoseEnabled reports whether the Firehose endpoint is configured.
func (s *Settings) FirehoseEnabled() bool { return len(s.Firehose.AccessKeys) > 0 }

// PubSubEnabled reports whether the Pub/Sub push endpoint is configured.
func (s *Settings) PubSubEnabled() bool { return s.PubSub.Audience != "" || s.PubSub.AllowUnsigned }

// validateCloud checks the endpoints' keys without opening anything.
func (s *Settings) validateCloud() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, k := range s.Firehose.AccessKeys {
		if k == "" {
			bad("firehose.access_keys: empty key")
		}
	}
	if s.Firehose.MaxBodyBytes <= 0 {
		bad("firehose.max_body_bytes: must be positive")
	}
	p := &s.PubSub
	if p.JWKSURL != "" && p.JWKSFile != "" {
		bad("pubsub_push: set jwks_url or jwks_file, not both")
	}
	if p.JWKSURL != "" {
		if u, err := url.Parse(p.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("pubsub_push.jwks_url: %q is not an http(s) URL", p.JWKSURL)
		}
	}
	if p.Audience == "" && (p.JWKSURL != "" || p.JWKSFile != "" || len(p.Issuers) > 0 || len(p.ServiceAccounts) > 0) {
		bad("pubsub_push: audience is required to verify push tokens")
	}
	return errors.Join(errs...)
}

// cloudConfig builds the endpoints' configuration: access keys resolved,
// the JWKS file read.
func (s *Settings) cloudConfig() (*FirehoseConfig, *PubSubConfig, error) {
	var fh *FirehoseConfig
	if s.FirehoseEnabled() {
		fh = &FirehoseConfig{MaxBodyBytes: int64(s.Firehose.MaxBodyBytes)}
		for _, ref := range s.Firehose.AccessKeys {
			k, err := alert.ResolveSecret(ref)
			if err != nil {
				return nil, nil, fmt.Errorf("firehose.access_keys: %w", err)
			}
			fh.AccessKeys = append(fh.AccessKeys, k)
		}
	}
	var ps *PubSubConfig
	if s.PubSubEnabled() {
		ps = &PubSubConfig{AllowUnsigned: s.PubSub.AllowUnsigned}
		if s.PubSub.Audience != "" {
			oc := OIDCConfig{Audience: s.PubSub.Audience, Issuers: s.PubSub.Issuers, JWKSURL: s.PubSub.JWKSURL,
				JWKSFile: s.PubSub.JWKSFile, Emails: s.PubSub.ServiceAccounts}
			if oc.JWKSURL == "" && oc.JWKSFile == "" {
				oc.JWKSURL = GoogleJWKSURL
			}
			v, err := NewOIDCVerifier(oc)
			if err != nil {
				return nil, nil, fmt.Errorf("pubsub_push: %w", err)
			}
			ps.OIDC = v
		}
	}
	return fh, ps, nil
}
