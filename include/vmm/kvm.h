/* SPDX-License-Identifier: Apache-2.0 */
/* /dev/kvm: open it, check the API version and every capability we rely on. */
#ifndef VMM_KVM_H
#define VMM_KVM_H

#include <linux/kvm.h>
#include <stdbool.h>
#include "vmm/compiler.h"

struct kvm_sys {
	int fd;
	size_t run_size;          /* KVM_GET_VCPU_MMAP_SIZE */
	unsigned int max_vcpus;   /* KVM_CAP_MAX_VCPUS (hard limit) */
	unsigned int nr_vcpus;    /* KVM_CAP_NR_VCPUS (recommended) */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID */
	struct kvm_msr_list *msrs; /* KVM_GET_MSR_INDEX_LIST */
};

/* On error: -errno and one line in err naming the device or the missing capability. */
int kvm_sys_open(struct kvm_sys *kvm, const char *path, char *err, size_t errlen) WUR;
void kvm_sys_close(struct kvm_sys *kvm);
bool kvm_sys_has_msr(const struct kvm_sys *kvm, uint32_t index);

#endif
