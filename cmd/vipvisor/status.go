package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/vipvisor/vipvisor/internal/envconf"
	"github.com/vipvisor/vipvisor/supervisor"
	"github.com/vipvisor/vipvisor/vrrp"
)

// statusLimits are the limits of the status endpoint, so that nothing done
// to it (many connections, slow or idle clients, pipelined bursts) costs
// the node more than a bounded number of descriptors and a few MiB,
// however long it lasts: the probes and the child need descriptors too,
// and a node that runs out of them yields. They are a value, not
// constants, so that tests can shorten the timeouts.
type statusLimits struct {
	// maxConns is how many connections are served at once. More wait in
	// the kernel's accept queue (its backlog, then SYN retries), which
	// costs vipvisor no descriptor and no memory.
	maxConns int
	// maxPerSource is how many of those one client address may hold. A
	// further connection from it is closed as soon as it is accepted, so
	// one client cannot take every place from the others (a local
	// `vipvisor status`, a Prometheus server).
	maxPerSource int
	// A client has readHeader to send a request's header and read for the
	// whole request; a silent or slow (slowloris) connection is then
	// closed.
	readHeader, read time.Duration
	// A response must be written within write; a client that does not
	// read its answers (a pipelined burst) is then cut off.
	write time.Duration
	// A keep-alive connection with no request for idle is closed.
	idle time.Duration
	// maxHeaderBytes bounds a request's header; net/http adds 4 KiB.
	maxHeaderBytes int
	// rate is how many requests a second are answered, from all clients
	// together, in bursts of as many; a request over it gets 429 and its
	// connection is closed, which also ends a pipelined burst. Without it
	// one client pipelining requests makes vipvisor spend its CPU on
	// /status instead of the probes and VRRP.
	rate int
}

// defaultStatusLimits serve monitoring, which needs a handful of
// connections and answers in milliseconds.
var defaultStatusLimits = statusLimits{
	maxConns: 64, maxPerSource: 8,
	readHeader: 2 * time.Second, read: 5 * time.Second, write: 5 * time.Second,
	idle: 10 * time.Second, maxHeaderBytes: 4 << 10,
	// Monitoring asks a few times a second at most, and a watch loop (a
	// test's, a script's) up to a hundred times; 500 leaves room for a few
	// of those and keeps the endpoint's share of the CPU small.
	rate: 500,
}

// serveStatus starts the status endpoint, unless it is off. A port already
// in use is a runtime failure, reported before the child is started.
func serveStatus(addr string, sup *supervisor.Supervisor) (stop func(), err error) {
	ln, err := listenStatus(addr)
	if err != nil {
		return nil, err
	}
	return serveStatusOn(ln, sup), nil
}

// listenStatus binds the status endpoint's address, or returns nil when it
// is off. Binding first, before anything else is set up, lets a port in use
// fail the start while nothing on the host has been touched.
func listenStatus(addr string) (net.Listener, error) {
	if addr == "off" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status endpoint (VIPVISOR_STATUS_ADDR): %w", err)
	}
	return ln, nil
}

// serveStatusOn serves the status endpoint on ln (nil: off) until stop.
func serveStatusOn(ln net.Listener, sup *supervisor.Supervisor) (stop func()) {
	if ln == nil {
		return func() {}
	}
	srv := newStatusServer(supervisor.StatusHandler(sup.Status), defaultStatusLimits, time.Now)
	go srv.Serve(limitListener(ln, defaultStatusLimits))
	return func() { srv.Close() }
}

// newStatusServer returns the HTTP server of the status endpoint, with
// every timeout set: net/http's zero values mean none, and an idle
// keep-alive connection would then be kept for ever.
func newStatusServer(h http.Handler, lim statusLimits, now func() time.Time) *http.Server {
	return &http.Server{
		Handler:           limitRequests(h, newTokenBucket(lim.rate, now)),
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    lim.maxHeaderBytes,
		ErrorLog:          log.New(io.Discard, "", 0), // a client's misbehaviour is not ours to log
	}
}

// limitRequests answers 429 and closes the connection when the bucket has
// no token for a request, and passes the request to h otherwise.
func limitRequests(h http.Handler, b *tokenBucket) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !b.take() {
			w.Header().Set("Connection", "close")
			w.Header().Set("Retry-After", "1")
			http.Error(w, "too many requests", http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// tokenBucket allows rate events a second, in bursts of up to rate. Its
// clock is injected so that tests need not wait.
type tokenBucket struct {
	mu     sync.Mutex
	rate   float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newTokenBucket(rate int, now func() time.Time) *tokenBucket {
	return &tokenBucket{rate: float64(rate), tokens: float64(rate), last: now(), now: now}
}

// take uses a token if there is one.
func (b *tokenBucket) take() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	b.tokens = min(b.rate, b.tokens+t.Sub(b.last).Seconds()*b.rate)
	b.last = t
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limitListener caps ln at lim.maxConns connections at once and
// lim.maxPerSource from one address.
func limitListener(ln net.Listener, lim statusLimits) net.Listener {
	return &perSourceListener{Listener: netutil.LimitListener(ln, lim.maxConns), max: lim.maxPerSource,
		open: map[netip.Addr]int{}}
}

// perSourceListener closes a connection at once when its source address
// already holds max open connections.
type perSourceListener struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[netip.Addr]int // open connections by source address
}

// Accept returns the next connection whose source is under its limit.
func (l *perSourceListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceOf(c)
		l.mu.Lock()
		over := l.open[src] >= l.max
		if !over {
			l.open[src]++
		}
		l.mu.Unlock()
		if over {
			c.Close()
			continue
		}
		return &sourceConn{Conn: c, l: l, src: src}, nil
	}
}

func (l *perSourceListener) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[src]--; l.open[src] <= 0 {
		delete(l.open, src)
	}
}

// sourceOf returns the address a connection comes from.
func sourceOf(c net.Conn) netip.Addr {
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

// sourceConn is a connection counted against its source until closed.
type sourceConn struct {
	net.Conn
	l    *perSourceListener
	src  netip.Addr
	once sync.Once
}

// Close closes the connection and frees its place, once.
func (c *sourceConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.src) })
	return err
}

// status asks a running vipvisor for its state.
func status(args []string, w io.Writer) error {
	asJSON := false
	for _, a := range args {
		if a != "--json" {
			return fmt.Errorf("%w: status takes only --json", errUsage)
		}
		asJSON = true
	}
	var ops Ops
	if err := envconf.LoadSome(envconf.Section{Spec: &ops}); err != nil {
		return err
	}
	if ops.StatusAddr == "off" {
		return envconf.Invalid("STATUS_ADDR", "the status endpoint is off", "host:port of a running vipvisor")
	}
	body, err := fetchStatus(dialAddr(ops.StatusAddr))
	if err != nil {
		return err
	}
	if asJSON {
		_, err = w.Write(body)
		return err
	}
	var s supervisor.Status
	if err := json.Unmarshal(body, &s); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	return printStatus(w, s)
}

// dialAddr turns a listen address into one to connect to: an empty or
// unspecified host means this machine.
func dialAddr(addr string) string {
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func fetchStatus(addr string) ([]byte, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return nil, fmt.Errorf("status: is vipvisor running? %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status: %s answered %s", addr, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func printStatus(w io.Writer, s supervisor.Status) error {
	c := s.Child
	_, err := fmt.Fprintf(w, "vipvisor %s: %s\nchild: %s, started %d time(s), %d crash(es)",
		s.Version, s.Summary(), c.Command, c.Starts, c.Crashes)
	if err == nil && c.Running {
		_, err = fmt.Fprintf(w, ", up %s", time.Since(c.Since).Round(time.Second))
	}
	if err == nil && c.LastExit != "" {
		_, err = fmt.Fprintf(w, ", last exit: %s", c.LastExit)
	}
	if err == nil {
		_, err = fmt.Fprintln(w)
	}
	instances := s.Instances
	if len(instances) == 0 {
		instances = []vrrp.InstanceStatus{s.VRRP}
	}
	for _, v := range instances {
		if err != nil {
			break
		}
		_, err = fmt.Fprintf(w, "instance %s: VRID %d, %s prio %d, VIPs %s, primary %s", v.Name, v.VRID, v.State, v.Priority, v.VIPs, v.Primary)
		if err == nil && v.Master != "" {
			_, err = fmt.Fprintf(w, ", master %s", v.Master)
		}
		if err == nil {
			_, err = fmt.Fprintln(w)
		}
	}
	return err
}

// resolveTimeout bounds the name lookup of a STATUS_ADDR given by name.
const resolveTimeout = 2 * time.Second

// checkStatusAddr checks VIPVISOR_STATUS_ADDR, so that `vipvisor check`
// and the start find a bad one instead of the listener failing later with
// a message that names no variable. It only reads: a port 1-65535 in
// decimal, and a host that is empty (every address), an IP address or a
// name that resolves. With listen, an IP address must also be one of this
// network namespace's (or unspecified); without, as for `vipvisor status`,
// it may be another node's.
func checkStatusAddr(addr string, listen bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("not host:port")
	}
	if n, err := envconf.Decimal(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not 1-65535", port)
	}
	if host == "" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if strings.Trim(host, "0123456789.") == "" || strings.Contains(host, ":") {
			return fmt.Errorf("%q is not an IP address", host)
		}
		return resolves(host)
	}
	if listen && !ip.IsUnspecified() && !isLocal(ip) {
		return fmt.Errorf("%s is not an address of this node", ip)
	}
	return nil
}

// resolves checks that a host name has an address.
func resolves(host string) error {
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	if _, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return fmt.Errorf("host %q does not resolve", host)
	}
	return nil
}

// isLocal reports whether ip can be bound in this network namespace: it is
// on one of its interfaces (any address of a loopback prefix, as Linux
// answers for all of 127.0.0.0/8), or the kernel allows binding addresses
// that are not (net.ipv4.ip_nonlocal_bind). When the interfaces cannot be
// read, the listener will say what is wrong.
func isLocal(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	if nonlocalBind(ip) {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return true
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		own, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		own = own.Unmap()
		bits, _ := ipn.Mask.Size()
		if own == ip || own.IsLoopback() && netip.PrefixFrom(own, bits).Contains(ip) {
			return true
		}
	}
	return false
}

// nonlocalBind reads whether the kernel lets a socket bind an address of
// ip's family that is on no interface.
func nonlocalBind(ip netip.Addr) bool {
	path := "/proc/sys/net/ipv4/ip_nonlocal_bind"
	if ip.Is6() {
		path = "/proc/sys/net/ipv6/ip_nonlocal_bind"
	}
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == "1"
}
