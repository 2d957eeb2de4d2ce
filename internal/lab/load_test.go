package lab

import (
	"net/netip"
	"testing"
	"time"
)

// TestLoadIsOpenLoop: the load keeps starting requests on schedule while
// the server is away, so an outage counts as the requests it failed, and
// Settled waits for those still in flight.
func TestLoadIsOpenLoop(t *testing.T) {
	requireNginx(t)
	l := New(t, netip.MustParsePrefix("10.77.4.0/24"))
	a, c := l.AddNode("a", l.Host(11)), l.AddNode("c", l.Host(20))
	conf := NginxConf(t, t.TempDir(), netip.AddrPortFrom(netip.IPv4Unspecified(), 80), a.Name)
	base := "http://" + a.Addr.Addr().String()
	startNginx(t, a.Command("nginx", "-c", conf, "-g", "daemon off;"), func(url string) (int, string, error) {
		return c.HTTPGet(url, time.Second)
	}, base)

	const rate, timeout, away = 500, 300 * time.Millisecond, 600 * time.Millisecond
	ld := NewLoad(c, base+"/")
	ld.Rate, ld.Timeout = rate, timeout
	ld.Start()
	time.Sleep(500 * time.Millisecond)
	down := time.Now()
	a.LinkDown()
	time.Sleep(away)
	up := time.Now()
	a.LinkUp()
	ss := ld.Settled(up)
	ld.Stop()

	before, during := ss.Between(time.Time{}, down), ss.Between(down.Add(10*time.Millisecond), up.Add(-timeout-50*time.Millisecond))
	t.Logf("before the cut %s; while away %s", before, during)
	if n := before.Failures(); n > 0 || len(before) < rate/4 {
		t.Errorf("before the cut: %d requests, %d failed; want at least %d, none failed", len(before), n, rate/4)
	}
	// Requests went on starting while the earlier ones hung: a closed
	// loop would have started a handful.
	if want := int(float64(rate) * (away - timeout - 60*time.Millisecond).Seconds() / 2); len(during) < want {
		t.Errorf("while away: %d requests started, want at least %d", len(during), want)
	}
	if n := during.Failures(); n != len(during) {
		t.Errorf("while away: %d of %d requests failed, want all", n, len(during))
	}
	for _, s := range ss {
		if s.At.After(up) {
			t.Errorf("Settled(%v) returned a request that started at %v", up, s.At)
			break
		}
	}
}
