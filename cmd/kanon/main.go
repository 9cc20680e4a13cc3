// Command kanon detects anonymous access to Kubernetes API servers in audit
// logs — vanilla Kubernetes, EKS, AKS and GKE — by running detection rules
// (Elastic's KQL and ES|QL rules, Panther's rule, and your own) over files
// or in real time.
//
// Exit codes:
//
//	0  success, and no alerts (scan) or all tests passed (rules test)
//	1  an error: bad flags, unreadable input or rules, a bad record with --strict;
//	   a test failed (rules test, as promtool test rules and opa test)
//	2  findings: alerts raised (scan), lint warnings with --strict
//	3  scan: no alert, but records that could not be read (bad or unrecognised)
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/kanon-dev/kanon/internal/pos"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// findings is the exit code for alerts raised or tests failed.
const findings = 2

// unread is kanon scan's exit code when it raised no alert but could not
// read every record: nothing was found in what it could read.
const unread = 3

func main() {
	os.Exit(runMain(os.Args[1:]))
}

func runMain(args []string) int {
	cmd := newRootCmd(newIO())
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		return exitCode(err, os.Stderr)
	}
	return 0
}

// exitCode prints err (with source lines and carets for positioned
// errors) and returns the exit code it carries (1 by default).
func exitCode(err error, stderr io.Writer) int {
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "kanon: "+pos.Pretty(ee.err))
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "kanon: "+pos.Pretty(err))
	return 1
}
