#!/usr/bin/env bash
# ferroplane pktgen vs DPDK testpmd --forward-mode=txonly on a null port, tx-only, side by side
# in one run: 64-byte UDP frames, one transmitting core (CPU $CPU), burst 32. Two rows, each
# compared like for like:
#   fixed       every header field fixed: testpmd txonly / configs/pktgen-null.toml
#   multi-flow  source address varies per packet over 256 values: testpmd --txonly-multi-flow
#               (22.11: src IP += 1 in the third byte per packet, IP header checksum
#               recomputed) / the same config with src_ip = "198.18.0.0-198.18.0.255"
#               (IPv4 and UDP checksums updated incrementally per packet; testpmd sends UDP
#               checksum 0, so pktgen does a little more per packet here)
# Runs alternate (testpmd, pktgen, testpmd, …) because the machine is shared; prints Mpps
# per round, the medians and the ratio pktgen / testpmd per row.
#
# The veth + AF_XDP comparison against trafgen is bench/pktgen-vs-trafgen.sh.
#
# Usage: bench/pktgen-vs-testpmd.sh [ROUNDS=3] [SECONDS=5] [ROWS="fixed multi-flow"]
# Needs root (huge pages for testpmd) and installs Debian's dpdk-dev if dpdk-testpmd is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
SECS=${2:-5}
ROWS=${3:-fixed multi-flow}
CPU=${CPU:-1}
OUT=bench/out
mkdir -p "$OUT"

. bench/lib.sh
testpmd_setup

cargo build --release --quiet -p ferroplane-apps
FP=target/release/ferroplane


run_testpmd() { # ROW -> Mpps
    local log="$OUT/testpmd-txonly-$1.log" extra=()
    [ "$1" = multi-flow ] && extra=(--txonly-multi-flow)
    timeout -s INT $((SECS + 3)) dpdk-testpmd -l 0,"$CPU" --no-pci --in-memory \
        --vdev net_null0 --log-level=lib.eal:warning -- \
        --forward-mode=txonly "${extra[@]}" --txpkts=64 --total-num-mbufs=16384 --burst=32 \
        --stats-period 1 >"$log" 2>&1 || true
    grep -E '^\s+Tx-pps:' "$log" | awk '{ printf "%.4f\n", $2 / 1e6 }' | awk '$1 > 0' | steady_mean 1
}

run_pktgen() { # ROW -> Mpps (frames sent / time until the tx queue finished)
    local cfg="$OUT/pktgen-null-$1.toml" json="$OUT/pktgen-null-$1.json" src='198.18.0.1'
    [ "$1" = multi-flow ] && src='198.18.0.0-198.18.0.255'
    sed -e "s/^id = 1$/id = 1\ncpu = $CPU/" -e "s/^src_ip = .*/src_ip = \"$src\"/" \
        configs/pktgen-null.toml >"$cfg"
    "$FP" pktgen --config "$cfg" --duration "${SECS}s" --quiet --json "$json" >/dev/null
    python3 -c "import json,sys; print('%.2f' % (json.load(open(sys.argv[1]))['totals']['tx_pps'] / 1e6))" "$json"
}

echo "# pktgen vs testpmd txonly: $ROUNDS rounds x ${SECS}s, tx core = CPU $CPU, 64-byte frames"
for row in $ROWS; do
    tp=() fp=()
    for _ in $(seq "$ROUNDS"); do
        tp+=("$(run_testpmd "$row")")
        fp+=("$(run_pktgen "$row")")
    done
    tpm=$(printf '%s\n' "${tp[@]}" | median)
    fpm=$(printf '%s\n' "${fp[@]}" | median)
    echo "## $row"
    printf '%-10s %s  (median %s Mpps)\n' testpmd "${tp[*]}" "$tpm"
    printf '%-10s %s  (median %s Mpps)\n' pktgen "${fp[*]}" "$fpm"
    awk -v a="$fpm" -v b="$tpm" 'BEGIN { printf "ratio pktgen/testpmd = %.2fx\n", a / b }'
done
