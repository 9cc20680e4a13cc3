package alert

import (
	"time"
)

// WebhookConfig configures the webhook and Slack outputs (NewWebhookSink,
// NewSlackSink; see OutputConfig for the meaning and defaults of each
// field). URL and header values may be env:NAME or file:PATH
// (ResolveSecret).
type WebhookConfig struct {
	// Name names the sink in errors and stats.
	Name               string
	URL                string
	Headers            map[string]string
	Timeout            time.Duration
	CAFile             string
	InsecureSkipVerify bool
	// SpoolDir is required.
	SpoolDir     string
	SpoolMaxSize int64
	// SegmentSize is the size at which spool segments roll (default 4MiB).
	SegmentSize int64
	QueueSize   int
	MinBackoff  time.Duration
	MaxBackoff  time.Duration
	// SyncInterval is how often spooled alerts are fsync'd when nobody
	// calls Flush (default 1s).
	SyncInterval time.Duration
	// OnError, if set, is called (from the sink's goroutines) with every
	// failed attempt and every alert given up.
	OnError func(err error)
}

// NewWebhookSink POSTs each alert, as JSON, to cfg.URL, one alert per
// request, in order, with the alert's delivery key (Alert.DeliveryKey:
// the id, and the count of a group) in the Idempotency-Key header, with
// the retries, backoff and spool of SpooledSink. It opens the spool and
// starts delivering, beginning with the alerts left in the spool by a
// previous run.
func NewWebhookSink(cfg WebhookConfig) (*SpooledSink, error) {
	return newWebhookSink(TypeWebhook, cfg, Marshal)
}

func newWebhookSink(typ string, cfg WebhookConfig, encode func(*Alert) ([]byte, error)) (*SpooledSink, error) {
	if cfg.Name == "" {
		cfg.Name = typ
	}
	tr, err := newHTTPTransport(typ, cfg.Name, httpConfig{
		URL: cfg.URL, Headers: cfg.Headers, Timeout: cfg.Timeout,
		CAFile: cfg.CAFile, InsecureSkipVerify: cfg.InsecureSkipVerify,
	}, httpFormat{contentType: "application/json"})
	if err != nil {
		return nil, err
	}
	return newSpooledSink(cfg.senderConfig(typ), tr, encode)
}

func (c *WebhookConfig) senderConfig(typ string) senderConfig {
	return senderConfig{
		typ: typ, name: c.Name, spoolDir: c.SpoolDir, spoolMaxSize: c.SpoolMaxSize,
		segmentSize: c.SegmentSize, queueSize: c.QueueSize, batchSize: 1,
		minBackoff: c.MinBackoff, maxBackoff: c.MaxBackoff, syncInterval: c.SyncInterval,
		onError: c.OnError,
	}
}
