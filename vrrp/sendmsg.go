package vrrp

import (
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendmsg sends b with the control messages oob to the socket address at
// to (tolen bytes) on rc, the raw socket of a socket4 or socket6.
//
// The call is a raw system call, which the Go scheduler is not told of:
// an ordinary one wakes the runtime's monitor thread from its idle sleep
// and keeps it polling every 20µs until the process is idle again, which
// at 10 adverts a second was a third of vipvisor's idle CPU. A raw call
// is right for a call that cannot block, and this one cannot: Go's
// sockets are non-blocking, and a full send buffer (EAGAIN) waits for
// room in the poller as any write on the socket does.
func sendmsg(rc syscall.RawConn, b, oob []byte, to unsafe.Pointer, tolen uint32) error {
	iov := unix.Iovec{Base: unsafe.SliceData(b)}
	iov.SetLen(len(b))
	msg := unix.Msghdr{Name: (*byte)(to), Namelen: tolen, Iov: &iov, Control: unsafe.SliceData(oob)}
	msg.SetIovlen(1)
	msg.SetControllen(len(oob))
	var errno syscall.Errno
	err := rc.Write(func(fd uintptr) bool {
		_, _, errno = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), 0)
		return errno != unix.EAGAIN
	})
	if err == nil && errno != 0 {
		err = os.NewSyscallError("sendmsg", errno)
	}
	return err
}

// putCmsg writes one control message of level and typ carrying the n
// bytes at data to the start of oob, which must be 8-byte aligned (as a
// make([]byte) of 8 bytes or more is) and hold unix.CmsgSpace(n) bytes,
// and returns the rest of oob.
func putCmsg(oob []byte, level, typ int32, data unsafe.Pointer, n int) []byte {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(n))
	copy(oob[unix.CmsgLen(0):], unsafe.Slice((*byte)(data), n))
	return oob[unix.CmsgSpace(n):]
}

// writeError is the error of a failed send as ipv4.PacketConn and
// ipv6.PacketConn report it, which the log shows: "write ip
// 0.0.0.0->224.0.0.18: sendmsg: network is unreachable".
func writeError(local net.Addr, dst *net.IPAddr, err error) error {
	return &net.OpError{Op: "write", Net: local.Network(), Source: local, Addr: dst, Err: err}
}
