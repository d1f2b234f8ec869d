#!/usr/bin/env bash
# ferroplane pktgen on an af_xdp port vs trafgen (netsniff-ng) on the same veth, side by side in
# one run: 64-byte UDP frames (60 + FCS) to a unicast MAC nobody owns, one generator process
# pinned to CPU $CPU. The figure is the rate at which frames arrive at the veth's peer (its rx
# counter) over a window after warm-up; rounds alternate (trafgen, pktgen, …); prints the
# medians and the ratio pktgen / trafgen.
#
#   ns fpg-a: generator on fpga0 --veth-- fpgb0 in ns fpg-b (counts and drops)
#
# Usage: [BURST=32] bench/pktgen-vs-trafgen.sh [ROUNDS=3] [SECONDS=5]
# Needs root; installs netsniff-ng if trafgen is missing. Addresses are from 198.18.0.0/15 only,
# and everything is removed on exit (also on error or Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
SECS=${2:-5}
CPU=${CPU:-1}
BURST=${BURST:-32} # pktgen's tx burst (packets per turn and per tx ring kick)
WARM=2
OUT=bench/out
mkdir -p "$OUT"
A=fpg-a B=fpg-b
DMAC=02:00:00:00:00:99

if ! command -v trafgen >/dev/null; then
    echo "installing netsniff-ng (trafgen)…" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends netsniff-ng >/dev/null
fi
cargo build --release --quiet -p ferroplane-apps
FP=$PWD/target/release/ferroplane

cleanup() {
    pkill -f "trafgen --dev fpga0" 2>/dev/null || true
    pkill -f "pktgen --port af_xdp:fpga0" 2>/dev/null || true
    for ns in $A $B; do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM
cleanup

ip netns add $A; ip netns add $B
Q="numtxqueues 1 numrxqueues 1"
ip link add fpga0 $Q netns $A type veth peer name fpgb0 $Q netns $B
for x in "$A fpga0" "$B fpgb0"; do
    set -- $x
    ip -n "$1" link set dev lo up
    ip -n "$1" link set dev "$2" up
done
ip -n $B addr add 198.18.0.2/24 dev fpgb0
SMAC=$(ip -n $A -br link show dev fpga0 | awk '{print $3}')

hexmac() { echo "$1" | sed 's/^/0x/; s/:/, 0x/g'; }
cat >"$OUT/pktgen-veth.trafgen" <<EOF
{
  $(hexmac "$DMAC"), $(hexmac "$SMAC"), 0x08, 0x00,
  0x45, 0x00, const16(46), const16(0), 0x40, 0x00, 64, 17, csumip(14, 33),
  198, 18, 0, 1, 198, 19, 0, 1,
  const16(1024), const16(1024), const16(26), const16(0),
  fill(0x00, 18)
}
EOF

rx_count() { ip netns exec $B cat /sys/class/net/fpgb0/statistics/rx_packets; }

# Starts a generator (command in "$@") for WARM + SECS + 2 s; prints the Mpps arriving at fpgb0.
window() {
    sleep "$WARM"
    local r0 r1
    r0=$(rx_count)
    sleep "$SECS"
    r1=$(rx_count)
    awk -v r=$((r1 - r0)) -v s="$SECS" 'BEGIN { printf "%.3f\n", r / s / 1e6 }'
}

run_trafgen() {
    timeout -s INT $((WARM + SECS + 2)) ip netns exec $A taskset -c "$CPU" \
        trafgen --dev fpga0 --conf "$OUT/pktgen-veth.trafgen" --cpus 1 -q >/dev/null 2>&1 &
    local gen=$!
    window
    pkill -INT -f "trafgen --dev fpga0" 2>/dev/null || true
    wait "$gen" 2>/dev/null || true
}

run_pktgen() {
    ip netns exec $A taskset -c "$CPU" "$FP" pktgen --port af_xdp:fpga0 --rate max --size 64 \
        --burst "$BURST" --dst-mac "$DMAC" --no-latency --quiet --duration "$((WARM + SECS + 1))s" \
        --json "$OUT/pktgen-veth.json" >"$OUT/pktgen-veth.log" 2>&1 &
    local gen=$!
    window
    wait "$gen" || { echo "pktgen failed:" >&2; cat "$OUT/pktgen-veth.log" >&2; exit 1; }
}

. bench/lib.sh

echo "# pktgen (af_xdp) vs trafgen over veth: $ROUNDS rounds x ${SECS}s, generator on CPU $CPU, 64-byte frames"
tg=() fp=()
for _ in $(seq "$ROUNDS"); do
    tg+=("$(run_trafgen)")
    fp+=("$(run_pktgen)")
done
tgm=$(printf '%s\n' "${tg[@]}" | median)
fpm=$(printf '%s\n' "${fp[@]}" | median)
printf '%-8s %s  (median %s Mpps)\n' trafgen "${tg[*]}" "$tgm"
printf '%-8s %s  (median %s Mpps)\n' pktgen "${fp[*]}" "$fpm"
awk -v a="$fpm" -v b="$tgm" 'BEGIN { printf "ratio pktgen/trafgen = %.2fx (target >= 3x)\n", a / b }'
