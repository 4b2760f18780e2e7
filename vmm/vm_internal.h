/* SPDX-License-Identifier: Apache-2.0 */
/* struct vm, shared by vm.c and vcpu.c only. */
#ifndef VMM_VM_INTERNAL_H
#define VMM_VM_INTERNAL_H

#include "vmm/cpuid.h"
#include "vmm/loader.h"
#include "vmm/vm.h"

#define VM_MAX_CPUID_MASK 32

struct vm {
	const struct vmm_config *cfg;
	struct kvm_sys kvm;
	int vm_fd;
	struct guest_mem gm;
	struct bus pio;
	struct bus mmio;
	struct boot_result boot;
	const struct cpuid_feature *cpuid_mask[VM_MAX_CPUID_MASK];
	unsigned int nr_cpuid_mask;

	struct vcpu *vcpus;
	unsigned int nr_vcpus;

	struct devices *dev; /* legacy devices, see vm.c */

	/* Stopping: the first request wins; stop_efd wakes the main loop. */
	pthread_mutex_t stop_lock;
	bool stopping; /* read by vCPU threads with __atomic */
	struct vm_outcome outcome;
	int stop_efd;
};

#endif
