#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /sbin/init of the kit's rootfs.ext4 (mkkit.sh), reached through the initramfs' vmmtest=root
# (init.sh mounts root= and switch_root's here). Reports what it runs from, leaves a file
# behind when the root is writable (the case checks the image on the host), powers off.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys

say() { echo "VMMTEST $*"; }

say "rootfs init pid=$$"
say "rootfs id=$(cat /etc/vmmtest-rootfs)"
# The device and type of / as the kernel sees them ("/dev/vda ext4 rw").
say "rootfs mount=$(awk '$2 == "/" { print $1, $3, substr($4, 1, 2) }' /proc/mounts | tail -n1)"
# Nothing of the initramfs is left: switch_root emptied it, and / is another file system.
[ -e /init ] && say "rootfs ERROR /init is visible"
if touch /var/vmmtest-boot 2>/dev/null; then
	echo "written by the rootfs init of $(uname -r)" >/var/vmmtest-boot
	sync
	say "rootfs wrote=/var/vmmtest-boot"
fi
# Read-only before the power goes: the image is then clean for e2fsck on the host.
mount -o remount,ro / || say "rootfs ERROR remount,ro failed"
say "END root"
poweroff -f
sleep 10
say "ERROR poweroff returned"
while :; do sleep 3600; done
