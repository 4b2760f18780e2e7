#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Live update, snapshot and restore: vmm against QEMU 10's cpr-transfer, migration to a file
# and restore from it, on the same micro-guest (tests/guest/micro/gap.c), for 256 MiB, 1 GiB
# and 4 GiB guests. Prints Markdown tables (bench/live_update.py does the measuring).
# See bench/README.md for what each number means.
#
#   bench/live_update.sh [--build DIR] [--vmm PATH] [--qemu PATH] [--sizes 256,1024,4096]
#                        [--updates N] [--idle N] [--snapshots N] [--restores N] [--keep]
#
# QEMU: without --qemu, Debian's qemu-system-x86 10.0 from bookworm-backports is downloaded
# (apt-get download with a private apt configuration built from this machine's own sources:
# nothing is installed, the system's apt sources are not touched) and unpacked into
# ${XDG_CACHE_HOME:-~/.cache}/vmm/qemu10.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)

build=$root/build
vmm=
guest=
qemu=
keep=0
py_args=()

usage() {
	cat <<EOF
usage: $0 [--build DIR] [--vmm PATH] [--qemu PATH] [--sizes LIST] [--updates N] [--idle N]
          [--snapshots N] [--restores N] [--keep]
  --build DIR      meson build directory (default: $root/build): vmm/vmm and
                   tests/guest/micro/micro-pvh.elf are taken from it
  --vmm PATH       vmm binary (default: DIR/vmm/vmm)
  --qemu PATH      a QEMU >= 10.0 qemu-system-x86_64 (default: Debian's 10.0 from
                   bookworm-backports, fetched into the cache)
  --sizes LIST     guest sizes in MiB (default 256,1024,4096)
  --updates N      recorded live updates per VMM and size (default 50)
  --idle N         intervals without an update, for the noise floor (default 50)
  --snapshots N    snapshots of the paused VM per VMM and size (default 3)
  --restores N     restores per VMM and size (default 5)
  --keep           keep the work directory (consoles, logs, raw results as JSON)
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--vmm) vmm=$2; shift 2 ;;
	--qemu) qemu=$2; shift 2 ;;
	--sizes|--updates|--idle|--snapshots|--restores) py_args+=("$1" "$2"); shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

die() { echo "live_update.sh: $*" >&2; exit 1; }

vmm=${vmm:-$build/vmm/vmm}
guest=$build/tests/guest/micro/micro-pvh.elf
[ -x "$vmm" ] || die "vmm binary not found at $vmm (build it, or pass --build DIR / --vmm PATH)"
[ -r "$guest" ] || die "micro-guest not found at $guest (meson builds it when gcc can do -m32)"
vmm=$(cd "$(dirname "$vmm")" && pwd)/$(basename "$vmm")
guest=$(cd "$(dirname "$guest")" && pwd)/$(basename "$guest")
[ -r /dev/kvm ] && [ -w /dev/kvm ] || die "/dev/kvm is not accessible"
command -v python3 >/dev/null || die "python3 is needed"

work=$(mktemp -d "${TMPDIR:-/tmp}/vmm-lu-bench.XXXXXX")
if [ "$keep" = 1 ]; then
	echo "live_update.sh: work directory $work" >&2
else
	trap 'rm -rf "$work"' EXIT
fi

# --- the host-side watcher -------------------------------------------------------------------
gcc -std=gnu11 -O2 -Wall -Wextra -D_GNU_SOURCE "$here/gapwatch.c" -o "$work/gapwatch" ||
	die "cannot build gapwatch"

# --- QEMU 10 (bench/qemu10.sh: fetched into the cache, or --qemu; the -cpu it runs with) -------
# shellcheck source=bench/qemu10.sh
. "$here/qemu10.sh"
qemu_setup "$qemu" live_update.sh

echo "live_update.sh: vmm $vmm; QEMU $qemu -cpu $qemu_cpu; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 "$here/live_update.py" --vmm "$vmm" --guest "$guest" --gapwatch "$work/gapwatch" \
	--qemu "$qemu" --qemu-data "$qemu_data" --qemu-cpu "$qemu_cpu" --work "$work" \
	--json "$work/results.json" "${py_args[@]}"
