package vrrp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/vipvisor/vipvisor/internal/netutil"
)

// vipNetlinkTimeout bounds every netlink request, so a wedged kernel call
// becomes an error instead of a hung driver.
const vipNetlinkTimeout = 5 * time.Second

// vipDumpRetries is how often a dump interrupted by a concurrent change
// (NLM_F_DUMP_INTR) is repeated before its partial answer is used.
const vipDumpRetries = 3

// vipSet manages the virtual addresses on one interface with netlink.
//
// A vipSet belongs to the network namespace of the thread that called
// newVIPSet: its netlink socket is opened there, and Watch subscribes there,
// whichever thread or goroutine later calls its methods. In production
// that is simply the process's namespace; a test may call newVIPSet inside
// lab's Node.Do and use the vipSet from any goroutine afterwards.
//
// The interface is resolved once, by newVIPSet. If it is deleted and made
// again (a new index), make a new vipSet.
//
// A VIP with a prefix shorter than /32 inside the subnet of the node's own
// address is added as a secondary address. Should it ever become the
// primary of that subnet (the node's address was removed and added again
// while the VIP was there), removing the VIP removes the node's address
// with it, unless net.ipv4.conf.IFACE.promote_secondaries is 1 (systemd's
// default). /32 vipSet are not affected.
//
// The methods are safe for concurrent use, except that only one Watch
// may run at a time.
type vipSet struct {
	ifname string
	v6     bool // IPv6 VIPs: added without DAD, the primary is the link-local
	index  int
	vips   []netip.Prefix
	log    *slog.Logger

	ns    netns.NsHandle  // the namespace newVIPSet ran in
	h     *netlink.Handle // route socket opened in ns: links, listings
	nl    *nlSocket       // route socket opened in ns: the VIPs' changes, in batches
	link  netlink.Link    // the interface, as newVIPSet found it
	isVIP map[netip.Addr]bool
	// diag destroys stale sockets on the VIPs (DropStaleSockets); nil
	// if it could not be opened. diagFailed counts its failures, the
	// first of which is logged.
	diag       *sockDiag
	diagFailed int
	// diagMu is held while DropStaleSockets runs, which may be off the
	// instance's loop; Add waits for it, so that no connection on a VIP
	// just added is taken for a stale one.
	diagMu sync.Mutex

	// What the caller was last told about the link state and the primary
	// address, by LinkUp, Primary or Watch. Watch reports a change against
	// this, so nothing is reported twice and nothing falls in the gap
	// between LinkUp at start-up and Watch.
	lease leaseState // see SetLease

	// added, if set, is called with each VIP Add has added, at once:
	// the announcer's First, so that a VIP is announced as soon as it is
	// on the interface.
	added func(netip.Addr)

	mu        sync.Mutex
	upKnown   bool
	up        bool
	primKnown bool
	primary   netip.Prefix
}

// newVIPSet resolves ifname in the calling thread's network namespace and
// returns a VIPs for vips, which must be prefixes of one family whose
// address is the VIP itself (10.0.0.5/24 means address 10.0.0.5 with
// prefix length 24). IPv6 VIPs are added with IFA_F_NODAD: duplicate
// address detection would hold a new master's VIP tentative, unusable,
// for a second or more, and on a takeover the old master's copy is the
// very duplicate DAD would find.
// A nil log discards messages. The error names the interface if it does not
// exist.
func newVIPSet(ifname string, vips []netip.Prefix, log *slog.Logger) (*vipSet, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	v := &vipSet{ifname: ifname, vips: slices.Clone(vips), log: log, isVIP: map[netip.Addr]bool{}}
	v.v6 = len(vips) > 0 && isIPv6(vips[0].Addr())
	for _, p := range v.vips {
		if !p.IsValid() || !p.Addr().Is4() && !v.v6 || v.v6 && !isIPv6(p.Addr()) {
			return nil, fmt.Errorf("vrrp: VIP %s on %s: not an address with prefix length of the first one's family", p, ifname)
		}
		v.isVIP[p.Addr()] = true
	}
	// The namespace and the socket must come from one thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var err error
	if v.ns, err = netutil.ThisNetns(); err != nil {
		return nil, fmt.Errorf("vrrp: %s: get network namespace: %w", ifname, err)
	}
	if v.h, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		v.ns.Close()
		return nil, fmt.Errorf("vrrp: %s: open netlink socket: %w", ifname, err)
	}
	if err := v.h.SetSocketTimeout(vipNetlinkTimeout); err != nil {
		v.Close()
		return nil, fmt.Errorf("vrrp: %s: netlink socket timeout: %w", ifname, err)
	}
	if v.link, err = v.h.LinkByName(ifname); err != nil {
		v.Close()
		return nil, fmt.Errorf("vrrp: interface %s: %w", ifname, err)
	}
	v.index = v.link.Attrs().Index
	if v.nl, err = openNetlink(unix.NETLINK_ROUTE); err != nil {
		v.Close()
		return nil, fmt.Errorf("vrrp: %s: open netlink socket: %w", ifname, err)
	}
	if v.diag, err = openSockDiag(); err != nil {
		v.log.Warn("no sock_diag socket: stale TCP sockets on a VIP will not be destroyed when it is taken", "iface", ifname, "err", err)
	}
	return v, nil
}

// Close releases the netlink socket and the namespace handle; the VIPs
// must not be used afterwards. The addresses are left as they are: call
// Remove first to take them away.
func (v *vipSet) Close() error {
	v.lease.mu.Lock()
	v.stopRenewal()
	v.lease.mu.Unlock()
	v.h.Close()
	if v.nl != nil {
		v.nl.Close()
	}
	if v.diag != nil {
		v.diag.Close()
	}
	return v.ns.Close()
}

// Add adds every VIP to the interface. It is idempotent: RTM_NEWADDR with
// NLM_F_REPLACE leaves a VIP that is already there in place, so adding
// twice is not an error. It tries every VIP and returns the failures joined.
//
// A copy of a VIP's address with another prefix length is left alone; the
// kernel then holds both.
func (v *vipSet) Add() error {
	v.diagMu.Lock()
	//lint:ignore SA2001 only waits for a DropStaleSockets under way
	v.diagMu.Unlock()
	v.lease.mu.Lock()
	defer v.lease.mu.Unlock()
	err := v.change(false, v.vips, v.lease.life, func(added []netip.Prefix) {
		if v.added != nil {
			for _, p := range added {
				v.added(p.Addr())
			}
		}
	})
	v.startRenewal()
	return err
}

// Remove removes every VIP, with its configured prefix length, from the
// interface. A VIP that is not there (EADDRNOTAVAIL) is not an error. It
// tries every VIP and returns the failures joined.
//
// Each removal also reaches a running Watch as a VIPDeleted event.
func (v *vipSet) Remove() error {
	v.lease.mu.Lock()
	v.stopRenewal()
	v.lease.mu.Unlock()
	return v.change(true, v.vips, 0, nil)
}

// Present returns, in configuration order and with their configured prefix
// lengths, the VIPs that are on the interface now. It compares addresses
// only: a VIP found with another prefix length counts as present, because
// the node answers ARP for its address either way.
func (v *vipSet) Present() ([]netip.Prefix, error) {
	addrs, err := v.addrs()
	if err != nil {
		return nil, err
	}
	on := map[netip.Addr]bool{}
	for _, a := range addrs {
		on[a.prefix.Addr()] = true
	}
	var present []netip.Prefix
	for _, p := range v.vips {
		if on[p.Addr()] {
			present = append(present, p)
		}
	}
	return present, nil
}

// RemoveStale removes every address on the interface that is one of the
// VIPs, whatever its prefix length: copies an earlier run left behind when
// it was killed without cleaning up. Other addresses are not touched. It
// logs each removal and returns the prefixes it removed, as they were found.
//
// Call it at start-up, before the node can be master. A VIP that is also
// the interface's own address (an address owner, priority 255) would be
// removed too.
func (v *vipSet) RemoveStale() (removed []netip.Prefix, err error) {
	addrs, err := v.addrs()
	if err != nil {
		return nil, err
	}
	var stale []netip.Prefix
	for _, a := range addrs {
		if v.isVIP[a.prefix.Addr()] {
			stale = append(stale, a.prefix)
		}
	}
	err = v.change(true, stale, 0, func(gone []netip.Prefix) {
		for _, p := range gone {
			v.log.Info("removed stale VIP", "iface", v.ifname, "vip", p)
		}
		removed = append(removed, gone...)
	})
	return removed, err
}

// RemoveStaleVIPs removes from interface ifname every one of vips it
// holds, for a process that clears up after a vipvisor that is gone, and
// returns those it removed.
func RemoveStaleVIPs(ifname string, vips []netip.Prefix) ([]netip.Prefix, error) {
	v, err := newVIPSet(ifname, vips, nil)
	if err != nil {
		return nil, err
	}
	defer v.Close()
	return v.RemoveStale()
}

// Primary returns the interface's primary address, the source of adverts
// and the tie-break address, and remembers it for Watch, which reports
// later changes as PrimaryChanged: the one place where vipvisor decides
// it. For IPv4 it is the first address in the kernel's order that is not
// one of the VIPs and not flagged secondary, or failing that the first
// that is not one of the VIPs (a VIP in the node's subnet that the kernel
// promoted to primary makes the node's own address its secondary); for
// IPv6 the first link-local address. It is the zero Prefix when there is
// none.
func (v *vipSet) Primary() (netip.Prefix, error) {
	p, err := v.findPrimary()
	if err != nil {
		return netip.Prefix{}, err
	}
	v.mu.Lock()
	v.primKnown, v.primary = true, p
	v.mu.Unlock()
	return p, nil
}

// LinkUp reports whether the interface is up now, in the sense of Watch:
// administratively up (IFF_UP) and running (IFF_RUNNING, which the kernel
// sets when the operational state is UP or UNKNOWN, that is when the
// carrier is present and the link is neither dormant nor testing). Watch
// reports later changes against this answer.
func (v *vipSet) LinkUp() (bool, error) {
	l, err := v.h.LinkByIndex(v.index)
	if err != nil {
		return false, fmt.Errorf("vrrp: link state of %s: %w", v.ifname, err)
	}
	up := linkFlagsUp(l.Attrs().RawFlags)
	v.mu.Lock()
	v.upKnown, v.up = true, up
	v.mu.Unlock()
	return up, nil
}

// linkFlagsUp is the definition of a usable link: IFF_UP and IFF_RUNNING.
func linkFlagsUp(flags uint32) bool {
	const want = unix.IFF_UP | unix.IFF_RUNNING
	return flags&want == want
}

// vipIfAddr is an address of the VIPs' family on the interface with its
// IFA_F_* flags.
type vipIfAddr struct {
	prefix netip.Prefix
	flags  int
}

// addrs lists the interface's addresses of the VIPs' family in the
// kernel's order,
// repeating a dump that a concurrent change interrupted.
func (v *vipSet) addrs() ([]vipIfAddr, error) {
	var list []netlink.Addr
	var err error
	family := netlink.FAMILY_V4
	if v.v6 {
		family = netlink.FAMILY_V6
	}
	for range vipDumpRetries {
		list, err = v.h.AddrList(v.link, family)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("vrrp: list addresses of %s: %w", v.ifname, err)
	}
	out := make([]vipIfAddr, 0, len(list))
	for _, a := range list {
		if a.IPNet == nil {
			continue
		}
		if p, ok := ipNetPrefix(*a.IPNet, v.v6); ok {
			out = append(out, vipIfAddr{prefix: p, flags: a.Flags})
		}
	}
	return out, nil
}

// findPrimary returns the primary address as Primary defines it.
func (v *vipSet) findPrimary() (netip.Prefix, error) {
	addrs, err := v.addrs()
	if err != nil {
		return netip.Prefix{}, err
	}
	return choosePrimary(addrs, v.isVIP, v.v6), nil
}

// choosePrimary picks the primary address among an interface's addresses
// of one family, given in the kernel's order (see vipSet.Primary). VIPs are
// skipped by name: a VIP that is a primary of its own (a /32, or one added
// before the node's address) may come first, and the kernel's own choice
// of source would then be the VIP.
func choosePrimary(addrs []vipIfAddr, isVIP map[netip.Addr]bool, v6 bool) netip.Prefix {
	var first netip.Prefix
	for _, a := range addrs {
		ip := a.prefix.Addr()
		if isVIP[ip] || ip.IsUnspecified() {
			continue
		}
		if v6 {
			// An IPv6 router sends from its link-local address.
			if ip.IsLinkLocalUnicast() {
				return a.prefix
			}
			continue
		}
		if a.flags&unix.IFA_F_SECONDARY == 0 {
			return a.prefix
		}
		if !first.IsValid() {
			first = a.prefix
		}
	}
	return first
}

// errNoAddress: the interface has no IPv4 address we may send from.
var errNoAddress = errors.New("no IPv4 address of its own (VIPs do not count)")

// errNoLinkLocal: the interface has no IPv6 link-local address, which an
// IPv6 virtual router sends from (RFC 5798 §5.1.2.1).
var errNoLinkLocal = errors.New("no IPv6 link-local address (is IPv6 disabled on it?)")

// ipNetPrefix converts a net.IPNet of the family v6 says; ok is false for
// anything else.
func ipNetPrefix(n net.IPNet, v6 bool) (p netip.Prefix, ok bool) {
	ones, bits := n.Mask.Size()
	if v6 {
		if n.IP.To4() != nil || len(n.IP) != 16 || bits != 128 {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(netip.AddrFrom16([16]byte(n.IP)), ones), true
	}
	ip4 := n.IP.To4()
	if ip4 == nil || bits != 32 {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(ip4)), ones), true
}
