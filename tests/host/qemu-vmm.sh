#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# qemu-vmm.sh run --kernel PATH [--initrd PATH] [--cmdline STR] [--cpus N] [--memory SIZE]
#                 [--timeout SECONDS] [--disk PATH[,ro][,cache=none|writeback][,io=uring|aio|sync]
#                 [,serial=ID]]... [--console serial|virtio]
#
# A reference stand-in for 'vmm run' built on QEMU (TCG, or KVM with QEMU_VMM_ACCEL=kvm),
# with the same exit statuses: 0 poweroff/reboot, (v<<1)|1 debug-exit, 100 guest panic,
# 124 timeout. It checks the guest kit and the case files independently of our VMM:
#   VMM_TEST_DIRECT=1 tests/host/testhost.sh tests/host/qemu-vmm.sh lifecycle.cases
# With disks or a virtio console it uses microvm, whose virtio-mmio devices are described in
# ACPI as ours are (QEMU numbers them in its own order: vda, vdb... may differ from ours);
# PIT on: without it the kernel under TCG cannot calibrate the TSC and stops.
set -uo pipefail

[ "${1:-}" = run ] || { echo "usage: qemu-vmm.sh run --kernel PATH ..." >&2; exit 2; }
shift
kernel='' initrd='' cmdline='' cpus=1 memory=512M tmo=0 console=serial
disks=()
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2 ;;
	--initrd) initrd=$2 ;;
	--cmdline) cmdline=$2 ;;
	--cpus) cpus=$2 ;;
	--memory) memory=$2 ;;
	--timeout) tmo=$2 ;;
	--disk) disks+=("$2") ;;
	--console) console=$2 ;;
	*) echo "qemu-vmm: unknown option $1" >&2; exit 2 ;;
	esac
	shift 2 || { echo "qemu-vmm: $1 needs a value" >&2; exit 2; }
done
[ -n "$kernel" ] || { echo "qemu-vmm: --kernel is required" >&2; exit 2; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
machine=pc
if [ ${#disks[@]} -gt 0 ] || [ "$console" = virtio ]; then
	machine=microvm,acpi=on,rtc=on,pit=on,pic=on
	# microvm has neither HPET nor an ACPI PM timer: when the PIT calibration of the TSC
	# fails under TCG (it often does), the kernel stops. TCG's TSC is the host's.
	khz=$(awk '/^cpu MHz/ { printf "%d", $4 * 1000; exit }' /proc/cpuinfo)
	[ -n "$khz" ] && [ "$khz" -gt 0 ] && cmdline="$cmdline tsc_early_khz=$khz"
fi
# shellcheck disable=SC2054 # commas are inside QEMU option values
args=(-accel "${QEMU_VMM_ACCEL:-tcg}" -M "$machine" -m "$memory" -smp "$cpus" -nodefaults
      -no-reboot -display none -device isa-debug-exit,iobase=0xf4,iosize=1
      -device pvpanic -action panic=exit-failure -kernel "$kernel" -append "$cmdline")
if [ "$console" = virtio ]; then
	# shellcheck disable=SC2054 # commas are inside QEMU option values
	args+=(-chardev stdio,id=con -device virtio-serial-device -device virtconsole,chardev=con)
else
	args+=(-serial stdio)
fi
i=0
for d in "${disks[@]}"; do
	path=${d%%,*} ro=off direct=off aio=io_uring serial=
	[ "$path" = "$d" ] && d= || d=${d#*,}
	IFS=, read -ra opts <<<"$d"
	for o in "${opts[@]}"; do
		case $o in
		ro) ro=on ;;
		cache=none) direct=on ;;
		cache=writeback) direct=off ;;
		io=uring) aio=io_uring ;;
		io=aio) aio=native ;;
		io=sync) aio=threads ;;
		serial=*) serial=,serial=${o#serial=} ;;
		*) echo "qemu-vmm: unknown disk option $o" >&2; exit 2 ;;
		esac
	done
	# QEMU's native AIO needs O_DIRECT; without it the thread pool is the closest match.
	[ "$aio" = native ] && [ "$direct" = off ] && aio=threads
	args+=(-drive "file=$path,if=none,id=d$i,format=raw,readonly=$ro,cache.direct=$direct,aio=$aio,discard=unmap"
	       -device "virtio-blk-device,drive=d$i$serial")
	i=$((i + 1))
done
[ -n "$initrd" ] && args+=(-initrd "$initrd")
if [ "$tmo" -gt 0 ]; then
	timeout "$tmo" qemu-system-x86_64 "${args[@]}" | tee "$out"
else
	qemu-system-x86_64 "${args[@]}" | tee "$out"
fi
rc=${PIPESTATUS[0]}
# QEMU reports a pvpanic event as exit-failure (1), which debug-exit value 0 also gives.
if [ "$rc" -eq 1 ] && grep -qa 'Kernel panic' "$out"; then
	rc=100
fi
exit "$rc"
