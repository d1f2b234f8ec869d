#!/usr/bin/env bash
# ferroplane l2fwd vs DPDK testpmd on null ports, measured side by side in one run.
#
# Both forward between two null ports (64-byte frames, burst 32) on one forwarding core pinned
# to the same CPU, in `io` and `macswap` mode. Runs alternate (testpmd, ferroplane, testpmd, …)
# so load from elsewhere on the machine hits both alike. Each run's figure is the mean of its
# per-second forwarding rates after the first two seconds (warm-up); the report gives the median
# over runs and the ratio ferroplane / testpmd.
#
# Usage: bench/l2fwd-vs-testpmd.sh [ROUNDS=3] [SECONDS=6]
# Needs root (huge pages for testpmd) and installs Debian's dpdk-dev (dpdk-testpmd) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
SECS=${2:-6}
CPU=${CPU:-1}
OUT=bench/out
mkdir -p "$OUT"

. bench/lib.sh
testpmd_setup

cargo build --release --quiet -p ferroplane-apps
FP=target/release/ferroplane


run_testpmd() { # mode -> Mpps
    local mode=$1 log="$OUT/testpmd-$1.log"
    timeout -s INT $((SECS + 4)) dpdk-testpmd -l 0,"$CPU" --no-pci --in-memory \
        --vdev net_null0 --vdev net_null1 --log-level=lib.eal:warning -- \
        --forward-mode="$mode" --total-num-mbufs=16384 --burst=32 --stats-period 1 \
        >"$log" 2>&1 || true
    # Each period prints Tx-pps per port: sum the two ports of each period.
    grep -E '^\s+Tx-pps:' "$log" | awk '{ print $2 }' | paste - - |
        awk '{ printf "%.4f\n", ($1 + $2) / 1e6 }' | awk '$1 > 0' | steady_mean 2
}

run_ferroplane() { # mode -> Mpps
    local mode=$1 cfg="$OUT/ferroplane-$1.toml" log="$OUT/ferroplane-$1.log"
    sed -e "s/^mode = .*/mode = \"$mode\"/" -e "s/^# cpu = 1 .*/cpu = $CPU/" \
        -e 's/^enabled = true/enabled = false/' -e '/^duration = /d' \
        configs/default.toml >"$cfg"
    "$FP" run "$cfg" --duration "$((SECS + 1))s" >"$log" 2>&1
    grep -E '^\[' "$log" | sed -E 's/.*lcore [0-9]+: rx [0-9.]+ tx ([0-9.]+) Mpps.*/\1/' | steady_mean 2
}


echo "# l2fwd vs testpmd: $ROUNDS rounds x ${SECS}s, forwarding core = CPU $CPU"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, kernel $(uname -r)"
printf '%-8s %-10s %s\n' mode tool "Mpps per round"
for mode in io macswap; do
    tp=() fp=()
    for _ in $(seq "$ROUNDS"); do
        tp+=("$(run_testpmd "$mode")")
        fp+=("$(run_ferroplane "$mode")")
    done
    tpm=$(printf '%s\n' "${tp[@]}" | median)
    fpm=$(printf '%s\n' "${fp[@]}" | median)
    printf '%-8s %-10s %s  (median %s)\n' "$mode" testpmd "${tp[*]}" "$tpm"
    printf '%-8s %-10s %s  (median %s)\n' "$mode" ferroplane "${fp[*]}" "$fpm"
    awk -v a="$fpm" -v b="$tpm" -v m="$mode" 'BEGIN { printf "%-8s ratio ferroplane/testpmd = %.2fx\n", m, a / b }'
done
