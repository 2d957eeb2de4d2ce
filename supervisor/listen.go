package supervisor

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/envconf"
)

// Held listening sockets (VIPVISOR_LISTEN): vipvisor binds them itself
// and hands them to every start of the child, nginx through its NGINX
// variable, the mechanism of its own binary upgrade. While the child
// restarts, the kernel completes the handshakes of new connections and
// queues them in the socket's backlog, and the next nginx accepts them:
// a crash costs no connection, only the time to the next accept.

// ListenConfig is the listening-socket settings, read from VIPVISOR_*
// variables.
type ListenConfig struct {
	Listen ListenAddrs `accept:"comma list of TCP host:port, the host an IPv4 address, [an IPv6 one], or none or * for all IPv4 addresses (as nginx's listen 80)" desc:"addresses vipvisor binds and hands to the child (nginx: NGINX=3;4;), so connections queue instead of being refused while it restarts; nginx must listen on exactly these"`
}

// Validate checks the list; Decode has already refused what it can.
func (c *ListenConfig) Validate() []error { return nil }

// ListenAddrs is a comma list of TCP addresses to hold.
type ListenAddrs []netip.AddrPort

// Decode implements envconfig.Decoder. As in nginx's listen directive, a
// missing host or * is every IPv4 address, and an IPv6 address is
// written in brackets; names are not resolved.
func (l *ListenAddrs) Decode(s string) error {
	var out ListenAddrs
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ap, err := parseListenAddr(item)
		if err != nil {
			return err
		}
		for _, o := range out {
			if o == ap {
				return fmt.Errorf("%s is listed twice", ap)
			}
		}
		out = append(out, ap)
	}
	if len(out) == 0 {
		return errors.New("no address given")
	}
	*l = out
	return nil
}

func parseListenAddr(s string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not host:port (an IPv6 address as [addr]:port)", s)
	}
	p, err := envconf.Decimal(port)
	if err != nil || p < 1 || p > 65535 || port[0] == '0' { // 080 reads as octal elsewhere
		return netip.AddrPort{}, fmt.Errorf("%q: the port must be 1-65535", s)
	}
	addr := netip.IPv4Unspecified()
	if host != "" && host != "*" {
		if addr, err = netip.ParseAddr(host); err != nil || addr.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("%q: the host must be an IP address (names are not resolved), none, or *", s)
		}
		if addr.Is4In6() || addr.IsMulticast() {
			return netip.AddrPort{}, fmt.Errorf("%q: not an address to listen on", s)
		}
	}
	return netip.AddrPortFrom(addr, uint16(p)), nil
}

func (l ListenAddrs) String() string {
	s := make([]string, len(l))
	for i, a := range l {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// Covers reports whether a TCP connection to a would be accepted by one of
// the held sockets: the same address, or a wildcard of its family on the
// same port. A TCP probe of such an address always succeeds, since the
// kernel completes the handshake whether the child accepts or not.
func (l ListenAddrs) Covers(a netip.AddrPort) bool {
	for _, h := range l {
		if h.Port() != a.Port() {
			continue
		}
		if h.Addr() == a.Addr() || h.Addr().IsUnspecified() && h.Addr().Is4() == a.Addr().Is4() {
			return true
		}
	}
	return false
}

// listenBacklog is asked of listen(2); the kernel caps it at
// net.core.somaxconn (4096 by default), the deepest queue it allows. nginx
// sets its own backlog (511) again on the sockets its configuration names.
const listenBacklog = 65535

// Listeners are the held sockets, open from OpenListeners until Close.
type Listeners struct {
	addrs ListenAddrs
	files []*os.File

	mu       sync.Mutex
	refusing *refuser // non-nil while Refuse resets connections
}

// OpenListeners binds and listens on each address as nginx would:
// SO_REUSEADDR, and IPV6_V6ONLY for IPv6 (nginx's ipv6only=on, its
// default), so that [::]:80 and *:80 can be held side by side. The
// sockets are close-on-exec in vipvisor; the child gets its copies as
// Files. It fails, closing what it opened, if any address cannot be
// bound.
func OpenListeners(addrs ListenAddrs) (*Listeners, error) {
	l := &Listeners{addrs: addrs}
	for _, a := range addrs {
		f, err := listenTCP(a)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		l.files = append(l.files, f)
	}
	return l, nil
}

func listenTCP(a netip.AddrPort) (*os.File, error) {
	family := unix.AF_INET
	if a.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err == nil && family == unix.AF_INET6 {
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err == nil {
		err = setTransparent(fd, family)
	}
	if err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("setsockopt", err)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET6 {
		sa = &unix.SockaddrInet6{Port: int(a.Port()), Addr: a.Addr().As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: int(a.Port()), Addr: a.Addr().As4()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("listen", err)
	}
	// Non-blocking, as nginx's own listening sockets are: it does not
	// set that on the sockets it inherits, and its workers, woken
	// together, would otherwise block in accept while holding other
	// connections. Set after NewFile, which would otherwise hand the
	// socket to Go's poller, and File.Fd would make it blocking again.
	f := os.NewFile(uintptr(fd), "listen "+a.String())
	if err := unix.SetNonblock(fd, true); err != nil {
		f.Close()
		return nil, os.NewSyscallError("fcntl", err)
	}
	return f, nil
}

// setTransparent lets the connections a held socket accepts send from an
// address the node no longer has. When the VIP moves away (a hand-over,
// a preempting peer), the requests nginx is answering on it would
// otherwise have their replies dropped by the kernel, which refuses a
// source address that is not local, and the clients wait until they
// time out; with it the answers go out, and only the client's next
// packet meets the new master. It changes nothing about what the
// socket receives: that would take TPROXY rules. It needs
// CAP_NET_ADMIN, which vipvisor has to manage the VIPs anyway.
func setTransparent(fd, family int) error {
	if family == unix.AF_INET6 {
		return unix.SetsockoptInt(fd, unix.SOL_IPV6, unix.IPV6_TRANSPARENT, 1)
	}
	return unix.SetsockoptInt(fd, unix.SOL_IP, unix.IP_TRANSPARENT, 1)
}

// Addrs returns the held addresses, in the order of Files.
func (l *Listeners) Addrs() ListenAddrs { return l.addrs }

// Files returns the sockets, for exec.Cmd.ExtraFiles: the child gets
// them as file descriptors 3, 4, … in this order.
func (l *Listeners) Files() []*os.File { return l.files }

// NginxEnv is the NGINX variable that tells nginx which of its file
// descriptors are inherited listening sockets: "NGINX=3;4;".
func (l *Listeners) NginxEnv() string {
	var b strings.Builder
	b.WriteString("NGINX=")
	for i := range l.files {
		fmt.Fprintf(&b, "%d;", 3+i)
	}
	return b.String()
}

// Inodes returns the socket inodes of the held sockets, by address, to
// find them among a process's file descriptors.
func (l *Listeners) Inodes() map[uint64]netip.AddrPort {
	m := make(map[uint64]netip.AddrPort, len(l.files))
	for i, f := range l.files {
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) == nil {
			m[st.Ino] = l.addrs[i]
		}
	}
	return m
}

// Close closes the held sockets: connections still queued are reset.
func (l *Listeners) Close() error {
	l.Hold()
	var errs []error
	for _, f := range l.files {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	l.files = nil
	return errors.Join(errs...)
}
