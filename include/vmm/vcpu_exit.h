/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What to do with one KVM_RUN exit: a pure function over struct kvm_run and the buses, so that
 * every exit reason is unit-tested with synthetic exits (no /dev/kvm).
 */
#ifndef VMM_VCPU_EXIT_H
#define VMM_VCPU_EXIT_H

#include <linux/kvm.h>
#include "vmm/bus.h"
#include "vmm/platform.h"

enum vcpu_action {
	VCPU_CONTINUE, /* run again */
	VCPU_STOP,     /* stop the VM with `reason` */
};

struct vcpu_exit {
	enum vcpu_action action;
	enum vmm_stop_reason reason;
	int code;
	bool dump_regs;  /* a fatal exit: the caller prints the registers */
	char msg[160];   /* one diagnostic line for stops that are not the guest's choice */
};

/* run_size is the size of the kvm_run mapping (KVM_GET_VCPU_MMAP_SIZE): PIO data lies in it. */
void vcpu_handle_exit(struct kvm_run *run, size_t run_size, struct bus *pio, struct bus *mmio,
		      struct vcpu_exit *out);

const char *vcpu_exit_reason_name(uint32_t reason);

#endif
