package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// listFlag collects a repeatable flag whose values may also be comma lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	n := len(*l)
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	if len(*l) == n {
		return errors.New("empty list")
	}
	return nil
}

// command describes a subcommand: its help text and how it builds its flags and runs.
type command struct {
	name    string
	args    string // after "[flags]" in the usage line, e.g. "STEP EVENT"; none: no arguments
	summary string // one line, for the top-level help
	about   string // paragraphs for `--help`
	example string
	// setup defines the flags on fs and returns the function that runs the command once fs is parsed.
	setup func(a *App, fs *flag.FlagSet) func(ctx context.Context, pos []string) error
}

// newFlagSet returns the command's FlagSet with its flags defined and its own error output silenced
// (the App prints help and errors itself), and the function that runs the command once fs is parsed.
// Every command takes --quiet and --json, which set a.mode before it runs.
func (c *command) newFlagSet(a *App) (*flag.FlagSet, func(ctx context.Context, pos []string) error) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	quiet := fs.Bool("quiet", false, "print nothing but errors")
	jsonOut := fs.Bool("json", false, "print progress and the result as JSON, one object per line, on stdout")
	run := c.setup(a, fs)
	return fs, func(ctx context.Context, pos []string) error {
		switch {
		case *quiet && *jsonOut:
			return usagef("--quiet and --json exclude each other")
		case *quiet:
			a.mode = modeQuiet
		case *jsonOut:
			a.mode = modeJSON
		default:
			a.mode = modeHuman
		}
		if c.args == "" && len(pos) > 0 {
			return usagef("%s takes no arguments, got %.40q", c.name, pos[0])
		}
		return run(ctx, pos)
	}
}

// parseInterleaved parses flags that may come before, between or after the positional arguments
// (`invoke poll @e.json --out ./x` reads like `invoke --out ./x poll @e.json`). After "--" everything
// is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// writeHelp prints a command's help: usage line, what it does, every flag with its default, an example.
func writeHelp(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s %s [flags]", progName, c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(c.about))
	fmt.Fprintln(w, "\nFlags:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		typ, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if typ != "" {
			name += " " + typ
		}
		if !isZeroDefault(f) {
			usage += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	fmt.Fprintf(tw, "  --help\tshow this help\n")
	tw.Flush()
	if c.example != "" {
		fmt.Fprintf(w, "\nExample:\n%s\n", indent(strings.TrimSpace(c.example), "  "))
	}
}

func isZeroDefault(f *flag.Flag) bool {
	switch f.DefValue {
	case "", "0", "false", "0s":
		return true
	}
	return false
}

func indent(s, pre string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pre + l
		}
	}
	return strings.Join(lines, "\n")
}
