package lab

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// pingRetry is how often Ping repeats its echo request.
const pingRetry = 200 * time.Millisecond

// Ping sends ICMP echo requests from the node to dst, in process through a
// raw socket opened by Do, until a reply comes or timeout passes. It needs
// no ping binary.
func (n *Node) Ping(dst netip.Addr, timeout time.Duration) error {
	var c net.PacketConn
	err := n.Do(func() error {
		var err error
		c, err = net.ListenPacket("ip4:icmp", "0.0.0.0")
		return err
	})
	if err != nil {
		return fmt.Errorf("ping %s from %s: %w", dst, n.Name, err)
	}
	defer c.Close()
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	deadline := time.Now().Add(timeout)
	for seq := uint16(1); time.Now().Before(deadline); seq++ {
		if _, err := c.WriteTo(echoRequest(id, seq), &net.IPAddr{IP: dst.AsSlice()}); err != nil {
			return fmt.Errorf("ping %s from %s: %w", dst, n.Name, err)
		}
		wait := time.Now().Add(pingRetry)
		if wait.After(deadline) {
			wait = deadline
		}
		if awaitEcho(c, dst, id, wait) {
			return nil
		}
	}
	return fmt.Errorf("ping %s from %s: no reply within %v", dst, n.Name, timeout)
}

// awaitEcho reads until an echo reply with our identifier arrives from dst
// or the deadline passes. The reply to any earlier sequence number counts:
// it shows the path works.
func awaitEcho(c net.PacketConn, dst netip.Addr, id uint16, deadline time.Time) bool {
	_ = c.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return false
		}
		ip, ok := from.(*net.IPAddr)
		if !ok || n < 8 || buf[0] != 0 || binary.BigEndian.Uint16(buf[4:]) != id {
			continue
		}
		if a, ok := netip.AddrFromSlice(ip.IP); ok && a.Unmap() == dst {
			return true
		}
	}
}

// echoRequest builds an ICMP echo request (RFC 792).
func echoRequest(id, seq uint16) []byte {
	b := []byte{8, 0, 0, 0, 0, 0, 0, 0, 'v', 'v', 'l', 'a', 'b'}
	binary.BigEndian.PutUint16(b[4:], id)
	binary.BigEndian.PutUint16(b[6:], seq)
	binary.BigEndian.PutUint16(b[2:], checksum(b))
	return b
}

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
