package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/envconf"
	"github.com/vipvisor/vipvisor/supervisor"
)

// manArg is the hidden command that writes the manual page vipvisor(1).
// The package build runs it, so that the page is made from the same
// definitions as `vipvisor help` (the usage text and the settings' struct
// tags) and cannot drift from them.
const manArg = "_man"

// manCommand is one line of the usage text's command list.
type manCommand struct {
	Synopsis string // after "vipvisor ", e.g. "status [--json]"
	Does     string
}

// usageCommandLine is a command line of usage: two spaces, "vipvisor",
// the synopsis, then at least two spaces before what it does.
var usageCommandLine = regexp.MustCompile(`^  vipvisor ?(.*?)\s{2,}(\S.*)$`)

// manCommands parses the commands out of the usage text help prints, so a
// command added there is in the manual too.
func manCommands() []manCommand {
	var cmds []manCommand
	for line := range strings.SplitSeq(usage, "\n") {
		if m := usageCommandLine.FindStringSubmatch(line); m != nil {
			cmds = append(cmds, manCommand{Synopsis: strings.TrimSpace(m[1]), Does: m[2]})
		}
	}
	return cmds
}

// manSummary is the usage text's first paragraph, joined into one line.
func manSummary() string {
	para, _, _ := strings.Cut(usage, "\n\n")
	return strings.Join(strings.Fields(para), " ")
}

// manExits are the exit codes, keyed by the constants exitCode returns.
var manExits = []struct {
	code int
	text string
}{
	{exitOK, "Stopped cleanly on SIGTERM or SIGINT; for the other commands, success."},
	{exitRuntime, "Runtime failure: a socket, netlink, a permission, or a child that could not start; the message names the cause."},
	{exitConfig, "Configuration error: the message names each variable, its value and what is accepted, one line per problem; nothing on the host was changed."},
	{exitGaveUp, "Gave up on the child (VIPVISOR_ON_YIELD=exit)."},
}

// manSignals says what vipvisor does with each signal it handles.
var manSignals = []struct{ sig, text string }{
	{"SIGTERM, SIGINT, SIGQUIT", "Graceful stop: a master hands the VIP over first (priority 0), then the child gets VIPVISOR_STOP_SIGNAL and, after VIPVISOR_STOP_TIMEOUT, SIGKILL to its whole process group; then vipvisor exits 0. A second signal kills at once."},
	{"SIGHUP", "VIPVISOR_RELOAD_SIGNAL is sent to the child; systemd is told RELOADING=1, then READY=1."},
	{"SIGUSR1, SIGUSR2", "Forwarded to the child as they are (nginx reopens its logs on SIGUSR1)."},
}

// manFiles are the files the package installs or vipvisor writes.
var manFiles = []struct{ path, text string }{
	{"/etc/vipvisor/nginx.env", "The settings of vipvisor-nginx.service, one VIPVISOR_NAME=value per line."},
	{"/usr/lib/systemd/system/vipvisor-nginx.service", "The systemd unit that runs nginx as vipvisor's child."},
	{supervisor.StateDir + "/vipvisor-NETNS-INTERFACE-VRID.json", "What a running vipvisor started (its child's cgroup and process group, its guard), so that the next start can end what a killed one left; with a .lock file beside it that keeps a second vipvisor for the same VRID from starting."},
}

// writeMan writes the manual page vipvisor(1) in roff.
func writeMan(w io.Writer) error {
	b := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p(".\\\" Made by `vipvisor %s` from the definitions `vipvisor help` prints.\n", manArg)
	p(".TH VIPVISOR 1 %s %s \"User Commands\"\n", roffQuote(manDate()), roffQuote("vipvisor "+version))
	// No hyphenation: names such as CAP_NET_ADMIN must stay whole.
	p(".nh\n")
	p(".SH NAME\nvipvisor \\- run a web server as a child and own a virtual IP over VRRP while it is healthy\n")

	cmds := manCommands()
	p(".SH SYNOPSIS\n.nf\n")
	for _, c := range cmds {
		p("%s\n", roffLine(`\fBvipvisor\fR `+roffSynopsis(c.Synopsis)))
	}
	p(".fi\n")

	p(".SH DESCRIPTION\n%s\n", roffText(manSummary()))
	p(".PP\n%s\n", roffText("It launches the server as its child, forwards signals to it, reaps it "+
		"and stops it gracefully; it probes the child and speaks VRRP v2 (RFC 3768) or v3 (RFC 5798), "+
		"multicast or unicast, with its peers, keepalived included. On a failure it restarts the child "+
		"once; if that does not cure it, it yields the VIP at once so that a peer takes over. "+
		"Under systemd it reports READY, STATUS, WATCHDOG and STOPPING."))
	p(".PP\n%s\n", roffText("It is configured by environment variables alone; see ENVIRONMENT. "+
		"It needs Linux with netlink, raw sockets and the capabilities CAP_NET_ADMIN and CAP_NET_RAW; "+
		"it runs no program but the child and the commands VIPVISOR_CHECK_EXEC and VIPVISOR_NOTIFY name."))

	p(".SH COMMANDS\n")
	for _, c := range cmds {
		p(".TP\n%s\n%s\n", roffLine(`\fBvipvisor\fR `+roffSynopsis(c.Synopsis)), roffText(manCommandText(c)))
	}

	if err := manEnvironment(p); err != nil {
		return err
	}

	p(".SH EXIT STATUS\n")
	for _, e := range manExits {
		p(".TP\n.B %d\n%s\n", e.code, roffText(e.text))
	}
	p(".SH SIGNALS\n")
	for _, s := range manSignals {
		p(".TP\n%s\n%s\n", roffLine(`\fB`+roffEscape(s.sig)+`\fR`), roffText(s.text))
	}
	p(".SH FILES\n")
	for _, f := range manFiles {
		p(".TP\n%s\n%s\n", roffLine(`\fI`+roffEscape(f.path)+`\fR`), roffText(f.text))
	}
	p(".SH SEE ALSO\n.BR nginx (8),\n.BR keepalived (8),\n.BR systemctl (1),\n.BR systemd.exec (5)\n")
	p(".PP\n%s\n", roffText("/usr/share/doc/vipvisor/README.md.gz: how it behaves, and why."))
	return b.Flush()
}

// manEnvironment writes the section ENVIRONMENT: every variable of every
// settings section, as help lists them.
func manEnvironment(p func(format string, args ...any)) error {
	p(".SH ENVIRONMENT\n%s\n", roffText("All names start with VIPVISOR_. Unknown VIPVISOR_* variables are "+
		"an error, so that a typo does not pass silently, and names without the prefix are never read. "+
		"Numbers are decimal: 051 is 51; 0x, 0o, 0b, _, + and blanks are errors."))
	p(".PP\n.nf\n%s\n.fi\n", roffEscape(instancesHelp))
	for _, s := range new(Settings).sections() {
		vars, err := envconf.Vars(s)
		if err != nil {
			return err
		}
		p(".SS %s\n", roffQuote(s.Title))
		for _, v := range vars {
			p(".TP\n%s\n%s\n", roffLine(`\fB`+roffEscape(v.Key)+`\fR`), roffLine(manVarText(v)))
		}
	}
	return nil
}

// manVarText is the paragraph about one variable, in roff: meaning,
// default and accepted values.
func manVarText(v envconf.Var) string {
	var b strings.Builder
	// As help shows it: a description may start with a value ("auto: …")
	// or a version ("v2 …"), which must keep their case.
	b.WriteString(roffEscape(strings.TrimSuffix(v.Desc, ".") + "."))
	switch {
	case v.Required:
		b.WriteString(" Required.")
	case v.Default == "":
		b.WriteString(" Default: empty.")
	default:
		b.WriteString(` Default: \fB` + roffEscape(v.Default) + `\fR.`)
	}
	if v.Accept != "" {
		b.WriteString(" Accepted: " + roffEscape(v.Accept) + ".")
	}
	return b.String()
}

// manCommandText is what a command does, as a sentence of the manual.
// help's own line says "this text", which the manual must spell out.
func manCommandText(c manCommand) string {
	if c.Does == "this text" {
		return "Print the commands and the table of every variable (see ENVIRONMENT) with its default and meaning."
	}
	return sentence(c.Does)
}

// sentence capitalizes s and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// manDate is the page's date: SOURCE_DATE_EPOCH's, so that a package build
// is reproducible, else none.
func manDate() string {
	sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		return ""
	}
	return time.Unix(sec, 0).UTC().Format("2006-01-02")
}

// synopsisToken is a word, an ellipsis or any other single character.
var synopsisToken = regexp.MustCompile(`[A-Za-z0-9_-]+|\.\.\.|.`)

// roffSynopsis formats a synopsis: upper-case words are placeholders
// (italic), other words literal (bold), and brackets, bars and ellipses
// plain.
func roffSynopsis(s string) string {
	var b strings.Builder
	for _, tok := range synopsisToken.FindAllString(s, -1) {
		switch {
		case strings.ContainsAny(tok[:1], "[]|. "):
			b.WriteString(roffEscape(tok))
		case strings.ToUpper(tok) == tok && strings.ToLower(tok) != tok:
			b.WriteString(`\fI` + roffEscape(tok) + `\fR`)
		default:
			b.WriteString(`\fB` + roffEscape(tok) + `\fR`)
		}
	}
	return b.String()
}

// roffEscape makes text safe inside a roff line: backslashes and minus
// signs escaped (so options copied from the page keep their ASCII hyphen),
// and characters outside ASCII named by their code point.
func roffEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\e`)
		case r == '-':
			b.WriteString(`\-`)
		case r > 0x7e:
			fmt.Fprintf(&b, `\[u%04X]`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// roffText is escaped prose on a line of its own.
func roffText(s string) string { return roffLine(roffEscape(s)) }

// roffLine guards a text line that would otherwise start a request.
func roffLine(s string) string {
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		return `\&` + s
	}
	return s
}

// roffQuote is a macro argument in double quotes.
func roffQuote(s string) string {
	return `"` + strings.ReplaceAll(roffEscape(s), `"`, `\(dq`) + `"`
}
