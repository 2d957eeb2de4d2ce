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

func TestMissingInterfaceIsNamed(t *testing.T) {
	c := validConfig()
	c.Interface = "nosuch0"
	errs := c.Validate()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "no such interface in this network namespace") {
		t.Errorf("%v, want one error saying the interface does not exist", errs)
	}
}
