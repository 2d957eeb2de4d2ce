package lab

import (
	"fmt"
	"net/netip"
	"time"
)

// IPv6 is off on every node of a lab (AddNode); a test of IPv6 turns it on
// for the nodes that need it.

// dadWait bounds the wait for a node's link-local address to pass
// duplicate address detection: one probe and a second (RFC 4862's
// RetransTimer) by default.
const dadWait = 10 * time.Second

// EnableIPv6 turns IPv6 on for the node's lo and eth0, with router
// advertisements ignored, adds addr (if valid) to eth0 without duplicate
// address detection, and waits until eth0's link-local address has passed
// detection, as a host's has by the time its services start.
func (n *Node) EnableIPv6(addr netip.Prefix) {
	n.t.Helper()
	n.lab.must(setSysctls(n.NS, [][2]string{
		{"ipv6.conf.all.disable_ipv6", "0"},
		{"ipv6.conf.default.disable_ipv6", "0"},
		{"ipv6.conf.lo.disable_ipv6", "0"},
		{"ipv6.conf." + Iface + ".accept_ra", "0"},
		{"ipv6.conf." + Iface + ".disable_ipv6", "0"},
	}))
	if addr.IsValid() {
		n.lab.ip("-n", n.NS, "addr", "add", addr.String(), "dev", Iface, "nodad")
	}
	WaitFor(n.t, dadWait, n.Name+"'s link-local address to pass DAD", func() bool {
		ll := n.LinkLocal()
		return ll.IsValid() && !n.Tentative(ll)
	})
}

// LinkLocal returns eth0's link-local address, or the zero Addr.
func (n *Node) LinkLocal() netip.Addr {
	n.t.Helper()
	for _, a := range n.addrInfo("-6") {
		if p, err := netip.ParseAddr(a.Local); err == nil && p.IsLinkLocalUnicast() {
			return p
		}
	}
	return netip.Addr{}
}

// Tentative reports whether the IPv6 address a on eth0 is tentative
// (still in duplicate address detection, or found a duplicate): such an
// address cannot be used to serve.
func (n *Node) Tentative(a netip.Addr) bool {
	n.t.Helper()
	for _, x := range n.addrInfo("-6") {
		if x.Local == a.String() {
			return x.Tentative || x.DADFailed
		}
	}
	return false
}

// Addrs6 returns the IPv6 addresses now on the node's eth0.
func (n *Node) Addrs6() []netip.Prefix {
	n.t.Helper()
	var out []netip.Prefix
	for _, a := range n.addrInfo("-6") {
		p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
		if err != nil {
			n.t.Fatalf("lab: node %s: address %q/%d: %v", n.Name, a.Local, a.PrefixLen, err)
		}
		out = append(out, p)
	}
	return out
}

// ipAddrInfo is one address of `ip -j addr show`.
type ipAddrInfo struct {
	Family    string `json:"family"`
	Local     string `json:"local"`
	PrefixLen int    `json:"prefixlen"`
	Tentative bool   `json:"tentative"`
	DADFailed bool   `json:"dadfailed"`
}

// addrInfo lists eth0's addresses of one family ("-4" or "-6").
func (n *Node) addrInfo(family string) []ipAddrInfo {
	n.t.Helper()
	var links []struct {
		AddrInfo []ipAddrInfo `json:"addr_info"`
	}
	n.unmarshalIP(&links, "-j", family, "addr", "show", "dev", Iface)
	var out []ipAddrInfo
	for _, l := range links {
		out = append(out, l.AddrInfo...)
	}
	return out
}

// family is ip's option for a's address family.
func family(a netip.Addr) string {
	if a.Unmap().Is4() {
		return "-4"
	}
	return "-6"
}
