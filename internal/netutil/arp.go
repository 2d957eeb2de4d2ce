package netutil

import (
	"fmt"
	"net"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// ARPFrame wraps an ARP packet in a broadcast Ethernet frame from mac.
func ARPFrame(mac net.HardwareAddr, p *arp.Packet) ([]byte, error) {
	payload, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal ARP packet: %w", err)
	}
	f := &ethernet.Frame{
		Destination: ethernet.Broadcast,
		Source:      mac,
		EtherType:   ethernet.EtherTypeARP,
		Payload:     payload,
	}
	b, err := f.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal Ethernet frame: %w", err)
	}
	return b, nil
}
