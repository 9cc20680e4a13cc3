package run_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kanon-dev/kanon/examples"
	"github.com/kanon-dev/kanon/internal/loadgen"
)

// anchors returns ../shared/anchors beside the repository, failing if the
// reference material is missing.
func anchors(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "shared", "anchors"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("reference material missing (%v): the tests need ../shared next to the repository", err)
	}
	return p
}

// fixtureLogs returns the logs the optimisations are compared on, by name:
// the bundled example logs, the Elastic integration's test logs, the test
// events of Panther's rules (one JSON line each, whatever their source),
// and generated logs (anonymous bursts; every event anonymous; EventLists).
func fixtureLogs(t testing.TB) map[string][]byte {
	t.Helper()
	logs := map[string][]byte{}
	names, err := fs.Glob(examples.FS, "logs/*")
	if err != nil || len(names) == 0 {
		t.Fatalf("no bundled log (%v)", err)
	}
	for _, n := range names {
		b, err := examples.FS.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		logs["examples/"+n] = b
	}
	dir := anchors(t)
	elastic, _ := filepath.Glob(filepath.Join(dir, "elastic-integration-audit", "*.log"))
	if len(elastic) == 0 {
		t.Fatal("no Elastic integration test log in the reference material")
	}
	for _, p := range elastic {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		logs["elastic-integration-audit/"+filepath.Base(p)] = b
	}
	panther, _ := filepath.Glob(filepath.Join(dir, "panther", "*.yml"))
	sort.Strings(panther)
	var pl bytes.Buffer
	for _, p := range panther {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var spec struct {
			Tests []struct {
				Log any `yaml:"Log"`
			} `yaml:"Tests"`
		}
		if err := yaml.Unmarshal(b, &spec); err != nil {
			continue // not a rule with tests (a data model, a query)
		}
		for _, tc := range spec.Tests {
			if tc.Log == nil {
				continue
			}
			j, err := json.Marshal(tc.Log)
			if err != nil {
				continue // a YAML map with non-string keys
			}
			pl.Write(j)
			pl.WriteByte('\n')
		}
	}
	if bytes.Count(pl.Bytes(), []byte("\n")) < 50 {
		t.Fatalf("only %d test events in Panther's rules", bytes.Count(pl.Bytes(), []byte("\n")))
	}
	logs["panther-tests"] = pl.Bytes()
	for name, o := range map[string]loadgen.Options{
		"generated": func() loadgen.Options { o := loadgen.DefaultOptions(3000, 5); o.AnonymousRatio = 0.3; return o }(),
		"anonymous": func() loadgen.Options {
			o := loadgen.DefaultOptions(3000, 6)
			o.AnonymousRatio, o.BodyRatio = 1, 0
			return o
		}(),
	} {
		var b bytes.Buffer
		if _, err := loadgen.Generate(&b, o); err != nil {
			t.Fatal(err)
		}
		logs[name] = b.Bytes()
	}
	var lists bytes.Buffer // EventList objects of 50 events, one per line
	o := loadgen.DefaultOptions(2000, 7)
	o.AnonymousRatio = 0.5
	if _, err := loadgen.WriteEventLists(&lists, o, 50); err != nil {
		t.Fatal(err)
	}
	logs["eventlists"] = lists.Bytes()
	return logs
}

// hostileRecords rewrites anonymous records of the bundled log into
// records that a prefilter or a decoder on another goroutine could get
// wrong: the relevant bytes behind \u escapes (in values and in keys),
// the username missing or its object absent, repeated keys either way,
// invalid UTF-8, invalid and truncated JSON, a record over maxRecord
// bytes, blank lines. Each is one line.
func hostileRecords(t testing.TB, maxRecord int) [][]byte {
	t.Helper()
	var anon [][]byte
	for _, l := range bytes.Split(bytes.TrimSpace(exampleLog(t)), []byte("\n")) {
		if bytes.Contains(l, []byte(`"system:anonymous"`)) {
			anon = append(anon, l)
		}
	}
	if len(anon) < 4 {
		t.Fatalf("%d anonymous records in the bundled log", len(anon))
	}
	rep := func(l []byte, old, new string) []byte { return bytes.Replace(l, []byte(old), []byte(new), 1) }
	var out [][]byte
	for i, l := range anon[:min(len(anon), 12)] {
		out = append(out,
			rep(l, `"system:anonymous"`, `"system:\u0061nonymous"`),
			rep(l, `"system:anonymous"`, `"\u0073ystem:anonymous"`),
			rep(l, `"username":"system:anonymous"`, `"us\u0065rname":"system:anonymous"`),
			rep(l, `"username":"system:anonymous",`, ``),
			rep(l, `"user":{`, `"user":{"username":"alice",`),
			rep(l, `"user":{`, `"user":{"username":"system:anonymous","username":"alice",`),
			rep(l, `"verb":"`, `"verb":"delete","verb":"`),
			rep(l, `"annotations":{`, `"annotations":{"authorization.k8s.io/decision":"forbid",`),
			rep(l, `"userAgent":"`, "\"userAgent\":\"\xff\xfe"),
			rep(l, `"system:anonymous"`, "\"system:anonymous\xc3\""),
			rep(l, `"requestURI":"`, `"requestURI":"/api/`+strings.Repeat("x", maxRecord)),
			l[:len(l)/2],
			rep(l, `{`, `{{`),
			append(append([]byte(nil), l...), " trailing"...),
		)
		if i%3 == 0 {
			out = append(out, nil, l, l) // a blank line, a repeated delivery
		}
		if j := bytes.Index(l, []byte(`"user":{`)); j >= 0 {
			if k := bytes.IndexByte(l[j:], '}'); k >= 0 {
				out = append(out, append(append(append([]byte(nil), l[:j]...), `"user":{}`...), l[j+k+1:]...)) // no username
				out = append(out, append(append([]byte(nil), l[:j]...), l[j+k+2:]...))                         // no user object
			}
		}
	}
	return out
}

func joinLines(ls [][]byte) []byte {
	var b bytes.Buffer
	for _, l := range ls {
		b.Write(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// hostileMaxRecord is the record size limit of the hostile log and of the
// fuzzer: small enough that generated and fuzzed records reach it.
const hostileMaxRecord = 4096

// TestOptimisationsChangeNothingOnFixtures: the prefilter and decoding on
// other goroutines give the same alerts, bad-record reports and counts as
// neither, over the bundled logs, the Elastic and Panther test events,
// generated logs and a log of hostile records.
func TestOptimisationsChangeNothingOnFixtures(t *testing.T) {
	logs := fixtureLogs(t)
	for _, name := range sortedKeys(logs) {
		requireSameWithEveryOptimisation(t, name, logs[name], 0, nil)
	}
	hostile := joinLines(hostileRecords(t, hostileMaxRecord))
	alerts, reports := requireSameWithEveryOptimisation(t, "hostile", hostile, hostileMaxRecord, nil)
	// The log has what it is meant to have: alerts, bad records
	// (invalid JSON, over the limit) and warnings (repeated keys).
	for _, want := range []string{"bad ", "warn ", "over the size limit"} {
		if !strings.Contains(reports, want) {
			t.Errorf("the hostile log's reports have no %q:\n%s", want, reports)
		}
	}
	if alerts == "" {
		t.Error("no alert on the hostile log")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// FuzzOptimisationsChangeNothing: for any input, the prefilter and
// decoding on other goroutines give the same alerts, bad-record reports
// and counts as neither. The seeds are runs of lines of the fixture logs
// and the hostile records.
func FuzzOptimisationsChangeNothing(f *testing.F) {
	logs := fixtureLogs(f)
	for _, name := range sortedKeys(logs) {
		lines := bytes.SplitAfter(logs[name], []byte("\n"))
		for i := 0; i < len(lines) && i < 400; i += 40 {
			f.Add(bytes.Join(lines[i:min(i+8, len(lines))], nil))
		}
	}
	hostile := hostileRecords(f, hostileMaxRecord)
	for i := 0; i < len(hostile); i += 4 {
		f.Add(joinLines(hostile[i:min(i+4, len(hostile))]))
	}
	rs := builtinRules(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		requireSameWithEveryOptimisation(t, "fuzzed", data, hostileMaxRecord, rs)
	})
}
