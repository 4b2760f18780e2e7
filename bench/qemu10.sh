# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# bench/qemu10.sh, sourced by the benchmarks that run QEMU 10 as the peer (live_update.sh,
# hostupdate.sh): qemu_setup [QEMU [WHO]] sets qemu, qemu_data and qemu_cpu. Without QEMU,
# Debian's qemu-system-x86 10.0 from bookworm-backports is downloaded (apt-get download with a
# private apt configuration built from this machine's own sources: nothing is installed, the
# system's apt sources are not touched) and unpacked into ${XDG_CACHE_HOME:-~/.cache}/vmm/qemu10.
# The caller has die(), $work (a scratch directory) and $guest (the micro-guest, for the -cpu
# probe).

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
		echo "$who: fetching QEMU 10 from $uri bookworm-backports into $cache" >&2
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
			echo "$who: also fetching:$missing" >&2
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

qemu_setup() {
	local who=${2:-bench}
	qemu=${1:-}
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
}
