package probes

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// maxBody is how much of a response body the body check reads: a health
// page is small, and a server that streams forever must not be read
// forever.
const maxBody = 64 << 10

// httpProbe passes when a GET of url answers with an accepted status and,
// if body is set, a body that contains it.
type httpProbe struct {
	url      string
	statuses StatusSet
	body     []byte
	client   *http.Client
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
func NewHTTP(url string, statuses StatusSet, body string) Probe {
	if len(statuses) == 0 {
		statuses = StatusSet{{Lo: 200, Hi: 399}}
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{}).DialContext,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxBody,
		TLSClientConfig:        &tls.Config{InsecureSkipVerify: true},
	}
	return &httpProbe{
		url:      url,
		statuses: statuses,
		body:     []byte(body),
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

func (p *httpProbe) Name() string { return "http " + p.url }

// Check sends the request with ctx, which bounds the connection, the
// header and the body read alike: when ctx is done the transport closes
// the connection and every pending read returns.
func (p *httpProbe) Check(ctx context.Context) Result {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return fail(start, fmt.Sprintf("bad URL: %v", err))
	}
	req.Header.Set("User-Agent", "vipvisor-probe")
	resp, err := p.client.Do(req)
	if err != nil {
		return fail(start, errReason(ctx, start, err))
	}
	defer resp.Body.Close()
	if !p.statuses.Contains(resp.StatusCode) {
		return fail(start, "status "+strconv.Itoa(resp.StatusCode))
	}
	if len(p.body) == 0 {
		return pass(start)
	}
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
