/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One virtual machine: KVM VM fd, guest RAM, buses, devices and vCPU threads. Created from a
 * validated config, run until the guest (or a timeout, or a signal) stops it, then destroyed.
 */
#ifndef VMM_VM_H
#define VMM_VM_H

#include <pthread.h>
#include <stdbool.h>

#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/guest_mem.h"
#include "vmm/kvm.h"
#include "vmm/platform.h"

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
};

struct vm_outcome {
	enum vm_stop_reason reason;
	int code;
	char msg[256]; /* one line for the user; empty when the guest chose to stop */
};

/* On error: -errno and one line in err (no newline) naming what is wrong. */
int vm_create(const struct vmm_config *cfg, struct vm **out, char *err, size_t errlen) WUR;
/*
 * Start the vCPUs, serve the console and wait until something stops the VM. Runs a glib main
 * loop on the calling thread.
 */
int vm_run(struct vm *vm, struct vm_outcome *outcome) WUR;
void vm_destroy(struct vm *vm);

/* Thread-safe: the first request wins. Used by devices, vCPUs, signals, the timeout. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int code, const char *msg);

/* vcpu.c */
int vcpu_create(struct vm *vm, struct vcpu *vcpu, unsigned int index, char *err,
		size_t errlen) WUR;
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_start(struct vcpu *vcpu) WUR;
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_dump_regs(struct vcpu *vcpu, FILE *f);

#endif
