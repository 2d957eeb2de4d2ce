// Package lab builds throwaway network labs out of Linux network namespaces
// for vipvisor's end-to-end tests and its demo: real nginx, real keepalived
// and the real vipvisor binary, each in a node of its own, joined by one
// Ethernet segment.
//
// A Lab is one bridge, br0, in a "switch" namespace of its own, so nothing
// is ever added to or changed on the host's interfaces. Each Node is a further
// namespace whose eth0 is one end of a veth pair; the other end is a port of
// br0 in the switch namespace:
//
//	        switch namespace  vvlab<id>-sw
//	+-------------------------------------------------+
//	|                      br0                        |
//	|   p-a  ------------  p-b  ------------  p-c     |
//	+----|------------------|------------------|------+
//	     | veth             | veth             | veth
//	+----|------+      +----|------+      +----|------+
//	|  eth0     |      |  eth0     |      |  eth0     |
//	| 10.77.0.11|      | 10.77.0.12|      | 10.77.0.20|
//	+-----------+      +-----------+      +-----------+
//	vvlab<id>-a        vvlab<id>-b        vvlab<id>-c
//
// Faults are injected on that picture: LinkDown sets the bridge-side port
// down, so the node sees carrier loss; IfaceDown sets the node's own eth0
// down; Isolate stops a port from talking to other isolated ports (a split
// brain in which both still reach the rest); Detach takes the port off the
// bridge with carrier kept up (frames are silently lost). BlockVRRP drops
// VRRP on a node's eth0 ingress alone (a tc classifier: one direction of a
// split brain, or multicast but not unicast), and a node's Forger sends
// raw frames of its own making — forged, malformed or flooded adverts — as a
// hostile neighbour on the segment would.
//
// The lab only ever uses addresses inside 10.0.0.0/8 and only inside its own
// namespaces, which have no route anywhere else: no test traffic can leave
// the machine. Names carry a random suffix, so parallel tests and parallel
// test binaries do not collide, and everything made is removed with the
// Cleanup of the T given to New, also when a test or the lab's own setup
// fails.
//
// A lab reports to a T, the part of testing.TB it uses: a test passes its
// *testing.T; a program passes its own, whose Fatalf runs the cleanups
// and exits.
//
// Processes are started in a node with Node.Command (ip netns exec). Go code
// runs in a node with Node.Do, which moves one locked OS thread into the
// namespace; sockets opened there stay in it, which is how Node.HTTPGet,
// Node.Ping and the Client poller see the network from the node's side.
//
// Around that, the package has what the tests of a VIP need: NewClient
// polls a URL from a node every 10ms and tells who answered and how long
// the longest outage lasted; NginxConf writes an nginx configuration whose
// answer names its node and whose /health can be made to fail; WaitFor
// waits for a condition that only real time brings about.
//
// Every test that builds a lab needs root; RequireRoot skips it otherwise,
// except under CI=true, where a missing privilege is a failure, as it is
// for a program.
package lab
