#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the QEMU TCG test host built by testhost.sh: load KVM (emulated AMD SVM), run
# the case files with runcases.sh, report on the second serial port (ttyS1; the kernel
# console stays on ttyS0), power off. Reports are '@@...' lines that testhost.sh parses.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs -o size=512m tmpfs /tmp
# When this boot began, on the counter that goes on across a kexec (bench/hostupdate.sh).
lutool stamp host-init >/tmp/host-init.stamp 2>/dev/null

# Interactive (tests/boot-demo.sh): load KVM, then hand the console to the VMM command line.
if [ -x /interactive.sh ]; then
	while read -r m; do
		insmod "/lib/modules/host/$m.ko" || echo "test host: insmod $m failed"
	done </lib/modules/host/load-order
	kvmhold >/dev/null &
	setsid sh -c 'exec /interactive.sh </dev/ttyS0 >/dev/ttyS0 2>&1'
	poweroff -f
	sleep 5
	echo o >/proc/sysrq-trigger
fi

out=/dev/ttyS1
[ -c "$out" ] || out=/dev/console
# No output post-processing (no \n -> \r\n) on the report channel.
stty -F "$out" raw -echo 2>/dev/null

{
	echo "@@HOST begin $(uname -r) nproc=$(nproc)"
	# A sign of life every 5 s for testhost.sh's watcher: a kernel locked up with interrupts
	# off on every CPU prints no soft-lockup report, it just stops (testhost.sh, watch_host).
	while :; do
		sleep 5
		echo "@@HOST tick"
	done &
	# The persistent-memory modules only where there is some (memmap=): the other boots stay
	# as they were before the host-update cases came.
	pmem=0
	grep -q 'memmap=' /proc/cmdline && pmem=1
	while read -r m; do
		case $m in libnvdimm | nd_*) [ "$pmem" = 1 ] || continue ;; esac
		insmod "/lib/modules/host/$m.ko" || echo "@@HOST insmod $m failed"
	done </lib/modules/host/load-order
	# The scratch disk (testhost.sh, for cases that name @SCRATCH@): the only virtio disk.
	# A kernel with virtio-blk built in may add it a moment after init started.
	if grep -qsx -e 0x1001 -e 0x1042 /sys/bus/pci/devices/*/device; then
		n=0
		while [ ! -b /dev/vda ] && [ $n -lt 50 ]; do
			sleep 0.1
			n=$((n + 1))
		done
	fi
	if [ -b /dev/vda ]; then
		mkdir -p /scratch
		if mount -t ext4 /dev/vda /scratch; then
			export VMM_SCRATCH=/scratch
			echo "@@HOST scratch=$(df -m /scratch | awk 'NR==2 { print $2 }')M"
		else
			echo "@@HOST scratch mount failed"
		fi
	fi
	# Persistent memory (testhost.sh, cases that name @PMEM@): an ext4 with DAX on it, made
	# in a first boot (by the kit's e2fsprogs: /bin/mke2fs is busybox's, which makes no
	# ext4); after a kexec of this test host (vmmhost.resume=1 on the new kernel's command
	# line) the same file system, with what the cases left in it.
	resumed=0
	grep -qw vmmhost.resume=1 /proc/cmdline && resumed=1
	if [ -b /dev/pmem0 ]; then
		mkdir -p /pmem
		[ "$resumed" = 1 ] || /sbin/mke2fs -q -F -t ext4 -b 4096 -L vmmpmem /dev/pmem0
		if mount -t ext4 -o dax /dev/pmem0 /pmem; then
			export VMM_PMEM=/pmem
			echo "@@HOST pmem=$(df -m /pmem | awk 'NR==2 { print $2 }')M dax resumed=$resumed"
		else
			echo "@@HOST pmem mount failed"
		fi
	elif grep -q 'memmap=' /proc/cmdline; then
		echo "@@HOST pmem: memmap= given but no /dev/pmem0"
	fi
	[ "$resumed" = 1 ] && export VMM_RESUMED=1
	[ -d /extra ] && export VMM_EXTRA=/extra
	# A case whose guest triple-faults runs once more (runcases.sh), unless the run hunts
	# that failure (testhost.sh: VMM_TEST_RETRY=0 gives vmmhost.retry=0).
	grep -qw vmmhost.retry=0 /proc/cmdline || export VMM_RETRY=1
	# Huge pages for shmem as well, as a host that runs VMs is set up: the VMM's guest RAM is
	# a memfd (README, --memory).
	echo advise >/sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null
	echo "@@HOST thp-shmem=$(cat /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>&1)"
	if [ -c /dev/kvm ]; then
		echo "@@HOST kvm=yes"
		# One idle VM for the whole run, so that no case's VM is KVM's first or last
		# (kvmhold.c: toggling KVM per VM locks the TCG test host up now and then).
		kvmhold >/tmp/kvmhold.out 2>&1 &
		n=0
		while [ $n -lt 50 ] && ! grep -q ready /tmp/kvmhold.out; do
			sleep 0.1
			n=$((n + 1))
		done
		echo "@@HOST $(cat /tmp/kvmhold.out)"
	else
		echo "@@HOST kvm=no"
	fi
	set -- /cases/*.cases
	sh /runcases.sh /vmm/vmm /kit "$@" 2>&1
	echo "@@HOST end"
} >"$out" 2>&1
sync
umount /scratch 2>/dev/null
poweroff -f
sleep 5
echo o >/proc/sysrq-trigger
