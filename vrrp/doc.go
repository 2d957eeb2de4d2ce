// Package vrrp implements the Virtual Router Redundancy Protocol, versions
// 2 (RFC 3768, IPv4) and 3 (RFC 5798, IPv4 and IPv6), as vipvisor needs it:
// virtual routers whose virtual addresses this node holds only while it is
// master.
//
// Other packages see little of it: Config (one virtual router's settings),
// Group (the virtual routers of one process, tied to one child's health),
// its Change and InstanceStatus reports, the codec's Advert, the timers'
// MasterDownInterval, and RemoveStaleVIPs for the guard that clears up
// after a vipvisor that is gone.
//
// The package keeps three layers apart. The codec (packet.go) turns
// advertisements into bytes and back, with no sockets and no clock. The state
// machine (fsm.go) takes events and the current time and returns the actions
// to carry out; it has no goroutines, channels, clock or logger. The I/O layer
// (the socket, the addresses, the announcements and the driver that ties them
// to the state machine) is the only code that touches the kernel.
//
// Beyond the RFCs, the state machine bounds what a forged packet can do:
// a master answers lower-priority and priority-0 adverts at most once per
// advert interval (answer.go), and a backup adopts another advertised
// interval only after three adverts in a row from the same master
// (timers.go). It reports split brains (another master heard; the driver
// adds a VIP answered by another MAC address, watched by ARP while
// master), and a master that loses one announces the addresses once on
// behalf of the winner (handOver), since only the loser knows that
// clients may still hold its MAC address. The driver counts all of it
// (counters.go) for /status and /metrics.
package vrrp
