package alert

import (
	"bytes"
	"encoding/json"
	"maps"
	"strconv"
	"strings"
	"time"
)

// DefaultResolveAfter is how long Alertmanager keeps an alert firing
// after kanon delivered it, unless OutputConfig.ResolveAfter says.
const DefaultResolveAfter = time.Hour

// alertmanagerLabels are the labels the Alertmanager output sets itself.
var alertmanagerLabels = []string{"alertname", "severity", "rule", "cluster", "alert_id"}

// AlertmanagerOptions shape the alerts the Alertmanager output posts.
type AlertmanagerOptions struct {
	// Labels are added to every alert's labels.
	Labels map[string]string
	// ResolveAfter sets endsAt (default DefaultResolveAfter).
	ResolveAfter time.Duration
	// GeneratorURL, if set, is the alerts' generatorURL.
	GeneratorURL string
	// Now is the clock of endsAt (default time.Now).
	Now func() time.Time
}

// newAlertmanagerSink builds a Prometheus Alertmanager output: batches of
// alerts POSTed as a JSON array to /api/v2/alerts.
func newAlertmanagerSink(sc senderConfig, hc httpConfig, o AlertmanagerOptions) (*SpooledSink, error) {
	u, err := endpointURL(sc, hc.URL, "/api/v2/alerts")
	if err != nil {
		return nil, err
	}
	hc.URL = u
	tr, err := newHTTPTransport(sc.typ, sc.name, hc, httpFormat{
		contentType: "application/json",
		join:        func(b []entry) []byte { return joinJSON("[", b, "]") },
	})
	if err != nil {
		return nil, err
	}
	return newSpooledSink(sc, tr, func(a *Alert) ([]byte, error) { return AlertmanagerAlert(a, o) })
}

// AlertmanagerAlert returns the alert as one postable alert of
// Alertmanager's API v2:
//
//   - labels: alertname (the rule's name), rule (its id), severity,
//     cluster (when the alert has one), alert_id, and Options.Labels. The
//     alert id makes each kanon alert an alert of its own in
//     Alertmanager (group them with Alertmanager's group_by); a dedup
//     group's update has the same labels, so posting it refreshes the
//     alert Alertmanager holds;
//   - annotations: summary (the title, or the rule's name), description
//     (the rule's), runbook_url (a runbook that is a URL) or runbook,
//     risk_score, group_count, group_first_seen and group_last_seen for a
//     dedup group, and the alert's non-empty output fields (names made
//     label-safe: Esql.document_count becomes Esql_document_count);
//   - startsAt: the alert's time; endsAt: ResolveAfter past the later of
//     now and the alert's time, so that Alertmanager resolves the alert
//     once kanon stops delivering it; generatorURL when set.
func AlertmanagerAlert(a *Alert, o AlertmanagerOptions) ([]byte, error) {
	if o.ResolveAfter <= 0 {
		o.ResolveAfter = DefaultResolveAfter
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	labels := maps.Clone(o.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	name := a.Rule.Name
	if name == "" {
		name = a.Rule.ID
	}
	labels["alertname"] = name
	labels["rule"] = a.Rule.ID
	labels["severity"] = orDash(a.Rule.Severity)
	labels["alert_id"] = a.ID
	if c := fieldText(a.Fields, "cluster"); c != "" {
		labels["cluster"] = c
	}
	ann := map[string]string{}
	for _, f := range a.Fields {
		if v := fieldText(a.Fields, f.Name); v != "" {
			ann[labelSafe(f.Name)] = clipRunes(v, 1000)
		}
	}
	summary := a.Title
	if summary == "" {
		summary = name
	}
	ann["summary"] = summary
	if a.Rule.Description != "" {
		ann["description"] = a.Rule.Description
	}
	if rb := strings.TrimSpace(a.Rule.Runbook); rb != "" {
		if (strings.HasPrefix(rb, "https://") || strings.HasPrefix(rb, "http://")) && !strings.ContainsAny(rb, " \n") {
			ann["runbook_url"] = rb
		} else {
			ann["runbook"] = rb
		}
	}
	ann["risk_score"] = strconv.Itoa(a.Rule.RiskScore)
	if g := a.Group; g != nil {
		ann["group_count"] = strconv.FormatInt(g.Count, 10)
		ann["group_first_seen"] = g.FirstSeen.UTC().Format(time.RFC3339Nano)
		ann["group_last_seen"] = g.LastSeen.UTC().Format(time.RFC3339Nano)
	}
	start := a.Timestamp.UTC()
	end := now().UTC()
	if end.Before(start) {
		end = start
	}
	pa := struct {
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     string            `json:"startsAt"`
		EndsAt       string            `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL,omitempty"`
	}{labels, ann, start.Format(time.RFC3339Nano), end.Add(o.ResolveAfter).Format(time.RFC3339Nano), o.GeneratorURL}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(pa); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// labelSafe turns a name into a Prometheus label name: characters other
// than letters, digits and _ become _, and a leading digit gets a _.
func labelSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	if len(b) == 0 || b[0] >= '0' && b[0] <= '9' {
		return "_" + string(b)
	}
	return string(b)
}
