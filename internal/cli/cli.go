// Package cli is the atlas-billing-export command line: the run, report, invoke, simulate, start,
// backfill and version subcommands. It is the export's second front end: it reads the functions'
// configuration (internal/config) with its flags laid over it, builds the export as they do
// (function.Build) and runs its steps (export.Runner) or one function handler (invoke).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlasclient"
	"github.com/atlas-billing-export/atlas-billing-export/internal/export"
)

const progName = "atlas-billing-export"

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1 // the work failed
	ExitUsage   = 2 // bad flags, arguments, input or configuration: nothing was tried
)

// App is the command line. The zero value is not ready: use New.
type App struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	// sleep waits between polls in run (export.Runner's Sleep); tests shorten it.
	sleep func(context.Context, time.Duration) error
	mode  outputMode // --quiet, --json or neither, every command's
}

// New returns an App on the process's standard streams and environment.
func New() *App {
	return &App{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Now: time.Now}
}

// usageError is a mistake in the command line or configuration: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func commands() []*command {
	return []*command{runCommand, reportCommand, invokeCommand, simulateCommand, startCommand, backfillCommand, versionCommand}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// Commands lists the subcommand names.
func Commands() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

// FlagSet returns the flags a subcommand defines (for tests and documentation).
func FlagSet(name string) (*flag.FlagSet, error) {
	c := lookup(name)
	if c == nil {
		return nil, fmt.Errorf("unknown command %q", name)
	}
	fs, _ := c.newFlagSet(New())
	return fs, nil
}

// Main runs the command line args (without the program name) and returns the exit code.
func (a *App) Main(ctx context.Context, args []string) int {
	if len(args) == 0 {
		writeTopHelp(a.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 {
			if c := lookup(args[1]); c != nil {
				fs, _ := c.newFlagSet(a)
				writeHelp(a.Stdout, c, fs)
				return ExitOK
			}
			return a.fail(nil, usagef("unknown command %.40q", args[1]))
		}
		writeTopHelp(a.Stdout)
		return ExitOK
	case "-version", "--version":
		args = []string{"version"}
	}
	c := lookup(args[0])
	if c == nil {
		return a.fail(nil, usagef("unknown command %.40q", args[0]))
	}
	fs, run := c.newFlagSet(a)
	pos, err := parseInterleaved(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		writeHelp(a.Stdout, c, fs)
		return ExitOK
	}
	if err != nil {
		// The flag package names a bad value or flag whole: keep a few dozen characters of it.
		return a.fail(c, usagef("%.120s", longQuote.ReplaceAllStringFunc(err.Error(), func(q string) string { return q[:41] + `..."` })))
	}
	return a.fail(c, run(ctx, pos))
}

// longQuote is a quoted value of more than 40 characters.
var longQuote = regexp.MustCompile(`"[^"]{41,}"`)

// fail prints err as one line on stderr, "error: <ErrorName>: <message>" when it has a name, and
// returns its exit code: 2 for a usage error, Input.Invalid or Config.Invalid (found before any
// work), 1 for anything else.
func (a *App) fail(c *command, err error) int {
	if err == nil {
		return ExitOK
	}
	msg := oneLine(err.Error())
	var ue *usageError
	if errors.As(err, &ue) {
		help := progName + " --help"
		if c != nil {
			help = progName + " " + c.name + " --help"
		}
		fmt.Fprintf(a.Stderr, "error: %s (see '%s')\n", msg, help)
		return ExitUsage
	}
	code := ExitFailure
	var named *export.Error
	var failed *export.Failed
	if errors.As(err, &failed) {
		msg = failed.Summary.Error + ": " + msg // jobs ran and some failed: never a usage error
	} else if errors.As(err, &named) {
		msg = named.Name + ": " + msg
		if named.Name == export.InputInvalid || named.Name == export.ConfigInvalid {
			code = ExitUsage
		}
	}
	if errors.Is(err, context.Canceled) {
		msg = "interrupted: " + msg
	}
	fmt.Fprintf(a.Stderr, "error: %s\n", msg)
	return code
}

// oneLine keeps a failure to one line whatever the error text holds.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
}

func writeTopHelp(w io.Writer) {
	fmt.Fprintf(w, `Usage: %s COMMAND [flags]

Export MongoDB Atlas billing data (Cost Explorer usage and invoice CSVs) to a folder or S3, here or
through the deployed Step Functions state machine.

Commands:
`, progName)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, `
Run '%[1]s COMMAND --help' for a command's flags and an example. Every command takes --json (its
output as JSON lines on stdout) and --quiet (nothing but errors).
Exit status, for every command: 0 on success; 2 when nothing was tried because of what was asked or
configured (a usage error, Input.Invalid, Config.Invalid: a bad flag, month, service, setting, no
AWS region or credentials); 1 when the work itself failed.

Example (a local Atlas simulator, then an export of last month into ./out):
  %[1]s simulate              # in another terminal; prints the variables to export
  export MONGODB_ATLAS_BASE_URL=http://127.0.0.1:8089 MONGODB_ATLAS_CLIENT_ID=... MONGODB_ATLAS_CLIENT_SECRET=... ABX_ORG_IDS=...
  %[1]s run --period previous-month --out ./out
`, progName)
}

var versionCommand = &command{
	name:    "version",
	summary: "print the version",
	about:   "Print the tool's version, the Go version and the platform.",
	example: progName + " version",
	setup: func(a *App, fs *flag.FlagSet) func(context.Context, []string) error {
		return func(context.Context, []string) error {
			v := struct {
				Version string `json:"version"`
				Go      string `json:"go"`
				OS      string `json:"os"`
				Arch    string `json:"arch"`
			}{atlasclient.BuildVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH}
			p := a.printer()
			p.JSON(v)
			p.Human(func(w io.Writer) { fmt.Fprintf(w, "%s %s (%s %s/%s)\n", progName, v.Version, v.Go, v.OS, v.Arch) })
			return nil
		}
	},
}
