package loadgen

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// sample is the benchmark log: 100k events, seed 1, default options.
var sample = sync.OnceValues(func() ([]byte, Stats) {
	var buf bytes.Buffer
	st, err := Generate(&buf, DefaultOptions(100_000, 1))
	if err != nil {
		panic(err)
	}
	return buf.Bytes(), st
})

func TestGenerateStatistics(t *testing.T) {
	data, st := sample()
	t.Logf("events=%d bytes=%d mean=%.1f B anonymous=%.4f bodies=%.4f", st.Events, st.Bytes, st.MeanSize(), st.AnonymousRatio(), st.BodyRatio())
	if st.Events != 100_000 || st.Bytes != int64(len(data)) || st.EventBytes != st.Bytes {
		t.Fatalf("stats %+v do not describe the %d bytes written", st, len(data))
	}
	if m := st.MeanSize(); m < 1300 || m > 1500 {
		t.Errorf("mean record size %.1f B, want 1300..1500", m)
	}
	if r := st.AnonymousRatio(); math.Abs(r-DefaultAnonymousRatio) > 0.005 {
		t.Errorf("anonymous ratio %.4f, want %.2f ± 0.005", r, DefaultAnonymousRatio)
	}
	if r := st.BodyRatio(); math.Abs(r-DefaultBodyRatio) > 0.005 {
		t.Errorf("body ratio %.4f, want %.2f ± 0.005", r, DefaultBodyRatio)
	}
}

// TestGenerateLines checks every line of the sample: it is one upstream
// audit Event that encoding/json decodes strictly and re-encodes to the same
// bytes, with consistent levels, bodies, stages, timestamps and
// annotations; the statistics agree with the decoded events; and the mix
// covers what the package documents.
func TestGenerateLines(t *testing.T) {
	data, st := sample()
	lines := bytes.SplitAfter(data, []byte("\n"))
	if last := lines[len(lines)-1]; len(last) != 0 {
		t.Fatalf("output does not end with a newline: %q", last)
	}
	lines = lines[:len(lines)-1]
	if len(lines) != st.Events {
		t.Fatalf("%d lines, stats say %d events", len(lines), st.Events)
	}
	seen := map[string]bool{}
	ids := make(map[string]struct{}, len(lines))
	var anonymous, withBody int
	var maxStage time.Time
	minBody, maxBody := math.MaxInt, 0
	var re bytes.Buffer
	enc := json.NewEncoder(&re)
	for i, line := range lines {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("line %d: "+format+"\n%s", append([]any{i + 1}, append(args, line)...)...)
		}
		var e auditv1.Event
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil {
			fail("cannot decode into audit/v1 Event: %v", err)
		}
		re.Reset()
		if err := enc.Encode(&e); err != nil {
			fail("cannot re-encode: %v", err)
		}
		if !bytes.Equal(re.Bytes(), line) {
			fail("re-encodes differently:\n%s", re.Bytes())
		}
		if e.Kind != "Event" || e.APIVersion != "audit.k8s.io/v1" {
			fail("kind %q apiVersion %q", e.Kind, e.APIVersion)
		}
		if _, dup := ids[string(e.AuditID)]; dup || len(e.AuditID) != 36 {
			fail("bad or duplicate auditID %q", e.AuditID)
		}
		ids[string(e.AuditID)] = struct{}{}
		if e.RequestURI == "" || e.Verb == "" || e.User.Username == "" || len(e.SourceIPs) == 0 {
			fail("missing requestURI, verb, user or sourceIPs")
		}
		if e.StageTimestamp.Before(&e.RequestReceivedTimestamp) {
			fail("stageTimestamp before requestReceivedTimestamp")
		}
		stage := e.StageTimestamp.Time
		if maxStage.Sub(stage) > time.Second {
			fail("stageTimestamp %v more than 1s before an earlier event's %v", stage, maxStage)
		}
		if stage.After(maxStage) {
			maxStage = stage
		}
		hasBody := e.RequestObject != nil || e.ResponseObject != nil
		switch e.Level {
		case auditv1.LevelMetadata:
			if hasBody {
				fail("Metadata level with a body")
			}
		case auditv1.LevelRequest:
			if e.RequestObject == nil || e.ResponseObject != nil {
				fail("Request level needs a requestObject and no responseObject")
			}
		case auditv1.LevelRequestResponse:
			if !hasBody {
				fail("RequestResponse level without a body")
			}
		default:
			fail("unexpected level %q", e.Level)
		}
		if hasBody {
			size := 0
			for _, o := range []*runtime.Unknown{e.RequestObject, e.ResponseObject} {
				if o != nil {
					size += len(o.Raw)
					maxBody = max(maxBody, len(o.Raw))
				}
			}
			minBody = min(minBody, size)
		}
		if hasBody {
			withBody++
		}
		switch e.Stage {
		case auditv1.StageRequestReceived:
			if e.ResponseStatus != nil || e.Annotations != nil {
				fail("RequestReceived stage with a response status or annotations")
			}
		case auditv1.StageResponseStarted, auditv1.StageResponseComplete:
			if e.ResponseStatus == nil || e.ResponseStatus.Code == 0 {
				fail("%s stage without a response code", e.Stage)
			}
		default:
			fail("unexpected stage %q", e.Stage)
		}
		if e.ObjectRef != nil && (e.ObjectRef.Resource == "" || e.ObjectRef.APIVersion == "") {
			fail("objectRef without resource or apiVersion")
		}
		decision, decided := e.Annotations["authorization.k8s.io/decision"]
		if _, ok := e.Annotations["authorization.k8s.io/reason"]; decided != ok {
			fail("decision and reason annotations must come together")
		}
		if decision == "forbid" && e.ResponseStatus.Code != 403 {
			fail("forbid decision with code %d", e.ResponseStatus.Code)
		}
		if decided && decision != "allow" && decision != "forbid" {
			fail("decision %q", decision)
		}
		anon := e.User.Username == "system:anonymous"
		if anon {
			anonymous++
			if hasBody || len(e.User.Groups) != 1 || e.User.Groups[0] != "system:unauthenticated" {
				fail("anonymous event with a body or groups other than system:unauthenticated")
			}
			if e.ResponseStatus != nil {
				seen["anonymous code "+strconv.Itoa(int(e.ResponseStatus.Code))] = true
			}
		}
		seen["stage "+string(e.Stage)] = true
		seen["level "+string(e.Level)] = true
		seen["verb "+e.Verb] = true
		if len(e.SourceIPs) == 2 {
			seen["two source IPs"] = true
		}
		if _, ok := e.Annotations["pod-security.kubernetes.io/enforce-policy"]; ok {
			seen["pod security annotation"] = true
		}
		if e.User.Extra["authentication.kubernetes.io/pod-name"] != nil {
			seen["bound service account token"] = true
		}
		for _, ua := range wantUserAgents {
			if strings.Contains(e.UserAgent, ua) {
				seen["user agent "+ua] = true
			}
		}
		for _, esc := range []string{`\u003c`, `\u0026`, `\\`, `\"`, `\n`, `\t`} {
			if hasBody && bytes.Contains(line, []byte(esc)) {
				seen["escape "+esc+" in a body"] = true
			}
		}
		if hasBody && bytes.ContainsFunc(line, func(r rune) bool { return r > 0x7f }) {
			seen["non-ASCII in a body"] = true
		}
	}
	if anonymous != st.Anonymous || withBody != st.WithBody {
		t.Errorf("decoded %d anonymous and %d with bodies, stats say %d and %d", anonymous, withBody, st.Anonymous, st.WithBody)
	}
	if minBody < 300 || maxBody > 11_000 {
		t.Errorf("events carry %d bytes of bodies or more, and objects are up to %d bytes; want a few hundred bytes to ~10 KB", minBody, maxBody)
	}
	want := []string{
		"anonymous code 200", "anonymous code 401", "anonymous code 403", "anonymous code 404",
		"stage RequestReceived", "stage ResponseStarted", "stage ResponseComplete",
		"level Metadata", "level Request", "level RequestResponse",
		"verb get", "verb list", "verb watch", "verb create", "verb update", "verb patch", "verb delete",
		"two source IPs", "pod security annotation", "bound service account token",
		`escape \u003c in a body`, `escape \u0026 in a body`, `escape \\ in a body`, `escape \" in a body`,
		`escape \n in a body`, `escape \t in a body`, "non-ASCII in a body",
	}
	for _, ua := range wantUserAgents {
		want = append(want, "user agent "+ua)
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("no event with %s", w)
		}
	}
}

var wantUserAgents = []string{
	"kube-controller-manager/", "kube-scheduler/", "kubelet/", "kubectl/", "kube-apiserver/",
	"kubernetes/$Format", "/leader-election", "(darwin/arm64)",
	"kube-probe/1.29", "ELB-HealthChecker/2.0", "GoogleHC/1.0",
	"python-requests/", "curl/", "Go-http-client/", "zgrab",
}
