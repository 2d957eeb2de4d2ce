#!/usr/bin/env bash
# make demo: nginx under vipvisor, narrated, as root. It installs nginx if
# missing (Debian), makes a network namespace of its own (nothing touches
# this machine's interfaces), runs nginx as vipvisor's child there with a
# configuration in a temporary directory, shows vipvisor taking the VIP,
# a reload and a graceful stop, and removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	say "installing nginx"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
export PATH="$PATH:/usr/sbin"

dir=$(mktemp -d /tmp/vipvisor-demo.XXXXXX)
ns=vvdemo-$$
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

conf() {
	cat >"$dir/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log notice;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $dir/body; proxy_temp_path $dir/proxy;
	fastcgi_temp_path $dir/fastcgi; uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
	server { listen 0.0.0.0:80; location / { return 200 "$1\n"; } }
}
CONF
}

in_ns() { ip netns exec "$ns" "$@"; }
get() { in_ns curl -s --max-time 1 http://10.88.0.100/ || echo "(no answer)"; }

say "building vipvisor"
make -s build
bin/vipvisor version | sed -n 1p

say "a network namespace of its own: $ns, eth0 = 10.88.0.1/24, VIP 10.88.0.100"
ip netns add "$ns"
in_ns ip link set lo up
in_ns ip link add eth0 type veth peer name peer0
in_ns ip link set peer0 up
in_ns ip link set eth0 up
in_ns ip addr add 10.88.0.1/24 dev eth0

conf "hello from nginx under vipvisor"
say "starting: bin/vipvisor -- nginx -c $dir/nginx.conf"
export VIPVISOR_INTERFACE=eth0 VIPVISOR_VRID=51 VIPVISOR_VIPS=10.88.0.100/24 VIPVISOR_ADVERT_INTERVAL=100ms
ip netns exec "$ns" bin/vipvisor -- nginx -c "$dir/nginx.conf" 2>"$dir/vipvisor.log" &
pid=$!
echo "no peer answers, so after Master_Down_Interval (3 x 100ms + skew) it becomes master:"
for _ in $(seq 100); do in_ns ip -br addr show eth0 | grep -q 10.88.0.100 && break; sleep 0.05; done
in_ns ip -br addr show eth0 | sed 's/^/  /'
echo "GET http://10.88.0.100/ -> $(get)"
echo "vipvisor status:"
in_ns bin/vipvisor status | sed 's/^/  /'
echo "process tree (nginx runs in the foreground as vipvisor's child):"
ps -o pid,ppid,args --ppid "$pid" --pid "$pid" | sed 's/^/  /'

say "changing the page and sending SIGHUP to vipvisor (nginx reloads, no restart)"
conf "hello again, after a reload"
kill -HUP "$pid"
for _ in $(seq 40); do [ "$(get)" = "hello again, after a reload" ] && break; sleep 0.05; done
echo "GET / -> $(get)"

say "SIGTERM to vipvisor: priority 0 to hand over, the VIP kept until a new master is heard"
echo "(alone, it waits Master_Down_Interval for one), then nginx stops gracefully (SIGQUIT)"
kill -TERM "$pid"
set +e
wait "$pid"
code=$?
set -e
pid=
echo "vipvisor exit code: $code"
echo "nginx left running: $(pgrep -fc "$dir/nginx.conf" || true)"
echo "VIP left on eth0: $(in_ns ip -br addr show eth0 | grep -c 10.88.0.100 || true)"

say "what vipvisor logged"
sed 's/^/  /' "$dir/vipvisor.log"
