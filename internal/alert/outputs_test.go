package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestFilter(t *testing.T) {
	f := func(min string, include, exclude []string, id, sev string, want bool) {
		t.Helper()
		flt := NewFilter(min, include, exclude)
		a := &Alert{Rule: Rule{ID: id, Severity: sev}}
		if got := flt.Match(a); got != want {
			t.Errorf("filter(min=%q, rules=%q, exclude=%q) on %s/%s = %v, want %v", min, include, exclude, id, sev, got, want)
		}
	}
	f("", nil, nil, "x", "info", true)
	f("", nil, nil, "x", "", true)
	f("high", nil, nil, "x", "medium", false)
	f("high", nil, nil, "x", "high", true)
	f("high", nil, nil, "x", "critical", true)
	f("low", nil, nil, "x", "bogus", false)
	f("", []string{"k8s-*"}, nil, "k8s-exec", "low", true)
	f("", []string{"k8s-*"}, nil, "aws-exec", "low", false)
	f("", []string{"*-exec"}, nil, "k8s-exec", "low", true)
	f("", []string{"*secret*"}, nil, "k8s-secret-read", "low", true)
	f("", []string{"k8s-*-read"}, nil, "k8s-secret-read", "low", true)
	f("", []string{"k8s-*-read"}, nil, "k8s-read", "low", false)
	f("", []string{"a*a"}, nil, "a", "low", false)
	f("", []string{"exact"}, nil, "exact", "low", true)
	f("", []string{"exact"}, nil, "exactly", "low", false)
	f("", []string{"k8s-*"}, []string{"k8s-noisy*"}, "k8s-noisy-list", "low", false)
	f("", nil, []string{"*"}, "any", "critical", false)
	f("medium", []string{"k8s-*"}, []string{"k8s-x"}, "k8s-y", "high", true)
}

func TestOutputConfigValidate(t *testing.T) {
	f := func(c OutputConfig, wants ...string) {
		t.Helper()
		err := c.Validate()
		if len(wants) == 0 {
			if err != nil {
				t.Errorf("%+v: %v", c, err)
			}
			return
		}
		if err == nil {
			t.Errorf("%+v: no error, want %q", c, wants)
			return
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not say %q", c, err, w)
			}
		}
	}
	f(OutputConfig{Type: "stdout"})
	f(OutputConfig{Type: "file", Path: "/tmp/a"})
	f(OutputConfig{Type: "webhook", URL: "https://siem.example.com/in", MinSeverity: "high", Rules: []string{"k8s-*"}})
	f(OutputConfig{}, "type: missing")
	f(OutputConfig{Type: "pagerduty"}, `type: "pagerduty" is not one of stdout, file, webhook, slack, elasticsearch, opensearch, splunk, alertmanager, loki, syslog, kafka, nats`)
	f(OutputConfig{Type: "elasticsearch", URL: "https://es:9200", Token: "env:ES_API_KEY", Index: "logs-kanon.alerts-prod", BatchSize: 500})
	f(OutputConfig{Type: "opensearch", URL: "env:OPENSEARCH_URL", Username: "kanon", Password: "file:/run/secrets/os"})
	f(OutputConfig{Type: "elasticsearch", URL: "https://es:9200", Index: "Alerts"}, `index: "Alerts": index names are lower case`)
	f(OutputConfig{Type: "elasticsearch", URL: "https://es:9200", Index: "_x"}, "cannot start with -, _ or +")
	f(OutputConfig{Type: "elasticsearch", URL: "https://es:9200", Token: "c2VjcmV0"}, "token: write env:NAME or file:PATH: kanon takes no secret written in its configuration")
	f(OutputConfig{Type: "elasticsearch", URL: "https://es:9200", Password: "hunter2"}, "password: write env:NAME or file:PATH", "username: missing")
	f(OutputConfig{Type: "elasticsearch", URL: "https://es:9200", Token: "env:T", Username: "u", Password: "env:P"}, "token: give a token or a username and password, not both")
	f(OutputConfig{Type: "splunk", URL: "https://splunk:8088", Token: "env:HEC", Index: "security", Sourcetype: "kanon:alert"})
	f(OutputConfig{Type: "splunk", URL: "https://splunk:8088"}, "token: missing; a splunk output needs the HEC token")
	f(OutputConfig{Type: "splunk", URL: "https://splunk:8088", Token: "env:HEC", Labels: map[string]string{"a": "b"}}, "labels: not used by a splunk output")
	f(OutputConfig{Type: "alertmanager", URL: "http://am:9093", Labels: map[string]string{"env": "prod"}, ResolveAfter: Duration(time.Hour)})
	f(OutputConfig{Type: "alertmanager", URL: "http://am:9093", Labels: map[string]string{"severity": "x", "1x": "y"}}, `labels: "severity" is set by kanon`, `labels: "1x" is not a label name`)
	f(OutputConfig{Type: "alertmanager", URL: "http://am:9093", GeneratorURL: "dashboard"}, `generator_url: "dashboard" is not an absolute URL`)
	f(OutputConfig{Type: "loki", URL: "http://loki:3100", Labels: map[string]string{"job": "x"}}, `labels: "job" is set by kanon`)
	f(OutputConfig{Type: "loki", URL: "http://loki:3100", Index: "x"}, "index: not used by a loki output")
	f(OutputConfig{Type: "syslog", Addr: "siem:6514", TLS: true, Facility: "local3", AppName: "kanon-prod"})
	f(OutputConfig{Type: "syslog"}, "addr: missing")
	f(OutputConfig{Type: "syslog", Addr: "siem", Facility: "security", AppName: "a b"}, `addr: "siem" is not HOST:PORT`, `facility: "security" is not a syslog facility`, `app_name: "a b" is not 1 to 48`)
	f(OutputConfig{Type: "syslog", Addr: "siem:514", URL: "http://x"}, "url: not used by a syslog output")
	f(OutputConfig{Type: "kafka", Brokers: []string{"k1:9092", "k2:9092"}, Topic: "alerts", SASL: "scram-sha-512", Username: "kanon", Password: "env:KAFKA_PASSWORD", TLS: true})
	f(OutputConfig{Type: "kafka"}, "brokers: missing", "topic: missing")
	f(OutputConfig{Type: "kafka", Brokers: []string{"k1"}, Topic: "t", SASL: "gssapi"}, `brokers[0]: "k1" is not HOST:PORT`, `sasl: "gssapi" is not one of plain, scram-sha-256, scram-sha-512`)
	f(OutputConfig{Type: "kafka", Brokers: []string{"k1:9092"}, Topic: "t", Username: "u", Password: "env:P"}, "sasl: missing")
	f(OutputConfig{Type: "kafka", Brokers: []string{"k1:9092"}, Topic: "t", Token: "env:T"}, "token: not used by a kafka output")
	f(OutputConfig{Type: "nats", URL: "nats://n1:4222,nats://n2:4222", Subject: "kanon.alerts", Token: "file:/run/nats-token"})
	f(OutputConfig{Type: "nats"}, "url: missing", "subject: missing")
	f(OutputConfig{Type: "nats", URL: "http://n1:4222", Subject: "kanon.*"}, `url: "http://n1:4222" is not a nats:// or tls:// URL`, `subject: "kanon.*" is not a subject to publish to`)
	f(OutputConfig{Type: "stdout", BatchSize: 10}, "batch_size: not used by a stdout output")
	f(OutputConfig{Type: "webhook", URL: "http://x", BatchSize: 10}, "batch_size: not used by a webhook output")
	f(OutputConfig{Type: "file"}, "path: missing")
	f(OutputConfig{Type: "webhook"}, "url: missing")
	f(OutputConfig{Type: "slack", URL: "ftp://x"}, "scheme must be http or https")
	f(OutputConfig{Type: "slack", URL: "https://"}, "has no host")
	f(OutputConfig{Type: "stdout", MinSeverity: "urgent"}, `min_severity: "urgent" is not one of info, low, medium, high, critical`)
	f(OutputConfig{Type: "stdout", URL: "http://x", Path: "p"}, "url: not used by a stdout output", "path: not used by a stdout output")
	f(OutputConfig{Type: "webhook", URL: "http://x", BlockTimeout: Duration(time.Second)}, "block_timeout: not used by a webhook output")
	f(OutputConfig{Type: "webhook", URL: "http://x", Headers: map[string]string{"Bad Header": "v"}}, `headers: "Bad Header" is not a valid header name`)
	f(OutputConfig{Type: "webhook", URL: "http://x", MinBackoff: Duration(time.Minute), MaxBackoff: Duration(time.Second)}, "min_backoff: 1m0s is above max_backoff 1s")
	f(OutputConfig{Type: "file", Path: "p", QueueSize: -1, MaxBackups: -2}, "queue_size: -1 is negative", "max_backups: -2 is negative")
	f(OutputConfig{Type: "stdout", Rules: []string{""}}, "rules[0]: empty pattern")

	err := ValidateOutputs([]OutputConfig{
		{Name: "a", Type: "stdout"},
		{Name: "a", Type: "webhook", URL: "http://x", SpoolDir: "/s"},
		{Type: "slack", URL: "http://y", SpoolDir: "/s"},
		{Type: "file"},
	})
	for _, w := range []string{
		`output 2 ("a"): name: "a" is also the name of output 1`,
		`output 3 (slack): spool_dir: "/s" is also the spool of output 2`,
		"output 4 (file): path: missing",
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("ValidateOutputs: %v; want %q", err, w)
		}
	}
	if err := ValidateOutputs(nil); err == nil {
		t.Error("no outputs accepted")
	}
}

// The configuration decodes from YAML with durations and sizes as text.
func TestOutputConfigYAML(t *testing.T) {
	const doc = `
- type: file
  path: /var/log/kanon/alerts.ndjson
  max_size: 64MiB
  max_age: 24h
  max_backups: 3
  min_severity: medium
- name: siem
  type: webhook
  url: https://siem.example.com/kanon
  headers: {Authorization: "Bearer t"}
  timeout: 5s
  spool_max_size: 1GB
  rules: ["k8s-*"]
  exclude_rules: [k8s-noisy]
  queue_size: 4096
- type: stdout
  block_timeout: 250ms
`
	var cfgs []OutputConfig
	if err := yaml.Unmarshal([]byte(doc), &cfgs); err != nil {
		t.Fatal(err)
	}
	if err := ValidateOutputs(cfgs); err != nil {
		t.Fatal(err)
	}
	if c := cfgs[0]; c.MaxSize != 64<<20 || time.Duration(c.MaxAge) != 24*time.Hour || c.MaxBackups != 3 {
		t.Errorf("file: %+v", c)
	}
	if c := cfgs[1]; c.SpoolMaxSize != 1e9 || time.Duration(c.Timeout) != 5*time.Second ||
		c.Headers["Authorization"] != "Bearer t" || c.Rules[0] != "k8s-*" || c.ExcludeRules[0] != "k8s-noisy" {
		t.Errorf("webhook: %+v", c)
	}
	if c := cfgs[2]; time.Duration(c.BlockTimeout) != 250*time.Millisecond {
		t.Errorf("stdout: %+v", c)
	}
	var bad []OutputConfig
	err := yaml.Unmarshal([]byte("- type: file\n  max_size: 12 parsecs\n"), &bad)
	if err == nil || !strings.Contains(err.Error(), `cannot parse size "12 parsecs"`) {
		t.Errorf("bad size: %v", err)
	}
	err = yaml.Unmarshal([]byte("- type: webhook\n  timeout: soon\n"), &bad)
	if err == nil || !strings.Contains(err.Error(), `cannot parse duration "soon"`) {
		t.Errorf("bad duration: %v", err)
	}
}

// Each output gets the alerts its filter passes.
func TestOutputsFilters(t *testing.T) {
	dir := t.TempDir()
	all, high, k8s := filepath.Join(dir, "all"), filepath.Join(dir, "high"), filepath.Join(dir, "k8s")
	o, err := NewOutputs([]OutputConfig{
		{Type: "file", Path: all},
		{Type: "file", Path: high, MinSeverity: "high"},
		{Type: "file", Path: k8s, Rules: []string{"k8s-*"}, ExcludeRules: []string{"k8s-noisy"}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var want = map[string][]string{}
	for i, c := range []struct{ rule, sev string }{
		{"k8s-exec", "critical"}, {"k8s-noisy", "high"}, {"k8s-list", "low"}, {"aws-root", "high"}, {"gcp-x", "info"},
	} {
		a := testAlert(i)
		a.Rule.ID, a.Rule.Severity = c.rule, c.sev
		if err := o.Write(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		want[all] = append(want[all], a.ID)
		if severityRank(c.sev) >= severityRank("high") {
			want[high] = append(want[high], a.ID)
		}
		if strings.HasPrefix(c.rule, "k8s-") && c.rule != "k8s-noisy" {
			want[k8s] = append(want[k8s], a.ID)
		}
	}
	if err := o.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{all, high, k8s} {
		equalIDs(t, filepath.Base(p), fileIDs(t, p), want[p])
	}
	st := o.Stats()
	if st[0].Name != "file" || st[1].Name != "file-2" || st[2].Name != "file-3" ||
		st[1].Filtered != 2 || st[2].Filtered != 3 || st[0].Delivered != 5 {
		t.Errorf("stats: %+v", st)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.Write(context.Background(), testAlert(9)); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
}

// A hanging webhook and a stuck stdout never hold Write beyond the block
// timeout; the webhook's alerts go to its spool, stdout's are dropped and
// counted; the file output gets everything.
func TestOutputsSlowOutputDoesNotBlock(t *testing.T) {
	r := newReceiver(t)
	r.setMode("hang")
	pr, pw := io.Pipe() // nobody reads: stdout is stuck
	dir := t.TempDir()
	var mu sync.Mutex
	reported := map[string]int{}
	o, err := NewOutputs([]OutputConfig{
		{Type: "webhook", URL: r.url(), QueueSize: 4, Timeout: Duration(time.Minute)},
		{Type: "stdout", QueueSize: 4, BlockTimeout: Duration(5 * time.Millisecond)},
		{Type: "file", Path: filepath.Join(dir, "alerts")},
	}, Options{Stdout: pw, SpoolRoot: filepath.Join(dir, "spool"), OnError: func(out string, err error) {
		mu.Lock()
		reported[out]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	for i := 0; i < n; i++ {
		if err := writeWithin(t, o, testAlert(i), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	st := o.Stats()
	wh, so := st[0], st[1]
	if wh.Spooled == 0 || wh.Dropped != 0 || wh.SpoolDepth+wh.QueueDepth != n {
		t.Errorf("webhook: %+v", wh)
	}
	if so.Dropped == 0 || so.Dropped > n-4 {
		t.Errorf("stdout: %+v", so)
	}
	mu.Lock()
	if reported["stdout"] != int(so.Dropped) {
		t.Errorf("reported %d stdout drops, counted %d", reported["stdout"], so.Dropped)
	}
	mu.Unlock()

	// Unblock both; shutdown delivers the webhook's spool and stdout's queue.
	go io.Copy(io.Discard, pr)
	r.mu.Lock()
	close(r.release)
	r.mode = "ok"
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := o.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := r.unique()
	equalIDs(t, "webhook", got, testIDs(0, n))
	st = o.Stats()
	if so := st[1]; so.Delivered+so.Dropped != n {
		t.Errorf("stdout after shutdown: %+v", so)
	}
	equalIDs(t, "file", fileIDs(t, filepath.Join(dir, "alerts")), testIDs(0, n))
}

// Flush makes queued alerts durable: with the receiver down they are all
// in the fsync'd spool when it returns, and a new Outputs delivers them.
func TestOutputsFlushAndRestart(t *testing.T) {
	r := newReceiver(t)
	r.stop()
	dir := t.TempDir()
	cfgs := []OutputConfig{{Type: "slack", URL: r.url(), MinBackoff: Duration(5 * time.Millisecond), MaxBackoff: Duration(20 * time.Millisecond)}}
	o, err := NewOutputs(cfgs, Options{SpoolRoot: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		if err := o.Write(context.Background(), testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := o.Stats()[0]; st.QueueDepth != 0 || st.SpoolDepth != 20 {
		t.Fatalf("after flush: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r.restart()
	o, err = NewOutputs(cfgs, Options{SpoolRoot: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	got := r.waitFor(20, 10*time.Second)
	equalIDs(t, "delivered after restart", got, testIDs(0, 20))
}

func TestNewOutputsErrors(t *testing.T) {
	_, err := NewOutputs([]OutputConfig{{Type: "webhook", URL: "http://127.0.0.1:1/x"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "output 1 (webhook): spool_dir: missing") {
		t.Errorf("no spool: %v", err)
	}
	_, err = NewOutputs([]OutputConfig{{Type: "webhook", URL: "http://127.0.0.1:1/x", CAFile: "/nonexistent/ca.pem"}}, Options{SpoolRoot: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cannot read ca_file") {
		t.Errorf("bad ca: %v", err)
	}
}

// BenchmarkOutputsWrite measures Write into the fan-out with one fast
// output (NDJSON to io.Discard) behind its queue.
func BenchmarkOutputsWrite(b *testing.B) {
	o, err := NewOutputs([]OutputConfig{{Type: "stdout", QueueSize: 4096, BlockTimeout: Duration(time.Second)}}, Options{Stdout: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	a := testAlert(1)
	line, _ := Marshal(a)
	b.SetBytes(int64(len(line) + 1))
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		if err := o.Write(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
	if err := o.Close(); err != nil {
		b.Fatal(err)
	}
	if st := o.Stats()[0]; st.Dropped != 0 {
		b.Fatalf("dropped %d", st.Dropped)
	}
}

func TestParseOutputFlag(t *testing.T) {
	f := func(flag string, want OutputConfig) {
		t.Helper()
		got, err := ParseOutputFlag(flag)
		if err != nil {
			t.Errorf("%q: %v", flag, err)
			return
		}
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Errorf("%q:\n got %+v\nwant %+v", flag, got, want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%q: the parsed configuration is not valid: %v", flag, err)
		}
	}
	f("stdout", OutputConfig{Type: TypeStdout})
	f("file:/var/log/kanon/alerts.ndjson", OutputConfig{Type: TypeFile, Path: "/var/log/kanon/alerts.ndjson"})
	f("webhook:https://siem:8443/in", OutputConfig{Type: TypeWebhook, URL: "https://siem:8443/in"})
	f("slack:https://hooks.slack.com/services/T/B/x", OutputConfig{Type: TypeSlack, URL: "https://hooks.slack.com/services/T/B/x"})
	f("slack:env:SLACK_WEBHOOK_URL", OutputConfig{Type: TypeSlack, URL: "env:SLACK_WEBHOOK_URL"})
	f("elasticsearch:https://es:9200", OutputConfig{Type: TypeElasticsearch, URL: "https://es:9200"})
	f("opensearch:http://os:9200", OutputConfig{Type: TypeOpenSearch, URL: "http://os:9200"})
	f("splunk:https://splunk:8088", OutputConfig{Type: TypeSplunk, URL: "https://splunk:8088", Token: "env:SPLUNK_HEC_TOKEN"})
	f("alertmanager:http://am:9093", OutputConfig{Type: TypeAlertmanager, URL: "http://am:9093"})
	f("loki:http://loki:3100", OutputConfig{Type: TypeLoki, URL: "http://loki:3100"})
	f("syslog://siem:514", OutputConfig{Type: TypeSyslog, Addr: "siem:514"})
	f("syslog:siem:514", OutputConfig{Type: TypeSyslog, Addr: "siem:514"})
	f("syslog+tls://siem:6514", OutputConfig{Type: TypeSyslog, Addr: "siem:6514", TLS: true})
	f("kafka:k1:9092,k2:9092/kanon-alerts", OutputConfig{Type: TypeKafka, Brokers: []string{"k1:9092", "k2:9092"}, Topic: "kanon-alerts"})
	f("kafka://k1:9092/kanon-alerts", OutputConfig{Type: TypeKafka, Brokers: []string{"k1:9092"}, Topic: "kanon-alerts"})
	f("nats://n1:4222/kanon.alerts", OutputConfig{Type: TypeNATS, URL: "nats://n1:4222", Subject: "kanon.alerts"})
	f("nats://n1:4222,n2:4222/kanon.alerts", OutputConfig{Type: TypeNATS, URL: "nats://n1:4222,nats://n2:4222", Subject: "kanon.alerts"})
	f("nats:n1:4222/kanon.alerts", OutputConfig{Type: TypeNATS, URL: "nats://n1:4222", Subject: "kanon.alerts"})
	f("tls://n1:4222/kanon.alerts", OutputConfig{Type: TypeNATS, URL: "tls://n1:4222", Subject: "kanon.alerts"})

	bad := func(flag, want string) {
		t.Helper()
		if _, err := ParseOutputFlag(flag); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", flag, err, want)
		}
	}
	bad("pagerduty:x", "want one of stdout, file:PATH, webhook:URL, slack:URL, elasticsearch:URL")
	bad("stdout:x", "want stdout")
	bad("kafka:k1:9092", "want kafka:BROKER[,BROKER]/TOPIC")
	bad("kafka:/t", "want kafka:BROKER[,BROKER]/TOPIC")
	bad("nats://n1:4222", "want nats://HOST:PORT/SUBJECT")
	bad("syslog+tls:siem:6514", "want syslog+tls://HOST:PORT")
	bad("syslog://siem:514/x", "want syslog://HOST:PORT")
}

// The README's example outputs decode strictly and validate, and its
// table names every output type.
func TestREADMEOutputs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	start := strings.Index(readme, "```yaml\noutputs:")
	if start < 0 {
		t.Fatal("README.md has no ```yaml block of outputs")
	}
	block := readme[start+len("```yaml\n"):]
	block = block[:strings.Index(block, "```")]
	var cfg struct {
		Outputs []OutputConfig `yaml:"outputs"`
	}
	dec := yaml.NewDecoder(strings.NewReader(block))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("README's outputs: %v", err)
	}
	if err := ValidateOutputs(cfg.Outputs); err != nil {
		t.Fatalf("README's outputs: %v", err)
	}
	section := readme[strings.Index(readme, "## Outputs"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	for _, typ := range outputTypes {
		if !strings.Contains(section, "`"+typ) {
			t.Errorf("README's Outputs section does not name %s", typ)
		}
	}
}
