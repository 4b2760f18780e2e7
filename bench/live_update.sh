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

# --- QEMU 10 ---------------------------------------------------------------------------------
# The Debian archive this machine uses (the first non-security URI of its apt sources, deb822
# or one-line format) and the keyring that signs it.
archive() {
	local f uri
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } else break } }' "$f")
		[ -n "$uri" ] && { echo "$uri"; return; }
	done
}

qemu_fetch() {
	local cache=${XDG_CACHE_HOME:-$HOME/.cache}/vmm/qemu10 uri key apt opts missing deps p
	local bin=$cache/root/usr/bin/qemu-system-x86_64
	if [ ! -x "$bin" ]; then
		uri=$(archive)
		[ -n "$uri" ] || die "no Debian archive address in /etc/apt/sources.list(.d)"
		key=/usr/share/keyrings/debian-archive-keyring.gpg
		[ -r "$key" ] || die "$key is missing (debian-archive-keyring)"
		echo "live_update.sh: fetching QEMU 10 from $uri bookworm-backports into $cache" >&2
		apt=$cache/apt
		rm -rf "$cache/root" "$cache/debs"
		mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$cache/debs" "$cache/root"
		# bookworm too: the libraries QEMU needs that are not installed come from there.
		printf 'deb [signed-by=%s] %s bookworm-backports main\ndeb [signed-by=%s] %s bookworm main\n' \
			"$key" "$uri" "$key" "$uri" >"$apt/sources.list"
		opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
		      -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
		      -o "Dir::State::Status=/var/lib/dpkg/status" -o "APT::Sandbox::User=root")
		apt-get -q "${opts[@]}" update >&2 || die "apt-get update (private lists) failed"
		(cd "$cache/debs" && apt-get -q "${opts[@]}" download qemu-system-x86/bookworm-backports \
			qemu-system-common/bookworm-backports qemu-system-data/bookworm-backports >&2) ||
			die "apt-get download of QEMU 10 failed"
		for p in "$cache"/debs/*.deb; do dpkg -x "$p" "$cache/root"; done
		# Libraries bookworm's installed set lacks: the dependencies that are not installed.
		if ldd "$bin" | grep -q 'not found'; then
			deps=$(apt-cache "${opts[@]}" depends --no-recommends --no-suggests \
				qemu-system-x86/bookworm-backports | awk '/Depends:/ && $2 !~ /^</ { print $2 }' | sort -u)
			missing=
			for p in $deps; do
				dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
					missing="$missing $p"
			done
			echo "live_update.sh: also fetching:$missing" >&2
			# shellcheck disable=SC2086 # a list of package names
			(cd "$cache/debs" && apt-get -q "${opts[@]}" download $missing >&2) ||
				die "apt-get download of QEMU's libraries failed"
			for p in "$cache"/debs/*.deb; do dpkg -x "$p" "$cache/root"; done
		fi
	fi
	if ldd "$bin" | grep -q 'not found'; then
		export LD_LIBRARY_PATH=$cache/root/usr/lib/x86_64-linux-gnu
		ldd "$bin" | grep 'not found' >&2 && die "QEMU 10 still misses libraries (above)"
	fi
	qemu=$bin
	qemu_data=$cache/root/usr/share/qemu
}

if [ -z "$qemu" ]; then
	qemu_fetch
else
	qemu=$(command -v "$qemu") || die "--qemu: not found"
	qemu_data=$(cd "$(dirname "$qemu")/../share/qemu" 2>/dev/null && pwd) || qemu_data=/usr/share/qemu
fi
"$qemu" -machine help | grep -q microvm || die "$qemu has no microvm machine"

# QEMU -cpu host aborts on some of our machines setting MSR 0x10a (ENVIRONMENT.md): probe as
# boot.sh does, with the guest's "exit" scenario (debug-exit 0: status 1).
qemu_cpu=
for c in host host,-arch-capabilities max,-arch-capabilities; do
	st=0
	# In a shell of its own, which says "Aborted" into the probe's log, not on our terminal.
	bash -c '"$@"; exit $?' probe timeout 60 "$qemu" -L "$qemu_data" -M microvm -accel kvm -cpu "$c" \
		-m 64M -nodefaults -no-user-config -display none -serial stdio \
		-device isa-debug-exit,iobase=0xf4,iosize=1 -kernel "$guest" \
		-append "t.scenario=exit t.code=0" >"$work/probe" 2>&1 </dev/null || st=$?
	if [ "$st" = 1 ] && grep -q 'MICRO EXIT 0' "$work/probe"; then
		qemu_cpu=$c
		break
	fi
done
[ -n "$qemu_cpu" ] || { cat "$work/probe" >&2; die "QEMU does not run the micro-guest with any -cpu tried"; }

echo "live_update.sh: vmm $vmm; QEMU $qemu -cpu $qemu_cpu; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 "$here/live_update.py" --vmm "$vmm" --guest "$guest" --gapwatch "$work/gapwatch" \
	--qemu "$qemu" --qemu-data "$qemu_data" --qemu-cpu "$qemu_cpu" --work "$work" \
	--json "$work/results.json" "${py_args[@]}"
