#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# vsock-run.sh DIR KERNEL INITRD [CONNS MIB [GCONNS GMIB]]: a guest with virtio-vsock (guest
# CID 3, vmm's socket DIR/v.sock). The guest (the kit's vsock scenario) serves vsockt on its
# port 1024 and runs vsockt's suite against our listener on port 5000 (DIR/v.sock_5000): GCONNS
# short echo connections and GMIB MiB each way (default 200 and 16); meanwhile we run the same
# suite against the guest through vmm's socket (CONNECT 1024): CONNS and MIB (1000 and 64),
# checked by hash. (Both at full size at once made the QEMU TCG test host stop now and then.) Prints 'VSOCK ...' lines (ours) and the
# console, whose 'VMMTEST guest: VSOCK ...' lines are the guest's; the kernel's messages are
# all on it (ignore_loglevel), for the report of a guest that dies. $VMM is the vmm.
set -u
dir=$1 kernel=$2 initrd=$3 conns=${4:-1000} mib=${5:-64} gconns=${6:-200} gmib=${7:-16}
sock=$dir/v.sock
con=$dir/console.log

fail() {
	echo "VSOCK ERROR $*"
	[ -n "${pid:-}" ] && kill -9 "$pid" 2>/dev/null
	[ -n "${srv:-}" ] && kill -9 "$srv" 2>/dev/null
	exit 1
}

vsockt serve-unix "${sock}_5000" >"$dir/server.log" 2>&1 &
srv=$!
"$VMM" run --kernel "$kernel" --initrd "$initrd" --memory 256M \
	--cmdline "console=ttyS0 ignore_loglevel vmmtest=vsock vmmtest.conns=$gconns vmmtest.mib=$gmib" \
	--vsock cid=3,uds="$sock" --timeout 500 </dev/null >"$con" 2>&1 &
pid=$!
# wait_con TEXT SECS: TEXT on the console, unless vmm ended first (a guest that died).
wait_con() {
	n=0
	until grep -q "$1" "$con"; do
		kill -0 "$pid" 2>/dev/null || return 1
		n=$((n + 1))
		[ $n -lt $(($2 * 5)) ] || return 1
		sleep 0.2
	done
}

wait_con "VMMTEST vsock listening" 300 || { cat "$con"; fail "the guest never served"; }
[ -S "$sock" ] || fail "vmm made no socket at $sock"
# Bounded well below the test host's wall (the case takes 15-20 s): a guest that dies silently
# under this load (the test host's defect, README) must fail this case with its console, not
# hold the test host until its wall takes every later case with it.
timeout 180 vsockt client-unix "$sock" 1024 -n "$conns" -m "$mib"
st=$?
echo "VSOCK host client status=$st"
wait_con "VMMTEST vsock client status=" 180 || echo "VSOCK ERROR the guest's client did not finish"
kill -TERM "$pid"
wait "$pid"
echo "VSOCK vmm exit=$?"
cat "$con"
# vmm removed its socket file; the listener's is ours.
[ -e "$sock" ] && echo "VSOCK ERROR $sock left behind" || echo "VSOCK socket removed"
kill "$srv" 2>/dev/null
