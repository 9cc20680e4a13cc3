package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/open"
)

// What the replica tests share: the events (the handover log, whose
// bursts open ES|QL runs and dedup groups, closed by an event days later),
// kanon scan's alerts of them, and the alerts the replicas wrote.

// replicaLateness is the replicas' --lateness: a batch sent again to
// another replica, or a message delivered again after its replica died,
// may be older than what that replica saw last, and must still count.
const replicaLateness = "48h"

// replicaEvents are the handover events and, last, one event four days
// after them, past every run and group even with replicaLateness.
func replicaEvents(t *testing.T) [][]byte {
	t.Helper()
	lines, _ := handoverEvents()
	at := time.Date(2025, 6, 6, 8, 0, 0, 0, time.UTC)
	return append(slices.Clone(lines), closingEvent(t, lines[len(lines)-1], "replicas-closing", at))
}

// bytesJoinLines is the lines as a log: each ended by a line break.
func bytesJoinLines(lines [][]byte) []byte {
	return append(bytes.Join(lines, []byte("\n")), '\n')
}

// raised is what a set of alerts raised, as kanon scan would say it:
// every alert that is not grouped, by id; every dedup group, by rule and
// key, with its final count and first event time, and the id it was
// delivered under; and the event counts of the enumeration rule's alerts.
type raised struct {
	alerts   []string
	groups   map[string]string // rule and key: first_seen
	counts   map[string]int64  // rule and key: the largest count delivered
	groupIDs map[string]string // rule and key: the id of that delivery
	members  map[string]int64  // rule and key: the alerts of its groups, whatever their ids
	esql     []string          // the ids of the enumeration rule's (ES|QL) alerts, also in alerts
	docs     []int64
	rules    map[string]int // rule: its alerts not grouped and its groups
	// dropped counts the hits kanon scan --dropped-hits output marked
	// "dropped": not raised, their run being at max_signals.
	dropped int
}

// raisedBy reads NDJSON alerts.
func raisedBy(t *testing.T, ndjson []byte) raised {
	t.Helper()
	r := raised{groups: map[string]string{}, counts: map[string]int64{}, groupIDs: map[string]string{}, members: map[string]int64{}, rules: map[string]int{}}
	byID := map[string]int64{}
	ruleOf := map[string]string{}
	for _, l := range bytes.Split(ndjson, []byte("\n")) {
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var a struct {
			ID   string `json:"id"`
			Rule struct {
				ID string `json:"id"`
			} `json:"rule"`
			Fields  map[string]any `json:"fields"`
			Dropped bool           `json:"dropped"`
			Group   *struct {
				Key       string `json:"key"`
				Count     int64  `json:"count"`
				FirstSeen string `json:"first_seen"`
			} `json:"group"`
		}
		if err := json.Unmarshal(l, &a); err != nil {
			t.Fatalf("alert line %q: %v", l, err)
		}
		if a.Dropped {
			r.dropped++
			continue
		}
		if a.Group != nil {
			k := a.Rule.ID + " " + a.Group.Key
			if a.Group.Count > byID[a.ID] {
				r.members[k] += a.Group.Count - byID[a.ID]
				byID[a.ID] = a.Group.Count
			}
			ruleOf[k] = a.Rule.ID
			if a.Group.Count >= r.counts[k] {
				r.counts[k] = a.Group.Count
				r.groups[k] = a.Group.FirstSeen
				r.groupIDs[k] = a.ID
			}
		} else {
			r.alerts = append(r.alerts, a.ID)
			ruleOf[a.ID] = a.Rule.ID
			if a.Rule.ID == enumerationRule {
				r.esql = append(r.esql, a.ID)
			}
		}
		if a.Rule.ID == enumerationRule {
			n, _ := a.Fields["Esql.document_count"].(float64)
			r.docs = append(r.docs, int64(n))
		}
	}
	r.alerts, r.esql = distinct(r.alerts), distinct(r.esql)
	slices.Sort(r.docs)
	for _, rule := range ruleOf {
		r.rules[rule]++
	}
	return r
}

// scanRaised is kanon scan of the lines, with the hits it dropped at
// max_signals counted (--dropped-hits), not raised.
func scanRaised(t *testing.T, bin string, lines [][]byte) raised {
	t.Helper()
	path := filepath.Join(t.TempDir(), "replicas.log")
	if err := os.WriteFile(path, bytesJoinLines(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "scan", "-o", "jsonl", "-q", "--dropped-hits", path).Output()
	if ee, ok := err.(*exec.ExitError); err != nil && (!ok || ee.ExitCode() != 2) {
		t.Fatalf("kanon scan: %v", err)
	}
	return raisedBy(t, out)
}

// replicaAlerts reads the alerts files of replicas: what they raised, and
// per delivery key (id, and group count for a grouped alert) the files
// that hold it. A file holding a delivery twice fails the test.
func replicaAlerts(t *testing.T, files ...string) (raised, map[string][]string) {
	t.Helper()
	var all []byte
	where := map[string][]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		// A replica killed with SIGKILL may leave a torn last line (the
		// file sink cuts it when it opens the file again).
		b = b[:bytes.LastIndexByte(b, '\n')+1]
		seen := map[string]bool{}
		for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
			if len(l) == 0 {
				continue
			}
			key, err := alert.LineDeliveryKey(l)
			if err != nil {
				t.Fatalf("%s: %q: %v", f, l, err)
			}
			if seen[key] {
				t.Fatalf("%s holds delivery %s twice", f, key)
			}
			seen[key] = true
			where[key] = append(where[key], f)
		}
		all = append(all, b...)
	}
	return raisedBy(t, all), where
}

// sameRaised fails the test unless the replicas raised what scan raised:
// the same alerts (new terms among them), the same groups (rule, key and
// first event), the same enumeration counts, as many of each rule. It returns how the groups' final counts and ids
// differ from scan's, if they do.
func sameRaised(t *testing.T, got, want raised) []string {
	t.Helper()
	if len(want.alerts) == 0 || len(want.groups) == 0 || len(want.docs) == 0 {
		t.Fatalf("kanon scan raised %d alerts, %d groups, %d enumeration alerts: the test needs each", len(want.alerts), len(want.groups), len(want.docs))
	}
	if !slices.Equal(got.alerts, want.alerts) {
		t.Errorf("alerts not grouped: replicas %d, scan %d\n%v\n%v", len(got.alerts), len(want.alerts), got.alerts, want.alerts)
	}
	if !maps.Equal(got.groups, want.groups) {
		t.Errorf("groups (first events): replicas %v\nscan %v", got.groups, want.groups)
	}
	if !slices.Equal(got.docs, want.docs) {
		t.Errorf("enumeration counts: replicas %v, scan %v", got.docs, want.docs)
	}
	if !maps.Equal(got.rules, want.rules) {
		t.Errorf("alerts and groups per rule: replicas %v, scan %v", got.rules, want.rules)
	}
	var differ []string
	for _, k := range slices.Sorted(maps.Keys(want.groups)) {
		if got.counts[k] != want.counts[k] || got.groupIDs[k] != want.groupIDs[k] {
			differ = append(differ, fmt.Sprintf("%s: count %d id %s, scan count %d id %s", k, got.counts[k], got.groupIDs[k], want.counts[k], want.groupIDs[k]))
		}
	}
	return differ
}

// waitOutboxEmpty waits until every alert decided in the shared store
// was delivered (its outbox entry deleted): a replica killed between a
// decision and its delivery leaves entries that another replica delivers
// once their lease has passed.
func waitOutboxEmpty(t *testing.T, storeURL string) {
	t.Helper()
	ctx := context.Background()
	s, _, err := open.Store(ctx, open.Config{URL: storeURL})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		left := 0
		if err := state.ScanOutbox(ctx, s, func([]byte, state.OutboxEntry) error { left++; return nil }); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d alerts decided and never delivered", left)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
