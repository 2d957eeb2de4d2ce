package vrrp

import (
	"testing"
	"time"
)

func TestVIPLeaseRenewsWhileHeldAndEndsWhenRenewalsStop(t *testing.T) {
	t.Parallel()
	_, a := vipLab(t)
	vips := vipPrefixes("10.77.0.100/32")
	v := vipNew(t, a, vips...)
	if err := v.SetLease(time.Second); err != nil {
		t.Fatal(err)
	}
	if err := v.Add(); err != nil {
		t.Fatal(err)
	}
	// Held well past its lifetime while renewed; the bound is the
	// lifetime itself, the kernel's to keep.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if !a.HasAddr(vips[0].Addr()) {
			t.Fatalf("the leased VIP went away while renewed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A killed vipvisor renews nothing: stop the renewal without
	// removing the address, and the kernel must remove it.
	v.lease.mu.Lock()
	v.stopRenewal()
	v.lease.mu.Unlock()
	stopped := time.Now()
	for a.HasAddr(vips[0].Addr()) {
		if time.Since(stopped) > 5*time.Second {
			t.Fatalf("the VIP outlived its lease by %v", time.Since(stopped))
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("the kernel removed the VIP %v after the last renewal stopped", time.Since(stopped).Round(10*time.Millisecond))
}

func TestVIPLeaseRejectsFractions(t *testing.T) {
	v := &vipSet{}
	for _, d := range []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, -time.Second} {
		if err := v.SetLease(d); err == nil {
			t.Errorf("SetLease(%v) accepted", d)
		}
	}
}
