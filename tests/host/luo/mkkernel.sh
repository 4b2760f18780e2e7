#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# mkkernel.sh OUTDIR: a test-host kernel with the Live Update Orchestrator (/dev/liveupdate),
# which no Debian kernel package enables (CONFIG_KEXEC_HANDOVER is off). Built from Debian's
# own linux-source-7.x (sid: apt-get download into a private apt configuration, nothing
# installed from sid), x86_64_defconfig plus what the test host needs, built in: KVM with
# AMD SVM, virtio-pci disks, ext4, kexec_file, KHO and LUO with memfd preservation.
# Cached: OUTDIR/bzImage and OUTDIR/config stay until this script or its options change.
# Exits 2 when a prerequisite cannot be had (no network, no apt), 1 on a build failure.
# For the opt-in 'luo' suite (tests/host/meson.build): a build takes ~30 min on 2 cores.
set -euo pipefail

OUT=${1:?usage: mkkernel.sh OUTDIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$OUT"
OUT=$(readlink -f "$OUT")
SERIES=${VMM_LUO_SOURCE:-linux-source-7.2}
stamp="$SERIES $(sha256sum "$HERE/mkkernel.sh" | cut -c1-16)"
if [ -f "$OUT/bzImage" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ]; then
	echo "mkkernel: $OUT/bzImage is up to date ($stamp)"
	exit 0
fi

# Build tools (Debian 12 packages).
need=()
for t in flex:flex bison:bison bc:bc gcc:gcc make:make perl:perl; do
	command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
[ -f /usr/include/libelf.h ] || need+=(libelf-dev)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" \
			>"$OUT/apt.log" 2>&1 || { tail -n 5 "$OUT/apt.log"; exit 2; }
	else
		echo "mkkernel: missing ${need[*]} (apt-get install them)"
		exit 2
	fi
fi

# The source package, from sid through a private apt configuration.
APT=$OUT/apt
mkdir -p "$APT"/{lists/partial,cache/archives/partial,etc}
mirror=$(sed -n 's|^URIs: *\(http[^ ]*/debian\)/*$|\1|p' /etc/apt/sources.list.d/debian.sources \
	2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=$(sed -n 's|^deb \(http[^ ]*/debian\)/* .*|\1|p' /etc/apt/sources.list \
	2>/dev/null | head -n 1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main" \
	>"$APT/etc/sources.list"
aopt=(-o "Dir::Etc::SourceList=$APT/etc/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache")
apt-get "${aopt[@]}" update >"$OUT/apt-update.log" 2>&1 ||
	{ tail -n 3 "$OUT/apt-update.log"; exit 2; }
rm -f "$OUT"/linux-source-*.deb
(cd "$OUT" && apt-get "${aopt[@]}" download "$SERIES") >"$OUT/apt-download.log" 2>&1 ||
	{ tail -n 3 "$OUT/apt-download.log"; exit 2; }
rm -rf "$OUT/src" "$OUT/deb"
dpkg -x "$OUT"/"$SERIES"_*.deb "$OUT/deb"
mkdir -p "$OUT/src"
tar -C "$OUT/src" --strip-components=1 -xf "$OUT"/deb/usr/src/"$SERIES".tar.*
rm -rf "$OUT/deb"

cd "$OUT/src"
make -s x86_64_defconfig
c=scripts/config
# The test host: KVM (emulated AMD SVM) and what host-init.sh uses, built in (no modules).
$c -e KVM -e KVM_AMD -d KVM_INTEL -e VIRTIO -e VIRTIO_PCI -e VIRTIO_BLK -e EXT4_FS \
	-e BLK_DEV_LOOP -e DEVTMPFS -e TMPFS -e SHMEM -e MEMFD_CREATE -e SERIAL_8250 \
	-e SERIAL_8250_CONSOLE -e BLK_DEV_INITRD
# kexec_file and the Live Update Orchestrator (KHO on by default, memfds preserved). KHO
# needs the memory map whole at boot.
$c -e KEXEC -e KEXEC_FILE -e KEXEC_HANDOVER -e KEXEC_HANDOVER_ENABLE_DEFAULT \
	-e LIVEUPDATE -e LIVEUPDATE_MEMFD -d DEFERRED_STRUCT_PAGE_INIT
# Shorter build: nothing the test host has or needs.
$c -d DEBUG_INFO -d DEBUG_INFO_DWARF5 -d DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT -d DRM -d SOUND \
	-d USB_SUPPORT -d WLAN -d WIRELESS -d CFG80211 -d HID -d INPUT_JOYSTICK -d AGP \
	-d MODULES -d NFS_FS -d ETHERNET -d IKHEADERS -d RANDSTRUCT_FULL
make -s olddefconfig
for o in KEXEC_HANDOVER LIVEUPDATE LIVEUPDATE_MEMFD KVM_AMD KEXEC_FILE; do
	grep -q "^CONFIG_$o=y" .config || { echo "mkkernel: CONFIG_$o did not stay on"; exit 1; }
done
make -j"$(nproc)" bzImage >"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log"; exit 1; }
cp arch/x86/boot/bzImage "$OUT/bzImage"
cp .config "$OUT/config"
make -s kernelrelease >"$OUT/release"
cd "$OUT"
rm -rf "$OUT/src" "$OUT"/linux-source-*.deb
echo "$stamp" >"$OUT/stamp"
echo "mkkernel: $OUT/bzImage ($(cat "$OUT/release"))"
