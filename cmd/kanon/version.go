package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func init() { extraCommands = append(extraCommands, newVersionCmd) }

// commit is set at build time with -ldflags "-X main.commit=..." (beside
// main.version); without it, the VCS revision Go stamps into the binary
// is used.
var commit = ""

// buildInfo says which kanon this is.
type buildInfo struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// readBuildInfo combines the -ldflags overrides (version, commit) with
// what the Go toolchain stamped into the binary (debug.ReadBuildInfo):
// the module version of `go install ...@vX`, the VCS revision, time and
// dirty flag of a build in a checkout.
func readBuildInfo() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return makeBuildInfo(version, commit, bi)
}

func makeBuildInfo(ver, com string, bi *debug.BuildInfo) buildInfo {
	b := buildInfo{Version: ver, Commit: com, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi == nil {
		return b
	}
	if bi.GoVersion != "" {
		b.Go = bi.GoVersion
	}
	if (b.Version == "" || b.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	stamped := ""
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			stamped = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	if b.Commit == "" {
		b.Commit = stamped
	} else if stamped != "" && !strings.HasPrefix(stamped, b.Commit) && !strings.HasPrefix(b.Commit, stamped) {
		// -ldflags named another commit than the checkout: trust neither
		// the time nor the dirty flag of the checkout.
		b.Time, b.Modified = "", false
	}
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

// short is the one-line version: "v1.2.0 (commit 1a2b3c4d5e6f, go1.26.8)".
func (b buildInfo) short() string {
	var parts []string
	if b.Commit != "" {
		c := b.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if b.Modified {
			c += ", modified"
		}
		parts = append(parts, "commit "+c)
	}
	parts = append(parts, b.Go)
	return b.Version + " (" + strings.Join(parts, ", ") + ")"
}

func newVersionCmd(io *streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print kanon's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b := readBuildInfo()
			switch output {
			case "json":
				enc := json.NewEncoder(io.out)
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			case "text":
			default:
				return &exitError{code: 1, err: fmt.Errorf("unknown output %q (text or json)", output)}
			}
			fmt.Fprintf(io.out, "kanon %s\n", b.Version)
			if b.Commit != "" {
				mod := ""
				if b.Modified {
					mod = " (modified)"
				}
				fmt.Fprintf(io.out, "commit:   %s%s\n", b.Commit, mod)
			}
			if b.Time != "" {
				fmt.Fprintf(io.out, "built:    %s\n", b.Time)
			}
			fmt.Fprintf(io.out, "go:       %s %s\n", b.Go, b.Platform)
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
