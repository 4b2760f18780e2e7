# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# bench/qemu10.sh, sourced by the benchmarks that run QEMU 10 as the peer (live_update.sh,
# hostupdate.sh, net.sh, vsock.sh): qemu_setup [QEMU [WHO]] sets qemu, qemu_data and qemu_cpu;
# qemu_to_extra DIR copies that QEMU and the firmware its microvm loads into DIR, for a test
# host's --extra-dir (testhost.sh adds the binary's shared libraries).
# Without QEMU, Debian's qemu-system-x86 10.0 from bookworm-backports (tests/host/qemu10.sh,
# the one the test host runs on: fetched once into ${XDG_CACHE_HOME:-~/.cache}/vmm/qemu10).
# The caller has die(), $work (a scratch directory) and $guest (the micro-guest, for the -cpu
# probe).

# shellcheck source=tests/host/qemu10.sh
. "$(dirname "${BASH_SOURCE[0]}")/../tests/host/qemu10.sh"

qemu_setup() {
	local who=${2:-bench}
	qemu=${1:-}
	if [ -z "$qemu" ]; then
		qemu10_fetch "$who" || die "cannot fetch QEMU 10 (above); give one with --qemu"
	else
		qemu=$(command -v "$qemu") || die "--qemu: not found"
		qemu_data=$(cd "$(dirname "$qemu")/../share/qemu" 2>/dev/null && pwd) || qemu_data=/usr/share/qemu
	fi
	"$qemu" -machine help | grep -q microvm || die "$qemu has no microvm machine"

	# QEMU -cpu host aborts on some of our machines setting MSR 0x10a (ENVIRONMENT.md): probe as
	# boot.sh does, with the guest's "exit" scenario (debug-exit 0: status 1).
	qemu_cpu=
	for c in host host,-arch-capabilities max,-arch-capabilities; do
		st=0
		# In a shell of its own, which says "Aborted" into the probe's log, not on our terminal.
		bash -c '"$@"; exit $?' probe timeout 60 "$qemu" -L "$qemu_data" -M microvm -accel kvm -cpu "$c" \
			-m 64M -nodefaults -no-user-config -display none -serial stdio \
			-device isa-debug-exit,iobase=0xf4,iosize=1 -kernel "$guest" \
			-append "t.scenario=exit t.code=0" >"$work/probe" 2>&1 </dev/null || st=$?
		if [ "$st" = 1 ] && grep -q 'MICRO EXIT 0' "$work/probe"; then
			qemu_cpu=$c
			break
		fi
	done
	[ -n "$qemu_cpu" ] || { cat "$work/probe" >&2; die "QEMU does not run the micro-guest with any -cpu tried"; }
}

qemu_to_extra() {
	local dir=$1 f dd
	mkdir -p "$dir"
	cp "$qemu" "$dir/" || die "cannot copy $qemu"
	# efi-virtio.rom: a NIC's option ROM, which QEMU looks for even on microvm.
	for f in bios-microvm.bin pvh.bin linuxboot_dma.bin efi-virtio.rom; do
		for dd in "$qemu_data" /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
			[ -e "$dd/$f" ] && { cp -L "$dd/$f" "$dir/"; break; }
		done
	done
}
