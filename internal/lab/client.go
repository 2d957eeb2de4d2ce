package lab

import (
	"cmp"
	"context"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"sync"
	"time"
)

// Client polls a URL from a node, recording every answer, to measure what a
// user sees across a failover. Configure its fields before Start.
type Client struct {
	// URL is fetched with GET; use an IP address, not a name.
	URL string
	// Interval is the time between the starts of requests; a request that
	// takes longer is followed at once by the next. Default 10ms.
	Interval time.Duration
	// Timeout bounds each request. Default 100ms.
	Timeout time.Duration
	// Limit stops the poller by itself after this long, so a forgotten
	// one cannot run on. Default 10 minutes.
	Limit time.Duration

	node *Node
	bg   background
	mu   sync.Mutex
	all  []Sample
}

// NewClient returns a poller of url from node from, not yet started. It is
// stopped when the test ends.
func NewClient(from *Node, url string) *Client {
	c := &Client{URL: url, Interval: 10 * time.Millisecond, Timeout: 100 * time.Millisecond,
		Limit: 10 * time.Minute, node: from}
	from.t.Cleanup(c.Stop)
	return c
}

// Start starts polling in the background; a field left at zero gets its
// default. Samples of an earlier run are kept. Starting a running Client
// fails the test.
func (c *Client) Start() {
	c.node.t.Helper()
	started := c.bg.start(func() func(<-chan struct{}) {
		c.Interval = cmp.Or(max(c.Interval, 0), 10*time.Millisecond)
		c.Timeout = cmp.Or(max(c.Timeout, 0), 100*time.Millisecond)
		c.Limit = cmp.Or(max(c.Limit, 0), 10*time.Minute)
		hc := c.node.HTTPClient(c.Timeout)
		return func(stop <-chan struct{}) { c.run(hc, stop) }
	})
	if !started {
		c.node.t.Fatalf("lab: client of %s on %s started twice", c.URL, c.node.Name)
	}
}

// Stop stops polling and waits for the request in flight. It may be called
// more than once.
func (c *Client) Stop() { c.bg.end() }

func (c *Client) run(hc *http.Client, stop <-chan struct{}) {
	tick := time.NewTicker(c.Interval)
	defer tick.Stop()
	limit := time.NewTimer(c.Limit)
	defer limit.Stop()
	for {
		c.record(poll(hc, c.URL))
		select {
		case <-stop:
			return
		case <-limit.C:
			return
		case <-tick.C:
		}
	}
}

// poll makes one request of url and records it, with the connection it
// went over or, if it got none, the one it dialed.
func poll(hc *http.Client, url string) Sample {
	var conn connSeen
	ctx := withDialHook(context.Background(), conn.dialed)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: conn.got})
	start := time.Now()
	status, body, err := getContext(ctx, hc, url)
	s := Sample{At: start, Took: time.Since(start), Status: status, Body: body, Err: err}
	s.Local, s.Reused = conn.seen()
	return s
}

// connSeen is the connection of one request, as its trace and its dial
// tell it. A dial may outlive its request, hence the lock.
type connSeen struct {
	mu           sync.Mutex
	conn, dialAt netip.AddrPort
	reused       bool
}

func (c *connSeen) dialed(local netip.AddrPort) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dialAt.IsValid() {
		c.dialAt = local
	}
}

func (c *connSeen) got(info httptrace.GotConnInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a, ok := info.Conn.LocalAddr().(*net.TCPAddr); ok {
		c.conn = a.AddrPort()
	}
	c.reused = info.Reused
}

// seen returns the connection the request got, else the one it dialed.
func (c *connSeen) seen() (netip.AddrPort, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn.IsValid() {
		return c.conn, c.reused
	}
	return c.dialAt, false
}

func (c *Client) record(s Sample) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.all = append(c.all, s)
}

// Samples returns a copy of every sample so far, oldest first.
func (c *Client) Samples() Samples {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(Samples(nil), c.all...)
}

// Failures counts the requests that got no 2xx response.
func (c *Client) Failures() int { return c.Samples().Failures() }

// Outages returns the longest outage: the longest run of failed requests,
// from the start of its first to the start of the next successful request
// (or the end of its last, if none followed). Zero means none failed.
func (c *Client) Outages() time.Duration { return c.Samples().Outage() }

// WhoAnswered returns the timeline of answers: runs of consecutive samples
// with the same Who, such as a×120, !refused×3, b×300.
func (c *Client) WhoAnswered() []Span { return c.Samples().Spans() }

// String summarises the timeline for a test log: "a×120 !refused×3 b×300".
func (c *Client) String() string { return c.Samples().String() }
