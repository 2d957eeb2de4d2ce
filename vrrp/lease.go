package vrrp

import (
	"fmt"
	"sync"
	"time"
)

// A VIP lease is the dead-man switch for a vipvisor that nothing can
// outlive. As a container's PID 1 it may be killed from outside (docker
// kill, the OOM killer); the kernel then kills every process of its PID
// namespace, a guard included, and no one would take the VIPs off a host
// network's interface. With a lease each VIP is added with a lifetime and
// renewed while this node is master; if the renewals stop, the kernel
// deletes the address itself once the lifetime is over.
//
// The kernel counts address lifetimes in whole seconds and checks them
// about once a second, so a 1 s lease ends within about 1.25 s of the
// last renewal. Renewing five times a second leaves four missed renewals
// of slack while vipvisor runs.
const leaseRenewEvery = 200 * time.Millisecond

// leaseState is the lease part of a VIPs.
type leaseState struct {
	mu      sync.Mutex
	life    int           // seconds; 0: no lease
	renewal chan struct{} // closed to stop the running renewal
}

// SetLease makes every later Add give the VIPs a lifetime of d (whole
// seconds, at least one) and renew it until Remove. Call it before Add.
func (v *vipSet) SetLease(d time.Duration) error {
	if d < time.Second || d%time.Second != 0 {
		return fmt.Errorf("vrrp: VIP lease %s: want whole seconds, at least 1s", d)
	}
	v.lease.mu.Lock()
	defer v.lease.mu.Unlock()
	v.lease.life = int(d / time.Second)
	return nil
}

// startRenewal starts renewing the lease unless it runs; lease.mu is
// held.
func (v *vipSet) startRenewal() {
	if v.lease.life == 0 || v.lease.renewal != nil {
		return
	}
	stop := make(chan struct{})
	v.lease.renewal = stop
	go v.renew(stop)
}

// stopRenewal stops the renewal; lease.mu is held.
func (v *vipSet) stopRenewal() {
	if v.lease.renewal != nil {
		close(v.lease.renewal)
		v.lease.renewal = nil
	}
}

func (v *vipSet) renew(stop chan struct{}) {
	t := time.NewTicker(leaseRenewEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		v.lease.mu.Lock()
		select {
		case <-stop:
			v.lease.mu.Unlock()
			return
		default:
		}
		err := v.change(false, v.vips, v.lease.life, nil)
		v.lease.mu.Unlock()
		if err != nil && !failing {
			v.log.Error("renewing the VIPs' lease failed; the kernel removes them when it runs out", "err", err)
		}
		failing = err != nil
	}
}

// LeaseVIPs gives the instance's VIPs a lease of d (see vipSet.SetLease).
// Call it before Run.
func (i *instance) LeaseVIPs(d time.Duration) error {
	v, ok := i.addrs.(*vipSet)
	if !ok {
		return fmt.Errorf("vrrp: VIP lease: the instance's addresses are not netlink VIPs")
	}
	return v.SetLease(d)
}
