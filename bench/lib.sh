# Helpers the bench/*.sh scripts source (from the repository root): statistics over numbers
# read one per line, and the DPDK testpmd set-up shared by the testpmd comparisons.

# Median of the numbers on stdin (the mean of the middle two for an even count).
median() {
    sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# Mean of the numbers on stdin after the first SKIP (warm-up samples), "nan" if none remain.
steady_mean() {
    awk -v skip="${1:-1}" 'NR > skip { s += $1; n++ } END { if (n) printf "%.2f", s / n; else print "nan" }'
}

# Installs Debian's dpdk-dev when dpdk-testpmd is missing and makes sure 512 huge pages exist
# (testpmd needs them; ferroplane uses them too when present, so both stand on the same footing).
# Needs root.
testpmd_setup() {
    if ! command -v dpdk-testpmd >/dev/null; then
        echo "installing dpdk-dev (dpdk-testpmd)…" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dpdk-dev >/dev/null
    fi
    if [ "$(cat /proc/sys/vm/nr_hugepages)" -lt 512 ]; then
        echo 512 >/proc/sys/vm/nr_hugepages
    fi
}
