// Package vrrp implements the Virtual Router Redundancy Protocol for IPv4,
// versions 2 (RFC 3768) and 3 (RFC 5798), as vipvisor needs it: one virtual
// router whose virtual addresses this node holds only while it is master.
//
// The package keeps three layers apart. The codec (packet.go) turns
// advertisements into bytes and back, with no sockets and no clock. The state
// machine (fsm.go) takes events and the current time and returns the actions
// to carry out; it has no goroutines, channels, clock or logger. The I/O layer
// (the socket, the addresses, the announcements and the driver that ties them
// to the state machine) is the only code that touches the kernel.
package vrrp
