package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/kanon-dev/kanon/internal/ingest"
	"github.com/kanon-dev/kanon/internal/ingest/formats"
	"github.com/kanon-dev/kanon/internal/lint"
	"github.com/kanon-dev/kanon/internal/rule"
	"github.com/kanon-dev/kanon/rules"
	"github.com/spf13/pflag"
)

// ruleFlags select the rules a command runs.
type ruleFlags struct {
	dirs      []string
	ids       []string
	noBuiltin bool
	// warn receives what loading says that is not an error: files skipped
	// in a rules directory, and the lint warnings of the user's rules
	// (nil: os.Stderr). newRootCmd sets it to the command's stderr.
	warn io.Writer
	// noLint leaves the lint warnings out (kanon rules lint prints them
	// itself).
	noLint bool
}

// rulesDirsValue is the --rules flag: a string array whose value knows
// its ruleFlags, so that newRootCmd can find every command's ruleFlags
// (to give them the command's stderr).
type rulesDirsValue struct{ f *ruleFlags }

func (v *rulesDirsValue) String() string {
	if len(v.f.dirs) == 0 {
		return "" // no "(default [])" in the help
	}
	return "[" + strings.Join(v.f.dirs, ",") + "]"
}
func (v *rulesDirsValue) Set(s string) error {
	v.f.dirs = append(v.f.dirs, s)
	return nil
}
func (v *rulesDirsValue) Type() string { return "stringArray" }

func (f *ruleFlags) warnTo() io.Writer {
	if f.warn == nil {
		return os.Stderr
	}
	return f.warn
}

func (f *ruleFlags) register(fs *pflag.FlagSet) {
	fs.Var(&rulesDirsValue{f}, "rules", "load rule files from `DIR` too (repeatable)")
	fs.StringArrayVar(&f.ids, "rule", nil, "run only the rule with this `ID` (repeatable)")
	fs.BoolVar(&f.noBuiltin, "no-builtin", false, "do not load the built-in rule pack")
}

// load loads, selects and compiles the rules. All errors of all files are
// reported together (the files that load are compiled too, so that their
// errors are among them); nothing runs unless every file loads.
func (f *ruleFlags) load() ([]*rule.Compiled, error) {
	all, errs := f.parse(f.warnTo())
	if err := rule.MergeErrors(errs...); err != nil {
		_, cerr := rule.CompileAll(all)
		return nil, rule.MergeErrors(err, cerr)
	}
	if len(f.ids) > 0 {
		want := map[string]bool{}
		for _, id := range f.ids {
			want[id] = true
		}
		var sel []*rule.Rule
		for _, r := range all {
			if want[r.ID] {
				sel = append(sel, r)
				delete(want, r.ID)
			}
		}
		if len(want) > 0 {
			var missing []string
			for id := range want {
				missing = append(missing, id)
			}
			sort.Strings(missing)
			return nil, fmt.Errorf("no rule with id %s (see kanon rules list)", strings.Join(missing, ", "))
		}
		all = sel
	} else {
		var enabled []*rule.Rule
		for _, r := range all {
			if r.IsEnabled() {
				enabled = append(enabled, r)
			}
		}
		all = enabled
	}
	if len(all) == 0 {
		return nil, fmt.Errorf("no rules to run")
	}
	compiled, err := rule.CompileAll(all)
	if err != nil {
		return nil, err
	}
	if !f.noLint {
		f.lintUserRules(compiled)
	}
	return compiled, nil
}

// lintUserRules prints the lint warnings (kanon rules lint) of the rules
// that do not come from the built-in pack: a field outside the schema
// (verbb for verb) or a value a field never takes would make a rule
// silently never match. They are warnings: the rules still run.
func (f *ruleFlags) lintUserRules(cs []*rule.Compiled) {
	var user []*rule.Compiled
	for _, c := range cs {
		if !strings.HasPrefix(c.File, "builtin:") {
			user = append(user, c)
		}
	}
	ws := lint.CompiledRules(user)
	for _, w := range ws {
		fmt.Fprintln(f.warnTo(), "kanon: warning: "+w.Pretty())
	}
	if len(ws) > 0 {
		fmt.Fprintf(f.warnTo(), "kanon: %d warning(s) in your rules (kanon rules lint explains them); they run as written\n", len(ws))
	}
}

// parse reads the rule files (the built-in pack unless --no-builtin, and
// each --rules file or directory) without compiling them; files skipped
// in a directory are said on warn.
func (f *ruleFlags) parse(warn io.Writer) ([]*rule.Rule, []error) {
	var all []*rule.Rule
	var errs []error
	if !f.noBuiltin {
		rs, err := rule.LoadFSNamed(rules.FS, ".", "builtin:")
		all, errs = append(all, rs...), append(errs, err)
	}
	for _, d := range f.dirs {
		st, err := os.Stat(d)
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read rules: %w", err))
			continue
		}
		var rs []*rule.Rule
		if st.IsDir() {
			var skipped []error
			rs, skipped, err = rule.LoadFSSkipping(os.DirFS(d), ".", strings.TrimSuffix(d, "/")+"/")
			for _, s := range skipped {
				fmt.Fprintf(warn, "kanon: skipped: %v\n", s)
			}
		} else {
			var data []byte
			data, err = os.ReadFile(d)
			if err == nil {
				var r *rule.Rule
				if strings.HasSuffix(d, ".toml") {
					r, err = rule.ParseElastic(d, data)
				} else {
					r, err = rule.Parse(d, data)
				}
				if r != nil {
					rs = []*rule.Rule{r}
				}
			}
		}
		all, errs = append(all, rs...), append(errs, err)
	}
	return all, errs
}

// registry is every input format kanon reads.
func registry() *ingest.Registry { return formats.Registry() }

// humanBytes formats a byte count.
func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// humanCount formats a count with thousands separators.
func humanCount(n int64) string {
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
