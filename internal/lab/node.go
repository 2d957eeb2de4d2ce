package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
)

// Iface is the name of every node's interface inside its namespace.
const Iface = "eth0"

// nodeName keeps node names short enough for the bridge port name "p-NAME"
// to fit the kernel's 15-byte interface name limit.
var nodeName = regexp.MustCompile(`^[a-z][a-z0-9]{0,11}$`)

// Node is one host on the lab's segment: a network namespace whose eth0 is
// joined to the bridge by a veth pair.
type Node struct {
	// Name is the name the test gave the node, such as "a" or "client".
	Name string
	// NS is the name of the node's network namespace, for ip netns exec.
	NS string
	// Iface is the node's interface inside NS, always "eth0".
	Iface string
	// Addr is the address the node was given on Iface.
	Addr netip.Prefix
	// MAC is the hardware address of Iface.
	MAC net.HardwareAddr
	// Port is the bridge-side end of the node's veth pair, in the switch
	// namespace.
	Port string

	lab *Lab
	t   T
}

// AddNode adds a node called name (a lowercase letter, then up to 11
// lowercase letters or digits) with addr on its eth0, which must lie in the
// lab's subnet. The node's lo and eth0 are up, IPv6 is off and the IPv4
// sysctls have the kernel's defaults, whatever the host's are.
func (l *Lab) AddNode(name string, addr netip.Prefix) *Node {
	l.t.Helper()
	n := l.newNode(name, addr)
	l.addNamespace(n.NS)
	l.plug(n, nodeSysctls)
	return n
}

// newNode checks a node's name and address and reserves the name.
func (l *Lab) newNode(name string, addr netip.Prefix) *Node {
	l.t.Helper()
	if !nodeName.MatchString(name) {
		l.t.Fatalf("lab: node name %q: want %s", name, nodeName)
	}
	if !addr.Addr().Is4() || !l.Subnet.Contains(addr.Addr()) || addr.Bits() < l.Subnet.Bits() {
		l.t.Fatalf("lab: node %s address %s: want an address in %s", name, addr, l.Subnet)
	}
	n := &Node{Name: name, NS: Prefix + l.ID + "-" + name, Iface: Iface, Addr: addr,
		Port: "p-" + name, lab: l, t: l.t}
	l.reserve(n)
	return n
}

// plug sets the node's namespace up: sysctls, the veth into the bridge,
// its address, lo and eth0 up.
func (l *Lab) plug(n *Node, sysctls ...[][2]string) {
	l.t.Helper()
	l.t.Cleanup(func() {
		if l.t.Failed() {
			n.dump()
		}
	})
	for _, s := range sysctls {
		l.must(setSysctls(n.NS, s))
	}
	l.ip("-n", l.SwitchNS, "link", "add", n.Port, "type", "veth", "peer", "name", Iface, "netns", n.NS)
	l.ip("-n", l.SwitchNS, "link", "set", n.Port, "master", Bridge, "up")
	l.ip("-n", n.NS, "addr", "add", n.Addr.String(), "dev", Iface)
	l.ip("-n", n.NS, "link", "set", "lo", "up")
	l.ip("-n", n.NS, "link", "set", Iface, "up")
	n.MAC = n.readMAC()
}

func (l *Lab) reserve(n *Node) {
	l.t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, dup := l.nodes[n.Name]; dup {
		l.t.Fatalf("lab: node %s added twice", n.Name)
	}
	l.nodes[n.Name] = n
}

// String returns the node's name.
func (n *Node) String() string { return n.Name }

// Command returns a command that runs name with args in the node's
// namespace, through ip netns exec. The caller starts and waits for it;
// whatever still runs in the namespace when the lab is removed is killed.
func (n *Node) Command(name string, args ...string) *exec.Cmd {
	return nsCommand(context.Background(), n.NS, name, args...)
}

// CommandContext is Command with a context that kills the command when done.
func (n *Node) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return nsCommand(ctx, n.NS, name, args...)
}

// Run runs a command in the node's namespace and returns its combined
// output, failing the test if it fails or takes over 20 seconds.
func (n *Node) Run(name string, args ...string) string {
	n.t.Helper()
	out, err := n.TryRun(name, args...)
	if err != nil {
		n.t.Fatalf("lab: node %s: %v", n.Name, err)
	}
	return out
}

// TryRun is Run that returns the error instead of failing the test; the
// error includes the output.
func (n *Node) TryRun(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return runCmd(n.CommandContext(ctx, name, args...))
}

// Do runs f on an OS thread that is inside the node's namespace for the
// duration of the call, then moved back. Sockets f opens stay in the
// namespace and may be used after Do returns; goroutines f starts do not run
// in it.
func (n *Node) Do(f func() error) error {
	return do(n.NS, f)
}

// Sysctl sets a sysctl of the node's namespace, such as
// "net.ipv4.ip_nonlocal_bind", failing the test on error.
func (n *Node) Sysctl(key, value string) {
	n.t.Helper()
	key = strings.TrimPrefix(key, "net.")
	if err := n.Do(func() error { return writeSysctl(key, value) }); err != nil {
		n.t.Fatalf("lab: node %s: %v", n.Name, err)
	}
}

// Addrs returns the IPv4 addresses now on the node's eth0, in the kernel's
// order: the node's own address first, VIPs after it.
func (n *Node) Addrs() []netip.Prefix {
	n.t.Helper()
	var addrs []netip.Prefix
	for _, a := range n.addrInfo("-4") {
		p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", a.Local, a.PrefixLen))
		if err != nil {
			n.t.Fatalf("lab: node %s: address %q/%d: %v", n.Name, a.Local, a.PrefixLen, err)
		}
		addrs = append(addrs, p)
	}
	return addrs
}

// HasAddr reports whether a (IPv4 or IPv6) is now on the node's eth0, with
// any prefix length.
func (n *Node) HasAddr(a netip.Addr) bool {
	n.t.Helper()
	for _, x := range n.addrInfo(family(a)) {
		if x.Local == a.String() {
			return true
		}
	}
	return false
}

func (n *Node) readMAC() net.HardwareAddr {
	n.t.Helper()
	var links []struct {
		Address string `json:"address"`
	}
	n.unmarshalIP(&links, "-j", "link", "show", "dev", Iface)
	if len(links) != 1 {
		n.t.Fatalf("lab: node %s: %d links called %s", n.Name, len(links), Iface)
	}
	mac, err := net.ParseMAC(links[0].Address)
	if err != nil {
		n.t.Fatalf("lab: node %s: MAC %q: %v", n.Name, links[0].Address, err)
	}
	return mac
}

// unmarshalIP runs ip -n NS args (with -j among them) and decodes its JSON.
func (n *Node) unmarshalIP(v any, args ...string) {
	n.t.Helper()
	out := n.lab.ip(append([]string{"-n", n.NS}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		n.t.Fatalf("lab: node %s: ip %s: %v", n.Name, strings.Join(args, " "), err)
	}
}

// dump logs the node's links, addresses and neighbours, to explain a
// failed test.
func (n *Node) dump() {
	for _, args := range [][]string{{"-br", "link"}, {"-br", "addr"}, {"neigh"}} {
		out, err := runIP(append([]string{"-n", n.NS}, args...)...)
		if err != nil {
			out = err.Error()
		}
		n.t.Logf("lab: node %s: ip %s:\n%s", n.Name, strings.Join(args, " "), out)
	}
}
