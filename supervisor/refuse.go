package supervisor

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// While vipvisor has yielded, no child will accept what the held sockets
// queue: the VIP has gone to the peer, but a connection that reached this
// node before it went would wait in the backlog until the client gave up.
// Refusing resets each such connection at once, as a closed port would,
// and keeps the sockets for the next start.

// refuser resets connections on the held sockets until stopped.
type refuser struct {
	wake  *os.File // closed to stop the loop
	done  chan struct{}
	count int // connections reset, read after done
}

// Refuse starts resetting every connection queued on the held sockets,
// and each new one, until Hold. It does nothing if it already refuses.
func (l *Listeners) Refuse() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.refusing != nil || len(l.files) == 0 {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	ref := &refuser{wake: w, done: make(chan struct{})}
	fds := []unix.PollFd{{Fd: int32(r.Fd()), Events: unix.POLLIN}}
	for _, f := range l.files {
		fds = append(fds, unix.PollFd{Fd: int32(f.Fd()), Events: unix.POLLIN})
	}
	l.refusing = ref
	go func() {
		defer close(ref.done)
		defer r.Close()
		ref.count = resetQueued(fds)
	}()
	return nil
}

// Hold stops refusing and returns how many connections were reset; the
// sockets queue connections again for the next child.
func (l *Listeners) Hold() int {
	l.mu.Lock()
	ref := l.refusing
	l.refusing = nil
	l.mu.Unlock()
	if ref == nil {
		return 0
	}
	ref.wake.Close() // the loop sees the pipe's end
	<-ref.done
	return ref.count
}

// resetQueued waits on fds, the wake pipe first and then the held
// sockets, and resets every connection accepted, until the pipe ends.
// The sockets are non-blocking (see listenTCP), so an accept that finds
// the queue empty returns at once.
func resetQueued(fds []unix.PollFd) int {
	n := 0
	for {
		if _, err := unix.Poll(fds, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return n
		}
		if fds[0].Revents != 0 {
			return n
		}
		for _, p := range fds[1:] {
			if p.Revents&unix.POLLIN == 0 {
				continue
			}
			for {
				fd, _, err := unix.Accept4(int(p.Fd), unix.SOCK_CLOEXEC)
				if err != nil {
					break
				}
				// A zero linger makes close send RST, not FIN.
				unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
				unix.Close(fd)
				n++
			}
		}
	}
}
