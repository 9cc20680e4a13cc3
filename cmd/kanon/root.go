package main

import (
	"io"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// streams are the command's standard streams (tests give buffers).
type streams struct {
	in       io.Reader
	out, err io.Writer
	// outTTY and errTTY report terminals (tables and progress bars).
	outTTY, errTTY bool
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newIO() *streams {
	return &streams{in: os.Stdin, out: os.Stdout, err: os.Stderr, outTTY: isTerminal(os.Stdout), errTTY: isTerminal(os.Stderr)}
}

func newRootCmd(io *streams) *cobra.Command {
	root := &cobra.Command{
		Use:           "kanon",
		Short:         "Detect anonymous access to Kubernetes API servers in audit logs",
		Long:          "kanon runs detection rules (Elastic KQL and ES|QL rules, Panther rules, and your own YAML rules)\nover Kubernetes audit logs from vanilla clusters, EKS, AKS and GKE.",
		Version:       readBuildInfo().short(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(io.in)
	root.SetOut(io.out)
	root.SetErr(io.err)
	root.AddCommand(newScanCmd(io), newConvertCmd(io), newRulesCmd(io))
	for _, c := range extraCommands {
		root.AddCommand(c(io))
	}
	finishCommands(root, io)
	wrapHelp(root)
	return root
}

// wrapHelp has the commands' help wrap their flags' descriptions to the
// width of the terminal the help goes to (terminalWidth; unwrapped when
// it is not known).
func wrapHelp(root *cobra.Command) {
	addHelpFunc.Do(func() {
		cobra.AddTemplateFunc("wrappedFlagUsages", func(c *cobra.Command, fs *pflag.FlagSet) string {
			io := &streams{out: c.OutOrStdout()}
			if f, ok := io.out.(*os.File); ok {
				io.outTTY = isTerminal(f)
			}
			if w := terminalWidth(io); w > 0 {
				return fs.FlagUsagesWrapped(w - 1)
			}
			return fs.FlagUsages()
		})
	})
	t := root.UsageTemplate()
	for _, set := range []string{"LocalFlags", "InheritedFlags"} {
		t = strings.ReplaceAll(t, "{{."+set+".FlagUsages | trimTrailingWhitespaces}}", "{{wrappedFlagUsages . ."+set+" | trimTrailingWhitespaces}}")
	}
	root.SetUsageTemplate(t)
}

// addHelpFunc registers wrapHelp's template function, once: cobra keeps
// template functions in one map for every command.
var addHelpFunc sync.Once

// extraCommands are top-level commands registered by the files that
// define them (func init in serve.go, state.go, ...), so that each command
// lives in its own file.
var extraCommands []func(*streams) *cobra.Command

// extraRulesCommands are `kanon rules` subcommands registered the same way.
var extraRulesCommands []func(*streams) *cobra.Command
