#!/usr/bin/env bash
# Install what is missing, build vmm and the guest kit, and boot the kit's Debian cloud kernel
# with its busybox initramfs to a shell on this terminal ('poweroff -f' or Ctrl-A x to leave).
#
# Where this machine's KVM cannot run Linux in useful time (a software-nested KVM that emulates
# guest kernel code, as on our CI machines), the same vmm boots the same guest inside the QEMU
# test host (tests/host/testhost.sh --interactive), and this script says so.
# usage: tests/boot-demo.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
kit=${VMM_KIT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm/guest-kit}

tests/deps.sh
[ -d "$build" ] || meson setup "$build" >/dev/null
ninja -C "$build" >/dev/null
vmm=$build/vmm/vmm
tests/guest/kit/mkkit.sh "$kit" >/dev/null

args=(--kernel "$kit/cloud/bzImage" --initrd "$kit/initramfs.cpio.gz"
      --cmdline "console=ttyS0 quiet vmmtest=shell" --cpus 2 --memory 512M)

# Is /dev/kvm fast enough for a stock kernel? Time two million guest kernel-mode instructions
# in the micro-guest: a hardware KVM runs them in ~2 ms, a software-nested one in ~0.5 s.
if [ "${VMM_TEST_DIRECT:-}" = 1 ]; then
	kind=hardware
elif [ ! -e /dev/kvm ]; then
	kind=none
else
	start=$(date +%s%N)
	"$vmm" run --kernel "$build/tests/guest/micro/micro-pvh.elf" --memory 64M \
		--cmdline "t.scenario=spin t.n=2000000 t.end" >/dev/null 2>&1 || true
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	if [ "$ms" -lt 150 ]; then kind=hardware; else kind=software; fi
fi

if [ "$kind" = hardware ]; then
	echo "boot-demo: booting the Debian cloud kernel on this machine's KVM; 'poweroff -f' or Ctrl-A x to leave" >&2
	exec "$vmm" run "${args[@]}"
fi
if [ "$kind" = none ]; then
	reason="this machine has no /dev/kvm"
else
	reason="this machine's /dev/kvm is a software-nested KVM (2M guest kernel-mode instructions took $ms ms)"
fi
echo "boot-demo: $reason: no VMM boots a stock kernel on it in useful time." >&2
echo "boot-demo: booting the same guest with the same vmm inside the QEMU TCG test host instead (about 30 s to a prompt; 'poweroff -f' to leave)." >&2
exec tests/host/testhost.sh --kit "$kit" --interactive "$vmm" -- "${args[@]}"
