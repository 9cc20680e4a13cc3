package cloudwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/kanon-dev/kanon/internal/event"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/eks"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/state"
)

// Scheme is the scheme of the source's URLs.
const Scheme = "cloudwatch"

// Defaults of Config and Source.
const (
	DefaultPoll = 5 * time.Second
	// DefaultListEvery is how often the group's streams are listed.
	DefaultListEvery = time.Minute
	// DefaultMaxAttempts is the retryer's attempts of one call.
	DefaultMaxAttempts = 10
	// DefaultMaxBackoff is the longest wait between two attempts.
	DefaultMaxBackoff = 20 * time.Second
	// activeLag is how long a stream whose last event is read stays
	// active (CloudWatch updates lastEventTimestamp within an hour).
	activeLag = time.Hour
	// startPath is the position path of the group's start.
	startPath = ":start"
)

// Config is a source as its URL names it (see the package documentation).
type Config struct {
	Region       string
	LogGroup     string
	StreamPrefix string
	Poll         time.Duration
	Since        time.Duration
	Endpoint     string
}

// ParseURL reads a cloudwatch:// URL.
func ParseURL(raw string) (*Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", raw, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("source %s: "+format, append([]any{raw}, args...)...)
	}
	if u.Scheme != Scheme {
		return nil, bad("not a %s:// URL", Scheme)
	}
	if u.User != nil {
		return nil, bad("credentials do not go in the URL: they come from the AWS SDK's chain (environment, shared files, web identity, instance role)")
	}
	c := &Config{Region: u.Host, StreamPrefix: eks.AuditStreamPrefix, Poll: DefaultPoll}
	if c.Region == "" {
		return nil, bad("no region: want cloudwatch://REGION/LOG_GROUP")
	}
	group := strings.TrimPrefix(u.Path, "/")
	if strings.HasPrefix(group, "aws/") {
		group = "/" + group // no group may start with aws/: EKS's /aws/eks/NAME/cluster
	}
	if group == "" {
		return nil, bad("no log group: want cloudwatch://REGION/LOG_GROUP (EKS: /aws/eks/CLUSTER/cluster)")
	}
	c.LogGroup = group
	q := u.Query()
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, bad("%s given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "stream_prefix":
			c.StreamPrefix = v
		case "poll", "since":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 || (k == "poll" && d == 0) {
				return nil, bad("%s: %q is not a positive duration", k, v)
			}
			if k == "poll" {
				c.Poll = d
			} else {
				c.Since = d
			}
		case "endpoint":
			eu, err := url.Parse(v)
			if err != nil || (eu.Scheme != "https" && eu.Scheme != "http") || eu.Host == "" {
				return nil, bad("endpoint: %q is not an http(s) URL", v)
			}
			c.Endpoint = v
		default:
			return nil, bad("unknown parameter %q (stream_prefix, poll, since, endpoint)", k)
		}
	}
	return c, nil
}

// Input is the input name of the source's batches and positions.
func (c *Config) Input() string { return Scheme + ":" + c.Region + "/" + c.LogGroup }

// API is the part of the CloudWatch Logs client the source calls
// (*cloudwatchlogs.Client).
type API interface {
	DescribeLogStreams(ctx context.Context, in *cloudwatchlogs.DescribeLogStreamsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogStreamsOutput, error)
	GetLogEvents(ctx context.Context, in *cloudwatchlogs.GetLogEventsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error)
}

// NewClient returns a CloudWatch Logs client for c: the SDK's default
// configuration (credential chain, shared config) in c's region, at c's
// endpoint if set, with the standard retryer taking up to maxAttempts
// attempts (0: DefaultMaxAttempts) with waits of up to maxBackoff
// (0: DefaultMaxBackoff) and no retry quota.
func NewClient(ctx context.Context, c *Config, maxAttempts int, maxBackoff time.Duration) (*cloudwatchlogs.Client, error) {
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	if maxBackoff <= 0 {
		maxBackoff = DefaultMaxBackoff
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(c.Region), config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts, o.MaxBackoff, o.RateLimiter = maxAttempts, maxBackoff, ratelimit.None
		})
	}))
	if err != nil {
		return nil, fmt.Errorf("source %s: cannot load the AWS configuration: %w", c.Input(), err)
	}
	return cloudwatchlogs.NewFromConfig(awsCfg, func(o *cloudwatchlogs.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	}), nil
}

// Source polls the audit log streams of one log group (see the package
// documentation).
type Source struct {
	Config *Config
	// API is the client (nil: NewClient's, built when Run starts).
	API API
	// Logger receives the source's log (nil: slog.Default()).
	Logger *slog.Logger
	// ListEvery is how often the streams are listed (0: DefaultListEvery).
	ListEvery time.Duration
	// Now is the wall clock (nil: time.Now).
	Now func() time.Time
}

// stream is what the source knows of one log stream.
type stream struct {
	name    string
	last    int64 // lastEventTimestamp, 0 if unknown
	loaded  bool
	durable state.Position // committed with the last batch
	token   string         // forward token after the last page read
}

// Run implements run.Source: it polls until ctx ends (and returns nil) or
// the driver refuses a batch.
func (s *Source) Run(ctx context.Context, d *run.Driver) error {
	c := s.Config
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("source", c.Input())
	now := s.Now
	if now == nil {
		now = time.Now
	}
	every := s.ListEvery
	if every <= 0 {
		every = DefaultListEvery
	}
	api := s.API
	if api == nil {
		cl, err := NewClient(ctx, c, 0, 0)
		if err != nil {
			return err
		}
		api = cl
	}
	pos, err := state.NewPositions(d.Store(), c.Input())
	if err != nil {
		return err
	}
	sp, ok, err := pos.Get(ctx, startPath)
	if err != nil {
		return err
	}
	start := sp.Offset
	if !ok {
		start = now().Add(-c.Since).UnixMilli()
		if err := pos.Put(ctx, startPath, state.Position{Offset: start}); err != nil {
			return err
		}
	}
	r := &reader{s: s, c: c, api: api, d: d, pos: pos, log: log, start: start, streams: map[string]*stream{}}
	var listed time.Time
	for {
		if listed.IsZero() || now().Sub(listed) >= every {
			if err := r.list(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				log.Warn("cannot list the log streams", "err", err)
			} else {
				listed = now()
			}
		}
		names := make([]string, 0, len(r.streams))
		for n := range r.streams {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			st := r.streams[n]
			if err := r.read(ctx, st, now()); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				if errors.Is(err, run.ErrClosed) {
					return err
				}
				log.Warn("cannot read the log stream", "stream", n, "err", err)
				st.token = "" // again from the last durable position
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.Poll):
		}
	}
}

type reader struct {
	s       *Source
	c       *Config
	api     API
	d       *run.Driver
	pos     *state.Positions
	log     *slog.Logger
	start   int64
	streams map[string]*stream
}

// list updates the streams of the group with the prefix.
func (r *reader) list(ctx context.Context) error {
	var next *string
	for {
		in := &cloudwatchlogs.DescribeLogStreamsInput{LogGroupName: aws.String(r.c.LogGroup), NextToken: next,
			OrderBy: types.OrderByLogStreamName}
		if r.c.StreamPrefix != "" {
			in.LogStreamNamePrefix = aws.String(r.c.StreamPrefix)
		}
		out, err := r.api.DescribeLogStreams(ctx, in)
		if err != nil {
			return err
		}
		for _, ls := range out.LogStreams {
			name := aws.ToString(ls.LogStreamName)
			if name == "" {
				continue
			}
			st := r.streams[name]
			if st == nil {
				st = &stream{name: name}
				r.streams[name] = st
			}
			st.last = aws.ToInt64(ls.LastEventTimestamp)
		}
		if out.NextToken == nil || aws.ToString(out.NextToken) == aws.ToString(next) {
			return nil
		}
		next = out.NextToken
	}
}

// logEvent is one event of the payload handed to the driver.
type logEvent struct {
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

// payload is a CloudWatch Logs subscription payload: what the eks format
// reads for every delivery of CloudWatch Logs.
type payload struct {
	MessageType string     `json:"messageType"`
	LogGroup    string     `json:"logGroup"`
	LogStream   string     `json:"logStream"`
	LogEvents   []logEvent `json:"logEvents"`
}

// read reads a stream from its position to its end, a batch per page,
// each durable before the next page is read.
func (r *reader) read(ctx context.Context, st *stream, now time.Time) error {
	if !st.loaded {
		p, ok, err := r.pos.Get(ctx, st.name)
		if err != nil {
			return err
		}
		if !ok {
			p = state.Position{Offset: r.start}
		}
		st.durable, st.loaded = p, true
	}
	if st.token == "" && st.last != 0 && st.last <= st.durable.Offset && now.Sub(time.UnixMilli(st.last)) >= activeLag {
		return nil // read to its end, and not written for an hour
	}
	for {
		in := &cloudwatchlogs.GetLogEventsInput{LogGroupName: aws.String(r.c.LogGroup), LogStreamName: aws.String(st.name),
			StartFromHead: aws.Bool(true)}
		skip := 0
		if st.token != "" {
			in.NextToken = aws.String(st.token)
		} else {
			in.StartTime = aws.Int64(st.durable.Offset)
			skip = int(st.durable.Dev)
		}
		out, err := r.api.GetLogEvents(ctx, in)
		if err != nil {
			return err
		}
		p := st.durable
		pl := payload{MessageType: "DATA_MESSAGE", LogGroup: r.c.LogGroup, LogStream: st.name}
		for _, ev := range out.Events {
			ts := aws.ToInt64(ev.Timestamp)
			if skip > 0 && ts == st.durable.Offset {
				skip-- // read before the restart
				continue
			}
			skip = 0
			switch {
			case ts > p.Offset:
				p.Offset, p.Dev = ts, 1
			case ts == p.Offset:
				p.Dev++
			}
			p.Line++
			pl.LogEvents = append(pl.LogEvents, logEvent{Timestamp: ts, Message: aws.ToString(ev.Message)})
		}
		if len(pl.LogEvents) > 0 {
			if err := r.submit(ctx, st, &pl, p); err != nil {
				return err
			}
			st.durable = p
		}
		next := aws.ToString(out.NextForwardToken)
		end := next == "" || next == st.token || len(out.Events) == 0
		st.token = next
		if end {
			return nil
		}
	}
}

// submit hands the page to the driver and waits until it is durable.
func (r *reader) submit(ctx context.Context, st *stream, pl *payload, p state.Position) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(pl); err != nil {
		return fmt.Errorf("BUG: cannot encode a page of %s: %w", st.name, err)
	}
	data := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	b := &run.Batch{Input: Scheme, Cluster: eks.ClusterFromLogGroup(r.c.LogGroup), Bytes: int64(len(data)),
		Records: []ingest.Record{{Origin: event.Origin{Name: r.c.Input() + "/" + st.name, Line: st.durable.Line + 1}, Data: data}},
		Commit:  func(tx state.Tx) error { return r.pos.PutTx(tx, st.name, p) }}
	res, err := r.d.SubmitWait(ctx, b, true)
	if err != nil {
		return err
	}
	if res.Err != nil {
		return fmt.Errorf("the page was not committed: %w", res.Err)
	}
	if res.Bad > 0 {
		r.log.Warn("bad records in a page", "stream", st.name, "bad", res.Bad, "errors", res.Errors)
	}
	return nil
}
