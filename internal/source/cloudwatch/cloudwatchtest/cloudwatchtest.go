// Package cloudwatchtest is a CloudWatch Logs endpoint for tests: an
// HTTP server speaking the service's documented JSON 1.1 protocol (POST /,
// X-Amz-Target Logs_20140328.<Operation>, application/x-amz-json-1.1) for
// DescribeLogStreams and GetLogEvents, over log streams held in memory,
// with throttling (400 ThrottlingException) and errors injected.
package cloudwatchtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// AccessKeyID is the access key of Credentials; the server checks that
// requests are signed with it.
const AccessKeyID = "AKIDEXAMPLE"

// Credentials points the AWS SDK's credential chain at the environment
// only, with AccessKeyID, for the rest of the test.
func Credentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// Event is one log event of a stream.
type Event struct {
	Timestamp int64 // milliseconds
	Message   string
}

// Server is the endpoint of one log group. Its pages hold PageSize events
// and its forward tokens are "f/<index>". It is safe for concurrent use.
type Server struct {
	// URL is the endpoint's address (http://127.0.0.1:PORT).
	URL string

	t        testing.TB
	group    string
	pageSize int

	mu            sync.Mutex
	streams       map[string][]Event
	calls         int
	throttleEvery int
	throttled     int
	fail          map[int]string // call number -> error type
}

// New starts the endpoint of the log group, with pages of pageSize
// events; it stops at the end of the test.
func New(t testing.TB, group string, pageSize int) *Server {
	f := &Server{t: t, group: group, pageSize: pageSize, streams: map[string][]Event{}, fail: map[int]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Add appends events to a stream (creating it).
func (f *Server) Add(stream string, evs ...Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams[stream] = append(f.streams[stream], evs...)
}

// ThrottleEvery answers every n-th call with 400 ThrottlingException.
func (f *Server) ThrottleEvery(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.throttleEvery = n
}

// Fail answers the n-th call (counting from 1) with the error errType:
// ServiceUnavailableException gets 503, any other type 400.
func (f *Server) Fail(n int, errType string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[n] = errType
}

// Throttled returns the number of calls throttled.
func (f *Server) Throttled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.throttled
}

// ServeHTTP implements http.Handler.
func (f *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	target := r.Header.Get("X-Amz-Target")
	op, ok := strings.CutPrefix(target, "Logs_20140328.")
	if r.Method != http.MethodPost || !ok || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-1.1") {
		f.t.Errorf("unexpected request %s %s target %q content type %q", r.Method, r.URL, target, r.Header.Get("Content-Type"))
		http.Error(w, "bad request", 400)
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+AccessKeyID+"/") {
		f.t.Errorf("request not signed with the environment's credentials: %q", r.Header.Get("Authorization"))
	}
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		f.t.Errorf("%s: body: %v", op, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	fail := func(code int, typ, msg string) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"__type":%q,"message":%q}`, typ, msg)
	}
	if f.throttleEvery > 0 && f.calls%f.throttleEvery == 0 {
		f.throttled++
		fail(400, "ThrottlingException", "Rate exceeded")
		return
	}
	if typ, ok := f.fail[f.calls]; ok {
		code := 400
		if typ == "ServiceUnavailableException" {
			code = 503
		}
		fail(code, typ, "injected")
		return
	}
	if in["logGroupName"] != f.group {
		fail(400, "ResourceNotFoundException", "The specified log group does not exist.")
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	switch op {
	case "DescribeLogStreams":
		prefix, _ := in["logStreamNamePrefix"].(string)
		var out []map[string]any
		names := make([]string, 0, len(f.streams))
		for n := range f.streams {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if !strings.HasPrefix(n, prefix) {
				continue
			}
			evs := f.streams[n]
			ls := map[string]any{"logStreamName": n, "creationTime": 1714980000000, "arn": "arn:aws:logs:eu-west-1:123456789012:log-group:" + f.group + ":log-stream:" + n}
			if len(evs) > 0 {
				ls["lastEventTimestamp"] = evs[len(evs)-1].Timestamp
			}
			out = append(out, ls)
		}
		json.NewEncoder(w).Encode(map[string]any{"logStreams": out})
	case "GetLogEvents":
		if in["startFromHead"] != true {
			f.t.Errorf("GetLogEvents without startFromHead")
		}
		evs, ok := f.streams[fmt.Sprint(in["logStreamName"])]
		if !ok {
			fail(400, "ResourceNotFoundException", "The specified log stream does not exist.")
			return
		}
		from := 0
		if tok, ok := in["nextToken"].(string); ok {
			n, err := strconv.Atoi(strings.TrimPrefix(tok, "f/"))
			if err != nil {
				fail(400, "InvalidParameterException", "The specified nextToken is invalid.")
				return
			}
			from = n
		} else if st, ok := in["startTime"].(float64); ok {
			for from < len(evs) && evs[from].Timestamp < int64(st) {
				from++
			}
		}
		to := min(from+f.pageSize, len(evs))
		var page []map[string]any
		for _, e := range evs[from:to] {
			page = append(page, map[string]any{"timestamp": e.Timestamp, "message": e.Message, "ingestionTime": e.Timestamp + 900})
		}
		json.NewEncoder(w).Encode(map[string]any{"events": page, "nextForwardToken": fmt.Sprintf("f/%d", to), "nextBackwardToken": fmt.Sprintf("b/%d", from)})
	default:
		fail(400, "UnknownOperationException", op)
	}
}
