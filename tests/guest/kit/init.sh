#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the guest kit initramfs (busybox sh). Runs the scenario named by
# vmmtest=NAME on the kernel command line and reports on the console with lines
#   VMMTEST BEGIN NAME
#   VMMTEST key=value        (results)
#   VMMTEST END NAME
# Scenarios: info, poweroff, reboot, exit=N, panic, hang, shell (default).
# Every path ends the VM (poweroff, reboot, debug-exit, panic) or waits forever: init
# must never return, or the kernel panics with "Attempted to kill init".
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export HOME=/root

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp

say() { echo "VMMTEST $*"; }

rel=$(uname -r)
moddir=/lib/modules/$rel
if [ -f "$moddir/load-order" ]; then
	while read -r m; do
		insmod "$moddir/$m.ko" 2>/dev/null || say "WARN insmod $m failed"
	done <"$moddir/load-order"
else
	say "WARN no modules for $rel"
fi

scenario=shell
for w in $(cat /proc/cmdline); do
	case $w in
	vmmtest=*) scenario=${w#vmmtest=} ;;
	esac
done

stop() {
	# $1: poweroff or reboot. -f: no init to tell, straight to the reboot syscall.
	"$1" -f
	sleep 10
	say "ERROR $1 returned"
	while :; do sleep 3600; done
}

# QEMU isa-debug-exit compatible port (0xf4): the VMM exits with (value << 1) | 1.
debug_exit() {
	v=$1
	case $v in '' | *[!0-9]*) say "ERROR bad exit value '$v'"; stop poweroff ;; esac
	[ "$v" -le 255 ] || { say "ERROR exit value $v > 255"; stop poweroff; }
	# outb uses ioperm(2): the cloud kernel has no /dev/port. Otherwise /dev/port,
	# whose file offset is the port number.
	if [ -x /bin/outb ]; then
		outb 0xf4 "$v" || say "ERROR outb 0xf4 $v failed"
	else
		printf "\\$(printf '%03o' "$v")" |
			dd of=/dev/port bs=1 seek=244 count=1 conv=notrunc 2>/dev/null ||
			say "ERROR write to /dev/port failed"
	fi
	sleep 10
	say "ERROR debug-exit did not stop the VM"
	stop poweroff
}

info() {
	say "nproc=$(nproc)"
	say "memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo)"
	# Top-level "System RAM" ranges; an end address with more than 8 hex digits
	# (leading zeros stripped) lies at or above 4 GiB.
	above=no
	for end in $(sed -n 's/^[0-9a-f]*-\([0-9a-f]*\) : System RAM$/\1/p' /proc/iomem); do
		end=$(echo "$end" | sed 's/^0*//')
		[ ${#end} -gt 8 ] && above=yes
	done
	say "ram_above_4g=$above"
	say "release=$rel"
}

say "BEGIN $scenario"
case $scenario in
info)
	info
	say "END $scenario"
	stop poweroff
	;;
poweroff)
	say "END $scenario"
	stop poweroff
	;;
reboot)
	say "END $scenario"
	stop reboot
	;;
exit=*)
	say "END $scenario"
	debug_exit "${scenario#exit=}"
	;;
panic)
	# pvpanic-mmio (loaded above) binds the ACPI QEMU0001 device and reports the
	# panic to the VMM; without panic= the kernel then waits, so a VMM that ignores
	# pvpanic shows up as a timeout, not as a clean exit.
	[ -d /sys/bus/platform/drivers/pvpanic-mmio ] || say "WARN pvpanic-mmio driver absent"
	echo c >/proc/sysrq-trigger
	sleep 10
	say "ERROR sysrq-trigger did not panic"
	stop poweroff
	;;
hang)
	while :; do sleep 3600; done
	;;
shell)
	# /dev/console is not a controlling terminal, so the shell runs without job
	# control; input on the VMM's stdin arrives through the UART.
	echo "type 'poweroff -f' to stop the VM"
	sh
	stop poweroff
	;;
*)
	say "ERROR unknown scenario '$scenario'"
	stop poweroff
	;;
esac
