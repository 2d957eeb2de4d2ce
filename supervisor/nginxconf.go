package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

// What nginx does with inherited sockets (nginx 1.22, ngx_init_cycle and
// ngx_open_listening_sockets): it takes each fd named in NGINX, reads its
// address, and keeps it for the listen directive of exactly that address
// (listen 80 is 0.0.0.0:80); an inherited socket no directive names is
// closed in nginx, and since vipvisor still holds it, connections to it
// would then be accepted by the kernel and never answered. A directive
// with reuseport makes nginx open sockets of its own, one per worker,
// with SO_REUSEPORT, which the kernel refuses beside the held one. So
// the configuration must name every held address, without reuseport;
// NginxListenProblems says where it does not.

// NginxListen is one listen directive of nginx's configuration.
type NginxListen struct {
	Addr      netip.AddrPort // invalid for a name or a unix socket
	Text      string         // as written, for messages
	Reuseport bool
	IPv6OnOff bool // ipv6only=off
}

// listenDirective finds listen directives in nginx -T's dump, comments
// already removed.
var listenDirective = regexp.MustCompile(`(?:^|[\s;{}])listen\s+([^;{}]+);`)

// NginxListens runs nginx -T with argv's options (-c, -p, -g) and returns
// the listen directives of the configuration it would run with.
func NginxListens(ctx context.Context, argv []string) ([]NginxListen, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(append([]string(nil), argv[1:]...), "-T", "-q")...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s -T: %w: %s", argv[0], err, strings.TrimSpace(errb.String()))
	}
	return parseNginxListens(out.String()), nil
}

func parseNginxListens(dump string) []NginxListen {
	var b strings.Builder
	for _, line := range strings.Split(dump, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	var out []NginxListen
	for _, m := range listenDirective.FindAllStringSubmatch(b.String(), -1) {
		words := strings.Fields(m[1])
		l := NginxListen{Text: "listen " + strings.Join(words, " "), Addr: nginxAddr(words[0])}
		for _, w := range words[1:] {
			switch {
			case w == "reuseport":
				l.Reuseport = true
			case w == "ipv6only=off":
				l.IPv6OnOff = true
			}
		}
		out = append(out, l)
	}
	return out
}

// nginxAddr reads the address of a listen directive as nginx does: a
// port alone is every IPv4 address, an address alone (or *) port 80. A
// name or a unix socket gives the invalid AddrPort: not comparable.
func nginxAddr(s string) netip.AddrPort {
	if !strings.ContainsAny(s, ":*[") { // a port alone, or an IPv4 address alone
		if ap, err := parseListenAddr(":" + s); err == nil {
			return ap
		}
		s += ":80"
	} else if s == "*" || strings.HasSuffix(s, "]") {
		s += ":80"
	}
	ap, _ := parseListenAddr(s)
	return ap
}

// NginxListenProblems compares the held addresses with nginx's listen
// directives and says, one line each, what would leave a held socket
// unanswered or make nginx fail to start.
func NginxListenProblems(held ListenAddrs, listens []NginxListen) []string {
	var out []string
	for _, h := range held {
		var named []NginxListen
		for _, l := range listens {
			if l.Addr == h {
				named = append(named, l)
			}
		}
		if len(named) == 0 {
			out = append(out, fmt.Sprintf("nginx's configuration does not listen on %s; add `listen %s;` or drop it from VIPVISOR_LISTEN: nginx would close the held socket, and connections to it would be accepted by the kernel but never answered", h, nginxForm(h)))
			continue
		}
		for _, l := range named {
			if l.Reuseport {
				out = append(out, fmt.Sprintf("nginx's `%s` has reuseport: nginx would open sockets of its own beside the held one, which the kernel refuses; drop reuseport", l.Text))
			}
			if l.IPv6OnOff {
				out = append(out, fmt.Sprintf("nginx's `%s` has ipv6only=off, but held IPv6 sockets are IPv6 only (nginx's default): drop ipv6only=off and hold the IPv4 address too", l.Text))
			}
		}
	}
	return out
}

// nginxForm writes a held address as a listen directive would.
func nginxForm(a netip.AddrPort) string {
	if a.Addr() == netip.IPv4Unspecified() {
		return fmt.Sprint(a.Port())
	}
	return a.String()
}
