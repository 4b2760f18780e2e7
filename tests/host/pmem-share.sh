#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# pmem-share.sh DIR KERNEL INITRD N MIB: how many copies of one MIB MiB file N VMs that read
# it hold in memory, by virtio-pmem (read-only, mounted with DAX) and by virtio-blk (the same
# image, read-only), one after the other. DIR must be on a real disk (the host's page cache of
# the image is counted: a tmpfs would hold it already). Each guest (the kit's pmem-share
# scenario) mounts the image, says it is ready with its page cache's size ("Cached"), reads
# the whole file on 'go' (md5sum) and says its page cache's size again. Copies held:
#   host:   the growth of the host's file page cache (Cached - Shmem: guest RAM is shmem)
#   guests: the growth of every guest's own page cache, summed
#   PS MODE n=N image=MIBM host=+XM guests=+YM copies=(X+Y)/MIB
# and 'PS pmem one copy' when pmem's copies are under 1.5. (Not MemFree: guest RAM that the
# guests touch for the first time shows there, RAM they had touched before does not.) $VMM is the vmm; KERNEL and
# INITRD the kit's cloud kernel and initramfs.
# Run by runcases.sh inside the test host (root: drop_caches).
set -u
dir=$1 kernel=$2 initrd=$3 n=$4 mib=$5

fail() {
	echo "PS ERROR $*"
	for p in $pids; do kill -9 "$p" 2>/dev/null; done
	exit 1
}

filecache_kb() {
	awk '/^Cached:/ { c = $2 } /^Shmem:/ { s = $2 } END { print c - s }' /proc/meminfo
}

# The guests' page caches summed (kB), from each console's last 'VMMTEST share WHAT ... cached=N'.
guests_kb() {
	t=0
	i=0
	while [ $i -lt "$n" ]; do
		i=$((i + 1))
		c=$(sed -n "s/.*VMMTEST share $1 .*cached=\([0-9]*\).*/\1/p" "$dir/con.$i" | tail -n 1)
		t=$((t + ${c:-0}))
	done
	echo $t
}

mkdir -p "$dir/root"
dd if=/dev/urandom of="$dir/root/big" bs=1048576 count="$mib" 2>/dev/null ||
	fail "cannot write the file"
sum=$(md5sum "$dir/root/big" | cut -d' ' -f1)
# A 2 MiB multiple, with room for the file system's own blocks.
/sbin/mke2fs -q -F -t ext4 -b 4096 -d "$dir/root" "$dir/base.img" "$(((mib + 32 + 1) / 2 * 2))M" ||
	fail "mke2fs"
rm -rf "$dir/root"

pids=
for mode in pmem blk; do
	sync
	echo 3 >/proc/sys/vm/drop_caches
	case $mode in
	pmem) dev="--pmem $dir/base.img,ro" ;;
	blk) dev="--disk $dir/base.img,ro" ;;
	esac
	pids=
	i=0
	while [ $i -lt "$n" ]; do
		i=$((i + 1))
		rm -f "$dir/in.$i" "$dir/con.$i"
		mkfifo "$dir/in.$i" || fail mkfifo
		# Read-write: the FIFO neither blocks this open nor reports end-of-file to vmm.
		eval "exec $((i + 2))<>\"$dir/in.$i\""
		# shellcheck disable=SC2086 # $dev is two words
		"$VMM" run --kernel "$kernel" --initrd "$initrd" \
			--cmdline "console=ttyS0 quiet vmmtest=pmem-share vmmtest.share=$mode" \
			--memory 256M $dev --timeout 600 <"$dir/in.$i" >"$dir/con.$i" 2>&1 &
		pids="$pids $!"
	done
	i=0
	while [ $i -lt "$n" ]; do
		i=$((i + 1))
		lutool wait "$dir/con.$i" 0 "VMMTEST share ready" 300 >/dev/null ||
			{ tail -n 5 "$dir/con.$i"; fail "$mode: guest $i not ready"; }
	done
	sleep 1
	f0=$(filecache_kb)
	i=0
	while [ $i -lt "$n" ]; do
		i=$((i + 1))
		echo go >"$dir/in.$i"
	done
	i=0
	while [ $i -lt "$n" ]; do
		i=$((i + 1))
		lutool wait "$dir/con.$i" 0 "VMMTEST share read " 600 >/dev/null ||
			{ tail -n 5 "$dir/con.$i"; fail "$mode: guest $i did not read the file"; }
		grep -q "VMMTEST share read $sum" "$dir/con.$i" || fail "$mode: guest $i read other data"
	done
	sleep 1
	f1=$(filecache_kb)
	host=$(((f1 - f0) / 1024))
	guests=$((($(guests_kb read) - $(guests_kb ready)) / 1024))
	copies=$(awk -v h="$host" -v g="$guests" -v m="$mib" 'BEGIN { printf "%.2f", (h + g) / m }')
	echo "PS $mode n=$n image=${mib}M host=+${host}M guests=+${guests}M copies=$copies"
	[ "$mode" = pmem ] && awk -v c="$copies" 'BEGIN { exit !(c < 1.5) }' && echo "PS pmem one copy"
	i=0
	while [ $i -lt "$n" ]; do
		i=$((i + 1))
		echo quit >"$dir/in.$i"
		eval "exec $((i + 2))>&-"
	done
	for p in $pids; do wait "$p" || fail "$mode: a vmm exited with $?"; done
done
echo "PS done"
