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
	if err := connect(ctx, f, sa); err != nil {
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
// poller until the handshake ends or ctx's deadline passes.
func connect(ctx context.Context, f *os.File, sa unix.Sockaddr) error {
	err := unix.Connect(int(f.Fd()), sa)
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
	resp, err := c.Get(url)
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
