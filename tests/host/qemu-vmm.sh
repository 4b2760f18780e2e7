#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# qemu-vmm.sh run --kernel PATH [--initrd PATH] [--cmdline STR] [--cpus N] [--memory SIZE]
#                 [--timeout SECONDS]
#
# A reference stand-in for 'vmm run' built on QEMU (TCG, or KVM with QEMU_VMM_ACCEL=kvm),
# with the same exit statuses: 0 poweroff/reboot, (v<<1)|1 debug-exit, 100 guest panic,
# 124 timeout. It checks the guest kit and the case files independently of our VMM:
#   VMM_TEST_DIRECT=1 tests/host/testhost.sh tests/host/qemu-vmm.sh lifecycle.cases
set -uo pipefail

[ "${1:-}" = run ] || { echo "usage: qemu-vmm.sh run --kernel PATH ..." >&2; exit 2; }
shift
kernel='' initrd='' cmdline='' cpus=1 memory=512M tmo=0
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2 ;;
	--initrd) initrd=$2 ;;
	--cmdline) cmdline=$2 ;;
	--cpus) cpus=$2 ;;
	--memory) memory=$2 ;;
	--timeout) tmo=$2 ;;
	*) echo "qemu-vmm: unknown option $1" >&2; exit 2 ;;
	esac
	shift 2 || { echo "qemu-vmm: $1 needs a value" >&2; exit 2; }
done
[ -n "$kernel" ] || { echo "qemu-vmm: --kernel is required" >&2; exit 2; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2054 # commas are inside QEMU option values
args=(-accel "${QEMU_VMM_ACCEL:-tcg}" -M pc -m "$memory" -smp "$cpus" -nodefaults -no-reboot
      -display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=1
      -device pvpanic -action panic=exit-failure -kernel "$kernel" -append "$cmdline")
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
