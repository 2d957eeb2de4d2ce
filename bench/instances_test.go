package main

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

func TestParseCounts(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "1,10,50", want: []int{1, 10, 50}},
		{in: " 3 , 2 ", want: []int{3, 2}},
		{in: "255", want: []int{255}},
		{in: "", want: nil},
		{in: "0", wantErr: true},
		{in: "256", wantErr: true},
		{in: "1,,2", wantErr: true},
		{in: "ten", wantErr: true},
		{in: "5,5", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseCounts(tc.in)
			if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
				t.Errorf("parseCounts(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// testVIPs returns n VIPs, 10.79.3.232/32 on.
func testVIPs(n int) []netip.Prefix {
	out := make([]netip.Prefix, n)
	for i := range out {
		out[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 79, 3, byte(232 + i)}), 32)
	}
	return out
}

func TestVipvisorRouters(t *testing.T) {
	vips := testVIPs(2)
	got := vipvisorRouters(100, []int{1, 2}, vips)
	want := []string{
		"VIPVISOR_PRIORITY=100",
		"VIPVISOR_VR1_VRID=1", "VIPVISOR_VR1_VIPS=10.79.3.232/32",
		"VIPVISOR_VR2_VRID=2", "VIPVISOR_VR2_VIPS=10.79.3.233/32",
		"VIPVISOR_INSTANCES=vr1,vr2",
	}
	if !slices.Equal(got, want) {
		t.Errorf("vipvisorRouters:\n-want %q\n+got  %q", want, got)
	}
}

func TestKeepalivedRouters(t *testing.T) {
	n := &node{Node: &lab.Node{Name: "a"}, dir: "/run/b/a", prio: 100}
	vips := testVIPs(2)
	conf := keepalivedRouters(setTuned, n, []int{1, 2}, vips)
	mustContain(t, "keepalived.conf", conf,
		"vrrp_instance VI_1 {\n\tversion 3\n\tstate MASTER\n\tinterface eth0\n\tvirtual_router_id 1\n\tpriority 100\n\tadvert_int 0.1\n",
		"vrrp_instance VI_2 {\n\tversion 3\n\tstate MASTER\n\tinterface eth0\n\tvirtual_router_id 2\n",
		"\tvirtual_ipaddress {\n\t\t10.79.3.232/32\n\t}\n",
		"\tvirtual_ipaddress {\n\t\t10.79.3.233/32\n\t}\n",
	)
	// One vrrp_script, tracked by both instances.
	if c, tr := strings.Count(conf, "vrrp_script "), strings.Count(conf, "track_script {\n\t\tchk_nginx\n\t}"); c != 1 || tr != 2 {
		t.Errorf("keepalived.conf has %d vrrp_script and %d track_script, want 1 and 2:\n%s", c, tr, conf)
	}
}

func TestNotMaster(t *testing.T) {
	vrids := []int{1, 2, 3, 4}
	vips := testVIPs(4)
	addrs := []netip.Prefix{netip.MustParsePrefix("10.79.0.11/16"), vips[0], vips[1]}
	states := map[int]string{1: "MASTER", 2: "BACKUP", 3: "MASTER"}
	got := notMaster(vrids, vips, states, addrs)
	want := []string{"VRID 2: BACKUP", "VRID 3: 10.79.3.234 not on the interface", "VRID 4: no state"}
	if !slices.Equal(got, want) {
		t.Errorf("notMaster:\n-want %q\n+got  %q", want, got)
	}
	if got := notMaster(vrids[:1], vips[:1], states, addrs); len(got) != 0 {
		t.Errorf("notMaster of a master with its VIP = %q, want none", got)
	}
}

func TestRouterTable(t *testing.T) {
	v, k := setVipvisor, setTuned
	rep := report{date: "2026-01-02", machine: "box", routerIdle: 30 * time.Second, routerTook: 100 * time.Second,
		routers: []routerCost{
			{usage{setup: v, pss: 10240, anon: 5120, own: 0.5, all: 0.5}, 1},
			{usage{setup: k, pss: 8192, anon: 2048, own: 0.2, all: 0.8}, 1},
			{usage{setup: v, pss: 10240 + 49*20, anon: 6144, own: 0.99, all: 0.99}, 50},
			{usage{setup: k, pss: 8192 + 49*40, anon: 3072, own: 1.18, all: 1.78}, 50},
		}}
	var w strings.Builder
	rep.routerTable(&w)
	mustContain(t, "the table", w.String(),
		routerHeading+"\n\nMeasured 2026-01-02 on box; 30s idle per cell, this part took 1m40s.\n",
		"| 1 | vipvisor | 0.50% | 0.50% | 10.0 MiB | 5.0 MiB | — | — |\n",
		"| 1 | keepalived, tuned | 0.20% | 0.80% | 8.0 MiB | 2.0 MiB | — | — |\n",
		"| 50 | vipvisor | 0.99% | 0.99% | 11.0 MiB | 6.0 MiB | 0.010% | 20 KiB |\n",
		"| 50 | keepalived, tuned | 1.18% | 1.78% | 9.9 MiB | 3.0 MiB | 0.020% | 40 KiB |\n\n",
	)
	var none strings.Builder
	(&report{}).routerTable(&none)
	if none.Len() != 0 {
		t.Errorf("with nothing measured the table is %q, want nothing", none.String())
	}
}

func TestReplaceSection(t *testing.T) {
	sec := routerHeading + "\n\nnew\n\n"
	for _, tc := range []struct{ name, doc, want string }{
		{"empty", "", sec},
		{"appended", "# R\n\n## A\n\na\n\n", "# R\n\n## A\n\na\n\n" + sec},
		{"replaced at the end", "# R\n\n" + routerHeading + "\n\nold\n", "# R\n\n" + sec},
		{"replaced in the middle", "# R\n\n" + routerHeading + "\n\nold\n\n## B\n\nb\n", "# R\n\n" + sec + "## B\n\nb\n"},
		{"replaced at the start", routerHeading + "\n\nold\n\n## B\n", sec + "## B\n"},
		{"a longer heading is another section", "# R\n\n" + routerHeading + " (old)\n\nx\n", "# R\n\n" + routerHeading + " (old)\n\nx\n\n" + sec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := replaceSection(tc.doc, sec); got != tc.want {
				t.Errorf("replaceSection:\n-want %q\n+got  %q", tc.want, got)
			}
		})
	}
}

func TestAnonKiB(t *testing.T) {
	if _, err := os.Stat("/proc/self/smaps_rollup"); err != nil {
		lab.Skip(t, "no smaps_rollup: %v", err)
	}
	if got := anonKiB(os.Getpid()); got <= 0 {
		t.Errorf("anonKiB(self) = %d, want > 0", got)
	}
}

// mustContain reports each of wants that got, called what, lacks.
func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, got)
		}
	}
}
