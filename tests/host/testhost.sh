#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# testhost.sh [--workdir DIR] [--kit DIR] [--extra-dir DIR] [--scratch-mb N] [--pmem-mb N]
#             [--host-kernel BZIMAGE] [--host-append STR] VMM CASEFILE...
# testhost.sh [--kit DIR] --interactive VMM -- VMM-RUN-ARGS...
#
# Runs the VMM against stock Debian kernels (the guest kit, tests/guest/kit/mkkit.sh).
# Our development machines have a software-nested KVM on which a stock kernel does not
# boot in useful time (/work/shared/ENVIRONMENT.md), so by default the cases run inside a
# QEMU TCG "test host" with emulated AMD SVM, whose KVM behaves like hardware: one boot of
# the test host runs every case of the given files. With VMM_TEST_DIRECT=1 the same cases
# run directly on this machine's /dev/kvm.
#
# --extra-dir DIR is copied into the test host as /extra (@EXTRA@ in the cases), with the
# shared libraries of the executables in it. Cases that name @SCRATCH@ or @SHARED@ get a
# scratch disk (--scratch-mb, default 1024 MiB; ext4 made here, mounted by host-init.sh as
# /scratch): the test host's /tmp is a tmpfs, where O_DIRECT (cache=none) fails.
#
# Cases that name @PMEM@ get a persistent-memory region as well (--pmem-mb, default 1024 MiB;
# memmap=SIZE!START on the test host's command line, above its 6 GiB of RAM; host-init.sh
# mounts it with DAX as /pmem) and the test host's own kernel and initramfs on the scratch
# disk (/scratch/kexec/), so that a case can kexec the test host into the same kernel: the
# new kernel boots the same initramfs with vmmhost.resume=1 and runs the same cases, which
# then find what they left on /pmem and /scratch (tests/host/hk-run.sh).
#
# --host-kernel boots the test host with another kernel than the kit's (one with every driver
# the test host needs built in: its kit modules are not loaded then), --host-append adds to
# its command line: the opt-in luo suite boots a kernel with the Live Update Orchestrator
# (tests/host/luo/mkkernel.sh) with liveupdate=on.
#
# Prints one PASS/FAIL line per case; exits 0 if all passed, 1 if any failed, 77 (skip)
# only when a prerequisite is absent (no kernel packages and no cache, no QEMU, no KVM).
#
# Environment:
#   VMM_KIT_DIR        guest kit cache (default ${XDG_CACHE_HOME:-~/.cache}/vmm/guest-kit)
#   VMM_TEST_DIRECT=1  run on this machine's /dev/kvm instead of the QEMU test host
#   VMM_TEST_WALL      wall-clock limit of the QEMU test host in seconds (default 1100)
#   VMM_TEST_STALL     seconds a boot of the test host may take to reach init (default 240)
#   VMM_TEST_VERBOSE=1 print every case's console, not only failures'
#   VMM_TEST_RETRY=0   in the QEMU test host, a case whose guest triple-faulted (vmm's
#                      "guest triple fault" line) runs once more by default, reported as
#                      such: the emulated nested SVM kills a guest under interrupt load now
#                      and then (README, "Known defect"). 0 turns that off, for runs that
#                      hunt the failure (tests/host/stress/). Never on a hardware-backed KVM
#   VMM_TEST_QEMU      the QEMU that runs the test host, its firmware in ../share/qemu beside
#                      its bin/. Default: QEMU 10 from bookworm-backports (qemu10.sh, fetched
#                      once into the cache); bookworm's own QEMU 7.2 where that cannot be
#                      had, or with VMM_TEST_QEMU=system. 7.2's TCG emulates the test host's
#                      nested SVM worse: its test hosts locked up at their first KVM_CREATE_VM
#                      now and then, and their guests died of triple faults under interrupt
#                      load (a vsock stream; live updates) several times as often
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/host/qemu10.sh
. "$HERE/qemu10.sh"
QEMU_DATA=""
SRC=$(cd "$HERE/../.." && pwd)

skip() { echo "SKIP: $*"; exit 77; }
die() { echo "testhost: $*" >&2; exit 1; }

WORK=
KIT=${VMM_KIT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm/guest-kit}
INTERACTIVE=0
EXTRA=
SCRATCH_MB=1024
PMEM_MB=1024
HOST_KERNEL=
HOST_APPEND=
while [ $# -gt 0 ]; do
	case $1 in
	--workdir) WORK=$2; shift 2 ;;
	--kit) KIT=$2; shift 2 ;;
	--interactive) INTERACTIVE=1; shift ;;
	--extra-dir) EXTRA=$(readlink -f "$2"); shift 2 ;;
	--scratch-mb) SCRATCH_MB=$2; shift 2 ;;
	--pmem-mb) PMEM_MB=$2; shift 2 ;;
	--host-kernel) HOST_KERNEL=$(readlink -f "$2"); shift 2 ;;
	--host-append) HOST_APPEND=" $2"; shift 2 ;;
	--) shift; break ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
done
[ $# -ge 2 ] || die "usage: testhost.sh [--workdir DIR] [--kit DIR] [--extra-dir DIR] [--scratch-mb N] VMM CASEFILE..."
[ -z "$EXTRA" ] || [ -d "$EXTRA" ] || die "--extra-dir: $EXTRA is not a directory"
[ -z "$HOST_KERNEL" ] || [ -f "$HOST_KERNEL" ] || die "--host-kernel: $HOST_KERNEL is not a file"
VMM=$(readlink -f "$1")
shift
[ -x "$VMM" ] || die "$VMM: not an executable"
CASEFILES=()
RUNARGS=()
if [ "$INTERACTIVE" = 1 ]; then
	[ "${1:-}" = -- ] || die "usage: testhost.sh --interactive VMM -- VMM-RUN-ARGS..."
	shift
	RUNARGS=("$@")
	set --
fi
for f in "$@"; do
	[ -f "$f" ] || f=$HERE/cases/$f
	[ -f "$f" ] || die "$f: no such case file"
	CASEFILES+=("$(readlink -f "$f")")
done

if [ -z "$WORK" ]; then
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/testhost.XXXXXX")
fi
mkdir -p "$WORK"
WORK=$(readlink -f "$WORK")

# --- guest kit (shared between concurrent runs: serialise with a lock) ----------------------
mkdir -p "$KIT"
kit_rc=0
(
	flock 9
	"$SRC/tests/guest/kit/mkkit.sh" "$KIT"
) 9>"$KIT/.lock" >"$WORK/mkkit.log" 2>&1 || kit_rc=$?
if [ $kit_rc -eq 2 ]; then
	tail -n 5 "$WORK/mkkit.log"
	skip "guest kit prerequisites unavailable (see above; kit cache $KIT)"
elif [ $kit_rc -ne 0 ]; then
	tail -n 20 "$WORK/mkkit.log"
	die "mkkit.sh failed ($kit_rc)"
fi

# --- run the cases -------------------------------------------------------------------------
RESULTS=$WORK/results.log
CONSOLE=
# The test host's QMP socket (short: a unix socket's path has at most 107 bytes).
QMP_SOCK=${TMPDIR:-/tmp}/vmm-testhost.$$.qmp
t_start=$(date +%s)

run_direct() {
	[ -c /dev/kvm ] && [ -w /dev/kvm ] || skip "VMM_TEST_DIRECT=1 but /dev/kvm is not usable"
	# Scratch on the work directory's file system (a real disk, unless TMPDIR is a tmpfs).
	mkdir -p "$WORK/scratch"
	VMM_SCRATCH=$WORK/scratch VMM_EXTRA=${EXTRA:-/nonexistent} \
		VMM_RETRY=0 sh "$HERE/runcases.sh" "$VMM" "$KIT" "${CASEFILES[@]}" >"$RESULTS" 2>&1
}

# Do the cases need a disk where O_DIRECT works?
want_scratch() {
	[ "$INTERACTIVE" = 0 ] && grep -qE '@(SCRATCH|SHARED|PMEM|KEXEC)@' "${CASEFILES[@]}"
}

# Do they need persistent memory (and the test host's kernel, for a kexec)?
want_pmem() {
	[ "$INTERACTIVE" = 0 ] && grep -qE '@PMEM@' "${CASEFILES[@]}"
}

# Do they kexec the test host (@PMEM@, or @KEXEC@ for a kexec without persistent memory)?
want_kexec() {
	[ "$INTERACTIVE" = 0 ] && grep -qE '@(PMEM|KEXEC)@' "${CASEFILES[@]}"
}

# The scratch disk of the test host: a sparse raw image holding an ext4, empty but for the
# kexec payload (kexec/bzImage and kexec/host.cpio) when the cases want persistent memory.
make_scratch() {
	local mkfs content=()
	mkfs=$(PATH=$PATH:/sbin:/usr/sbin command -v mkfs.ext4) ||
		skip "mkfs.ext4 is absent (package e2fsprogs)"
	rm -rf "$WORK/scratch.img" "$WORK/scratchroot"
	if want_kexec; then
		mkdir -p "$WORK/scratchroot/kexec"
		cp "$(host_kernel)" "$WORK/scratchroot/kexec/bzImage" &&
			cp "$WORK/host.cpio" "$WORK/scratchroot/kexec/" ||
			die "cannot stage the kexec payload"
		content=(-d "$WORK/scratchroot")
	fi
	truncate -s "${SCRATCH_MB}M" "$WORK/scratch.img" || die "cannot create the scratch disk"
	"$mkfs" -q -F -L vmmscratch -E nodiscard,lazy_itable_init=1,lazy_journal_init=1 \
		"${content[@]}" "$WORK/scratch.img" || die "mkfs.ext4 of the scratch disk failed"
	rm -rf "$WORK/scratchroot"
}

# The test host's kernel: the kit's (Debian's generic) unless --host-kernel.
host_kernel() {
	if [ -n "$HOST_KERNEL" ]; then echo "$HOST_KERNEL"; else echo "$KIT/generic/bzImage"; fi
}

# Copy the shared libraries and the dynamic loader of executable $1 into the host root $2,
# at the paths ldd reports (nothing for a static one).
copy_libs() {
	local lib
	for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*'); do
		mkdir -p "$2$(dirname "$lib")"
		cp -L "$lib" "$2$lib"
	done
}

# Paths under @KIT@ that the cases use: only those go into the test host's initramfs
# (each vmlinux is ~60 MB, and everything in it is copied by an emulated CPU).
kit_files() {
	if [ "$INTERACTIVE" = 1 ]; then
		local a
		for a in "${RUNARGS[@]}"; do
			case $a in "$KIT"/*) echo "${a#"$KIT"/}" ;; esac
		done
		return
	fi
	grep -ho '@KIT@/[^ "'"'"']*' "${CASEFILES[@]}" | sed 's|@KIT@/||' | sort -u
}

# The interactive command line, with kit paths as the test host sees them.
write_interactive() {
	local a q=''
	for a in "${RUNARGS[@]}"; do
		case $a in "$KIT"/*) a=/kit/${a#"$KIT"/} ;; esac
		q+=" $(printf '%q' "$a")"
	done
	printf '#!/bin/sh\nexec /vmm/vmm run%s\n' "$q" >"$1"
	chmod 755 "$1"
}

build_host_initramfs() {
	local root=$WORK/hostroot lib applet f i=0
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,cases,kit,vmm,lib/modules}
	cp /bin/busybox "$root/bin/busybox"
	for applet in $(/bin/busybox --list-full); do
		[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
	done
	cp "$HERE/host-init.sh" "$root/init"
	# The idle VM that the test host keeps open (kvmhold.c says why). Static: it must not
	# depend on which libc the VMM brings.
	"${CC:-cc}" -O2 -static -o "$root/bin/kvmhold" "$HERE/kvmhold.c" 2>"$WORK/kvmhold.log" ||
		die "cannot compile kvmhold.c with ${CC:-cc}: $(head -n 1 "$WORK/kvmhold.log")"
	# A client of vmm's API socket (there is no curl in the test host).
	"${CC:-cc}" -O2 -static -o "$root/bin/apictl" "$HERE/apictl.c" 2>"$WORK/apictl.log" ||
		die "cannot compile apictl.c with ${CC:-cc}: $(head -n 1 "$WORK/apictl.log")"
	# The live-update case's helpers (supervisor, waits, clock and records checks).
	"${CC:-cc}" -O2 -static -o "$root/bin/lutool" "$HERE/lutool.c" 2>"$WORK/lutool.log" ||
		die "cannot compile lutool.c with ${CC:-cc}: $(head -n 1 "$WORK/lutool.log")"
	# A QMP client, for cases that run QEMU as the peer (hk-run.sh's qemu route).
	"${CC:-cc}" -O2 -static -o "$root/bin/qmpctl" "$HERE/qmpctl.c" 2>"$WORK/qmpctl.log" ||
		die "cannot compile qmpctl.c with ${CC:-cc}: $(head -n 1 "$WORK/qmpctl.log")"
	# Both ends of the vsock tests (the guest kit has its own build).
	"${CC:-cc}" -O2 -static -o "$root/bin/vsockt" "$HERE/../guest/kit/vsockt.c" 2>"$WORK/vsockt.log" ||
		die "cannot compile vsockt.c with ${CC:-cc}: $(head -n 1 "$WORK/vsockt.log")"
	# And for this side: watch_host asks QEMU where a stuck boot stopped.
	cp "$root/bin/qmpctl" "$WORK/qmpctl"
	cp "$HERE/runcases.sh" "$HERE/diskpat.sh" "$HERE/api-run.sh" "$HERE/lu-run.sh" \
		"$HERE/pmem-share.sh" "$HERE/net-run.sh" "$HERE/net-user-run.sh" "$HERE/net-bench.sh" \
		"$HERE/vsock-run.sh" "$HERE/vsock-bench.sh" "$HERE/kvmtrace.sh" \
		"$HERE/hk-run.sh" "$root/"
	chmod 755 "$root/init"
	cp -r "$KIT/generic/host-modules" "$root/lib/modules/host"
	# Another kernel has its drivers built in: none of the kit's modules would load.
	[ -n "$HOST_KERNEL" ] && : >"$root/lib/modules/host/load-order"
	# e2fsprogs (mke2fs, e2fsck) from the kit, for checks of the guests' file systems. The
	# VMM's libraries are copied after it: its libc and dynamic loader win if they differ.
	# --remove-destination: /sbin/mke2fs is a symlink to busybox, which must not be written.
	[ -d "$KIT/e2fs" ] && cp -a --remove-destination "$KIT/e2fs/." "$root/"
	for f in "${CASEFILES[@]}"; do
		i=$((i + 1))
		cp "$f" "$root/cases/$(printf %02d $i)-$(basename "$f")"
	done
	while read -r f; do
		[ -n "$f" ] || continue
		[ -e "$KIT/$f" ] || die "case file refers to @KIT@/$f, which the kit lacks"
		mkdir -p "$root/kit/$(dirname "$f")"
		cp "$KIT/$f" "$root/kit/$f"
	done < <(kit_files)
	cp "$VMM" "$root/vmm/vmm"
	[ "$INTERACTIVE" = 1 ] && write_interactive "$root/interactive.sh"
	copy_libs "$VMM" "$root"
	# User-mode networking's helper, beside vmm where vmm looks for it, and its libraries.
	if [ -x "$(dirname "$VMM")/vmm-slirp" ]; then
		cp "$(dirname "$VMM")/vmm-slirp" "$root/vmm/vmm-slirp"
		copy_libs "$root/vmm/vmm-slirp" "$root"
	fi
	if [ -n "$EXTRA" ]; then
		cp -a "$EXTRA" "$root/extra"
		while IFS= read -r f; do
			copy_libs "$f" "$root"
		done < <(find "$EXTRA" -type f -perm -u+x)
	fi
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	# Uncompressed: the emulated test-host kernel would spend seconds inflating it.
	(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) \
		>"$WORK/host.cpio" || die "cpio failed"
	rm -rf "$root"
}

# What the test host's own kernel prints when it is lost: a soft lockup (kvmhold.c tells the
# one cause we know) or a panic (the test host then powers off by itself: panic=-1).
HOST_FAILED='BUG: soft lockup|Kernel panic - not syncing'

# Boots of the test host that reached init (host-init.sh's '@@HOST begin') and boots begun
# (the first, and one more per kexec the console shows).
boots_done() { grep -c '^@@HOST begin' "$RESULTS"; }
boots_begun() { echo $(($(grep -c 'kexec_core: Starting new kernel' "$CONSOLE") + 1)); }

# A boot that has not reached init in VMM_TEST_STALL seconds (default 240; it takes 3-10 s)
# is stuck: record QEMU's view of the CPUs (QMP, 'info registers -a') and where it stopped,
# then kill QEMU instead of waiting for the wall-clock limit. Nothing of ours runs before
# init, so run_testhost boots again once when the first boot is the stuck one; a boot after a
# kexec is the case's own and fails it.
stalled() {
	local pid=$1 boot=$2 secs=$3
	{
		echo "    boot $boot of the test host did not reach init in ${secs}s" \
			"(QEMU's CPU state in stall-registers*.txt; console so far:)"
		if [ -s "$CONSOLE" ]; then tail -n 5 "$CONSOLE" | sed 's/^/      /'; else echo "      (nothing)"; fi
	} >"$WORK/stall"
	"$WORK/qmpctl" "$QMP_SOCK" --wait 5 \
		'{"execute": "human-monitor-command", "arguments": {"command-line": "info registers -a"}}' \
		2>&1 | sed 's/\\r\\n/\n/g; s/\\n/\n/g' >"$WORK/stall-registers.txt"
	grep -m2 -E '^(CPU#|RIP=)' "$WORK/stall-registers.txt" | sed 's/^/      /' >>"$WORK/stall"
	echo "$boot" >"$WORK/stall-boot"
	kill "$pid" 2>/dev/null
}

# A running test host that stopped saying '@@HOST tick' (host-init.sh, every 5 s) has locked up
# without a word (interrupts off on every CPU: QEMU 7.2's TCG now and then never completes
# the cross-CPU code patching of a static key, kvmhold.c). Record the CPUs and kill QEMU; the
# run is then lost as with a soft lockup (host_failed).
hung() {
	local pid=$1 boot=$2 secs=$3
	{
		echo "    boot $boot of the test host stopped responding: no sign of life for ${secs}s" \
			"(QEMU's CPU state in stall-registers*.txt)"
	} >"$WORK/stall"
	"$WORK/qmpctl" "$QMP_SOCK" --wait 5 \
		'{"execute": "human-monitor-command", "arguments": {"command-line": "info registers -a"}}' \
		2>&1 | sed 's/\\r\\n/\n/g; s/\\n/\n/g' >"$WORK/stall-registers.txt"
	grep -E '^(CPU#|RIP=)' "$WORK/stall-registers.txt" | sed 's/^/      /' >>"$WORK/stall"
	: >"$WORK/lockup"
	kill "$pid" 2>/dev/null
}

# Watches one boot of the test host: on a soft lockup, kill QEMU a few seconds later, once the
# backtraces are on the console, instead of waiting for the wall-clock limit; on a boot that
# does not reach init, stalled(); on one that reached it and then went silent, hung().
watch_host() {
	local pid=$1 limit=${VMM_TEST_STALL:-240} quiet_max=${VMM_TEST_HUNG:-90} begun=1
	local since=$SECONDS b size last=-1 last_change=$SECONDS
	while kill -0 "$pid" 2>/dev/null; do
		if grep -q 'BUG: soft lockup' "$CONSOLE"; then
			sleep 5
			kill "$pid" 2>/dev/null
			return
		fi
		b=$(boots_begun)
		[ "$b" -ne "$begun" ] && { begun=$b; since=$SECONDS; }
		size=$(stat -c %s "$RESULTS" 2>/dev/null || echo 0)
		[ "$size" != "$last" ] && { last=$size; last_change=$SECONDS; }
		if [ "$(boots_done)" -lt "$begun" ]; then
			if [ $((SECONDS - since)) -ge "$limit" ]; then
				stalled "$pid" "$begun" $((SECONDS - since))
				return
			fi
		elif [ $((SECONDS - last_change)) -ge "$quiet_max" ] &&
		     [ $((SECONDS - since)) -ge "$quiet_max" ]; then
			hung "$pid" "$begun" $((SECONDS - last_change))
			return
		fi
		sleep 2
	done
}

# The test host's kernel failed in this boot: print its first report and the backtrace (or
# what hung() recorded).
host_failed() {
	if [ -e "$WORK/lockup" ] && [ -e "$WORK/stall" ] && [ ! -e "$WORK/stall-boot" ]; then
		cat "$WORK/stall"
		return 0
	fi
	grep -qE "$HOST_FAILED" "$CONSOLE" || return 1
	: >"$WORK/lockup"
	grep -m1 -B1 -A3 -E "$HOST_FAILED|BUG: |stack guard page" "$CONSOLE" | sed 's/^/    /'
	grep -A60 -m1 -E "$HOST_FAILED|BUG: " "$CONSOLE" | grep -m12 -E '^\[[ 0-9.]+\]  [a-z_?]' |
		sed 's/^/    /'
	return 0
}

# One boot of the test host: the cases' reports land in $RESULTS, its console in $CONSOLE.
boot_testhost() {
	local qemu=$1 wall=$2 quiet=${3- quiet} disk=() pid watcher mem=6144 pmem=
	if want_scratch; then
		make_scratch
		# Test data only: cache=unsafe spares the outer machine's disk the flushes.
		# shellcheck disable=SC2054 # commas are inside QEMU option values
		disk=(-drive "file=$WORK/scratch.img,if=none,id=scratch,format=raw,cache=unsafe"
		      -device virtio-blk-pci,drive=scratch)
	fi
	if want_pmem; then
		# q35 puts the first 2 GiB of RAM below 4 GiB and the rest from 4 GiB on: with
		# 6 GiB + PMEM_MB, the region is the top PMEM_MB, from 8 GiB.
		mem=$((6144 + PMEM_MB))
		pmem=" memmap=${PMEM_MB}M!8192M"
	fi
	local noretry=
	[ "${VMM_TEST_RETRY:-1}" = 0 ] && noretry=" vmmhost.retry=0"
	: >"$RESULTS"
	: >"$CONSOLE"
	rm -f "$WORK/lockup" "$WORK/stall" "$WORK/stall-boot" "$QMP_SOCK"
	# EPYC with SVM and nested paging: the test host's KVM then runs guests with hardware
	# -like behaviour, at TCG speed. The second serial port carries the reports. 6 GiB:
	# the VMM refuses a --memory above the host's RAM, and the 4 GiB case must fit (TCG
	# allocates the test host's RAM lazily too). 'quiet' keeps the emulated boot short (a
	# boot again after one that never reached init goes without, to show where it stops);
	# from init on the console shows warnings with their backtraces.
	local data=()
	[ -n "$QEMU_DATA" ] && data=(-L "$QEMU_DATA")
	timeout -k 10 "$wall" "$qemu" "${data[@]}" -accel tcg -cpu EPYC,+svm,+npt -smp 2 \
		-m "${mem}M" -M q35 -nodefaults -no-reboot -display none -monitor none \
		-qmp "unix:$QMP_SOCK,server=on,wait=off" \
		-serial "file:$CONSOLE" -serial "file:$RESULTS" "${disk[@]}" \
		-kernel "$(host_kernel)" -initrd "$WORK/host.cpio" \
		-append "console=ttyS0 rdinit=/init$quiet panic=-1 sysctl.kernel.printk=7$pmem$noretry$HOST_APPEND" \
		</dev/null >"$WORK/qemu.log" 2>&1 &
	pid=$!
	watch_host "$pid" &
	watcher=$!
	wait "$pid"
	local rc=$?
	kill "$watcher" 2>/dev/null
	wait "$watcher" 2>/dev/null
	return $rc
}

run_testhost() {
	local qemu= wall rc
	case ${VMM_TEST_QEMU:-} in
	system) ;;
	'')
		if qemu10_fetch testhost 2>"$WORK/qemu10.log"; then
			QEMU_DATA=$qemu_data
		else
			echo "testhost: QEMU 10 cannot be had ($(tail -n 1 "$WORK/qemu10.log")): bookworm's QEMU runs the test host" >&2
			qemu=
		fi
		;;
	*)
		qemu=$VMM_TEST_QEMU
		QEMU_DATA=$(dirname "$qemu")/../share/qemu
		;;
	esac
	[ -n "$qemu" ] || qemu=$(command -v qemu-system-x86_64 || true)
	if [ -z "$qemu" ] && [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			qemu-system-x86 >"$WORK/apt.log" 2>&1
		qemu=$(command -v qemu-system-x86_64 || true)
	fi
	[ -n "$qemu" ] || skip "qemu-system-x86_64 is absent (package qemu-system-x86)"
	build_host_initramfs
	wall=${VMM_TEST_WALL:-1100}
	CONSOLE=$WORK/host-console.log
	boot_testhost "$qemu" "$wall"
	rc=$?
	local lost=
	if host_failed >"$WORK/host-failed.txt"; then
		lost=kernel
	elif [ "$(cat "$WORK/stall-boot" 2>/dev/null)" = 1 ]; then
		lost=noinit
		cp "$WORK/stall" "$WORK/host-failed.txt"
	fi
	if [ -n "$lost" ]; then
		# Not a case's failure: the test host's kernel stopped (a soft lockup, a panic, a
		# silent hang), or its first boot never reached init (nothing of ours had run). Say
		# so, keep that boot's logs, and run every case again in a fresh boot, once, in the
		# time left. A second failure fails.
		echo "testhost: RETRY: the test host was lost, so every case runs again in a new" \
			"boot; the lost boot's logs are host-console.1.log and results.1.log:"
		cat "$WORK/host-failed.txt"
		[ -e "$WORK/stall-registers.txt" ] &&
			mv "$WORK/stall-registers.txt" "$WORK/stall-registers.1.txt"
		mv "$CONSOLE" "$WORK/host-console.1.log"
		mv "$RESULTS" "$WORK/results.1.log"
		wall=$((wall - ($(date +%s) - t_start)))
		[ "$wall" -lt 120 ] && wall=120
		if [ "$lost" = noinit ]; then
			boot_testhost "$qemu" "$wall" ""
		else
			boot_testhost "$qemu" "$wall"
		fi
		rc=$?
		if host_failed >"$WORK/host-failed.txt"; then
			echo "testhost: the test host was lost again:"
			cat "$WORK/host-failed.txt"
		fi
		# Twice stuck before the kernel even started init: nothing of this project ran,
		# the emulator or its kernel cannot boot here. That is no result, not a pass.
		if [ "$lost" = noinit ] && [ "$(cat "$WORK/stall-boot" 2>/dev/null)" = 1 ] &&
		   ! grep -q 'Run /init as init process' "$CONSOLE"; then
			cat "$WORK/stall"
			echo "    its console ends with:"
			tail -n 15 "$CONSOLE" | sed 's/^/      /'
			rm -f "$WORK/host.cpio" "$WORK/scratch.img" "$QMP_SOCK"
			skip "the test host's kernel did not start init in two boots (QEMU TCG," \
				"before anything of vmm's ran; logs in $WORK)"
		fi
	fi
	# A later boot (after a case's kexec) that never reached init: the case's failure.
	if [ -e "$WORK/stall-boot" ]; then
		echo "testhost: the test host was stopped:"
		cat "$WORK/stall"
	fi
	# Regenerated each run, and big: only the logs stay in the work directory.
	rm -f "$WORK/host.cpio" "$WORK/scratch.img" "$QMP_SOCK"
	[ $rc -eq 124 ] && echo "testhost: the QEMU test host hit the ${wall}s wall-clock limit"
	[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ ! -e "$WORK/lockup" ] &&
		{ echo "testhost: qemu exited with $rc:"; tail -n 5 "$WORK/qemu.log"; }
	if grep -q '^@@HOST kvm=no' "$RESULTS"; then
		echo "testhost: /dev/kvm is absent inside the test host; its console ends with:"
		tail -n 30 "$CONSOLE"
	fi
}

# Interactive: the console is this terminal; QEMU's stdio is raw and Ctrl-C goes to the guest.
if [ "$INTERACTIVE" = 1 ]; then
	qemu=$(command -v qemu-system-x86_64) || die "qemu-system-x86_64 is absent (package qemu-system-x86)"
	build_host_initramfs
	"$qemu" -accel tcg -cpu EPYC,+svm,+npt -smp 2 -m 6G -M q35 -nodefaults -no-reboot \
		-display none -monitor none -chardev stdio,id=con,signal=off -serial chardev:con \
		-kernel "$KIT/generic/bzImage" -initrd "$WORK/host.cpio" \
		-append "console=ttyS0 rdinit=/init quiet panic=-1"
	rc=$?
	rm -f "$WORK/host.cpio"
	exit $rc
fi

if [ "${VMM_TEST_DIRECT:-0}" = 1 ]; then
	mode=direct
	run_direct
else
	mode=testhost
	run_testhost
fi

# --- judge ---------------------------------------------------------------------------------
tr -d '\r' <"$RESULTS" >"$RESULTS.clean"
failed=0
passed=0
retried=0

judge_case() {
	local name=$1 want=$2 res status secs reasons=() m console note
	shift 2
	# The case's console, read once. Not 'grep | grep -q' per text: under pipefail the
	# first grep's SIGPIPE, when -q stops reading early, turned a found text into "missing".
	console=$WORK/console.$name
	grep -F "@@C $name|" "$RESULTS.clean" | sed "s/^@@C $name|//" >"$console"
	res=$(grep -m1 "^@@VMMTEST case=$name status=" "$RESULTS.clean")
	if [ -z "$res" ]; then
		if grep -q "^@@VMMTEST case=$name start" "$RESULTS.clean"; then
			if [ -e "$WORK/lockup" ]; then
				reasons+=("no result: the test host's kernel failed while the case ran")
			else
				reasons+=("no result: the test host stopped while the case ran")
			fi
		else
			reasons+=("no result: the case did not run")
		fi
	else
		status=$(sed 's/.* status=\([0-9]*\).*/\1/' <<<"$res")
		secs=$(sed 's/.* secs=\([0-9.]*\).*/\1/' <<<"$res")
		grep -q 'watchdog=1' <<<"$res" && reasons+=("the runner's watchdog fired")
		grep -q 'checkfail=' <<<"$res" && reasons+=("a setup or check command failed")
		[ "$status" = "$want" ] || reasons+=("status $status, want $want")
		for m in "$@"; do
			if [ "${m:0:1}" = "$REJECT" ]; then
				! grep -qF -- "${m:1}" "$console" || reasons+=("unwanted '${m:1}'")
			else
				grep -qF -- "$m" "$console" || reasons+=("missing '$m'")
			fi
		done
	fi
	note=$(retried_note "$name")
	[ -n "$note" ] && retried=$((retried + 1))
	if [ ${#reasons[@]} -eq 0 ]; then
		passed=$((passed + 1))
		echo "PASS $name (${secs}s)$note"
		[ "${VMM_TEST_VERBOSE:-0}" = 1 ] && sed 's/^/    /' "$console"
	else
		failed=$((failed + 1))
		local IFS=';'
		echo "FAIL $name (${secs:-?}s): ${reasons[*]}$note"
		echo "  ---- console tail ($mode: vmm ${cmd[$name]})"
		tail -n 25 "$console" | sed 's/^/    /'
	fi
	first_attempt "$name"
	rm -f "$console"
}

# A case that ran twice (runcases.sh: its first guest triple-faulted in the QEMU test host):
# said on its PASS/FAIL line, counted in the summary, and the first attempt's console end
# shown below it.
retried_note() {
	local res
	res=$(grep -m1 "^@@VMMTEST case=$1 retry " "$RESULTS.clean") || return 0
	echo ", on a second attempt: the first one's guest triple-faulted" \
		"(status $(sed 's/.* status=\([0-9]*\).*/\1/' <<<"$res") after" \
		"$(sed 's/.* secs=\([0-9.]*\).*/\1/' <<<"$res")s)"
}

first_attempt() {
	grep -q "^@@VMMTEST case=$1 retry " "$RESULTS.clean" || return 0
	echo "  ---- the first attempt's console tail"
	grep -F "@@R $1|" "$RESULTS.clean" | sed "s/^@@R $1|//" | tail -n 15 | sed 's/^/    /'
}

declare -A cmd=()
# Marks a 'reject' text among the expected ones (no case file can contain it).
REJECT=$'\x1f'
for f in "${CASEFILES[@]}"; do
	name=
	expects=()
	while IFS= read -r line || [ -n "$line" ]; do
		read -r kw rest <<<"$line"
		case $kw in
		case)
			[ -n "$name" ] && judge_case "$name" "$want" "${expects[@]}"
			read -r name want <<<"$rest"
			expects=() ;;
		expect) expects+=("$rest") ;;
		reject) expects+=("$REJECT$rest") ;;
		vmm) cmd[$name]=$rest ;;
		run) cmd[$name]="(run) $rest" ;;
		esac
	done <"$f"
	[ -n "$name" ] && judge_case "$name" "$want" "${expects[@]}"
done

t_end=$(date +%s)
summary="$passed passed, $failed failed"
[ "$retried" -eq 0 ] || summary="$summary, $retried of them on a second attempt after a triple fault"
echo "$summary ($mode, $((t_end - t_start))s; logs in $WORK)"
if [ $failed -ne 0 ] && [ -n "$CONSOLE" ]; then
	echo "---- test host console tail"
	tail -n 15 "$CONSOLE"
fi
[ $failed -eq 0 ]
