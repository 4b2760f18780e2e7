#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# net-run.sh DIR KERNEL INITRD [MIB [NETOPTS MINSECS]]: a guest on virtio-net over a tap of
# this (test) host. vmm makes the tap (vmmtap0); we give it 10.77.0.1/24. The guest (the kit's
# net scenario, 10.77.0.2) pings us, serves MIB (default 64) MiB of its own on port 5002, which
# we fetch, and fetches as much of ours from port 5003 at the same time; both checked by
# md5sum. NETOPTS go after --net's own (rate limits); then both transfers must take at least
# MINSECS seconds ('NET limited: ...'). Prints 'NET ...' lines. $VMM is the vmm.
set -u
dir=$1 kernel=$2 initrd=$3 mib=${4:-64} netopts=${5:+,$5} minsecs=${6:-0}
tap=vmmtap0
con=$dir/console.log

# vmm's threads: name, state, CPU ticks (a stuck transfer: is the vCPU running or waiting?).
threads() {
	for t in /proc/"$pid"/task/*; do
		echo "NET thread $(cat "$t/comm" 2>/dev/null) $(awk '{ print $3, $14 + $15 }' "$t/stat" 2>/dev/null)"
	done
}

fail() {
	echo "NET ERROR $*"
	if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then
		threads
		sleep 1
		threads
	elif [ -n "${pid:-}" ]; then
		wait "$pid"
		echo "NET vmm had ended, status $?"
	fi
	cat "$con"
	grep '^Tcp:' /proc/net/snmp | sed 's/^/NET host snmp /'
	[ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null
	[ -n "${srv:-}" ] && kill -9 "$srv" 2>/dev/null
	exit 1
}

# Seconds since boot, to the hundredth (busybox's date has no %N).
now() { cut -d' ' -f1 /proc/uptime; }

dd if=/dev/urandom of="$dir/host.bin" bs=1048576 count="$mib" 2>/dev/null || fail "no host file"
host_md5=$(md5sum <"$dir/host.bin" | cut -d' ' -f1)
nc -l -p 5003 -e cat "$dir/host.bin" &
srv=$!
"$VMM" run --kernel "$kernel" --initrd "$initrd" --memory 512M \
	--cmdline "console=ttyS0 quiet vmmtest=net vmmtest.mib=$mib" \
	--net "tap=$tap,mac=52:54:00:12:34:56$netopts" \
	--timeout 600 </dev/null >"$con" 2>&1 &
pid=$!
# vmm opens the tap twice, in its device check and then for the device: the first one is gone
# again at once, so our address must still be there a second after it was set.
configured() { ip addr show $tap 2>/dev/null | grep -q 'inet 10\.77\.0\.1/24'; }
n=0
while :; do
	if configured; then
		sleep 1
		configured && break
	fi
	n=$((n + 1))
	[ $n -lt 100 ] || { cat "$con"; fail "vmm made no tap $tap, or cannot configure it"; }
	{ ip addr add 10.77.0.1/24 dev $tap && ip link set $tap up; } 2>/dev/null || sleep 0.1
done
echo "NET tap up"
lutool wait "$con" 0 "VMMTEST net serving" 300 >/dev/null || { cat "$con"; fail "the guest never served"; }
t0=$(now)
guest_md5=$(sed -n 's/.*VMMTEST net out-md5 \([0-9a-f]*\).*/\1/p' "$con")
# Bounded: a guest that stopped mid-transfer must fail the case, not hold it to its watchdog.
timeout 300 nc 10.77.0.2 5002 >"$dir/got.bin" ||
	fail "cannot fetch the guest's file ($(wc -c <"$dir/got.bin") bytes came)"
got_md5=$(md5sum <"$dir/got.bin" | cut -d' ' -f1)
echo "NET guest-to-host bytes=$(wc -c <"$dir/got.bin")"
[ "$got_md5" = "$guest_md5" ] && echo "NET guest-to-host md5 ok" ||
	echo "NET ERROR guest-to-host: md5 $got_md5, the guest's $guest_md5"
lutool wait "$con" 0 "VMMTEST net in-md5" 300 >/dev/null || { cat "$con"; fail "the guest fetched nothing"; }
grep -q "VMMTEST net in-md5 $host_md5 " "$con" && echo "NET host-to-guest md5 ok" ||
	echo "NET ERROR host-to-guest: the guest's $(grep 'net in-md5' "$con"), ours $host_md5"
if [ "$minsecs" != 0 ]; then
	secs=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
	awk -v s="$secs" -v m="$minsecs" 'BEGIN { exit !(s >= m) }' &&
		echo "NET limited: both ways took ${secs}s, at least ${minsecs}s" ||
		echo "NET ERROR limited: both ways took ${secs}s, the limits allow no less than ${minsecs}s"
fi
lutool wait "$con" 0 "VMMTEST END net" 120 >/dev/null || { cat "$con"; fail "the guest did not end"; }
wait "$pid"
st=$?
cat "$con"
echo "NET vmm exit=$st"
