#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# mkkit.sh OUTDIR: build the guest kit from Debian packages.
#
#   OUTDIR/{cloud,generic}/bzImage        the packaged kernel (boot protocol image)
#   OUTDIR/{cloud,generic}/vmlinux        the ELF unpacked from the bzImage payload (PVH entry)
#   OUTDIR/{cloud,generic}/modules/       the .ko files of modules.list plus dependencies, and
#                                         'load-order' (one module name per line, dependencies first)
#   OUTDIR/{cloud,generic}/release        the kernel release (uname -r)
#   OUTDIR/generic/host-modules/          host-modules.list for the QEMU TCG test host (kvm-amd)
#   OUTDIR/initramfs.cpio.gz              busybox-static, /init (init.sh), outb, heartbeat and
#                                         vsockt (outb.c, heartbeat.c, vsockt.c), modules for
#                                         both flavours
#   OUTDIR/e2fs/                          mke2fs (mkfs.ext4) and e2fsck with their libraries, as a
#                                         root tree (Debian's e2fsprogs and libraries, dpkg -x)
#   OUTDIR/e2fs.cpio.gz                   the same as an initramfs archive to append to
#                                         initramfs.cpio.gz (the kernel unpacks both, in order)
#   OUTDIR/rootfs.ext4                    an ext4 image (mkfs.ext4 -d) of a tiny root: busybox and
#                                         an init (rootfs-init.sh) that reports and powers off
#
# Idempotent and cached: a step whose outputs exist is skipped, so once built the kit
# needs no network. An output made from files of this directory (init.sh, the lists, ...) is
# rebuilt when their content differs from what it was built from (OUTPUT.src holds their
# sha256), not by modification times: the cache is shared by every checkout and worktree, and
# git gives a file the time of the checkout, so one checkout's init.sh can look older than a
# kit another checkout built from a different init.sh. Outputs are written to temporary
# names and renamed when complete, so an interrupted run never leaves a half-built file that
# looks finished. The kernel packages are unpacked with dpkg -x, never installed on the host.
set -euo pipefail

KIT_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "mkkit: $*" >&2; exit 1; }
log() { echo "mkkit: $*" >&2; }

[ $# -eq 1 ] || die "usage: mkkit.sh OUTDIR"
OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# flavour -> Debian meta package; the payload compressor follows from the magic bytes.
declare -A META=([cloud]=linux-image-cloud-amd64 [generic]=linux-image-amd64)
FLAVOURS="cloud generic"

# --- host tools ---------------------------------------------------------------------------

need_tools() {
	local missing=() tool pkg
	for tool in busybox:busybox-static cpio:cpio lz4:lz4 xz:xz-utils gzip:gzip \
		    dpkg-deb:dpkg od:coreutils gcc:gcc readelf:binutils mkfs.ext4:e2fsprogs; do
		pkg=${tool#*:}
		tool=${tool%%:*}
		if [ "$tool" = busybox ]; then
			# Only the static build is usable inside an initramfs.
			[ -x /bin/busybox ] && file_is_static /bin/busybox && continue
		else
			PATH=$PATH:/sbin:/usr/sbin command -v "$tool" >/dev/null && continue
		fi
		missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		log "missing packages ${missing[*]} (run as root or install them)"
		exit 2
	fi
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		{ apt-get update >&2 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			"${missing[@]}" >&2; } || die "cannot install ${missing[*]}"
}

# ldd fails on a static executable ("not a dynamic executable").
file_is_static() {
	! ldd "$1" >/dev/null 2>&1
}

# src_sum FILE...: the sha256 of the concatenated files of this directory.
src_sum() {
	(cd "$KIT_SRC" && cat "$@") | sha256sum | cut -d' ' -f1
}

# fresh OUTPUT FILE...: OUTPUT exists and was built from these very files (built OUTPUT FILE...
# records that, once OUTPUT is complete).
fresh() {
	local out=$1
	shift
	[ -e "$out" ] && [ -f "$out.src" ] && [ "$(cat "$out.src")" = "$(src_sum "$@")" ]
}
built() {
	local out=$1
	shift
	src_sum "$@" >"$out.src.tmp"
	mv "$out.src.tmp" "$out.src"
}

# --- kernel packages ----------------------------------------------------------------------

# meta package -> versioned package (linux-image-6.1.0-NN-amd64), via apt-cache depends.
resolve_pkg() {
	local meta=$1 dep
	dep=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
	if [ -z "$dep" ]; then
		log "apt-cache does not know $meta; running apt-get update"
		apt-get update >&2 || true
		dep=$(apt-cache depends "$meta" 2>/dev/null |
		      awk '/Depends: linux-image-/ { print $2; exit }')
	fi
	[ -n "$dep" ] || return 1
	echo "$dep"
}

# Download (once) the versioned image package of a flavour; prints the .deb path.
fetch_deb() {
	local flavour=$1 pkg deb
	mkdir -p "$OUT/debs"
	# A cached .deb for this flavour is reused without asking apt (offline once cached).
	if [ -f "$OUT/debs/$flavour.pkg" ]; then
		pkg=$(cat "$OUT/debs/$flavour.pkg")
		deb=$(ls "$OUT/debs/${pkg}"_*.deb 2>/dev/null | head -n1 || true)
		if [ -n "$deb" ]; then
			echo "$deb"
			return 0
		fi
	fi
	pkg=$(resolve_pkg "${META[$flavour]}") || {
		echo "mkkit: cannot resolve ${META[$flavour]} (offline and no cached kit?)" >&2
		return 2
	}
	log "downloading $pkg"
	(cd "$OUT/debs" && apt-get download "$pkg" >&2 2>/dev/null) ||
		(cd "$OUT/debs" && apt-get update >&2 && apt-get download "$pkg" >&2) || {
		echo "mkkit: apt-get download $pkg failed" >&2
		return 2
	}
	echo "$pkg" >"$OUT/debs/$flavour.pkg"
	ls "$OUT/debs/${pkg}"_*.deb | head -n1
}

# --- vmlinux from bzImage -----------------------------------------------------------------

u8()  { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
u16() { od -An -tu2 -j "$2" -N2 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }

# The setup header (Documentation/arch/x86/boot.rst, protocol >= 2.08) gives payload_offset
# (0x248) and payload_length (0x24c), relative to the start of the protected-mode code,
# which begins after (setup_sects + 1) 512-byte sectors (setup_sects 0 means 4).
extract_vmlinux() {
	local bz=$1 dst=$2 size sects version poff plen start magic
	size=$(stat -c %s "$bz")
	[ "$(od -An -c -j $((0x202)) -N4 "$bz" | tr -d ' ')" = HdrS ] || die "$bz: no HdrS"
	version=$(u16 "$bz" $((0x206)))
	[ "$version" -ge $((0x208)) ] || die "$bz: boot protocol $version < 2.08"
	sects=$(u8 "$bz" $((0x1f1)))
	[ "$sects" -eq 0 ] && sects=4
	poff=$(u32 "$bz" $((0x248)))
	plen=$(u32 "$bz" $((0x24c)))
	start=$(((sects + 1) * 512 + poff))
	[ "$plen" -gt 4 ] && [ $((start + plen)) -le "$size" ] || die "$bz: payload out of bounds"
	magic=$(od -An -tx1 -j "$start" -N6 "$bz" | tr -d ' ')
	# The kernel build appends the 4-byte decompressed size after the compressed stream
	# (scripts/Makefile.lib size_append); the command-line tools must not see it.
	case $magic in
	02214c18*) # LZ4 legacy frame
		tail -c +$((start + 1)) "$bz" | head -c $((plen - 4)) | lz4 -dc >"$dst.tmp" ;;
	fd377a585a00) # XZ
		tail -c +$((start + 1)) "$bz" | head -c "$plen" | xz -dc --single-stream >"$dst.tmp" ;;
	1f8b*) # gzip (other kernels)
		tail -c +$((start + 1)) "$bz" | head -c $((plen - 4)) | gzip -dc >"$dst.tmp" ;;
	*) die "$bz: unknown payload compression (magic $magic)" ;;
	esac
	[ "$(od -An -c -N4 "$dst.tmp" | tr -d ' ')" = '177ELF' ] || die "$bz: payload is not an ELF"
	mv "$dst.tmp" "$dst"
}

# --- modules ------------------------------------------------------------------------------

# Copy modules and their dependencies from an unpacked tree into DEST, writing
# DEST/load-order with dependencies first. Names missing from the tree are skipped
# (built in, or not in this flavour) with a note.
copy_modules() {
	local tree=$1 dest=$2 list=$3 name
	declare -A path=() seen=()
	local ko n
	while IFS= read -r ko; do
		n=$(basename "$ko")
		n=${n%%.ko*}
		path[${n//-/_}]=$ko
	done < <(find "$tree" -name '*.ko*')
	rm -rf "$dest.tmp"
	mkdir -p "$dest.tmp"
	: >"$dest.tmp/load-order"

	visit() {
		local m=${1//-/_} deps d f
		[ -n "${seen[$m]:-}" ] && return 0
		seen[$m]=1
		f=${path[$m]:-}
		if [ -z "$f" ]; then
			log "${dest#"$OUT"/}: module $m not found (built in?), skipped"
			return 0
		fi
		case $f in *.ko) ;; *) die "$f: compressed modules are not supported" ;; esac
		deps=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n1)
		for d in ${deps//,/ }; do
			visit "$d"
		done
		cp "$f" "$dest.tmp/$m.ko"
		echo "$m" >>"$dest.tmp/load-order"
	}
	while read -r name; do
		name=${name%%#*}
		name=$(echo $name)
		[ -n "$name" ] && visit "$name"
	done <"$list"
	rm -rf "$dest"
	mv "$dest.tmp" "$dest"
}

build_flavour() {
	local flavour=$1 dir=$OUT/$1 deb tree rel rc=0
	if [ -f "$dir/bzImage" ] && [ -f "$dir/vmlinux" ] && [ -f "$dir/modules/load-order" ] &&
	   [ -f "$dir/release" ] && fresh "$dir/modules.stamp" modules.list host-modules.list; then
		return 0
	fi
	deb=$(fetch_deb "$flavour") || return $?
	mkdir -p "$dir"
	tree=$dir/unpacked
	rm -rf "$tree"
	log "unpacking $(basename "$deb")"
	dpkg -x "$deb" "$tree"
	rel=$(ls "$tree/lib/modules" | head -n1)
	[ -n "$rel" ] || die "$deb: no lib/modules"
	if [ ! -f "$dir/bzImage" ]; then
		cp "$tree/boot/vmlinuz-$rel" "$dir/bzImage.tmp"
		mv "$dir/bzImage.tmp" "$dir/bzImage"
	fi
	[ -f "$dir/vmlinux" ] || extract_vmlinux "$dir/bzImage" "$dir/vmlinux"
	copy_modules "$tree/lib/modules/$rel" "$dir/modules" "$KIT_SRC/modules.list"
	if [ "$flavour" = generic ]; then
		copy_modules "$tree/lib/modules/$rel" "$dir/host-modules" "$KIT_SRC/host-modules.list"
	fi
	echo "$rel" >"$dir/release"
	rm -rf "$tree"
	touch "$dir/modules.stamp"
	built "$dir/modules.stamp" modules.list host-modules.list
	return $rc
}

# --- guest initramfs ----------------------------------------------------------------------

build_initramfs() {
	local img=$OUT/initramfs.cpio.gz root f rel applet
	if fresh "$img" init.sh mkkit.sh outb.c heartbeat.c vsockt.c &&
	   [ "$img" -nt "$OUT/cloud/modules.stamp" ] && [ "$img" -nt "$OUT/generic/modules.stamp" ]; then
		return 0
	fi
	root=$OUT/initramfs.root
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,lib/modules}
	cp /bin/busybox "$root/bin/busybox"
	# Symlinks are made here rather than with 'busybox --install' at boot: every
	# emulated instruction counts inside the nested guest.
	for applet in $(/bin/busybox --list-full); do
		[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
	done
	cp "$KIT_SRC/init.sh" "$root/init"
	# Freestanding: no libc.a needed; -fno-pie keeps it a plain static executable.
	for f in outb heartbeat; do
		gcc -Os -static -nostdlib -fno-pie -no-pie -fno-stack-protector \
			-fcf-protection=none -fno-asynchronous-unwind-tables -o "$root/bin/$f" \
			"$KIT_SRC/$f.c" || die "cannot build $f"
	done
	# The vsock tests' two ends (the test host builds its own): libc, static, stripped.
	gcc -Os -static -s -o "$root/bin/vsockt" "$KIT_SRC/vsockt.c" || die "cannot build vsockt"
	chmod 755 "$root/init"
	for f in $FLAVOURS; do
		rel=$(cat "$OUT/$f/release")
		cp -r "$OUT/$f/modules" "$root/lib/modules/$rel"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	(cd "$root" && find . -print0 | LC_ALL=C sort -z |
	 cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9n >"$img.tmp"
	mv "$img.tmp" "$img"
	built "$img" init.sh mkkit.sh outb.c heartbeat.c vsockt.c
	rm -rf "$root"
	log "built $img ($(stat -c %s "$img") bytes)"
}

# --- e2fsprogs for the guests (mkfs.ext4 inside the VM) -------------------------------------

# Packages holding mke2fs, e2fsck and the libraries they need (Debian 12).
E2FS_PKGS="e2fsprogs libext2fs2 libcom-err2 libblkid1 libuuid1 libc6"
E2FS_BINS="sbin/mke2fs sbin/e2fsck"

# Download (once) the e2fsprogs packages into OUT/debs/e2fs.
fetch_e2fs_debs() {
	local d=$OUT/debs/e2fs p missing=()
	mkdir -p "$d"
	for p in $E2FS_PKGS; do
		ls "$d/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	log "downloading ${missing[*]}"
	(cd "$d" && apt-get download "${missing[@]}" >&2 2>/dev/null) ||
		(cd "$d" && apt-get update >&2 && apt-get download "${missing[@]}" >&2) || {
		echo "mkkit: apt-get download ${missing[*]} failed" >&2
		return 2
	}
}

# Find a shared library by soname in the unpacked tree $1.
find_lib() {
	local f
	for f in "$1"/lib/x86_64-linux-gnu/"$2" "$1"/usr/lib/x86_64-linux-gnu/"$2" \
		 "$1"/lib64/"$2"; do
		[ -e "$f" ] && { echo "$f"; return 0; }
	done
	return 1
}

# Copy the binaries with every library they need (DT_NEEDED, recursively) and the dynamic
# loader into a root tree; all libraries go to /lib/x86_64-linux-gnu, where the loader looks
# without an ld.so.cache.
build_e2fs() {
	local dst=$OUT/e2fs img=$OUT/e2fs.cpio.gz tree deb b f lib interp queue=() libs_done=" "
	if [ -d "$dst" ] && fresh "$img" mkkit.sh; then
		return 0
	fi
	fetch_e2fs_debs || return $?
	tree=$OUT/e2fs.unpacked
	rm -rf "$tree" "$dst.tmp"
	for deb in "$OUT"/debs/e2fs/*.deb; do
		dpkg -x "$deb" "$tree"
	done
	mkdir -p "$dst.tmp/sbin" "$dst.tmp/lib/x86_64-linux-gnu" "$dst.tmp/lib64" "$dst.tmp/etc"
	for b in $E2FS_BINS; do
		[ -f "$tree/$b" ] || die "e2fsprogs: $b not in the packages"
		cp "$tree/$b" "$dst.tmp/$b"
		queue+=("$tree/$b")
	done
	cp "$tree/etc/mke2fs.conf" "$dst.tmp/etc/mke2fs.conf"
	while [ ${#queue[@]} -gt 0 ]; do
		f=${queue[0]}
		queue=("${queue[@]:1}")
		for lib in $(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
			case $libs_done in *" $lib "*) continue ;; esac
			libs_done+="$lib "
			b=$(find_lib "$tree" "$lib") || die "e2fsprogs: $lib not in the packages"
			cp -L "$b" "$dst.tmp/lib/x86_64-linux-gnu/$lib"
			queue+=("$b")
		done
	done
	interp=$(readelf -l "$tree/sbin/mke2fs" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
	[ "$interp" = /lib64/ld-linux-x86-64.so.2 ] || die "e2fsprogs: unexpected loader $interp"
	cp -L "$tree$interp" "$dst.tmp$interp"
	# The names a user types; busybox's own mke2fs (ext2 only) is replaced.
	ln -s mke2fs "$dst.tmp/sbin/mkfs.ext4"
	ln -s e2fsck "$dst.tmp/sbin/fsck.ext4"
	# Without it both tools warn that they cannot tell whether the device is mounted.
	ln -s /proc/mounts "$dst.tmp/etc/mtab"
	rm -rf "$tree" "$dst"
	mv "$dst.tmp" "$dst"
	(cd "$dst" && find . -print0 | LC_ALL=C sort -z |
	 cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9n >"$img.tmp"
	mv "$img.tmp" "$img"
	built "$img" mkkit.sh
	log "built $img ($(stat -c %s "$img") bytes)"
}

# --- a root file system on ext4 (root=/dev/vda) -------------------------------------------

build_rootfs() {
	local img=$OUT/rootfs.ext4 root=$OUT/rootfs.root applet mkfs
	if fresh "$img" rootfs-init.sh mkkit.sh; then
		return 0
	fi
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,var}
	cp /bin/busybox "$root/bin/busybox"
	for applet in $(/bin/busybox --list-full); do
		[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
	done
	rm -f "$root/sbin/init"
	cp "$KIT_SRC/rootfs-init.sh" "$root/sbin/init"
	chmod 755 "$root/sbin/init"
	# Only the root file system holds this: the initramfs cannot fake the marker.
	echo "vmm-rootfs-on-ext4" >"$root/etc/vmmtest-rootfs"
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	mkfs=$(PATH=$PATH:/sbin:/usr/sbin command -v mkfs.ext4)
	rm -f "$img.tmp"
	# 8 MiB: busybox (~2 MiB), a 1 MiB journal and room for the init's writes.
	"$mkfs" -q -F -L vmmroot -E root_owner=0:0 -d "$root" "$img.tmp" 8M >/dev/null ||
		die "mkfs.ext4 -d of the root file system failed"
	mv "$img.tmp" "$img"
	built "$img" rootfs-init.sh mkkit.sh
	rm -rf "$root"
	log "built $img"
}

need_tools
for f in $FLAVOURS; do
	rc=0
	build_flavour "$f" || rc=$?
	# 2: packages cannot be had (offline and no cache, or tools missing and not root):
	# callers may treat it as a skip.
	[ $rc -eq 0 ] || exit $rc
done
build_initramfs
rc=0
build_e2fs || rc=$?
[ $rc -eq 0 ] || exit $rc
build_rootfs
