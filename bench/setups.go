package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
	"github.com/vipvisor/vipvisor/internal/progrun"
)

// vrid is the virtual router of every setup.
const vrid = 51

// setup is one way of running a highly available nginx that the benchmark
// compares. The keepalived ones run nginx under a service (systemd's
// Restart=on-failure emulated) and keepalived beside it, as the guides do.
type setup struct {
	key, name  string
	keepalived bool
	version    int
	advert     string // keepalived's advert_int, in seconds
	checkEvery int    // keepalived's vrrp_script interval, in seconds
}

var setups = []*setup{
	{key: "vipvisor", name: "vipvisor"},
	{key: "guides", name: "keepalived, guides", keepalived: true, version: 2, advert: "1", checkEvery: 2},
	{key: "tuned", name: "keepalived, tuned", keepalived: true, version: 3, advert: "0.1", checkEvery: 1},
}

// vipvisorSettings are vipvisor's settings in every run: VRRPv3 adverts
// every 100ms, GET /health every 1s with a 200ms timeout, sick after two
// failures. Everything else keeps its default.
var vipvisorSettings = []string{
	"VIPVISOR_INTERFACE=" + lab.Iface, "VIPVISOR_VRID=" + strconv.Itoa(vrid),
	"VIPVISOR_VERSION=3", "VIPVISOR_ADVERT_INTERVAL=100ms",
	"VIPVISOR_CHECK_HTTP=http://127.0.0.1/health", "VIPVISOR_CHECK_INTERVAL=1s",
	"VIPVISOR_CHECK_TIMEOUT=200ms", "VIPVISOR_CHECK_FALL=2",
	"VIPVISOR_STATUS_ADDR=127.0.0.1:9797",
}

// node is a web node of a lab: nginx answering the node's name.
type node struct {
	*lab.Node
	dir  string // nginx's configuration and files, the supervisors' logs
	prio int
	conf string // nginx.conf
}

func newNode(r *progrun.Runner, l *lab.Lab, dir, name string, host, prio int) *node {
	n := &node{Node: l.AddNode(name, l.Host(host)), dir: filepath.Join(dir, name), prio: prio}
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		r.Fatalf("%v", err)
	}
	n.conf = lab.NginxConf(r, n.dir, netip.AddrPortFrom(netip.IPv4Unspecified(), 80), name)
	return n
}

// instance is one setup running on one node.
type instance struct {
	s    *setup
	n    *node
	sup  *progrun.Process // vipvisor or keepalived
	web  *service         // nginx, for keepalived
	logf string
}

// start runs setup s on n with vips: nginx, and for keepalived the
// service that runs it, then the supervisor; first says whether n is the
// node the guides call MASTER.
func (b *bench) start(s *setup, n *node, vips []netip.Prefix, first bool) *instance {
	in := b.newInstance(s, n)
	if s.keepalived {
		in.web = startService(b.r, n, b.nginx)
	}
	b.startSupervisor(in, vips, first)
	return in
}

// restart starts the supervisor of a stopped instance again; nginx as a
// service of its own runs on.
func (b *bench) restart(old *instance, vips []netip.Prefix, first bool) *instance {
	in := b.newInstance(old.s, old.n)
	in.web = old.web
	b.startSupervisor(in, vips, first)
	return in
}

func (b *bench) newInstance(s *setup, n *node) *instance {
	b.runs++
	return &instance{s: s, n: n, logf: filepath.Join(n.dir, fmt.Sprintf("%s-%d.log", s.key, b.runs))}
}

func (b *bench) startSupervisor(in *instance, vips []netip.Prefix, first bool) {
	if !in.s.keepalived {
		b.startVipvisor(in, "VIPVISOR_VIPS="+joinPrefixes(vips), "VIPVISOR_PRIORITY="+strconv.Itoa(in.n.prio))
		return
	}
	os.Remove(kaStateFile(in.n, vrid))
	b.startKeepalived(in, keepalivedConf(in.s, in.n, vips, first))
}

// startVipvisor runs vipvisor on in's node with nginx as its child and
// vipvisorSettings, then env, as its settings.
func (b *bench) startVipvisor(in *instance, env ...string) {
	cmd := in.n.Command(b.vipvisor, "--", b.nginx, "-c", in.n.conf)
	cmd.Env = append(append(progrun.CleanEnv(), vipvisorSettings...), env...)
	b.startProcess(in, cmd)
}

// startKeepalived runs keepalived's VRRP process on in's node with conf,
// its check script and a notify script that writes the state each
// vrrp_instance enters to its kaStateFile.
func (b *bench) startKeepalived(in *instance, conf string) {
	n := in.n
	path := filepath.Join(n.dir, "keepalived.conf")
	b.writeFile(filepath.Join(n.dir, "notify.sh"),
		fmt.Sprintf("#!/bin/sh\necho \"$3\" > \"%s/ka-$2.state\"\n", n.dir), 0o755)
	b.writeFile(filepath.Join(n.dir, "check.sh"), b.checkScript(), 0o755)
	b.writeFile(path, conf, 0o644)
	b.startProcess(in, n.Command(b.keepalived, "-n", "-l", "-P", "-f", path,
		"-p", filepath.Join(n.dir, "ka.pid"), "-r", filepath.Join(n.dir, "vrrp.pid")))
}

func (b *bench) startProcess(in *instance, cmd *exec.Cmd) {
	var err error
	if in.sup, err = progrun.StartProcess(cmd, in.logf); err != nil {
		b.r.Fatalf("start %s on %s: %v", in.s.name, in.n.Name, err)
	}
}

// kaStateFile is where keepalived's notify script writes the state of its
// vrrp_instance VI_<id>.
func kaStateFile(n *node, id int) string {
	return filepath.Join(n.dir, fmt.Sprintf("ka-VI_%d.state", id))
}

// checkScript is the check users of the guides write: is anything
// listening on port 80?
func (b *bench) checkScript() string {
	return fmt.Sprintf("#!/bin/sh\n%s -ltn 'sport = :80' | %s -q LISTEN\n", b.ss, b.grep)
}

func keepalivedConf(s *setup, n *node, vips []netip.Prefix, first bool) string {
	var w strings.Builder
	keepalivedGlobals(&w, s, n)
	keepalivedInstance(&w, s, n, vrid, vips, first)
	return w.String()
}

// keepalivedGlobals writes the global_defs and the one vrrp_script,
// chk_nginx, every vrrp_instance tracks.
func keepalivedGlobals(w *strings.Builder, s *setup, n *node) {
	fmt.Fprintf(w, "global_defs {\n\trouter_id %s\n\tscript_user root\n\tenable_script_security\n}\n", n.Name)
	fmt.Fprintf(w, "vrrp_script chk_nginx {\n\tscript %q\n\tinterval %d\n\tweight -20\n}\n",
		filepath.Join(n.dir, "check.sh"), s.checkEvery)
}

// keepalivedInstance writes vrrp_instance VI_<id>, virtual router id with
// vips, tracking chk_nginx; first says whether its state is MASTER.
func keepalivedInstance(w *strings.Builder, s *setup, n *node, id int, vips []netip.Prefix, first bool) {
	state := "BACKUP"
	if first {
		state = "MASTER"
	}
	fmt.Fprintf(w, "vrrp_instance VI_%d {\n\tversion %d\n\tstate %s\n\tinterface %s\n\tvirtual_router_id %d\n",
		id, s.version, state, lab.Iface, id)
	fmt.Fprintf(w, "\tpriority %d\n\tadvert_int %s\n\tnotify %s\n", n.prio, s.advert, filepath.Join(n.dir, "notify.sh"))
	w.WriteString("\ttrack_script {\n\t\tchk_nginx\n\t}\n\tvirtual_ipaddress {\n")
	for _, v := range vips {
		fmt.Fprintf(w, "\t\t%s\n", v)
	}
	w.WriteString("\t}\n}\n")
}

// state returns the VRRP state the instance reports: vipvisor's /status,
// keepalived's notify script. A vipvisor whose child is not healthy yet
// reports "STARTING".
func (in *instance) state() string {
	if in.s.keepalived {
		b, _ := os.ReadFile(kaStateFile(in.n, vrid))
		return strings.TrimSpace(string(b))
	}
	st, ok := in.status()
	if !ok {
		return ""
	}
	if !st.Child.Healthy {
		return "STARTING"
	}
	return st.VRRP.State
}

// vipvisorStatus is the part of vipvisor's /status the benchmark reads.
type vipvisorStatus struct {
	VRRP      routerStatus   `json:"vrrp"`
	Instances []routerStatus `json:"instances"`
	Child     struct {
		Healthy bool `json:"healthy"`
	} `json:"child"`
}

// routerStatus is one virtual router in vipvisorStatus.
type routerStatus struct {
	Name  string `json:"name"`
	State string `json:"state"`
	VRID  int    `json:"vrid"`
}

// status asks vipvisor on in's node for its /status.
func (in *instance) status() (vipvisorStatus, bool) {
	var st vipvisorStatus
	code, body, err := in.n.HTTPGet("http://127.0.0.1:9797/status", 200*time.Millisecond)
	if err != nil || code != 200 || json.Unmarshal([]byte(body), &st) != nil {
		return vipvisorStatus{}, false
	}
	return st, true
}

// pids returns the supervisor's processes: vipvisor and its guard (a
// copy of itself, so also called vipvisor), or keepalived and its
// children (the VRRP process, a checker if any).
func (in *instance) pids() []int {
	pid := in.sup.Pid()
	if !in.s.keepalived {
		return append([]int{pid}, childrenNamed(pid, "vipvisor")...)
	}
	return append([]int{pid}, childrenNamed(pid, "keepalived")...)
}

// stopSupervisor stops vipvisor or keepalived with SIGTERM, as systemd
// would, and waits for it.
func (in *instance) stopSupervisor() { in.sup.Stop(15 * time.Second) }

// stop stops the supervisor and, for keepalived, the nginx service.
func (in *instance) stop() {
	in.stopSupervisor()
	if in.web != nil {
		in.web.stop()
	}
}

// nginxPID returns the pid of the running nginx master on n, or 0.
func (n *node) nginxPID() int {
	b, err := os.ReadFile(filepath.Join(n.dir, "nginx.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if st, ok := readStat(pid); !ok || st.comm != "nginx" || st.state == 'Z' {
		return 0
	}
	return pid
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (b *bench) writeFile(path, content string, mode os.FileMode) {
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		b.r.Fatalf("%v", err)
	}
}
