package vrrp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"

	"github.com/vipvisor/vipvisor/internal/netutil"
)

// arpAnnouncer sends gratuitous ARP for the VIPs, so that neighbours and
// switches learn that they are now reached at this node's MAC address.
//
// Like vipSet, an arpAnnouncer belongs to the network namespace of the thread
// that called newARPAnnouncer, and opens its socket there whichever
// goroutine calls Announce. Announce may be called concurrently; Close
// may not be called concurrently with it.
type arpAnnouncer struct {
	ifname string
	vips   []netip.Addr
	log    *slog.Logger
	ns     netns.NsHandle
	nsErr  error

	// closing tracks sockets being closed in the background: closing a
	// packet socket waits for an RCU grace period (synchronize_net in the
	// kernel's packet_release), 5-15ms measured, and the frames are
	// queued by then, so Announce does not wait for it.
	closing sync.WaitGroup

	mu    sync.Mutex
	early *earlyRound // the first round, sent VIP by VIP as each is added
}

// earlyRound is a first round of announcements under way: First sends it
// for each VIP as soon as vipSet.Add has added it, so that the last of
// many VIPs is not announced only after every other one was added and
// announced; the next Announce sends the rest and leaves out what went.
type earlyRound struct {
	conn *packet.Conn
	mac  net.HardwareAddr
	sent map[netip.Addr]bool
}

// First sends the ARP request of vip's first round at once, on a socket
// kept for the Announce that follows; that Announce then completes the
// round with the reply and sends the others. The request alone is what
// keepalived sends and most switches heed, and it is half the frames, so
// the last of many VIPs is announced twice as soon. A failure is left to
// Announce, which then sends vip every round.
func (a *arpAnnouncer) First(vip netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.early == nil {
		conn, mac, err := a.open(false)
		if err != nil {
			a.log.Debug("announcing VIPs as they are added: socket", "iface", a.ifname, "err", err)
			return
		}
		a.early = &earlyRound{conn: conn, mac: mac, sent: map[netip.Addr]bool{}}
	}
	frames, err := announcements(a.early.mac, a.early.mac, []netip.Addr{vip})
	if err != nil {
		return
	}
	if _, err := a.send(a.early.conn, frames[:1], 1); err == nil {
		a.early.sent[vip] = true
	}
}

// takeEarly returns the first round under way, if any, and ends it.
func (a *arpAnnouncer) takeEarly() *earlyRound {
	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.early
	a.early = nil
	return e
}

// newARPAnnouncer returns an arpAnnouncer for the addresses vips on ifname. It
// opens nothing yet: Announce opens a socket each time it runs, so an
// interface that was down or re-created in between does not matter. A nil
// log discards messages.
func newARPAnnouncer(ifname string, vips []netip.Addr, log *slog.Logger) *arpAnnouncer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &arpAnnouncer{ifname: ifname, vips: slices.Clone(vips), log: log}
	runtime.LockOSThread()
	a.ns, a.nsErr = netutil.ThisNetns()
	runtime.UnlockOSThread()
	return a
}

// Close waits for the sockets of past announcements to be closed and
// releases the namespace handle.
func (a *arpAnnouncer) Close() error {
	if e := a.takeEarly(); e != nil {
		e.conn.Close()
	}
	a.closing.Wait()
	if a.nsErr != nil {
		return nil
	}
	return a.ns.Close()
}

// Announce sends rounds rounds of announcements back to back. A round
// has, for every VIP in turn, two broadcast frames from the interface's
// MAC address:
//
//   - an ARP request whose sender and target protocol addresses are both
//     the VIP and whose target hardware address is the broadcast address
//     (an ARP Announcement, RFC 5227 §2.3, as keepalived sends it);
//   - an ARP reply with the same addresses whose target hardware address
//     is the sender's own (RFC 5944 §4.6), for the switches and hosts that
//     heed replies rather than requests. The target hardware address is
//     the sender's, not broadcast, because RFC 5944 says so and because
//     Linux counts a reply as gratuitous (and lets it override a recently
//     confirmed entry) only when target and sender hardware addresses
//     agree.
//
// There is no pause between rounds: keepalived, too, sends its burst back
// to back by default, and a second burst later (keepalived's
// garp_master_delay) is the caller's to schedule.
//
// Announce goes on after a frame fails to send and returns an error that
// counts the failures. Unlike arp.Dial, it does not need an IPv4 address on
// the interface: it builds the frames itself and only needs a raw socket.
func (a *arpAnnouncer) Announce(rounds int) error {
	early := a.takeEarly()
	if rounds <= 0 || len(a.vips) == 0 {
		if early != nil {
			a.closing.Go(func() { early.conn.Close() })
		}
		return nil
	}
	var conn *packet.Conn
	var mac net.HardwareAddr
	if early != nil {
		conn, mac = early.conn, early.mac
	} else {
		var err error
		if conn, mac, err = a.open(false); err != nil {
			return err
		}
	}
	defer a.closing.Go(func() { conn.Close() })
	all, err := announcements(mac, mac, a.vips)
	if err != nil {
		return fmt.Errorf("vrrp: announce on %s: %w", a.ifname, err)
	}
	// The VIPs First announced as they were added have had the request
	// of their first round.
	first := make([][]byte, 0, len(all))
	sentEarly := 0
	for k, vip := range a.vips {
		if early != nil && early.sent[vip] {
			first = append(first, all[2*k+1])
			sentEarly++
		} else {
			first = append(first, all[2*k], all[2*k+1])
		}
	}
	n1, err1 := a.send(conn, first, 1)
	n2, err2 := a.send(conn, all, rounds-1)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	a.log.Debug("announced VIPs", "iface", a.ifname, "vips", len(a.vips), "rounds", rounds, "frames", n1+n2,
		"sent_as_added", sentEarly)
	return nil
}

// send writes rounds rounds of frames to the broadcast address, going on
// after a failure, and returns how many frames it wrote.
func (a *arpAnnouncer) send(conn *packet.Conn, frames [][]byte, rounds int) (int, error) {
	dst := &packet.Addr{HardwareAddr: ethernet.Broadcast}
	var failed int
	var first error
	for range rounds {
		for _, f := range frames {
			if _, err := conn.WriteTo(f, dst); err != nil {
				failed++
				if first == nil {
					first = err
				}
			}
		}
	}
	total := rounds * len(frames)
	if failed > 0 {
		return total - failed, fmt.Errorf("vrrp: announce on %s: %d of %d frames not sent: %w",
			a.ifname, failed, total, first)
	}
	return total, nil
}

// open opens a raw packet socket for ARP on the interface, in the
// Announcer's namespace, and returns it with the interface's MAC address.
// With watch, the socket only passes frames that conflictFilter lets
// through.
func (a *arpAnnouncer) open(watch bool) (*packet.Conn, net.HardwareAddr, error) {
	if a.nsErr != nil {
		return nil, nil, fmt.Errorf("vrrp: announce on %s: network namespace: %w", a.ifname, a.nsErr)
	}
	var conn *packet.Conn
	var mac net.HardwareAddr
	err := netutil.RunInNetns(a.ns, func() error {
		ifi, err := net.InterfaceByName(a.ifname)
		if err != nil {
			return err
		}
		if len(ifi.HardwareAddr) != len(ethernet.Broadcast) {
			return fmt.Errorf("not an Ethernet interface (hardware address %q)", ifi.HardwareAddr)
		}
		mac = ifi.HardwareAddr
		var cfg *packet.Config
		if watch {
			if cfg, err = conflictFilter(mac, a.vips); err != nil {
				return err
			}
		}
		conn, err = packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), cfg)
		return err
	})
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, nil, fmt.Errorf("vrrp: announce on %s: open ARP socket: %w", a.ifname, err)
	}
	return conn, mac, nil
}

// announcements returns one round of frames: for each VIP the request
// form and the reply form that Announce describes, with mac as the ARP
// sender hardware address and src as the Ethernet source. They differ in
// a hand-over only (HandOver).
func announcements(mac, src net.HardwareAddr, vips []netip.Addr) ([][]byte, error) {
	frames := make([][]byte, 0, 2*len(vips))
	for _, vip := range vips {
		if !vip.Is4() {
			return nil, fmt.Errorf("VIP %s: not an IPv4 address", vip)
		}
		req, err := arp.NewPacket(arp.OperationRequest, mac, vip, ethernet.Broadcast, vip)
		if err != nil {
			return nil, fmt.Errorf("VIP %s: %w", vip, err)
		}
		rep, err := arp.NewPacket(arp.OperationReply, mac, vip, mac, vip)
		if err != nil {
			return nil, fmt.Errorf("VIP %s: %w", vip, err)
		}
		for _, p := range []*arp.Packet{req, rep} {
			f, err := netutil.ARPFrame(src, p)
			if err != nil {
				return nil, fmt.Errorf("VIP %s: %w", vip, err)
			}
			frames = append(frames, f)
		}
	}
	return frames, nil
}
