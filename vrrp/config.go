package vrrp

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/envconf"
)

// Config is one VRRP instance's settings, read from VIPVISOR_* variables.
type Config struct {
	Interface      string        `required:"true" accept:"an interface name" desc:"interface that carries adverts and VIPs"`
	VRID           int           `required:"true" accept:"1-255" desc:"virtual router id"`
	VIPS           VIPList       `required:"true" accept:"comma list of IPv4 addresses, each with optional /prefix" desc:"virtual addresses (default prefix /32)"`
	Priority       int           `default:"100" accept:"1-254, or 255 for the address owner" desc:"this node's priority"`
	Version        int           `default:"3" accept:"2 (RFC 3768) or 3 (RFC 5798)" desc:"VRRP version"`
	AdvertInterval time.Duration `split_words:"true" default:"1s" accept:"v2: whole seconds 1s-255s; v3: a multiple of 10ms up to 40.95s" desc:"advertisement interval"`
	Preempt        bool          `default:"true" accept:"true or false" desc:"a higher-priority backup takes over from a lower-priority master"`
	PreemptDelay   time.Duration `split_words:"true" default:"0s" accept:"a duration, 0s-1h" desc:"wait this long after start before preempting"`
	UnicastPeers   AddrList      `split_words:"true" accept:"comma list of IPv4 unicast addresses" desc:"peer addresses; empty means multicast"`
	McastGroup     netip.Addr    `split_words:"true" default:"224.0.0.18" accept:"an IPv4 multicast address" desc:"multicast group, for several clusters on one LAN"`
	AuthPass       string        `split_words:"true" accept:"at most 8 characters, VERSION=2 only" desc:"v2 simple password"`
	GARPRepeat     int           `split_words:"true" default:"5" accept:"0-255" desc:"gratuitous ARPs sent per VIP on becoming master"`
	GARPRefresh    time.Duration `split_words:"true" default:"0s" accept:"a duration; 0s is off" desc:"while master, re-announce the VIPs this often"`
	Notify         envconf.Words `accept:"a command line" desc:"command run on every state change with: INSTANCE VI_<vrid> MASTER|BACKUP|FAULT|STOP <priority>"`
}

// Validate checks ranges and the rules that tie variables together. Each
// error names its variable.
func (c *Config) Validate() []error {
	var errs []error
	bad := func(key, reason, accept string) { errs = append(errs, envconf.Invalid(key, reason, accept)) }
	if c.Interface == "" || len(c.Interface) > 15 || strings.ContainsAny(c.Interface, "/ \t:") {
		bad("INTERFACE", "not an interface name", "1-15 characters without '/', ':' or blanks")
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
	if !c.McastGroup.Is4() || !c.McastGroup.IsMulticast() {
		bad("MCAST_GROUP", "not an IPv4 multicast address", "224.0.0.0-239.255.255.255")
	}
	if c.GARPRepeat < 0 || c.GARPRepeat > 255 {
		bad("GARP_REPEAT", "out of range", "0-255")
	}
	if c.GARPRefresh < 0 {
		bad("GARP_REFRESH", "negative", "a duration; 0s is off")
	}
	return errs
}

// Unicast reports whether adverts go to listed peers rather than a group.
func (c *Config) Unicast() bool { return len(c.UnicastPeers) > 0 }

// VIPList is the comma-separated list of virtual addresses. Each is an IPv4
// address with an optional prefix length; without one it is a /32.
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
		s += "/32"
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not an IPv4 address with optional /prefix", s)
	}
	if a := p.Addr(); !a.Is4() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() || a == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
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

// AddrList is a comma-separated list of IPv4 unicast addresses.
type AddrList []netip.Addr

// Decode implements envconfig.Decoder.
func (l *AddrList) Decode(s string) error {
	var out AddrList
	for _, item := range splitList(s) {
		a, err := netip.ParseAddr(item)
		if err != nil || !a.Is4() {
			return fmt.Errorf("%q is not an IPv4 address", item)
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
