package nats

import (
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	f := func(raw, wantErr string) *Config {
		t.Helper()
		c, err := ParseURL(raw)
		if (wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("%s: error %v, want %q", raw, err, wantErr)
		}
		return c
	}
	c := f("nats://127.0.0.1:4222/AUDIT", "")
	if c.Dial.URL != "nats://127.0.0.1:4222" || c.Stream != "AUDIT" || c.Consumer != DefaultConsumer || c.Batch != DefaultBatch ||
		c.MaxWait != DefaultMaxWait || c.AckWait != DefaultAckWait || c.Name() != "AUDIT/kanon" {
		t.Fatalf("%+v", c)
	}
	c = f("nats://a:4222,b:4223/AUDIT?consumer=k2&subject=audit.eu.>&token=env:NATS_TOKEN&tls=true&ca_file=/ca.pem&cluster=eu-1&batch=10&max_wait=2s&ack_wait=1m", "")
	if c.Dial.URL != "nats://a:4222,nats://b:4223" || c.Consumer != "k2" || c.Subject != "audit.eu.>" || c.Dial.Token != "env:NATS_TOKEN" ||
		!c.Dial.TLS || c.Dial.CAFile != "/ca.pem" || c.Cluster != "eu-1" || c.Batch != 10 || c.MaxWait != 2*time.Second || c.AckWait != time.Minute {
		t.Fatalf("%+v", c)
	}
	c = f("nats://h:1/S?user=kanon&password=file:/run/secrets/p", "")
	if c.Dial.Username != "kanon" || c.Dial.Password != "file:/run/secrets/p" {
		t.Fatalf("%+v", c)
	}
	f("nats://h:1/S?creds=/etc/kanon/nats.creds", "")
	f("nats://h:1/S?nope=1&batch=2", `unknown parameter "nope"`)
	f("nats://h:1/S?batch=0", "batch")
	f("nats://h:1/S?batch=x", "batch")
	f("nats://h:1/S?max_wait=-1s", "max_wait")
	f("nats://h:1/S?ack_wait=soon", "ack_wait")
	f("nats://h:1/S?tls=maybe", "tls")
	f("nats://h:1/S?user=kanon", "go together")
	f("nats://h:1/S?token=x&creds=/c", "exclude")
	f("nats://h:1/S?batch=1&batch=2", "given 2 times")
	f("nats://h:1/S?consumer=a.b", "consumer")
	f("nats://h:1/S?subject=", "subject is empty")
	f("nats://u:p@h:1/S", "credentials do not go in the URL")
	f("nats://h:1/", "want nats://")
	f("nats://h:1", "want nats://")
	f("nats://h:1/a.b", "want nats://")
	f("nats://h:1,/S", "empty server")
	f("kafka://h:1/S", "not a nats")
	if _, err := ParseURL("nats://h:1/S?token=s3cret&bad=1"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error shows the token: %v", err)
	}
}

// ParseURL never panics, and what it accepts names a stream and a
// consumer and has usable bounds.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"nats://127.0.0.1:4222/AUDIT", "nats://a:1,b:2/S?consumer=k&batch=3&max_wait=1s",
		"nats://h/S?user=u&password=env:P", "nats://%zz/S", "nats://h:1/S?%", "nats:///"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := ParseURL(raw)
		if err != nil {
			return
		}
		if c.Stream == "" || c.Consumer == "" || c.Batch <= 0 || c.MaxWait <= 0 || c.AckWait <= 0 || c.Dial.URL == "" {
			t.Fatalf("%q: accepted %+v", raw, c)
		}
	})
}
