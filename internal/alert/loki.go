package alert

import (
	"bytes"
	"encoding/json"
	"maps"
	"strconv"
)

// lokiLabels are the labels the Loki output sets itself.
var lokiLabels = []string{"job", "rule", "severity", "cluster"}

// newLokiSink builds a Grafana Loki output: batches of streams POSTed as
// JSON to /loki/api/v1/push.
func newLokiSink(sc senderConfig, hc httpConfig, labels map[string]string) (*SpooledSink, error) {
	u, err := endpointURL(sc, hc.URL, "/loki/api/v1/push")
	if err != nil {
		return nil, err
	}
	hc.URL = u
	tr, err := newHTTPTransport(sc.typ, sc.name, hc, httpFormat{
		contentType: "application/json",
		join:        func(b []entry) []byte { return joinJSON(`{"streams":[`, b, "]}") },
	})
	if err != nil {
		return nil, err
	}
	return newSpooledSink(sc, tr, func(a *Alert) ([]byte, error) { return LokiStream(a, labels) })
}

// LokiStream returns the alert as one stream of a Loki push request: the
// labels job="kanon", rule (the rule's id), severity, cluster (when the
// alert has one) and the extra labels — few values each, as Loki wants
// its labels — and one entry: the alert's time in nanoseconds since the
// epoch, as a string, and the alert as kanon's JSON, which LogQL's json
// parser reads (| json). Loki drops an entry it already holds (same
// stream, time and line), so a repeated delivery is stored once.
func LokiStream(a *Alert, extra map[string]string) ([]byte, error) {
	line, err := Marshal(a)
	if err != nil {
		return nil, err
	}
	labels := maps.Clone(extra)
	if labels == nil {
		labels = map[string]string{}
	}
	labels["job"] = "kanon"
	labels["rule"] = a.Rule.ID
	labels["severity"] = orDash(a.Rule.Severity)
	if c := fieldText(a.Fields, "cluster"); c != "" {
		labels["cluster"] = c
	}
	s := struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}{labels, [][2]string{{strconv.FormatInt(a.Timestamp.UnixNano(), 10), string(line)}}}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
