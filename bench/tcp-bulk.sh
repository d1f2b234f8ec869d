#!/usr/bin/env bash
# One-way TCP bulk transfer inside one process on one thread: two ferroplane stacks over a
# `ring` port pair vs smoltcp's own loopback benchmark setup (one interface, two sockets).
#
# Pairs compared (payload Gbit/s):
#   mtu1500:  ferroplane, 1500-byte MTU     vs smoltcp --device eth1500 (1500 MTU, checksums
#             computed and verified on both sides, in software)
#   large:    ferroplane, 65000-byte MTU    vs smoltcp --device loopback (65535 MTU). smoltcp's
#             loopback skips checksums entirely, so ferroplane runs with --csum-offload: its
#             ring ports take partial TCP checksums and hand them over as verified, the way
#             Linux veth/loopback pass CHECKSUM_PARTIAL; neither side sums the payload
#   large-zc: the same, but ferroplane's client hands its bytes over as mbufs (--handover:
#             clones of the pattern's mbufs, TcpSocket::write_mbuf) instead of copying them
#             into the send buffer; smoltcp has no such API (its side copies, as above)
# At 65000 bytes ferroplane sends payloads by reference and its sink reads them in place.
# Both move BYTES through 256 KiB socket buffers; ferroplane's sink compares every delivered
# byte with the sent stream and the run fails on a mismatch or a wrong count. Runs alternate
# (smoltcp, ferroplane, …) so load from elsewhere on the machine hits both alike; the report
# gives each run, the median over rounds and the ratio ferroplane / smoltcp (target ≥ 2×).
#
# Usage: bench/tcp-bulk.sh [ROUNDS=5] [BYTES=1073741824]
# CPU=n pins every run to that CPU with taskset (default: not pinned).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-5}
BYTES=${2:-1073741824}
PIN=()
if [ -n "${CPU:-}" ]; then PIN=(taskset -c "$CPU"); fi

cargo build --release --quiet -p ferroplane-bench --bin tcp-bulk-ferroplane --bin tcp-bulk-smoltcp
FP=target/release/tcp-bulk-ferroplane
SM=target/release/tcp-bulk-smoltcp

gbps() { sed -n 's/.* gbit_s=\([0-9.]*\).*/\1/p'; }
. bench/lib.sh

echo "# tcp bulk: $ROUNDS rounds x $BYTES bytes, one thread per run${CPU:+, pinned to CPU $CPU}"
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %-26s %s\n' pair side "Gbit/s per round"
for pair in mtu1500 large large-zc; do
    case $pair in
        mtu1500) dev=eth1500 mtu=1500 fpopt=() ;;
        large) dev=loopback mtu=65000 fpopt=(--csum-offload) ;;
        large-zc) dev=loopback mtu=65000 fpopt=(--csum-offload --handover) ;;
    esac
    sm=() fp=()
    for _ in $(seq "$ROUNDS"); do
        sm+=("$("${PIN[@]}" "$SM" --bytes "$BYTES" --device "$dev" | gbps)")
        fp+=("$("${PIN[@]}" "$FP" --bytes "$BYTES" --mtu "$mtu" "${fpopt[@]}" | gbps)")
    done
    smm=$(printf '%s\n' "${sm[@]}" | median)
    fpm=$(printf '%s\n' "${fp[@]}" | median)
    printf '%-8s %-26s %s  (median %s)\n' "$pair" "smoltcp device=$dev" "${sm[*]}" "$smm"
    printf '%-8s %-26s %s  (median %s)\n' "$pair" "ferroplane mtu=$mtu ${fpopt[*]:-}" "${fp[*]}" "$fpm"
    awk -v a="$fpm" -v b="$smm" -v p="$pair" \
        'BEGIN { printf "%-8s ratio ferroplane/smoltcp = %.2fx (target >= 2x)\n", p, a / b }'
done
