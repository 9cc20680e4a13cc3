package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/run"
	"github.com/kanon-dev/kanon/internal/server"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newServeCmd) }

func newServeCmd(io *streams) *cobra.Command {
	var configFile string
	var check bool
	var outputs []string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the rules in real time: kube-apiserver's audit webhook, EKS, GKE and AKS deliveries, Kafka, followed audit log files, stdin",
		Long: `Run the rules in real time and deliver the alerts to the outputs.

Inputs: the audit webhook of kube-apiserver (--audit-webhook-config-file
pointing at https://HOST:PORT/audit/CLUSTER), with TLS and client
authentication by certificate (--client-ca) or bearer token (--token-file);
followed audit log files (--input PATH, through rotation, resuming where the
last run stopped); standard input (--input -).

Managed clusters, whose audit logs the provider delivers: EKS through a
Kinesis Data Firehose HTTP endpoint destination (POST /firehose, with
--firehose-access-key) or by polling CloudWatch Logs (--source
cloudwatch://REGION/LOG_GROUP); GKE through a Pub/Sub push subscription
(POST /pubsub, OIDC tokens checked with --pubsub-audience) or a pull
subscription (--source pubsub://PROJECT/SUBSCRIPTION); AKS through Event
Hubs' Kafka endpoint (--source eventhubs://NAMESPACE/HUB?group=NAME&
connection_string_file=PATH). Any Kafka topic of audit logs: --source
kafka://BROKER[,BROKER]/TOPIC?group=NAME (tls=, ca_file=, sasl=, username=,
password_file= or password_env=, cluster=); a NATS JetStream stream:
--source nats://HOST:PORT/STREAM?consumer=NAME, a durable pull consumer
the replicas share. Each delivery is acknowledged
(an offset committed) only once its alerts and state are durable, and a
delivery sent again raises nothing twice. Replicas on one Redis store
(--store redis://..., --replica NAME) share a Kafka consumer group. See
docs/eks.md, docs/gke.md and docs/aks.md.

The configuration file (--config, YAML) has a key for every flag; flags
given on the command line override it. --check validates the configuration,
the rules and the certificates, and exits.

Signals: SIGTERM or SIGINT stops taking batches, answers those in flight
once they are durable, checkpoints the open ES|QL windows and dedup groups
into the state store without closing them, flushes the outputs and exits:
a kanon serve started again on the same state (or a replica on a shared
store) goes on with those runs as if nothing had stopped, so a rollout or
an eviction neither ends a window early nor makes the rest of its events
late. Only the end of the inputs (standard input at its end, with no
webhook) closes the open runs. SIGHUP reloads the rules (a rule file with
errors is refused and the old rules keep running; open ES|QL runs of
unchanged rules carry over, dedup groups and new-terms history stay in the
store), the TLS certificate, the client CA and the bearer tokens; those
files are also watched and reloaded when they change.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadServeConfig(configFile, cmd.Flags(), outputs)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if check {
				return checkServe(io, cfg)
			}
			return runServe(cmd.Context(), io, cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&configFile, "config", "c", "", "configuration `FILE` (YAML)")
	fs.BoolVar(&check, "check", false, "validate the configuration, rules and certificates, and exit")
	fs.StringArrayVarP(&outputs, "output", "o", nil, "alert output: "+alert.OutputFlagForms+" (repeatable; replaces the key outputs; secrets as env:NAME or file:PATH)")
	newServeConfig().registerFlags(fs)
	return cmd
}

func runServe(ctx context.Context, io *streams, c *serveConfig) error {
	if ctx == nil {
		ctx = context.Background()
	}
	fail := func(err error) error { return &exitError{code: 1, err: err} }
	if err := c.validate(); err != nil {
		return fail(err)
	}
	log := c.logger(io.err)
	rf := c.ruleFlags()
	compiled, err := rf.load()
	if err != nil {
		return fail(err)
	}
	cert, err := c.Certificate()
	if err != nil {
		return fail(err)
	}
	tokens, err := c.Tokens()
	if err != nil {
		return fail(err)
	}
	creds := &server.Credentials{Cert: cert, Tokens: tokens, Log: log}
	store, where, err := openStore(ctx, c.Store, c.StateDir, c.NoState)
	if err != nil {
		return fail(err)
	}
	defer store.Close()
	spool := c.SpoolDir
	if spool == "" {
		spool = filepath.Join(c.StateDir, "spool")
	}
	outs, err := alert.NewOutputs(c.Outputs, alert.Options{Stdout: io.out, SpoolRoot: spool,
		OnError: func(name string, err error) { log.Warn("output error", "output", name, "err", err) }})
	if err != nil {
		return fail(err)
	}
	shutdownOutputs := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownWait)
		defer cancel()
		return outs.Shutdown(sctx)
	}
	reg := run.NewRegistry()
	bi := readBuildInfo()
	if err := run.BuildInfo(reg, bi.Version, bi.Commit, bi.Go); err != nil {
		shutdownOutputs()
		return fail(err)
	}
	replica, err := c.ReplicaName(!c.NoState && c.Store != "")
	if err != nil {
		shutdownOutputs()
		return fail(err)
	}
	d, err := run.New(run.Config{
		Rules: compiled, Registry: registry(), Store: store, Sink: outs, Policy: c.Policy(),
		Format: c.Format, MaxRecordBytes: int(c.MaxRecordBytes), Dedup: run.DefaultDedup,
		LearnOnly: c.LearnOnly, GroupUpdates: c.GroupUpdates, GroupUpdateEvery: c.GroupUpdateEvery, QueueSize: c.QueueSize, QueueBytes: int64(c.QueueBytes), OutboxLease: c.OutboxLease, Decoders: run.DefaultDecoders(),
		Metrics: reg, Logger: log, Replica: replica,
		OnBad: func(input string, b ingest.BadRecord) { log.Warn("bad record", "input", input, "err", b) },
	})
	if err != nil {
		shutdownOutputs()
		return fail(err)
	}
	log.Info("kanon serve started", "rules", len(compiled), "state", where, "replica", replica, "outputs", len(c.Outputs))

	srcs, names, startErr := c.sources(io.in, log)
	servers, err := c.Webhook.Start(d, cert, tokens, log)
	if startErr == nil {
		startErr = err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if len(servers) > 0 {
		creds.Register(reg)
		if err := creds.Watch(ctx); err != nil {
			log.Warn("credential files not watched: SIGHUP reloads them", "err", err)
		}
	}
	if startErr != nil {
		srcs, names = nil, nil // nothing runs
	}
	in := c.startInputs(ctx, d, srcs, names, log)
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	runErr := startErr
	srvErrs := make(chan error, 8)
	for _, s := range servers {
		go func() {
			for err := range s.Err() {
				srvErrs <- err
			}
		}()
	}
	var streamsDone <-chan struct{}
	if len(servers) == 0 && c.StreamsOnly() {
		streamsDone = in.done
	}
	inputEnded := false // the inputs ended: the open runs close
loop:
	for runErr == nil {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				reload(ctx, log, d, rf, creds)
				continue
			}
			log.Info("shutting down", "signal", s.String())
			break loop
		case <-ctx.Done():
			break loop
		case err := <-in.errs:
			runErr = err
		case err := <-srvErrs:
			runErr = err
		case <-streamsDone:
			log.Info("inputs ended")
			inputEnded = true
			break loop
		}
	}
	// Drain: stop taking batches and answer those in flight (each once it
	// is durable), stop the inputs; then hand the open runs over through
	// the store (Stop) — or, at the end of the inputs, close them (Close)
	// — flush the outputs and commit the state.
	sctx, scancel := context.WithTimeout(context.Background(), c.ShutdownWait)
	defer scancel()
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			log.Warn("webhook shutdown", "err", err)
		}
	}
	cancel()
	var derr error
	if inputEnded {
		derr = d.Close(sctx)
	} else {
		derr = d.Stop(sctx)
		if derr == nil {
			log.Info("open windows and groups checkpointed for the next run", "state", where)
		}
	}
	in.waitSources(sctx)
	errs := []error{runErr, derr, shutdownOutputs(), store.Close()}
	if err := errors.Join(errs...); err != nil {
		log.Error("kanon serve stopped", "err", err)
		return fail(err)
	}
	log.Info("kanon serve stopped")
	return nil
}

// reload loads the rules again and swaps them in; a rule set with errors
// is refused and the running rules stay. The certificate, client CA and
// bearer tokens are read again too (each logs what it did).
func reload(ctx context.Context, log *slog.Logger, d *run.Driver, rf ruleFlags, creds *server.Credentials) {
	creds.Reload()
	compiled, err := rf.load()
	if err != nil {
		d.RefuseReload()
		log.Error("rules not reloaded: the old rules keep running", "err", err.Error())
		return
	}
	if err := d.Reload(ctx, compiled); err != nil {
		log.Error("rules not reloaded: the old rules keep running", "err", err)
		return
	}
	log.Info("rules reloaded", "rules", len(compiled), "ids", ruleIDs(compiled))
}

func ruleIDs(rs []*rule.Compiled) string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.ID
	}
	return strings.Join(ids, ",")
}
