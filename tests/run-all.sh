#!/usr/bin/env bash
# Install what is missing, build, and run every test suite: unit (cmocka, bad input),
# guest (micro-guests on /dev/kvm) and linux (stock Debian kernels; inside a QEMU TCG test
# host where this machine's KVM cannot run Linux in useful time, see tests/host/).
# usage: tests/run-all.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}

tests/deps.sh
if [ ! -d "$build" ]; then
	meson setup "$build" -Dwerror=true
fi
ninja -C "$build"

# The guest kit (Debian kernels + busybox initramfs, cached): the linux suite boots it and the
# loader unit tests parse its real bzImage and vmlinux.
kit=${VMM_KIT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmm/guest-kit}
export VMM_KIT_DIR=$kit
tests/guest/kit/mkkit.sh "$kit" >/dev/null
export VMM_TEST_BZIMAGE=$kit/cloud/bzImage VMM_TEST_VMLINUX=$kit/cloud/vmlinux
# One invocation for every suite: the linux tests are marked non-parallel, so meson runs each
# of them alone (a test host keeps both CPUs busy).
status=0
meson test -C "$build" --print-errorlogs --num-processes 2 || status=$?

# Once more under AddressSanitizer and UBSan: the unit and backend suites (virtqueue, request
# parsing, loaders, backends...) plus the bad-input runs of an ASan vmm, and the hostile
# micro-guests (suite guest-hostile: malformed rings, register abuse, races from a second
# vCPU, console floods) against the ASan vmm. Any report ends the vmm with an error, and
# run-micro.py fails a case on the report itself as well.
asan=$build-asan
if [ ! -d "$asan" ]; then
	meson setup "$asan" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
		-Dmicro_guests=enabled >/dev/null
fi
ninja -C "$asan" >/dev/null
ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	meson test -C "$asan" --print-errorlogs --num-processes 2 --suite unit --suite backend \
	--suite guest-hostile || status=$?

# One closing line for humans and CI: counts from meson's own log.
python3 - "$build/meson-logs/testlog.json" "$asan/meson-logs/testlog.json" <<'PY'
import json, sys
count = {"OK": 0, "FAIL": 0, "SKIP": 0, "TIMEOUT": 0, "ERROR": 0, "UNEXPECTEDPASS": 0, "EXPECTEDFAIL": 0}
for log in sys.argv[1:]:
    for line in open(log):
        r = json.loads(line)["result"]
        count[r] = count.get(r, 0) + 1
failed = count["FAIL"] + count["TIMEOUT"] + count["ERROR"] + count["UNEXPECTEDPASS"]
print(f"{count['OK'] + count['EXPECTEDFAIL']} passed, {failed} failed, {count['SKIP']} skipped")
PY
exit $status
