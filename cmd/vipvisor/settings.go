package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/vipvisor/vipvisor/internal/envconf"
	"github.com/vipvisor/vipvisor/probes"
	"github.com/vipvisor/vipvisor/supervisor"
	"github.com/vipvisor/vipvisor/vrrp"
)

// Ops is the operational settings that belong to no package: the status
// endpoint and logging.
type Ops struct {
	StatusAddr string `split_words:"true" default:"127.0.0.1:9797" accept:"host:port with a local address and a port 1-65535, or off" desc:"HTTP /status (JSON), /metrics (Prometheus text), /healthz"`
	LogFormat  string `split_words:"true" default:"text" accept:"text or json" desc:"log format (log/slog)"`
	LogLevel   string `split_words:"true" default:"info" accept:"debug, info, warn or error" desc:"lowest level logged"`

	// listen is set when vipvisor will listen on StatusAddr (a start or
	// `check`), not only connect to it (`vipvisor status`): the address
	// must then be one of this node's.
	listen bool
}

// Validate checks each value. Each error names its variable.
func (o *Ops) Validate() []error {
	var errs []error
	if o.StatusAddr != "off" {
		if err := checkStatusAddr(o.StatusAddr, o.listen); err != nil {
			errs = append(errs, envconf.Invalid("STATUS_ADDR", err.Error(),
				"host:port with an address of this node (or none, for all) and a port 1-65535, e.g. 127.0.0.1:9797; or off"))
		}
	}
	if o.LogFormat != "text" && o.LogFormat != "json" {
		errs = append(errs, envconf.Invalid("LOG_FORMAT", "unknown format", "text or json"))
	}
	if _, err := o.level(); err != nil {
		errs = append(errs, envconf.Invalid("LOG_LEVEL", "unknown level", "debug, info, warn or error"))
	}
	return errs
}

func (o *Ops) level() (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(o.LogLevel))
	return l, err
}

// Logger returns the logger the settings ask for, writing to stderr.
func (o *Ops) Logger() *slog.Logger {
	level, _ := o.level()
	opts := &slog.HandlerOptions{Level: level}
	if o.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// Settings is every setting vipvisor reads, grouped by the package that
// owns it.
type Settings struct {
	VRRP   vrrp.Config // the one instance, or the template of VIPVISOR_INSTANCES
	Child  supervisor.Config
	Probes probes.Config
	Listen supervisor.ListenConfig
	Ops    Ops

	instances map[string]*vrrp.Config // by name, with VIPVISOR_INSTANCES
}

// Routers returns the settings of every VRRP instance, in the order of
// VIPVISOR_INSTANCES; without it, the one instance.
func (s *Settings) Routers() []*vrrp.Config {
	if len(s.VRRP.Instances) == 0 {
		return []*vrrp.Config{&s.VRRP}
	}
	out := make([]*vrrp.Config, 0, len(s.VRRP.Instances))
	for _, name := range s.VRRP.Instances {
		if c := s.instances[name]; c != nil {
			out = append(out, c)
		}
	}
	return out
}

// instance returns the settings of the instance called name, made on
// first use, for envconf to fill in.
func (s *Settings) instance(name string) any {
	if s.instances == nil {
		s.instances = map[string]*vrrp.Config{}
	}
	c := s.instances[name]
	if c == nil {
		c = &vrrp.Config{}
		s.instances[name] = c
	}
	return c
}

// sections lists the groups in the order help and check show them.
func (s *Settings) sections() []envconf.Section {
	return []envconf.Section{
		{Title: "VRRP", Spec: &s.VRRP, Scope: s.instance},
		{Title: "Child", Spec: &s.Child},
		{Title: "Probes (a child with no probe is judged by being alive)", Spec: &s.Probes},
		{Title: "Listening sockets", Spec: &s.Listen},
		{Title: "Operations", Spec: &s.Ops},
	}
}

// loadSettings reads and validates the whole environment: each section,
// then the rules that tie sections together.
func loadSettings() (*Settings, error) {
	s := &Settings{Ops: Ops{listen: true}}
	if err := envconf.Load(s.sections()...); err != nil {
		return nil, err
	}
	for name, c := range s.instances {
		c.Name = name
	}
	if errs := s.crossCheck(); len(errs) > 0 {
		return nil, envconf.Errors(errs)
	}
	return s, nil
}

// crossCheck checks the rules between variables of different sections.
// Each error names the variable to change.
func (s *Settings) crossCheck() []error {
	errs := checkInstances(s.Routers())
	var vips []netip.Addr
	for _, c := range s.Routers() {
		vips = append(vips, c.VIPS.Addrs()...)
	}
	if gw := s.Probes.TrackGateway; gw.IsValid() && slices.Contains(vips, gw) {
		errs = append(errs, envconf.Invalid("TRACK_GATEWAY", fmt.Sprintf("%s is one of VIPVISOR_VIPS, which this node itself answers for", gw),
			"the address of another host on the segment, such as the default gateway"))
	} else if gw.IsValid() && isOwnAddr(s.gatewayInterface(), gw) {
		errs = append(errs, envconf.Invalid("TRACK_GATEWAY", fmt.Sprintf("%s is this node's own address on %s", gw, s.gatewayInterface()),
			"the address of another host on the segment, such as the default gateway"))
	}
	if tcp := s.Probes.CheckTCP; tcp != "" && heldProbe(s.Listen.Listen, tcp) {
		errs = append(errs, envconf.Invalid("CHECK_TCP",
			fmt.Sprintf("%s is held by vipvisor itself (VIPVISOR_LISTEN): the kernel completes the handshake whether the child accepts or not, so the probe could never fail", tcp),
			"VIPVISOR_CHECK_HTTP, which needs the child's answer; or an address not in VIPVISOR_LISTEN"))
	}
	p := s.Probes
	if need := p.CheckInterval * time.Duration(p.CheckRise); p.Any() && s.Child.StartTimeout <= need {
		errs = append(errs, envconf.Invalid("START_TIMEOUT",
			fmt.Sprintf("a child needs VIPVISOR_CHECK_RISE × VIPVISOR_CHECK_INTERVAL (%s) to be judged healthy, so it would never be in time", need),
			fmt.Sprintf("a duration from 1s to 1h, longer than %s", need)))
	}
	return errs
}

// heldProbe reports whether the TCP probe's host:port would be answered by
// a held socket; localhost stands for both loopback addresses, and other
// names are not resolved.
func heldProbe(held supervisor.ListenAddrs, hostport string) bool {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	hosts := []string{host}
	if host == "localhost" {
		hosts = []string{"127.0.0.1", "::1"}
	}
	for _, h := range hosts {
		if ap, err := netip.ParseAddrPort(net.JoinHostPort(h, port)); err == nil && held.Covers(ap) {
			return true
		}
	}
	return false
}

// checkListen checks VIPVISOR_LISTEN against the child argv: only nginx
// takes inherited sockets, and its configuration must listen on each held
// address (see supervisor.NginxListenProblems). A configuration nginx -T
// cannot read is left to nginx's own start to report.
func checkListen(ctx context.Context, s *Settings, argv []string, log *slog.Logger) error {
	held := s.Listen.Listen
	if len(held) == 0 {
		return nil
	}
	const accept = "empty, or host:port addresses that the child's nginx configuration listens on"
	switch supervisor.KindOf(argv[0]) {
	case supervisor.Nginx:
	case supervisor.Httpd:
		return envconf.Errors([]error{envconf.Invalid("LISTEN",
			"Apache httpd takes no inherited listening sockets from its parent (only systemd's socket activation, which needs LISTEN_PID set to httpd's own pid by a service manager); let httpd listen itself",
			"empty with httpd")})
	default:
		return envconf.Errors([]error{envconf.Invalid("LISTEN",
			fmt.Sprintf("%s is not nginx: vipvisor hands held sockets over only in nginx's NGINX variable", argv[0]), "empty, or an nginx child")})
	}
	listens, err := supervisor.NginxListens(ctx, argv)
	if err != nil {
		log.Warn("could not read nginx's configuration to check VIPVISOR_LISTEN against it", "err", err)
		return nil
	}
	var errs []error
	for _, p := range supervisor.NginxListenProblems(held, listens) {
		errs = append(errs, envconf.Invalid("LISTEN", p, accept))
	}
	if len(errs) > 0 {
		return envconf.Errors(errs)
	}
	return nil
}

// gatewayInterface is where TRACK_GATEWAY is asked: the first
// instance's interface.
func (s *Settings) gatewayInterface() string { return s.Routers()[0].Interface }

// checkInstances checks the rules between instances: on one interface
// no two share a VRID (the VRID is the virtual router's identity on the
// segment, and its virtual MAC's last byte), and no VIP belongs to two.
func checkInstances(cs []*vrrp.Config) []error {
	var errs []error
	type router struct {
		iface string
		v4    bool
		vrid  int
	}
	byRouter := map[router]string{}
	byVIP := map[netip.Addr]string{}
	for _, c := range cs {
		r := router{c.Interface, len(c.VIPS) == 0 || c.VIPS[0].Addr().Is4(), c.VRID}
		if other, dup := byRouter[r]; dup {
			errs = append(errs, envconf.InvalidIn(c.Name, "VRID",
				fmt.Sprintf("instances %s and %s both use VRID %d on %s for one address family", other, c.Name, c.VRID, c.Interface),
				"a VRID of its own for each instance of one family on one interface: VIPVISOR_<NAME>_VRID"))
		} else {
			byRouter[r] = c.Name
		}
		for _, a := range c.VIPS.Addrs() {
			if other, dup := byVIP[a]; dup {
				errs = append(errs, envconf.InvalidIn(c.Name, "VIPS",
					fmt.Sprintf("%s is also a VIP of instance %s", a, other), "addresses no other instance holds"))
				break
			}
			byVIP[a] = c.Name
		}
	}
	return errs
}

// configError prints every configuration problem, one per line.
func configError(err error) string {
	var b strings.Builder
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(&b, "vipvisor: %s\n", line)
	}
	return b.String()
}

// isOwnAddr reports whether a is an address of interface ifname. A lookup
// that fails says no: VIPVISOR_INTERFACE is then reported on its own.
func isOwnAddr(ifname string, a netip.Addr) bool {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return false
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if ipn, ok := x.(*net.IPNet); ok {
			if own, ok := netip.AddrFromSlice(ipn.IP); ok && own.Unmap() == a {
				return true
			}
		}
	}
	return false
}
