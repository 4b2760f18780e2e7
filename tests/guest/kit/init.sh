#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# /init of the guest kit initramfs (busybox sh). Runs the scenario named by
# vmmtest=NAME on the kernel command line and reports on the console with lines
#   VMMTEST BEGIN NAME
#   VMMTEST key=value        (results)
#   VMMTEST END NAME
# Scenarios: info, poweroff, reboot, exit=N, panic, hang, shell (default); disk-rw, disk-ro,
# disk-multi, disk-ext4, disk-discard, disk-fstrim, disk-flush, disk-stream, records (virtio-blk,
# the disk is vmmtest.dev=, default vda); root (mount root= and switch_root into it); exec (run
# /vmmtest-exec, which a caller appends to the initramfs as another cpio archive); vsock and
# vsock-serve (vsockt.c's server on vsock port 1024; vsock also runs its client against the
# host, see vsock() below).
# With console=hvc0 (the VMM's virtio console), init's console is reopened on /dev/hvc0 once
# virtio_console is loaded: at boot the kernel finds no hvc tty to open for init.
#
# Disk patterns: 'pat SEED LINES' is the output of seq SEED*100000 .. SEED*100000+LINES-1
# (SEED 10..94: 7 digits and a newline, 8 bytes a line). The host side of the linux-suite
# cases (tests/host/cases/disk*.cases) writes and checks the same with seq.
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
disk=vda
ctl=vdb
share=pmem
mib=16
conns=1000
rootdev=
rootfstype=ext4
rootmode=ro
hvc=
for w in $(cat /proc/cmdline); do
	case $w in
	vmmtest=*) scenario=${w#vmmtest=} ;;
	vmmtest.dev=*) disk=${w#vmmtest.dev=} ;;
	vmmtest.ctl=*) ctl=${w#vmmtest.ctl=} ;;
	vmmtest.share=*) share=${w#vmmtest.share=} ;;
	vmmtest.mib=*) mib=${w#vmmtest.mib=} ;;
	vmmtest.conns=*) conns=${w#vmmtest.conns=} ;;
	root=*) rootdev=${w#root=} ;;
	rootfstype=*) rootfstype=${w#rootfstype=} ;;
	rw) rootmode=rw ;;
	ro) rootmode=ro ;;
	console=hvc*) hvc=${w#console=}; hvc=${hvc%%,*} ;;
	console=*) hvc= ;;
	esac
done

# The last console= is /dev/console. An hvc console's tty exists only once virtio_console
# has found the device, after the kernel tried to open init's stdio: open it now.
if [ -n "$hvc" ]; then
	n=0
	while [ ! -c "/dev/$hvc" ] && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ -c "/dev/$hvc" ] && exec <"/dev/$hvc" >"/dev/$hvc" 2>&1
fi

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

# --- disks -------------------------------------------------------------------------------

pat() {
	seq $(($1 * 100000)) $(($1 * 100000 + $2 - 1))
}

wait_dev() {
	w=0
	while [ ! -b "$1" ] && [ $w -lt 100 ]; do
		sleep 0.1
		w=$((w + 1))
	done
	[ -b "$1" ] || { say "ERROR no block device $1"; ls /sys/block; return 1; }
}

# write DEV OFFSET SEED LINES [direct]: the pattern at byte OFFSET (a 4 KiB multiple), through
# the page cache and fsync (a FLUSH), or with O_DIRECT 1 MiB writes.
pat_write() {
	pat "$3" "$4" >/tmp/pat.w
	if [ "${5:-}" = direct ]; then
		# O_DIRECT needs whole blocks: the patterns used this way are 1 MiB multiples.
		dd if=/tmp/pat.w of="$1" bs=1M seek=$(($2 / 1048576)) oflag=direct 2>/tmp/dd.err
	else
		dd if=/tmp/pat.w of="$1" bs=4096 seek=$(($2 / 4096)) conv=fsync,notrunc 2>/tmp/dd.err
	fi
	rc=$?
	rm -f /tmp/pat.w
	[ $rc -eq 0 ] || cat /tmp/dd.err
	return $rc
}

# verify DEV OFFSET SEED LINES: read with O_DIRECT (from the device, not the page cache).
pat_verify() {
	pat "$3" "$4" >/tmp/pat.v
	n=$(($4 * 8))
	dd if="$1" bs=4096 skip=$(($2 / 4096)) count=$(((n + 4095) / 4096)) iflag=direct \
		2>/dev/null | head -c "$n" | cmp -s - /tmp/pat.v
	rc=$?
	rm -f /tmp/pat.v
	return $rc
}

ok() {
	# ok NAME COMMAND...: run it, report NAME=ok or NAME=FAIL
	k=$1
	shift
	if "$@"; then say "$k=ok"; else say "$k=FAIL"; fi
}

disk_rw() {
	d=/dev/$disk
	wait_dev "$d" || return
	say "disk $disk sectors=$(cat /sys/block/"$disk"/size)"
	# The host wrote seed 11 at 0.
	ok "rw host-pattern" pat_verify "$d" 0 11 50000
	ok "rw write-fsync" pat_write "$d" 1048576 22 50000
	ok "rw write-direct" pat_write "$d" 2097152 33 262144 direct
	echo 3 >/proc/sys/vm/drop_caches
	ok "rw readback-fsync" pat_verify "$d" 1048576 22 50000
	ok "rw readback-direct" pat_verify "$d" 2097152 33 262144
}

disk_ro() {
	d=/dev/$disk
	wait_dev "$d" || return
	say "ro sysfs=$(cat /sys/block/"$disk"/ro)"
	ok "ro host-pattern" pat_verify "$d" 0 11 50000
	if pat_write "$d" 0 66 512 >/dev/null 2>&1; then
		say "ro write=ACCEPTED"
	else
		say "ro write=refused"
	fi
	# Even when told the disk is writable the kernel keeps the driver's read-only flag; and
	# the device must refuse whatever reaches it.
	blockdev --setrw "$d" 2>/dev/null
	if pat_write "$d" 0 66 131072 direct >/dev/null 2>&1; then
		say "ro setrw-write=ACCEPTED"
	else
		say "ro setrw-write=refused"
	fi
	ok "ro unchanged" pat_verify "$d" 0 11 50000
}

disk_multi() {
	for b in /sys/block/vd*; do
		v=${b##*/}
		wait_dev "/dev/$v" || continue
		say "disk $v first=$(head -c 7 "/dev/$v") sectors=$(cat "$b/size") ro=$(cat "$b/ro")" \
			"serial=$(cat "$b/serial" 2>/dev/null)"
	done
}

disk_ext4() {
	d=/dev/$disk
	wait_dev "$d" || return
	command -v mkfs.ext4 >/dev/null || { say "ERROR mkfs.ext4 absent (append e2fs.cpio.gz)"; return; }
	ok "ext4 mkfs" mkfs.ext4 -q -F -L vmmtest "$d"
	mkdir -p /mnt
	ok "ext4 mount" mount -t ext4 "$d" /mnt
	pat 44 50000 >/mnt/data
	mkdir -p /mnt/dir
	echo "hello from the guest" >/mnt/dir/hello
	ok "ext4 sync" sync
	ok "ext4 umount" umount /mnt
	echo 3 >/proc/sys/vm/drop_caches
	ok "ext4 remount" mount -t ext4 -o ro "$d" /mnt
	pat 44 50000 >/tmp/want
	ok "ext4 readback" cmp -s /mnt/data /tmp/want
	umount /mnt
}

disk_discard() {
	d=/dev/$disk
	wait_dev "$d" || return
	say "discard max_bytes=$(cat /sys/block/"$disk"/queue/discard_max_bytes)"
	# 1 MiB .. 9 MiB; the host's pattern (seed 11 at 0, 400000 bytes) must survive.
	ok "discard blkdiscard" blkdiscard -o 1048576 -l 8388608 "$d"
	ok "discard sync" sync
	ok "discard host-pattern" pat_verify "$d" 0 11 50000
}

disk_fstrim() {
	d=/dev/$disk
	wait_dev "$d" || return
	command -v mkfs.ext4 >/dev/null || { say "ERROR mkfs.ext4 absent (append e2fs.cpio.gz)"; return; }
	# nodiscard: mkfs must not discard the device itself; the trim below has to.
	ok "fstrim mkfs" mkfs.ext4 -q -F -E nodiscard "$d"
	mkdir -p /mnt
	ok "fstrim mount" mount -t ext4 -o discard "$d" /mnt
	dd if=/dev/zero of=/mnt/big bs=1M count=4 conv=fsync 2>/dev/null
	rm /mnt/big
	sync
	say "fstrim $(fstrim -v /mnt 2>&1)"
	ok "fstrim umount" umount /mnt
}

disk_flush() {
	d=/dev/$disk
	wait_dev "$d" || return
	# Flushed (fsync: a virtio-blk FLUSH) before the marker; the host SIGKILLs the VMM when
	# it sees the marker, then checks the image.
	ok "flush write" pat_write "$d" 0 55 50000
	ok "flush write-direct" pat_write "$d" 1048576 56 131072 direct
	ok "flush sync" sync
	say "flushed"
	while :; do sleep 3600; done
}

# Sustained O_DIRECT writes and reads, pass after pass, while the host pauses and resumes the
# VM: a request lost or duplicated at a pause shows up as a hang or a failed verify.
disk_stream() {
	d=/dev/$disk
	wait_dev "$d" || return
	i=1
	while [ $i -le 8 ]; do
		ok "stream write-$i" pat_write "$d" 0 $((60 + i)) 131072 direct
		ok "stream verify-$i" pat_verify "$d" 0 $((60 + i)) 131072
		i=$((i + 1))
	done
}

# --- live update (tests/host/cases/liveupdate.cases, tests/host/lu-run.sh) ------------------
# Record N (N = 1, 2, ...) is sector N of the disk: 'LUREC CRC BODY\n' and zeros to 512 bytes,
# BODY = 'SEQ X PAYLOAD' (SEQ in eight digits; X the value of the work after N blocks;
# PAYLOAD a random UUID), CRC busybox crc32's (zlib's CRC-32) of BODY. A record is written
# through the page cache and fsynced (dd conv=fsync: the write, then a virtio-blk FLUSH);
# 'VMMTEST ack N' is printed only once dd has returned 0. Between two records, a block of
# LU_WORK steps of x = (x * 1103515245 + 12345) mod 2^31 from x = 1: CPU work whose every
# value the host can recompute (lutool records). Beside it, three jobs:
#   - a heartbeat 'VMMTEST hb N SECS.USECS' about every second (/bin/heartbeat, heartbeat.c:
#     CLOCK_REALTIME, what date shows, read right before the line is written);
#   - the control disk (vmmtest.ctl=, default vdb; its first sector says 'LUCTL run') read
#     with O_DIRECT every second: once it says 'LUCTL stop', the records end and the VM
#     powers off. A disk, not the console: it works whatever happens to console input;
#   - console input: 'ping N' is answered with 'VMMTEST pong N'.
LU_WORK=200
# --- network ---------------------------------------------------------------------------

# The TCP sockets of local port $1 in the states $2 (a regex of /proc/net/tcp's hex states)?
# busybox nc listens on :: (both families), so its sockets are in tcp6: both tables are read.
net_sockets() {
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$(printf '%04X' "$1")" \
		-v s="^($2)\$" 'substr($2, length($2) - 4) == p && $4 ~ s { f = 1 } END { exit !f }'
}

# When nc -e cat has written its last bytes they may still be in our socket's send queue:
# wait (at most 30 s) until the peer has acknowledged them all (no socket of local port $1 in
# ESTABLISHED, FIN_WAIT1, CLOSE_WAIT, LAST_ACK or CLOSING), so that the poweroff cuts nothing.
net_drained() {
	n=0
	while net_sockets "$1" '01|04|08|09|0B' && [ $n -lt 300 ]; do
		sleep 0.1
		n=$((n + 1))
	done
}

# Until nc -l, started in the background, listens on port $1 (at most 10 s): the host
# connects as soon as we say we serve.
net_listening() {
	n=0
	until net_sockets "$1" 0A || [ $n -ge 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
}

# eth0 (virtio-net on the test host's tap, tests/host/net-run.sh): 10.77.0.2/24, ping the
# host at .1, serve a 64 MiB file of ours on port 5002 and fetch the host's from its 5003,
# each with its md5sum on the console.
net() {
	n=0
	while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	ip link set eth0 up && ip addr add 10.77.0.2/24 dev eth0 || { say "ERROR net: no eth0"; return; }
	say "net mac=$(cat /sys/class/net/eth0/address)"
	n=0
	until ping -c 1 -W 2 10.77.0.1 >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -lt 20 ] || { say "ERROR net: no answer to ping"; return; }
	done
	say "net ping ok"
	dd if=/dev/urandom of=/tmp/out bs=1048576 count="$mib" 2>/dev/null
	say "net out-md5 $(md5sum </tmp/out | cut -d' ' -f1)"
	nc -l -p 5002 -e cat /tmp/out &
	served=$!
	net_listening 5002
	say "net serving"
	nc 10.77.0.1 5003 >/tmp/in
	say "net in-md5 $(md5sum </tmp/in | cut -d' ' -f1) bytes=$(wc -c </tmp/in)"
	rm -f /tmp/in
	wait $served
	net_drained 5002
	rm -f /tmp/out
	say "net served"
}

# eth0 on vmm's user-mode network (--net user, tests/host/net-user-run.sh): an address from
# slirp's DHCP server (udhcpc), a ping of the gateway 10.0.2.2 (slirp answers it itself), then
# a file of vmmtest.mib MiB of ours served on port 5002, which the host reaches through its
# hostfwd port, and what 10.0.2.2:5003, the host's loopback, sends; md5sums on the console.
net_user() {
	n=0
	while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	ip link set eth0 up || { say "ERROR net-user: no eth0"; return; }
	cat >/tmp/dhcp.sh <<'DHCP'
#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/$mask" dev "$interface" && ip route add default via "$router" &&
	echo "$ip $router $dns" >/tmp/lease
DHCP
	chmod 755 /tmp/dhcp.sh
	udhcpc -i eth0 -n -q -t 10 -T 2 -s /tmp/dhcp.sh >/dev/null 2>&1
	[ -s /tmp/lease ] || { say "ERROR net-user: no DHCP lease"; return; }
	read -r ip gw dns </tmp/lease
	say "net-user lease ip=$ip gw=$gw dns=$dns mtu=$(cat /sys/class/net/eth0/mtu)"
	ping -c 1 -W 5 10.0.2.2 >/dev/null 2>&1 && say "net-user ping ok"
	dd if=/dev/urandom of=/tmp/out bs=1048576 count="$mib" 2>/dev/null
	say "net-user out-md5 $(md5sum </tmp/out | cut -d' ' -f1)"
	nc -l -p 5002 -e cat /tmp/out &
	served=$!
	net_listening 5002
	say "net-user serving"
	nc 10.0.2.2 5003 >/tmp/in
	say "net-user in-md5 $(md5sum </tmp/in | cut -d' ' -f1) bytes=$(wc -c </tmp/in)"
	rm -f /tmp/in
	wait $served
	net_drained 5002
	rm -f /tmp/out
	say "net-user served"
}

# --- vsock -----------------------------------------------------------------------------

# tests/host/vsock-run.sh: serve vsockt on port 1024 (the host's programs CONNECT to it
# through vmm's socket), and run vsockt's suite (vmmtest.conns short connections, vmmtest.mib
# MiB each way) against the host's listener on port 5000 (vmm's PATH_5000). Then wait: the
# host's own suite against us may still run; it stops the VM.
vsock() {
	n=0
	while ! ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport/ 2>/dev/null | grep -q virtio &&
	      [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ $n -lt 50 ] || { say "ERROR vsock: no virtio-vsock device bound"; return; }
	vsockt serve-vsock 1024 &
	say "vsock serving"
	[ "${1:-}" = serve ] && { while :; do sleep 3600; done; }
	vsockt client-vsock 2 5000 -n "$conns" -m "$mib" >/tmp/vsock.out 2>&1
	st=$?
	sed 's/^/VMMTEST guest: /' /tmp/vsock.out
	say "vsock client status=$st"
	while :; do sleep 3600; done
}

# tests/host/net-bench.sh: ping the host, serve vmmtest.mib MiB of zeros on port 5002 (the host
# times its fetch), then fetch as much from the host's port 5003 and time it here.
netbench() {
	n=0
	while [ ! -e /sys/class/net/eth0 ] && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	ip link set eth0 up && ip addr add 10.77.0.2/24 dev eth0 || { say "ERROR nb: no eth0"; return; }
	n=0
	until ping -c 1 -W 2 10.77.0.1 >/dev/null 2>&1; do
		n=$((n + 1))
		[ $n -lt 20 ] || { say "ERROR nb: no answer to ping"; return; }
	done
	say "nb ping avg=$(ping -c 10 10.77.0.1 | sed -n 's/.*= [0-9.]*\/\([0-9.]*\)\/.*/\1/p')"
	nc -l -p 5002 -e dd if=/dev/zero bs=1048576 count="$mib" 2>/dev/null &
	served=$!
	net_listening 5002
	say "nb ready"
	wait $served
	read -r t0 _ </proc/uptime
	got=$(nc 10.77.0.1 5003 | wc -c)
	read -r t1 _ </proc/uptime
	say "nb fetched bytes=$got secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')"
}

# --- many devices ----------------------------------------------------------------------

# Every virtio device of a full machine answers, each on its own interrupt: the disks'
# first bytes (the host wrote 'disk-N' there), the hwrng, a flush of each pmem.
devices() {
	n=0
	while { [ ! -b /dev/vdh ] || [ ! -b /dev/pmem1 ] || [ ! -c /dev/hwrng ] ||
		[ ! -e /sys/class/net/eth3 ]; } && [ $n -lt 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	say "devices virtio=$(ls /sys/bus/virtio/devices | wc -l)"
	for d in vda vdb vdc vdd vde vdf vdg vdh; do
		say "devices $d=$(head -c 6 /dev/$d 2>/dev/null)"
	done
	say "devices rng=$(head -c 16 /dev/hwrng | wc -c)"
	for p in pmem0 pmem1; do
		dd if=/dev/zero of=/dev/$p bs=4096 count=1 conv=fsync 2>/dev/null &&
			say "devices $p flushed"
	done
	say "devices nics=$(ls -d /sys/class/net/eth* 2>/dev/null | wc -l)"
	# No host listener at the port: the device's RST comes back through its interrupt.
	say "devices vsock: $(vsockt probe-vsock 2 5000)"
	say "devices irqs:$(awk '/virtio/ { printf " %s", $1 }' /proc/interrupts)"
}

# --- persistent memory -----------------------------------------------------------------

# /dev/pmem0 (virtio-pmem) holds an ext4 whose 'hello' the host wrote: mount it with DAX, read
# it, and unless the scenario is pmem-ro write 'from-guest' and sync (the device's flush).
pmem() {
	n=0
	while [ ! -b /dev/pmem0 ] && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ -b /dev/pmem0 ] || { say "ERROR pmem: no /dev/pmem0"; return; }
	say "pmem size=$(($(cat /sys/block/pmem0/size) / 2048))M"
	opts=dax
	[ "$1" = ro ] && opts=dax,ro
	mkdir -p /mnt/pm
	mount -t ext4 -o "$opts" /dev/pmem0 /mnt/pm || { say "ERROR pmem: mount -o $opts failed"; return; }
	say "pmem mount options=$(awk '$1 == "/dev/pmem0" { print $4 }' /proc/mounts)"
	say "pmem read: $(cat /mnt/pm/hello)"
	if [ "$1" != ro ]; then
		echo "written by the guest" >/mnt/pm/from-guest && sync && say "pmem wrote from-guest"
	elif echo x 2>/dev/null >/mnt/pm/nope; then
		say "ERROR pmem: a write to the read-only mount worked"
	fi
	umount /mnt/pm
}

cached_kb() {
	awk '/^Cached:/ { print $2 }' /proc/meminfo
}

# One of several guests sharing a base image (tests/host/pmem-share.sh): mount it read-only
# (vmmtest.share=pmem: /dev/pmem0 with DAX; blk: /dev/vda), say so, and on 'go' from the
# console read all of 'big'; on 'quit' power off.
pmem_share() {
	if [ "$share" = pmem ]; then dev=/dev/pmem0; opts=dax,ro; else dev=/dev/vda; opts=ro; fi
	n=0
	while [ ! -b $dev ] && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	mkdir -p /mnt/pm
	mount -t ext4 -o $opts $dev /mnt/pm || { say "ERROR share: mount $dev failed"; return; }
	say "share ready $(awk -v d=$dev '$1 == d { print $4 }' /proc/mounts) cached=$(cached_kb)"
	read -r line
	sum=$(md5sum /mnt/pm/big | cut -d' ' -f1)
	say "share read $sum cached=$(cached_kb)"
	read -r line
	umount /mnt/pm
}

# --- entropy ---------------------------------------------------------------------------

# The virtio-rng device as the guest's hwrng: bound, and /dev/hwrng gives bytes that differ.
rng() {
	n=0
	while [ ! -c /dev/hwrng ] && [ $n -lt 50 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	[ -c /dev/hwrng ] || { say "ERROR rng: no /dev/hwrng"; return; }
	say "rng current=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)"
	a=$(head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \n')
	b=$(head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \n')
	if [ ${#a} -ne 64 ] || [ ${#b} -ne 64 ]; then
		say "ERROR rng: short reads (${#a} and ${#b} hex digits of 64)"
	elif [ "$a" = "$b" ] || [ -z "$(echo "$a" | tr -d 0)" ]; then
		say "ERROR rng: two reads gave $a and $b"
	else
		say "rng differs"
	fi
	t0=$(cut -d' ' -f1 /proc/uptime)
	got=$(head -c 65536 /dev/hwrng | wc -c)
	say "rng read=$got in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" \
		'BEGIN { printf "%.2f", b - a }') s"
}

records() {
	d=/dev/$disk c=/dev/$ctl
	wait_dev "$d" || return
	wait_dev "$c" || return
	case $(head -c 9 "$c") in
	'LUCTL run') ;;
	*) say "ERROR records: $c does not say 'LUCTL run' (vmmtest.ctl=)"; return ;;
	esac
	max=$(($(cat /sys/block/"$disk"/size) - 1))
	rm -f /tmp/lu.stop
	say "records work=$LU_WORK max=$max clocksource=$(cat \
		/sys/devices/system/clocksource/clocksource0/current_clocksource)"
	heartbeat &
	hbpid=$!
	# Streams across the updates (lu-run.sh): vsockt's server over TCP on eth0 (10.78.0.2)
	# and over vsock port 1024, when the VM has the devices.
	if [ -e /sys/class/net/eth0 ]; then
		ip link set eth0 up && ip addr add 10.78.0.2/24 dev eth0 && vsockt serve-tcp 5002 &
	fi
	if grep -qx 0x0013 /sys/bus/virtio/devices/*/device 2>/dev/null; then
		n=0
		until ls /sys/bus/virtio/drivers/vmw_vsock_virtio_transport/ 2>/dev/null |
		      grep -q virtio || [ $n -ge 50 ]; do
			sleep 0.1
			n=$((n + 1))
		done
		vsockt serve-vsock 1024 &
	fi
	(
		until [ "$(dd if="$c" bs=512 count=1 iflag=direct 2>/dev/null | head -c 10)" = \
			'LUCTL stop' ]; do
			sleep 1
		done
		: >/tmp/lu.stop
	) &
	ctlpid=$!
	(
		while read -r l; do
			case $l in ping*) say "pong ${l#ping }" ;; esac
		done
	) </dev/console &
	rdpid=$!
	x=1 seq=0 why=stop
	while [ ! -e /tmp/lu.stop ]; do
		[ $seq -lt "$max" ] || { why='disk-full'; break; }
		j=0
		while [ $j -lt $LU_WORK ]; do
			x=$(((x * 1103515245 + 12345) % 2147483648))
			j=$((j + 1))
		done
		n=$((seq + 1))
		s=00000000$n
		read -r uuid </proc/sys/kernel/random/uuid
		body="${s#"${s%????????}"} $x $uuid"
		printf '%s' "$body" >/tmp/lu.body
		crc=$(crc32 </tmp/lu.body)
		printf 'LUREC %s %s\n' "$crc" "$body" >/tmp/lu.rec
		if ! dd if=/tmp/lu.rec of="$d" bs=512 seek=$n count=1 conv=sync,notrunc,fsync \
			2>/tmp/dd.err; then
			say "records write-$n=FAIL $(cat /tmp/dd.err)"
			why=write-error
			break
		fi
		seq=$n
		say "ack $seq"
	done
	kill $hbpid $ctlpid $rdpid 2>/dev/null
	say "records acked=$seq end=$why"
}

# Mount root= and make it /: Debian's kernels have virtio_mmio and virtio_blk as modules, so
# the kernel cannot mount a virtio root itself; the initramfs loaded them above.
switch_to_root() {
	[ -n "$rootdev" ] || { say "ERROR root= is missing"; return; }
	wait_dev "$rootdev" || return
	mkdir -p /newroot
	mount -t "$rootfstype" -o "$rootmode" "$rootdev" /newroot ||
		{ say "ERROR mount $rootdev failed"; return; }
	[ -x /newroot/sbin/init ] || { say "ERROR no /sbin/init on $rootdev"; return; }
	say "root mounted=$rootdev type=$rootfstype mode=$rootmode"
	umount /proc /sys /tmp 2>/dev/null
	mount --move /dev /newroot/dev 2>/dev/null || umount /dev 2>/dev/null
	exec switch_root /newroot /sbin/init
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
disk-rw) disk_rw; say "END $scenario"; stop poweroff ;;
disk-ro) disk_ro; say "END $scenario"; stop poweroff ;;
disk-multi) disk_multi; say "END $scenario"; stop poweroff ;;
disk-ext4) disk_ext4; say "END $scenario"; stop poweroff ;;
disk-discard) disk_discard; say "END $scenario"; stop poweroff ;;
disk-fstrim) disk_fstrim; say "END $scenario"; stop poweroff ;;
disk-flush) disk_flush; stop poweroff ;;
disk-stream) disk_stream; say "END $scenario"; stop poweroff ;;
records) records; say "END $scenario"; stop poweroff ;;
rng) rng; say "END $scenario"; stop poweroff ;;
pmem) pmem rw; say "END $scenario"; stop poweroff ;;
pmem-ro) pmem ro; say "END $scenario"; stop poweroff ;;
pmem-share) pmem_share; say "END $scenario"; stop poweroff ;;
devices) devices; say "END $scenario"; stop poweroff ;;
net) net; say "END $scenario"; stop poweroff ;;
net-user) net_user; say "END $scenario"; stop poweroff ;;
netbench) netbench; say "END $scenario"; stop poweroff ;;
vsock) vsock ;;
vsock-serve) vsock serve ;;
root)
	switch_to_root
	say "ERROR switch_root failed"
	stop poweroff
	;;
exec)
	if [ -f /vmmtest-exec ]; then
		sh /vmmtest-exec
		say "exec status=$?"
	else
		say "ERROR no /vmmtest-exec in the initramfs"
	fi
	say "END $scenario"
	stop poweroff
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
