package vrrp

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vipvisor/vipvisor/internal/netutil"
)

// A process with many virtual routers watches one kernel: the link and
// address updates of a network namespace are the same for every instance,
// and each pair of netlink subscriptions costs two sockets and two
// goroutines blocked in recvfrom, a thread each. So the watches of one
// namespace share one pair, a linkFeed, which copies every update to each
// of them; each applies its own interface, family and VIPs.

// linkFeeds holds the running feed of each namespace, by its identity.
var linkFeeds = struct {
	sync.Mutex
	m map[string]*linkFeed
}{m: map[string]*linkFeed{}}

// linkFeed is the shared subscription of one namespace.
type linkFeed struct {
	key   string
	subs  map[*feedSub]bool // under linkFeeds' lock
	done  chan struct{}     // closes the subscriptions
	ended sync.WaitGroup    // the fan-out goroutines
}

// feedSub is one watch's copy of the updates. Its channels close when the
// feed ends or when the watch fell so far behind that its buffer filled:
// either way updates may be lost, and err says why.
type feedSub struct {
	// The updates travel by pointer, shared read-only by every watch: a
	// buffer of a thousand costs 8 KiB, not the 150 KiB of the values.
	links chan *netlink.LinkUpdate
	addrs chan *netlink.AddrUpdate
	once  sync.Once
	err   error // set before the channels close
	errs  chan error
}

// feedLinkBuf and feedAddrBuf are each watch's buffers; a flush of a few
// hundred addresses must fit in the address one. Variables for a test.
var feedLinkBuf, feedAddrBuf = 64, 1024

// subscribeFeed returns a copy of the updates of namespace ns, starting its
// feed if none runs. Release it with unsubscribe.
func subscribeFeed(ns netns.NsHandle) (*feedSub, error) {
	key := ns.UniqueId()
	linkFeeds.Lock()
	defer linkFeeds.Unlock()
	f := linkFeeds.m[key]
	if f == nil {
		var err error
		if f, err = startFeed(key, ns); err != nil {
			return nil, err
		}
		linkFeeds.m[key] = f
	}
	s := &feedSub{links: make(chan *netlink.LinkUpdate, feedLinkBuf), addrs: make(chan *netlink.AddrUpdate, feedAddrBuf),
		errs: make(chan error, 16)}
	f.subs[s] = true
	return s, nil
}

// unsubscribe releases s; the last one stops the feed.
func (s *feedSub) unsubscribe(ns netns.NsHandle) {
	key := ns.UniqueId()
	linkFeeds.Lock()
	f := linkFeeds.m[key]
	var stop bool
	if f != nil && f.subs[s] {
		delete(f.subs, s)
		stop = len(f.subs) == 0
		if stop {
			delete(linkFeeds.m, key)
		}
	}
	linkFeeds.Unlock()
	s.end(errors.New("unsubscribed"))
	if stop {
		close(f.done)
		f.ended.Wait()
	}
}

// end closes s's channels once, with cause as its error.
func (s *feedSub) end(cause error) {
	s.once.Do(func() {
		s.err = cause
		close(s.links)
		close(s.addrs)
	})
}

// startFeed opens the two subscriptions in ns and starts copying.
//
// Neither lists what exists (ListExisting): netlink sends that dump
// request to the subscription's multicast groups as well as to the kernel,
// which needs CAP_NET_ADMIN and shows the request to every other listener.
// Each watch asks for the state directly instead.
func startFeed(key string, ns netns.NsHandle) (*linkFeed, error) {
	f := &linkFeed{key: key, subs: map[*feedSub]bool{}, done: make(chan struct{})}
	links := make(chan netlink.LinkUpdate, 64)
	addrs := make(chan netlink.AddrUpdate, 256)
	err := netutil.RunInNetns(ns, func() error {
		err := netlink.LinkSubscribeWithOptions(links, f.done, netlink.LinkSubscribeOptions{
			ErrorCallback: f.callback, ReceiveBufferSize: watchRcvBuf,
		})
		if err != nil {
			return fmt.Errorf("subscribe to link updates: %w", err)
		}
		err = netlink.AddrSubscribeWithOptions(addrs, f.done, netlink.AddrSubscribeOptions{
			ErrorCallback: f.callback, ReceiveBufferSize: watchRcvBuf,
		})
		if err != nil {
			close(f.done)
			for range links {
			}
			return fmt.Errorf("subscribe to address updates: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	f.ended.Add(2)
	go copyAll(f, links, "link", func(s *feedSub) chan *netlink.LinkUpdate { return s.links })
	go copyAll(f, addrs, "address", func(s *feedSub) chan *netlink.AddrUpdate { return s.addrs })
	return f, nil
}

// copyAll hands every update of in to each subscriber. A subscriber whose
// buffer is full is ended rather than waited for, so that one slow watch
// holds up neither the others nor the kernel's queue. When in closes
// unasked (an overflow in the kernel, ENOBUFS), every subscriber is ended
// and the feed is forgotten, so that the watches' next subscription starts
// a new one.
func copyAll[U any](f *linkFeed, in <-chan U, what string, out func(*feedSub) chan *U) {
	defer f.ended.Done()
	for u := range in {
		linkFeeds.Lock()
		for s := range f.subs {
			select {
			case out(s) <- &u:
			default:
				delete(f.subs, s)
				s.end(fmt.Errorf("%s updates came faster than they were read", what))
			}
		}
		linkFeeds.Unlock()
	}
	select {
	case <-f.done:
		return // stopped on purpose
	default:
	}
	linkFeeds.Lock()
	if linkFeeds.m[f.key] == f {
		delete(linkFeeds.m, f.key)
	}
	subs := f.subs
	f.subs = map[*feedSub]bool{}
	linkFeeds.Unlock()
	for s := range subs {
		s.end(fmt.Errorf("%s subscription closed", what))
	}
}

// callback is the subscriptions' ErrorCallback: it hands the error to
// every subscriber, for its log; a fatal one also closes the channel.
func (f *linkFeed) callback(err error) {
	select {
	case <-f.done:
		return // the socket was closed on purpose
	default:
	}
	// The feed may be starting under the lock; the error is for the
	// log only (a fatal one closes the channel too), so it may be lost.
	if !linkFeeds.TryLock() {
		return
	}
	defer linkFeeds.Unlock()
	for s := range f.subs {
		select {
		case s.errs <- err:
		default:
		}
	}
}
