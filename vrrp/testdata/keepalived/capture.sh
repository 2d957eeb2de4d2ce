#!/bin/bash
# capture.sh CONF SECONDS OUT.pcap
#
# Runs keepalived (VRRP only, in the foreground) with CONF in one network
# namespace and tcpdump on the other end of a veth pair in another, for
# SECONDS, then stops keepalived with SIGTERM so that its priority-0 advert is
# captured too. CONF names its interface IFACE. keepalived has 192.0.2.1 and
# fe80::1, the capturing side 192.0.2.2 and fe80::2. Needs root. The
# namespaces are removed on exit.
#
# The captures in ../ were made with keepalived 2.2.7 (Debian 12):
#   ./capture.sh v2-pass.conf 6 ../keepalived-v2-pass.pcap
#   ./capture.sh v3-multicast.conf 3 /tmp/v3.pcap
#   editcap -F pcap -r /tmp/v3.pcap ../keepalived-v3-multicast.pcap 1-3 28
#   ./capture.sh v3-unicast.conf 6 ../keepalived-v3-unicast.pcap
#   ./capture.sh v3-unicast-old-checksum.conf 4 ../keepalived-v3-unicast-old-checksum.pcap
#   ./capture.sh v6-multicast.conf 1 /tmp/v6.pcap
#   editcap -F pcap -r /tmp/v6.pcap ../keepalived-v6-multicast.pcap 1-3 8
#   ./capture.sh v6-unicast.conf 4 ../keepalived-v6-unicast.pcap
# (28 and 8 were the last packets, priority 0, of those runs.)
set -euo pipefail
conf=$1 secs=$2 out=$3
id=$$
nsA=vvpkA$id nsB=vvpkB$id
dir=$(mktemp -d)
kpid= tpid=
cleanup() {
	set +e
	[ -n "$kpid" ] && kill "$kpid" 2>/dev/null && wait "$kpid"
	[ -n "$tpid" ] && kill "$tpid" 2>/dev/null && wait "$tpid"
	ip netns del "$nsA" 2>/dev/null
	ip netns del "$nsB" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT

ip netns add "$nsA"
ip netns add "$nsB"
ip link add "$nsA" type veth peer name "$nsB"
ip link set "$nsA" netns "$nsA"
ip link set "$nsB" netns "$nsB"
ip -n "$nsA" addr add 192.0.2.1/24 dev "$nsA"
ip -n "$nsB" addr add 192.0.2.2/24 dev "$nsB"
for ns in "$nsA" "$nsB"; do
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0
	ip -n "$ns" link set "$ns" addrgenmode none # fixed link-local addresses
done
ip -n "$nsA" addr add fe80::1/64 dev "$nsA" nodad
ip -n "$nsB" addr add fe80::2/64 dev "$nsB" nodad
ip -n "$nsA" link set "$nsA" up
ip -n "$nsB" link set "$nsB" up

sed "s/IFACE/$nsA/" "$conf" >"$dir/keepalived.conf"
ip netns exec "$nsB" tcpdump -U -i "$nsB" -w "$dir/cap.pcap" proto 112 2>"$dir/tcpdump.log" &
tpid=$!
sleep 1 # let tcpdump open the interface
ip netns exec "$nsA" keepalived -n -l -D -G -P -f "$dir/keepalived.conf" \
	-p "$dir/keepalived.pid" -r "$dir/vrrp.pid" >"$dir/keepalived.log" 2>&1 &
kpid=$!
sleep "$secs"
kill -TERM "$kpid"
wait "$kpid" || true
kpid=
sleep 1 # let tcpdump write the last packet
kill "$tpid"
wait "$tpid" || true
tpid=
cp "$dir/cap.pcap" "$out"
cat "$dir/keepalived.log"
