package vrrp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// defaultGroup is the IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
var defaultGroup = netip.AddrFrom4([4]byte{224, 0, 0, 18})

// connConfig is what the socket needs to know.
type connConfig struct {
	// Interface carries the adverts. The socket is bound to it.
	Interface string
	// VRID is our virtual router ID, 1–255.
	VRID uint8
	// Version is 2 (RFC 3768) or 3 (RFC 5798).
	Version int
	// Group is the multicast group, used when Peers is empty; the zero
	// Addr means defaultGroup. In unicast mode it is the address that old
	// unicast v3 checksums cover (see Advert.Dst).
	Group netip.Addr
	// Peers are the unicast peers; empty means multicast. A peer equal to
	// our primary address is skipped by Send, so that every node can be
	// given the same list.
	Peers []netip.Addr
	// AuthPass is the v2 simple password, at most 8 characters; empty
	// means auth type 0.
	AuthPass string
	// Interval is our advert interval. v2 adverts with another interval
	// are dropped (RFC 3768 §7.1, as keepalived does); v3 ones are
	// accepted, and logged at a bounded rate.
	Interval time.Duration
	// VIPs are our virtual addresses, put in every advert. A received
	// list that differs is logged at a bounded rate, not dropped.
	VIPs []netip.Addr
	// Log receives the drop and mismatch lines; nil discards them.
	Log *slog.Logger
}

// vrrpConn is the VRRP socket of one virtual router on one interface: a raw
// IPv4 socket of protocol 112, bound to the interface (SO_BINDTODEVICE),
// that sends our adverts and receives the peers' (socket4.go).
//
// Sent adverts leave with TTL 255 (RFC 5798 §5.1.1.3), TOS 0xc0 (network
// control, as keepalived) and, as source, the interface's primary address,
// named on every write.
//
// Receive may be called by one goroutine at a time; Send, SetPrimary, Primary,
// Drops and Close may be called concurrently with it and with each other.
type vrrpConn struct {
	ifname  string
	v6      bool // an IPv6 virtual router (socket6, link-local source)
	ifindex int
	sock    socket
	rules   rxRules
	dsts    []netip.Addr // where Send sends: the group, or the peers
	advert  Advert       // what Send sends, but Priority, Src and Dst
	log     *slog.Logger
	now     func() time.Time // a seam: tests pin the rate limiter's clock
	limit   *rateLimiter
	drops   dropCounts

	mu      sync.Mutex
	primary netip.Addr
	sbuf    []byte

	rbuf []byte // Receive's own
}

// listenConn opens the VRRP socket described by cfg: bound to the interface,
// with our TTL and TOS, joined to the group in multicast mode. It fails if
// the interface does not exist. Send needs a source: the caller sets it
// with SetPrimary, from the one component that watches the interface's
// addresses (vipSet.Primary and Watch).
func listenConn(cfg connConfig) (*vrrpConn, error) {
	c, err := newConn(cfg)
	if err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("vrrp: interface %s: %w", cfg.Interface, err)
	}
	c.ifindex, c.rules.ifIndex = ifi.Index, ifi.Index
	var group netip.Addr // none in unicast mode
	if !c.rules.unicast() {
		group = c.rules.group
	}
	if c.v6 {
		c.sock, err = listen6(ifi, group)
	} else {
		c.sock, err = listen4(ifi, group)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// newConn checks cfg and builds everything of a Conn but the socket.
func newConn(cfg connConfig) (*vrrpConn, error) {
	v6 := len(cfg.VIPs) > 0 && isIPv6(cfg.VIPs[0])
	group := cfg.Group
	if !group.IsValid() {
		group = defaultGroup
		if v6 {
			group = defaultGroup6
		}
	}
	c := &vrrpConn{
		ifname: cfg.Interface,
		v6:     v6,
		rules: rxRules{vrid: cfg.VRID, version: cfg.Version, group: group,
			peers: slices.Clone(cfg.Peers), interval: cfg.Interval, vips: slices.Clone(cfg.VIPs)},
		log:   cfg.Log,
		now:   time.Now,
		limit: newRateLimiter(dropLogPeriod),
		rbuf:  make([]byte, 8192), // an advert is at most 20+40+1036 bytes (IPv4), 4088 (IPv6)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("interface", cfg.Interface, "vrid", cfg.VRID)
	c.advert = Advert{Version: cfg.Version, VRID: cfg.VRID, Interval: cfg.Interval, Addrs: c.rules.vips}
	if cfg.AuthPass != "" {
		if cfg.Version != 2 || len(cfg.AuthPass) > 8 {
			return nil, fmt.Errorf("vrrp: listen on %s: a password needs version 2 and at most 8 characters", cfg.Interface)
		}
		c.rules.authType, c.rules.authData = 1, authPassword(cfg.AuthPass)
		c.advert.AuthType, c.advert.AuthData = 1, c.rules.authData
	}
	fam := "IPv4"
	if v6 {
		fam = "IPv6"
	}
	c.dsts = c.rules.peers
	if len(c.dsts) == 0 {
		if isIPv6(group) != v6 || !group.IsMulticast() {
			return nil, fmt.Errorf("vrrp: listen on %s: group %v is not an %s multicast address", cfg.Interface, group, fam)
		}
		c.dsts = []netip.Addr{group}
	}
	for _, p := range cfg.Peers {
		if isIPv6(p) != v6 || p.IsMulticast() || p.IsUnspecified() {
			return nil, fmt.Errorf("vrrp: listen on %s: peer %v is not an %s unicast address", cfg.Interface, p, fam)
		}
	}
	// Encode one advert now, so that a bad version, VRID, interval or
	// address list fails here, not at the first Send.
	probe := c.advert
	probe.Src, probe.Dst = c.dsts[0], c.dsts[0]
	if v6 {
		probe.Src = netip.MustParseAddr("fe80::1")
	}
	if _, err := probe.MarshalBinary(); err != nil {
		return nil, fmt.Errorf("vrrp: listen on %s: %w", cfg.Interface, err)
	}
	return c, nil
}

// Primary returns the source of our adverts, as last set: the
// interface's primary address (for IPv6 its link-local one), also our
// address in the tie-break of equal priorities (RFC 5798 §6.4.3) and the
// address whose packets are our own. It is invalid until SetPrimary and
// after one that found no address.
func (c *vrrpConn) Primary() netip.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.primary
}

// SetPrimary sets the source of our adverts. With the zero Addr, Send
// fails until an address is set again.
func (c *vrrpConn) SetPrimary(a netip.Addr) {
	c.mu.Lock()
	c.primary = a
	c.mu.Unlock()
}

// CheckInterface fails if the interface was re-created (same name, new
// index): the socket stays bound to the old one and must be opened again.
// Like listenConn, it looks at the network namespace of the calling thread.
func (c *vrrpConn) CheckInterface() error {
	ifi, err := net.InterfaceByName(c.ifname)
	if err != nil {
		return fmt.Errorf("vrrp: %s: %w", c.ifname, err)
	}
	if ifi.Index != c.ifindex {
		return fmt.Errorf("vrrp: %s was re-created (index %d, was %d); open the socket again",
			c.ifname, ifi.Index, c.ifindex)
	}
	return nil
}

// Send sends one advert with priority prio: to the group, or to every
// peer, each with its own destination in the v3 pseudo-header (RFC 5798
// §5.2.8). A failure to one peer does not stop the others; the errors are
// joined.
func (c *vrrpConn) Send(prio uint8) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.primary.IsValid() {
		return fmt.Errorf("vrrp: send on %s: no address to send from", c.ifname)
	}
	var errs []error
	for _, dst := range c.dsts {
		if dst == c.primary {
			continue
		}
		a := c.advert
		a.Priority, a.Src, a.Dst = prio, c.primary, dst
		b, err := a.AppendBinary(c.sbuf[:0])
		if err != nil {
			errs = append(errs, fmt.Errorf("vrrp: send on %s: %w", c.ifname, err))
			continue
		}
		c.sbuf = b
		if err := c.sock.send(b, c.primary, dst); err != nil {
			errs = append(errs, fmt.Errorf("vrrp: send advert from %s to %s on %s: %w", c.primary, dst, c.ifname, err))
		}
	}
	return errors.Join(errs...)
}

// Receive blocks until an acceptable advert for our virtual router
// arrives, and returns it with Src set to the sender's address. Every
// packet it drops on the way is counted by reason (see Drops) and logged
// at most once per reason every 10 seconds, with the number left unlogged;
// so are the differences it accepts. After Close it returns an error
// matching net.ErrClosed.
func (c *vrrpConn) Receive() (*Advert, error) {
	for {
		p, drop, err := c.sock.recv(c.rbuf)
		if err != nil {
			return nil, fmt.Errorf("vrrp: receive on %s: %w", c.ifname, err)
		}
		var a *Advert
		if drop == nil {
			a, drop = c.rules.check(p, c.Primary())
		}
		if drop != nil {
			r := dropReasonOf(drop)
			c.drops.Add(r)
			c.logRated(dropLevel(r), r.String(), "vrrp: advert dropped",
				"reason", r.String(), "src", p.src, "err", drop)
			continue
		}
		for _, note := range c.rules.notes(a, p) {
			c.logRated(note.level(), note.String(), "vrrp: advert accepted, but differs from ours",
				"difference", note.String(), "src", a.Src, "interval", a.Interval,
				"our_interval", c.rules.interval, "addrs", a.Addrs, "our_addrs", c.rules.vips)
		}
		return a, nil
	}
}

// logRated logs at most one line per key and dropLogPeriod, adding how
// many were left out since the previous one.
func (c *vrrpConn) logRated(level slog.Level, key, msg string, args ...any) {
	ctx := context.Background()
	if !c.log.Enabled(ctx, level) {
		return
	}
	ok, suppressed := c.limit.Allow(key, c.now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	c.log.Log(ctx, level, msg, args...)
}

// Drops returns how many packets Receive dropped, by reason (see
// dropReason.String), every reason present; for /metrics and tests.
func (c *vrrpConn) Drops() map[string]uint64 { return c.drops.Snapshot() }

// Close closes the socket, which leaves the group. A blocked Receive
// returns an error matching net.ErrClosed.
func (c *vrrpConn) Close() error {
	if err := c.sock.Close(); err != nil {
		return fmt.Errorf("vrrp: close socket on %s: %w", c.ifname, err)
	}
	return nil
}
