#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# api-run.sh SOCK KERNEL INITRD CMDLINE [DISK [PAUSE]]: a Linux guest configured and started
# only through vmm's API socket, as Firecracker's launchers do (apictl is the client). With
# PAUSE=pause the VM is paused and resumed over the socket again and again while it runs
# (PATCH /vm), each time checked through GET /. Exits with the VMM's status. $VMM is the vmm.
sock=$1 kernel=$2 initrd=$3 cmdline=$4 disk=${5:-} pause=${6:-}

"$VMM" --api-sock "$sock" --id linux-api &
pid=$!
fail() {
	echo "API FAIL $*"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	exit 1
}
apictl "$sock" wait "Not started" 30 >/dev/null || fail "GET / never said Not started"
apictl "$sock" PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 256, "smt": false}' ||
	fail machine-config
apictl "$sock" PUT /boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"$initrd\", \"boot_args\": \"$cmdline\"}" ||
	fail boot-source
if [ -n "$disk" ]; then
	apictl "$sock" PUT /drives/data "{\"drive_id\": \"data\", \"path_on_host\": \"$disk\", \"is_root_device\": false, \"is_read_only\": false, \"io_engine\": \"Async\"}" ||
		fail drives
fi
apictl "$sock" GET /vm/config || fail vm/config
apictl "$sock" PUT /actions '{"action_type": "InstanceStart"}' || fail InstanceStart
apictl "$sock" wait Running 10 >/dev/null || fail "not Running after InstanceStart"
echo "API started"
# Too late now: configuration after the start is refused.
apictl "$sock" PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}' >/dev/null &&
	fail "machine-config accepted after InstanceStart"
if [ "$pause" = pause ]; then
	n=0
	while kill -0 "$pid" 2>/dev/null; do
		sleep 0.7
		apictl "$sock" PATCH /vm '{"state": "Paused"}' >/dev/null || break
		apictl "$sock" wait Paused 5 >/dev/null || fail "not Paused after PATCH /vm"
		sleep 0.3
		apictl "$sock" PATCH /vm '{"state": "Resumed"}' >/dev/null || fail "resume refused"
		apictl "$sock" wait Running 5 >/dev/null || fail "not Running after Resumed"
		n=$((n + 1))
	done
	echo "API pauses=$n"
	[ "$n" -ge 3 ] || fail "only $n pauses while the guest ran"
fi
wait "$pid"
status=$?
echo "API vmm exited status=$status"
exit $status
