#!/usr/bin/env bash
# make demo: nginx under vipvisor on this machine, narrated. It installs
# nginx if missing (Debian), runs it as vipvisor's child on 127.0.0.1:8080
# with a configuration of its own in a temporary directory, shows a reload
# and a graceful stop, and removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	say "installing nginx"
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
export PATH="$PATH:/usr/sbin"

dir=$(mktemp -d /tmp/vipvisor-demo.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
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
	server { listen 127.0.0.1:8080; location / { return 200 "$1\n"; } }
}
CONF
}

get() { curl -s --max-time 1 http://127.0.0.1:8080/ || echo "(no answer)"; }

say "building vipvisor"
make -s build
bin/vipvisor version | head -1

conf "hello from nginx under vipvisor"
say "starting: bin/vipvisor -- nginx -c $dir/nginx.conf"
export VIPVISOR_INTERFACE=lo VIPVISOR_VRID=51 VIPVISOR_VIPS=192.0.2.100 VIPVISOR_STATUS_ADDR=off
bin/vipvisor -- nginx -c "$dir/nginx.conf" 2>"$dir/vipvisor.log" &
pid=$!
for _ in $(seq 100); do curl -s --max-time 0.2 -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.05; done
echo "GET / -> $(get)"
echo "process tree (nginx runs in the foreground as vipvisor's child):"
ps -o pid,ppid,args --ppid "$pid" --pid "$pid" | sed 's/^/  /'

say "changing the page and sending SIGHUP to vipvisor (nginx reloads, no restart)"
conf "hello again, after a reload"
kill -HUP "$pid"
for _ in $(seq 40); do [ "$(get)" = "hello again, after a reload" ] && break; sleep 0.05; done
echo "GET / -> $(get)"

say "SIGTERM to vipvisor: nginx is stopped gracefully (SIGQUIT), then vipvisor exits"
kill -TERM "$pid"
set +e
wait "$pid"
code=$?
set -e
pid=
echo "vipvisor exit code: $code"
echo "nginx left running: $(pgrep -fc "$dir/nginx.conf" || true)"

say "what vipvisor logged"
sed 's/^/  /' "$dir/vipvisor.log"
