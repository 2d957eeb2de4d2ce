package probes

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// maxBody is how much of a response body the body check reads: a health
// page is small, and a server that streams forever must not be read
// forever. The response header is allowed as much again.
const maxBody = 64 << 10

// httpProbe passes when a GET of url answers with an accepted status and,
// if body is set, a body that contains it.
//
// It speaks HTTP/1.1 over one connection of its own per check, and not
// through http.Transport: a transport that keeps no connection still
// starts a dialling goroutine and a reader and a writer per request, and
// for a probe that runs every second for the life of the node that was a
// fair part of an idle supervisor's CPU. The response is parsed by
// http.ReadResponse, as the transport parses it.
type httpProbe struct {
	url      string
	statuses StatusSet
	body     []byte
	// addr is the host:port to dial, tls the client configuration for an
	// https URL (nil for http), request the bytes of the GET; err is why
	// url cannot be asked, or nil.
	addr    string
	tls     *tls.Config
	request []byte
	err     error
	dialer  net.Dialer
}

// NewHTTP returns a probe that sends GET url and passes when the status is
// in statuses (200-399 when statuses is empty) and, if body is not empty,
// the first 64 KiB of the response body contain body.
//
// Every check opens a new connection and closes it afterwards (no
// keep-alive), so a server that stopped accepting connections cannot hide
// behind an old one. Redirects are not followed: a 3xx is judged by
// statuses like any other status. Proxy variables are ignored, the body is
// not read at all when body is empty, and a certificate is not verified:
// the probe asks whether the local server answers, not who it is, and a
// URL such as https://127.0.0.1/health never matches the certificate.
//
// Its reasons are "status 503", "body does not contain \"ok\"",
// "timeout after 1s" (no complete header in time), "timeout after 1s
// reading body", or the kernel's words for a failed connection
// ("connection refused").
func NewHTTP(rawURL string, statuses StatusSet, body string) Probe {
	if len(statuses) == 0 {
		statuses = StatusSet{{Lo: 200, Hi: 399}}
	}
	p := &httpProbe{url: rawURL, statuses: statuses, body: []byte(body)}
	p.addr, p.tls, p.request, p.err = prepareGet(rawURL)
	return p
}

// prepareGet returns what a check of rawURL needs: the address to dial,
// the TLS configuration for https, and the request, which asks the server
// to close the connection after its answer.
func prepareGet(rawURL string) (addr string, cfg *tls.Config, request []byte, err error) {
	if err := checkURL(rawURL); err != nil {
		return "", nil, nil, err
	}
	u, _ := url.Parse(rawURL)
	port := u.Port()
	if u.Scheme == "https" {
		port = cmp.Or(port, "443")
		cfg = &tls.Config{InsecureSkipVerify: true, ServerName: u.Hostname()}
	}
	port = cmp.Or(port, "80")
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return "", nil, nil, err
	}
	req.Header.Set("User-Agent", "vipvisor-probe")
	req.Close = true
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		return "", nil, nil, err
	}
	return net.JoinHostPort(u.Hostname(), port), cfg, b.Bytes(), nil
}

func (p *httpProbe) Name() string { return "http " + p.url }

// Check sends the request with ctx, which bounds the connection, the
// header and the body read alike: the connection's deadline is ctx's, and
// when ctx is cancelled before it, every pending read returns at once.
func (p *httpProbe) Check(ctx context.Context) Result {
	start := time.Now()
	if p.err != nil {
		return fail(start, fmt.Sprintf("bad URL: %v", p.err))
	}
	raw, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return fail(start, errReason(ctx, start, err))
	}
	conn := raw
	defer func() { conn.Close() }()
	if d, ok := ctx.Deadline(); ok {
		raw.SetDeadline(d)
	}
	defer context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })()
	if p.tls != nil {
		tc := tls.Client(raw, p.tls)
		conn = tc
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(start, errReason(ctx, start, err))
		}
	}
	if _, err := conn.Write(p.request); err != nil {
		return fail(start, errReason(ctx, start, err))
	}
	// The header may take maxBody bytes, and the body as much again.
	limit := &io.LimitedReader{R: conn, N: maxBody}
	resp, err := http.ReadResponse(bufio.NewReader(limit), nil)
	switch {
	case err != nil && limit.N == 0:
		return fail(start, fmt.Sprintf("response header larger than %d bytes", maxBody))
	case err != nil:
		return fail(start, errReason(ctx, start, err))
	}
	if !p.statuses.Contains(resp.StatusCode) {
		return fail(start, "status "+strconv.Itoa(resp.StatusCode))
	}
	if len(p.body) == 0 {
		return pass(start)
	}
	limit.N += maxBody
	found, n, err := bodyContains(resp.Body, p.body, maxBody)
	switch {
	case found:
		return pass(start)
	case err != nil && isTimeout(ctx, err):
		return fail(start, timeoutReason(ctx, start)+" reading body")
	case err != nil:
		return fail(start, "read body: "+errReason(ctx, start, err))
	case n >= maxBody:
		return fail(start, fmt.Sprintf("body does not contain %q in its first %d bytes", p.body, maxBody))
	}
	return fail(start, fmt.Sprintf("body does not contain %q", p.body))
}

// bodyContains reads r until want turns up, r ends, or limit bytes have
// been read, and says whether want was found and how much was read. It
// stops as soon as want is found, so a server that goes on sending after
// the text does not delay the verdict.
func bodyContains(r io.Reader, want []byte, limit int) (found bool, n int, err error) {
	buf := make([]byte, limit)
	for n < limit {
		m, err := r.Read(buf[n:])
		from := max(0, n-len(want)+1)
		n += m
		if bytes.Contains(buf[from:n], want) {
			return true, n, nil
		}
		if err == io.EOF {
			return false, n, nil
		}
		if err != nil {
			return false, n, err
		}
	}
	return false, n, nil
}
