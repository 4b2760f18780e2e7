#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# vsock-bench.sh DIR KERNEL INITRD CONNS MIB RUNS: vsock, vmm's virtio-vsock with Firecracker's
# hybrid host side (a unix socket, CONNECT) against QEMU's vhost-vsock-device (the host kernel's
# vsock, AF_VSOCK on this side), the same guest (the kit's vsock-serve scenario: vsockt's
# server on port 1024). Per run and VMM, vsockt's client from here: CONNS short connections
# (64 bytes echoed each), MIB MiB host -> guest and MIB MiB guest -> host, each checked by
# hash. Runs alternate between the VMMs. Prints
#   VB VMM run=N conns_per_s=X h2g_mibs=Y g2h_mibs=Z
# $VMM is the vmm; $VB_QEMU and $VB_QEMU_DATA QEMU and its firmware directory (no QEMU or no
# /dev/vhost-vsock: vmm only). Inside the QEMU TCG test host (bench/vsock.sh), as root.
set -u
dir=$1 kernel=$2 initrd=$3 conns=$4 mib=$5 runs=$6
con=$dir/console.log
cmdline="console=ttyS0 quiet vmmtest=vsock-serve"

fail() {
	echo "VB ERROR $*"
	[ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null
	exit 1
}

start_vmm() {
	"$VMM" run --kernel "$kernel" --initrd "$initrd" --memory 256M --cmdline "$cmdline" \
		--vsock cid=$1,uds="$dir/v.sock" --timeout 900 </dev/null >"$con" 2>&1 &
	pid=$!
}

start_qemu() {
	"$VB_QEMU" -L "$VB_QEMU_DATA" -M microvm,acpi=on -accel kvm -cpu host -smp 1 -m 256M \
		-no-reboot -nodefaults -no-user-config -display none -serial stdio \
		-kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
		-device "vhost-vsock-device,guest-cid=$1" </dev/null >"$con" 2>&1 &
	pid=$!
}

# One run: $1 the name, $2 the run, then the client's target, then how to start the VMM.
one() {
	name=$1 r=$2 target=$3
	shift 3
	rm -f "$con"
	: >"$con"
	"$@"
	lutool wait "$con" 0 "VMMTEST vsock listening" 300 >/dev/null || { cat "$con"; fail "$name: guest not serving"; }
	# shellcheck disable=SC2086 # target: the client's words
	vsockt $target 1024 -n "$conns" -m "$mib" >"$dir/client.out" 2>&1 ||
		{ cat "$dir/client.out" "$con"; fail "$name: the client failed"; }
	kill -TERM "$pid"
	wait "$pid"
	awk -v n="$name" -v r="$r" -v c="$conns" -v m="$mib" '
		/^VSOCK short/ { s = $NF } /^VSOCK up/ { u = $NF } /^VSOCK down/ { d = $NF }
		END { sub("s$", "", s); sub("s$", "", u); sub("s$", "", d)
			printf "VB %s run=%d conns_per_s=%.0f h2g_mibs=%.1f g2h_mibs=%.1f\n",
				n, r, c / s, m / u, m / d }' "$dir/client.out"
}

r=0
while [ $r -lt "$runs" ]; do
	r=$((r + 1))
	one vmm $r "client-unix $dir/v.sock" start_vmm 3
	if [ -x "${VB_QEMU:-}" ] && [ -c /dev/vhost-vsock ]; then
		one qemu $r "client-vsock 4" start_qemu 4
	fi
done
echo "VB done"
