#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# Host side of the disk cases (cases/disk*.cases, '@TOOLS@/diskpat.sh'): disk images and the
# patterns the guest kit's init.sh writes and checks. POSIX sh + busybox, like runcases.sh.
#
#   diskpat.sh make IMG SIZE [fill]        a sparse image, or (fill) one whose blocks are all
#                                          allocated (zeros written), e.g. before a discard
#   diskpat.sh write IMG OFFSET SEED LINES pattern SEED at byte OFFSET, in place
#   diskpat.sh verify IMG OFFSET SEED LINES  the pattern is at OFFSET ('HOSTCHECK ...=ok')
#   diskpat.sh kib IMG                     allocated KiB of IMG (du -k)
#   diskpat.sh dropped IMG BEFORE_KIB MIN_KIB  IMG's allocation fell by at least MIN_KIB
#
# The pattern 'SEED LINES' is seq SEED*100000 .. SEED*100000+LINES-1: 7 digits and a newline,
# 8 bytes a line, for SEED 10..94 (init.sh's pat()).
set -u

pat() {
	seq $(($1 * 100000)) $(($1 * 100000 + $2 - 1))
}

die() {
	echo "HOSTCHECK $*"
	exit 1
}

case ${1:-} in
make)
	rm -f "$2"
	if [ "${4:-}" = fill ]; then
		# dd parses 16M as 16 MiB; count=1 with that block size.
		dd if=/dev/zero of="$2" bs="$3" count=1 conv=fsync 2>/dev/null || die "make $2 failed"
	else
		truncate -s "$3" "$2" || die "make $2 failed"
	fi
	;;
write)
	[ $(($3 % 4096)) -eq 0 ] || die "write: offset $3 is not a 4 KiB multiple"
	pat "$4" "$5" >"$2.pat"
	dd if="$2.pat" of="$2" bs=4096 seek=$(($3 / 4096)) conv=notrunc 2>/dev/null ||
		die "write $4@$3 to $2 failed"
	rm -f "$2.pat"
	;;
verify)
	[ $(($3 % 4096)) -eq 0 ] || die "verify: offset $3 is not a 4 KiB multiple"
	# Not next to IMG: that may be on a read-only mount.
	want=$(mktemp) || exit 1
	pat "$4" "$5" >"$want"
	n=$(($5 * 8))
	if dd if="$2" bs=4096 skip=$(($3 / 4096)) count=$(((n + 4095) / 4096)) 2>/dev/null |
		head -c "$n" | cmp -s - "$want"; then
		rm -f "$want"
		echo "HOSTCHECK verify $4@$3=ok"
	else
		rm -f "$want"
		die "verify $4@$3=FAIL: $2 does not hold pattern $4 ($5 lines) at $3"
	fi
	;;
kib)
	du -k "$2" | cut -f1
	;;
dropped)
	after=$(du -k "$2" | cut -f1)
	before=$(cat "$3")
	echo "HOSTCHECK allocated before=${before}KiB after=${after}KiB"
	[ "$after" -le $((before - $4)) ] || die "dropped=FAIL: less than $4 KiB were freed"
	echo "HOSTCHECK dropped=ok"
	;;
*)
	echo "usage: diskpat.sh make|write|verify|kib|dropped ..." >&2
	exit 2
	;;
esac
