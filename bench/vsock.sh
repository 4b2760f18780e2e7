#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/vsock.sh [--build DIR] [--vmm PATH] [--qemu PATH] [--conns 200] [--mib 64] [--runs 3]
#   vsock, vmm (virtio-vsock, Firecracker's hybrid unix-socket host side) against QEMU 10
#   (microvm, vhost-vsock-device: the host kernel's vsock), the same Debian cloud-kernel guest,
#   in one boot of the QEMU TCG test host (tests/host/vsock-bench.sh): short connections per
#   second (64 bytes echoed each), and stream throughput host -> guest and guest -> host (MIB
#   MiB each, checked by hash). Runs alternate. Markdown table of medians (min-max) and
#   vmm/QEMU ratios.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build vmm='' qemu='' conns=200 mib=64 runs=3
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--vmm) vmm=$2; shift 2 ;;
	--qemu) qemu=$2; shift 2 ;;
	--conns) conns=$2; shift 2 ;;
	--mib) mib=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	-h|--help) sed -n 4,10p "$0"; exit 0 ;;
	*) sed -n 4,10p "$0" >&2; exit 2 ;;
	esac
done
die() { echo "vsock.sh: $*" >&2; exit 1; }
vmm=$(readlink -f "${vmm:-$build/vmm/vmm}")
[ -x "$vmm" ] || die "no vmm at $vmm"
# shellcheck disable=SC2034 # qemu10.sh probes -cpu with it
guest=$build/tests/guest/micro/micro-pvh.elf
work=$(mktemp -d "${TMPDIR:-/tmp}/vmm-vsock-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
# shellcheck source=bench/qemu10.sh
. "$here/qemu10.sh"
qemu_setup "$qemu" vsock.sh
qemu_to_extra "$work/extra/qemu"
cat >"$work/vsock.cases" <<CASES
case vsockbench 0
watchdog 3000
expect VB done
run VB_QEMU=@EXTRA@/qemu/$(basename "$qemu") VB_QEMU_DATA=@EXTRA@/qemu sh @TOOLS@/vsock-bench.sh @WORK@ @KIT@/cloud/bzImage @KIT@/initramfs.cpio.gz $conns $mib $runs
CASES
VMM_TEST_WALL=3300 bash "$root/tests/host/testhost.sh" --workdir "$work/th" \
	--extra-dir "$work/extra" "$vmm" "$work/vsock.cases" >"$work/th.out" 2>&1 ||
	{ cat "$work/th.out" >&2; tr -d '\r' <"$work/th/results.log" | tail -n 40 >&2; die "the test host's run failed"; }
tr -d '\r' <"$work/th/results.log" | sed -n 's/.*|VB \([a-z-]*\) run=/\1 run=/p' >"$work/vb"
[ -s "$work/vb" ] || die "no results"
echo "vsock.sh: QEMU $qemu; $conns short connections, $mib MiB each way, $runs runs" >&2
# median (min-max) of field f for VMM v
stat() {
	awk -v v="$1" -v f="$2" '$1 == v { for (i = 2; i <= NF; i++) { split($i, kv, "=");
		if (kv[1] == f) print kv[2] } }' "$work/vb" | sort -g |
		awk '{ a[NR] = $1 } END { if (!NR) { print "-"; exit }
			m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			printf "%.1f (%.1f-%.1f)\n", m, a[1], a[NR] }'
}
med() { stat "$1" "$2" | cut -d' ' -f1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a != "-") printf "%.2f", a / b; else print "-" }'; }
echo "| metric | vmm (hybrid unix socket) | QEMU (vhost-vsock) | vmm/QEMU |"
echo "|---|---|---|---|"
for f in conns_per_s h2g_mibs g2h_mibs; do
	case $f in
	conns_per_s) label="short connections per second (host -> guest)" ;;
	h2g_mibs) label="stream host -> guest, MiB/s" ;;
	g2h_mibs) label="stream guest -> host, MiB/s" ;;
	esac
	echo "| $label | $(stat vmm $f) | $(stat qemu $f) | $(ratio "$(med vmm $f)" "$(med qemu $f)") |"
done
