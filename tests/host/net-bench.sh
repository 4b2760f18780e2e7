#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# net-bench.sh DIR KERNEL INITRD MIB RUNS: virtio-net over a tap, vmm against QEMU (microvm,
# virtio-net-device on a tap, vhost off; on too with NB_VHOST=1 where /dev/vhost-net is: in the
# TCG test host that run ended with a kernel stack overflow in QEMU's vCPU thread after ten
# minutes without the guest's transfer completing), the same guest (the
# kit's netbench scenario). Per run and VMM: the guest's ping RTT to us (10 pings, average), MIB
# MiB guest -> host (we fetch from its nc, timed here) and host -> guest (it fetches from ours,
# timed there), all over TCP on 10.77.0.0/24. Runs alternate between the VMMs. Prints
#   NB VMM run=N rtt_ms=X g2h_mbps=Y h2g_mbps=Z
# $VMM is the vmm; $NB_QEMU and $NB_QEMU_DATA QEMU and its firmware directory (no QEMU: vmm
# only). Inside the QEMU TCG test host (bench/net.sh), as root.
set -u
dir=$1 kernel=$2 initrd=$3 mib=$4 runs=$5
con=$dir/console.log
cmdline="console=ttyS0 quiet vmmtest=netbench vmmtest.mib=$mib"
mac=52:54:00:12:34:56

up() {
	read -r u _ </proc/uptime
	echo "$u"
}

fail() {
	echo "NB ERROR $*"
	[ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null
	exit 1
}

start_vmm() {
	"$VMM" run --kernel "$kernel" --initrd "$initrd" --memory 256M --cmdline "$cmdline" \
		--net tap=$1,mac=$mac --timeout 600 </dev/null >"$con" 2>&1 &
	pid=$!
}

start_qemu() {
	"$NB_QEMU" -L "$NB_QEMU_DATA" -M microvm,acpi=on -accel kvm -cpu host -smp 1 -m 256M \
		-no-reboot -nodefaults -no-user-config -display none -serial stdio \
		-kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
		-netdev "tap,id=n0,ifname=$1,script=no,downscript=no,vhost=$2" \
		-device "virtio-net-device,netdev=n0,mac=$mac" </dev/null >"$con" 2>&1 &
	pid=$!
}

# One run: $1 the name, $2 the tap, then how to start the VMM.
one() {
	name=$1 tap=$2 r=$3
	shift 3
	rm -f "$con"
	: >"$con"
	"$@"
	n=0
	until ip link show "$tap" >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -lt 300 ] || { cat "$con"; fail "$name: no tap $tap"; }
		sleep 0.1
	done
	ip addr flush dev "$tap"
	ip addr add 10.77.0.1/24 dev "$tap" && ip link set "$tap" up || fail "$name: $tap"
	nc -l -p 5003 -e dd if=/dev/zero bs=1048576 count="$mib" 2>/dev/null &
	srv=$!
	lutool wait "$con" 0 "VMMTEST nb ready" 300 >/dev/null || { cat "$con"; fail "$name: guest not ready"; }
	t0=$(up)
	got=$(nc 10.77.0.2 5002 | wc -c)
	t1=$(up)
	[ "$got" = $((mib * 1048576)) ] || fail "$name: $got bytes from the guest"
	lutool wait "$con" 0 "VMMTEST nb fetched" 300 >/dev/null || { cat "$con"; fail "$name: guest fetched nothing"; }
	wait "$pid"
	wait "$srv" 2>/dev/null
	rtt=$(sed -n 's/.*VMMTEST nb ping avg=\([0-9.]*\).*/\1/p' "$con")
	h2g=$(sed -n 's/.*VMMTEST nb fetched bytes=\([0-9]*\) secs=\([0-9.]*\).*/\1 \2/p' "$con")
	echo "$h2g" | grep -q "^$((mib * 1048576)) " || { cat "$con"; fail "$name: guest fetched '$h2g'"; }
	awk -v n="$name" -v r="$r" -v rtt="$rtt" -v m="$mib" -v a="$t0" -v b="$t1" -v h="$h2g" \
		'BEGIN { split(h, hh, " "); printf "NB %s run=%d rtt_ms=%s g2h_mbps=%.1f h2g_mbps=%.1f\n",
			n, r, rtt, m * 8.388608 / (b - a), m * 8.388608 / hh[2] }'
}

r=0
while [ $r -lt "$runs" ]; do
	r=$((r + 1))
	one vmm vtap0 $r start_vmm vtap0
	if [ -x "${NB_QEMU:-}" ]; then
		one qemu qtap0 $r start_qemu qtap0 off
		[ "${NB_VHOST:-0}" = 1 ] && [ -c /dev/vhost-net ] &&
			one qemu-vhost qtap1 $r start_qemu qtap1 on
	fi
done
echo "NB done"
