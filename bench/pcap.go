package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// frame is one captured Ethernet frame.
type frame struct {
	at   time.Time
	data []byte
}

// parsePcap reads a classic pcap file of Ethernet frames, as tcpdump -w
// writes it: microsecond or nanosecond timestamps, either byte order.
func parsePcap(b []byte) ([]frame, error) {
	if len(b) < 24 {
		return nil, errors.New("pcap: short file header")
	}
	var order binary.ByteOrder
	var unit time.Duration
	switch {
	case bytes.Equal(b[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}):
		order, unit = binary.LittleEndian, time.Microsecond
	case bytes.Equal(b[:4], []byte{0x4d, 0x3c, 0xb2, 0xa1}):
		order, unit = binary.LittleEndian, time.Nanosecond
	case bytes.Equal(b[:4], []byte{0xa1, 0xb2, 0xc3, 0xd4}):
		order, unit = binary.BigEndian, time.Microsecond
	case bytes.Equal(b[:4], []byte{0xa1, 0xb2, 0x3c, 0x4d}):
		order, unit = binary.BigEndian, time.Nanosecond
	default:
		return nil, fmt.Errorf("pcap: unknown magic % x", b[:4])
	}
	if link := order.Uint32(b[20:24]); link != 1 {
		return nil, fmt.Errorf("pcap: link type %d, want Ethernet (1)", link)
	}
	var out []frame
	for p := b[24:]; len(p) > 0; {
		// A frame cut short by the end of the capture is dropped.
		if len(p) < 16 {
			break
		}
		n := int(order.Uint32(p[8:12]))
		if len(p) < 16+n {
			break
		}
		at := time.Unix(int64(order.Uint32(p[0:4])), int64(order.Uint32(p[4:8]))*int64(unit))
		out = append(out, frame{at: at, data: p[16 : 16+n]})
		p = p[16+n:]
	}
	return out, nil
}

// packet is what the benchmark reads from a frame: a VRRP advert or an ARP
// packet.
type packet struct {
	at  time.Time
	mac net.HardwareAddr // Ethernet source
	// advert: the IP source, VRRP priority and count of addresses.
	advert      bool
	src         netip.Addr
	prio, count int
	// garp: an ARP packet whose sender and target address are the same.
	garp bool
	ip   netip.Addr
}

// decode reads a frame as a VRRP advert or an ARP packet; ok is false for
// anything else.
func decode(f frame) (packet, bool) {
	d := f.data
	if len(d) < 14 {
		return packet{}, false
	}
	p := packet{at: f.at, mac: net.HardwareAddr(d[6:12])}
	switch binary.BigEndian.Uint16(d[12:14]) {
	case 0x0806: // ARP: htype, ptype, hlen, plen, op, sha, spa, tha, tpa
		a := d[14:]
		if len(a) < 28 {
			return packet{}, false
		}
		spa, tpa := netip.AddrFrom4([4]byte(a[14:18])), netip.AddrFrom4([4]byte(a[24:28]))
		p.ip, p.garp = spa, spa == tpa
		return p, true
	case 0x0800:
		ip := d[14:]
		if len(ip) < 20 || ip[9] != 112 {
			return packet{}, false
		}
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < ihl+8 {
			return packet{}, false
		}
		p.advert, p.src = true, netip.AddrFrom4([4]byte(ip[12:16]))
		p.prio, p.count = int(ip[ihl+2]), int(ip[ihl+3])
		return p, true
	}
	return packet{}, false
}
