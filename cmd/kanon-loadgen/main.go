// Command kanon-loadgen writes realistic Kubernetes audit logs for
// benchmarks, load tests and trying out rules.
//
// Usage:
//
//	kanon-loadgen [flags]
//
// By default it writes 10,000 events to standard output as JSON lines, one
// audit.k8s.io/v1 Event per line, exactly as kube-apiserver's log backend
// (--audit-log-format=json) writes them. The traffic is a mix of
// controllers, kubelets, operators' service accounts and kubectl users,
// with 2 % anonymous health checks and scanners and 10 % of events carrying
// request/response bodies; see package internal/loadgen for the details.
// The same flags always give the same bytes.
//
// Flags:
//
//	-n N           number of events (default 10000)
//	-seed S        random seed (default 1)
//	-o FILE        output file; "-" or empty is standard output
//	-gzip          gzip the output
//	-start TIME    RFC 3339 event time of the first event (default 2024-05-06T09:00:00Z)
//	-rate R        events per second of event time (default 200)
//	-eventlist N   write audit EventList webhook bodies of N events each, one per line,
//	               instead of single events (0: single events)
//	-anonymous F   fraction of anonymous events (default 0.02)
//	-bodies F      fraction of events with request/response bodies (default 0.10)
//	-clusters N    number of simulated clusters (default 4)
//	-nodes N       kubelets per cluster (default 12)
//	-bursts B      anonymous enumeration bursts per hour of event time (default 0):
//	               one source IP and user agent asking for 10 to 24 distinct API
//	               paths within a minute, logged at level Request
//
// For load tests of kanon serve on NATS JetStream (bench/replicas.sh):
//
//	-nats URL      publish to a JetStream subject, nats://HOST:PORT/SUBJECT, instead
//	               of writing: JSON lines, -per-message events a message, each
//	               acknowledged by the stream that captures the subject
//	-per-message N events per message with -nats (default 100)
//	-from FILE     with -nats: publish the lines of FILE (say, a log written
//	               with -o) instead of generating; the summary then counts
//	               lines and bytes only
//	-nats-stream S create the JetStream stream S capturing the subject, unless a
//	               stream of that name exists
//
// A summary (events, bytes, mean size, ratios, time taken) goes to standard
// error. Exit status: 0 on success, 1 on a usage or I/O error.
//
// Examples:
//
//	kanon-loadgen -n 100000 -gzip -o audit.log.gz
//	kanon-loadgen -n 50000 -eventlist 400 -o webhook-bodies.jsonl
//	kanon-loadgen -n 100000 -rate 20 -anonymous 0.005 -bursts 12 -o enumerations.log
//	kanon-loadgen -n 100000 -bursts 12 -nats nats://127.0.0.1:4222/audit.lab -nats-stream AUDIT
package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kanon-dev/kanon/internal/loadgen"
)

// params are the command's settings.
type params struct {
	opts      loadgen.Options
	output    string
	gzip      bool
	eventList int
	// nats, if set, is nats://HOST:PORT/SUBJECT: publish there instead.
	nats       string
	natsStream string
	from       string // with nats: publish this file's lines instead
	perMessage int
}

// newParams returns the defaults.
func newParams() params {
	return params{opts: loadgen.DefaultOptions(10_000, 1), perMessage: 100}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, writes the log and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	p := newParams()
	fs := flag.NewFlagSet("kanon-loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&p.opts.Events, "n", p.opts.Events, "number of events")
	fs.Int64Var(&p.opts.Seed, "seed", p.opts.Seed, "random seed")
	fs.StringVar(&p.output, "o", "", `output file ("-" or empty: standard output)`)
	fs.BoolVar(&p.gzip, "gzip", false, "gzip the output")
	start := fs.String("start", p.opts.Start.Format(time.RFC3339), "RFC 3339 event time of the first event")
	fs.Float64Var(&p.opts.Rate, "rate", p.opts.Rate, "events per second of event time")
	fs.IntVar(&p.eventList, "eventlist", 0, "write EventList webhook bodies of this many events each (0: single events)")
	fs.Float64Var(&p.opts.AnonymousRatio, "anonymous", p.opts.AnonymousRatio, "fraction of anonymous events")
	fs.Float64Var(&p.opts.BodyRatio, "bodies", p.opts.BodyRatio, "fraction of events with request/response bodies")
	fs.IntVar(&p.opts.Clusters, "clusters", p.opts.Clusters, "number of simulated clusters")
	fs.IntVar(&p.opts.NodesPerCluster, "nodes", p.opts.NodesPerCluster, "kubelets per cluster")
	fs.Float64Var(&p.opts.Bursts, "bursts", p.opts.Bursts, "anonymous enumeration bursts per hour of event time (0: none)")
	fs.StringVar(&p.nats, "nats", "", "publish to this JetStream subject, nats://HOST:PORT/SUBJECT, instead of writing")
	fs.StringVar(&p.natsStream, "nats-stream", "", "with -nats: create this JetStream stream of the subject unless it exists")
	fs.StringVar(&p.from, "from", "", "with -nats: publish the lines of this file (a log written with -o) instead of generating")
	fs.IntVar(&p.perMessage, "per-message", p.perMessage, "events per message with -nats")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kanon-loadgen: unexpected argument %q\n", fs.Arg(0))
		return 1
	}
	t, err := time.Parse(time.RFC3339Nano, *start)
	if err != nil {
		fmt.Fprintf(stderr, "kanon-loadgen: cannot parse -start %q: want RFC 3339 such as 2024-05-06T09:00:00Z\n", *start)
		return 1
	}
	p.opts.Start = t
	if p.eventList < 0 {
		fmt.Fprintf(stderr, "kanon-loadgen: -eventlist must not be negative, got %d\n", p.eventList)
		return 1
	}
	if p.nats != "" && (p.eventList > 0 || p.gzip || p.output != "") {
		fmt.Fprintf(stderr, "kanon-loadgen: -nats publishes JSON lines: it takes no -o, -gzip or -eventlist\n")
		return 1
	}
	if p.from != "" && p.nats == "" {
		fmt.Fprintf(stderr, "kanon-loadgen: -from needs -nats\n")
		return 1
	}
	if p.perMessage <= 0 {
		fmt.Fprintf(stderr, "kanon-loadgen: -per-message must be positive, got %d\n", p.perMessage)
		return 1
	}
	if err := p.opts.Validate(); err != nil {
		fmt.Fprintf(stderr, "kanon-loadgen: %v\n", err)
		return 1
	}
	began := time.Now()
	write, verb := p.write, "wrote"
	if p.nats != "" {
		write, verb = func(io.Writer) (loadgen.Stats, error) { return p.publish() }, "published"
	}
	st, err := write(stdout)
	if err != nil {
		fmt.Fprintf(stderr, "kanon-loadgen: %v\n", err)
		return 1
	}
	elapsed := time.Since(began)
	fmt.Fprintf(stderr, "%s %d events, %d bytes before compression (mean event %.0f B, anonymous %.2f %%, with bodies %.2f %%) in %v (%.0f events/s)\n",
		verb, st.Events, st.Bytes, st.MeanSize(), 100*st.AnonymousRatio(), 100*st.BodyRatio(), elapsed.Round(time.Millisecond), float64(st.Events)/elapsed.Seconds())
	return 0
}

// write generates the log into the output p names, or stdout.
func (p params) write(stdout io.Writer) (st loadgen.Stats, err error) {
	var out io.Writer = stdout
	if p.output != "" && p.output != "-" {
		f, err := os.Create(p.output)
		if err != nil {
			return st, fmt.Errorf("cannot create output: %w", err)
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("cannot write %s: %w", p.output, cerr)
			}
		}()
		out = f
	}
	bw := bufio.NewWriterSize(out, 256<<10)
	var w io.Writer = bw
	var zw *gzip.Writer
	if p.gzip {
		zw = gzip.NewWriter(bw)
		w = zw
	}
	if p.eventList > 0 {
		st, err = loadgen.WriteEventLists(w, p.opts, p.eventList)
	} else {
		st, err = loadgen.Generate(w, p.opts)
	}
	if zw != nil {
		err = errors.Join(err, zw.Close())
	}
	if ferr := bw.Flush(); ferr != nil {
		err = errors.Join(err, fmt.Errorf("cannot write output: %w", ferr))
	}
	return st, err
}
