#!/usr/bin/env bash
# Network namespaces for trying ferroplane against Linux peers by hand, and cleanup of what
# killed test runs leave behind. Needs root and iproute2. Addresses are from 198.18.0.0/15 only.
#
#   tests/netns.sh setup-l3      two peer namespaces wired to two interfaces in the root
#                                namespace, for ferroplane to route between (see below)
#   tests/netns.sh teardown-l3   removes what setup-l3 made
#   tests/netns.sh cleanup       teardown-l3, plus every namespace named fp-* and every link
#                                named fpv* (what tests leave when killed with Ctrl-C or SIGKILL;
#                                a test run removes the leftovers of dead processes by itself).
#                                Do not run it while tests are running: it removes theirs too.
#   tests/netns.sh status        lists the fp-* namespaces and fp* links
#
# setup-l3 builds:
#
#   netns fp-a                     root namespace                     netns fp-b
#   veth-a 198.18.0.2/24 ---- fpa0 [ ferroplane  ] fpb0 ---- veth-b 198.18.1.2/24
#   default via 198.18.0.1          198.18.0.1      198.18.1.1        default via 198.18.1.1
#
# fpa0 and fpb0 get no address (ferroplane owns 198.18.0.1 and 198.18.1.1, see
# configs/l3fwd-af_packet.toml); the host neither forwards what arrives on them nor sends IPv6
# onto them. Then, with ferroplane running:
#
#   ip netns exec fp-a ping -c 3 198.18.1.2
set -euo pipefail

NS_A=fp-a
NS_B=fp-b
ROOT_A=fpa0
ROOT_B=fpb0

die() { echo "netns.sh: $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces and links): run with sudo"
    command -v ip >/dev/null || die "needs ip (apt-get install iproute2)"
}

# Keeps the host out of a test link in the root namespace.
isolate() {
    local dev=$1
    echo 0 > "/proc/sys/net/ipv4/conf/$dev/forwarding"
    echo 1 > "/proc/sys/net/ipv4/conf/$dev/rp_filter"
    echo 1 > "/proc/sys/net/ipv6/conf/$dev/disable_ipv6"
}

ns_exists() { ip netns list | awk '{print $1}' | grep -qx -- "$1"; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

kill_ns_pids() {
    local pids
    pids=$(ip netns pids "$1" 2>/dev/null || true)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086
        kill -9 $pids 2>/dev/null || true
    fi
}

del_ns() {
    if ns_exists "$1"; then
        kill_ns_pids "$1"
        ip netns del "$1"
        echo "removed namespace $1"
    fi
}

del_link() {
    if link_exists "$1"; then
        ip link del dev "$1" 2>/dev/null || true
        echo "removed link $1"
    fi
}

teardown_l3() {
    # Links first: deleting a root-side end deletes its peer at once, while a deleted
    # namespace takes its veths down in the background.
    del_link "$ROOT_A"
    del_link "$ROOT_B"
    del_ns "$NS_A"
    del_ns "$NS_B"
}

# One side: namespace $1 with end veth-$4 at address $2 routed via $3, peer $5 in the root.
side() {
    local ns=$1 addr=$2 gw=$3 name=$4 root=$5
    ip netns add "$ns"
    ip -n "$ns" link set dev lo up
    # One queue each way (a veth otherwise gets one per CPU; an AF_XDP port serves queue 0).
    ip link add "$root" numtxqueues 1 numrxqueues 1 type veth peer name "veth-$name" numtxqueues 1 numrxqueues 1 netns "$ns"
    isolate "$root"
    ip link set dev "$root" up
    ip -n "$ns" addr add "$addr" dev "veth-$name"
    ip -n "$ns" link set dev "veth-$name" up
    ip -n "$ns" route add default via "$gw"
}

setup_l3() {
    teardown_l3 >/dev/null
    # Any failure below exits (set -e); the trap then removes the half-built topology.
    trap 'rc=$?; if [ "$rc" -ne 0 ]; then
              echo "netns.sh: setup-l3 failed; removing what it made" >&2; teardown_l3 >&2
          fi' EXIT
    side "$NS_A" 198.18.0.2/24 198.18.0.1 a "$ROOT_A"
    side "$NS_B" 198.18.1.2/24 198.18.1.1 b "$ROOT_B"
    cat <<MSG
ready:
  $NS_A: veth-a 198.18.0.2/24 via 198.18.0.1  <->  $ROOT_A (root namespace, MAC $(cat /sys/class/net/$ROOT_A/address))
  $NS_B: veth-b 198.18.1.2/24 via 198.18.1.1  <->  $ROOT_B (root namespace, MAC $(cat /sys/class/net/$ROOT_B/address))
run ferroplane on $ROOT_A/$ROOT_B (e.g. configs/l3fwd-af_packet.toml), then:
  ip netns exec $NS_A ping -c 3 198.18.1.2
remove with: tests/netns.sh teardown-l3
MSG
}

cleanup() {
    teardown_l3
    local ns link
    for ns in $(ip netns list | awk '{print $1}' | grep '^fp-' || true); do
        del_ns "$ns"
    done
    for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^fpv' || true); do
        del_link "$link"
    done
    return 0
}

status() {
    echo "namespaces:"
    ip netns list | grep '^fp-' | sed 's/^/  /' || true
    echo "links in the root namespace:"
    ip -br link show | grep -E '^fp' | sed 's/^/  /' || true
}

usage() {
    # The comment block at the top of this file.
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"
    exit "${1:-0}"
}

case "${1:-}" in
    setup-l3) need_root; setup_l3 ;;
    teardown-l3) need_root; teardown_l3 ;;
    cleanup) need_root; cleanup ;;
    status) status ;;
    -h|--help|help) usage 0 ;;
    *) usage 2 >&2 ;;
esac
