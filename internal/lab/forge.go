package lab

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
)

// VRRPGroup is the IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2).
var VRRPGroup = netip.MustParseAddr("224.0.0.18")

// maxFlood bounds the packets one Flood may send, so that no test can turn
// the lab into a load generator by mistake.
const maxFlood = 100_000

// Forged is one IPv4 packet of protocol 112 for a Forger to send. The
// forger writes the IP header itself, so source and TTL are whatever the
// packet says, as an attacker's would be.
type Forged struct {
	// Src is the source address; zero means the node's own.
	Src netip.Addr
	// Dst is the destination; zero means VRRPGroup.
	Dst netip.Addr
	// TTL is the time to live; zero means 255, what a VRRP router sends.
	TTL int
	// Payload is the VRRP message, valid or not.
	Payload []byte
}

// Forger sends hand-made VRRP packets from a node: adverts built by the
// test, and garbage of any kind. It is a raw IPv4 socket of protocol 112
// with IP_HDRINCL, opened inside the node's namespace (through Do) and
// kept there; it reads nothing. Its methods may be called from any
// goroutine.
type Forger struct {
	node *Node
	mu   sync.Mutex
	conn *ipv4.RawConn
}

// Forger opens a forger on the node's eth0, closed when the test ends.
func (n *Node) Forger() *Forger {
	n.t.Helper()
	f := &Forger{node: n}
	err := n.Do(func() error {
		c, err := net.ListenPacket("ip4:112", "0.0.0.0")
		if err != nil {
			return err
		}
		rc, err := ipv4.NewRawConn(c)
		if err != nil {
			c.Close()
			return err
		}
		ifi, err := net.InterfaceByName(Iface)
		if err == nil {
			// Multicast has no route in a node: the interface is named.
			err = rc.SetMulticastInterface(ifi)
		}
		if err == nil {
			// A raw socket of protocol 112 also receives every VRRP
			// packet; this one keeps none.
			err = rc.SetBPF(dropAll)
		}
		if err != nil {
			rc.Close()
			return err
		}
		f.conn = rc
		return nil
	})
	if err != nil {
		n.t.Fatalf("lab: node %s: open a raw VRRP socket: %v", n.Name, err)
	}
	n.t.Cleanup(func() { f.conn.Close() })
	return f
}

// dropAll is a socket filter that keeps no packet.
var dropAll = func() []bpf.RawInstruction {
	raw, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		panic(err)
	}
	return raw
}()

// Send sends one packet.
func (f *Forger) Send(p Forged) error {
	h := f.header(p)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.conn.WriteTo(h, p.Payload, nil); err != nil {
		return fmt.Errorf("lab: node %s: send %d bytes to %s: %w", f.node.Name, len(p.Payload), h.Dst, err)
	}
	return nil
}

func (f *Forger) header(p Forged) *ipv4.Header {
	src, dst, ttl := p.Src, p.Dst, p.TTL
	if !src.IsValid() {
		src = f.node.Addr.Addr()
	}
	if !dst.IsValid() {
		dst = VRRPGroup
	}
	if ttl == 0 {
		ttl = 255
	}
	return &ipv4.Header{
		Version:  ipv4.Version,
		Len:      ipv4.HeaderLen,
		TOS:      0xc0, // internetwork control, as VRRP routers send
		TotalLen: ipv4.HeaderLen + len(p.Payload),
		TTL:      ttl,
		Protocol: 112,
		Src:      src.AsSlice(),
		Dst:      dst.AsSlice(),
	}
}

// Flood sends the packets of ps in turn, over and over, rate packets a
// second for d: rate × d packets, spread evenly over d, and returns how
// many it sent. A machine that falls behind sends what is still due in one
// burst at the end. At most 100,000 packets are sent, whatever rate and d
// say; the first send error ends the flood.
func (f *Forger) Flood(ps []Forged, rate int, d time.Duration) (int, error) {
	if len(ps) == 0 || rate <= 0 || d <= 0 {
		return 0, nil
	}
	total := min(int(int64(rate)*int64(d)/int64(time.Second)), maxFlood)
	start := time.Now()
	sent := 0
	for sent < total {
		elapsed := time.Since(start)
		due := total
		if elapsed < d {
			due = min(int(int64(rate)*int64(elapsed)/int64(time.Second))+1, total)
		}
		for ; sent < due; sent++ {
			if err := f.Send(ps[sent%len(ps)]); err != nil {
				return sent, err
			}
		}
		if sent < total {
			// Pacing, not waiting for a condition: the sends of the
			// next millisecond are due then.
			time.Sleep(time.Millisecond)
		}
	}
	return sent, nil
}

// SetVRRPv3Checksum writes into msg, a VRRPv3 message, the checksum it must
// carry when sent from src to dst (RFC 5798 §5.2.8: RFC 1071 over the IPv4
// pseudo-header and the message). Tests use it to make packets that are
// wrong in one field only, such as VRID 0 with a valid checksum; msg must
// be at least 8 bytes.
func SetVRRPv3Checksum(msg []byte, src, dst netip.Addr) {
	msg[6], msg[7] = 0, 0
	s, d := src.Unmap().As4(), dst.Unmap().As4()
	sum := uint32(112) + uint32(len(msg))
	for _, b := range [][]byte{s[:], d[:], msg} {
		for i := 0; i < len(b); i += 2 {
			w := uint32(b[i]) << 8
			if i+1 < len(b) {
				w |= uint32(b[i+1])
			}
			sum += w
		}
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(msg[6:8], ^uint16(sum))
}
