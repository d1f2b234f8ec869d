#!/usr/bin/env bash
# IPv4 forwarding between two Linux hosts: the Linux kernel (ip_forward=1) vs ferroplane l3fwd
# (on AF_XDP and on AF_PACKET), measured side by side in one run with the same generator.
#
#   ns fpb-a (198.18.0.2) --veth-- ns fpb-r [router] --veth-- ns fpb-b (198.18.1.2)
#
# The generator in fpb-a sends 64-byte UDP frames addressed to the router's MAC as fast as it
# can, pinned to CPU 0 (the forwarder gets CPU 1): GEN=trafgen (default; netsniff-ng,
# PACKET_MMAP) or GEN=pktgen (ferroplane's own pktgen on an AF_XDP port, faster, so the
# forwarder rather than the generator is the limit). The figure is the rate at which frames
# arrive at fpb-b (its veth rx counter) over a window after warm-up. Rounds alternate between
# the forwarders so load from elsewhere hits them alike; the report gives the median per
# forwarder and the ratios.
#
# Usage: [GEN=trafgen|pktgen] bench/l3fwd-vs-linux.sh [ROUNDS=3] [SECONDS=5]
# Needs root; installs netsniff-ng (trafgen) if missing. Addresses are from 198.18.0.0/15 only,
# and everything is removed on exit (also on error or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
SECS=${2:-5}
DRIVERS=${DRIVERS:-"af_xdp af_packet"}
GEN=${GEN:-trafgen}
case "$GEN" in trafgen | pktgen) ;; *) echo "GEN must be trafgen or pktgen, not $GEN" >&2; exit 2 ;; esac
WARM=2
OUT=bench/out
mkdir -p "$OUT"
A=fpb-a R=fpb-r B=fpb-b

if [ "$GEN" = trafgen ] && ! command -v trafgen >/dev/null; then
    echo "installing netsniff-ng (trafgen)…" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends netsniff-ng >/dev/null
fi
cargo build --release --quiet -p ferroplane-apps
FP=$PWD/target/release/ferroplane

FPPID=""
cleanup() {
    [ -n "$FPPID" ] && kill "$FPPID" 2>/dev/null || true
    pkill -f "trafgen --dev fpba0" 2>/dev/null || true
    pkill -f "pktgen --port af_xdp:fpba0" 2>/dev/null || true
    for ns in $A $R $B; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
cleanup

ip netns add $A; ip netns add $R; ip netns add $B
# One queue per veth end (the default is one per CPU): the AF_XDP port serves queue 0.
Q="numtxqueues 1 numrxqueues 1"
ip link add fpba0 $Q netns $A type veth peer name fpbr0 $Q netns $R
ip link add fpbr1 $Q netns $R type veth peer name fpbb0 $Q netns $B
for x in "$A fpba0" "$R fpbr0" "$R fpbr1" "$B fpbb0"; do
    set -- $x
    ip -n "$1" link set dev lo up
    ip -n "$1" link set dev "$2" up
done
ip -n $A addr add 198.18.0.2/24 dev fpba0
ip -n $B addr add 198.18.1.2/24 dev fpbb0
ip -n $A route add 198.18.1.0/24 via 198.18.0.1
ip -n $B route add 198.18.0.0/24 via 198.18.1.1
RMAC=$(ip -n $R -br link show dev fpbr0 | awk '{print $3}')
AMAC=$(ip -n $A -br link show dev fpba0 | awk '{print $3}')

# 64-byte frames (60 + FCS): UDP 198.18.0.2:1234 -> 198.18.1.2:9, to the router's MAC.
hexmac() { echo "$1" | sed 's/^/0x/; s/:/, 0x/g'; }
cat >"$OUT/l3fwd.trafgen" <<EOF
{
  $(hexmac "$RMAC"), $(hexmac "$AMAC"), 0x08, 0x00,
  0x45, 0x00, const16(46), const16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  198, 18, 0, 2, 198, 18, 1, 2,
  const16(1234), const16(9), const16(26), const16(0),
  fill(0x41, 18)
}
EOF

rx_count() { ip netns exec $B cat /sys/class/net/fpbb0/statistics/rx_packets; }
tx_count() { ip netns exec $A cat /sys/class/net/fpba0/statistics/tx_packets; }

# Generates for WARM + SECS seconds; prints the rate (Mpps) arriving at fpb-b, and the sent rate.
measure() {
    # One generator process on CPU 0 (trafgen forks one per CPU by default), bounded in time.
    if [ "$GEN" = trafgen ]; then
        timeout -s INT $((WARM + SECS + 2)) ip netns exec $A taskset -c 0 \
            trafgen --dev fpba0 --conf "$OUT/l3fwd.trafgen" --cpus 1 -q \
            >/dev/null 2>&1 &
    else
        timeout -s INT $((WARM + SECS + 4)) ip netns exec $A taskset -c 0 \
            "$FP" pktgen --port af_xdp:fpba0 --rate max --size 64 --dst-mac "$RMAC" \
            --src-ip 198.18.0.2 --dst-ip 198.18.1.2 --src-port 1234 --dst-port 9 \
            --no-latency --quiet --duration "$((WARM + SECS + 1))s" \
            >"$OUT/l3fwd-pktgen.log" 2>&1 &
    fi
    local gen=$!
    sleep "$WARM"
    local r0 t0 r1 t1
    r0=$(rx_count); t0=$(tx_count)
    sleep "$SECS"
    r1=$(rx_count); t1=$(tx_count)
    pkill -INT -f "trafgen --dev fpba0" 2>/dev/null || true
    wait "$gen" 2>/dev/null || true
    # pktgen's own AF_XDP port needs the fpba0 link free before the next round.
    pkill -f "pktgen --port af_xdp:fpba0" 2>/dev/null || true
    awk -v r=$((r1 - r0)) -v t=$((t1 - t0)) -v s="$SECS" \
        'BEGIN { printf "%.3f %.3f\n", r / s / 1e6, t / s / 1e6 }'
}

linux_on() {
    ip -n $R addr add 198.18.0.1/24 dev fpbr0
    ip -n $R addr add 198.18.1.1/24 dev fpbr1
    ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
    ip netns exec $A ping -c 1 -W 2 198.18.1.2 >/dev/null
}
linux_off() {
    ip netns exec $R sysctl -qw net.ipv4.ip_forward=0
    ip -n $R addr flush dev fpbr0
    ip -n $R addr flush dev fpbr1
}

ferroplane_on() { # driver
    cat >"$OUT/l3fwd-$1.toml" <<EOF
[[memory.pools]]
name = "pool"
mbufs = 16384
headroom = 256
data_room = 2048
cache_size = 256
[[ports]]
name = "p0"
driver = "$1"
iface = "fpbr0"
ipv4 = ["198.18.0.1/24"]
[[ports]]
name = "p1"
driver = "$1"
iface = "fpbr1"
ipv4 = ["198.18.1.1/24"]
[[lcores]]
id = 1
cpu = 1
rx = ["p0", "p1"]
[app]
name = "l3fwd"
[metrics]
enabled = false
[run]
idle = "adaptive"
EOF
    ip netns exec $R "$FP" run "$OUT/l3fwd-$1.toml" --quiet >"$OUT/l3fwd-$1.log" 2>&1 &
    FPPID=$!
    for _ in $(seq 50); do
        ip netns exec $A ping -c 1 -W 1 198.18.1.2 >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "ferroplane ($1) did not come up:" >&2
    cat "$OUT/l3fwd-$1.log" >&2
    exit 1
}
ferroplane_off() {
    kill -TERM "$FPPID"
    wait "$FPPID" || { echo "ferroplane exited with an error:" >&2; cat "$OUT/l3fwd-$1.log" >&2; exit 1; }
    FPPID=""
}

. bench/lib.sh

echo "# l3fwd vs Linux forwarding: $ROUNDS rounds x ${SECS}s (after ${WARM}s warm-up), 64-byte frames, generator $GEN on CPU 0"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, kernel $(uname -r)"
declare -A got
for r in $(seq "$ROUNDS"); do
    linux_on
    read -r rx tx < <(measure)
    linux_off
    echo "round $r linux:                 rx $rx Mpps (generator sent $tx Mpps)"
    got[linux]+="$rx "
    for drv in $DRIVERS; do
        ferroplane_on $drv
        read -r rx tx < <(measure)
        ferroplane_off $drv
        printf 'round %s ferroplane %-10s rx %s Mpps (generator sent %s Mpps)\n' "$r" "$drv:" "$rx" "$tx"
        got[$drv]+="$rx "
    done
done
lin=$(printf '%s\n' ${got[linux]} | median)
echo "median: linux $lin Mpps"
for drv in $DRIVERS; do
    m=$(printf '%s\n' ${got[$drv]} | median)
    awk -v l="$lin" -v m="$m" -v d="$drv" 'BEGIN {
        printf "median: ferroplane %s %s Mpps, ratio %s / linux = %.2fx\n", d, m, d, m / l }'
done
