#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# lu-run.sh DIR KERNEL INITRD CMDLINE UPDATES: live updates and a snapshot/restore of a Linux
# guest (cases/liveupdate.cases; the guest runs init.sh's 'records' scenario), driven over
# vmm's API socket with apictl. Run under 'lutool supervise DIR/exits.log', which reaps every
# vmm (after an update the new one is no child of ours) and logs its exit status. The guest's
# disks are made here: DIR/disk.img (8 MiB, the records) and DIR/ctl.img (the control disk).
#   1. vmm --api-sock, configured and started over the socket; the first records acked; the
#      guest's clock against this host's (heartbeats: lutool skew); the updates and the
#      restore may not move it by 0.25 s or more
#   2. UPDATES x PUT /live-update: 200 with a new pid each time, the old process exits 0,
#      GET / on the same socket path says Running, the guest acks a record under the new one;
#      the guest's clock again. Meanwhile two streams run, paced so that updates land in them:
#      TCP over the tap (virtio-net) and vsock through vmm's socket (vsockt: 20 short
#      connections, 64 MiB each way checked by hash); both must end well, with updates
#      during each
#   3. console input still reaches the guest (ping / pong)
#   4. PUT /live-update {"binary": "/bin/false"}: refused (4xx with a fault_message), the
#      same process goes on with the guest running: heartbeats and records continue
#   5. PATCH /vm Paused, PUT /snapshot/create, SIGKILL; every record acked until then is in
#      the image already (lutool records with the console as it was); 2 s with no vmm at all,
#      vmm restore: the guest goes on, its clock is within 1 s of this host's, console input
#      reaches it (ping / pong), and it is live-updated 5 times more. A vsock connection held
#      across the snapshot ends (the guest's end by the transport reset the restore sends:
#      'VMMTEST vsock conn reset'), and new ones work again
#   6. 'LUCTL stop' on the control disk: the guest ends its records and powers off, vmm
#      exits 0
# The console (vmm's stdout, all processes in turn) is DIR/console.log, its input the FIFO
# DIR/console.in, vmm's messages (stderr) DIR/vmm.log; 'lutool records' checks the image and
# the console afterwards.
# Prints 'LU ...' lines; exits 0 when every step went as it should. $VMM is the vmm.
dir=$1 kernel=$2 initrd=$3 cmdline=$4 updates=$5
disk=$dir/disk.img ctl=$dir/ctl.img sock=$dir/api.sock state=$dir/vm.state mem=$dir/vm.mem
con=$dir/console.log fifo=$dir/console.in exits=$dir/exits.log
pid=

fail() {
	echo "LU FAIL $*"
	# What a failure report needs: the last updates (test-host uptime in s when each was
	# answered), what the supervisor saw exit, what the API says now.
	tail -n 3 "$dir/updates.log" 2>/dev/null | sed 's/^/LU diag update /'
	tail -n 3 "$exits" 2>/dev/null | sed 's/^/LU diag /'
	echo "LU diag at $(uptime_s): GET / $(apictl "$sock" GET / 2>&1)"
	[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
	exit 1
}

uptime_s() {
	read -r up _ </proc/uptime
	echo "$up"
}

size() {
	stat -c %s "$1"
}

# Start a vmm (arguments: its own) that is no child of this shell: the supervisor reaps it
# as it reaps those that live updates start, so every exit status is in $exits.
start_vmm() {
	rm -f "$dir/vmm.pid"
	(
		"$VMM" "$@" <"$fifo" >>"$con" 2>>"$dir/vmm.log" 3>&- &
		echo $! >"$dir/vmm.pid"
	)
	pid=$(cat "$dir/vmm.pid")
}

# exit_status PID SECS: the status the supervisor logged for PID, once it exited.
exit_status() {
	lutool wait "$exits" 0 "exit $1 " "$2" || return 1
	sed -n "s/^exit $1 \([0-9]*\) .*/\1/p" "$exits"
}

# progress OFFSET SECS: the guest acks a record after byte OFFSET of the console.
progress() {
	lutool wait "$con" "$1" "VMMTEST ack " "$2"
}

rm -f "$disk" "$ctl"
truncate -s 8M "$disk" && truncate -s 1M "$ctl" || fail "cannot make the disk images"
printf 'LUCTL run\n' | dd of="$ctl" conv=notrunc 2>/dev/null || fail "cannot write $ctl"
mkfifo "$fifo" || fail "mkfifo"
# Read-write: never blocks, and the FIFO never reports end-of-file to the vmm.
exec 3<>"$fifo"
: >"$con"
: >>"$exits"

start_vmm --api-sock "$sock" --id lu
apictl "$sock" wait "Not started" 30 >/dev/null || fail "GET / never said Not started"
apictl "$sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256, "smt": false}' \
	>/dev/null || fail machine-config
body=$(printf '{"kernel_image_path": "%s", "initrd_path": "%s", "boot_args": "%s"}' \
	"$kernel" "$initrd" "$cmdline")
apictl "$sock" PUT /boot-source "$body" >/dev/null || fail boot-source
drive='{"drive_id": "%s", "path_on_host": "%s", "is_root_device": false, "is_read_only": %s}'
# shellcheck disable=SC2059 # the format is $drive
apictl "$sock" PUT /drives/data "$(printf "$drive" data "$disk" false)" >/dev/null ||
	fail "drives/data"
# shellcheck disable=SC2059
apictl "$sock" PUT /drives/ctl "$(printf "$drive" ctl "$ctl" true)" >/dev/null || fail "drives/ctl"
# An entropy device under a rate limit: the guest's hwrng thread reads it across the updates.
apictl "$sock" PUT /entropy '{"rate_limiter": {"bandwidth": {"size": 65536, "refill_time": 100}}}' \
	>/dev/null || fail entropy
# A network interface on a tap vmm makes (the tap handed over by each update, made again by
# the restore's new process).
apictl "$sock" PUT /network-interfaces/eth0 \
	'{"iface_id": "eth0", "host_dev_name": "vmmlu0", "guest_mac": "52:54:00:00:00:0a"}' \
	>/dev/null || fail network-interfaces
# And a pmem device (its file handed over by each update, re-opened by the restore).
truncate -s 4M "$dir/pm.img"
apictl "$sock" PUT /pmem/pm "{\"id\": \"pm\", \"path_on_host\": \"$dir/pm.img\"}" >/dev/null ||
	fail pmem
# And vsock (its socket and each open connection handed over by each update).
apictl "$sock" PUT /vsock "{\"guest_cid\": 7, \"uds_path\": \"$dir/v.sock\"}" >/dev/null ||
	fail vsock
apictl "$sock" PUT /actions '{"action_type": "InstanceStart"}' >/dev/null || fail InstanceStart
# The first "ack 3" is record 3's (those of 30, 300... come after it).
lutool wait "$con" 0 "VMMTEST ack 3" 120 || fail "no third record acked within 120 s of the start"
echo "LU started pid=$pid"
lutool skew "$con" 5 20 date-skew-start >"$dir/skew" || fail "the guest's clock after its boot"
cat "$dir/skew"
# Set at boot from the RTC, to the second (Linux's hctosys): what follows must keep it.
skew0=$(sed -n 's/^LU date-skew-start=\([-+0-9.]*\)s.*/\1/p' "$dir/skew")

# --- 2. live updates ---------------------------------------------------------------------
# The streams (the guest serves both once it runs its records).
ip addr add 10.78.0.1/24 dev vmmlu0 && ip link set vmmlu0 up || fail "cannot configure vmmlu0"
t_streams=$(uptime_s)
vsockt client-tcp 10.78.0.2 5002 -n 20 -m 64 -r 8 >"$dir/tcp.out" 2>&1 &
tcpc=$!
vsockt client-unix "$dir/v.sock" 1024 -n 20 -m 64 -r 8 >"$dir/vsock.out" 2>&1 &
vsc=$!
i=0
: >"$dir/blackouts"
while [ $i -lt "$updates" ]; do
	i=$((i + 1))
	off=$(size "$con")
	r=$(apictl "$sock" PUT /live-update) || fail "update $i: $r"
	new=$(echo "$r" | sed -n 's/^200 .*"pid": *\([0-9]*\).*/\1/p')
	[ -n "$new" ] && [ "$new" != "$pid" ] || fail "update $i: answer '$r'"
	echo "$r" | sed -n 's/.*"blackout_us": *\([0-9]*\).*/\1/p' >>"$dir/blackouts"
	echo "$i at $(uptime_s) ($(date +%s)): $pid -> $new, blackout $(tail -n 1 "$dir/blackouts") us" \
		>>"$dir/updates.log"
	old=$pid
	pid=$new
	st=$(exit_status "$old" 10) || fail "update $i: the old vmm $old did not exit"
	[ "$st" = 0 ] || fail "update $i: the old vmm $old exited with status $st"
	kill -0 "$pid" 2>/dev/null || fail "update $i: the new vmm $pid is not running"
	r=$(apictl "$sock" GET /) || fail "update $i: GET / $r"
	case $r in *'"state":"Running"'*) ;; *) fail "update $i: GET / $r" ;; esac
	progress "$off" 30 || fail "update $i: no record acked under the new vmm $pid"
done
wait "$tcpc"
tst=$?
t_tcp=$(uptime_s)
wait "$vsc"
vst=$?
t_vs=$(uptime_s)
sed 's/^/LU tcp: /' "$dir/tcp.out"
sed 's/^/LU vsock: /' "$dir/vsock.out"
# How many updates each stream saw (updates.log: "N at UPTIME ...").
during() {
	awk -v a="$t_streams" -v b="$1" '$3 > a && $3 < b { n++ } END { print n + 0 }' \
		"$dir/updates.log"
}
[ "$tst" = 0 ] || fail "the TCP stream across the updates failed (status $tst)"
[ "$vst" = 0 ] || fail "the vsock stream across the updates failed (status $vst)"
echo "LU streams-ok tcp-updates=$(during "$t_tcp") vsock-updates=$(during "$t_vs")"
[ "$(during "$t_tcp")" -gt 0 ] && [ "$(during "$t_vs")" -gt 0 ] ||
	fail "no update happened during a stream"
echo "LU updates=$i last-pid=$pid blackout_us $(sort -n "$dir/blackouts" |
	awk '{ v[NR] = $1 } END { printf "p50=%d max=%d", v[int((NR + 1) / 2)], v[NR] }')"
lutool skew "$con" 5 20 date-skew-updated "$skew0" || fail "the guest's clock after the updates"

# --- 3. console input after the updates ------------------------------------------------
off=$(size "$con")
echo "ping 1" >&3
lutool wait "$con" "$off" "VMMTEST pong 1" 20 || fail "no pong after the updates"
echo "LU console-input-ok"

# --- 4. an update to a binary that is not vmm --------------------------------------------
off=$(size "$con")
r=$(apictl "$sock" PUT /live-update '{"binary": "/bin/false"}') &&
	fail "/bin/false accepted: $r"
case $r in
4[0-9][0-9]' '*'"fault_message"'*) ;;
*) fail "/bin/false: want a 4xx with a fault_message, got '$r'" ;;
esac
echo "LU /bin/false: $r"
code=${r%% *}
kill -0 "$pid" 2>/dev/null || fail "the vmm $pid is gone after the refused update"
r=$(apictl "$sock" GET /) || fail "GET / after the refused update: $r"
case $r in *'"state":"Running"'*) ;; *) fail "after the refused update: GET / $r" ;; esac
lutool wait "$con" "$off" "VMMTEST hb " 20 || fail "no heartbeat after the refused update"
progress "$off" 30 || fail "no record acked after the refused update"
echo "LU false-refused status=$code pid=$pid"

# --- 5. snapshot, SIGKILL, restore --------------------------------------------------------
# A vsock connection open across it.
vsockt hold-unix "$dir/v.sock" 1024 600 >"$dir/hold.out" 2>&1 &
holdc=$!
lutool wait "$dir/hold.out" 0 "VSOCK hold connected" 20 >/dev/null || fail "vsock hold: no connection"
apictl "$sock" PATCH /vm '{"state": "Paused"}' >/dev/null || fail "pause"
apictl "$sock" wait Paused 10 >/dev/null || fail "not Paused"
body=$(printf '{"snapshot_path": "%s", "mem_file_path": "%s"}' "$state" "$mem")
r=$(apictl "$sock" PUT /snapshot/create "$body") || fail "snapshot/create: $r"
kill -9 "$pid"
st=$(exit_status "$pid" 10) || fail "the vmm $pid did not die of SIGKILL"
[ "$st" = 137 ] || fail "the vmm $pid exited with $st after SIGKILL"
echo "LU snapshot taken, vmm $pid killed"
# Nothing runs the guest now: the image holds what the acks promised.
lutool records "$disk" "$con" "$(size "$con")" || fail "records missing after SIGKILL"
# Long enough that a guest clock not moved on by the restore is seen (more than 1 s behind).
sleep 2
off=$(size "$con")
start_vmm restore "$state" --mem "$mem" --api-sock "$sock" --id lu-restored
apictl "$sock" wait Running 30 >/dev/null || fail "restored vmm $pid: not Running"
lutool skew "$con" 5 30 date-skew "$skew0" || fail "the guest's clock after the restore"
echo "LU date-skew-ok"
progress "$off" 30 || fail "no record acked after the restore"
echo "LU restored pid=$pid"
off=$(size "$con")
echo "ping 2" >&3
lutool wait "$con" "$off" "VMMTEST pong 2" 10 || fail "no pong after the restore (console input)"
echo "LU console-input-after-restore=ok"
# The held vsock connection: ended for the host program with the old process, ended for the
# guest by the transport reset; new connections work.
wait "$holdc"
cat "$dir/hold.out" | sed 's/^/LU /'
grep -q "VSOCK hold ended" "$dir/hold.out" || fail "vsock hold: did not end with the killed vmm"
lutool wait "$con" 0 "VMMTEST vsock conn reset" 30 >/dev/null ||
	fail "vsock: the guest's connection was not reset by the restore"
vsockt client-unix "$dir/v.sock" 1024 -n 5 -m 1 >"$dir/vsock2.out" 2>&1 ||
	{ cat "$dir/vsock2.out"; fail "vsock: no new connection after the restore"; }
echo "LU vsock-reconnected"
# A restored VM is live-updated too (its RAM: a memfd filled from the snapshot's memory file
# as the guest touches it, handed over with that file).
j=0
while [ $j -lt 5 ]; do
	j=$((j + 1))
	off=$(size "$con")
	r=$(apictl "$sock" PUT /live-update) || fail "restored update $j: $r"
	new=$(echo "$r" | sed -n 's/^200 .*"pid": *\([0-9]*\).*/\1/p')
	[ -n "$new" ] && [ "$new" != "$pid" ] || fail "restored update $j: answer '$r'"
	old=$pid
	pid=$new
	st=$(exit_status "$old" 10) || fail "restored update $j: the old vmm $old did not exit"
	[ "$st" = 0 ] || fail "restored update $j: the old vmm $old exited with status $st"
	progress "$off" 30 || fail "restored update $j: no record acked under the new vmm $pid"
done
echo "LU restored-updates=$j pid=$pid"

# --- 6. the end --------------------------------------------------------------------------
printf 'LUCTL stop\n' | dd of="$ctl" conv=notrunc 2>/dev/null || fail "cannot write $ctl"
st=$(exit_status "$pid" 60) || fail "the guest did not power off within 60 s of 'LUCTL stop'"
pid=
echo "LU vmm exited status=$st"
[ "$st" = 0 ]
