package kafkaopt

import (
	"errors"
	"strings"
	"testing"
)

func TestBrokers(t *testing.T) {
	for _, ok := range []string{"b:9092", "127.0.0.1:1", "[::1]:9093", "ns.servicebus.windows.net:9093", "k_0.x-y:65535"} {
		if err := ValidBroker(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"b", ":9092", "b:", "b:0", "b:65536", "b:09", "b:+9", "b:x", " b:1", "b c:1", "b%20:1", "b/1:2"} {
		if err := ValidBroker(bad); err == nil {
			t.Errorf("%q taken", bad)
		}
	}
	bs, err := SplitBrokers("a:1, b:2")
	if err != nil || len(bs) != 2 || bs[1] != "b:2" {
		t.Fatalf("%v %v", bs, err)
	}
	if _, err := SplitBrokers("a:1,,b:2"); err == nil {
		t.Fatal("an empty broker taken")
	}
}

func TestOpts(t *testing.T) {
	if _, err := (&Config{}).Opts(); err == nil {
		t.Error("no broker taken")
	}
	if _, err := (&Config{Brokers: []string{"b:1"}, SASL: SASLPlain, Username: "u"}).Opts(); err == nil {
		t.Error("SASL without a password taken")
	}
	pass := func() (string, error) { return "", errors.New("unset") }
	for _, m := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		if _, err := (&Config{Brokers: []string{"b:1"}, TLS: true, SASL: m, Username: "u", Password: pass}).Opts(); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
	_, err := (&Config{Brokers: []string{"b:1"}, SASL: "gssapi", Username: "u", Password: pass}).Opts()
	if err == nil || !strings.Contains(err.Error(), `"gssapi" is not one of plain, scram-sha-256, scram-sha-512`) {
		t.Errorf("gssapi: %v", err)
	}
}
