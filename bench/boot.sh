#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Boot-time and memory-overhead benchmark: vmm against QEMU microvm on the same PVH micro-guest,
# runs alternated (vmm, QEMU, vmm, QEMU, ...), medians printed as a Markdown table.
# See bench/README.md for what each number means.
#
#   bench/boot.sh [--vmm PATH] [--qemu PATH] [--runs N] [--keep]
#
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

vmm=$root/build/vmm/vmm
qemu=qemu-system-x86_64
runs=10
keep=0
mem=256M
mem_mib=256

usage() {
	cat <<EOF
usage: $0 [--vmm PATH] [--qemu PATH] [--runs N] [--keep]
  --vmm PATH   vmm binary (default: $root/build/vmm/vmm)
  --qemu PATH  QEMU binary (default: qemu-system-x86_64; installed with apt-get if missing)
  --runs N     measured runs per VMM and guest, at least 5 (default 10)
  --keep       keep the work directory (guests, helper, raw results)
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--vmm) vmm=$2; shift 2 ;;
	--qemu) qemu=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

die() { echo "boot.sh: $*" >&2; exit 1; }

case $runs in ''|*[!0-9]*) die "--runs: not a number: $runs" ;; esac
[ "$runs" -ge 5 ] || die "--runs: at least 5 runs are needed for a median worth printing"
[ -x "$vmm" ] || die "vmm binary not found at $vmm (build it, or pass --vmm PATH)"
vmm=$(cd "$(dirname "$vmm")" && pwd)/$(basename "$vmm")
[ -r /dev/kvm ] && [ -w /dev/kvm ] || die "/dev/kvm is not accessible"

if ! command -v "$qemu" >/dev/null 2>&1; then
	if [ "$qemu" = qemu-system-x86_64 ] && [ "$(id -u)" = 0 ]; then
		echo "boot.sh: installing qemu-system-x86 (Debian package)" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-system-x86 >&2 ||
			die "apt-get install qemu-system-x86 failed"
	else
		die "$qemu not found (apt-get install qemu-system-x86)"
	fi
fi
qemu=$(command -v "$qemu")

work=$(mktemp -d "${TMPDIR:-/tmp}/vmm-bench.XXXXXX")
if [ "$keep" = 1 ]; then
	echo "boot.sh: work directory $work" >&2
else
	trap 'rm -rf "$work"' EXIT
fi

# --- build the runner and the two guest variants (same files for both VMMs) ---------------
gcc -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE -I"$root/include" \
	"$here/bench_run.c" -o "$work/bench-run" || die "cannot build bench-run"
gcc -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE "$here/api_up.c" -o "$work/api-up" ||
	die "cannot build api-up"
for v in first hello; do
	def=
	[ $v = first ] && def=-DBENCH_FIRST
	gcc -m32 -ffreestanding -nostdlib $def -c "$here/guest/bench_guest.S" -o "$work/$v.o" &&
		ld -m elf_i386 -nostdlib --build-id=none -z noexecstack -T "$here/guest/bench.ld" \
			-o "$work/guest-$v.elf" "$work/$v.o" || die "cannot build the $v guest (gcc -m32)"
done
hello_line="vmm-bench: hello from the micro-guest"

# --- command lines -------------------------------------------------------------------------
# With a second argument "api", each VMM also serves its control socket: vmm its Firecracker
# API (--api-sock), QEMU its QMP monitor.
vmm_cmd() {
	echo "$vmm run --kernel $1 --memory $mem --cpus 1${2:+ --api-sock $work/api.sock}"
}
# microvm with its defaults (qboot firmware, ACPI, in-kernel PIC/PIT/IOAPIC, no PCI); guest RAM
# from a memfd so that it shows up as RssShmem, as vmm's does.
qemu_cpu=host
qemu_cmd() {
	echo "$qemu -name debug-threads=on -M microvm,memory-backend=mem -accel kvm -cpu $qemu_cpu -smp 1 -m $mem" \
		"-object memory-backend-memfd,id=mem,size=$mem -nodefaults -no-user-config" \
		"-display none -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=1 -kernel $1" \
		"${2:+-qmp unix:$work/qmp.sock,server=on,wait=off}"
}

# run WHO VARIANT [record|smaps]: one run; checks the outcome; appends the result line if
# recording, or saves /proc/PID/smaps at exit to $work/WHO.smaps.
run_one() {
	local who=$1 v=$2 cmd line status smaps=() guest=${2%-api} api=
	[ "$v" != "$guest" ] && api=api
	if [ "$who" = vmm ]; then cmd=$(vmm_cmd "$work/guest-$guest.elf" $api); else cmd=$(qemu_cmd "$work/guest-$guest.elf" $api); fi
	[ "${3:-}" = smaps ] && smaps=(-s "$work/$who.smaps")
	# shellcheck disable=SC2086 # the command line is split on purpose
	line=$("$work/bench-run" -t 120 -o "$work/out" -e "$work/err" "${smaps[@]}" -- $cmd) ||
		die "$who/$v: bench-run failed"
	status=${line#status=}
	status=${status%% *}
	# The debug-exit port ends both VMMs with (v << 1) | 1: any odd status for 'first' (AL is
	# undefined at the PVH entry), 1 for 'hello' (it writes 0).
	if [ "$guest" = hello ]; then
		[ "$status" = 1 ] && grep -qF "$hello_line" "$work/out" || {
			echo "--- $who/$v: status $status; stdout:" >&2; head -c 2000 "$work/out" >&2
			echo "--- stderr:" >&2; head -c 2000 "$work/err" >&2
			die "$who/$v did not print the line and exit with status 1: $cmd"
		}
	else
		case $status in *[13579]) ;; *)
			head -c 2000 "$work/err" >&2
			die "$who/$v ended with status $status, not a debug-exit: $cmd" ;;
		esac
	fi
	case $line in *" exits=0 "*) die "$who/$v: no exit stop was caught (no memory numbers): $line" ;; esac
	if [ "${3:-}" = record ]; then echo "$who $v $line" >>"$work/results"; fi
}

# QEMU 7.2 -cpu host (and max) abort on some of our machines setting MSR 0x10a,
# IA32_ARCH_CAPABILITIES (ENVIRONMENT.md): then without that feature.
for c in host host,-arch-capabilities max,-arch-capabilities; do
	qemu_cpu=$c
	"$work/bench-run" -t 60 -o "$work/out" -e "$work/err" -- $(qemu_cmd "$work/guest-hello.elf") \
		>"$work/probe" || true
	grep -q '^status=1 ' "$work/probe" && grep -qF "$hello_line" "$work/out" && break
done

# The control socket up: exec -> an answer on it (vmm: GET / of its API; QEMU: the QMP
# greeting, with the guest stopped at its start, -S), and the CPU time spent to that point.
api_up_one() {
	local who=$1 line
	if [ "$who" = vmm ]; then
		line=$("$work/api-up" "$work/up.sock" -- "$vmm" --api-sock "$work/up.sock") ||
			die "vmm: its API socket did not answer"
	else
		# shellcheck disable=SC2046 # split on purpose
		line=$("$work/api-up" -q "$work/upq.sock" -- $(qemu_cmd "$work/guest-hello.elf") \
			-S -qmp "unix:$work/upq.sock,server=on,wait=off" </dev/null) ||
			die "QEMU: its QMP socket did not answer"
	fi
	[ "${2:-}" = record ] && echo "$who up $line" >>"$work/results"
	return 0
}

# Warm-up (page cache, dynamic loader caches): one unrecorded run of each.
for v in first hello hello-api; do run_one vmm $v smaps; run_one qemu $v smaps; done
api_up_one vmm
api_up_one qemu

: >"$work/results"
for ((i = 1; i <= runs; i++)); do
	[ -t 2 ] && printf 'run %d/%d\r' "$i" "$runs" >&2
	for v in first hello hello-api; do
		run_one vmm $v record
		run_one qemu $v record
	done
	api_up_one vmm record
	api_up_one qemu record
done
[ -t 2 ] && printf '\n' >&2

# --- statistics -----------------------------------------------------------------------------
# values WHO VARIANT METRIC: one number per run. nonguest_kb is the memory beyond guest RAM:
# RssAnon + RssFile at exit, or VmHWM - RssShmem if that is larger (a peak that came and went);
# teardown_us is the time from the first thread's exit to the process being reaped.
values() {
	awk -v who="$1" -v v="$2" -v m="$3" '
	$1 == who && $2 == v {
		delete f
		for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		if (m == "nonguest_kb") {
			a = f["rss_anon_kb"] + f["rss_file_kb"]; b = f["hwm_kb"] - f["rss_shmem_kb"]
			print (a > b ? a : b)
		} else if (m == "teardown_us")
			print f["wall_us"] - f["first_exit_us"]
		else
			print f[m]
	}' "$work/results"
}
# stats: "median min max" of the numbers on stdin.
stats() {
	sort -g | awk '{ a[NR] = $1 }
	END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; print m, a[1], a[NR] }'
}

# row LABEL VARIANT METRIC DIVISOR UNIT TARGET_RATIO TARGET_TEXT
row() {
	local vm vmin vmax qm qmin qmax
	read -r vm vmin vmax < <(values vmm "$2" "$3" | stats)
	read -r qm qmin qmax < <(values qemu "$2" "$3" | stats)
	awk -v l="$1" -v d="$4" -v u="$5" -v tr="$6" -v tt="$7" \
		-v vm="$vm" -v vmin="$vmin" -v vmax="$vmax" -v qm="$qm" -v qmin="$qmin" -v qmax="$qmax" '
	BEGIN {
		r = qm > 0 ? vm / qm : 0
		verdict = tt
		if (tr != "") verdict = sprintf("%s: %s", tt, r <= tr ? "met" : "NOT met")
		printf "| %s | %.2f %s (%.2f–%.2f) | %.2f %s (%.2f–%.2f) | %.2f | %s |\n",
			l, vm / d, u, vmin / d, vmax / d, qm / d, u, qmin / d, qmax / d, r, verdict
	}'
}

kvm_kind="hardware KVM"
if [ -d /sys/module/kvm_pvm ]; then
	kvm_kind="software-nested KVM (kvm_pvm: shadow paging, guest CPL0 code emulated)"
elif grep -qw hypervisor /proc/cpuinfo; then
	kvm_kind="nested KVM (this host is itself a VM)"
fi
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)

echo
echo "### Boot time and memory overhead: vmm vs QEMU microvm ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "Machine: $(nproc) CPUs, $cpu_model, Linux $(uname -r), /dev/kvm: $kvm_kind."
echo "$(basename "$qemu"): $("$qemu" --version | head -1). $runs runs each, alternated vmm/QEMU after one warm-up run;"
echo "median (min–max); ratio = vmm median / QEMU median. Guest: the same PVH ELF for both, $mem RAM, 1 vCPU."
echo
echo "| metric | vmm | QEMU microvm | vmm/QEMU | target |"
echo "| --- | --- | --- | --- | --- |"
row "(a) exec → exit, guest exits at its first instruction (setup + teardown: upper bound of exec → first instruction)" \
	first wall_us 1000 ms 0.5 "setup ≤ ½ QEMU"
row "(a′) same guest, exec → first VMM thread exits (the vCPU thread, once the exit is handled; most teardown excluded)" \
	first first_exit_us 1000 ms 0.5 "setup ≤ ½ QEMU"
row "(a″) teardown: (a) − (a′)" first teardown_us 1000 ms "" ""
row "(b) exec → exit, guest prints a line on COM1, then exits" hello wall_us 1000 ms "" ""
row "(b′) same guest, exec → first VMM thread exits" hello first_exit_us 1000 ms "" ""
read -r ng_med _ < <(values vmm hello nonguest_kb | stats)
row "(c) RSS beyond guest RAM (RssAnon + RssFile at exit, (b) guest)" hello nonguest_kb 1024 MiB "" \
	"≤ 3 MiB: $(awk -v k="$ng_med" 'BEGIN { print k <= 3072 ? "met" : "NOT met" }')"
row "(c′) of which RssAnon" hello rss_anon_kb 1024 MiB "" ""
row "peak RSS, guest RAM included (VmHWM)" hello hwm_kb 1024 MiB "" ""
row "guest RAM touched (RssShmem at exit)" hello rss_shmem_kb 1024 MiB "" ""
row "(b‴) as (b), serving the control socket (vmm: --api-sock; QEMU: -qmp)" hello-api wall_us 1000 ms "" ""
read -r nga_med _ < <(values vmm hello-api nonguest_kb | stats)
row "(c‴) RSS beyond guest RAM, serving the control socket" hello-api nonguest_kb 1024 MiB "" \
	"≤ 3 MiB: $(awk -v k="$nga_med" 'BEGIN { print k <= 3072 ? "met" : "NOT met" }')"
row "(d) control socket up: exec → first answer (vmm: GET / 200; QEMU: QMP greeting, -S)" up wall_us 1000 ms "" ""
read -r up_cpu _ < <(values vmm up cpu_us | stats)
row "(d′) CPU time of all threads at that answer" up cpu_us 1000 ms "" \
	"≤ 8 CPU-ms (Firecracker's API-up target): $(awk -v c="$up_cpu" 'BEGIN { print c <= 8000 ? "met" : "NOT met" }')"
echo
echo "Commands (GUEST = guest-first.elf or guest-hello.elf, built from bench/guest/bench_guest.S):"
echo
echo '```'
vmm_cmd GUEST
qemu_cmd GUEST
echo "# (b‴, c‴): the same with"
echo "--api-sock $work/api.sock   (vmm)   -qmp unix:QMP.sock,server=on,wait=off   (QEMU)"
echo "# (d): $vmm --api-sock SOCK   vs   the QEMU command above with -S -qmp unix:SOCK,server=on,wait=off"
echo '```'
echo
# Which thread ended first, with the number of runs, so that (a′) and (b′) can be read.
first_thread() {
	awk -v who="$1" '$1 == who { for (i = 3; i <= NF; i++) if ($i ~ /^first_exit_comm=/) c[substr($i, 17)]++ }
	END { for (n in c) print c[n], n }' "$work/results" | sort -rn |
		awk '{ printf "%s`%s` ×%d", (NR > 1 ? ", " : ""), $2, $1 }'
}
echo "First thread to exit (a′, b′): vmm $(first_thread vmm); QEMU $(first_thread qemu). vmm's vCPU"
echo "thread returns once the guest's exit is handled and vmm then tears the VM down itself; QEMU's"
echo "vCPU thread calls exit() on the debug-exit write, so its first exit stop is the exit_group()"
echo "(the thread reported may be one that exit_group() kills)."
echo
echo "Notes: times run from the execve() of the VMM to its exit as seen by bench-run (ptrace);"
echo "memory is read from /proc/PID/status when the exiting thread stops at PTRACE_EVENT_EXIT,"
echo "before anything is unmapped. QEMU runs its qboot firmware before the PVH entry and keeps"
echo "microvm's defaults (ACPI, PIC, PIT, RTC on); vmm also builds ACPI tables. RssFile counts the"
echo "mapped pages of the binary and its shared libraries (page cache, shared with other processes)."
# Largest resident mappings at exit, from the warm-up run of the (b) guest.
top_rss() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { n = NF >= 6 ? $6 : "[anon]"; sub(".*/", "", n) }
	     /^Rss:/ { r[n] += $2 }
	     END { for (n in r) if (r[n] >= 64) printf "%d %s\n", r[n], n }' "$1" |
		sort -rn | head -6 | awk '{ printf "%s%s %.2f MiB", (NR > 1 ? ", " : ""), $2, $1 / 1024 }'
}
echo "Largest resident mappings at exit, vmm: $(top_rss "$work/vmm.smaps")."
echo "QEMU: $(top_rss "$work/qemu.smaps")."
