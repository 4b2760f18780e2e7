/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CPUID as the guest sees it: KVM_GET_SUPPORTED_CPUID, shaped for N vCPUs (topology, APIC IDs)
 * and with the features the user masks removed. Pure functions over kvm_cpuid_entry2 arrays.
 */
#ifndef VMM_CPUID_H
#define VMM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include "vmm/compiler.h"

enum cpuid_reg { CPUID_EAX, CPUID_EBX, CPUID_ECX, CPUID_EDX };

struct cpuid_feature {
	const char *name;
	uint32_t leaf, subleaf;
	enum cpuid_reg reg;
	uint8_t bit;
};

/* Look up a feature by its /proc/cpuinfo name; NULL if unknown. */
const struct cpuid_feature *cpuid_feature_find(const char *name);

/* Parse "cx16,clwb" into a list of features; -EINVAL and *bad = the unknown name. */
#define CPUID_MASK_MAX 32 /* features one mask may name */

int cpuid_mask_parse(const char *list, const struct cpuid_feature **out, unsigned int max,
		     unsigned int *n, char *bad, size_t badlen) WUR;

/*
 * Shape entries[0..n) in place for vCPU `index` of `nr_cpus` (one core per vCPU, one thread
 * per core, one socket) and clear the masked features.
 */
void cpuid_shape(struct kvm_cpuid_entry2 *entries, unsigned int n, unsigned int index,
		 unsigned int nr_cpus, const struct cpuid_feature *const *mask, unsigned int nr_mask);

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *entries, unsigned int n,
				    uint32_t leaf, uint32_t subleaf);

#endif
