package vrrp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vipvisor/vipvisor/internal/lab"
)

// Captures: keepalived's adverts read from pcap files as codec test
// vectors, and ours written to pcap files for tshark to judge.

// pktCaptured is a VRRP packet read from a capture.
type pktCaptured struct {
	src, dst netip.Addr
	ttl      uint8 // IPv4 TTL or IPv6 hop limit
	payload  []byte
}

// pktReadPcap reads the VRRP packets, IPv4 or IPv6, of a little-endian
// pcap file with Ethernet framing, as tcpdump writes it on a veth.
func pktReadPcap(t *testing.T, path string) []pktCaptured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le, be := binary.LittleEndian, binary.BigEndian
	if len(data) < 24 || le.Uint32(data) != 0xa1b2c3d4 || le.Uint32(data[20:]) != 1 {
		t.Fatalf("%s: not a little-endian Ethernet pcap", path)
	}
	var pkts []pktCaptured
	for p := data[24:]; len(p) > 0; {
		if len(p) < 16 || len(p) < 16+int(le.Uint32(p[8:])) {
			t.Fatalf("%s: truncated record", path)
		}
		frame := p[16 : 16+le.Uint32(p[8:])]
		p = p[16+len(frame):]
		if len(frame) < 14+20 || binary.BigEndian.Uint16(frame[12:]) == 0x86dd && len(frame) < 14+40 {
			t.Fatalf("%s: frame too short for IPv4 or IPv6 with VRRP: %x", path, frame)
		}
		ip := frame[14:]
		switch be.Uint16(frame[12:]) {
		case 0x0800:
			ihl := int(ip[0]&0x0f) * 4
			total := int(be.Uint16(ip[2:]))
			if ip[9] != ipProtoVRRP || total > len(ip) || total < ihl {
				t.Fatalf("%s: not a whole VRRP packet: %x", path, ip)
			}
			pkts = append(pkts, pktCaptured{src: netip.AddrFrom4([4]byte(ip[12:16])), dst: netip.AddrFrom4([4]byte(ip[16:20])),
				ttl: ip[8], payload: ip[ihl:total]})
		case 0x86dd:
			n := int(be.Uint16(ip[4:]))
			if ip[6] != ipProtoVRRP || 40+n > len(ip) {
				t.Fatalf("%s: not a whole VRRP packet without extension headers: %x", path, ip)
			}
			pkts = append(pkts, pktCaptured{src: netip.AddrFrom16([16]byte(ip[8:24])), dst: netip.AddrFrom16([16]byte(ip[24:40])),
				ttl: ip[7], payload: ip[40 : 40+n]})
		default:
			t.Fatalf("%s: neither IPv4 nor IPv6: %x", path, frame)
		}
	}
	return pkts
}

// TestVectorsMatchCaptures ties the literal table to the captures: every
// vector is in its capture with the same addresses, and every packet of the
// captures decodes and re-encodes to its own bytes.
func TestVectorsMatchCaptures(t *testing.T) {
	captures := map[string][]pktCaptured{}
	for _, v := range pktVectors {
		if captures[v.pcap] == nil {
			captures[v.pcap] = pktReadPcap(t, filepath.Join("testdata", v.pcap))
		}
		want := pktHex(t, v.payload)
		found := false
		for _, p := range captures[v.pcap] {
			found = found || bytes.Equal(p.payload, want) && p.src.String() == v.src
		}
		if !found {
			t.Errorf("%s: payload %x from %s not in testdata/%s", v.name, want, v.src, v.pcap)
		}
	}
	for name, pkts := range captures {
		for i, p := range pkts {
			// keepalived 2.2.7 sends IPv6 unicast with the default hop
			// limit, 64; a unicast receiver checks none (as keepalived).
			if want := pktWantTTL(name); p.ttl != want {
				t.Errorf("%s packet %d: TTL %d, want %d", name, i+1, p.ttl, want)
			}
			a := Advert{Src: p.src, Dst: p.dst}
			if strings.Contains(name, "old-checksum") {
				a.Dst = pktGroup
			}
			if err := a.UnmarshalBinary(p.payload); err != nil {
				t.Errorf("%s packet %d: %v", name, i+1, err)
				continue
			}
			if b := pktMarshal(t, a); !bytes.Equal(b, p.payload) {
				t.Errorf("%s packet %d re-encoded (-want +got):\n-%x\n+%x", name, i+1, p.payload, b)
			}
		}
	}
}

func pktWantTTL(capture string) uint8 {
	if capture == "keepalived-v6-unicast.pcap" {
		return 64
	}
	return 255
}

// TestTsharkAcceptsMarshalled writes adverts this package encodes into a
// pcap and has Wireshark's dissector check them: an implementation other
// than ours and keepalived's. It needs tshark: CI installs it, and with
// CI=true its absence is a failure; elsewhere the test skips without it.
func TestTsharkAcceptsMarshalled(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		lab.Skip(t, "tshark not installed")
	}
	nopseudo := Advert{Version: 3, VRID: 9, Priority: 1, Interval: 30 * time.Millisecond,
		Addrs: []netip.Addr{pktVIP100}, Src: pktKeepalived, Dst: pktGroup, ChecksumNoPseudo: true}
	tests := []struct {
		a      Advert
		option string // a Wireshark preference
	}{
		{a: pktVectors[0].want},
		{a: Advert{Version: 2, VRID: 200, Priority: 255, Interval: 255 * time.Second, Addrs: []netip.Addr{pktVIP111}, Src: pktPeer, Dst: pktGroup}},
		{a: pktVectors[2].want},
		{a: pktVectors[4].want},
		{a: Advert{Version: 3, VRID: 1, Priority: 254, Interval: 40950 * time.Millisecond, Addrs: []netip.Addr{pktVIP100, pktVIP101, pktVIP102, pktVIP110}, Src: pktPeer, Dst: pktKeepalived}},
		{a: nopseudo, option: "vrrp.v3_checksum_as_in_v2:TRUE"},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "advert.pcap")
			pktWritePcap(t, path, tc.a, pktMarshal(t, tc.a))
			args := []string{"-r", path, "-T", "fields", "-E", "separator=,",
				"-e", "vrrp.version", "-e", "vrrp.virt_rtr_id", "-e", "vrrp.prio",
				"-e", "vrrp.addr_count", "-e", "vrrp.checksum.status"}
			if tc.option != "" {
				args = append(args, "-o", tc.option)
			}
			out, err := exec.Command(tshark, args...).Output()
			if err != nil {
				t.Fatalf("tshark %s: %v", strings.Join(args, " "), err)
			}
			// vrrp.checksum.status 1 is "Good".
			want := fmt.Sprintf("%d,%d,%d,%d,1", tc.a.Version, tc.a.VRID, tc.a.Priority, len(tc.a.Addrs))
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("tshark fields (-want +got):\n-%s\n+%s", want, got)
			}
		})
	}
}

// pktWritePcap writes one IPv4 packet carrying payload from a.Src to a.Dst,
// as a pcap file of link type 228 (raw IPv4).
func pktWritePcap(t *testing.T, path string, a Advert, payload []byte) {
	t.Helper()
	ip := make([]byte, 20, 20+len(payload))
	ip[0], ip[1] = 0x45, 0xc0
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
	ip[8], ip[9] = 255, ipProtoVRRP
	src, dst := a.Src.As4(), a.Dst.As4()
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum16(0, ip)))
	ip = append(ip, payload...)

	le := binary.LittleEndian
	var f []byte
	f = le.AppendUint32(f, 0xa1b2c3d4)
	f = le.AppendUint16(f, 2)
	f = le.AppendUint16(f, 4)
	f = le.AppendUint32(f, 0) // time zone
	f = le.AppendUint32(f, 0) // accuracy
	f = le.AppendUint32(f, 65535)
	f = le.AppendUint32(f, 228)
	f = le.AppendUint32(f, 0) // seconds
	f = le.AppendUint32(f, 0) // microseconds
	f = le.AppendUint32(f, uint32(len(ip)))
	f = le.AppendUint32(f, uint32(len(ip)))
	f = append(f, ip...)
	if err := os.WriteFile(path, f, 0o644); err != nil {
		t.Fatal(err)
	}
}
