package run

import (
	"context"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// maxClusterLabels bounds the distinct cluster label values (the cluster
// comes from the URL); later clusters are counted as "_other".
const maxClusterLabels = 64

// metrics are the Prometheus metrics of a Driver, in the registry of
// Config.Metrics.
type metrics struct {
	reg *prometheus.Registry

	received   *prometheus.CounterVec // input, cluster
	evaluated  *prometheus.CounterVec // input, cluster
	bad        *prometheus.CounterVec // input
	skipped    *prometheus.CounterVec // input
	alerts     *prometheus.CounterVec // rule, severity, cluster
	ruleErrors *prometheus.CounterVec // rule
	late       *prometheus.CounterVec // rule
	drops      *prometheus.CounterVec // rule, reason
	evalTime   prometheus.Histogram
	alertDelay *prometheus.HistogramVec // type, since
	commitTime prometheus.Histogram
	queue      prometheus.Gauge
	queueBytes prometheus.Gauge
	rules      prometheus.Gauge
	reloads    *prometheus.CounterVec // result
	rotations  *prometheus.CounterVec // path, kind

	mu       sync.Mutex
	clusters map[string]bool
	pairs    map[[2]string]counterPair
	alertBy  map[[3]string]prometheus.Counter
}

// The since label of kanon_alert_latency_seconds.
const (
	// sinceLastEvent is measured from the receipt of the last event
	// before the alert: the batch being evaluated, or, for a run closed
	// by the idle clock, the last batch.
	sinceLastEvent = "last_event"
	// sinceWindowEnd is measured from the end of the run that raised the
	// alert (event time, so the cluster's clock): alerts raised when
	// their run closes.
	sinceWindowEnd = "window_end"
)

type counterPair struct{ received, evaluated prometheus.Counter }

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg:      reg,
		clusters: map[string]bool{},
		pairs:    map[[2]string]counterPair{},
		alertBy:  map[[3]string]prometheus.Counter{},
	}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.received = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_events_received_total", Help: "Audit events decoded from an input."}, []string{"input", "cluster"})
	m.evaluated = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_events_evaluated_total", Help: "Audit events evaluated by every rule."}, []string{"input", "cluster"})
	m.bad = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_bad_records_total", Help: "Records (or parts of records) that could not be read."}, []string{"input"})
	m.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_skipped_records_total", Help: "Records skipped on purpose (not audit events)."}, []string{"input"})
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_alerts_total", Help: "Alerts handed to the outputs, by rule, severity and the cluster of the alert's event (empty when it has none)."}, []string{"rule", "severity", "cluster"})
	m.ruleErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_rule_errors_total", Help: "Rule-level errors that did not stop evaluation."}, []string{"rule"})
	m.late = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_events_late_total", Help: "Events a windowed rule did not count because every run they belong to had closed (older than the newest event time minus the lateness)."}, []string{"rule"})
	m.drops = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_alerts_dropped_total", Help: "What a rule did not raise, by reason: max_signals (alerts over a run's max_signals), budget (runs dropped for the rule's memory budget, each raising nothing), late (late events, each of which could have changed its run's alerts)."}, []string{"rule", "reason"})
	m.evalTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kanon_evaluation_seconds", Help: "Time to evaluate one event against every rule (the mean of each batch).",
		Buckets: prometheus.ExponentialBuckets(250e-9, 2, 16)})
	m.alertDelay = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kanon_alert_latency_seconds", Help: "Time until an alert is handed to the outputs, by rule type (query, esql, new_terms, per_event) and since: last_event, from the receipt of the last input (webhook request, file chunk) before it; window_end, for alerts raised when their run closes, from the run's end in event time.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 24)}, []string{"type", "since"})
	m.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kanon_commit_seconds", Help: "Time to flush the outputs and commit the state of a group of batches.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18)})
	m.queue = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kanon_pipeline_queue_depth", Help: "Batches waiting for the driver."})
	m.queueBytes = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kanon_pipeline_queue_bytes", Help: "Input bytes of the batches the driver holds, from submission until done (bounded by queue_bytes)."})
	m.rules = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kanon_rules_loaded", Help: "Rules the engine runs."})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_rule_reloads_total", Help: "Rule reloads by result (ok, refused)."}, []string{"result"})
	m.rotations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_tail_rotations_total", Help: "Rotations of followed files."}, []string{"path", "kind"})
	for _, c := range []prometheus.Collector{m.received, m.evaluated, m.bad, m.skipped, m.alerts, m.ruleErrors, m.late, m.drops, m.evalTime, m.alertDelay,
		m.commitTime, m.queue, m.queueBytes, m.rules, m.reloads, m.rotations} {
		f(c)
	}
	for _, r := range []string{"ok", "refused"} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// BuildInfo registers kanon_build_info in reg: a gauge of 1 labelled with
// the version, the VCS revision and the Go version of the binary.
func BuildInfo(reg prometheus.Registerer, version, revision, goVersion string) error {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kanon_build_info", Help: "The kanon binary: version, VCS revision and Go version (always 1)."},
		[]string{"version", "revision", "goversion"})
	g.WithLabelValues(version, revision, goVersion).Set(1)
	return reg.Register(g)
}

// ruleLoaded makes the counters of rule r exist at zero, with the drop
// reasons that can happen to it.
func (m *metrics) ruleLoaded(r *rule.Compiled, reasons []string) {
	m.alertCounter(r.ID, r.Severity, "")
	m.ruleErrors.WithLabelValues(r.ID)
	kind := engine.RuleKind(r)
	m.alertDelay.WithLabelValues(kind, sinceLastEvent)
	for _, why := range reasons {
		m.drops.WithLabelValues(r.ID, why)
		switch why {
		case engine.DropLate:
			m.late.WithLabelValues(r.ID)
		case engine.DropBudget:
			// An aggregating ES|QL rule: its alerts come when runs close.
			m.alertDelay.WithLabelValues(kind, sinceWindowEnd)
		}
	}
}

// dropped counts n of what rule id did not raise, for reason.
func (m *metrics) dropped(id, reason string, n int64) {
	m.drops.WithLabelValues(id, reason).Add(float64(n))
	if reason == engine.DropLate {
		m.late.WithLabelValues(id).Add(float64(n))
	}
}

// NewRegistry returns a metrics registry with the Go runtime's and the
// process's collectors, for a driver whose metrics are served.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// clusterLabel bounds the cluster label values.
func (m *metrics) clusterLabel(c string) string {
	if c == "" {
		return "_none"
	}
	c = validLabel(c)
	if m.clusters[c] {
		return c
	}
	if len(m.clusters) >= maxClusterLabels {
		return "_other"
	}
	m.clusters[c] = true
	return c
}

// validLabel is s as a label value: Prometheus refuses (panics on) a
// value that is not UTF-8, and cluster names come from the records, input
// names from file names; each invalid byte becomes U+FFFD.
func validLabel(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// counted adds received and evaluated events of one input and cluster.
func (m *metrics) counted(input, cluster string, received, evaluated int) {
	m.mu.Lock()
	cl := m.clusterLabel(cluster)
	input = validLabel(input)
	k := [2]string{input, cl}
	p, ok := m.pairs[k]
	if !ok {
		p = counterPair{m.received.WithLabelValues(input, cl), m.evaluated.WithLabelValues(input, cl)}
		m.pairs[k] = p
	}
	m.mu.Unlock()
	p.received.Add(float64(received))
	p.evaluated.Add(float64(evaluated))
}

// alerted counts an alert.
func (m *metrics) alerted(a *alert.Alert) {
	cluster := alertCluster(a)
	m.mu.Lock()
	if cluster != "" {
		cluster = m.clusterLabel(cluster)
	}
	m.mu.Unlock()
	m.alertCounter(a.Rule.ID, a.Rule.Severity, cluster).Inc()
}

func (m *metrics) alertCounter(id, severity, cluster string) prometheus.Counter {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [3]string{id, severity, cluster}
	c, ok := m.alertBy[k]
	if !ok {
		c = m.alerts.WithLabelValues(id, severity, cluster)
		m.alertBy[k] = c
	}
	return c
}

// alertCluster is the cluster of the alert's event (orchestrator.cluster.name),
// or of its output row (a rule that groups BY the cluster), or "".
func alertCluster(a *alert.Alert) string {
	if o, ok := a.Event["orchestrator"].(map[string]any); ok {
		if c, ok := o["cluster"].(map[string]any); ok {
			if n, ok := c["name"].(string); ok && n != "" {
				return n
			}
		}
	}
	for _, f := range a.Fields {
		if f.Name == "orchestrator.cluster.name" || f.Name == "cluster" {
			if n, ok := f.Value.(string); ok {
				return n
			}
		}
	}
	return ""
}

// latency observes the delays of an alert handed to the outputs at now:
// since the receipt of the last input before it (received, zero if
// none), and, for an alert raised when its run closed, since the run's
// end.
func (m *metrics) latency(a *alert.Alert, kind string, now, received time.Time) {
	if !received.IsZero() {
		m.alertDelay.WithLabelValues(kind, sinceLastEvent).Observe(max(0, now.Sub(received).Seconds()))
	}
	if w := a.Window; w != nil && !w.End.IsZero() && a.Timestamp.Equal(w.End) {
		m.alertDelay.WithLabelValues(kind, sinceWindowEnd).Observe(max(0, now.Sub(w.End).Seconds()))
	}
}

// storeCollector reports the state store's size at each scrape.
type storeCollector struct {
	s                      state.Store
	entries, bytes, onDisk *prometheus.Desc
}

func newStoreCollector(s state.Store) *storeCollector {
	return &storeCollector{s: s,
		entries: prometheus.NewDesc("kanon_state_entries", "Entries in the state store (expired ones not yet swept included).", nil, nil),
		bytes:   prometheus.NewDesc("kanon_state_bytes", "Bytes of the keys and values in the state store.", nil, nil),
		onDisk:  prometheus.NewDesc("kanon_state_disk_bytes", "Space used by the state store on disk.", nil, nil),
	}
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.entries
	ch <- c.bytes
	ch <- c.onDisk
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.s.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.entries, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(st.Entries))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(st.Bytes))
	ch <- prometheus.MustNewConstMetric(c.onDisk, prometheus.GaugeValue, float64(st.DiskBytes))
}

// OutputStatser is what the output collector reads (alert.Outputs).
type OutputStatser interface {
	Stats() []alert.OutputStats
}

// outputCollector reports the outputs' counters and queue and spool
// depths at each scrape.
type outputCollector struct {
	o                                                  OutputStatser
	delivered, retried, failed, dropped, spooled, dups *prometheus.Desc
	filtered, queueDepth, spoolDepth, spoolBytes       *prometheus.Desc
}

func newOutputCollector(o OutputStatser) *outputCollector {
	l := []string{"output", "type"}
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, l, nil) }
	return &outputCollector{o: o,
		delivered:  d("kanon_output_delivered_total", "Alerts delivered by the output."),
		retried:    d("kanon_output_retries_total", "Failed delivery attempts that were retried."),
		failed:     d("kanon_output_failed_total", "Alerts the output gave up on."),
		dropped:    d("kanon_output_dropped_total", "Alerts the output could not take (queue or spool full)."),
		spooled:    d("kanon_output_spooled_total", "Alerts written to the output's spool."),
		dups:       d("kanon_output_duplicates_total", "Alerts skipped because their id was delivered before."),
		filtered:   d("kanon_output_filtered_total", "Alerts the output's filter did not pass."),
		queueDepth: d("kanon_output_queue_depth", "Alerts in the output's in-memory queue."),
		spoolDepth: d("kanon_output_spool_depth", "Alerts in the output's disk spool."),
		spoolBytes: d("kanon_output_spool_bytes", "Bytes in the output's disk spool."),
	}
}

func (c *outputCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.delivered, c.retried, c.failed, c.dropped, c.spooled, c.dups, c.filtered, c.queueDepth, c.spoolDepth, c.spoolBytes} {
		ch <- d
	}
}

func (c *outputCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.o.Stats() {
		cm := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
			ch <- prometheus.MustNewConstMetric(d, t, v, s.Name, s.Type)
		}
		cm(c.delivered, prometheus.CounterValue, float64(s.Delivered))
		cm(c.retried, prometheus.CounterValue, float64(s.Retried))
		cm(c.failed, prometheus.CounterValue, float64(s.Failed))
		cm(c.dropped, prometheus.CounterValue, float64(s.Dropped))
		cm(c.spooled, prometheus.CounterValue, float64(s.Spooled))
		cm(c.dups, prometheus.CounterValue, float64(s.Duplicates))
		cm(c.filtered, prometheus.CounterValue, float64(s.Filtered))
		cm(c.queueDepth, prometheus.GaugeValue, float64(s.QueueDepth))
		cm(c.spoolDepth, prometheus.GaugeValue, float64(s.SpoolDepth))
		cm(c.spoolBytes, prometheus.GaugeValue, float64(s.SpoolBytes))
	}
}
