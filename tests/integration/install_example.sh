#!/usr/bin/env bash
# libvmm as a user gets it: `meson install` into a scratch root, then examples/launch.c built
# against the installed header and library through pkg-config (shared, then static), and run:
# it must boot the micro-guest and return the guest's status.
# usage: install_example.sh BUILD_DIR SOURCE_DIR MICRO_BZIMAGE   (77 without /dev/kvm)
set -euo pipefail
build=$1 src=$2 kernel=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >/dev/null
pc=$(dirname "$(find "$tmp/root" -name vmm.pc | head -1)")
[ -f "$pc/vmm.pc" ] || { echo "FAIL: no vmm.pc installed"; exit 1; }
[ -f "$(find "$tmp/root" -path '*include/vmm/vmm.h' | head -1)" ] || { echo "FAIL: no vmm/vmm.h"; exit 1; }
# Only the public header is installed.
if [ "$(find "$tmp/root" -path '*include/vmm/*' | wc -l)" != 1 ]; then
	echo "FAIL: headers other than vmm.h installed:"; find "$tmp/root" -path '*include/vmm/*'
	exit 1
fi
export PKG_CONFIG_PATH=$pc PKG_CONFIG_SYSROOT_DIR=$tmp/root
cc -std=gnu11 -Wall -Werror "$src/examples/launch.c" $(pkg-config --cflags --libs vmm) \
	-o "$tmp/launch-shared"
cc -std=gnu11 -Wall -Werror "$src/examples/launch.c" $(pkg-config --cflags vmm) \
	-Wl,-Bstatic $(pkg-config --static --libs-only-l vmm | sed 's/-lpthread//') -Wl,-Bdynamic \
	-L"$(dirname "$(find "$tmp/root" -name libvmm.a | head -1)")" -lpthread -o "$tmp/launch-static"
# (ldd into a file: `ldd | grep -q` under pipefail can fail on ldd's SIGPIPE.)
ldd "$tmp/launch-shared" >"$tmp/ldd-shared" || true
ldd "$tmp/launch-static" >"$tmp/ldd-static" || true
if ! grep -q libvmm.so "$tmp/ldd-shared"; then
	echo "FAIL: launch-shared does not use libvmm.so"; exit 1
fi
if grep -q libvmm.so "$tmp/ldd-static"; then
	echo "FAIL: launch-static uses libvmm.so"; exit 1
fi
echo "PASS: installed, and launch.c built both ways with pkg-config"
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "SKIP: no usable /dev/kvm to run it"; exit 77; }
libdir=$(dirname "$(find "$tmp/root" -name 'libvmm.so*' | head -1)")
for kind in shared static; do
	set +e
	LD_LIBRARY_PATH=$libdir "$tmp/launch-$kind" "$kernel" "t.scenario=exit t.code=21" \
		>"$tmp/out" 2>"$tmp/err" </dev/null
	st=$?
	set -e
	# The guest writes 21 to the debug-exit port: status (21 << 1) | 1 = 43.
	if [ "$st" != 43 ] || ! grep -q "MICRO EXIT 21" "$tmp/out"; then
		echo "FAIL: launch-$kind exited $st: $(cat "$tmp/err") $(tail -c 200 "$tmp/out")"
		exit 1
	fi
	echo "PASS: launch-$kind booted the micro-guest, status $st"
done
