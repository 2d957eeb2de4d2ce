package vrrp

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sendmsg sends b with the control messages oob to the socket address at
// to (tolen bytes): through tx, the quiet twin of a socket4 or socket6,
// or, when tx's send buffer is full, through rc, the polled socket itself,
// waiting in the poller for room.
//
// The calls are raw system calls, which the Go scheduler is not told of:
// an ordinary one wakes the runtime's monitor thread from its idle sleep
// and keeps it polling every 20µs until the process is idle again, which
// at 10 adverts a second was a third of vipvisor's idle CPU. A raw call
// is right for a call that cannot block, and neither can: tx's is made
// with MSG_DONTWAIT and rc's socket is non-blocking.
func sendmsg(tx *txSocket, rc syscall.RawConn, b, oob []byte, to unsafe.Pointer, tolen uint32) error {
	iov := unix.Iovec{Base: unsafe.SliceData(b)}
	iov.SetLen(len(b))
	msg := unix.Msghdr{Name: (*byte)(to), Namelen: tolen, Iov: &iov, Control: unsafe.SliceData(oob)}
	msg.SetIovlen(1)
	msg.SetControllen(len(oob))
	var errno syscall.Errno
	err := tx.rc.Write(func(fd uintptr) bool {
		_, _, errno = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), unix.MSG_DONTWAIT)
		return true
	})
	if err == nil && errno == unix.EAGAIN {
		err = rc.Write(func(fd uintptr) bool {
			_, _, errno = unix.RawSyscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&msg)), 0)
			return errno != unix.EAGAIN
		})
	}
	if err == nil && errno != 0 {
		err = os.NewSyscallError("sendmsg", errno)
	}
	return err
}

// txSocket is the send-only twin of a polled raw socket, out of the
// runtime's poller, through which the adverts go.
//
// The poller watches a socket for writing as well as reading, and the
// kernel reports a raw socket writable again each time a sent packet
// leaves it: sent through the polled socket, every advert woke the poller
// once more, a thread with it. The twin is opened and set up for sending
// by the same code as the socket it stands beside, its own receive queue
// closed by a filter that drops every packet, and then moved to a
// blocking descriptor, which the poller never watches.
type txSocket struct {
	f  *os.File
	rc syscall.RawConn
}

// dropAll is a socket filter that accepts no packet: one instruction,
// return 0 (the number of bytes to keep).
var dropAll = []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

// attachDropAll attaches dropAll to the socket fd.
func attachDropAll(fd int) error {
	prog := unix.SockFprog{Len: uint16(len(dropAll)), Filter: &dropAll[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return fmt.Errorf("SO_ATTACH_FILTER: %w", err)
	}
	return nil
}

// openTwin opens the twin of a VRRP socket of IP version 4 or 6 on ifi,
// setSend setting its send options as on the socket itself.
func openTwin(version int, ifi *net.Interface, setSend func(*net.IPConn) error) (*txSocket, error) {
	twin, err := listenRaw(version, ifi.Name, true)
	if err != nil {
		return nil, err
	}
	if err := setSend(twin); err != nil {
		twin.Close()
		return nil, err
	}
	return newTxSocket(twin, ifi.Name)
}

// newTxSocket makes the twin of ipc, opened with attachDropAll in its
// Control function and set up for sending: it moves the socket to a
// blocking descriptor of its own, closes ipc, which takes its descriptor
// out of the poller, and empties the receive queue of whatever arrived
// before the filter did.
func newTxSocket(ipc *net.IPConn, ifname string) (*txSocket, error) {
	defer ipc.Close()
	rc, err := ipc.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("vrrp: send socket on %s: %w", ifname, err)
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, fmt.Errorf("vrrp: send socket on %s: %w", ifname, err)
	}
	if dupErr != nil {
		return nil, fmt.Errorf("vrrp: send socket on %s: dup: %w", ifname, dupErr)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vrrp: send socket on %s: clear O_NONBLOCK: %w", ifname, err)
	}
	var b [1]byte
	for {
		if _, _, err := unix.Recvfrom(fd, b[:], unix.MSG_DONTWAIT); err != nil && err != unix.EINTR {
			break
		}
	}
	f := os.NewFile(uintptr(fd), "vrrp-send:"+ifname)
	if rc, err = f.SyscallConn(); err != nil {
		f.Close()
		return nil, fmt.Errorf("vrrp: send socket on %s: %w", ifname, err)
	}
	return &txSocket{f: f, rc: rc}, nil
}

// Close closes the twin.
func (t *txSocket) Close() error { return t.f.Close() }

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
