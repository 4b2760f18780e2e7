#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# run.sh WORKDIR VMM [CASEFILE]: the opt-in 'luo' suite (meson test --setup luo --suite luo). Builds (or
# takes from its cache) a test-host kernel with the Live Update Orchestrator (mkkernel.sh;
# cache $VMM_LUO_DIR, default ${XDG_CACHE_HOME:-~/.cache}/vmm/luo-kernel) and runs
# cases/luo.cases (or CASEFILE: bench/hostupdate.sh --kexec --route luo) in the QEMU TCG test
# host booted with it and liveupdate=on. Exits 77 (skip,
# never a pass) when the kernel cannot be had.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$1 VMM=$2 CASES=${3:-$HERE/../cases/luo.cases}
DIR=${VMM_LUO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm/luo-kernel}
mkdir -p "$WORK" "$DIR"
rc=0
(
	flock 9
	"$HERE/mkkernel.sh" "$DIR"
) 9>"$DIR/.lock" >"$WORK/mkkernel.log" 2>&1 || rc=$?
if [ $rc -eq 2 ]; then
	tail -n 5 "$WORK/mkkernel.log"
	echo "SKIP: no LUO kernel could be built (see above)"
	exit 77
elif [ $rc -ne 0 ]; then
	tail -n 30 "$WORK/mkkernel.log"
	echo "luo: the kernel build failed ($rc)"
	exit 1
fi
tail -n 1 "$WORK/mkkernel.log"
# The test host's TSC is this machine's (TCG reads the host's counter): its rate, measured
# here, goes on the test host's command line. That kernel's KVM is built in and takes its
# vCPUs' default TSC rate from the first, rough calibration, which under TCG is now and then
# over KVM's 250 ppm tolerance off the real rate: every VM of that boot then runs in TSC
# catch-up mode and its clock runs fast. tsc=reliable: no watchdog declaring the TSC unstable
# against an emulated HPET.
"${CC:-cc}" -O2 -o "$WORK/lutool" "$HERE/../lutool.c" || exit 1
a=$("$WORK/lutool" stamp a) && sleep 1 && b=$("$WORK/lutool" stamp b) || exit 1
khz=$(printf '%s\n%s\n' "$a" "$b" | awk '{ split($3, t, "="); split($4, u, "=")
	tsc[NR] = t[2]; up[NR] = u[2] } END { printf "%d", (tsc[2] - tsc[1]) / (up[2] - up[1]) / 1000 }')
exec bash "$HERE/../testhost.sh" --workdir "$WORK" --host-kernel "$DIR/bzImage" \
	--host-append "liveupdate=on tsc=reliable tsc_early_khz=$khz" "$VMM" "$CASES"
