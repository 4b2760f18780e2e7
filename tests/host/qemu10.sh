# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# tests/host/qemu10.sh, sourced by tests/host/testhost.sh (QEMU 10 runs the test host: its TCG
# emulates the nested SVM that the test host's KVM uses better than bookworm's QEMU 7.2 does)
# and by bench/qemu10.sh (QEMU 10 as the benchmarks' peer). qemu10_fetch [WHO]: Debian's
# qemu-system-x86 10.0 from bookworm-backports, downloaded once (apt-get download with a
# private apt configuration built from this machine's own sources: nothing is installed, the
# system's apt sources are not touched) and unpacked into ${XDG_CACHE_HOME:-~/.cache}/vmm/qemu10;
# sets qemu (the binary) and qemu_data (its firmware directory), and LD_LIBRARY_PATH when its
# libraries are unpacked there too. Returns 1 with a line on stderr when it cannot.

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

qemu10_fail() {
	echo "$who: $*" >&2
}

qemu10_fetch() {
	local who=${1:-vmm} cache=${XDG_CACHE_HOME:-$HOME/.cache}/vmm/qemu10 uri key apt opts missing deps p
	local bin=$cache/root/usr/bin/qemu-system-x86_64
	if [ ! -x "$bin" ]; then
		uri=$(archive)
		[ -n "$uri" ] || { qemu10_fail "no Debian archive address in /etc/apt/sources.list(.d)"; return 1; }
		key=/usr/share/keyrings/debian-archive-keyring.gpg
		[ -r "$key" ] || { qemu10_fail "$key is missing (debian-archive-keyring)"; return 1; }
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
		apt-get -q "${opts[@]}" update >&2 || { qemu10_fail "apt-get update (private lists) failed"; return 1; }
		(cd "$cache/debs" && apt-get -q "${opts[@]}" download qemu-system-x86/bookworm-backports \
			qemu-system-common/bookworm-backports qemu-system-data/bookworm-backports >&2) ||
			{ qemu10_fail "apt-get download of QEMU 10 failed"; return 1; }
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
				{ qemu10_fail "apt-get download of QEMU's libraries failed"; return 1; }
			for p in "$cache"/debs/*.deb; do dpkg -x "$p" "$cache/root"; done
		fi
	fi
	if ldd "$bin" | grep -q 'not found'; then
		export LD_LIBRARY_PATH=$cache/root/usr/lib/x86_64-linux-gnu
		ldd "$bin" | grep 'not found' >&2 && { qemu10_fail "QEMU 10 still misses libraries (above)"; return 1; }
	fi
	qemu=$bin
	qemu_data=$cache/root/usr/share/qemu
}


