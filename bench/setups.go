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
	version    int           // keepalived's VRRP version; vipvisor's is 3
	advert     time.Duration // the advert interval
	checkEvery int           // keepalived's vrrp_script interval, in seconds
	listen     bool          // vipvisor holds nginx's listening socket (VIPVISOR_LISTEN)
}

var (
	setVipvisor = &setup{key: "vipvisor", name: "vipvisor", advert: 100 * time.Millisecond}
	setListen   = &setup{key: "listen", name: "vipvisor, LISTEN", advert: 100 * time.Millisecond, listen: true}
	setGuides   = &setup{key: "guides", name: "keepalived, guides", keepalived: true, version: 2, advert: time.Second, checkEvery: 2}
	setTuned    = &setup{key: "tuned", name: "keepalived, tuned", keepalived: true, version: 3, advert: 100 * time.Millisecond, checkEvery: 1}
	// The fast pair: tuned keepalived and vipvisor at the shortest advert
	// interval VRRPv3 has, for scenario (g) and the resources.
	setFast   = &setup{key: "fast", name: "vipvisor, 10 ms", advert: 10 * time.Millisecond}
	setKAFast = &setup{key: "kafast", name: "keepalived, 10 ms", keepalived: true, version: 3, advert: 10 * time.Millisecond, checkEvery: 1}
	// setups is every setup, in the tables' order.
	setups = []*setup{setVipvisor, setListen, setGuides, setTuned, setFast, setKAFast}
)

// vipvisorSettings are vipvisor's settings in every run: VRRPv3, GET
// /health every 1s with a 200ms timeout, sick after two failures.
// Everything else but the setup's advert interval keeps its default.
var vipvisorSettings = []string{
	"VIPVISOR_INTERFACE=" + lab.Iface, "VIPVISOR_VRID=" + strconv.Itoa(vrid), "VIPVISOR_VERSION=3",
	"VIPVISOR_CHECK_HTTP=http://127.0.0.1/health", "VIPVISOR_CHECK_INTERVAL=1s",
	"VIPVISOR_CHECK_TIMEOUT=200ms", "VIPVISOR_CHECK_FALL=2",
	"VIPVISOR_STATUS_ADDR=127.0.0.1:9797",
}

// env returns the settings of a vipvisor setup beyond vipvisorSettings.
func (s *setup) env() []string {
	env := []string{"VIPVISOR_ADVERT_INTERVAL=" + s.advert.String()}
	if s.listen {
		env = append(env, "VIPVISOR_LISTEN=:80")
	}
	return env
}

// advertWords is the advert interval as the tables say it: "100 ms".
func (s *setup) advertWords() string {
	if s.advert >= time.Second {
		return fmt.Sprintf("%g s", s.advert.Seconds())
	}
	return fmt.Sprintf("%d ms", s.advert.Milliseconds())
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
	b.startKeepalived(in, keepalivedConf(in.s, in.n, vips, first))
}

// startVipvisor runs vipvisor on in's node with nginx as its child and
// vipvisorSettings, then env, as its settings.
func (b *bench) startVipvisor(in *instance, env ...string) {
	cmd := in.n.Command(b.vipvisor, "--", b.nginx, "-c", in.n.conf)
	cmd.Env = append(append(append(progrun.CleanEnv(), vipvisorSettings...), in.s.env()...), env...)
	b.startProcess(in, cmd)
}

// startKeepalived runs keepalived's VRRP process on in's node with conf
// and its check script.
func (b *bench) startKeepalived(in *instance, conf string) {
	n := in.n
	path := filepath.Join(n.dir, "keepalived.conf")
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

// kaStates returns the state keepalived last entered for each of its
// vrrp_instances, by name, as its log says.
func (in *instance) kaStates() map[string]string {
	b, _ := os.ReadFile(in.logf)
	return lab.KeepalivedStates(string(b))
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
	fmt.Fprintf(w, "\tpriority %d\n\tadvert_int %g\n", n.prio, s.advert.Seconds())
	w.WriteString("\ttrack_script {\n\t\tchk_nginx\n\t}\n\tvirtual_ipaddress {\n")
	for _, v := range vips {
		fmt.Fprintf(w, "\t\t%s\n", v)
	}
	w.WriteString("\t}\n}\n")
}

// state returns the VRRP state the instance reports: vipvisor's /status,
// keepalived's log. A vipvisor whose child is not healthy yet reports
// "STARTING".
func (in *instance) state() string {
	if in.s.keepalived {
		return in.kaStates()[fmt.Sprintf("VI_%d", vrid)]
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
