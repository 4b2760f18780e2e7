#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Host kernel update (issue 11), in two parts; see bench/README.md for what each number means.
#
#   bench/hostupdate.sh [--build DIR] [--vmm PATH] [--qemu PATH] [--sizes 256,2048] [--runs N]
#       the VMM's share of the guest's pause, without a kexec, on this machine's /dev/kvm:
#       vmm hostupdate prepare + resume against QEMU 10's cpr-reboot (x-ignore-shared), same
#       micro-guest, RAM in a shared file on /dev/shm (bench/hostupdate.py). Markdown table.
#   bench/hostupdate.sh --kexec [--route dax|luo] [--build DIR] [--vmm PATH] [--sizes 256,2048]
#                       [--runs N]
#       the whole pause across a real kexec of the QEMU TCG test host (tests/host/hk-run.sh):
#       pause + state, the kexec's jump, the new kernel's boot, the host's own init, vmm's
#       restore, for a Linux guest; one test-host boot per run. dax (default): RAM on persistent
#       memory, Debian's kernel; luo: RAM in a memfd, the LUO kernel (tests/host/luo/); qemu:
#       the peer, QEMU 10's cpr-reboot with its RAM on the same persistent memory.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build vmm= qemu= sizes=256,2048 runs=5 kexec=0 route=dax

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--vmm) vmm=$2; shift 2 ;;
	--qemu) qemu=$2; shift 2 ;;
	--sizes) sizes=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--kexec) kexec=1; shift ;;
	--route) route=$2; shift 2 ;;
	-h|--help) sed -n 4,17p "$0"; exit 0 ;;
	*) sed -n 4,17p "$0" >&2; exit 2 ;;
	esac
done
die() { echo "hostupdate.sh: $*" >&2; exit 1; }
vmm=$(readlink -f "${vmm:-$build/vmm/vmm}")
guest=$build/tests/guest/micro/micro-pvh.elf
[ -x "$vmm" ] || die "vmm binary not found at $vmm (build it, or pass --build DIR / --vmm PATH)"
work=$(mktemp -d "${TMPDIR:-/tmp}/vmm-hu-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ "$kexec" = 1 ]; then
	# One test-host boot per run and size: the case's 'HK parts-ms' line.
	echo "| guest RAM | run | pause + state | kexec jump | kernel boot | host init | restore | of which LUO retrieve | guest pause | vmm share |"
	echo "|---|---|---|---|---|---|---|---|---|---|"
	case $route in dax | luo | qemu) ;; *) die "--route: dax, luo or qemu" ;; esac
	extra=()
	if [ "$route" = qemu ]; then
		# QEMU 10 and the firmware files microvm loads, into the test host (/extra).
		guest=$build/tests/guest/micro/micro-pvh.elf
		# shellcheck source=bench/qemu10.sh
		. "$here/qemu10.sh"
		qemu_setup "$qemu" hostupdate.sh
		qemu_to_extra "$work/extra/qemu"
		extra=(--extra-dir "$work/extra")
	fi
	for mib in ${sizes//,/ }; do
		case $route in
		dax | qemu) src=$root/tests/host/cases/hostkexec.cases ;;
		luo) src=$root/tests/host/cases/luo.cases ;;
		esac
		env="HK_MIB=$mib"
		[ "$route" = qemu ] && env="$env HK_QEMU=@EXTRA@/qemu/$(basename "$qemu") HK_QEMU_DATA=@EXTRA@/qemu"
		sed -e "s|^run sh @TOOLS@/hk-run.sh dax|run $env sh @TOOLS@/hk-run.sh $route|" \
			-e "s|^run sh @TOOLS@/hk-run.sh luo|run $env sh @TOOLS@/hk-run.sh luo|" \
			-e "/^expect HK prepare: hostupdate: kexec now/!{/^expect HK prepare/d}" \
			-e "/^expect HK resume: vm/d" "$src" >"$work/hk-$mib.cases"
		for r in $(seq 1 "$runs"); do
			rm -rf "$work/th"
			if [ "$route" != luo ]; then
				bash "$root/tests/host/testhost.sh" --workdir "$work/th" "${extra[@]}" \
					--pmem-mb $((mib + 768)) "$vmm" "$work/hk-$mib.cases"
			else
				bash "$root/tests/host/luo/run.sh" "$work/th" "$vmm" "$work/hk-$mib.cases"
			fi >"$work/th.out" 2>&1 || { cat "$work/th.out" >&2; die "the test host's run failed"; }
			tr -d '\r' <"$work/th/results.log" | sed -n 's/.*HK parts-ms //p' |
				awk -v mib="$mib" -v r="$r" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
					printf "| %d MiB | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", mib, r,
					v["pause+state"], v["kexec-jump"], v["kernel-boot"], v["host-init"],
					v["restore"], v["luo-retrieve"], v["guest-pause"], v["vmm-share"] }'
		done
	done
	exit 0
fi

[ -r "$guest" ] || die "micro-guest not found at $guest (meson builds it when gcc can do -m32)"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || die "/dev/kvm is not accessible"
# shellcheck source=bench/qemu10.sh
. "$here/qemu10.sh"
qemu_setup "$qemu" hostupdate.sh
mkdir -p "$work/ram"
ramdir=/dev/shm
[ -d "$ramdir" ] && [ -w "$ramdir" ] || ramdir=$work/ram
ramdir=$(mktemp -d "$ramdir/vmm-hu.XXXXXX")
trap 'rm -rf "$work" "$ramdir"' EXIT
echo "hostupdate.sh: vmm $vmm; QEMU $qemu -cpu $qemu_cpu; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 "$here/hostupdate.py" --vmm "$vmm" --guest "$guest" --qemu "$qemu" \
	--qemu-data "$qemu_data" --qemu-cpu "$qemu_cpu" --work "$work" --ramdir "$ramdir" \
	--sizes "$sizes" --runs "$runs"
