package lab

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxBody bounds how much of a response body HTTPGet and Client keep.
const maxBody = 1 << 20

// DialContext dials from inside the node's namespace. It has the
// signature of net.Dialer.DialContext. Give it IP addresses, not names:
// name lookups may run on goroutines outside the namespace.
//
// A socket stays in the namespace it was made in, so only the socket is
// made on a thread that Do has moved there; the handshake runs on Go's
// poller like any other. A load of thousands of slow connections then
// holds no thread, and no namespace file, per connection.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	// A zone names an interface, which only the namespace can resolve.
	if err != nil || ap.Addr().Zone() != "" || (network != "tcp" && network != "tcp4" && network != "tcp6") {
		return n.dialInside(ctx, network, addr)
	}
	family, sa := socketAddr(ap)
	var fd int
	if err := n.Do(func() (err error) {
		fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
		return err
	}); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("socket", err)}
	}
	f := os.NewFile(uintptr(fd), "dial "+addr)
	defer f.Close()
	if err := connect(ctx, f, sa, dialHookOf(ctx)); err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap), Err: err}
	}
	return net.FileConn(f)
}

// socketAddr returns the family and socket address of ap, which has no
// zone.
func socketAddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	if a := ap.Addr(); a.Is4() || a.Is4In6() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.Unmap().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// connect connects the non-blocking socket f to sa, waiting on the
// poller until the handshake ends or ctx's deadline passes. Once the
// kernel has given the socket its local address, hook, if not nil, is
// told it, whether the handshake then ends or not.
func connect(ctx context.Context, f *os.File, sa unix.Sockaddr, hook func(netip.AddrPort)) error {
	err := unix.Connect(int(f.Fd()), sa)
	if hook != nil && (err == nil || err == unix.EINPROGRESS) {
		if local, ok := localAddr(int(f.Fd())); ok {
			hook(local)
		}
	}
	if err == nil {
		return nil
	}
	if err != unix.EINPROGRESS {
		return os.NewSyscallError("connect", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		f.SetWriteDeadline(dl)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var soErr error
	werr := rc.Write(func(fd uintptr) bool {
		// Asked of the socket itself each time: the poller's edge may
		// have come and gone before this wait began.
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(pfd, 0); err == nil && n == 0 {
			return false // the handshake is not over yet
		}
		code, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		switch {
		case err != nil:
			soErr = os.NewSyscallError("getsockopt", err)
		case code != 0:
			soErr = os.NewSyscallError("connect", syscall.Errno(code))
		}
		return true
	})
	return cmp.Or(werr, soErr)
}

// localAddr returns the local address of socket fd.
func localAddr(fd int) (netip.AddrPort, bool) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.AddrPort{}, false
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), true
	}
	return netip.AddrPort{}, false
}

// dialHookKey keys the hook DialContext tells the local address of the
// socket it dials, so that a request that never got a connection can
// still name the one it tried: the port of its SYNs in a capture.
type dialHookKey struct{}

func withDialHook(ctx context.Context, hook func(netip.AddrPort)) context.Context {
	return context.WithValue(ctx, dialHookKey{}, hook)
}

func dialHookOf(ctx context.Context) func(netip.AddrPort) {
	hook, _ := ctx.Value(dialHookKey{}).(func(netip.AddrPort))
	return hook
}

// dialInside dials on a thread in the node's namespace, for what
// DialContext does not make itself.
func (n *Node) dialInside(ctx context.Context, network, addr string) (net.Conn, error) {
	var conn net.Conn
	err := n.Do(func() error {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		conn = c
		return err
	})
	return conn, err
}

// HTTPClient returns an HTTP client whose connections are made from the
// node, in process. Keep-alives are off, so every request opens a fresh
// connection and sees where the address lives now, and proxy variables of
// the environment are ignored.
func (n *Node) HTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:       n.DialContext,
			DisableKeepAlives: true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// HTTPGet fetches url from the node, in process through HTTPClient (no curl
// is needed), and returns the status code and up to 1 MiB of the body.
// Redirects are not followed.
func (n *Node) HTTPGet(url string, timeout time.Duration) (status int, body string, err error) {
	return get(n.HTTPClient(timeout), url)
}

func get(c *http.Client, url string) (int, string, error) {
	return getContext(context.Background(), c, url)
}

func getContext(ctx context.Context, c *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return resp.StatusCode, string(b), fmt.Errorf("read body of %s: %w", url, err)
	}
	return resp.StatusCode, string(b), nil
}
