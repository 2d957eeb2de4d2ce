package lab

// LinkDown sets the bridge-side end of the node's veth pair down: the node
// sees carrier loss on eth0 (NO-CARRIER) and the segment loses the node.
func (n *Node) LinkDown() { n.setLink(n.lab.SwitchNS, n.Port, "down") }

// LinkUp undoes LinkDown.
func (n *Node) LinkUp() { n.setLink(n.lab.SwitchNS, n.Port, "up") }

// IfaceDown sets the node's own eth0 administratively down, as an operator
// would; its addresses stay, its routes go.
func (n *Node) IfaceDown() { n.setLink(n.NS, Iface, "down") }

// IfaceUp undoes IfaceDown.
func (n *Node) IfaceUp() { n.setLink(n.NS, Iface, "up") }

// Isolate turns bridge port isolation on or off for the node. Isolated
// ports do not exchange frames with one another but still do with every
// other port: isolating two VRRP peers makes a split brain in which both
// still reach the clients and any gateway node.
func (n *Node) Isolate(on bool) {
	state := "off"
	if on {
		state = "on"
	}
	n.t.Helper()
	n.lab.ip("-n", n.lab.SwitchNS, "link", "set", "dev", n.Port, "type", "bridge_slave", "isolated", state)
}

// Detach takes the node's port off the bridge with both ends left up: the
// node keeps its carrier but nothing it sends arrives anywhere, and nothing
// reaches it.
func (n *Node) Detach() {
	n.t.Helper()
	n.lab.ip("-n", n.lab.SwitchNS, "link", "set", "dev", n.Port, "nomaster")
}

// Attach undoes Detach.
func (n *Node) Attach() {
	n.t.Helper()
	n.lab.ip("-n", n.lab.SwitchNS, "link", "set", "dev", n.Port, "master", Bridge)
}

func (n *Node) setLink(ns, dev, state string) {
	n.t.Helper()
	n.lab.ip("-n", ns, "link", "set", "dev", dev, state)
}
