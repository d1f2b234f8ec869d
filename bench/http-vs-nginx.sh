#!/usr/bin/env bash
# HTTP/1.1 keep-alive request rate: ferroplane `http` on one lcore vs nginx with one worker,
# in the same namespace topology, same response body, same wrk load, measured side by side.
#
#   ns fph-c (198.18.0.2) wrk, pinned to CPU 0  --veth--  ns fph-s (198.18.0.1) server, CPU 1
#
# For nginx, fphs0 carries 198.18.0.1 and nginx (1 worker, pinned to CPU 1, no access log)
# serves the body. For ferroplane, fphs0 has no address: ferroplane owns 198.18.0.1 on an
# af_xdp port (DRIVER=af_packet to compare that driver) with its lcore on CPU 1.
# Per server it prints wrk's req/s and latency percentiles, socket errors, and the CPU time per
# request: busy time of CPU 1 (user+system+irq+softirq from /proc/stat) over the wrk run,
# divided by the requests served. On veth, the client's receive processing of the server's
# packets also runs on the sending CPU, so CPU 1's time includes it for both servers alike.
# Rounds alternate between the servers; the report gives medians and the ratios.
#
# Usage: bench/http-vs-nginx.sh [ROUNDS=3] [SECONDS=10] [CONNECTIONS=64]
# Needs root; installs nginx-light and wrk if missing. Addresses are from 198.18.0.0/15 only;
# everything is removed on exit (also on error or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
SECS=${2:-10}
CONNS=${3:-64}
DRIVER=${DRIVER:-af_xdp}
OUT=bench/out
mkdir -p "$OUT"
C=fph-c S=fph-s
WORK=$(mktemp -d /tmp/fph.XXXXXX)

need() {
    command -v "$1" >/dev/null || {
        echo "installing $2…" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
    }
}
need nginx nginx-light
need wrk wrk
need ethtool ethtool
cargo build --release --quiet -p ferroplane-apps
FP=$PWD/target/release/ferroplane

SRVPID=""
cleanup() {
    [ -n "$SRVPID" ] && kill "$SRVPID" 2>/dev/null || true
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    for ns in $C $S; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
for ns in $C $S; do ip netns del "$ns" 2>/dev/null || true; done

ip netns add $C; ip netns add $S
Q="numtxqueues 1 numrxqueues 1"
ip link add fphc0 $Q netns $C type veth peer name fphs0 $Q netns $S
for x in "$C fphc0" "$S fphs0"; do
    set -- $x
    ip -n "$1" link set dev lo up
    ip -n "$1" link set dev "$2" up
done
ip -n $C addr add 198.18.0.2/24 dev fphc0
# The client sends finished checksums (AF_XDP hands ferroplane frames as they are on the wire).
ip netns exec $C ethtool -K fphc0 tx off >/dev/null

# The response body: 512 bytes of text, identical for both servers.
BODY="$WORK/index.html"
python3 -c "import sys; sys.stdout.write(('ferroplane vs nginx ' * 40)[:511] + '\n')" > "$BODY"

cat > "$WORK/nginx.conf" <<EOF
worker_processes 1;
worker_cpu_affinity 10;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server_tokens off;
    server {
        listen 198.18.0.1:80 default_server;
        location = / { default_type text/html; alias $BODY; }
    }
}
EOF

cat > "$WORK/ferroplane.toml" <<EOF
[[memory.pools]]
name = "default"
mbufs = 16384

[[ports]]
name = "p0"
driver = "$DRIVER"
iface = "fphs0"
ipv4 = ["198.18.0.1/24"]

[[lcores]]
id = 1
rx = ["p0:0"]

[run]
idle = "adaptive"

[metrics]
enabled = false

[app]
name = "http"
ports = [80]
max_connections = 4096

[[app.routes]]
path = "/"
file = "$BODY"
content_type = "text/html"
EOF
ip netns exec $S "$FP" validate "$WORK/ferroplane.toml" >/dev/null

# CPU 1's busy jiffies: user nice system irq softirq steal (not idle, iowait).
cpu1_busy() { awk '$1 == "cpu1" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
HZ=$(getconf CLK_TCK)

start_nginx() {
    ip -n $S addr add 198.18.0.1/24 dev fphs0
    ip netns exec $S nginx -c "$WORK/nginx.conf"
}
stop_nginx() {
    kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
    sleep 0.5
    rm -f "$WORK/nginx.pid"
    ip -n $S addr del 198.18.0.1/24 dev fphs0
}
start_ferroplane() {
    ip netns exec $S "$FP" run "$WORK/ferroplane.toml" --quiet >"$WORK/fp.log" 2>&1 &
    SRVPID=$!
}
stop_ferroplane() {
    kill -INT "$SRVPID" 2>/dev/null || true
    wait "$SRVPID" 2>/dev/null || true
    SRVPID=""
}

# utime and stime ticks of the server processes (nginx: master and worker; ferroplane: all
# threads), to split CPU 1's time into the server's user space and the kernel work it causes.
server_pids() {
    if [ "$1" = nginx ]; then pgrep -x nginx | tr '\n' ' '; else echo "$SRVPID"; fi
}
proc_ticks() {
    local u=0 s=0 p
    for p in $1; do
        read -r -a f < <(sed 's/^.*) //' "/proc/$p/stat")
        u=$((u + f[11])); s=$((s + f[12]))
    done
    echo "$u $s"
}

# Waits until the server answers (bounded), then runs wrk; prints one result line.
measure() {
    local name=$1
    local ok=""
    for _ in $(seq 50); do
        if ip netns exec $C curl -s -m 1 -o /dev/null http://198.18.0.1/; then ok=1; break; fi
        sleep 0.2
    done
    [ -n "$ok" ] || { echo "$name: server did not answer" >&2; cat "$WORK/fp.log" >&2 || true; exit 1; }
    local b0 b1 out pids t0 t1
    pids=$(server_pids "$name")
    t0=$(proc_ticks "$pids")
    b0=$(cpu1_busy)
    out=$(ip netns exec $C taskset -c 0 wrk -t1 -c"$CONNS" -d"${SECS}s" --latency http://198.18.0.1/)
    b1=$(cpu1_busy)
    t1=$(proc_ticks "$pids")
    echo "$out" > "$OUT/http-$name-r$round.txt"
    local rps reqs errs p50 p90 p99
    rps=$(echo "$out" | awk '/^Requests\/sec/ { print $2 }')
    reqs=$(echo "$out" | awk '/requests in/ { print $1 }')
    errs=$(echo "$out" | awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10; f=1 } END { if (!f) print 0 }')
    p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
    p90=$(echo "$out" | awk '$1 == "90%" { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    local us_per_req
    us_per_req=$(awk -v b="$((b1 - b0))" -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.2f", b / hz * 1e6 / n }')
    local usr sys
    usr=$(awk -v a="${t0% *}" -v b="${t1% *}" -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
    sys=$(awk -v a="${t0#* }" -v b="${t1#* }" -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }')
    echo "$name round=$round rps=$rps p50=$p50 p90=$p90 p99=$p99 socket_errors=$errs cpu_us_per_req=$us_per_req proc_user_us_per_req=$usr proc_sys_us_per_req=$sys"
}

RES="$OUT/http-vs-nginx.txt"
: > "$RES"
for round in $(seq "$ROUNDS"); do
    start_nginx
    measure nginx | tee -a "$RES"
    stop_nginx
    start_ferroplane
    measure ferroplane | tee -a "$RES"
    stop_ferroplane
done

. bench/lib.sh
field() { grep "^$1 " "$RES" | tr ' ' '\n' | awk -F= -v k="$2" '$1 == k { print $2 }' | median; }
echo
printf '%-11s %12s %14s %16s %16s %8s\n' server "req/s" "CPU1 us/req" "proc user us/req" "proc sys us/req" errors
for s in nginx ferroplane; do
    printf '%-11s %12s %14s %16s %16s %8s\n' "$s" "$(field "$s" rps)" "$(field "$s" cpu_us_per_req)" \
        "$(field "$s" proc_user_us_per_req)" "$(field "$s" proc_sys_us_per_req)" "$(field "$s" socket_errors)"
done
awk -v a="$(field ferroplane rps)" -v b="$(field nginx rps)" \
    -v c="$(field ferroplane cpu_us_per_req)" -v d="$(field nginx cpu_us_per_req)" \
    'BEGIN { printf "ferroplane/nginx: req/s %.2fx (target >= 1.0x), CPU per request %.2fx (target <= 0.33x)\n", a / b, c / d }'
echo "driver=$DRIVER rounds=$ROUNDS seconds=$SECS connections=$CONNS; raw wrk output in $OUT/http-*-r*.txt"
