// SPDX-License-Identifier: Apache-2.0
/*
 * kvmhold: keep one idle VM open inside the QEMU TCG test host (tests/host/testhost.sh).
 *
 * Linux 6.1's KVM turns virtualization on in every CPU when the first VM is created and off
 * when the last one goes (on_each_cpu() from kvm_create_vm()/kvm_destroy_vm()), and it flips
 * static keys on those edges (preempt notifiers, the local APIC's software-disabled key),
 * which patches kernel text under the other CPU with text_poke_bp(). Every case of the
 * linux suite is such a first and last VM. Under QEMU 7.2 TCG that cross-CPU traffic now and
 * then never completes: CPU0 waits forever in kvm_destroy_vm() -> on_each_cpu_cond_mask()
 * while CPU1 loops in exc_int3 (soft lockup, RCU stall, the test host is lost). A VM that
 * stays open for the whole run keeps KVM enabled and those keys set, so a case's VM is never
 * the first or the last. It has a local APIC that is never enabled and a vCPU that never runs.
 *
 * Prints "kvmhold: ready" once the VM exists, then sleeps until it is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "kvmhold: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (kvm < 0)
		return fail("/dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail("KVM_CREATE_IRQCHIP");
	if (ioctl(vm, KVM_CREATE_VCPU, 0) < 0)
		return fail("KVM_CREATE_VCPU");
	printf("kvmhold: ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
