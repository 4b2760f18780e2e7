#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# net-user-run.sh DIR KERNEL INITRD [MIB [NETOPTS [alone]]]: a guest on vmm's user-mode
# network (--net user, libslirp in the helper vmm-slirp), no tap and nothing that leaves this
# host. The guest (the kit's net-user scenario) takes 10.0.2.15 from slirp's DHCP, serves MIB
# (default 64) MiB of its own on its port 5002, which we fetch from 127.0.0.1:5012 (hostfwd),
# and fetches as much of ours from 10.0.2.2:5003, our loopback; both checked by md5sum.
# NETOPTS go after --net user's own ("" for none, mtu=65520). 'alone': the vCPU thread gets
# the last CPU to itself, vmm's other threads and its helper the others (README, "User-mode
# networking": the QEMU test host's emulated SVM loses guests when the vCPU thread shares its
# CPU with them). Prints 'NETU ...' lines. $VMM is the vmm.
set -u
dir=$1 kernel=$2 initrd=$3 mib=${4:-64} netopts=${5:+,$5} alone=${6:-}
con=$dir/console.log

fail() {
	echo "NETU ERROR $*"
	[ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null
	[ -n "${srv:-}" ] && kill -9 "$srv" 2>/dev/null
	exit 1
}

# Until the console says $1: false once vmm has ended without it, or after $2 seconds.
await() {
	n=0
	until grep -qs "$1" "$con"; do
		kill -0 "$pid" 2>/dev/null || { grep -q "$1" "$con"; return; }
		n=$((n + 1))
		[ $n -lt $(($2 * 10)) ] || return 1
		sleep 0.1
	done
}

# A watchdog's SIGTERM must not leave vmm (and its helper on our ports) behind.
trap 'kill -9 ${pid:-} ${srv:-} 2>/dev/null' EXIT
trap 'exit 143' TERM

dd if=/dev/urandom of="$dir/host.bin" bs=1048576 count="$mib" 2>/dev/null || fail "no host file"
host_md5=$(md5sum <"$dir/host.bin" | cut -d' ' -f1)
# slirp reaches our loopback as 10.0.2.2 (the test host has no other network).
ip link set lo up 2>/dev/null
nc -l -p 5003 -e cat "$dir/host.bin" &
srv=$!
ncpu=$(nproc)
pin=
[ "$alone" = alone ] && [ "$ncpu" -ge 2 ] && pin="taskset -c 0-$((ncpu - 2))"
$pin "$VMM" run --kernel "$kernel" --initrd "$initrd" --memory 512M \
	--cmdline "console=ttyS0 quiet vmmtest=net-user vmmtest.mib=$mib" \
	--net "user,hostfwd=tcp::5012-:5002,mac=52:54:00:12:34:57$netopts" \
	--timeout 900 </dev/null >"$con" 2>&1 &
pid=$!
# Its vCPU thread (named vcpu0) to the last CPU, once it exists.
if [ -n "$pin" ]; then
	n=0
	until grep -qx vcpu0 /proc/"$pid"/task/*/comm 2>/dev/null || [ $n -ge 300 ]; do
		sleep 0.05
		n=$((n + 1))
	done
	for t in /proc/"$pid"/task/*; do
		[ "$(cat "$t/comm" 2>/dev/null)" = vcpu0 ] &&
			taskset -p -c $((ncpu - 1)) "${t##*/}" >/dev/null &&
			echo "NETU vcpu0 alone on cpu $((ncpu - 1))"
	done
fi
await "VMMTEST net-user serving" 600 ||
	{ cat "$con"; fail "the guest never served"; }
echo "NETU guest serving"
guest_md5=$(sed -n 's/.*VMMTEST net-user out-md5 \([0-9a-f]*\).*/\1/p' "$con")
# Bounded: a guest that stopped mid-transfer must fail the case, not hold it to its watchdog.
timeout 300 nc 127.0.0.1 5012 >"$dir/got.bin" || fail "cannot fetch the guest's file"
got_md5=$(md5sum <"$dir/got.bin" | cut -d' ' -f1)
echo "NETU guest-to-host bytes=$(wc -c <"$dir/got.bin")"
[ "$got_md5" = "$guest_md5" ] && echo "NETU guest-to-host md5 ok" ||
	echo "NETU ERROR guest-to-host: md5 $got_md5, the guest's $guest_md5"
rm -f "$dir/got.bin"
await "VMMTEST net-user in-md5" 600 ||
	{ cat "$con"; fail "the guest fetched nothing"; }
grep -q "VMMTEST net-user in-md5 $host_md5 bytes=$((mib * 1048576))" "$con" &&
	echo "NETU host-to-guest md5 ok" ||
	echo "NETU ERROR host-to-guest: the guest's $(grep 'net-user in-md5' "$con"), ours $host_md5"
await "VMMTEST END net-user" 120 || { cat "$con"; fail "the guest did not end"; }
wait "$pid"
st=$?
cat "$con"
echo "NETU vmm exit=$st"
