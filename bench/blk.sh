#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Block I/O benchmark: blkbench (bench/blkbench.c: O_DIRECT, io_uring) on
#   (a) the host's own file,
#   (b) /dev/vda of a guest of vmm backed by that same file with cache=none, once per engine
#       (io=uring, io=aio, io=sync), and once more with io=uring and polling off (poll=0),
#   (c) the same guest under QEMU microvm (virtio-blk-device on an iothread, cache=none,
#       aio=io_uring),
# all in ONE boot of the QEMU TCG test host (tests/host/testhost.sh; our machines' /dev/kvm cannot
# run a stock kernel in useful time), or directly on /dev/kvm with --direct (hardware KVM).
# Runs are interleaved (host, vmm uring, vmm uring poll=0, vmm aio, vmm sync, QEMU, then again); medians with
# min-max and the ratios guest/host and vmm/QEMU are printed as Markdown. See bench/README.md.
#
#   bench/blk.sh [--vmm PATH] [--runs N] [--secs S] [--size-mb N] [--direct] [--keep]
#
# shellcheck disable=SC2016 # $c in the generated case lines is the test host shell's
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

vmm=$root/build/vmm/vmm
runs=3
secs=3
size_mb=512
direct=0
keep=0

usage() {
	cat <<EOF
usage: $0 [--vmm PATH] [--runs N] [--secs S] [--size-mb N] [--direct] [--keep]
  --vmm PATH     vmm binary (default: $root/build/vmm/vmm)
  --runs N       rounds; each runs every configuration once (default 3, at least 3)
  --secs S       seconds per blkbench test (6 tests per run; default 3)
  --size-mb N    size of the benchmark file (default 512)
  --direct       run on this machine's /dev/kvm (hardware KVM) instead of the test host
  --keep         keep the work directory (logs, raw results)
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--vmm) vmm=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	--secs) secs=$2; shift 2 ;;
	--size-mb) size_mb=$2; shift 2 ;;
	--direct) direct=1; shift ;;
	--keep) keep=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

die() { echo "blk.sh: $*" >&2; exit 1; }

for v in runs secs size_mb; do
	case ${!v} in '' | *[!0-9]*) die "--${v//_/-}: not a number: ${!v}" ;; esac
done
[ "$runs" -ge 3 ] || die "--runs: at least 3 rounds are needed for a median worth printing"
[ "$size_mb" -ge 64 ] || die "--size-mb: at least 64"
[ -x "$vmm" ] || die "vmm binary not found at $vmm (build it, or pass --vmm PATH)"
vmm=$(readlink -f "$vmm")

qemu=$(command -v qemu-system-x86_64 || true)
if [ -z "$qemu" ] && [ "$(id -u)" = 0 ]; then
	echo "blk.sh: installing qemu-system-x86 (Debian package)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-system-x86 >&2 ||
		die "apt-get install qemu-system-x86 failed"
	qemu=$(command -v qemu-system-x86_64 || true)
fi
[ -n "$qemu" ] || die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"

work=$(mktemp -d "${TMPDIR:-/tmp}/vmm-blkbench.XXXXXX")
if [ "$keep" = 1 ]; then
	echo "blk.sh: work directory $work" >&2
else
	trap 'rm -rf "$work"' EXIT
fi
extra=$work/extra
mkdir -p "$extra/qemu-data" "$work/add/bin"

# --- what goes into the test host (/extra) ---------------------------------------------------
# blkbench, static: the same binary runs in the test host and in the guests' initramfs.
gcc -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE -static -o "$extra/blkbench" "$here/blkbench.c" \
	-luring || die "cannot build blkbench (gcc, liburing-dev with liburing.a)"

kit=${VMM_KIT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm/guest-kit}
"$root/tests/guest/kit/mkkit.sh" "$kit" >"$work/mkkit.log" 2>&1 ||
	{ tail -n 5 "$work/mkkit.log" >&2; die "the guest kit could not be built"; }

# The guests' initramfs: the kit's, with blkbench and the script its vmmtest=exec runs
# appended as a second cpio archive (the kernel unpacks both).
cp "$extra/blkbench" "$work/add/bin/blkbench"
cat >"$work/add/vmmtest-exec" <<EOF
blkbench -t $secs /dev/vda
EOF
# Compressed as well: the kernel takes an uncompressed archive after a compressed one only at a
# 4-byte aligned offset.
(cd "$work/add" && find . | LC_ALL=C sort | cpio -o -H newc --owner=0:0 --quiet) |
	gzip -1n >"$work/add.cpio.gz"
cat "$kit/initramfs.cpio.gz" "$work/add.cpio.gz" >"$extra/bench-initrd"

# QEMU: the binary (testhost.sh copies its shared libraries) and the firmware microvm loads.
cp "$qemu" "$extra/qemu-system-x86_64"
qdata=$(dirname "$(readlink -f "$qemu")")/../share/qemu
for f in bios-microvm.bin pvh.bin linuxboot_dma.bin; do
	cp -L "$qdata/$f" "$extra/qemu-data/$f" || die "QEMU firmware $f not found in $qdata"
done

# --- the runs, as test-host cases ------------------------------------------------------------
guest_cmdline="console=ttyS0 quiet vmmtest=exec"
wd=$((secs * 6 + 180))
vmm_args() {
	echo "run --kernel @KIT@/cloud/vmlinux --initrd @EXTRA@/bench-initrd --cpus 1 --memory 256M" \
		"--cmdline \"$guest_cmdline\" --timeout $wd --disk @SHARED@/bench.img,cache=none,io=$1${2:-}"
}
# microvm with its defaults (ACPI, so the virtio-mmio device is found as ours is) and the disk
# on an iothread, QEMU's fast path; the same guest, RAM and vCPU count.
qemu_args() {
	echo "@EXTRA@/qemu-system-x86_64 -L @EXTRA@/qemu-data -M microvm -accel kvm -cpu $1 -smp 1" \
		"-m 256M -nodefaults -no-user-config -no-reboot -display none -serial stdio" \
		"-kernel @KIT@/cloud/vmlinux -initrd @EXTRA@/bench-initrd -append \"$guest_cmdline\"" \
		"-object iothread,id=io1" \
		"-drive file=@SHARED@/bench.img,if=none,id=d0,format=raw,cache=none,aio=io_uring" \
		"-device virtio-blk-device,drive=d0,iothread=io1"
}
configs="host vmm-uring vmm-uring-nopoll vmm-aio vmm-sync qemu"
cases=$work/blk.cases
{
	echo "# generated by bench/blk.sh"
	echo "case prep 0"
	echo "watchdog 600"
	# Written, not sparse: every read reaches real blocks. Transparent huge pages for shmem
	# too, as a host that runs VMs is set up: vmm's guest RAM is a memfd, which Debian's
	# default (shmem_enabled=never) keeps on 4 KiB pages, while QEMU's anonymous RAM gets
	# huge pages under the default enabled=madvise.
	echo "run echo advise >/sys/kernel/mm/transparent_hugepage/shmem_enabled &&" \
		"echo thp-shmem=\$(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled) &&" \
		"dd if=/dev/zero of=@SHARED@/bench.img bs=1M count=$size_mb conv=fsync && df -m @SHARED@"
	# QEMU 7.2 -cpu host aborted on some machines (ENVIRONMENT.md, MSR 0x10a): -cpu max then.
	echo "case qemu-cpu 0"
	echo "watchdog 120"
	probe=$(qemu_args '$c' | sed 's/vmmtest=exec/vmmtest=poweroff/')
	echo "run for c in host max; do timeout 60 $probe </dev/null >/dev/null 2>&1 &&" \
		'{ echo "qemu-cpu=$c"; echo "$c" >@SHARED@/qemu-cpu; exit 0; }; done; exit 1'
	for ((r = 1; r <= runs; r++)); do
		echo "case r$r-host 0"
		echo "watchdog $wd"
		echo "run @EXTRA@/blkbench -t $secs @SHARED@/bench.img"
		for e in uring uring-nopoll aio sync; do
			echo "case r$r-vmm-$e 0"
			echo "watchdog $wd"
			case $e in
			*-nopoll) echo "vmm $(vmm_args "${e%-nopoll}" ,poll=0)" ;;
			*) echo "vmm $(vmm_args "$e")" ;;
			esac
		done
		echo "case r$r-qemu 0"
		echo "watchdog $wd"
		echo "run c=\$(cat @SHARED@/qemu-cpu); $(qemu_args '$c')"
	done
} >"$cases"

th=(bash "$root/tests/host/testhost.sh" --workdir "$work/th" --extra-dir "$extra"
    --scratch-mb $((size_mb + 512)) "$vmm" "$cases")
echo "blk.sh: $((runs * 6)) runs of 6 x ${secs}s tests$([ "$direct" = 1 ] && echo ' on /dev/kvm' || echo ' in one test-host boot'); this takes a while" >&2
t0=$(date +%s)
rc=0
if [ "$direct" = 1 ]; then
	VMM_TEST_DIRECT=1 "${th[@]}" >"$work/testhost.out" 2>&1 || rc=$?
else
	VMM_TEST_WALL=$((600 + runs * 6 * (secs * 6 + 60))) "${th[@]}" >"$work/testhost.out" 2>&1 ||
		rc=$?
fi
t1=$(date +%s)
results=$work/th/results.log.clean
[ -s "$results" ] || { cat "$work/testhost.out" >&2; die "no results (testhost.sh status $rc)"; }
# A run that failed (a guest that hung, say) is left out of the medians, and said so.
failed_runs=$(grep -E '^FAIL ' "$work/testhost.out" | cut -d' ' -f2 | tr '\n' ' ' || true)
if [ $rc -ne 0 ]; then
	grep -A 12 -E '^FAIL ' "$work/testhost.out" >&2 || tail -n 20 "$work/testhost.out" >&2
	if [ "$keep" = 0 ]; then
		cp -r "$work/th" "${TMPDIR:-/tmp}/vmm-blkbench-failed.$$" 2>/dev/null &&
			echo "blk.sh: logs kept in ${TMPDIR:-/tmp}/vmm-blkbench-failed.$$" >&2
	fi
	echo "blk.sh: failed runs (left out): ${failed_runs:-the test host itself}" >&2
fi

# --- table -----------------------------------------------------------------------------------
qemu_cpu=$(grep -o 'qemu-cpu=[a-z]*' "$results" | head -n1 | cut -d= -f2)
host_kernel=$(grep -o '^@@HOST begin [^ ]*' "$results" | cut -d' ' -f3)
if [ "$direct" = 1 ]; then
	where="directly on this machine's /dev/kvm ($(nproc) CPUs, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), Linux $(uname -r))"
else
	where="inside one boot of the QEMU TCG test host (2 vCPUs EPYC+SVM, 6 GiB, Linux $host_kernel; everything in it is emulated by TCG, so only the ratios mean something)"
fi
echo
echo "### Block I/O: host file vs vmm (per engine) vs QEMU microvm ($(date -u '+%Y-%m-%d %H:%M UTC'))"
echo
echo "Measured $where, $((t1 - t0)) s in all. blkbench (O_DIRECT, io_uring) for ${secs}s per test,"
echo "$runs rounds interleaved (host, vmm uring, vmm uring poll=0, vmm aio, vmm sync, QEMU); median (min–max)."
echo "Target file: ${size_mb} MiB, written before the runs, on the test host's ext4 scratch disk."
echo "Test host THP: shmem_enabled $(grep -o 'thp-shmem=.*' "$results" | head -n1 | grep -o '\[[a-z_]*\]') (for vmm's memfd guest RAM; QEMU's anonymous RAM: enabled=madvise)."
echo "Guests: Debian cloud kernel $(cat "$kit/cloud/release") (vmlinux), 1 vCPU, 256 MiB, /dev/vda with cache=none."
echo "$("$qemu" --version | head -n1), -cpu ${qemu_cpu:-?}."
if [ -n "$failed_runs" ]; then
	echo "Failed runs, left out: $failed_runs(their cells say n=, the runs counted)."
fi
echo
table_rc=0
# shellcheck disable=SC2086 # one argument per configuration
python3 - "$results" "$runs" $configs <<'PY' || table_rc=$?
import re, statistics, sys
path, runs, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
tests = ["seqread-1m", "seqwrite-1m", "randread-4k-qd1", "randread-4k-qd32",
         "randwrite-4k-qd1", "randwrite-4k-qd32"]
vals = {}  # (config, test) -> [values]
units = {}
line_re = re.compile(r"^@@C r(\d+)-([a-z-]+)\|(\S+) ([0-9.]+) (MB/s|IOPS)\s*$")
for line in open(path, errors="replace"):
    m = line_re.match(line)
    if not m or m.group(3) not in tests:
        continue
    vals.setdefault((m.group(2), m.group(3)), []).append(float(m.group(4)))
    units[m.group(3)] = m.group(5)
missing = [(c, t) for c in configs for t in tests if not vals.get((c, t))]
if missing:
    print("blk.sh: no result at all for " + ", ".join(f"{c}/{t}" for c, t in missing),
          file=sys.stderr)
    sys.exit(1)
med = {k: statistics.median(v) for k, v in vals.items()}
names = {"host": "host file", "vmm-uring": "vmm io=uring", "vmm-uring-nopoll": "vmm uring poll=0",
         "vmm-aio": "vmm io=aio",
         "vmm-sync": "vmm io=sync", "qemu": "QEMU io_uring"}
fmt = lambda x: f"{x:.1f}" if x < 100 else f"{x:.0f}"
print("| test | " + " | ".join(names[c] for c in configs) + " |")
print("| --- |" + " --- |" * len(configs))
for t in tests:
    cells = []
    for c in configs:
        v = vals[(c, t)]
        n = f", n={len(v)}" if len(v) != runs else ""
        cells.append(f"{fmt(med[(c, t)])} ({fmt(min(v))}–{fmt(max(v))}{n})")
    print(f"| {t} ({units[t]}) | " + " | ".join(cells) + " |")
print()
vmms = [c for c in configs if c.startswith("vmm-")]
print("| test | " + " | ".join(f"{names[c]} / host" for c in vmms) + " | QEMU / host | "
      + " | ".join(f"{names[c]} / QEMU" for c in vmms) + " |")
print("| --- |" + " --- |" * (2 * len(vmms) + 1))
for t in tests:
    h, q = med[("host", t)], med[("qemu", t)]
    row = [f"{med[(c, t)] / h:.2f}" for c in vmms] + [f"{q / h:.2f}"]
    row += [f"{med[(c, t)] / q:.2f}" for c in vmms]
    print(f"| {t} | " + " | ".join(row) + " |")
print()
g = min(med[("vmm-uring", t)] / med[("host", t)] for t in tests)
r = min(med[("vmm-uring", t)] / med[("qemu", t)] for t in tests)
print(f"Targets (io=uring, the default engine): ≥ 0.90 of host in every test: "
      f"{'met' if g >= 0.9 else 'NOT met'} (lowest {g:.2f}); ≥ 1.0× QEMU in every test: "
      f"{'met' if r >= 1.0 else 'NOT met'} (lowest {r:.2f}).")
PY
echo
echo "Commands (in the test host; @KIT@ is the guest kit, @EXTRA@ blkbench, the initramfs and QEMU,"
echo "@SHARED@ a directory on the scratch disk):"
echo
echo '```'
echo "blkbench -t $secs @SHARED@/bench.img"
echo "vmm $(vmm_args ENGINE)   # and io=uring,poll=0"
qemu_args "${qemu_cpu:-host}"
echo '```'
[ $table_rc -eq 0 ] && [ $rc -eq 0 ]
