package vrrp

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
)

// Watch reports, until ctx ends, every ARP frame on the interface that
// claims one of the VIPs for another station: its ARP sender protocol
// address is a VIP and neither its sender hardware address nor its
// Ethernet source is our MAC address. While this node is master, such a
// frame means another node answers for our address: a split brain that
// adverts did not reveal (say, VRRP is filtered one way). Our own frames,
// our hand-overs included (their Ethernet source is ours), and a peer's
// hand-over to us (its sender is our MAC) are not conflicts.
//
// A BPF filter on the socket passes only ARP frames whose sender is a VIP
// and whose Ethernet source is not ours, so the ARP traffic of a busy LAN
// costs no wake-ups. A report that finds out full is dropped: the master
// answers at most one per interval anyway. Watch returns nil once ctx
// ends, or the error that ended it.
func (a *arpAnnouncer) Watch(ctx context.Context, out chan<- addressConflict) error {
	if len(a.vips) == 0 {
		<-ctx.Done()
		return nil
	}
	conn, mac, err := a.open(true)
	if err != nil {
		return err
	}
	defer a.closing.Go(func() { conn.Close() })
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, 256)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("vrrp: watch ARP on %s: %w", a.ifname, err)
		}
		if c, ok := conflictIn(buf[:n], mac, a.vips); ok {
			select {
			case out <- c:
			default:
			}
		}
	}
}

// conflictIn reports whether frame is an ARP frame from another station
// that claims one of vips, as Watch describes.
func conflictIn(frame []byte, mac net.HardwareAddr, vips []netip.Addr) (addressConflict, bool) {
	if len(frame) < 12 || bytes.Equal(frame[6:12], mac) {
		return addressConflict{}, false
	}
	p, ok := arpIn(frame)
	if !ok || !slices.Contains(vips, p.SenderIP) || bytes.Equal(p.SenderHardwareAddr, mac) {
		return addressConflict{}, false
	}
	return addressConflict{VIP: p.SenderIP, MAC: slices.Clone(p.SenderHardwareAddr)}, true
}

// Offsets into an Ethernet frame carrying an ARP packet for IPv4.
const (
	ethSrcOff    = 6                  // Ethernet source address
	arpSenderOff = 14 + 8 + 6         // ARP sender protocol address
	arpSnapLen   = 14 + 28 + 18 + 100 // a padded ARP frame, with room
)

// conflictFilter is the BPF program of Watch's socket: it passes frames
// whose ARP sender protocol address is one of vips and whose Ethernet
// source is not mac. The socket's protocol already limits it to ARP;
// conflictIn checks the rest.
func conflictFilter(mac net.HardwareAddr, vips []netip.Addr) (*packet.Config, error) {
	if len(mac) != 6 {
		return nil, fmt.Errorf("not an Ethernet address: %v", mac)
	}
	prog := []bpf.Instruction{bpf.LoadAbsolute{Off: arpSenderOff, Size: 4}}
	for k, vip := range vips {
		if !vip.Is4() {
			return nil, fmt.Errorf("VIP %s: not an IPv4 address", vip)
		}
		// A match skips the other comparisons and the reject after them.
		skip := uint8(len(vips) - k)
		prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(vip.AsSlice()), SkipTrue: skip})
	}
	prog = append(prog,
		bpf.RetConstant{Val: 0},
		bpf.LoadAbsolute{Off: ethSrcOff, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: binary.BigEndian.Uint32(mac[:4]), SkipFalse: 2},
		bpf.LoadAbsolute{Off: ethSrcOff + 4, Size: 2},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(binary.BigEndian.Uint16(mac[4:])), SkipTrue: 1},
		bpf.RetConstant{Val: arpSnapLen},
		bpf.RetConstant{Val: 0},
	)
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assemble ARP filter: %w", err)
	}
	return &packet.Config{Filter: raw}, nil
}
