package lab

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// lostWait is how long a ping that must fail is given.
const lostWait = 600 * time.Millisecond

func TestFaults(t *testing.T) {
	tests := []struct {
		name      string
		cut, heal func(a, b *Node)
		// noCarrier says whether b's eth0 loses its carrier.
		noCarrier bool
		// cReaches says whether c still reaches a and b during the cut.
		cReaches bool
	}{
		{
			name: "link down at the bridge",
			cut:  func(_, b *Node) { b.LinkDown() }, heal: func(_, b *Node) { b.LinkUp() },
			noCarrier: true,
		},
		{
			name: "node's own interface down",
			cut:  func(_, b *Node) { b.IfaceDown() }, heal: func(_, b *Node) { b.IfaceUp() },
		},
		{
			name: "port detached",
			cut:  func(_, b *Node) { b.Detach() }, heal: func(_, b *Node) { b.Attach() },
		},
		{
			name:     "ports isolated",
			cut:      func(a, b *Node) { a.Isolate(true); b.Isolate(true) },
			heal:     func(a, b *Node) { a.Isolate(false); b.Isolate(false) },
			cReaches: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := New(t, netip.MustParsePrefix("10.77.2.0/24"))
			a, b, c := l.AddNode("a", l.Host(11)), l.AddNode("b", l.Host(12)), l.AddNode("c", l.Host(13))
			mustPing(t, a, b)
			mustPing(t, c, a)

			tc.cut(a, b)
			if got := hasNoCarrier(b); got != tc.noCarrier {
				t.Errorf("during the cut, b NO-CARRIER = %v, want %v", got, tc.noCarrier)
			}
			if err := a.Ping(b.Addr.Addr(), lostWait); err == nil {
				t.Error("during the cut, a still reaches b")
			}
			if tc.cReaches {
				mustPing(t, c, a)
				mustPing(t, c, b)
			}

			tc.heal(a, b)
			mustPing(t, a, b)
			mustPing(t, b, a)
		})
	}
}

func mustPing(t *testing.T, from, to *Node) {
	t.Helper()
	if err := from.Ping(to.Addr.Addr(), pingWait); err != nil {
		t.Fatal(err)
	}
}

func hasNoCarrier(n *Node) bool {
	return strings.Contains(n.Run("ip", "-o", "link", "show", "dev", n.Iface), "NO-CARRIER")
}
