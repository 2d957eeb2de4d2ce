package main

import (
	"bytes"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// helpRow is a variable's row in `vipvisor help`: name, then default.
var helpRow = regexp.MustCompile(`(?m)^  (VIPVISOR_[A-Z0-9_]+)\s+(\S+)`)

func manPage(t *testing.T) string {
	t.Helper()
	var b bytes.Buffer
	if err := writeMan(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestManListsEveryVariable holds the manual to help: every variable help
// lists, with its default, is an entry of the page.
func TestManListsEveryVariable(t *testing.T) {
	var h bytes.Buffer
	if err := help(&h); err != nil {
		t.Fatal(err)
	}
	page := manPage(t)
	rows := helpRow.FindAllStringSubmatch(h.String(), -1)
	if len(rows) < len(contractVariables) {
		t.Fatalf("help lists %d variables, fewer than the contract's %d: has its format changed?\n%s", len(rows), len(contractVariables), h.String())
	}
	for _, r := range rows {
		key, def := r[1], r[2]
		entry := ".TP\n\\fB" + roffEscape(key) + "\\fR\n"
		i := strings.Index(page, entry)
		if i < 0 {
			t.Errorf("the man page has no entry for %s", key)
			continue
		}
		body, _, _ := strings.Cut(page[i+len(entry):], "\n")
		var want string
		switch def {
		case "(required)":
			want = "Required."
		case "(empty)":
			want = "Default: empty."
		default:
			want = `Default: \fB` + roffEscape(def) + `\fR.`
		}
		if !strings.Contains(body, want) {
			t.Errorf("man page entry of %s does not say %q:\n%s", key, want, body)
		}
	}
}

// TestManListsEveryCommand holds the manual to the usage text.
func TestManListsEveryCommand(t *testing.T) {
	cmds := manCommands()
	var names []string
	for _, c := range cmds {
		names = append(names, c.Synopsis)
	}
	for _, want := range []string{"check", "status [--json]", "help", "version"} {
		found := false
		for _, n := range names {
			found = found || n == want
		}
		if !found {
			t.Errorf("commands parsed from the usage text are %q, without %q: has its format changed?", names, want)
		}
	}
	page := manPage(t)
	for _, c := range cmds {
		if line := `\fBvipvisor\fR ` + roffSynopsis(c.Synopsis); strings.Count(page, line+"\n") != 2 {
			t.Errorf("%q should be in SYNOPSIS and in COMMANDS:\n%s", line, page)
		}
	}
}

// TestManFormats runs the page through man(1) the way lintian does, where
// man is installed: any warning of groff's is a failure.
func TestManFormats(t *testing.T) {
	manCmd, err := exec.LookPath("man")
	if err != nil {
		lab.Skip(t, "man is not installed (apt-get install man-db)")
	}
	cmd := exec.Command(manCmd, "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", "-")
	cmd.Env = append(cmd.Environ(), "LC_ALL=C.UTF-8", "MANROFFSEQ=", "MANWIDTH=80")
	cmd.Stdin = strings.NewReader(manPage(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Errorf("man --warnings: %v\n%s", err, stderr.String())
	}
}

func TestRoffEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`-g 'daemon off;'`, `\-g 'daemon off;'`},
		{`a\b`, `a\eb`},
		{"CHECK_INTERVAL × CHECK_RISE", `CHECK_INTERVAL \[u00D7] CHECK_RISE`},
	} {
		if got := roffEscape(tc.in); got != tc.want {
			t.Errorf("roffEscape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := roffText(".lock files"); got != `\&.lock files` {
		t.Errorf("a text line starting with a dot must not be a request: got %q", got)
	}
}
