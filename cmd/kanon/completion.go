package main

import (
	"io"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// finishCommands completes the command tree once every command is added:
// each command's rule flags write their warnings to io.err, and shell
// completion (kanon completion bash|zsh|fish|powershell) completes
//
//   - rule ids: --rule and --disable-rule, and the ID of `rules show ID`
//     and `rules explain ID`, from the rules the command line loads (the
//     built-in pack, --rules, --no-builtin), with their names;
//   - the values of flags whose help lists them ("alert output: table,
//     json or auto", "input format: auto, k8s, ..."): -o/--output, --format,
//     --progress, --windows, ... — read from the help text, so that a
//     value added to a flag's help is completed too.
func finishCommands(root *cobra.Command, io *streams) {
	var visit func(c *cobra.Command)
	visit = func(c *cobra.Command) {
		fs := c.Flags()
		var rf *ruleFlags
		if fl := fs.Lookup("rules"); fl != nil {
			if v, ok := fl.Value.(*rulesDirsValue); ok {
				rf = v.f
				rf.warn = io.err
			}
		}
		fs.VisitAll(func(fl *pflag.Flag) {
			if _, ok := c.GetFlagCompletionFunc(fl.Name); ok {
				return
			}
			switch {
			case (fl.Name == "rule" || fl.Name == "disable-rule") && rf != nil:
				_ = c.RegisterFlagCompletionFunc(fl.Name, ruleIDCompletion(rf))
			default:
				if vals := flagChoices(fl); len(vals) > 0 {
					_ = c.RegisterFlagCompletionFunc(fl.Name, choiceCompletion(vals))
				}
			}
		})
		if c.ValidArgsFunction == nil && rf != nil && strings.HasSuffix(c.Use, " ID") {
			complete := ruleIDCompletion(rf)
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return complete(cmd, args, toComplete)
			}
		}
		for _, sub := range c.Commands() {
			visit(sub)
		}
	}
	visit(root)
}

// ruleIDCompletion completes the ids of the rules rf loads, each with its
// name as description.
func ruleIDCompletion(rf *ruleFlags) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		rs, _ := rf.parse(io.Discard)
		var out []string
		seen := map[string]bool{} // cobra may parse --rules twice while completing
		for _, r := range rs {
			if r != nil && r.ID != "" && strings.HasPrefix(r.ID, toComplete) && !seen[r.ID] {
				seen[r.ID] = true
				out = append(out, r.ID+"\t"+oneLineName(r.Name))
			}
		}
		sort.Strings(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func oneLineName(s string) string { return strings.Join(strings.Fields(s), " ") }

// choiceCompletion completes one of vals; a value ending in ":" or "://"
// (file:, syslog://) takes what follows it, so no space is added after it.
func choiceCompletion(vals []string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		var out []string
		dir := cobra.ShellCompDirectiveNoFileComp
		for _, v := range vals {
			if strings.HasPrefix(v, toComplete) {
				out = append(out, v)
				if strings.HasSuffix(v, ":") || strings.HasSuffix(v, "://") {
					dir |= cobra.ShellCompDirectiveNoSpace
				}
			}
		}
		return out, dir
	}
}

var (
	// parens are the asides of a flag's help: "(table on a terminal)".
	parens = regexp.MustCompile(`\([^()]*\)`)
	// choiceWord is one value of a list: "json".
	choiceWord = regexp.MustCompile(`^[a-z][a-z0-9_+-]*$`)
	// choicePrefix is a value with a placeholder: "file:PATH",
	// "syslog://HOST:PORT", "kafka:BROKER[,BROKER]/TOPIC"; the part before
	// the placeholder ("file:", "syslog://") is completed.
	choicePrefix = regexp.MustCompile(`^([a-z][a-z0-9_+-]*:(?://)?)[A-Z\[]`)
)

// flagChoices reads the values a string flag takes from its help text, when
// the help ends with a list of them: "alert output: table, json or auto
// (table on a terminal)", "text or json", "input format: auto, k8s, ecs".
// Placeholders keep their prefix: "file:PATH" completes as "file:". It
// returns nil for help that is not such a list.
func flagChoices(fl *pflag.Flag) []string {
	switch fl.Value.Type() {
	case "string", "stringArray", "stringSlice":
	default:
		return nil
	}
	usage := fl.Usage
	if strings.Contains(usage, "`") {
		return nil // a named argument (`FILE`, `DIR`): completed as files
	}
	for {
		s := parens.ReplaceAllString(usage, "")
		if s == usage {
			break
		}
		usage = s
	}
	if i := strings.Index(usage, ": "); i >= 0 {
		usage = usage[i+2:]
	}
	usage = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(usage), "."))
	words := strings.Split(strings.ReplaceAll(usage, " or ", ", "), ", ")
	if len(words) < 2 {
		return nil
	}
	var out []string
	for _, w := range words {
		w = strings.TrimSpace(w)
		switch m := choicePrefix.FindStringSubmatch(w); {
		case choiceWord.MatchString(w):
			out = append(out, w)
		case m != nil:
			out = append(out, m[1])
		default:
			return nil
		}
	}
	return out
}
