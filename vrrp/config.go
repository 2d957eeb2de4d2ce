package vrrp

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/envconf"
)

// Bounds of GARP_REFRESH when it is not 0s (off). keepalived's
// garp_master_refresh counts whole seconds, so 1s is the finest refresh a
// keepalived user has ever set; below it a master floods the segment (at
// 1ms, 9,404 ARP frames a second) for no gain, as switches and hosts keep
// an entry for minutes. Above a day the refresh no longer repairs any
// cache in time.
const (
	minGARPRefresh = time.Second
	maxGARPRefresh = 24 * time.Hour
)

// Config is one VRRP instance's settings, read from VIPVISOR_* variables.
type Config struct {
	Interface      string        `required:"true" accept:"an existing interface of this network namespace" desc:"interface that carries adverts and VIPs"`
	VRID           int           `required:"true" accept:"1-255" desc:"virtual router id"`
	VIPS           VIPList       `required:"true" accept:"comma list of IPv4 or of IPv6 addresses, each with optional /prefix" desc:"virtual addresses (default prefix /32, /128); IPv6 speaks VRRPv3 over IPv6"`
	Priority       int           `default:"100" accept:"1-254, or 255 for the address owner" desc:"this node's priority"`
	Version        int           `default:"3" accept:"2 (RFC 3768) or 3 (RFC 5798)" desc:"VRRP version"`
	AdvertInterval time.Duration `split_words:"true" default:"1s" accept:"v2: whole seconds 1s-255s; v3: a multiple of 10ms up to 40.95s" desc:"advertisement interval"`
	Preempt        bool          `default:"true" accept:"true or false" desc:"a higher-priority backup takes over from a lower-priority master"`
	PreemptDelay   time.Duration `split_words:"true" default:"0s" accept:"a duration, 0s-1h" desc:"wait this long after start before preempting"`
	UnicastPeers   AddrList      `split_words:"true" accept:"comma list of unicast addresses of the VIPs' family, none of them a VIP or this node's own" desc:"peer addresses; empty means multicast"`
	McastGroup     netip.Addr    `split_words:"true" default:"224.0.0.18" accept:"a multicast address of the VIPs' family; for IPv6 VIPs the default stands for ff02::12" desc:"multicast group, for several clusters on one LAN"`
	AuthPass       string        `split_words:"true" accept:"at most 8 characters, VERSION=2 only" desc:"v2 simple password"`
	GARPRepeat     int           `split_words:"true" default:"5" accept:"0-255" desc:"gratuitous ARPs sent per VIP on becoming master"`
	GARPRefresh    time.Duration `split_words:"true" default:"0s" accept:"0s (off), or 1s-24h" desc:"while master, re-announce the VIPs this often"`
	Notify         envconf.Words `scope:"shared" accept:"a command line" desc:"command run on every state change with: INSTANCE <name> MASTER|BACKUP|FAULT|STOP <priority>; the name is VI_<vrid>, or the instance's"`
	Instances      envconf.Names `scope:"shared" accept:"comma list of names of 1-15 lower-case letters, digits or -" desc:"several virtual routers in one process: each name reads VIPVISOR_<NAME>_<VAR> for the variables above but NOTIFY, with VIPVISOR_<VAR> as default"`

	// Name is the instance's name in VIPVISOR_INSTANCES, empty for the
	// one instance of a plain configuration.
	Name string `ignored:"true"`
}

// DisplayName is the instance's name as NOTIFY, /status and the log give
// it: its name in VIPVISOR_INSTANCES, else keepalived's VI_<vrid>.
func (c *Config) DisplayName() string {
	if c.Name != "" {
		return c.Name
	}
	return fmt.Sprintf("VI_%d", c.VRID)
}

// Validate checks ranges and the rules that tie variables together. Each
// error names its variable.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(key, reason, accept string) { errs = append(errs, envconf.Invalid(key, reason, accept)) }
	if c.Interface == "" || len(c.Interface) > 15 || strings.ContainsAny(c.Interface, "/ \t:") {
		bad("INTERFACE", "not an interface name", "1-15 characters without '/', ':' or blanks")
	} else {
		errs = append(errs, c.checkInterface()...)
	}
	if c.VRID < 1 || c.VRID > 255 {
		bad("VRID", "out of range", "1-255")
	}
	if c.Priority < 1 || c.Priority > 255 {
		bad("PRIORITY", "out of range", "1-254, or 255 for the address owner")
	}
	switch c.Version {
	case 2:
		if c.AdvertInterval%time.Second != 0 || c.AdvertInterval < time.Second || c.AdvertInterval > 255*time.Second {
			bad("ADVERT_INTERVAL", "not valid for VRRPv2", "whole seconds 1s-255s with VERSION=2")
		}
	case 3:
		if c.AdvertInterval%(10*time.Millisecond) != 0 || c.AdvertInterval < 10*time.Millisecond || c.AdvertInterval > 40950*time.Millisecond {
			bad("ADVERT_INTERVAL", "not valid for VRRPv3", "a multiple of 10ms from 10ms to 40.95s with VERSION=3")
		}
	default:
		bad("VERSION", "unknown VRRP version", "2 or 3")
	}
	if c.PreemptDelay < 0 || c.PreemptDelay > time.Hour {
		bad("PREEMPT_DELAY", "out of range", "a duration from 0s to 1h")
	}
	if len(c.AuthPass) > 8 {
		bad("AUTH_PASS", fmt.Sprintf("%d characters is too long", len(c.AuthPass)), "at most 8 characters")
	} else if c.AuthPass != "" && c.Version != 2 {
		bad("AUTH_PASS", "authentication exists only in VRRPv2", "empty, or set VIPVISOR_VERSION=2")
	}
	v6 := c.IPv6()
	if v6 && c.McastGroup == defaultGroup {
		// The IPv4 default means "the default" to an IPv6 instance.
		c.McastGroup = defaultGroup6
	}
	switch {
	case !v6 && (!c.McastGroup.Is4() || !c.McastGroup.IsMulticast()):
		bad("MCAST_GROUP", "not an IPv4 multicast address", "224.0.0.0-239.255.255.255")
	case v6 && (!isIPv6(c.McastGroup) || !c.McastGroup.IsMulticast()):
		bad("MCAST_GROUP", "not an IPv6 multicast address, as the IPv6 VIPs need", "an ff00::/8 address, by default ff02::12")
	}
	if v6 && c.Version != 3 {
		bad("VERSION", "VRRP over IPv6 is version 3 (RFC 5798); VRRPv2 is IPv4 only", "3 with IPv6 VIPs")
	}
	for _, p := range c.UnicastPeers {
		if isIPv6(p) != v6 {
			bad("UNICAST_PEERS", fmt.Sprintf("%s is not of the VIPs' address family", p), "addresses of one family with VIPVISOR_VIPS")
			break
		}
	}
	if c.GARPRepeat < 0 || c.GARPRepeat > 255 {
		bad("GARP_REPEAT", "out of range", "0-255")
	}
	if c.GARPRefresh != 0 && (c.GARPRefresh < minGARPRefresh || c.GARPRefresh > maxGARPRefresh) {
		bad("GARP_REFRESH", "out of range", "0s (off), or a duration from 1s to 24h")
	}
	for _, p := range c.UnicastPeers {
		if slices.Contains(c.VIPS.Addrs(), p) {
			bad("UNICAST_PEERS", fmt.Sprintf("%s is one of VIPVISOR_VIPS; a peer is another node's own address", p),
				"comma list of the other nodes' own addresses")
			break
		}
	}
	return errs
}

// checkInterface checks the settings against the network namespace
// vipvisor runs in, reading only: the interface must exist (else the start
// would fail later with a message that names no variable), and no unicast
// peer may be an address of this node's own on it, which would make this
// node its own peer.
func (c *Config) checkInterface() []error {
	ifi, err := net.InterfaceByName(c.Interface)
	if err != nil {
		reason := "cannot be looked up: " + err.Error()
		// The net package's error for an unknown name is not exported;
		// its text is stable ("no such network interface").
		if strings.HasSuffix(err.Error(), "no such network interface") {
			reason = "no such interface in this network namespace"
		}
		return []error{envconf.Invalid("INTERFACE", reason, "the name of an existing interface (see `ip link`)")}
	}
	if len(c.UnicastPeers) == 0 {
		return nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil // the start reports it, with the interface's name
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
		for _, p := range c.UnicastPeers {
			if p == own.Unmap() {
				return []error{envconf.Invalid("UNICAST_PEERS",
					fmt.Sprintf("%s is this node's own address on %s", p, c.Interface),
					"comma list of the other nodes' own addresses")}
			}
		}
	}
	return nil
}

// IPv6 reports whether the instance is an IPv6 virtual router: its VIPs
// are IPv6.
func (c *Config) IPv6() bool { return len(c.VIPS) > 0 && isIPv6(c.VIPS[0].Addr()) }

// Unicast reports whether adverts go to listed peers rather than a group.
func (c *Config) Unicast() bool { return len(c.UnicastPeers) > 0 }

// VIPList is the comma-separated list of virtual addresses, all IPv4 or
// all IPv6, each with an optional prefix length; without one it is a /32
// or a /128.
type VIPList []netip.Prefix

// Decode implements envconfig.Decoder.
func (l *VIPList) Decode(s string) error {
	var out VIPList
	seen := map[netip.Addr]bool{}
	for _, item := range splitList(s) {
		p, err := parseVIP(item)
		if err != nil {
			return err
		}
		if seen[p.Addr()] {
			return fmt.Errorf("%s is listed twice", p.Addr())
		}
		if len(out) > 0 && isIPv6(out[0].Addr()) != isIPv6(p.Addr()) {
			return fmt.Errorf("%s and %s are of two address families; one instance holds one (see VIPVISOR_INSTANCES for dual stack)", out[0].Addr(), p.Addr())
		}
		seen[p.Addr()] = true
		out = append(out, p)
	}
	if len(out) == 0 {
		return fmt.Errorf("no address given")
	}
	if len(out) > 255 {
		return fmt.Errorf("%d addresses; an advertisement carries at most 255", len(out))
	}
	*l = out
	return nil
}

func parseVIP(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		if strings.Contains(s, ":") {
			s += "/128"
		} else {
			s += "/32"
		}
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not an IPv4 or IPv6 address with optional /prefix", s)
	}
	a := p.Addr()
	if a.Is4In6() {
		return p, fmt.Errorf("%s: write an IPv4 address as IPv4", a)
	}
	if a.Is6() {
		if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a.IsLinkLocalUnicast() {
			return p, fmt.Errorf("%s is not a usable IPv6 unicast address (a link-local VIP is not supported)", a)
		}
	} else if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return p, fmt.Errorf("%s is not a usable IPv4 unicast address", a)
	}
	if p.Bits() == 0 {
		return p, fmt.Errorf("%s: prefix /0 is not allowed", s)
	}
	return p, nil
}

func (l VIPList) String() string {
	s := make([]string, len(l))
	for i, p := range l {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Addrs returns the addresses without their prefix lengths.
func (l VIPList) Addrs() []netip.Addr {
	a := make([]netip.Addr, len(l))
	for i, p := range l {
		a[i] = p.Addr()
	}
	return a
}

// AddrList is a comma-separated list of unicast addresses of one family.
type AddrList []netip.Addr

// Decode implements envconfig.Decoder.
func (l *AddrList) Decode(s string) error {
	var out AddrList
	for _, item := range splitList(s) {
		a, err := netip.ParseAddr(item)
		if err != nil || a.Is4In6() || a.Zone() != "" {
			return fmt.Errorf("%q is not an IPv4 or IPv6 address (without zone)", item)
		}
		if len(out) > 0 && isIPv6(out[0]) != isIPv6(a) {
			return fmt.Errorf("%s and %s are of two address families", out[0], a)
		}
		if a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			return fmt.Errorf("%s is not a unicast address", a)
		}
		for _, b := range out {
			if a == b {
				return fmt.Errorf("%s is listed twice", a)
			}
		}
		out = append(out, a)
	}
	*l = out
	return nil
}

func (l AddrList) String() string {
	s := make([]string, len(l))
	for i, a := range l {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// splitList splits a comma list, trimming blanks and dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
