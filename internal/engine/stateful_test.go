package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kanon-dev/kanon/internal/alert"
	"github.com/kanon-dev/kanon/internal/engine"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/internal/state"
	"github.com/kanon-dev/kanon/internal/state/bolt"
	"github.com/kanon-dev/kanon/internal/state/mem"
	"github.com/kanon-dev/kanon/rules"
)

var stCtx = context.Background()

const seed001 = "elastic-k8s-anonymous-request-authorized-unusual-user-agent"

// stT0 is "now" in the tests.
var stT0 = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

// stEv is an audit event for the tests; the zero value of each option is the
// anonymous, authorized request of seed 001's tests.
type stEv struct {
	id     string
	at     time.Time
	ua     string
	uri    string
	user   string // "-" for none
	ips    []string
	denied bool
}

func (e stEv) record() []byte {
	m := map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": e.id,
		"stage": "ResponseComplete", "verb": "list", "requestURI": "/api/v1/namespaces/kube-system/secrets",
		"user": map[string]any{"username": "system:anonymous"}, "sourceIPs": []string{"203.0.113.7"},
		"userAgent": e.ua, "responseStatus": map[string]any{"code": 200},
		"stageTimestamp":           e.at.Format(time.RFC3339Nano),
		"requestReceivedTimestamp": e.at.Format(time.RFC3339Nano),
		"annotations":              map[string]any{"authorization.k8s.io/decision": "allow"},
	}
	if e.uri != "" {
		m["requestURI"] = e.uri
	}
	switch e.user {
	case "":
	case "-":
		delete(m, "user")
	default:
		m["user"] = map[string]any{"username": e.user}
	}
	if e.ips != nil {
		m["sourceIPs"] = e.ips
	}
	if e.denied {
		m["annotations"] = map[string]any{"authorization.k8s.io/decision": "forbid"}
		m["responseStatus"] = map[string]any{"code": 403}
	}
	b, _ := json.Marshal(m)
	return b
}

// stRule returns a built-in rule by id, or compiles a rule file's text.
func stRule(t testing.TB, idOrYAML string) *rule.Compiled {
	t.Helper()
	if !strings.Contains(idOrYAML, "\n") {
		all, err := rule.Load(rules.FS, ".")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range all {
			if r.ID == idOrYAML {
				return r
			}
		}
		t.Fatalf("no built-in rule %s", idOrYAML)
	}
	r, err := rule.Parse("test.yaml", []byte(idOrYAML))
	if err != nil {
		t.Fatal(err)
	}
	c, err := rule.Compile(r)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// terms lists the new_terms values of alerts, sorted.
func stTerms(as []*alert.Alert) []string {
	var out []string
	for _, a := range as {
		v, _ := a.Fields.Get("new_terms")
		b, _ := json.Marshal(v)
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}

// stores runs f with a mem store and a bolt store.
func stStores(t *testing.T, f func(t *testing.T, newStore func() state.Store)) {
	t.Run("mem", func(t *testing.T) {
		f(t, func() state.Store {
			s := mem.New()
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("bolt", func(t *testing.T) {
		f(t, func() state.Store {
			s, err := bolt.Open(t.TempDir(), bolt.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

func TestSeed001(t *testing.T) {
	r := stRule(t, seed001)
	rs := []*rule.Compiled{r}
	learn := engine.Options{LearnOnly: true}
	stStores(t, func(t *testing.T, newStore func() state.Store) {
		t.Run("first seen now alerts once", func(t *testing.T) {
			as, st := stRun(t, rs, newStore(), engine.Options{},
				stEv{id: "a", at: stT0, ua: "curl/8.5.0"},
				stEv{id: "b", at: stT0.Add(20 * time.Second), ua: "curl/8.5.0", uri: "/api/v1/pods"},
				stEv{id: "c", at: stT0.Add(2 * time.Hour), ua: "curl/8.5.0"})
			if len(as) != 1 || as[0].Origin != "a" || st.Rules[seed001].Matched != 3 {
				t.Fatalf("got %d alerts (%v), stats %+v; want one, for event a", len(as), stTerms(as), st.Rules[seed001])
			}
			if got := stTerms(as); !slices.Equal(got, []string{`["curl/8.5.0"]`}) {
				t.Fatalf("new_terms = %v", got)
			}
		})
		t.Run("seen three days before: no alert", func(t *testing.T) {
			s := newStore()
			stRun(t, rs, s, learn, stEv{id: "h", at: stT0.Add(-72 * time.Hour), ua: "python-requests/2.31.0"})
			if as, _ := stRun(t, rs, s, engine.Options{}, stEv{id: "a", at: stT0, ua: "python-requests/2.31.0"}); len(as) != 0 {
				t.Fatalf("got %d alerts, want none", len(as))
			}
		})
		t.Run("last seen eight days before: alerts again", func(t *testing.T) {
			s := newStore()
			stRun(t, rs, s, learn,
				stEv{id: "h1", at: stT0.Add(-10 * 24 * time.Hour), ua: "python-requests/2.31.0"},
				stEv{id: "h2", at: stT0.Add(-8 * 24 * time.Hour), ua: "python-requests/2.31.0"})
			as, _ := stRun(t, rs, s, engine.Options{}, stEv{id: "a", at: stT0, ua: "python-requests/2.31.0"})
			if len(as) != 1 {
				t.Fatalf("got %d alerts, want 1", len(as))
			}
			// Just inside the window (6d23h) it is still known.
			s = newStore()
			stRun(t, rs, s, learn, stEv{id: "h", at: stT0.Add(-7*24*time.Hour + 2*time.Hour), ua: "x/1"})
			if as, _ := stRun(t, rs, s, engine.Options{}, stEv{id: "a", at: stT0, ua: "x/1"}); len(as) != 0 {
				t.Fatalf("term seen 6d22h before alerted")
			}
		})
		t.Run("excluded requests never alert", func(t *testing.T) {
			as, st := stRun(t, rs, newStore(), engine.Options{},
				stEv{id: "f1", at: stT0, ua: "kube-controller-manager/v1.29.2 (linux/amd64) kubernetes/$Format"},
				stEv{id: "h1", at: stT0, ua: "kube-probe/1.29", uri: "/healthz"},
				stEv{id: "h2", at: stT0, ua: "kube-probe/1.29", uri: "/livez?verbose"},
				stEv{id: "h3", at: stT0, ua: "kube-probe/1.29", uri: "/readyz/etcd"},
				stEv{id: "h4", at: stT0, ua: "curl/1", uri: "/version"},
				stEv{id: "h5", at: stT0, ua: "curl/2", uri: "/.well-known/oauth-authorization-server"},
				stEv{id: "u1", at: stT0, ua: "kubectl/v1.29.2", user: "kubernetes-admin"},
				stEv{id: "d1", at: stT0, ua: "curl/3", denied: true})
			if len(as) != 0 || st.Rules[seed001].Matched != 0 {
				t.Fatalf("got %d alerts, %d matched; want none: %v", len(as), st.Rules[seed001].Matched, stTerms(as))
			}
		})
		t.Run("two user agents alert separately", func(t *testing.T) {
			as, _ := stRun(t, rs, newStore(), engine.Options{},
				stEv{id: "a", at: stT0, ua: "curl/8.5.0"},
				stEv{id: "b", at: stT0.Add(time.Minute), ua: "python-requests/2.31.0"},
				stEv{id: "c", at: stT0.Add(2 * time.Minute), ua: "curl/8.5.0"})
			if got := stTerms(as); !slices.Equal(got, []string{`["curl/8.5.0"]`, `["python-requests/2.31.0"]`}) {
				t.Fatalf("new_terms = %v", got)
			}
		})
		t.Run("learn-only then live", func(t *testing.T) {
			s := newStore()
			if as, st := stRun(t, rs, s, learn, stEv{id: "w", at: stT0.Add(-time.Hour), ua: "warm/1"}); len(as) != 0 || st.Rules[seed001].Matched != 1 {
				t.Fatalf("learn-only raised %d alerts", len(as))
			}
			as, _ := stRun(t, rs, s, engine.Options{}, stEv{id: "a", at: stT0, ua: "warm/1"}, stEv{id: "b", at: stT0, ua: "cold/1"})
			if got := stTerms(as); !slices.Equal(got, []string{`["cold/1"]`}) {
				t.Fatalf("new_terms = %v", got)
			}
		})
		t.Run("same input twice raises nothing twice; new logs do not re-alert learned agents", func(t *testing.T) {
			s := newStore()
			day1 := []stEv{{id: "a", at: stT0, ua: "curl/8.5.0"}, {id: "b", at: stT0.Add(time.Minute), ua: "wget/1.21"}}
			if as, _ := stRun(t, rs, s, engine.Options{}, day1...); len(as) != 2 {
				t.Fatalf("first scan: %d alerts", len(as))
			}
			as, st := stRun(t, rs, s, engine.Options{}, day1...)
			if len(as) != 0 {
				t.Fatalf("second scan of the same events: %d alerts, stats %+v", len(as), st.Rules[seed001])
			}
			as, _ = stRun(t, rs, s, engine.Options{},
				stEv{id: "c", at: stT0.Add(24 * time.Hour), ua: "curl/8.5.0"},
				stEv{id: "d", at: stT0.Add(24 * time.Hour), ua: "nmap/7.94"})
			if got := stTerms(as); !slices.Equal(got, []string{`["nmap/7.94"]`}) {
				t.Fatalf("scan of new logs: new_terms = %v", got)
			}
		})
	})
}

func TestNewTermsSemantics(t *testing.T) {
	const head = `
id: %s
name: new source
type: new_terms
language: kuery
query: 'kubernetes.audit.user.username:"system:anonymous"'
severity: low
risk_score: 21
new_terms:
  fields: [%s]
  history_window_start: now-1d
tests: []
`
	mk := func(id, fields string) *rule.Compiled { return stRule(t, fmt.Sprintf(head, id, fields)) }
	stStores(t, func(t *testing.T, newStore func() state.Store) {
		t.Run("each value of an array field is a term", func(t *testing.T) {
			rs := []*rule.Compiled{mk("ips", "kubernetes.audit.sourceIPs")}
			as, _ := stRun(t, rs, newStore(), engine.Options{},
				stEv{id: "a", at: stT0, ua: "x", ips: []string{"10.0.0.1", "10.0.0.2"}},
				stEv{id: "b", at: stT0.Add(time.Minute), ua: "x", ips: []string{"10.0.0.2", "10.0.0.3"}})
			if got := stTerms(as); !slices.Equal(got, []string{`["10.0.0.1"]`, `["10.0.0.2"]`, `["10.0.0.3"]`}) {
				t.Fatalf("new_terms = %v", got)
			}
		})
		t.Run("several fields: combinations", func(t *testing.T) {
			rs := []*rule.Compiled{mk("combo", "kubernetes.audit.userAgent, kubernetes.audit.sourceIPs")}
			as, _ := stRun(t, rs, newStore(), engine.Options{},
				stEv{id: "a", at: stT0, ua: "curl", ips: []string{"10.0.0.1", "10.0.0.2"}},
				stEv{id: "b", at: stT0.Add(time.Minute), ua: "curl", ips: []string{"10.0.0.1"}},
				stEv{id: "c", at: stT0.Add(2 * time.Minute), ua: "wget", ips: []string{"10.0.0.1"}})
			want := []string{`["curl","10.0.0.1"]`, `["curl","10.0.0.2"]`, `["wget","10.0.0.1"]`}
			if got := stTerms(as); !slices.Equal(got, want) {
				t.Fatalf("new_terms = %v, want %v", got, want)
			}
		})
		t.Run("history from matching documents only, kept per rule", func(t *testing.T) {
			s := newStore()
			r1, r2 := mk("ua1", "kubernetes.audit.userAgent"), mk("ua2", "kubernetes.audit.userAgent")
			// Seen by an authenticated user only: not history.
			stRun(t, []*rule.Compiled{r1}, s, engine.Options{LearnOnly: true}, stEv{id: "h", at: stT0.Add(-time.Hour), ua: "curl", user: "admin"})
			// Learned by r1 only.
			stRun(t, []*rule.Compiled{r1}, s, engine.Options{LearnOnly: true}, stEv{id: "h2", at: stT0.Add(-time.Hour), ua: "wget"})
			as, st := stRun(t, []*rule.Compiled{r1, r2}, s, engine.Options{},
				stEv{id: "a", at: stT0, ua: "curl"}, stEv{id: "b", at: stT0, ua: "wget"})
			if st.Rules["ua1"].Alerts != 1 || st.Rules["ua2"].Alerts != 2 {
				t.Fatalf("alerts ua1 %d (want 1: curl), ua2 %d (want 2): %v", st.Rules["ua1"].Alerts, st.Rules["ua2"].Alerts, stTerms(as))
			}
		})
		t.Run("history expires after the window", func(t *testing.T) {
			s := newStore()
			rs := []*rule.Compiled{mk("exp", "kubernetes.audit.userAgent")}
			stRun(t, rs, s, engine.Options{}, stEv{id: "a", at: stT0, ua: "curl"}, stEv{id: "b", at: stT0, ua: "wget"})
			// A day later both have expired: the sweep removes them, and
			// both are new again.
			n, err := s.DeleteExpired(stCtx, stT0.Add(24*time.Hour))
			if err != nil || n != 2 {
				t.Fatalf("DeleteExpired = %d, %v; want the 2 terms", n, err)
			}
			as, _ := stRun(t, rs, s, engine.Options{}, stEv{id: "c", at: stT0.Add(24 * time.Hour), ua: "curl"})
			if len(as) != 1 {
				t.Fatalf("after the window: %d alerts, want 1", len(as))
			}
		})
	})
}

// failingSink fails every Write while fail is set.
type failingSink struct {
	alert.Collector
	fail bool
}

func (f *failingSink) Write(stCtx context.Context, a *alert.Alert) error {
	if f.fail {
		return errors.New("disk full")
	}
	return f.Collector.Write(stCtx, a)
}

// flakyStore is a real store whose Updates fail while fail is set, as if
// the process died between writing an alert and committing its mark.
type flakyStore struct {
	state.Store
	fail bool
}

func (f *flakyStore) Update(stCtx context.Context, now time.Time, fn func(tx state.Tx) error) error {
	if f.fail {
		return errors.New("killed")
	}
	return f.Store.Update(stCtx, now, fn)
}

// TestNewTermAlertNotLost checks the order of the emit path: a new term is
// recorded only with its alert, after the alert was written.
func TestNewTermAlertNotLost(t *testing.T) {
	rs := []*rule.Compiled{stRule(t, seed001)}
	s := mem.New()
	defer s.Close()
	e := stEv{id: "a", at: stT0, ua: "curl/8.5.0"}

	// The sink fails: nothing is recorded, so the next run alerts.
	fs := &failingSink{fail: true}
	h := newHarness(t, rs, engine.Options{Sink: fs, Store: s}, untilClose)
	if err := h.readEvent(e); err == nil {
		t.Fatal("a failing sink did not fail the engine")
	}
	// The alert is written but its commit fails (the process dies).
	fl := &flakyStore{Store: s}
	var sink alert.Collector
	h = newHarness(t, rs, engine.Options{Sink: &sink, Store: fl}, untilClose)
	fl.fail = true
	if err := h.readEvent(e); err == nil {
		t.Fatal("a failing commit did not fail the engine")
	}
	if len(sink.Alerts) != 1 {
		t.Fatalf("%d alerts written before the commit, want 1", len(sink.Alerts))
	}
	first := sink.Alerts[0].ID
	// Re-run: the same alert, same id, is raised again, then remembered.
	as, _ := stRun(t, rs, s, engine.Options{}, e)
	if len(as) != 1 || as[0].ID != first {
		t.Fatalf("re-run raised %d alerts, want the same alert %s again", len(as), first)
	}
	if as, _ := stRun(t, rs, s, engine.Options{}, e); len(as) != 0 {
		t.Fatalf("third run raised %d alerts", len(as))
	}
}
