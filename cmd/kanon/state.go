package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newStateCmd) }

// stateParams are the flags of kanon state and its subcommands.
type stateParams struct {
	stateDir string
	rule     string
	yes      bool
}

func newStateParams() *stateParams { return &stateParams{stateDir: defaultStateDir()} }

func newStateCmd(io *streams) *cobra.Command {
	p := newStateParams()
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Show, export or reset what kanon has learned (new-terms history, alert groups, alerts raised)",
		Long: `Show, export or reset the state store of kanon scan and serve.

The store (under --state-dir) holds, per rule: the new-terms history (each
term with the event times it was first and last seen, and when it expires),
the alert groups of rules with a dedup key, and the ids of the alerts
already raised. Expiry times are event times.`,
	}
	cmd.PersistentFlags().StringVar(&p.stateDir, "state-dir", p.stateDir, "directory of the state store")
	cmd.PersistentFlags().StringVar(&p.rule, "rule", "", "only the state of the rule with this `ID`")
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the learned state as tables",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withState(p, func(s state.Store) error { return stateShow(cmd.Context(), io.out, s, p.rule) })
		},
	}
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the state as JSON lines, one entry per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withState(p, func(s state.Store) error { return stateExport(cmd.Context(), io.out, s, p.rule) })
		},
	}
	reset := &cobra.Command{
		Use:   "reset",
		Short: "Forget the state of every rule, or of one rule (--rule); needs --yes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withState(p, func(s state.Store) error { return stateReset(cmd.Context(), io.out, s, p.rule, p.yes) })
		},
	}
	reset.Flags().BoolVar(&p.yes, "yes", false, "really delete")
	cmd.AddCommand(show, export, reset)
	return cmd
}

// withState opens the store of p.stateDir (it must exist) and runs fn.
func withState(p *stateParams, fn func(s state.Store) error) error {
	if st, err := os.Stat(p.stateDir); err != nil || !st.IsDir() {
		return &exitError{code: 1, err: fmt.Errorf("no state store in %s (see --state-dir)", p.stateDir)}
	}
	s, _, err := openStore(p.stateDir, false)
	if err != nil {
		return &exitError{code: 1, err: err}
	}
	defer s.Close()
	if err := fn(s); err != nil {
		return &exitError{code: 1, err: err}
	}
	return s.Close()
}

// stateNamespaces are the namespaces kanon writes, in display order.
var stateNamespaces = []state.Namespace{state.NSTerms, state.NSGroups, state.NSAlerts, state.NSWindows, state.NSPositions}

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
}

// eachEntry calls fn with every entry of the store (of one rule if rule is
// set), decoded, in namespace then key order. Expired entries not yet
// swept are included.
func eachEntry(ctx context.Context, s state.Store, rule string, fn func(e stateEntry) error) error {
	if ctx == nil {
		ctx = context.Background()
	}
	for _, ns := range stateNamespaces {
		var prefix []byte
		if rule != "" {
			prefix = state.AppendPrefix(nil, ns, rule)
		} else {
			prefix = []byte{byte(ns)}
		}
		err := s.Scan(ctx, prefix, time.Time{}, func(en state.Entry) error {
			pk, err := state.ParseKey(en.Key)
			if err != nil {
				return err
			}
			e := stateEntry{Kind: ns.String(), Rule: pk.Rule, Expires: en.Expiry}
			var part []byte
			if len(pk.Parts) > 0 {
				part = pk.Parts[0]
			}
			switch ns {
			case state.NSTerms:
				ti, err := state.DecodeTermInfo(en.Value)
				if err != nil {
					return err
				}
				e.Term, e.FirstSeen, e.LastSeen = termValues(part), ti.FirstSeen, ti.LastSeen
			case state.NSGroups:
				g, err := state.DecodeGroup(en.Value)
				if err != nil {
					return err
				}
				e.Key, e.ID, e.Count, e.Delivered = string(part), g.ID, g.Count, g.Delivered
				e.FirstSeen, e.LastSeen, e.Ends, e.Samples = g.FirstSeen, g.LastSeen, g.End, len(g.Samples)
			case state.NSAlerts:
				at, err := state.DecodeRaisedAt(en.Value)
				if err != nil {
					return err
				}
				e.ID, e.RaisedAt = string(part), at
			default:
				e.Key, e.Bytes = fmt.Sprintf("%q", part), len(en.Value)
			}
			return fn(e)
		})
		if err != nil {
			return fmt.Errorf("cannot read the state store: %w", err)
		}
	}
	return nil
}

// termValues decodes a new-terms key: the values of the rule's fields, each
// preceded by its length.
func termValues(b []byte) []string {
	var out []string
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return []string{fmt.Sprintf("%q", b)}
		}
		out = append(out, string(b[w:w+int(n)]))
		b = b[w+int(n):]
	}
	return out
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func stateShow(ctx context.Context, w io.Writer, s state.Store, rule string) error {
	type ruleState struct {
		terms, groups []stateEntry
		alerts, other int
	}
	byRule := map[string]*ruleState{}
	err := eachEntry(ctx, s, rule, func(e stateEntry) error {
		rs := byRule[e.Rule]
		if rs == nil {
			rs = &ruleState{}
			byRule[e.Rule] = rs
		}
		switch e.Kind {
		case state.NSTerms.String():
			rs.terms = append(rs.terms, e)
		case state.NSGroups.String():
			rs.groups = append(rs.groups, e)
		case state.NSAlerts.String():
			rs.alerts++
		default:
			rs.other++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := s.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "state store: %d entries, %s (%s on disk)\n", st.Entries, humanBytes(st.Bytes), humanBytes(st.DiskBytes))
	if len(byRule) == 0 {
		if rule != "" {
			fmt.Fprintf(w, "nothing learned for rule %s\n", rule)
		} else {
			fmt.Fprintln(w, "nothing learned yet")
		}
		return nil
	}
	ids := make([]string, 0, len(byRule))
	for id := range byRule {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		rs := byRule[id]
		name := id
		if name == "" {
			name = "(no rule)"
		}
		fmt.Fprintf(w, "\nrule %s: %d terms, %d groups, %d alerts raised", name, len(rs.terms), len(rs.groups), rs.alerts)
		if rs.other > 0 {
			fmt.Fprintf(w, ", %d other entries", rs.other)
		}
		fmt.Fprintln(w)
		if len(rs.terms) > 0 {
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  TERM\tFIRST SEEN\tLAST SEEN\tEXPIRES")
			for _, e := range rs.terms {
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", strings.Join(e.Term, ", "), fmtTime(e.FirstSeen), fmtTime(e.LastSeen), fmtTime(e.Expires))
			}
			tw.Flush()
		}
		if len(rs.groups) > 0 {
			tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  GROUP KEY\tALERT ID\tCOUNT\tDELIVERED\tFIRST SEEN\tLAST SEEN\tENDS\tEXPIRES")
			for _, e := range rs.groups {
				fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", e.Key, e.ID, e.Count, e.Delivered,
					fmtTime(e.FirstSeen), fmtTime(e.LastSeen), fmtTime(e.Ends), fmtTime(e.Expires))
			}
			tw.Flush()
		}
	}
	return nil
}

func stateExport(ctx context.Context, w io.Writer, s state.Store, rule string) error {
	enc := json.NewEncoder(w)
	return eachEntry(ctx, s, rule, func(e stateEntry) error { return enc.Encode(e) })
}

// stateReset deletes the state of rule (every rule if empty); without yes
// it only says what it would delete.
func stateReset(ctx context.Context, w io.Writer, s state.Store, rule string, yes bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var keys [][]byte
	for _, ns := range stateNamespaces {
		prefix := []byte{byte(ns)}
		if rule != "" {
			prefix = state.AppendPrefix(nil, ns, rule)
		}
		err := s.Scan(ctx, prefix, time.Time{}, func(e state.Entry) error {
			keys = append(keys, append([]byte(nil), e.Key...))
			return nil
		})
		if err != nil {
			return fmt.Errorf("cannot read the state store: %w", err)
		}
	}
	what := "every rule"
	if rule != "" {
		what = "rule " + rule
	}
	if !yes {
		return fmt.Errorf("would delete %d entries of %s; run again with --yes to delete them", len(keys), what)
	}
	const batch = 1000
	for i := 0; i < len(keys); i += batch {
		part := keys[i:min(i+batch, len(keys))]
		err := s.Update(ctx, time.Time{}, func(tx state.Tx) error {
			for _, k := range part {
				if err := tx.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("cannot reset the state store (%d of %d entries deleted): %w", i, len(keys), err)
		}
	}
	fmt.Fprintf(w, "deleted %d entries of %s\n", len(keys), what)
	return nil
}
