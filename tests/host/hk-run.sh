#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# hk-run.sh ROUTE KEXECDIR KERNEL INITRD CMDLINE [PMEMDIR]: a Linux guest carried across a
# kexec of the test host (issue 11; cases/hostkexec.cases for ROUTE dax, cases/luo.cases for
# ROUTE luo), in two boots of the test host that run this same script:
#   1. first boot: the guest (init.sh's 'records' scenario: fsynced, sequence-numbered records
#      acknowledged on the console, a heartbeat with its clock and uptime every second) runs
#      with its disks on the scratch disk and its RAM, for dax, in a file on PMEMDIR (ext4 with
#      DAX on the memmap= region), for luo, in a memfd as by default; once it has acknowledged
#      records, 'vmm hostupdate prepare' pauses it, snapshots it in place (dax) or preserves
#      its RAM and state in a LUO session (luo), syncs and kexecs the test host into its own
#      kernel and initramfs (testhost.sh put them in KEXECDIR) with vmmhost.resume=1;
#   2. resumed boot (host-init.sh mounts the same /pmem, VMM_RESUMED=1): 'vmm hostupdate
#      resume' restores the guest from PMEMDIR or its LUO session; it must go on: new records acknowledged,
#      heartbeats numbered on from where they stopped, its uptime never going back (it did not
#      reboot), its clock within 2 s of this host's; then 'LUCTL stop' on the control disk
#      ends it (vmm exits 0), and lutool checks that every record acknowledged before or after
#      the kexec is in the image.
# Everything lives on PMEMDIR and the scratch disk under fixed names: /tmp and the case's own
# directories do not survive the kexec. Prints 'HK ...' lines; exits 0 on success. $VMM is
# the vmm.
route=$1 kexec=$2 kernel=$3 initrd=$4 cmdline=$5 pmem=${6:-}
d=${VMM_SCRATCH:?no scratch disk}/hk
mib=${HK_MIB:-256} # the guest's RAM (bench/hostupdate.sh --kexec sets it)
case $route in
dax)
	[ -d "$pmem" ] || { echo "HK FAIL no persistent memory ($pmem)"; exit 1; }
	p=$pmem/hk
	mem="--memory ${mib}M,file=$p/vm.ram" ;;
luo)
	# Only the manifest lives in a file: RAM and state go through LUO.
	p=$d/luo
	mem="--memory ${mib}M" ;;
qemu)
	# The peer (bench/hostupdate.sh --kexec --route qemu): QEMU's cpr-reboot mode with its
	# RAM in a shared file on the same DAX file system, x-ignore-shared, state to a file.
	[ -d "$pmem" ] || { echo "HK FAIL no persistent memory ($pmem)"; exit 1; }
	[ -x "${HK_QEMU:-}" ] || { echo "HK FAIL no QEMU (HK_QEMU)"; exit 1; }
	p=$pmem/hk ;;
*) echo "HK FAIL route '$route' is neither dax, luo nor qemu"; exit 1 ;;
esac
sock=/run/hk.sock
disk=$d/disk.img ctl=$d/ctl.img con=$d/console.log states=$p/states

fail() {
	echo "HK FAIL $*"
	for f in "$d/vmm.log" "$d/prepare.log" "$d/resume.log" "${con2:-}"; do
		[ -n "$f" ] && [ -s "$f" ] && tail -n 8 "$f" | sed "s|^|HK diag $(basename "$f"): |"
	done
	exit 1
}

size() {
	stat -c %s "$1"
}

# CLOCK_BOOTTIME in ms (lutool stamp's boot=), for QEMU's steps.
ms_now() {
	lutool stamp t | sed 's/.* boot=//' | awk '{ printf "%.1f", $1 * 1000 }'
}

# QEMU as the VMM (route qemu), its console on stdout; $1: its console file, then options.
qemu_start() {
	out=$1
	shift
	rm -f /run/hk-qmp.sock
	(
		"$HK_QEMU" -L "$HK_QEMU_DATA" -M microvm,memory-backend=ram0,acpi=on -accel kvm \
			-cpu host -smp 1 -m "${mib}M" -no-reboot \
			-object "memory-backend-file,id=ram0,size=${mib}M,mem-path=$p/qemu.ram,share=on" \
			-nodefaults -no-user-config -display none -serial stdio \
			-kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
			-drive "file=$disk,if=none,id=d0,format=raw,cache=none" \
			-device virtio-blk-device,drive=d0 \
			-drive "file=$ctl,if=none,id=d1,format=raw,readonly=on" \
			-device virtio-blk-device,drive=d1 \
			-qmp unix:/run/hk-qmp.sock,server=on,wait=off "$@" \
			</dev/null >>"$out" 2>>"$d/vmm.log" &
		echo $! >"$d/qemu.pid"
	)
}

QMP_CPR='{"execute": "migrate-set-capabilities", "arguments": {"capabilities": [{"capability": "x-ignore-shared", "state": true}]}}'
QMP_MODE='{"execute": "migrate-set-parameters", "arguments": {"mode": "cpr-reboot"}}'

# A line of the first boot: printed now, and again by the resumed boot (runcases.sh reports
# a case's output when it ends, which the first boot's run never does).
say1() {
	echo "HK $*"
	echo "HK $*" >>"$d/boot1.log"
}

uptime_s() {
	read -r up _ </proc/uptime
	echo "$up"
}

# The last 'up' of the heartbeats in file $1.
last_up() {
	sed -n 's/.*VMMTEST hb [0-9]* [0-9.]* up \([0-9.]*\).*/\1/p' "$1" | tail -n 1
}

if [ "${VMM_RESUMED:-0}" != 1 ]; then
	# --- 1. first boot -------------------------------------------------------------------
	rm -rf "$d" "$p"
	mkdir -p "$d" "$p" || fail "cannot make $d and $p"
	[ "$route" = luo ] && { [ -c /dev/liveupdate ] || fail "no /dev/liveupdate in the test host"; }
	truncate -s 8M "$disk" && truncate -s 1M "$ctl" || fail "cannot make the disk images"
	printf 'LUCTL run\n' | dd of="$ctl" conv=notrunc 2>/dev/null || fail "cannot write $ctl"
	: >"$con"
	if [ "$route" = qemu ]; then
		qemu_start "$con"
	else
		(
			# shellcheck disable=SC2086 # $mem is two words
			"$VMM" run --kernel "$kernel" --initrd "$initrd" --cmdline "$cmdline" \
				$mem --disk "$disk,id=data" --disk "$ctl,id=ctl,ro" \
				--api-sock "$sock" --id hk </dev/null >"$con" 2>"$d/vmm.log" &
		)
	fi
	lutool wait "$con" 0 "VMMTEST ack 3" 180 || fail "no third record acked within 180 s"
	lutool skew "$con" 3 20 date-skew-boot >"$d/skew" ||
		{ sed 's/^LU /HK /' "$d/skew"; fail "the guest's clock after its boot"; }
	say1 "$(sed -n 's/^LU //p' "$d/skew")"
	say1 "started, acked=$(grep -c 'VMMTEST ack ' "$con") up=$(last_up "$con")s"
	echo "kexec at $(uptime_s)" >"$d/phase"
	# The counter that goes on across the kexec, for the pause's parts (bench/hostupdate.sh).
	cat /tmp/host-init.stamp >"$d/stamps"
	lutool stamp before-prepare >>"$d/stamps"
	sync
	if [ "$route" = qemu ]; then
		# What vmm hostupdate prepare does, by QEMU's documented cpr-reboot steps; its
		# report in prepare's words, for the parts below.
		t0=$(ms_now)
		qmpctl /run/hk-qmp.sock "$QMP_CPR" "$QMP_MODE" >"$d/qmp.log" 2>&1 ||
			fail "QMP: $(tail -n 1 "$d/qmp.log")"
		t1=$(ms_now)
		qmpctl /run/hk-qmp.sock '{"execute": "stop"}' \
			"{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:$p/qemu.state\"}}" \
			wait-migrate '{"execute": "quit"}' >>"$d/qmp.log" 2>&1 ||
			fail "QMP: $(tail -n 1 "$d/qmp.log")"
		sync
		t2=$(ms_now)
		echo "qemu: stop, migrate to file, quit and sync $(echo "$t1 $t2" |
			awk '{ printf "%.1f", $2 - $1 }') ms" >"$d/prepare.log"
		echo "hostupdate: kexec now, $(echo "$t0 $t2" | awk '{ printf "%.1f", $2 - $1 }') ms" \
			"after the start, $(echo "$t1 $t2" | awk '{ printf "%.1f", $2 - $1 }') ms after" \
			"the pause began" >>"$d/prepare.log"
		sync
		lutool kexec "$kexec/bzImage" "$kexec/host.cpio" "$(cat /proc/cmdline) vmmhost.resume=1"
		fail "lutool kexec returned"
	fi
	# The command line of the next kernel: this one's, marked as the resumed boot.
	"$VMM" hostupdate prepare --state-dir "$states" --kexec-kernel "$kexec/bzImage" \
		--kexec-initrd "$kexec/host.cpio" \
		--kexec-append "$(cat /proc/cmdline) vmmhost.resume=1" "$sock" \
		>"$d/prepare.log" 2>&1
	# Here only if the kexec did not happen.
	rm -f "$d/phase"
	cat "$d/prepare.log"
	fail "vmm hostupdate prepare returned $?"
fi

# --- 2. the resumed boot -----------------------------------------------------------------
[ -f "$d/phase" ] || fail "resumed boot, but no first boot's record in $d"
cat "$d/boot1.log"
echo "HK resumed: first boot's $(cat "$d/phase"), now $(uptime_s) s into this boot"
sed 's/^/HK prepare: /' "$d/prepare.log"
grep -q 'kexec now' "$d/prepare.log" || fail "prepare did not reach the kexec"
before=$(size "$con")
up0=$(last_up "$con")
if [ "$route" = qemu ]; then
	con2=$d/qemu-restored.console
	: >"$con2"
	lutool stamp before-resume >/tmp/before-resume.stamp
	t0=$(ms_now)
	qemu_start "$con2" -incoming defer
	qmpctl /run/hk-qmp.sock --wait 60 "$QMP_CPR" "$QMP_MODE" \
		"{\"execute\": \"migrate-incoming\", \"arguments\": {\"uri\": \"file:$p/qemu.state\"}}" \
		wait-migrate '{"execute": "cont"}' wait-running >>"$d/qmp.log" 2>&1 ||
		fail "QMP: $(tail -n 1 "$d/qmp.log")"
	t1=$(ms_now)
	pid=$(cat "$d/qemu.pid")
	echo "hostupdate: 1 VM(s) restored in $(echo "$t0 $t1" | awk '{ printf "%.1f", $2 - $1 }')" \
		"ms, 0 failed" >"$d/resume.log"
else
	[ -f "$states/manifest.json" ] || fail "no manifest in $states"
	con2=$states/hk.console
	lutool stamp before-resume >/tmp/before-resume.stamp
	"$VMM" hostupdate resume --state-dir "$states" >"$d/resume.log" 2>&1 ||
		{ cat "$d/resume.log"; fail "vmm hostupdate resume failed"; }
fi
sed 's/^/HK resume: /' "$d/resume.log"
sed 's/^STAMP host-init/STAMP resumed-init/' /tmp/host-init.stamp >>"$d/stamps"
cat /tmp/before-resume.stamp >>"$d/stamps"
# The guest's pause in its parts, in ms: the counter's rate from the first boot's two stamps
# (seconds apart on one clock); the kexec's moment and the pause's start from prepare's own
# report (ms after its start, ms after the pause began); the VM back from resume's.
awk -v prep="$(grep 'kexec now' "$d/prepare.log")" \
    -v rest="$(grep 'restored in' "$d/resume.log")" \
    -v retr="$(grep -m1 'retrieved in' "$con2" 2>/dev/null)" '
function num(s, key) { sub(".*" key "[ =]", "", s); sub("[^0-9.].*", "", s); return s + 0 }
/^STAMP/ { split($3, a, "="); split($4, b, "="); t[$2] = a[2]; up[$2] = b[2] }
END {
	hz = (t["before-prepare"] - t["host-init"]) / (up["before-prepare"] - up["host-init"])
	start_to_kexec = num(prep, "kexec now,"); pause_to_kexec = num(prep, "start,")
	restore = num(rest, "restored in")
	kexec_t = t["before-prepare"] + start_to_kexec * hz / 1000
	pause_t = kexec_t - pause_to_kexec * hz / 1000
	jump = (t["resumed-init"] - kexec_t) / hz * 1000 - up["resumed-init"] * 1000
	boot = up["resumed-init"] * 1000
	init = (t["before-resume"] - t["resumed-init"]) / hz * 1000
	total = (t["before-resume"] - pause_t) / hz * 1000 + restore
	# LUO: the kernel rebuilding the RAM memfd inside the restore (its work, not vmm'"'"'s).
	luo = retr != "" ? num(retr, "retrieved in") : 0
	printf "HK parts-ms pause+state=%.1f kexec-jump=%.1f kernel-boot=%.1f host-init=%.1f " \
	       "restore=%.1f luo-retrieve=%.1f guest-pause=%.1f vmm-share=%.1f tsc-mhz=%.1f\n", \
	       pause_to_kexec, jump, boot, init, restore, luo, total, \
	       pause_to_kexec + restore - luo, hz / 1e6
}' "$d/stamps"
[ "$route" = qemu ] || pid=$(sed -n 's/^vm hk: restored, pid \([0-9]*\).*/\1/p' "$d/resume.log")
[ -n "$pid" ] || fail "resume named no pid"
lutool wait "$con2" 0 "VMMTEST ack " 60 || fail "no record acked after the kexec"
if [ "$route" = qemu ]; then
	# Reported, not required of the peer: QEMU's cpr-reboot does not move the guest's clock on
	# by the time it was away (it is behind by about the pause).
	lutool skew "$con2" 3 20 date-skew-resumed >"$d/skew2"
	sed -n 's/^LU \(date-skew-resumed=\)/HK qemu-guest-\1/p' "$d/skew2"
else
	lutool skew "$con2" 3 20 date-skew-resumed >"$d/skew2" ||
		{ sed 's/^LU /HK /' "$d/skew2"; fail "the guest's clock after the kexec"; }
	sed 's/^LU /HK /' "$d/skew2"
	# Within 2 s: the test host's clock comes from its RTC at boot, to the second.
	awk '/date-skew-resumed=/ { s = $2; sub(/.*=/, "", s); sub(/s$/, "", s);
		if (s + 0 < -2 || s + 0 > 2) exit 1 }' "$d/skew2" ||
		fail "the guest's clock is off after the kexec"
fi
up1=$(sed -n 's/.*VMMTEST hb [0-9]* [0-9.]* up \([0-9.]*\).*/\1/p' "$con2" | head -n 1)
echo "HK uptime before=${up0}s after=${up1}s"
echo "HK guest continued"
printf 'LUCTL stop\n' | dd of="$ctl" conv=notrunc 2>/dev/null || fail "cannot write $ctl"
n=0
while kill -0 "$pid" 2>/dev/null && [ $n -lt 300 ]; do
	sleep 0.2
	n=$((n + 1))
done
kill -0 "$pid" 2>/dev/null && fail "the guest did not power off within 60 s of 'LUCTL stop'"
grep -q 'VMMTEST END records' "$con2" || fail "the guest did not end its records"
echo "HK guest powered off"
# The whole console, both boots: the restored vmm prints the rest of a line cut by the pause.
cat "$con" "$con2" >"$d/console.all"
grep -c 'VMMTEST BEGIN' "$d/console.all" | grep -qx 1 || fail "the guest booted more than once"
lutool records "$disk" "$d/console.all" | sed 's/^LU /HK /'
lutool records "$disk" "$d/console.all" >/dev/null || fail "records or heartbeats"
echo "HK done"
