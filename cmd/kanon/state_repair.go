package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/spf13/cobra"
)

// newStateRepairCmd is `kanon state repair`.
func newStateRepairCmd(streams *streams, p *stateParams) *cobra.Command {
	return &cobra.Command{
		Use:   "repair",
		Short: "Salvage a damaged state store into a new one, keeping a copy of the damaged file",
		Long: `Repair the state store under --state-dir when kanon refuses it as damaged.

A sound store is left alone. Otherwise kanon copies the file aside
(kanon.db.damaged-<UTC time>), reads every entry it can from it, keeps those
that decode, and puts them in a new store that replaces the file. It says how
many entries it kept and what it lost. Entries lost are forgotten: new terms
among them are new again, and their alerts may be raised again. kanon scan
and serve must not be running.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if err := stateRepair(ctx, streams.out, p.stateDir); err != nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
}

// stateRepair repairs the store in dir and prints what it did.
func stateRepair(ctx context.Context, w io.Writer, dir string) error {
	rep, err := bolt.Repair(ctx, dir, bolt.RepairOptions{})
	if errors.Is(err, state.ErrLocked) {
		return fmt.Errorf("%w; stop it, then run kanon state repair again", err)
	}
	if err != nil {
		return err
	}
	if rep.Damage == nil {
		fmt.Fprintf(w, "state store %s is sound: nothing to repair\n", rep.Path)
		return nil
	}
	fmt.Fprintf(w, "state store %s was damaged: %v\n", rep.Path, rep.Damage)
	fmt.Fprintf(w, "kept a copy of the damaged file: %s\n", rep.Copy)
	fmt.Fprintf(w, "salvaged %d entries into a new store%s\n", rep.Kept, keptKinds(ctx, dir))
	if rep.FromPrevious > 0 {
		fmt.Fprintf(w, "  %d of them as they were one commit before the last\n", rep.FromPrevious)
	}
	if rep.Orphaned > 0 {
		fmt.Fprintf(w, "  %d of them from pages the store no longer reached: an entry deleted or rewritten shortly before the damage may be back as it was\n", rep.Orphaned)
	}
	var lost []string
	if rep.LostPages > 0 {
		lost = append(lost, fmt.Sprintf("%d %s of the store could not be read", rep.LostPages, plural(rep.LostPages, "page", "pages")))
	}
	if rep.Dropped > 0 {
		lost = append(lost, fmt.Sprintf("%d %s not decode", rep.Dropped, plural(int(rep.Dropped), "entry did", "entries did")))
	}
	if rep.Counted >= 0 && rep.Counted > rep.Kept {
		lost = append(lost, fmt.Sprintf("the damaged store counted %d entries, so %d are missing", rep.Counted, rep.Counted-rep.Kept))
	}
	if len(lost) > 0 {
		fmt.Fprintf(w, "lost: %s; rules forgot what those entries held, so some alerts may be raised again\n", strings.Join(lost, "; "))
	} else if rep.Counted < 0 {
		fmt.Fprintln(w, "the damaged store's entry count could not be read: entries not found are forgotten, so some alerts may be raised again")
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// keptKinds returns the entries per kind of the repaired store in dir, as
// ": 3 terms, 2 alerts", or "" if it cannot be read.
func keptKinds(ctx context.Context, dir string) string {
	s, err := bolt.Open(dir, bolt.Options{})
	if err != nil {
		return ""
	}
	defer s.Close()
	sum, err := state.Summarize(ctx, s, state.Selection{})
	if err != nil || sum.Total.Entries == 0 {
		return ""
	}
	var parts []string
	for _, nu := range sum.Namespaces {
		parts = append(parts, fmt.Sprintf("%d %s", nu.Entries, nu.NS))
	}
	return ": " + strings.Join(parts, ", ")
}

// resetsDamaged makes the reset command fall back to resetDamaged when the
// store is damaged.
func resetsDamaged(reset *cobra.Command, streams *streams, p *stateParams) {
	run := reset.RunE
	reset.RunE = func(cmd *cobra.Command, args []string) error {
		err := run(cmd, args)
		if !errors.Is(err, state.ErrCorrupt) {
			return err
		}
		if err := resetDamaged(streams.out, p, err); err != nil {
			return &exitError{code: 1, err: err}
		}
		return nil
	}
}

// resetDamaged is `kanon state reset` on a store that cannot be opened
// (damaged, empty or not kanon's): with --yes and no selection it sets the
// file aside and starts an empty store.
func resetDamaged(w io.Writer, p *stateParams, cause error) error {
	switch {
	case p.rule != "" || len(p.kinds) > 0:
		return fmt.Errorf("%w\n(a damaged store cannot be reset in part: run kanon state repair first, or kanon state reset --yes without --rule and --kind to start an empty store)", cause)
	case !p.yes:
		return fmt.Errorf("%w\n(kanon state reset --yes sets the damaged file aside and starts an empty store)", cause)
	}
	rep, err := bolt.Discard(p.stateDir, bolt.RepairOptions{})
	if errors.Is(err, state.ErrLocked) {
		return fmt.Errorf("%w; stop it, then run kanon state reset again", err)
	}
	if err != nil {
		return err
	}
	damage := rep.Damage
	if damage == nil {
		damage = cause
	}
	fmt.Fprintf(w, "state store %s was damaged: %v\n", rep.Path, damage)
	fmt.Fprintf(w, "kept a copy of the damaged file: %s\n", rep.Copy)
	fmt.Fprintln(w, "started an empty state store: every rule forgot what it learned, so alerts may be raised again")
	return nil
}
