#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# runcases.sh VMM KITDIR CASEFILE...: run each case of the case files and report on stdout.
# POSIX sh: runs under busybox ash inside the QEMU TCG test host and under bash/dash on a
# host whose KVM is hardware-backed. It only runs and reports; testhost.sh judges.
#
# Case file syntax (one directive per line, '#' starts a comment line):
#   case NAME STATUS        start a case; STATUS is the expected exit status (testhost.sh)
#   expect TEXT             a console substring that must appear (testhost.sh)
#   stdin TEXT              printf %b text fed to the VMM's stdin once the guest printed
#                           'VMMTEST BEGIN' (so that the guest's UART driver is up)
#   watchdog SECONDS        outer time limit (default 300), in case the VMM's own fails
#   vmm ARGS...             the VMM command line (shell words); @KIT@ is the kit directory
#
# Output, per case:
#   @@VMMTEST case=NAME start
#   @@C NAME|<console line>          (the VMM's stdout and stderr, after it ended)
#   @@VMMTEST case=NAME status=N secs=S.SS [watchdog=1]
VMM=$1 # used inside eval
KIT=$2
shift 2

TMPD=$(mktemp -d "${TMPDIR:-/tmp}/runcases.XXXXXX") || exit 1
trap 'rm -rf "$TMPD"' EXIT

uptime_cs() {
	# /proc/uptime in centiseconds: works in busybox and needs no date +%N.
	read -r up _ </proc/uptime
	echo "${up%.*}${up#*.}" | sed 's/^0*//;s/^$/0/'
}

wait_marker() {
	# $1 file, $2 text, $3 seconds
	n=0
	while [ "$n" -lt $(($3 * 5)) ]; do
		grep -qF "$2" "$1" 2>/dev/null && return 0
		sleep 0.2
		n=$((n + 1))
	done
	return 1
}

run_case() {
	[ -n "$name" ] || return 0
	log=$TMPD/$name.log
	: >"$log"
	echo "@@VMMTEST case=$name start"
	args=$(printf '%s' "$vmmargs" | sed "s|@KIT@|$KIT|g")
	t0=$(uptime_cs)
	if [ -n "$stdin" ]; then
		fifo=$TMPD/$name.in
		mkfifo "$fifo"
		eval "timeout $watchdog \"\$VMM\" $args" <"$fifo" >"$log" 2>&1 &
		pid=$!
		# Hold the write end open until the VMM ends, so that it never sees EOF early.
		exec 3>"$fifo"
		(wait_marker "$log" "VMMTEST BEGIN" "$watchdog" && printf '%b\n' "$stdin" >&3) &
		feeder=$!
		wait "$pid"
		status=$?
		kill "$feeder" 2>/dev/null
		wait "$feeder" 2>/dev/null
		exec 3>&-
	else
		eval "timeout $watchdog \"\$VMM\" $args" </dev/null >"$log" 2>&1
		status=$?
	fi
	t1=$(uptime_cs)
	dt=$((t1 - t0))
	wd=
	[ "$dt" -ge $((watchdog * 100)) ] && wd=" watchdog=1"
	tr -d '\r' <"$log" | sed "s/^/@@C $name|/"
	printf '@@VMMTEST case=%s status=%s secs=%d.%02d%s\n' "$name" "$status" \
		$((dt / 100)) $((dt % 100)) "$wd"
}

for file in "$@"; do
	name=
	while IFS= read -r line || [ -n "$line" ]; do
		set -f
		# shellcheck disable=SC2086
		set -- $line
		set +f
		kw=${1:-}
		rest=$(printf '%s' "$line" | sed 's/^[[:space:]]*[^[:space:]]*[[:space:]]*//')
		case $kw in
		'' | '#'*) ;;
		case)
			run_case
			name=$2 stdin='' vmmargs='' watchdog=300 ;;
		stdin) stdin=$rest ;;
		watchdog) watchdog=$2 ;;
		vmm) vmmargs=$rest ;;
		expect) ;;
		*) echo "@@VMMTEST error: $file: unknown directive '$kw'" ;;
		esac
	done <"$file"
	run_case
done
echo "@@VMMTEST all-done"
