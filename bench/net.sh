#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/net.sh [--build DIR] [--vmm PATH] [--qemu PATH] [--mib 64] [--runs 3]
#   virtio-net over a tap, vmm against QEMU 10 (microvm, virtio-net-device on a tap, vhost off
#   and on), the same Debian cloud-kernel guest, in one boot of the QEMU TCG test host
#   (tests/host/net-bench.sh): TCP throughput guest -> host and host -> guest (MIB MiB each,
#   busybox nc) and the guest's ping RTT to the host. Runs alternate. Markdown table of
#   medians (min-max) and vmm/QEMU ratios.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build vmm='' qemu='' mib=64 runs=3
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--vmm) vmm=$2; shift 2 ;;
	--qemu) qemu=$2; shift 2 ;;
	--mib) mib=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	-h|--help) sed -n 4,9p "$0"; exit 0 ;;
	*) sed -n 4,9p "$0" >&2; exit 2 ;;
	esac
done
die() { echo "net.sh: $*" >&2; exit 1; }
vmm=$(readlink -f "${vmm:-$build/vmm/vmm}")
[ -x "$vmm" ] || die "no vmm at $vmm"
# shellcheck disable=SC2034 # qemu10.sh probes -cpu with it
guest=$build/tests/guest/micro/micro-pvh.elf
work=$(mktemp -d "${TMPDIR:-/tmp}/vmm-net-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=bench/qemu10.sh
. "$here/qemu10.sh"
qemu_setup "$qemu" net.sh
qemu_to_extra "$work/extra/qemu"
cat >"$work/net.cases" <<CASES
case netbench 0
watchdog 3000
expect NB done
run NB_VHOST=${NB_VHOST:-0} NB_QEMU=@EXTRA@/qemu/$(basename "$qemu") NB_QEMU_DATA=@EXTRA@/qemu sh @TOOLS@/net-bench.sh @WORK@ @KIT@/cloud/bzImage @KIT@/initramfs.cpio.gz $mib $runs
CASES
VMM_TEST_WALL=3300 bash "$root/tests/host/testhost.sh" --workdir "$work/th" \
	--extra-dir "$work/extra" "$vmm" "$work/net.cases" >"$work/th.out" 2>&1 ||
	{ cat "$work/th.out" >&2; tr -d '\r' <"$work/th/results.log" | tail -n 40 >&2; die "the test host's run failed"; }
tr -d '\r' <"$work/th/results.log" | sed -n 's/.*|NB \([a-z-]*\) run=/\1 run=/p' >"$work/nb"
echo "net.sh: QEMU $qemu; $mib MiB each way, $runs runs" >&2
# median (min-max) of field f for VMM v
stat() {
	awk -v v="$1" -v f="$2" '$1 == v { for (i = 2; i <= NF; i++) { split($i, kv, "=");
		if (kv[1] == f) print kv[2] } }' "$work/nb" | sort -g |
		awk '{ a[NR] = $1 } END { if (!NR) { print "-"; exit }
			m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			printf "%.2f (%.2f-%.2f)\n", m, a[1], a[NR] }'
}
med() { stat "$1" "$2" | cut -d' ' -f1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2f", a / b; else print "-" }'; }
echo "| metric | vmm | QEMU (vhost off) | QEMU (vhost on) | vmm/QEMU off | vmm/QEMU on |"
echo "|---|---|---|---|---|---|"
for f in g2h_mbps h2g_mbps rtt_ms; do
	case $f in
	g2h_mbps) label="TCP guest -> host, Mbit/s" ;;
	h2g_mbps) label="TCP host -> guest, Mbit/s" ;;
	rtt_ms) label="ping RTT guest -> host, ms" ;;
	esac
	echo "| $label | $(stat vmm $f) | $(stat qemu $f) | $(stat qemu-vhost $f) |" \
		"$(ratio "$(med vmm $f)" "$(med qemu $f)") | $(ratio "$(med vmm $f)" "$(med qemu-vhost $f)") |"
done
