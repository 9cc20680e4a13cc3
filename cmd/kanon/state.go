package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/open"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newStateCmd) }

// stateParams are the flags of kanon state and its subcommands.
type stateParams struct {
	stateDir string
	store    string
	rule     string
	kinds    []string
	yes      bool
}

func newStateParams() *stateParams { return &stateParams{stateDir: defaultStateDir()} }

func newStateCmd(streams *streams) *cobra.Command {
	p := newStateParams()
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Show, export, reset or repair what kanon has learned (new-terms history, alert groups, alerts raised)",
		Long: `Show, export, reset or repair the state store of kanon scan and serve.

The store (under --state-dir, or the Redis server of --store) holds, per rule: the new-terms history (each
term with the event times it was first and last seen, and when it expires),
the alert groups of rules with a dedup key, the ids of the alerts already
raised, the open windows of ES|QL rules, and what the rules dropped (late
events, alerts over max_signals, runs over the memory budget, summed over
the runs of kanon on the store); and the read positions of followed inputs
and the newest event time of the last serve. Expiry times are event times.`,
	}
	cmd.PersistentFlags().StringVar(&p.stateDir, "state-dir", p.stateDir, "directory of the state store")
	cmd.PersistentFlags().StringVar(&p.store, "store", "", storeFlagUsage)
	cmd.PersistentFlags().StringVar(&p.rule, "rule", "", "only the state of the rule with this `ID`")
	cmd.PersistentFlags().StringArrayVar(&p.kinds, "kind", nil, "only this `KIND` of state: terms, groups, alerts, windows, positions or run (repeatable)")
	sub := func(use, short string, fn func(ctx context.Context, w io.Writer, s state.Store, sel state.Selection) error) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, _ []string) error {
			return withState(cmd.Context(), p, func(ctx context.Context, s state.Store, sel state.Selection) error {
				return fn(ctx, streams.out, s, sel)
			})
		}}
	}
	reset := sub("reset", "Forget the state of every rule, or of one rule (--rule), of some kinds only (--kind); needs --yes",
		func(ctx context.Context, w io.Writer, s state.Store, sel state.Selection) error {
			return stateReset(ctx, w, s, sel, p.yes)
		})
	reset.Flags().BoolVar(&p.yes, "yes", false, "really delete")
	resetsDamaged(reset, streams, p)
	cmd.AddCommand(sub("show", "Print the learned state as tables", stateShow),
		sub("export", "Write the state as JSON lines, one entry per line", stateExport), reset,
		newStateRepairCmd(streams, p))
	return cmd
}

// withState opens the store of p.store, else of p.stateDir (it must
// exist), and runs fn with the entries the flags select.
func withState(ctx context.Context, p *stateParams, fn func(ctx context.Context, s state.Store, sel state.Selection) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	sel := state.Selection{Rule: p.rule}
	for _, k := range p.kinds {
		ns, err := state.ParseNamespace(k)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		sel.Namespaces = append(sel.Namespaces, ns)
	}
	s, _, err := open.Store(ctx, open.Config{URL: p.store, Dir: p.stateDir, Existing: true})
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer s.Close()
	if err := fn(ctx, s, sel); err != nil {
		return &exitError{code: 1, err: err}
	}
	return s.Close()
}

// stateEntry is one decoded entry, as exported.
type stateEntry struct {
	Kind      string    `json:"kind"`
	Rule      string    `json:"rule"`
	Term      []string  `json:"term,omitempty"`
	Key       string    `json:"key,omitempty"`
	ID        string    `json:"id,omitempty"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	RaisedAt  time.Time `json:"raised_at,omitzero"`
	Count     int64     `json:"count,omitempty"`
	Delivered int64     `json:"delivered,omitempty"`
	Ends      time.Time `json:"ends,omitzero"`
	Samples   int       `json:"samples,omitempty"`
	Bytes     int       `json:"bytes,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	// Drops are a rule's drop counts, Watermark the newest event time of
	// the last run (kind run).
	Drops     *runDrops `json:"drops,omitempty"`
	Watermark time.Time `json:"watermark,omitzero"`
	Replica   string    `json:"replica,omitempty"`
}

// runDrops is state.RunDrops as exported.
type runDrops struct {
	Late       int64 `json:"late_events"`
	MaxSignals int64 `json:"max_signals"`
	Budget     int64 `json:"budget_runs"`
}

// newStateEntry renders an item of the store.
func newStateEntry(it *state.Item) stateEntry {
	e := stateEntry{Kind: it.NS.String(), Rule: it.Rule, Expires: it.Expiry}
	switch it.NS {
	case state.NSTerms:
		e.Term, e.FirstSeen, e.LastSeen = it.Term, it.TermInfo.FirstSeen, it.TermInfo.LastSeen
	case state.NSGroups:
		g := &it.Group
		e.Key, e.ID, e.Count, e.Delivered = string(it.Part), g.ID, g.Count, g.Delivered
		e.FirstSeen, e.LastSeen, e.Ends, e.Samples = g.FirstSeen, g.LastSeen, g.End, len(g.Samples)
	case state.NSAlerts:
		e.ID, e.RaisedAt = string(it.Part), it.RaisedAt
	case state.NSRun:
		e.Key = string(it.Part)
		if it.Watermark.IsZero() {
			e.Drops = &runDrops{Late: it.Drops.Late, MaxSignals: it.Drops.MaxSignals, Budget: it.Drops.Budget}
		}
		e.Watermark, e.Replica = it.Watermark, it.Replica
	default:
		e.Key, e.Bytes = fmt.Sprintf("%q", it.Part), len(it.Value)
	}
	return e
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func stateShow(ctx context.Context, w io.Writer, s state.Store, sel state.Selection) error {
	st, err := s.Stats(ctx)
	if err != nil {
		return err
	}
	sum, err := state.Summarize(ctx, s, sel)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "state store: %d entries, %s (%s on disk)\n", st.Entries, humanBytes(st.Bytes), humanBytes(st.DiskBytes))
	if sum.Total.Entries == 0 {
		if sel.Rule != "" {
			fmt.Fprintf(w, "nothing learned for rule %s\n", sel.Rule)
		} else {
			fmt.Fprintln(w, "nothing learned yet")
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  KIND\tENTRIES\tSIZE\tFIRST EXPIRES\tLAST EXPIRES")
	for _, nu := range sum.Namespaces {
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", nu.NS, nu.Entries, humanBytes(nu.Bytes), fmtTime(nu.FirstExpiry), fmtTime(nu.LastExpiry))
	}
	tw.Flush()
	if sum.Malformed.Entries > 0 {
		fmt.Fprintf(w, "%d entries with malformed keys\n", sum.Malformed.Entries)
	}
	// The terms and groups, listed per rule.
	tables := state.Selection{Rule: sel.Rule}
	for _, ns := range []state.Namespace{state.NSTerms, state.NSGroups} {
		if len(sel.Namespaces) == 0 || slices.Contains(sel.Namespaces, ns) {
			tables.Namespaces = append(tables.Namespaces, ns)
		}
	}
	// What the runs dropped, per rule, and the newest event time.
	drops := map[string]state.RunDrops{}
	if len(sel.Namespaces) == 0 || slices.Contains(sel.Namespaces, state.NSRun) {
		err = state.Each(ctx, s, state.Selection{Rule: sel.Rule, Namespaces: []state.Namespace{state.NSRun}}, func(it *state.Item) error {
			switch {
			case !it.Watermark.IsZero() && it.Replica != "":
				fmt.Fprintf(w, "newest event time of the last run of replica %s: %s\n", it.Replica, it.Watermark.Format(time.RFC3339Nano))
			case !it.Watermark.IsZero():
				fmt.Fprintf(w, "newest event time of the last run: %s (a restarted serve goes on from it)\n", it.Watermark.Format(time.RFC3339Nano))
			default: // the replicas' counts add up
				drops[it.Rule] = drops[it.Rule].Add(it.Drops)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	heads := [2]string{"  TERM\tFIRST SEEN\tLAST SEEN\tEXPIRES", "  GROUP KEY\tALERT ID\tCOUNT\tDELIVERED\tFIRST SEEN\tLAST SEEN\tENDS\tEXPIRES"}
	rows := map[string][2][]string{} // per rule: the rows of its terms and of its groups
	if len(tables.Namespaces) > 0 {
		err = state.Each(ctx, s, tables, func(it *state.Item) error {
			r, e := rows[it.Rule], newStateEntry(it)
			if it.NS == state.NSTerms {
				r[0] = append(r[0], fmt.Sprintf("  %s\t%s\t%s\t%s", strings.Join(e.Term, ", "), fmtTime(e.FirstSeen), fmtTime(e.LastSeen), fmtTime(e.Expires)))
			} else {
				r[1] = append(r[1], fmt.Sprintf("  %s\t%s\t%d\t%d\t%s\t%s\t%s\t%s", e.Key, e.ID, e.Count, e.Delivered,
					fmtTime(e.FirstSeen), fmtTime(e.LastSeen), fmtTime(e.Ends), fmtTime(e.Expires)))
			}
			rows[it.Rule] = r
			return nil
		})
		if err != nil {
			return err
		}
	}
	for i := range sum.Rules {
		rs := &sum.Rules[i]
		name := rs.Rule
		if name == "" {
			name = "(no rule)"
		}
		nt, ng, na := rs.In(state.NSTerms).Entries, rs.In(state.NSGroups).Entries, rs.In(state.NSAlerts).Entries
		if rs.Rule == "" && rs.Total.Entries == rs.In(state.NSRun).Entries {
			continue // only the newest event time, printed above
		}
		fmt.Fprintf(w, "\nrule %s: %d terms, %d groups, %d alerts raised", name, nt, ng, na)
		if other := rs.Total.Entries - nt - ng - na - rs.In(state.NSRun).Entries; other > 0 {
			fmt.Fprintf(w, ", %d other entries", other)
		}
		if d, ok := drops[rs.Rule]; ok {
			fmt.Fprintf(w, "; dropped: %d late events, %d alerts over max_signals, %d runs over the memory budget", d.Late, d.MaxSignals, d.Budget)
		}
		fmt.Fprintln(w)
		for k, lines := range rows[rs.Rule] {
			if len(lines) > 0 {
				tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, heads[k])
				fmt.Fprintln(tw, strings.Join(lines, "\n"))
				tw.Flush()
			}
		}
	}
	return nil
}

func stateExport(ctx context.Context, w io.Writer, s state.Store, sel state.Selection) error {
	enc := json.NewEncoder(w)
	return state.Each(ctx, s, sel, func(it *state.Item) error { return enc.Encode(newStateEntry(it)) })
}

// stateReset deletes the state sel selects; without yes it only says what
// it would delete.
func stateReset(ctx context.Context, w io.Writer, s state.Store, sel state.Selection, yes bool) error {
	what := "every rule"
	if sel.Rule != "" {
		what = "rule " + sel.Rule
	}
	if len(sel.Namespaces) > 0 {
		what += " (" + strings.ReplaceAll(strings.Trim(fmt.Sprint(sel.Namespaces), "[]"), " ", ", ") + ")"
	}
	if !yes {
		sum, err := state.Summarize(ctx, s, sel)
		if err != nil {
			return err
		}
		return fmt.Errorf("would delete %d entries of %s; run again with --yes to delete them", sum.Total.Entries, what)
	}
	sum, err := state.Reset(ctx, s, sel)
	if err != nil {
		return err
	}
	var parts []string
	for _, nu := range sum.Namespaces {
		parts = append(parts, fmt.Sprintf("%d %s", nu.Entries, nu.NS))
	}
	fmt.Fprintf(w, "deleted %d entries of %s", sum.Total.Entries, what)
	if len(parts) > 0 {
		fmt.Fprintf(w, ": %s", strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	return nil
}
