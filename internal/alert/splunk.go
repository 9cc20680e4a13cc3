package alert

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
)

// Defaults of the Splunk output.
const (
	DefaultSplunkSource     = "kanon"
	DefaultSplunkSourcetype = "kanon:alert"
)

// SplunkMeta is the metadata of the events the Splunk output sends.
type SplunkMeta struct {
	Host, Source, Sourcetype, Index string
}

// newSplunkSink builds a Splunk HTTP Event Collector output: batches of
// events POSTed to /services/collector/event with "Authorization: Splunk
// TOKEN".
func newSplunkSink(sc senderConfig, hc httpConfig, meta SplunkMeta) (*SpooledSink, error) {
	u, err := endpointURL(sc, hc.URL, "/services/collector/event")
	if err != nil {
		return nil, err
	}
	hc.URL, hc.TokenScheme = u, "Splunk"
	if meta.Host == "" {
		meta.Host, _ = os.Hostname()
	}
	if meta.Source == "" {
		meta.Source = DefaultSplunkSource
	}
	if meta.Sourcetype == "" {
		meta.Sourcetype = DefaultSplunkSourcetype
	}
	tr, err := newHTTPTransport(sc.typ, sc.name, hc, httpFormat{contentType: "application/json", join: joinLines})
	if err != nil {
		return nil, err
	}
	return newSpooledSink(sc, tr, func(a *Alert) ([]byte, error) { return SplunkEvent(a, meta) })
}

// SplunkEvent returns the alert as one HTTP Event Collector event (a JSON
// object and a newline; HEC takes several concatenated in one request):
// time (the alert's time in epoch seconds, with milliseconds), host,
// source, sourcetype, index (when set), event (the alert as kanon's JSON)
// and the indexed fields rule_id, severity, risk_score, alert_id and, when
// the alert has one, cluster, so that searches can filter on them without
// extracting JSON.
func SplunkEvent(a *Alert, m SplunkMeta) ([]byte, error) {
	ev, err := Marshal(a)
	if err != nil {
		return nil, err
	}
	fields := map[string]any{
		"rule_id": a.Rule.ID, "severity": a.Rule.Severity, "risk_score": a.Rule.RiskScore, "alert_id": a.ID,
	}
	if c := fieldText(a.Fields, "cluster"); c != "" {
		fields["cluster"] = c
	}
	e := struct {
		Time       json.Number     `json:"time"`
		Host       string          `json:"host,omitempty"`
		Source     string          `json:"source,omitempty"`
		Sourcetype string          `json:"sourcetype,omitempty"`
		Index      string          `json:"index,omitempty"`
		Event      json.RawMessage `json:"event"`
		Fields     map[string]any  `json:"fields"`
	}{
		Time: json.Number(strconv.FormatFloat(float64(a.Timestamp.UnixMilli())/1000, 'f', 3, 64)),
		Host: m.Host, Source: m.Source, Sourcetype: m.Sourcetype, Index: m.Index,
		Event: ev, Fields: fields,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
