package main

import (
	"strings"
	"testing"
)

// The flags' descriptions in a command's help wrap to the terminal's
// width ($COLUMNS when the output is not a terminal): at 80 columns no
// line of kanon serve's or kanon scan's flags is longer, but for a word
// (a URL template) that no line of that width could hold; without a
// width they are not wrapped.
func TestHelpWrapsFlags(t *testing.T) {
	for _, cmd := range []string{"serve", "scan"} {
		t.Setenv("COLUMNS", "80")
		out, _, code := runCLI(t, "", cmd, "--help")
		if code != 0 || !strings.Contains(out, "Flags:") {
			t.Fatalf("%s --help: exit %d\n%s", cmd, code, out)
		}
		flags := out[strings.Index(out, "Flags:"):]
		wrapped := 0
		for _, l := range strings.Split(flags, "\n") {
			if strings.HasPrefix(l, "                    ") {
				wrapped++ // a description's continuation line
			}
			if len(l) <= 80 {
				continue
			}
			long := false
			for _, w := range strings.Fields(l) {
				long = long || len(w) > 30
			}
			if !long {
				t.Errorf("%s --help at 80 columns: a line of %d: %q", cmd, len(l), l)
			}
		}
		if wrapped == 0 {
			t.Errorf("%s --help at 80 columns wraps no description", cmd)
		}
		t.Setenv("COLUMNS", "")
		out, _, _ = runCLI(t, "", cmd, "--help")
		if !strings.Contains(out, "the delay of a killed replica's alerts") && cmd == "serve" {
			t.Errorf("serve --help without a width: a description is broken:\n%s", out)
		}
	}
}
