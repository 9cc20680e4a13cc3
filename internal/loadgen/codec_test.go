package loadgen

import (
	"bytes"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// auditCodecs is built like the scheme of k8s.io/apiserver/pkg/audit,
// whose LegacyCodec the log and webhook backends encode with.
func auditCodecs() serializer.CodecFactory {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	utilruntime.Must(auditv1.AddToScheme(scheme))
	utilruntime.Must(auditinternal.AddToScheme(scheme))
	utilruntime.Must(scheme.SetVersionPriority(auditv1.SchemeGroupVersion))
	return serializer.NewCodecFactory(scheme)
}

// TestLinesMatchApiserverCodec decodes each line into the apiserver's
// internal audit Event and encodes it back the way the log backend does
// (runtime.Encode with the audit LegacyCodec for audit.k8s.io/v1): the
// bytes must be the line itself.
func TestLinesMatchApiserverCodec(t *testing.T) {
	codecs := auditCodecs()
	encoder := codecs.LegacyCodec(auditv1.SchemeGroupVersion)
	decoder := codecs.UniversalDecoder(auditinternal.SchemeGroupVersion)
	var buf bytes.Buffer
	if _, err := Generate(&buf, DefaultOptions(5000, 3)); err != nil {
		t.Fatal(err)
	}
	for i, line := range bytes.SplitAfter(buf.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		obj, err := runtime.Decode(decoder, line)
		if err != nil {
			t.Fatalf("line %d: cannot decode with the audit codec: %v\n%s", i+1, err, line)
		}
		ev, ok := obj.(*auditinternal.Event)
		if !ok {
			t.Fatalf("line %d: decoded %T, want *audit.Event", i+1, obj)
		}
		got, err := runtime.Encode(encoder, ev)
		if err != nil {
			t.Fatalf("line %d: cannot encode with the audit codec: %v", i+1, err)
		}
		if !bytes.Equal(got, line) {
			t.Fatalf("line %d differs from the log backend's encoding\ngenerated: %s\napiserver: %s", i+1, line, got)
		}
	}
}

// TestEventListMatchesApiserverCodec does the same for webhook bodies.
func TestEventListMatchesApiserverCodec(t *testing.T) {
	codecs := auditCodecs()
	encoder := codecs.LegacyCodec(auditv1.SchemeGroupVersion)
	decoder := codecs.UniversalDecoder(auditinternal.SchemeGroupVersion)
	batches, _, err := GenerateEventList(DefaultOptions(600, 4), 250)
	if err != nil {
		t.Fatal(err)
	}
	for i, body := range batches {
		obj, err := runtime.Decode(decoder, body)
		if err != nil {
			t.Fatalf("batch %d: cannot decode with the audit codec: %v", i, err)
		}
		got, err := runtime.Encode(encoder, obj)
		if err != nil {
			t.Fatalf("batch %d: cannot encode with the audit codec: %v", i, err)
		}
		if !bytes.Equal(got, body) {
			t.Fatalf("batch %d differs from the webhook backend's encoding", i)
		}
	}
}
