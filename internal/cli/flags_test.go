package cli

import (
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/atlas-billing-export/atlas-billing-export/internal/atlassim"
)

func TestParseInterleaved(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos string
		wantOut string
	}{
		{args: []string{"--out", "x", "poll", "@e.json"}, wantPos: "poll|@e.json", wantOut: "x"},
		{args: []string{"poll", "--out", "x", "@e.json"}, wantPos: "poll|@e.json", wantOut: "x"},
		{args: []string{"poll", "-", "--out=x"}, wantPos: "poll|-", wantOut: "x"},
		{args: []string{"poll", "--", "--out"}, wantPos: "poll|--out", wantOut: ""},
		{args: nil, wantPos: "", wantOut: ""},
	}
	for _, tt := range tests {
		fs := newTestFlagSet()
		out := fs.String("out", "", "")
		pos, err := parseInterleaved(fs, tt.args)
		if err != nil || strings.Join(pos, "|") != tt.wantPos || *out != tt.wantOut {
			t.Errorf("parseInterleaved(%q) = %q, out %q, %v; want %q, out %q", tt.args, pos, *out, err, tt.wantPos, tt.wantOut)
		}
	}
}

func TestListFlag(t *testing.T) {
	fs := newTestFlagSet()
	var l listFlag
	fs.Var(&l, "org", "")
	if err := fs.Parse([]string{"--org", "a, b", "--org", "c"}); err != nil || strings.Join(l, "|") != "a|b|c" {
		t.Fatalf("list = %q, %v", l, err)
	}
	if err := fs.Parse([]string{"--org", " , "}); err == nil {
		t.Fatal("an empty list was accepted")
	}
}

// TestHelpInProcess checks each command's help names every flag with its default, and an example.
func TestHelpInProcess(t *testing.T) {
	for _, name := range Commands() {
		t.Run(name, func(t *testing.T) {
			a, stdout, stderr := testApp(t, nil)
			if code := a.Main(context.Background(), []string{name, "--help"}); code != ExitOK || stderr.Len() != 0 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			help := stdout.String()
			if !strings.HasPrefix(help, "Usage: "+progName+" "+name) || !strings.Contains(help, "\nExample:\n") {
				t.Fatalf("help lacks the usage line or example:\n%s", help)
			}
			fs, err := FlagSet(name)
			if err != nil {
				t.Fatal(err)
			}
			fs.VisitAll(func(f *flag.Flag) {
				line := helpLine(help, "--"+f.Name)
				if line == "" {
					t.Errorf("help does not name --%s", f.Name)
				}
				if !isZeroDefault(f) && !strings.Contains(line, "(default "+f.DefValue+")") {
					t.Errorf("help line %q does not give the default %q", line, f.DefValue)
				}
			})
		})
	}
}

// helpLine returns the flags-table line for flag, or "".
func helpLine(help, flag string) string {
	_, table, _ := strings.Cut(help, "\nFlags:\n")
	table, _, _ = strings.Cut(table, "\n\n")
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == flag {
			return l
		}
	}
	return ""
}

func TestTopLevel(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{args: []string{"--help"}, wantOut: "Commands:"},
		{args: []string{"help"}, wantOut: "Commands:"},
		{args: []string{"help", "backfill"}, wantOut: "Usage: " + progName + " backfill"},
		{args: []string{"version"}, wantOut: progName + " "},
		{args: []string{"--version"}, wantOut: progName + " "},
		{args: nil, wantCode: ExitUsage, wantErr: "Commands:"},
		{args: []string{"export"}, wantCode: ExitUsage, wantErr: `error: unknown command "export"`},
		{args: []string{"version", "x"}, wantCode: ExitUsage, wantErr: "error: version takes no arguments"},
	}
	for _, tt := range tests {
		a, stdout, stderr := testApp(t, nil)
		code := a.Main(context.Background(), tt.args)
		if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantOut) || !strings.Contains(stderr.String(), tt.wantErr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tt.args, code, stdout, stderr)
		}
	}
	a, stdout, _ := testApp(t, nil)
	a.Main(context.Background(), []string{"--help"})
	for _, name := range Commands() {
		if !strings.Contains(stdout.String(), "  "+name+" ") {
			t.Errorf("top-level help does not list %s", name)
		}
	}
}

func TestParseFault(t *testing.T) {
	tests := []struct {
		in      string
		want    atlassim.Fault
		wantErr string
	}{
		{in: "kind=Status,status=503,times=2,op=listOrgInvoices,retry-after=1s",
			want: atlassim.Fault{Kind: atlassim.Status, Status: 503, Times: 2, Op: "listOrgInvoices", RetryAfter: 1e9}},
		{in: "kind=reset,after=1024", want: atlassim.Fault{Kind: atlassim.Reset, After: 1024}},
		{in: "kind=SlowBody,delay=10ms,op=getOrgInvoiceCsv", want: atlassim.Fault{Kind: atlassim.SlowBody, Delay: 1e7, Op: "getOrgInvoiceCsv"}},
		{in: "kind=NeverReady", want: atlassim.Fault{Kind: atlassim.NeverReady}},
		{in: "kind=Explode", wantErr: "want one of"},
		{in: "status=500", wantErr: "kind= is required"},
		{in: "kind=Status", wantErr: "needs status="},
		{in: "kind=Reset,after=lots", wantErr: `after="lots"`},
		{in: "kind=Reset,color=red", wantErr: `unknown key "color"`},
	}
	for _, tt := range tests {
		got, err := parseFault(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseFault(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseFault(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}
