package lab

import (
	"net/netip"
	"strconv"
)

// attachSysctls are set in an attached namespace on top of nodeSysctls.
// A container runtime may make its namespaces differ from a host's: Docker
// sets ip_unprivileged_port_start to 0, so that any process may bind port
// 80. Put back to the kernel's default, what runs in the node needs the
// privileges it would need on a host's own network.
var attachSysctls = [][2]string{
	{"ipv4.ip_unprivileged_port_start", "1024"},
}

// AttachNode makes a node of a network namespace that something else made
// and owns, such as a container's: the namespace of process pid. The node
// is named and joined to the bridge as AddNode does it (a veth whose node
// end is eth0 with addr, lo and eth0 up, IPv6 off, the kernel's IPv4
// defaults), and the namespace must not have an eth0 yet: a container run
// with --network none has only lo.
//
// The namespace gets a name under /run/netns (ip netns attach), so
// Command, Run, Do and the rest work as for any node. When the test ends
// that name is removed, and with the bridge goes the veth, but nothing
// that runs in the namespace is killed, unlike with AddNode: its owner
// (the container runtime) ends it. The name holds the namespace open, so
// the node keeps its eth0 while the process dies and another joins it.
func (l *Lab) AttachNode(name string, pid int, addr netip.Prefix) *Node {
	l.t.Helper()
	if pid <= 0 {
		l.t.Fatalf("lab: node %s: no process %d to take a network namespace from", name, pid)
	}
	n := l.newNode(name, addr)
	l.ip("netns", "attach", n.NS, strconv.Itoa(pid))
	l.t.Cleanup(func() {
		if _, err := runIP("netns", "del", n.NS); err != nil {
			l.t.Errorf("lab: detach node %s: %v", name, err)
		}
	})
	l.plug(n, nodeSysctls, attachSysctls)
	return n
}
