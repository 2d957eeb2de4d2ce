package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"

	"golang.org/x/net/bpf"
)

// VRRPBlock selects the VRRP packets (IPv4 protocol 112) that BlockVRRP
// drops. The zero value selects all of them.
type VRRPBlock struct {
	// From, if valid, limits the block to packets with this source
	// address: one direction between two peers.
	From netip.Addr
	// To, if valid, limits the block to packets to this destination. With
	// the group 224.0.0.18 multicast VRRP is lost while unicast VRRP
	// passes, as behind a network that filters multicast.
	To netip.Addr
}

// String describes the block for logs: "VRRP from 10.77.0.11 to 224.0.0.18".
func (b VRRPBlock) String() string {
	s := "VRRP"
	if b.From.IsValid() {
		s += " from " + b.From.String()
	}
	if b.To.IsValid() {
		s += " to " + b.To.String()
	}
	return s
}

// BlockVRRP drops the VRRP packets b selects as they arrive at the node's
// eth0, before any socket of the node sees them, as a firewall on the path
// would: whatever else arrives (ARP, HTTP) passes, and what the node sends
// is untouched, so blocking a→b is b.BlockVRRP(VRRPBlock{From: a's address}).
// Blocks add up; UnblockVRRP lifts them all at once.
//
// The mechanism is a tc ingress qdisc with one cls_bpf filter per block,
// a classic BPF program run in direct-action mode: it needs neither
// iptables nor nft nor the gact action module (which CI's kernel lacks),
// only the ingress qdisc and cls_bpf. Only arrivals are filtered: a drop on
// the node's own egress would be reported to the sending socket as an
// error (ENOBUFS), which a lossy network never does.
func (n *Node) BlockVRRP(b VRRPBlock) {
	n.t.Helper()
	if !n.hasIngressQdisc() {
		n.tc("qdisc", "add", "dev", Iface, "ingress")
	}
	n.tc("filter", "add", "dev", Iface, "ingress", "protocol", "all", "bpf", "da",
		"bytecode", vrrpDropProgram(b))
}

// UnblockVRRP lifts every BlockVRRP of the node. It does nothing when
// there is none.
func (n *Node) UnblockVRRP() {
	n.t.Helper()
	if n.hasIngressQdisc() {
		n.tc("qdisc", "del", "dev", Iface, "ingress")
	}
}

func (n *Node) hasIngressQdisc() bool {
	n.t.Helper()
	return strings.Contains(n.tc("qdisc", "show", "dev", Iface), "qdisc ingress ffff:")
}

// tc runs iproute2's tc in the node's namespace and fails the test if it
// fails.
func (n *Node) tc(args ...string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	path, err := lookPath("tc")
	if err != nil {
		n.t.Fatalf("lab: node %s: %v (iproute2's tc is needed to block VRRP)", n.Name, err)
	}
	out, err := runCmd(exec.CommandContext(ctx, path, append([]string{"-n", n.NS}, args...)...))
	if err != nil {
		n.t.Fatalf("lab: node %s: %v", n.Name, err)
	}
	return out
}

// The verdicts a direct-action tc program returns (linux/pkt_cls.h).
const (
	tcActShot   = 2          // TC_ACT_SHOT: drop the packet
	tcActUnspec = 0xffffffff // TC_ACT_UNSPEC (-1): let the next filter decide
)

// Offsets in a frame as a tc ingress program sees it, from the start of
// the Ethernet header (IPv4 without options needs no more: the fields used
// come before the options).
const (
	offEtherType = 12
	offIPProto   = 14 + 9
	offIPSrc     = 14 + 12
	offIPDst     = 14 + 16
)

// vrrpDropProgram returns, in tc's "bytecode" notation ("count,op jt jf
// k,..."), a classic BPF program that returns TC_ACT_SHOT for the IPv4
// packets of protocol 112 that b selects and TC_ACT_UNSPEC for the rest.
func vrrpDropProgram(b VRRPBlock) string {
	// Each test jumps to the last instruction, "pass", when it fails; the
	// skips are filled in once the program's length is known.
	type test struct {
		off, size int
		val       uint32
	}
	tests := []test{{offEtherType, 2, 0x0800}, {offIPProto, 1, 112}}
	if b.From.IsValid() {
		tests = append(tests, test{offIPSrc, 4, be32(b.From)})
	}
	if b.To.IsValid() {
		tests = append(tests, test{offIPDst, 4, be32(b.To)})
	}
	var prog []bpf.Instruction
	pass := 2*len(tests) + 1 // index of the final instruction
	for _, c := range tests {
		prog = append(prog, bpf.LoadAbsolute{Off: uint32(c.off), Size: c.size})
		jump := len(prog)
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: c.val, SkipTrue: uint8(pass - jump - 1)})
	}
	prog = append(prog, bpf.RetConstant{Val: tcActShot}, bpf.RetConstant{Val: tcActUnspec})
	raw, err := bpf.Assemble(prog)
	if err != nil {
		// The program is built from constants and addresses: an error is
		// a bug here, not a condition of the machine.
		panic(fmt.Sprintf("lab: assemble VRRP filter: %v", err))
	}
	parts := []string{fmt.Sprint(len(raw))}
	for _, r := range raw {
		parts = append(parts, fmt.Sprintf("%d %d %d %d", r.Op, r.Jt, r.Jf, r.K))
	}
	return strings.Join(parts, ",")
}

// be32 is an IPv4 address as the big-endian word BPF loads compare with.
// An address that is not IPv4 matches nothing real: 0.0.0.0.
func be32(a netip.Addr) uint32 {
	if !a.Unmap().Is4() {
		return 0
	}
	b := a.Unmap().As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
