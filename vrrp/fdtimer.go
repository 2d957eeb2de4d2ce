package vrrp

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fdTimer is the instance loop's one timer, the machine's Deadline, kept
// on a timerfd that the runtime's poller watches rather than in the
// runtime's own timers.
//
// At 10 adverts a second the timer is most of what an idle master does,
// and a runtime timer costs it three wake-ups more than it needs. The
// poller sleeps in epoll_wait for whole milliseconds, rounded down, so it
// wakes just before the deadline and again a millisecond later; and the
// runtime's monitor thread, asleep while the process idles, sleeps only
// until the next runtime timer, so it wakes at every advert too and then
// polls every 20µs until the process is idle again. A timerfd fires at
// the deadline to the nanosecond, through the poller, and the monitor
// does not know of it. Reads and settings are raw system calls for the
// monitor's sake (see sendmsg); neither can block.
//
// Its channel C behaves as a runtime timer's since Go 1.23: it holds at
// most one fire, and after Reset or Stop it holds none of an earlier
// arming.
type fdTimer struct {
	f  *os.File
	rc syscall.RawConn
	C  <-chan time.Time
	c  chan time.Time
	// mu makes a read of an expiry and its delivery to c one step, which
	// Reset and Stop (emptying c, then setting the timer, which clears
	// the count of expiries) come before or after.
	mu sync.Mutex
}

// loopTimer is the instance loop's timer: an fdTimer, or in the tests
// run in a synctest bubble, whose fake clock moves runtime timers only, a
// time.Timer.
type loopTimer interface {
	Chan() <-chan time.Time
	Reset(d time.Duration)
	Stop()
	Close() error
}

// newLoopTimer makes the instance loop's timer.
var newLoopTimer = func() (loopTimer, error) {
	t, err := newFDTimer()
	if err != nil {
		return nil, err
	}
	return t, nil
}

// newFDTimer returns a stopped timer. Close releases it.
func newFDTimer() (*fdTimer, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("vrrp: timerfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "timerfd")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("vrrp: timerfd: %w", err)
	}
	c := make(chan time.Time, 1)
	t := &fdTimer{f: f, rc: rc, C: c, c: c}
	go t.run()
	return t, nil
}

// run delivers each expiry to C until the timer is closed.
func (t *fdTimer) run() {
	var n uint64 // expiries since the last read
	var errno syscall.Errno
	// One closure for every read, not one allocated per expiry.
	read := func(fd uintptr) bool {
		t.mu.Lock()
		defer t.mu.Unlock()
		_, _, errno = unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&n)), 8)
		if errno == 0 {
			select {
			case t.c <- time.Now():
			default: // one fire is pending already
			}
		}
		return errno != unix.EAGAIN
	}
	for {
		errno = 0
		if err := t.rc.Read(read); err != nil || (errno != 0 && errno != unix.EINTR) {
			return // closed; a timerfd has no other failure to read
		}
	}
}

// Reset arms the timer to fire once after d (at once if d ≤ 0), as
// time.Timer.Reset does.
func (t *fdTimer) Reset(d time.Duration) {
	// A zero it_value disarms a timerfd: the earliest fire is 1ns.
	t.set(unix.NsecToTimespec(max(int64(d), 1)))
}

// Stop disarms the timer and empties C.
func (t *fdTimer) Stop() { t.set(unix.Timespec{}) }

func (t *fdTimer) set(value unix.Timespec) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.c:
	default:
	}
	spec := unix.ItimerSpec{Value: value}
	// A closed timer is only ever stopped by a deferred Stop after Close;
	// an error of the call itself cannot happen with these arguments.
	_ = t.rc.Control(func(fd uintptr) {
		unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
	})
}

// Chan returns C.
func (t *fdTimer) Chan() <-chan time.Time { return t.C }

// Close stops the timer for good and ends its goroutine.
func (t *fdTimer) Close() error { return t.f.Close() }
