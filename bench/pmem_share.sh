#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench/pmem_share.sh [--build DIR] [--vmm PATH] [--vms 3] [--mib 128]
#   Memory for N VMs that read one file of a shared read-only base image: virtio-pmem with DAX
#   against virtio-blk, in the QEMU TCG test host (tests/host/pmem-share.sh): the copies of the
#   file held in memory, the host's page cache and the guests' own added up. Markdown table.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build vmm='' vms=3 mib=128
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--vmm) vmm=$2; shift 2 ;;
	--vms) vms=$2; shift 2 ;;
	--mib) mib=$2; shift 2 ;;
	-h|--help) sed -n 4,7p "$0"; exit 0 ;;
	*) sed -n 4,7p "$0" >&2; exit 2 ;;
	esac
done
vmm=$(readlink -f "${vmm:-$build/vmm/vmm}")
[ -x "$vmm" ] || { echo "pmem_share.sh: no vmm at $vmm" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vmm-pmem-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/share.cases" <<CASES
case pmem-share 0
watchdog 3000
expect PS done
run sh @TOOLS@/pmem-share.sh @SCRATCH@ @KIT@/cloud/bzImage @KIT@/initramfs.cpio.gz $vms $mib
CASES
# Room on the scratch disk for the image, and in the test host for the guests.
VMM_TEST_WALL=3300 bash "$root/tests/host/testhost.sh" --workdir "$work/th" \
	--scratch-mb $((mib * 2 + 512)) "$vmm" "$work/share.cases" >"$work/th.out" 2>&1 ||
	{ cat "$work/th.out" >&2; exit 1; }
echo "| VMs | file | device | host page cache | guests' page caches | copies in memory |"
echo "|---|---|---|---|---|---|"
tr -d '\r' <"$work/th/results.log" | sed -n 's/.*|PS \(pmem\|blk\) \(n=\)/\1 \2/p' |
	awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "| %s | %s | %s | %s | %s | %s |\n", v["n"], v["image"],
		$1 == "pmem" ? "virtio-pmem, DAX" : "virtio-blk", v["host"], v["guests"], v["copies"] }'
