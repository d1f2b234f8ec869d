#!/usr/bin/env bash
# ferroplane pktgen vs DPDK testpmd --forward-mode=txonly on a null port, tx-only, side by side
# in one run: 64-byte UDP frames, one transmitting core (CPU $CPU), burst 32. Runs alternate
# (testpmd, ferroplane, …); prints Mpps per round, the medians and the ratio pktgen / testpmd.
#
# The veth + AF_XDP comparison against trafgen is bench/pktgen-vs-trafgen.sh.
#
# Usage: bench/pktgen-vs-testpmd.sh [ROUNDS=3] [SECONDS=5]
# Needs root (huge pages for testpmd) and installs Debian's dpdk-dev if dpdk-testpmd is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
SECS=${2:-5}
CPU=${CPU:-1}
OUT=bench/out
mkdir -p "$OUT"

if ! command -v dpdk-testpmd >/dev/null; then
    echo "installing dpdk-dev (dpdk-testpmd)…" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpdk-dev >/dev/null
fi
if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 512 ]; then
    echo 512 > /proc/sys/vm/nr_hugepages
fi

cargo build --release --quiet -p ferroplane-apps
FP=target/release/ferroplane

# Mean of per-second samples after the first one (warm-up).
steady_mean() { awk 'NR > 1 { s += $1; n++ } END { if (n) printf "%.2f", s / n; else print "nan" }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

run_testpmd() { # -> Mpps
    local log="$OUT/testpmd-txonly.log"
    timeout -s INT $((SECS + 3)) dpdk-testpmd -l 0,"$CPU" --no-pci --in-memory \
        --vdev net_null0 --log-level=lib.eal:warning -- \
        --forward-mode=txonly --txpkts=64 --total-num-mbufs=16384 --burst=32 --stats-period 1 \
        >"$log" 2>&1 || true
    grep -E '^\s+Tx-pps:' "$log" | awk '{ printf "%.4f\n", $2 / 1e6 }' | awk '$1 > 0' | steady_mean
}

run_pktgen() { # -> Mpps
    local cfg="$OUT/pktgen-null.toml" json="$OUT/pktgen-null.json"
    sed -e "s/^id = 1$/id = 1\ncpu = $CPU/" configs/pktgen-null.toml >"$cfg"
    "$FP" pktgen --config "$cfg" --duration "${SECS}s" --quiet --json "$json" >/dev/null
    python3 -c "import json,sys; print('%.2f' % (json.load(open(sys.argv[1]))['totals']['tx_pps'] / 1e6))" "$json"
}

echo "# pktgen vs testpmd txonly: $ROUNDS rounds x ${SECS}s, tx core = CPU $CPU, 64-byte frames"
tp=() fp=()
for _ in $(seq "$ROUNDS"); do
    tp+=("$(run_testpmd)")
    fp+=("$(run_pktgen)")
done
tpm=$(printf '%s\n' "${tp[@]}" | median)
fpm=$(printf '%s\n' "${fp[@]}" | median)
printf '%-10s %s  (median %s Mpps)\n' testpmd "${tp[*]}" "$tpm"
printf '%-10s %s  (median %s Mpps)\n' pktgen "${fp[*]}" "$fpm"
awk -v a="$fpm" -v b="$tpm" 'BEGIN { printf "ratio pktgen/testpmd = %.2fx\n", a / b }'
