package vrrp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// validConfig is a minimal valid instance on lo, the one interface every
// network namespace has.
func validConfig() Config {
	return Config{Interface: "lo", VRID: 51, VIPS: VIPList{netip.MustParsePrefix("10.0.0.100/24")},
		Priority: 100, Version: 3, AdvertInterval: time.Second, Preempt: true,
		McastGroup: netip.MustParseAddr("224.0.0.18"), GARPRepeat: 5}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Config)
		badKey string // "" when accepted
	}{
		{"defaults", func(*Config) {}, ""},
		{"GARP_REFRESH off", func(c *Config) { c.GARPRefresh = 0 }, ""},
		{"GARP_REFRESH 1s", func(c *Config) { c.GARPRefresh = time.Second }, ""},
		{"GARP_REFRESH 24h", func(c *Config) { c.GARPRefresh = 24 * time.Hour }, ""},
		{"GARP_REFRESH 1ns", func(c *Config) { c.GARPRefresh = time.Nanosecond }, "GARP_REFRESH"},
		{"GARP_REFRESH 1ms", func(c *Config) { c.GARPRefresh = time.Millisecond }, "GARP_REFRESH"},
		{"GARP_REFRESH 999ms", func(c *Config) { c.GARPRefresh = 999 * time.Millisecond }, "GARP_REFRESH"},
		{"GARP_REFRESH negative", func(c *Config) { c.GARPRefresh = -time.Second }, "GARP_REFRESH"},
		{"GARP_REFRESH over a day", func(c *Config) { c.GARPRefresh = 24*time.Hour + time.Second }, "GARP_REFRESH"},
		{"PREEMPT_DELAY 1h", func(c *Config) { c.PreemptDelay = time.Hour }, ""},
		{"PREEMPT_DELAY over 1h", func(c *Config) { c.PreemptDelay = time.Hour + time.Second }, "PREEMPT_DELAY"},
		{"interface that does not exist", func(c *Config) { c.Interface = "nosuch0" }, "INTERFACE"},
		{"interface name too long", func(c *Config) { c.Interface = "a-very-long-interface" }, "INTERFACE"},
		{"unicast peer", func(c *Config) { c.UnicastPeers = AddrList{netip.MustParseAddr("10.0.0.2")} }, ""},
		{"unicast peer that is a VIP", func(c *Config) {
			c.UnicastPeers = AddrList{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.100")}
		}, "UNICAST_PEERS"},
		// Decoding refuses loopback peers; here 127.0.0.1 stands for
		// any address of this node's own on the interface.
		{"unicast peer that is this node's own address", func(c *Config) {
			c.UnicastPeers = AddrList{netip.MustParseAddr("127.0.0.1")}
		}, "UNICAST_PEERS"},
		// IPv6 (RFC 5798): one family per instance, version 3 only.
		{"IPv6 VIP", v6, ""},
		{"IPv6 VIP, group ff02::12", func(c *Config) { v6(c); c.McastGroup = netip.MustParseAddr("ff02::12") }, ""},
		{"IPv6 VIP, site-local group ff05::12", func(c *Config) { v6(c); c.McastGroup = netip.MustParseAddr("ff05::12") }, ""},
		{"IPv6 VIP, an IPv4 group", func(c *Config) { v6(c); c.McastGroup = netip.MustParseAddr("239.1.1.1") }, "MCAST_GROUP"},
		{"IPv6 VIP, a unicast group", func(c *Config) { v6(c); c.McastGroup = netip.MustParseAddr("fd00::12") }, "MCAST_GROUP"},
		{"IPv4 VIP, an IPv6 group", func(c *Config) { c.McastGroup = netip.MustParseAddr("ff02::12") }, "MCAST_GROUP"},
		{"IPv6 VIP, version 2", func(c *Config) { v6(c); c.Version = 2 }, "VERSION"},
		{"IPv6 VIP, link-local unicast peer", func(c *Config) { v6(c); c.UnicastPeers = AddrList{netip.MustParseAddr("fe80::2")} }, ""},
		{"IPv6 VIP, global unicast peer", func(c *Config) { v6(c); c.UnicastPeers = AddrList{netip.MustParseAddr("fd00::2")} }, ""},
		{"IPv6 VIP, an IPv4 peer", func(c *Config) { v6(c); c.UnicastPeers = AddrList{netip.MustParseAddr("10.0.0.2")} }, "UNICAST_PEERS"},
		{"IPv4 VIP, an IPv6 peer", func(c *Config) { c.UnicastPeers = AddrList{netip.MustParseAddr("fe80::2")} }, "UNICAST_PEERS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.change(&c)
			errs := c.Validate()
			if tc.badKey == "" {
				if len(errs) != 0 {
					t.Errorf("%v, want accepted", errs)
				}
				return
			}
			if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "VIPVISOR_"+tc.badKey) || !strings.Contains(errs[0].Error(), "accepted: ") {
				t.Errorf("%v, want one error about VIPVISOR_%s saying what is accepted", errs, tc.badKey)
			}
		})
	}
}

// v6 makes validConfig an IPv6 instance, the group left at its default.
func v6(c *Config) { c.VIPS = VIPList{netip.MustParsePrefix("fd00::100/64")} }

func TestIPv6DefaultGroup(t *testing.T) {
	c := validConfig()
	v6(&c)
	if errs := c.Validate(); len(errs) != 0 {
		t.Fatal(errs)
	}
	if !c.IPv6() || c.McastGroup != netip.MustParseAddr("ff02::12") {
		t.Errorf("IPv6 %v, group %s; want an IPv6 instance on ff02::12 (RFC 5798 §5.1.2.2)", c.IPv6(), c.McastGroup)
	}
}

func TestVIPListDecode(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" when refused
		why      string // a word the refusal must hold
	}{
		{"10.0.0.100", "10.0.0.100/32", ""},
		{"10.0.0.100/24, 10.0.0.101", "10.0.0.100/24,10.0.0.101/32", ""},
		{"fd00::100", "fd00::100/128", ""},
		{"2001:db8::100/64,2001:db8::101", "2001:db8::100/64,2001:db8::101/128", ""},
		{"10.0.0.100,fd00::100", "", "two address families"},
		{"fd00::100,10.0.0.100", "", "two address families"},
		{"fe80::100", "", "link-local"},
		{"ff02::1", "", "not a usable IPv6"},
		{"::1", "", "not a usable IPv6"},
		{"::", "", "not a usable IPv6"},
		{"::ffff:10.0.0.1", "", "write an IPv4 address as IPv4"},
		{"fd00::100%eth0", "", "not an IPv4 or IPv6 address"},
		{"fd00::100,fd00::100/64", "", "listed twice"},
		{"fd00::100/0", "", "/0"},
		{"", "", "no address"},
	} {
		var l VIPList
		err := l.Decode(tc.in)
		switch {
		case tc.want != "" && err != nil:
			t.Errorf("Decode(%q): %v, want %s", tc.in, err, tc.want)
		case tc.want != "" && l.String() != tc.want:
			t.Errorf("Decode(%q) = %s, want %s", tc.in, l, tc.want)
		case tc.want == "" && (err == nil || !strings.Contains(err.Error(), tc.why)):
			t.Errorf("Decode(%q) = %s, %v; want refused: %s", tc.in, l, err, tc.why)
		}
	}
}

func TestAddrListDecode(t *testing.T) {
	for _, tc := range []struct {
		in, why string // why "" when accepted
	}{
		{"10.0.0.2,10.0.0.3", ""},
		{"fe80::2", ""},
		{"fd00::2,fe80::3", ""},
		{"10.0.0.2,fe80::2", "two address families"},
		{"fe80::2%eth0", "without zone"},
		{"ff02::12", "not a unicast address"},
		{"::", "not a unicast address"},
		{"fe80::2,fe80::2", "listed twice"},
	} {
		var l AddrList
		err := l.Decode(tc.in)
		if tc.why == "" && err != nil || tc.why != "" && (err == nil || !strings.Contains(err.Error(), tc.why)) {
			t.Errorf("Decode(%q): %v, want %q", tc.in, err, tc.why)
		}
	}
}

func TestMissingInterfaceIsNamed(t *testing.T) {
	c := validConfig()
	c.Interface = "nosuch0"
	errs := c.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no such interface in this network namespace") {
		t.Errorf("%v, want one error saying the interface does not exist", errs)
	}
}
