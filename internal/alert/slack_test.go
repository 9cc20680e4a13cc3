package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func slackEventAlert() *Alert {
	return &Alert{
		ID:        "3f1c0b5e9d2a4c6b8e7f1a2b3c4d5e6f",
		Timestamp: time.Date(2026, 3, 1, 12, 4, 5, 0, time.UTC),
		Title:     "alice ran exec in pod web-0 <prod>",
		Rule: Rule{ID: "k8s-pod-exec", Name: "Exec into a pod", Type: "query", Severity: "critical", RiskScore: 73,
			Runbook: "https://runbooks.example.com/k8s/pod-exec"},
		Fields: Fields{
			{Name: "username", Value: "alice@example.com"},
			{Name: "source_ips", Value: []any{"10.0.0.7", "192.168.1.20"}},
			{Name: "user_agent", Value: "kubectl/v1.31.0 (linux/amd64)"},
			{Name: "verb", Value: "create"},
			{Name: "resource", Value: "pods"},
			{Name: "namespace", Value: "shop"},
			{Name: "request_uri", Value: "/api/v1/namespaces/shop/pods/web-0/exec?command=sh&stdin=true"},
			{Name: "response_code", Value: float64(101)},
			{Name: "decision", Value: "allow"},
			{Name: "cluster", Value: "prod-eu"},
		},
		Origin: "audit.log:42",
	}
}

func slackAggregateAlert() *Alert {
	return &Alert{
		ID:        "9a8b7c6d5e4f30211203f4e5d6c7b8a9",
		Timestamp: time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC),
		Rule:      Rule{ID: "k8s-secret-enum", Name: "Secrets listed across many namespaces", Type: "esql", Severity: "medium"},
		Fields: Fields{
			{Name: "username", Value: "system:serviceaccount:ci:deployer"},
			{Name: "namespaces", Value: float64(14)},
			{Name: "requests", Value: float64(212)},
			{Name: "cluster", Value: "prod-eu"},
		},
		Window: &Window{Start: time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC), End: time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC)},
		Group:  &Group{Key: "deployer", Count: 3, FirstSeen: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), LastSeen: time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC)},
	}
}

func TestSlackMessageGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		a    *Alert
	}{
		{"slack_event", slackEventAlert()},
		{"slack_aggregate", slackAggregateAlert()},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := SlackMessage(c.a)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, b, "", "  "); err != nil {
				t.Fatalf("payload is not JSON: %v\n%s", err, b)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", c.name+".golden.json")
			if *update {
				os.MkdirAll("testdata", 0o755)
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("payload differs from %s:\n%s", golden, pretty.Bytes())
			}
		})
	}
}

// Slack's limits hold for long values, and mrkdwn is escaped.
func TestSlackMessageLimits(t *testing.T) {
	a := slackEventAlert()
	a.Rule.Name = strings.Repeat("n", 500)
	a.Fields = append(a.Fields, Field{Name: "x", Value: strings.Repeat("<&>", 3000)})
	a.Fields[0].Value = strings.Repeat("<b>", 1000)
	a.Window = &Window{}
	b, err := SlackMessage(a)
	if err != nil {
		t.Fatal(err)
	}
	var p slackPayload
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	blocks := p.Attachments[0].Blocks
	if n := len([]rune(blocks[0].Text.Text)); n > slackHeaderMax {
		t.Errorf("header of %d runes", n)
	}
	for _, bl := range blocks {
		if bl.Text != nil && len([]rune(bl.Text.Text)) > slackSectionMax {
			t.Errorf("%s block of %d runes", bl.Type, len([]rune(bl.Text.Text)))
		}
		for _, f := range bl.Fields {
			if len([]rune(f.Text)) > slackFieldMax {
				t.Errorf("field of %d runes", len([]rune(f.Text)))
			}
			if strings.Contains(f.Text, "<b>") {
				t.Errorf("unescaped mrkdwn: %.40s", f.Text)
			}
		}
	}
}

// The Slack sink posts the message through the webhook sender.
func TestSlackSinkPosts(t *testing.T) {
	r := newReceiver(t)
	s, err := NewSlackSink(fastWebhook(r.url(), t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	a := slackEventAlert()
	if err := s.Write(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	r.waitFor(1, 5*time.Second)
	shutdown(t, s)
	want, _ := SlackMessage(a)
	r.mu.Lock()
	defer r.mu.Unlock()
	if got := r.bodies[a.ID]; !bytes.Equal(got, want) {
		t.Errorf("posted %s\nwant %s", got, want)
	}
	if s.Stats().Type != TypeSlack {
		t.Errorf("type %q", s.Stats().Type)
	}
}

// The bar beside the message has the severity's colour.
func TestSlackMessageSeverityColour(t *testing.T) {
	for sev, want := range map[string]string{
		"critical": "#b71c1c", "high": "#e65100", "medium": "#f9a825", "low": "#1565c0", "info": "#78909c", "bogus": "#9e9e9e",
	} {
		a := slackEventAlert()
		a.Rule.Severity = sev
		b, err := SlackMessage(a)
		if err != nil {
			t.Fatal(err)
		}
		var p slackPayload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Attachments) != 1 || p.Attachments[0].Color != want || len(p.Attachments[0].Blocks) == 0 {
			t.Errorf("%s: attachments %+v, want one with colour %s and the blocks", sev, p.Attachments, want)
		}
		if p.Text == "" || p.Attachments[0].Fallback != p.Text {
			t.Errorf("%s: text %q, fallback %q", sev, p.Text, p.Attachments[0].Fallback)
		}
	}
}

// -o slack:URL builds a Slack output that posts the coloured message.
func TestSlackFromOutputFlag(t *testing.T) {
	r := newReceiver(t)
	oc, err := ParseOutputFlag("slack:" + r.url())
	if err != nil {
		t.Fatal(err)
	}
	oc.MinBackoff, oc.MaxBackoff = Duration(5*time.Millisecond), Duration(50*time.Millisecond)
	o, err := NewOutputs([]OutputConfig{oc}, Options{SpoolRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	a := slackEventAlert()
	if err := o.Write(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	r.waitFor(1, 5*time.Second)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	want, _ := SlackMessage(a)
	r.mu.Lock()
	defer r.mu.Unlock()
	if got := r.bodies[a.ID]; !bytes.Equal(got, want) || !bytes.Contains(got, []byte(`"color":"#b71c1c"`)) {
		t.Errorf("posted %s\nwant %s", got, want)
	}
	if st := o.Stats()[0]; st.Type != TypeSlack || st.Delivered != 1 {
		t.Errorf("stats %+v", st)
	}
}
