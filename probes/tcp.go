package probes

import (
	"context"
	"net"
	"time"
)

// tcpProbe passes when a TCP connection to addr is established.
type tcpProbe struct {
	addr string
}

// NewTCP returns a probe that passes when addr (host:port) accepts a TCP
// connection; the connection is closed at once, without sending anything.
// Its reasons are the kernel's ("connection refused", "no route to
// host") or "timeout after 1s" when the handshake does not complete in
// time, as with a full accept queue or a host that drops the SYN.
func NewTCP(addr string) Probe {
	return &tcpProbe{addr: addr}
}

func (p *tcpProbe) Name() string { return "tcp " + p.addr }

// Check dials with ctx, so a handshake that never completes is abandoned
// at ctx's deadline.
func (p *tcpProbe) Check(ctx context.Context) Result {
	start := time.Now()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return fail(start, errReason(ctx, start, err))
	}
	conn.Close()
	return pass(start)
}
