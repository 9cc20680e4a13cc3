package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// NewSlackSink sends alerts to a Slack incoming webhook (cfg.URL) as
// readable messages (see SlackMessage), with the webhook sender's
// retries, backoff and spool.
func NewSlackSink(cfg WebhookConfig) (*SpooledSink, error) {
	return newWebhookSink(TypeSlack, cfg, SlackMessage)
}

// severityEmoji is the Slack emoji shown before the rule name.
var severityEmoji = map[string]string{
	"critical": ":red_circle:",
	"high":     ":large_orange_circle:",
	"medium":   ":large_yellow_circle:",
	"low":      ":large_blue_circle:",
	"info":     ":white_circle:",
}

// Slack Block Kit limits (characters).
const (
	slackHeaderMax  = 150
	slackSectionMax = 3000
	slackFieldMax   = 2000
	slackFieldsMax  = 10
	slackTextMax    = 4000
)

type slackText struct {
	Type  string `json:"type"`
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Fields   []slackText `json:"fields,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

type slackAttachment struct {
	Color    string       `json:"color"`
	Fallback string       `json:"fallback"`
	Blocks   []slackBlock `json:"blocks"`
}

type slackPayload struct {
	Text        string            `json:"text"`
	Attachments []slackAttachment `json:"attachments"`
}

// SeverityColors are the colours of the bar beside a Slack message, by
// severity; an unknown severity is grey.
var SeverityColors = map[string]string{
	"critical": "#b71c1c",
	"high":     "#e65100",
	"medium":   "#f9a825",
	"low":      "#1565c0",
	"info":     "#78909c",
}

// slackUnknownColor is the bar of an alert of unknown severity.
const slackUnknownColor = "#9e9e9e"

// SlackMessage returns the Slack incoming-webhook payload of an alert:
// {"text": <one-line summary for notifications>, "attachments":
// [{"color": <the severity's colour, SeverityColors>, "fallback": <the
// summary>, "blocks": [...]}]}, so that the message has a bar in the
// severity's colour, with blocks: a header (severity emoji and rule name), the severity and title, fields
// Who (username), From (source IPs, user agent), What (verb, resource,
// namespace, request URI), Outcome (decision, response code), Cluster and
// Time, the output columns of aggregate alerts (window rules) and the
// repeat count of grouped alerts, and a context line with the rule id,
// the alert id and the runbook link. Text is escaped for Slack's mrkdwn.
func SlackMessage(a *Alert) ([]byte, error) {
	sev := a.Rule.Severity
	emoji := severityEmoji[sev]
	if emoji == "" {
		emoji = ":grey_question:"
	}
	name := a.Rule.Name
	if name == "" {
		name = a.Rule.ID
	}
	user := fieldText(a.Fields, "username")
	ips := fieldText(a.Fields, "source_ips")
	ua := fieldText(a.Fields, "user_agent")
	verb := fieldText(a.Fields, "verb")
	res := fieldText(a.Fields, "resource")
	ns := fieldText(a.Fields, "namespace")
	uri := fieldText(a.Fields, "request_uri")
	decision := fieldText(a.Fields, "decision")
	code := fieldText(a.Fields, "response_code")
	cluster := fieldText(a.Fields, "cluster")

	// The notification text: plain, one line.
	var sum strings.Builder
	fmt.Fprintf(&sum, "%s [%s] %s", emoji, strings.ToUpper(orDash(sev)), name)
	if user != "" {
		fmt.Fprintf(&sum, ": %s", user)
	}
	if ips != "" {
		fmt.Fprintf(&sum, " from %s", ips)
	}
	if verb != "" || res != "" {
		fmt.Fprintf(&sum, " (%s)", strings.TrimSpace(verb+" "+res))
	}
	if cluster != "" {
		fmt.Fprintf(&sum, " on %s", cluster)
	}

	text := clipRunes(escapeMrkdwn(sum.String()), slackTextMax)
	color := SeverityColors[sev]
	if color == "" {
		color = slackUnknownColor
	}
	p := slackPayload{Text: text, Attachments: []slackAttachment{{Color: color, Fallback: text}}}
	blocks := &p.Attachments[0].Blocks
	*blocks = append(*blocks, slackBlock{Type: "header", Text: &slackText{
		Type: "plain_text", Text: clipRunes(emoji+" "+name, slackHeaderMax), Emoji: true,
	}})

	intro := fmt.Sprintf("*Severity:* %s", escapeMrkdwn(orDash(sev)))
	if a.Rule.RiskScore > 0 {
		intro += fmt.Sprintf(" (risk score %d)", a.Rule.RiskScore)
	}
	if a.Title != "" && a.Title != name {
		intro += "\n" + escapeMrkdwn(a.Title)
	}
	*blocks = append(*blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: clipRunes(intro, slackSectionMax)}})

	var fields []slackText
	add := func(label string, lines ...string) {
		var parts []string
		for _, l := range lines {
			if l != "" {
				parts = append(parts, l)
			}
		}
		if len(parts) == 0 {
			return
		}
		fields = append(fields, slackText{Type: "mrkdwn", Text: clipRunes("*"+label+"*\n"+strings.Join(parts, "\n"), slackFieldMax)})
	}
	add("Who", escapeMrkdwn(user))
	add("From", escapeMrkdwn(ips), mdCode(ua))
	what := strings.TrimSpace(mdCode(verb) + " " + escapeMrkdwn(res))
	if ns != "" {
		what += " in " + mdCode(ns)
	}
	add("What", strings.TrimSpace(what), mdCode(uri))
	outcome := escapeMrkdwn(decision)
	if code != "" {
		outcome = strings.TrimSpace(outcome + " · HTTP " + escapeMrkdwn(code))
	}
	add("Outcome", outcome)
	add("Cluster", escapeMrkdwn(cluster))
	if !a.Timestamp.IsZero() {
		add("Time", a.Timestamp.UTC().Format(time.RFC3339))
	}
	if len(fields) > 0 {
		*blocks = append(*blocks, slackBlock{Type: "section", Fields: fields})
	}

	if a.Window != nil {
		var b strings.Builder
		fmt.Fprintf(&b, "*Counts* (window %s – %s)", a.Window.Start.UTC().Format(time.RFC3339), a.Window.End.UTC().Format(time.RFC3339))
		for i, f := range a.Fields {
			if i == slackFieldsMax*2 {
				fmt.Fprintf(&b, "\n… and %d more", len(a.Fields)-i)
				break
			}
			fmt.Fprintf(&b, "\n• %s: %s", mdCode(f.Name), escapeMrkdwn(clipRunes(fieldText(a.Fields[i:i+1], f.Name), 200)))
		}
		*blocks = append(*blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: clipRunes(b.String(), slackSectionMax)}})
	}
	if a.Group != nil && a.Group.Count > 1 {
		*blocks = append(*blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: fmt.Sprintf(
			"*Repeated* %d times from %s to %s", a.Group.Count,
			a.Group.FirstSeen.UTC().Format(time.RFC3339), a.Group.LastSeen.UTC().Format(time.RFC3339))}})
	}

	ctx := "rule " + mdCode(a.Rule.ID) + " · alert " + mdCode(a.ID)
	if a.Origin != "" {
		ctx += " · " + escapeMrkdwn(a.Origin)
	}
	if a.Rule.Runbook != "" && !strings.ContainsAny(a.Rule.Runbook, "<>|") {
		ctx += " · <" + a.Rule.Runbook + "|runbook>"
	}
	*blocks = append(*blocks, slackBlock{Type: "context", Elements: []slackText{{Type: "mrkdwn", Text: clipRunes(ctx, slackFieldMax)}}})

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(p); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// fieldText returns a field's value as text: lists joined with ", ",
// empty if the field is missing or null.
func fieldText(fs Fields, name string) string {
	v, ok := fs.Get(name)
	if !ok || v == nil {
		return ""
	}
	switch x := v.(type) {
	case string:
		return x
	case []any:
		parts := make([]string, 0, len(x))
		for _, p := range x {
			if p != nil {
				parts = append(parts, fmt.Sprint(p))
			}
		}
		return strings.Join(parts, ", ")
	case float64:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// escapeMrkdwn escapes the three characters Slack's mrkdwn requires.
func escapeMrkdwn(s string) string { return mrkdwnEscaper.Replace(s) }

// mdCode renders s as inline code (empty stays empty).
func mdCode(s string) string {
	if s == "" {
		return ""
	}
	return "`" + escapeMrkdwn(strings.ReplaceAll(s, "`", "'")) + "`"
}

// clipRunes cuts s to at most n runes, ending in "…" when cut.
func clipRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
