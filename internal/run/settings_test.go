package run

import (
	"os"
	"testing"

	"github.com/spf13/pflag"
)

// On a shared store a serve with no replica name is a replica named
// after its host (a Deployment's pod); alone with its store it is none.
func TestReplicaName(t *testing.T) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		t.Fatalf("no host name: %v", err)
	}
	s := DefaultSettings()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	s.RegisterFlags(fs, nil)
	for _, c := range []struct {
		flag   []string
		shared bool
		want   string
	}{
		{nil, false, ""},
		{nil, true, host},
		{[]string{"--replica", "kanon-2"}, true, "kanon-2"},
		{[]string{"--replica", "kanon-2"}, false, "kanon-2"},
	} {
		s.Replica = ""
		if err := fs.Parse(c.flag); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReplicaName(c.shared); err != nil || got != c.want {
			t.Errorf("%v shared=%v: %q, %v; want %q", c.flag, c.shared, got, err, c.want)
		}
	}
}
