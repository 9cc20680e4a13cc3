package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the webhook's own metrics, in the driver's registry beside
// the driver's.
type metrics struct {
	batchSize prometheus.Histogram
	requests  *prometheus.CounterVec // code
	reqTime   prometheus.Histogram
	inflight  prometheus.Gauge
	repeated  *prometheus.CounterVec // endpoint
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kanon_webhook_batch_events", Help: "Events per webhook request.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_webhook_requests_total", Help: "Webhook requests by response code."}, []string{"code"}),
		reqTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kanon_webhook_request_seconds", Help: "Time from the receipt of a webhook request to its response.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2, 18)}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kanon_webhook_inflight_requests", Help: "Webhook requests being served."}),
		repeated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kanon_deliveries_repeated_total",
			Help: "Requests acknowledged without evaluation because the same delivery was durable already (a retry whose answer was lost, or sent again after a restart), by endpoint."}, []string{"endpoint"}),
	}
	// Several listeners (HTTPS and plain HTTP) share one driver: the
	// first registers the metrics, the others use them.
	m.batchSize = register(reg, m.batchSize)
	m.requests = register(reg, m.requests)
	m.reqTime = register(reg, m.reqTime)
	m.inflight = register(reg, m.inflight)
	m.repeated = register(reg, m.repeated)
	for _, e := range []string{"webhook", "firehose", "pubsub"} {
		m.repeated.WithLabelValues(e)
	}
	// The answers kube-apiserver sees, at zero from the start.
	for _, code := range []int{200, 400, 401, 403, 408, 413, 415, 429, 500, 503} {
		m.requests.WithLabelValues(strconv.Itoa(code))
	}
	return m
}

// register registers c, or returns the collector registered before under
// its name.
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if prev, ok := are.ExistingCollector.(C); ok {
				return prev
			}
		}
		panic("BUG: server metrics: " + err.Error())
	}
	return c
}

func (m *metrics) response(code int) { m.requests.WithLabelValues(strconv.Itoa(code)).Inc() }
