package run

import (
	"context"
	"sync"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
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
	alerts     *prometheus.CounterVec // rule, severity
	ruleErrors *prometheus.CounterVec // rule
	evalTime   prometheus.Histogram
	alertDelay prometheus.Histogram
	commitTime prometheus.Histogram
	queue      prometheus.Gauge
	rules      prometheus.Gauge
	reloads    *prometheus.CounterVec // result
	rotations  *prometheus.CounterVec // path, kind

	mu       sync.Mutex
	clusters map[string]bool
	pairs    map[[2]string]counterPair
	alertBy  map[[2]string]prometheus.Counter
}

type counterPair struct{ received, evaluated prometheus.Counter }

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		reg:      reg,
		clusters: map[string]bool{},
		pairs:    map[[2]string]counterPair{},
		alertBy:  map[[2]string]prometheus.Counter{},
	}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.received = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_events_received_total", Help: "Audit events decoded from an input."}, []string{"input", "cluster"})
	m.evaluated = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_events_evaluated_total", Help: "Audit events evaluated by every rule."}, []string{"input", "cluster"})
	m.bad = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_bad_records_total", Help: "Records (or parts of records) that could not be read."}, []string{"input"})
	m.skipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_skipped_records_total", Help: "Records skipped on purpose (not audit events)."}, []string{"input"})
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_alerts_total", Help: "Alerts handed to the outputs."}, []string{"rule", "severity"})
	m.ruleErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_rule_errors_total", Help: "Rule-level errors that did not stop evaluation."}, []string{"rule"})
	m.evalTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kanon_evaluation_seconds", Help: "Time to evaluate one event against every rule (the mean of each batch).",
		Buckets: prometheus.ExponentialBuckets(250e-9, 2, 16)})
	m.alertDelay = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kanon_alert_latency_seconds", Help: "Time from the receipt of the input (webhook request, file chunk) to its alert being handed to the outputs.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18)})
	m.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kanon_commit_seconds", Help: "Time to flush the outputs and commit the state of a group of batches.",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18)})
	m.queue = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kanon_pipeline_queue_depth", Help: "Batches waiting for the driver."})
	m.rules = prometheus.NewGauge(prometheus.GaugeOpts{Name: "kanon_rules_loaded", Help: "Rules the engine runs."})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_rule_reloads_total", Help: "Rule reloads by result (ok, refused)."}, []string{"result"})
	m.rotations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_tail_rotations_total", Help: "Rotations of followed files."}, []string{"path", "kind"})
	for _, c := range []prometheus.Collector{m.received, m.evaluated, m.bad, m.skipped, m.alerts, m.ruleErrors, m.evalTime, m.alertDelay,
		m.commitTime, m.queue, m.rules, m.reloads, m.rotations} {
		f(c)
	}
	return m
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
	if m.clusters[c] {
		return c
	}
	if len(m.clusters) >= maxClusterLabels {
		return "_other"
	}
	m.clusters[c] = true
	return c
}

// counted adds received and evaluated events of one input and cluster.
func (m *metrics) counted(input, cluster string, received, evaluated int) {
	m.mu.Lock()
	cl := m.clusterLabel(cluster)
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
	m.mu.Lock()
	k := [2]string{a.Rule.ID, a.Rule.Severity}
	c, ok := m.alertBy[k]
	if !ok {
		c = m.alerts.WithLabelValues(a.Rule.ID, a.Rule.Severity)
		m.alertBy[k] = c
	}
	m.mu.Unlock()
	c.Inc()
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
