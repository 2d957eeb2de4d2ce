package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// activeActive is node A of the contract's master/master example.
var activeActive = map[string]string{
	"VRID": unset, "VIPS": unset, "INSTANCES": "web1,web2",
	"WEB1_VRID": "51", "WEB1_VIPS": "192.0.2.100/24", "WEB1_PRIORITY": "150",
	"WEB2_VRID": "52", "WEB2_VIPS": "192.0.2.101/24",
}

func with(base map[string]string, over map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func TestInstancesResolve(t *testing.T) {
	setEnv(t, with(activeActive, map[string]string{"ADVERT_INTERVAL": "100ms", "WEB2_ADVERT_INTERVAL": "200ms"}))
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	rs := s.Routers()
	if len(rs) != 2 {
		t.Fatalf("%d instances, want 2", len(rs))
	}
	type want struct {
		name     string
		vrid     int
		vips     string
		prio     int
		iface    string
		interval time.Duration
	}
	for i, w := range []want{
		{"web1", 51, "192.0.2.100/24", 150, "lo", 100 * time.Millisecond}, // the plain interval is web1's default
		{"web2", 52, "192.0.2.101/24", 100, "lo", 200 * time.Millisecond}, // and its own overrides it
	} {
		c := rs[i]
		if c.Name != w.name || c.VRID != w.vrid || c.VIPS.String() != w.vips || c.Priority != w.prio || c.Interface != w.iface || c.AdvertInterval != w.interval {
			t.Errorf("instance %d: %s vrid %d vips %s prio %d iface %s interval %v; want %+v",
				i, c.Name, c.VRID, c.VIPS, c.Priority, c.Interface, c.AdvertInterval, w)
		}
		if c.DisplayName() != w.name {
			t.Errorf("instance %d is shown as %q", i, c.DisplayName())
		}
	}
}

func TestNoInstancesIsTheOneInstanceOfToday(t *testing.T) {
	setEnv(t, nil)
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	rs := s.Routers()
	if len(rs) != 1 || rs[0] != &s.VRRP || rs[0].DisplayName() != "VI_51" {
		t.Fatalf("routers %+v, want the plain settings, shown as VI_51", rs)
	}
}

func TestInstancesBadValues(t *testing.T) {
	tests := []struct {
		name string
		over map[string]string
		want []string // every line must appear
	}{
		{"an instance's own bad value names its variable",
			map[string]string{"WEB2_VRID": "256"}, []string{`VIPVISOR_WEB2_VRID="256": out of range`}},
		{"a bad plain value every instance inherits is reported once, by its own name",
			map[string]string{"PRIORITY": "300", "WEB1_PRIORITY": unset}, []string{`VIPVISOR_PRIORITY="300": out of range`}},
		{"an instance without a VRID of its own or a plain one",
			map[string]string{"WEB2_VRID": unset}, []string{"VIPVISOR_WEB2_VRID: required but not set, nor is VIPVISOR_VRID"}},
		{"an instance whose value does not decode",
			map[string]string{"WEB1_PREEMPT": "maybe"}, []string{`VIPVISOR_WEB1_PREEMPT="maybe": not a boolean`}},
		{"v2 interval rule checked per instance",
			map[string]string{"WEB2_VERSION": "2", "ADVERT_INTERVAL": "100ms"}, []string{`VIPVISOR_ADVERT_INTERVAL="100ms": not valid for VRRPv2`}},
		{"duplicate VRID on one interface",
			map[string]string{"WEB2_VRID": "51"}, []string{`VIPVISOR_WEB2_VRID="51": instances web1 and web2 both use VRID 51 on lo`}},
		{"both inheriting the plain VRID",
			map[string]string{"VRID": "51", "WEB1_VRID": unset, "WEB2_VRID": unset}, []string{`VIPVISOR_VRID="51": instances web1 and web2 both use VRID 51`}},
		{"a VIP held by two instances",
			map[string]string{"WEB2_VIPS": "192.0.2.100/24"}, []string{`VIPVISOR_WEB2_VIPS="192.0.2.100/24": 192.0.2.100 is also a VIP of instance web1`}},
		{"upper-case name",
			map[string]string{"INSTANCES": "web1,Web2"}, []string{`VIPVISOR_INSTANCES="web1,Web2": "Web2" is not a name of 1-15 lower-case letters, digits or '-'`}},
		{"name too long",
			map[string]string{"INSTANCES": "web1,abcdefghijklmnop"}, []string{`"abcdefghijklmnop" is not a name of 1-15`}},
		{"name listed twice",
			map[string]string{"INSTANCES": "web1,web2,web1"}, []string{`VIPVISOR_INSTANCES="web1,web2,web1": web1 is listed twice`}},
		{"a name that makes another variable ambiguous",
			map[string]string{"INSTANCES": "web1,check", "CHECK_VRID": "52", "CHECK_VIPS": "192.0.2.102"},
			[]string{`VIPVISOR_INSTANCES="web1,check": the name check would make VIPVISOR_CHECK_`}},
		{"a name that is a variable's",
			map[string]string{"INSTANCES": "web1,garp"}, []string{`the name garp would make VIPVISOR_GARP_`}},
		{"NOTIFY is one for all",
			map[string]string{"WEB1_NOTIFY": "/bin/true"}, []string{"VIPVISOR_WEB1_NOTIFY: unknown variable: VIPVISOR_NOTIFY is one for all instances"}},
		{"probes are one for all",
			map[string]string{"WEB1_CHECK_TCP": "127.0.0.1:80"}, []string{"VIPVISOR_WEB1_CHECK_TCP: unknown variable: VIPVISOR_CHECK_TCP is one for all instances"}},
		{"an instance not in the list",
			map[string]string{"WEB3_VRID": "53"}, []string{"VIPVISOR_WEB3_VRID: unknown variable"}},
		{"TRACK_GATEWAY may not be any instance's VIP",
			map[string]string{"TRACK_GATEWAY": "192.0.2.101"}, []string{"VIPVISOR_TRACK_GATEWAY=\"192.0.2.101\": 192.0.2.101 is one of VIPVISOR_VIPS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, with(activeActive, tt.over))
			_, err := loadSettings()
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n > len(tt.want)+1 {
				t.Errorf("%d problems reported for %d:\n%v", n, len(tt.want), err)
			}
		})
	}
}

func TestCheckPrintsEachInstance(t *testing.T) {
	setEnv(t, with(activeActive, map[string]string{"COMMAND": "nginx", "NOTIFY": "/bin/true"}))
	var out bytes.Buffer
	if err := check(nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"VIPVISOR_NOTIFY=/bin/true", "VIPVISOR_INSTANCES=web1,web2",
		"# VRRP instance web1", "VIPVISOR_WEB1_VRID=51", "VIPVISOR_WEB1_PRIORITY=150", "VIPVISOR_WEB1_INTERFACE=lo",
		"# VRRP instance web2", "VIPVISOR_WEB2_VRID=52", "VIPVISOR_WEB2_PRIORITY=100", "VIPVISOR_WEB2_VIPS=192.0.2.101/24",
	} {
		if !strings.Contains(out.String(), "\n"+line+"\n") {
			t.Errorf("check output lacks %q:\n%s", line, out.String())
		}
	}
	if strings.Contains(out.String(), "\nVIPVISOR_VRID=") {
		t.Errorf("check shows the template's VRID as if it were an instance's:\n%s", out.String())
	}
}

// dualStack is the contract's dual-stack node: an IPv4 and an IPv6
// instance on one VRID, which RFC 5798 keeps apart by family.
var dualStack = map[string]string{
	"VRID": "51", "VIPS": unset, "INSTANCES": "web4,web6",
	"WEB4_VIPS": "192.0.2.100/24", "WEB6_VIPS": "2001:db8::100/64",
}

func TestDualStackOneVRID(t *testing.T) {
	setEnv(t, dualStack)
	s, err := loadSettings()
	if err != nil {
		t.Fatal(err)
	}
	rs := s.Routers()
	if len(rs) != 2 || rs[0].IPv6() || !rs[1].IPv6() || rs[0].VRID != 51 || rs[1].VRID != 51 {
		t.Fatalf("routers %+v, want web4 (IPv4) and web6 (IPv6), both VRID 51", rs)
	}
	if g := rs[1].McastGroup.String(); g != "ff02::12" {
		t.Errorf("web6 group %s, want ff02::12", g)
	}
	if g := rs[0].McastGroup.String(); g != "224.0.0.18" {
		t.Errorf("web4 group %s, want 224.0.0.18", g)
	}
}

func TestDualStackBadValues(t *testing.T) {
	tests := []struct {
		name string
		over map[string]string
		want string
	}{
		{"two IPv6 instances on one VRID",
			map[string]string{"WEB4_VIPS": "2001:db8::101"}, `VIPVISOR_VRID="51": instances web4 and web6 both use VRID 51 on lo for one address family`},
		{"VRRPv2 for the IPv6 instance",
			map[string]string{"WEB6_VERSION": "2"}, `VIPVISOR_WEB6_VERSION="2": VRRP over IPv6 is version 3`},
		{"VRRPv2 for both by the plain variable, reported for the IPv6 one",
			map[string]string{"VERSION": "2"}, `VIPVISOR_VERSION="2": VRRP over IPv6 is version 3`},
		{"an IPv4 group for the IPv6 instance",
			map[string]string{"WEB6_MCAST_GROUP": "239.0.0.18"}, `VIPVISOR_WEB6_MCAST_GROUP="239.0.0.18": not an IPv6 multicast address`},
		{"an IPv6 group for the IPv4 instance",
			map[string]string{"WEB4_MCAST_GROUP": "ff02::12"}, `VIPVISOR_WEB4_MCAST_GROUP="ff02::12": not an IPv4 multicast address`},
		{"both families in one instance",
			map[string]string{"WEB6_VIPS": "192.0.2.101,2001:db8::100"}, `VIPVISOR_WEB6_VIPS="192.0.2.101,2001:db8::100": 192.0.2.101 and 2001:db8::100 are of two address families`},
		{"an IPv4 peer for the IPv6 instance",
			map[string]string{"WEB6_UNICAST_PEERS": "192.0.2.12"}, `VIPVISOR_WEB6_UNICAST_PEERS="192.0.2.12": 192.0.2.12 is not of the VIPs' address family`},
		{"a link-local VIP",
			map[string]string{"WEB6_VIPS": "fe80::100"}, `VIPVISOR_WEB6_VIPS="fe80::100": fe80::100 is not a usable IPv6 unicast address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, with(dualStack, tt.over))
			_, err := loadSettings()
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error lacks %q:\n%v", tt.want, err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n > 2 {
				t.Errorf("%d problems reported for 1:\n%v", n, err)
			}
		})
	}
}
