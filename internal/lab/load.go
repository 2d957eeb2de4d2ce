package lab

import (
	"cmp"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Load asks a URL from a node at a fixed rate, open loop: each request
// starts on schedule whether or not the earlier ones have ended, as a
// site's users do, so an outage shows as the requests it failed rather
// than as a client waiting. Every other request goes over a pool of
// keep-alive connections, the rest each over a connection of its own.
// Configure its fields before Start.
type Load struct {
	// URL is fetched with GET; use an IP address, not a name.
	URL string
	// Rate is requests started a second. Default 2000.
	Rate int
	// Timeout bounds each request. Default 2s.
	Timeout time.Duration
	// Limit stops the load by itself after this long. Default 10 minutes.
	Limit time.Duration

	node *Node
	bg   background
	mu   sync.Mutex
	all  Samples
	// pending holds the start of each request in flight, by number.
	pending map[uint64]time.Time
}

// NewLoad returns a load on url from node from, not yet started. It is
// stopped when the test ends.
func NewLoad(from *Node, url string) *Load {
	l := &Load{URL: url, Rate: 2000, Timeout: 2 * time.Second, Limit: 10 * time.Minute,
		node: from, pending: map[uint64]time.Time{}}
	from.t.Cleanup(l.Stop)
	return l
}

// Start starts the load in the background; a field left at zero gets its
// default. Starting a running Load fails the test.
func (l *Load) Start() {
	l.node.t.Helper()
	started := l.bg.start(func() func(<-chan struct{}) {
		l.Rate = cmp.Or(max(l.Rate, 0), 2000)
		l.Timeout = cmp.Or(max(l.Timeout, 0), 2*time.Second)
		l.Limit = cmp.Or(max(l.Limit, 0), 10*time.Minute)
		fresh := l.node.HTTPClient(l.Timeout)
		kept := l.node.HTTPClient(l.Timeout)
		kept.Transport = &http.Transport{DialContext: l.node.DialContext, MaxIdleConnsPerHost: 64}
		return func(stop <-chan struct{}) { l.run([2]*http.Client{kept, fresh}, stop) }
	})
	if !started {
		l.node.t.Fatalf("lab: load on %s from %s started twice", l.URL, l.node.Name)
	}
}

// Stop stops starting requests and waits for those in flight. It may be
// called more than once.
func (l *Load) Stop() { l.bg.end() }

func (l *Load) run(clients [2]*http.Client, stop <-chan struct{}) {
	// Kept-alive connections are closed once the last request ends, so
	// that nothing of the load lingers on the server.
	defer clients[0].CloseIdleConnections()
	var inFlight sync.WaitGroup
	defer inFlight.Wait()
	every := time.Second / time.Duration(l.Rate)
	start := time.Now()
	end := start.Add(l.Limit)
	wait := time.NewTimer(0)
	defer wait.Stop()
	for n := uint64(0); ; n++ {
		// Behind schedule (a busy machine), the next request starts at
		// once: the rate is kept over time, not between two requests.
		at := start.Add(time.Duration(n) * every)
		if at.After(end) {
			return
		}
		if d := time.Until(at); d > 0 {
			wait.Reset(d)
			select {
			case <-stop:
				return
			case <-wait.C:
			}
		} else {
			select {
			case <-stop:
				return
			default:
			}
		}
		l.begin(n)
		inFlight.Go(func() { l.finish(n, poll(clients[n%2], l.URL)) })
	}
}

func (l *Load) begin(n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending[n] = time.Now()
}

func (l *Load) finish(n uint64, s Sample) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, n)
	l.all = append(l.all, s)
}

// Settled returns every request that started before t, ordered by
// start, once all of them have ended: it waits for those in flight, at
// most the Timeout and a little.
func (l *Load) Settled(t time.Time) Samples {
	deadline := time.Now().Add(l.Timeout + 500*time.Millisecond)
	for l.inFlightBefore(t) && time.Now().Before(deadline) {
		// Real time: the requests end on their own.
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.all.Between(time.Time{}, t)
	sortByStart(out)
	return out
}

func (l *Load) inFlightBefore(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, at := range l.pending {
		if at.Before(t) {
			return true
		}
	}
	return false
}

// sortByStart orders samples by when they started; a Load records them
// as they end.
func sortByStart(ss Samples) {
	slices.SortStableFunc(ss, func(x, y Sample) int { return x.At.Compare(y.At) })
}
