// Package netutil holds the small pieces of network plumbing that vrrp and
// probes share: running code in the network namespace an object was made
// in, and framing ARP packets.
package netutil

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// The VIPs, the Announcer and the gateway probe belong to the network
// namespace of the thread that created them and open their sockets there,
// whichever goroutine uses them. That is what lets a test create one inside
// a lab node and use it from anywhere; in production every thread is in
// the same namespace and nothing moves.

// ThisNetns returns the network namespace of the calling thread; the caller
// should hold its OS thread. It reads /proc/thread-self, which the kernel
// resolves in the PID namespace of the /proc mount: netns.Get builds the
// path from getpid and gettid, which name no process when vipvisor is PID
// 1 of a PID namespace that kept the host's /proc (unshare --pid without
// --mount-proc, some container setups).
func ThisNetns() (netns.NsHandle, error) {
	return netns.GetFromPath("/proc/thread-self/ns/net")
}

// RunInNetns runs f on an OS thread that is in the namespace ns, so that
// sockets f opens belong to ns. When the calling thread is already there
// (always, outside tests) f simply runs on it, locked, and no setns(2) is
// made: that needs CAP_SYS_ADMIN, which a container with only
// CAP_NET_ADMIN and CAP_NET_RAW lacks. Otherwise f runs on a goroutine of
// its own whose thread is moved into ns and back; a thread that cannot be
// moved back is left locked, so the runtime ends it with the goroutine.
func RunInNetns(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- runLocked(ns, f)
	}()
	return <-errc
}

// runLocked is RunInNetns's body, on a locked thread; it unlocks the
// thread unless the thread was left in the wrong namespace.
func runLocked(ns netns.NsHandle, f func() error) error {
	cur, err := ThisNetns()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("get network namespace: %w", err)
	}
	defer cur.Close()
	if cur.Equal(ns) {
		defer runtime.UnlockOSThread()
		return f()
	}
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter network namespace %s: %w", ns, err)
	}
	ferr := f()
	if err := netns.Set(cur); err != nil {
		return errors.Join(ferr, fmt.Errorf("leave network namespace %s: %w", ns, err))
	}
	runtime.UnlockOSThread()
	return ferr
}
