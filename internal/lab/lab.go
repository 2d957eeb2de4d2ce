package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Prefix starts the name of every namespace a lab makes, so that leftovers
// can be told apart from other namespaces on the machine.
const Prefix = "vvlab"

// Bridge is the name of the lab's bridge inside its switch namespace.
const Bridge = "br0"

// DefaultSubnet is the subnet New uses when given the zero netip.Prefix.
var DefaultSubnet = netip.MustParsePrefix("10.77.0.0/24")

// labNet is the only range a lab may use, so test traffic never looks like
// traffic to a real network, and stays inside the lab's namespaces anyway.
var labNet = netip.MustParsePrefix("10.0.0.0/8")

// cmdTimeout bounds every ip invocation, so a wedged kernel call fails the
// test instead of hanging it.
const cmdTimeout = 20 * time.Second

// Lab is one Ethernet segment: a bridge in a switch namespace of its own and
// the nodes joined to it. The lab and its nodes report failures to the T
// given to New, with t.Fatalf, so methods that can fail are for the test's
// own goroutine; Do, DialContext, HTTPGet, Ping and Client are safe from any.
type Lab struct {
	// ID is the random part of every name the lab makes.
	ID string
	// Subnet is the IPv4 subnet the nodes' addresses are taken from.
	Subnet netip.Prefix
	// SwitchNS is the name of the namespace that holds the bridge.
	SwitchNS string

	t     T
	mu    sync.Mutex
	nodes map[string]*Node
}

// New builds an empty lab and registers its removal with t.Cleanup. The
// subnet must lie in 10.0.0.0/8; as every lab is a world of its own, labs
// may share a subnet, and the zero Prefix means DefaultSubnet. New skips or
// fails the test as RequireRoot does.
func New(t T, subnet netip.Prefix) *Lab {
	t.Helper()
	if !subnet.IsValid() {
		subnet = DefaultSubnet
	}
	subnet = subnet.Masked()
	if !subnet.Addr().Is4() || !labNet.Contains(subnet.Addr()) || subnet.Bits() < labNet.Bits() {
		t.Fatalf("lab: subnet %s: want an IPv4 subnet inside %s", subnet, labNet)
	}
	RequireRoot(t)
	l := &Lab{ID: newID(t), Subnet: subnet, t: t, nodes: map[string]*Node{}}
	l.SwitchNS = Prefix + l.ID + "-sw"
	l.addNamespace(l.SwitchNS)
	l.must(setSysctls(l.SwitchNS, switchSysctls))
	// No STP, so ports forward as soon as they are up; no multicast
	// snooping, so VRRP adverts are flooded to every port whatever IGMP
	// the nodes send or fail to send.
	l.ip("-n", l.SwitchNS, "link", "add", Bridge, "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	l.ip("-n", l.SwitchNS, "link", "set", Bridge, "up")
	return l
}

// Host returns the address with host number n in the lab's subnet, with the
// subnet's prefix length: Host(11) in 10.77.0.0/24 is 10.77.0.11/24.
func (l *Lab) Host(n int) netip.Prefix {
	l.t.Helper()
	a := l.Subnet.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	size := uint64(1) << (32 - l.Subnet.Bits())
	if n <= 0 || uint64(n) >= size-1 {
		l.t.Fatalf("lab: host number %d does not fit in %s", n, l.Subnet)
	}
	v += uint32(n)
	addr := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return netip.PrefixFrom(addr, l.Subnet.Bits())
}

// Node returns the node called name, or nil.
func (l *Lab) Node(name string) *Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nodes[name]
}

// Command returns a command that runs in the switch namespace, where
// "tcpdump -i br0" sees every frame on the segment. Whatever it starts is
// killed when the lab is removed.
func (l *Lab) Command(name string, args ...string) *exec.Cmd {
	return nsCommand(context.Background(), l.SwitchNS, name, args...)
}

// Run runs a command in the switch namespace and returns its combined
// output, failing the test if it fails.
func (l *Lab) Run(name string, args ...string) string {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := runCmd(nsCommand(ctx, l.SwitchNS, name, args...))
	l.must(err)
	return out
}

// addNamespace creates a namespace and registers its removal at once, so a
// setup that fails half way still leaves nothing behind.
func (l *Lab) addNamespace(ns string) {
	l.t.Helper()
	l.ip("netns", "add", ns)
	l.t.Cleanup(func() {
		if err := removeNamespace(ns); err != nil {
			l.t.Errorf("lab: %v", err)
		}
	})
}

// setSysctls writes net sysctls inside a namespace; keys are dotted and
// relative to net.
func setSysctls(ns string, kv [][2]string) error {
	return do(ns, func() error {
		for _, s := range kv {
			if err := writeSysctl(s[0], s[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

// ip runs iproute2's ip and fails the test if it fails.
func (l *Lab) ip(args ...string) string {
	l.t.Helper()
	out, err := runIP(args...)
	l.must(err)
	return out
}

func (l *Lab) must(err error) {
	l.t.Helper()
	if err != nil {
		l.t.Fatalf("lab: %v", err)
	}
}

// newID returns a random suffix: eight hex digits keep names short and make
// a collision between concurrent test binaries vanishingly unlikely.
func newID(t T) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("lab: random id: %v", err)
	}
	return hex.EncodeToString(b[:])
}

// runIP runs iproute2's ip with a timeout and returns its combined output.
func runIP(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return runCmd(exec.CommandContext(ctx, ipPath(), args...))
}

func runCmd(cmd *exec.Cmd) (string, error) {
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

func ipPath() string {
	p, err := lookPath("ip")
	if err != nil {
		return "ip"
	}
	return p
}
