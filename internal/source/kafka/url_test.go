package kafka

import (
	"reflect"
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
	c := f("kafka://b1:9092,b2:9093/audit?group=kanon", "")
	if !reflect.DeepEqual(c, &Config{Brokers: []string{"b1:9092", "b2:9093"}, Topic: "audit", Group: "kanon", Start: DefaultStart, MaxRecords: DefaultMaxRecords}) {
		t.Fatalf("%+v", c)
	}
	c = f("kafka://[::1]:9092,[2001:db8::7]:9093,b3:9094/audit?group=kanon", "")
	if !reflect.DeepEqual(c.Brokers, []string{"[::1]:9092", "[2001:db8::7]:9093", "b3:9094"}) {
		t.Fatalf("IPv6 brokers: %+v", c.Brokers)
	}
	if back, err := ParseURL(c.URL()); err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("%s: %+v %v", c.URL(), back, err)
	}
	f("kafka://[::1:9092/audit?group=g", `broker "[::1:9092" is not HOST:PORT`)
	f("kafka://b:9092,/audit?group=g", `broker "" is not HOST:PORT`)
	c = f("kafka://b:9093/audit?group=kanon&tls=true&ca_file=/ca.pem&sasl=scram-sha-512&username=kanon&password_env=PW&cluster=prod&start=latest&max_records=10&session_timeout=10s", "")
	if !c.TLS || c.CAFile != "/ca.pem" || c.SASL != "scram-sha-512" || c.Username != "kanon" || c.PasswordEnv != "PW" ||
		c.Cluster != "prod" || c.Start != "latest" || c.MaxRecords != 10 || c.SessionTimeout != 10*time.Second {
		t.Fatalf("%+v", c)
	}
	f("kafka://b:9092/audit", "missing group")
	f("kafka://b:9092/audit?group=g&nope=1", `unknown parameter "nope"`)
	f("kafka://b:9092/audit?group=g&group=h", "group given 2 times")
	f("kafka://b:9092/audit?group=", "group is empty")
	f("kafka://b/audit?group=g", `broker "b" is not HOST:PORT`)
	f("kafka://b:9092/?group=g", "want kafka://HOST/TOPIC")
	f("kafka://b:9092/a/b?group=g", "want kafka://HOST/TOPIC")
	f("kafka://u:p@b:9092/a?group=g", "credentials do not go in the URL")
	f("kafka://b:9092/a?group=g&sasl=gssapi&username=u&password_env=P", `sasl: "gssapi" is not one of plain`)
	f("kafka://b:9092/a?group=g&sasl=plain&password_env=P", "sasl needs username")
	f("kafka://b:9092/a?group=g&sasl=plain&username=u", "one of password_file= or password_env=")
	f("kafka://b:9092/a?group=g&sasl=plain&username=u&password_env=P&password_file=/p", "one of password_file= or password_env=")
	f("kafka://b:9092/a?group=g&username=u", "need sasl=")
	f("kafka://b:9092/a?group=g&ca_file=/ca", "need tls=true")
	f("kafka://b:9092/a?group=g&tls=yes", `tls: "yes" is not true or false`)
	f("kafka://b:9092/a?group=g&start=middle", "start")
	f("kafka://b:9092/a?group=g&max_records=0", "max_records")
	f("kafka://b:9092/a?group=g&session_timeout=-1s", "session_timeout")
	f("nats://b:4222/a?group=g", "not a kafka:// or eventhubs://")

	c = f("eventhubs://contoso/aks-audit?group=kanon&connection_string_file=/etc/kanon/eh", "")
	if !reflect.DeepEqual(c, &Config{Brokers: []string{"contoso.servicebus.windows.net:9093"}, Topic: "aks-audit", Group: "kanon",
		TLS: true, SASL: "plain", Username: "$ConnectionString", PasswordFile: "/etc/kanon/eh", Start: DefaultStart, MaxRecords: DefaultMaxRecords}) {
		t.Fatalf("%+v", c)
	}
	c = f("eventhubs://contoso.servicebus.chinacloudapi.cn/hub?group=g&connection_string_env=EH&broker=10.0.0.5:9093&ca_file=/ca", "")
	if c.Brokers[0] != "10.0.0.5:9093" || c.PasswordEnv != "EH" || c.CAFile != "/ca" {
		t.Fatalf("%+v", c)
	}
	f("eventhubs://contoso/hub?group=g", "connection_string_file= or connection_string_env=")
	f("eventhubs://contoso/hub?group=g&connection_string_env=EH&sasl=plain", `unknown parameter "sasl"`)
	f("eventhubs://contoso:9093/hub?group=g&connection_string_env=EH", "want eventhubs://NAMESPACE/HUB")
}

// FuzzParseURL: no input makes ParseURL panic, and a URL it takes comes
// back the same from its canonical form (Config.URL).
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"kafka://b1:9092,b2:9093/audit?group=kanon",
		"kafka://b:9093/audit?group=kanon&tls=true&ca_file=/ca.pem&insecure_skip_verify=true&sasl=scram-sha-256&username=k&password_file=/p&cluster=c&start=latest&max_records=9&session_timeout=7s",
		"eventhubs://contoso/aks-audit?group=kanon&connection_string_file=/etc/eh&cluster=aks-1",
		"eventhubs://contoso/hub?group=g&connection_string_env=EH&broker=127.0.0.1:1&ca_file=/ca",
		"kafka://[::1]:9092/t?group=g", "kafka://[::1]:1,[fe80::2]:2/t?group=g", "kafka://%zz/t", "kafka://b:1/t?group=%", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := ParseURL(raw)
		if err != nil {
			return
		}
		back, err := ParseURL(c.URL())
		if err != nil {
			t.Fatalf("%q parsed, its URL %q does not: %v", raw, c.URL(), err)
		}
		if !reflect.DeepEqual(c, back) {
			t.Fatalf("%q: %+v, through %q: %+v", raw, c, c.URL(), back)
		}
	})
}
