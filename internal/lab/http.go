package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// maxBody bounds how much of a response body HTTPGet and Client keep.
const maxBody = 1 << 20

// DialContext dials from inside the node's namespace: the socket is made
// on a thread that Do has moved there, and stays there. It has the
// signature of net.Dialer.DialContext. Give it IP addresses, not names:
// name lookups may run on goroutines outside the namespace.
func (n *Node) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
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
