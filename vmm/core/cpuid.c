// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/cpuid.h"

/* Names as in Linux arch/x86/include/asm/cpufeatures.h / /proc/cpuinfo. */
static const struct cpuid_feature features[] = {
	{ "sse3", 1, 0, CPUID_ECX, 0 },        { "pclmulqdq", 1, 0, CPUID_ECX, 1 },
	{ "monitor", 1, 0, CPUID_ECX, 3 },     { "vmx", 1, 0, CPUID_ECX, 5 },
	{ "ssse3", 1, 0, CPUID_ECX, 9 },       { "fma", 1, 0, CPUID_ECX, 12 },
	{ "cx16", 1, 0, CPUID_ECX, 13 },       { "pcid", 1, 0, CPUID_ECX, 17 },
	{ "sse4_1", 1, 0, CPUID_ECX, 19 },     { "sse4_2", 1, 0, CPUID_ECX, 20 },
	{ "x2apic", 1, 0, CPUID_ECX, 21 },     { "movbe", 1, 0, CPUID_ECX, 22 },
	{ "popcnt", 1, 0, CPUID_ECX, 23 },     { "tsc_deadline_timer", 1, 0, CPUID_ECX, 24 },
	{ "aes", 1, 0, CPUID_ECX, 25 },        { "xsave", 1, 0, CPUID_ECX, 26 },
	{ "avx", 1, 0, CPUID_ECX, 28 },        { "f16c", 1, 0, CPUID_ECX, 29 },
	{ "rdrand", 1, 0, CPUID_ECX, 30 },     { "sse", 1, 0, CPUID_EDX, 25 },
	{ "sse2", 1, 0, CPUID_EDX, 26 },       { "fsgsbase", 7, 0, CPUID_EBX, 0 },
	{ "bmi1", 7, 0, CPUID_EBX, 3 },        { "hle", 7, 0, CPUID_EBX, 4 },
	{ "avx2", 7, 0, CPUID_EBX, 5 },        { "smep", 7, 0, CPUID_EBX, 7 },
	{ "bmi2", 7, 0, CPUID_EBX, 8 },        { "erms", 7, 0, CPUID_EBX, 9 },
	{ "invpcid", 7, 0, CPUID_EBX, 10 },    { "rtm", 7, 0, CPUID_EBX, 11 },
	{ "avx512f", 7, 0, CPUID_EBX, 16 },    { "rdseed", 7, 0, CPUID_EBX, 18 },
	{ "adx", 7, 0, CPUID_EBX, 19 },        { "smap", 7, 0, CPUID_EBX, 20 },
	{ "clflushopt", 7, 0, CPUID_EBX, 23 }, { "clwb", 7, 0, CPUID_EBX, 24 },
	{ "sha_ni", 7, 0, CPUID_EBX, 29 },     { "umip", 7, 0, CPUID_ECX, 2 },
	{ "pku", 7, 0, CPUID_ECX, 3 },         { "gfni", 7, 0, CPUID_ECX, 8 },
	{ "vaes", 7, 0, CPUID_ECX, 9 },        { "vpclmulqdq", 7, 0, CPUID_ECX, 10 },
	{ "la57", 7, 0, CPUID_ECX, 16 },       { "rdpid", 7, 0, CPUID_ECX, 22 },
	{ "md_clear", 7, 0, CPUID_EDX, 10 },   { "arch_capabilities", 7, 0, CPUID_EDX, 29 },
	{ "xsaveopt", 0xd, 1, CPUID_EAX, 0 },  { "xsavec", 0xd, 1, CPUID_EAX, 1 },
	{ "xsaves", 0xd, 1, CPUID_EAX, 3 },    { "lahf_lm", 0x80000001, 0, CPUID_ECX, 0 },
	{ "svm", 0x80000001, 0, CPUID_ECX, 2 }, { "abm", 0x80000001, 0, CPUID_ECX, 5 },
	{ "sse4a", 0x80000001, 0, CPUID_ECX, 6 }, { "3dnowprefetch", 0x80000001, 0, CPUID_ECX, 8 },
	{ "pdpe1gb", 0x80000001, 0, CPUID_EDX, 26 }, { "rdtscp", 0x80000001, 0, CPUID_EDX, 27 },
};

/* Leaves whose input ECX selects a subleaf (Intel SDM Vol. 2A, CPUID). */
static bool leaf_is_indexed(uint32_t leaf)
{
	return leaf == 4 || leaf == 7 || leaf == 0xb || leaf == 0xd || leaf == 0xf ||
	       leaf == 0x10 || leaf == 0x12 || leaf == 0x14 || leaf == 0x17 || leaf == 0x18 ||
	       leaf == 0x1d || leaf == 0x1e || leaf == 0x1f || leaf == 0x20 || leaf == 0x24 ||
	       leaf == 0x8000001d || leaf == 0x80000020;
}

const struct cpuid_feature *cpuid_feature_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(features); i++)
		if (!strcmp(features[i].name, name))
			return &features[i];
	return NULL;
}

int cpuid_mask_parse(const char *list, const struct cpuid_feature **out, unsigned int max,
		     unsigned int *n, char *bad, size_t badlen)
{
	*n = 0;
	if (!list)
		return 0;
	const char *p = list;
	while (*p) {
		const char *end = strchrnul(p, ',');
		size_t len = (size_t)(end - p);
		char name[32];
		if (len == 0 || len >= sizeof(name)) {
			snprintf(bad, badlen, "%.*s", (int)MIN(len, (size_t)64), p);
			return -EINVAL;
		}
		memcpy(name, p, len);
		name[len] = '\0';
		const struct cpuid_feature *f = cpuid_feature_find(name);
		if (!f) {
			snprintf(bad, badlen, "%s", name);
			return -EINVAL;
		}
		if (*n == max)
			return -E2BIG;
		out[(*n)++] = f;
		p = *end ? end + 1 : end;
	}
	return 0;
}

struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid_entry2 *entries, unsigned int n,
				    uint32_t leaf, uint32_t subleaf)
{
	for (unsigned int i = 0; i < n; i++) {
		if (entries[i].function != leaf)
			continue;
		if (!(entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || entries[i].index == subleaf)
			return &entries[i];
	}
	return NULL;
}

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, enum cpuid_reg r)
{
	switch (r) {
	case CPUID_EAX: return &e->eax;
	case CPUID_EBX: return &e->ebx;
	case CPUID_ECX: return &e->ecx;
	default: return &e->edx;
	}
}

/* Bits needed to number `count` things: ceil(log2(count)). */
static unsigned int order_of(unsigned int count)
{
	unsigned int s = 0;
	while ((1u << s) < count)
		s++;
	return s;
}

void cpuid_shape(struct kvm_cpuid_entry2 *entries, unsigned int n, unsigned int index,
		 unsigned int nr_cpus, const struct cpuid_feature *const *mask, unsigned int nr_mask)
{
	unsigned int core_bits = order_of(nr_cpus);

	for (unsigned int i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &entries[i];
		if (leaf_is_indexed(e->function))
			e->flags |= KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

		switch (e->function) {
		case 1:
			/* EBX[31:24] initial APIC ID, [23:16] logical processors per package. */
			e->ebx = (e->ebx & 0x0000ffff) | (index << 24) |
				 ((nr_cpus > 255 ? 255 : nr_cpus) << 16);
			if (nr_cpus > 1)
				e->edx |= 1u << 28; /* HTT: the count in EBX[23:16] is valid */
			else
				e->edx &= ~(1u << 28);
			e->ecx |= 1u << 31; /* running under a hypervisor */
			break;
		case 4:
			/* Deterministic cache parameters (Intel): cores per package and sharing. */
			if ((e->eax & 0x1f) == 0)
				break;
			e->eax &= 0x3fff;
			/* A 6-bit field: more than 64 cores saturate (leaf 0xb is exact). */
			e->eax |= MIN(nr_cpus - 1, 63u) << 26;
			/* L1/L2 private to a core; the last level shared by all. */
			if (((e->eax >> 5) & 7) >= 3)
				e->eax |= (nr_cpus - 1) << 14;
			break;
		case 0x8000001d:
			/* AMD cache topology: EAX[25:14] threads sharing the cache, minus one. */
			if ((e->eax & 0x1f) == 0)
				break;
			e->eax &= ~(0xfffu << 14);
			if (((e->eax >> 5) & 7) >= 3)
				e->eax |= (nr_cpus - 1) << 14;
			break;
		case 0xb:
		case 0x1f:
			/* Extended topology: level 0 SMT (1 thread), level 1 core (nr_cpus). */
			e->edx = index;
			if (e->index == 0) {
				e->eax = 0;
				e->ebx = 1;
				e->ecx = (1u << 8) | 0;
			} else if (e->index == 1) {
				e->eax = core_bits;
				e->ebx = nr_cpus;
				e->ecx = (2u << 8) | 1;
			} else {
				e->eax = 0;
				e->ebx = 0;
				e->ecx = e->index;
			}
			break;
		case 0x80000001:
			/* CmpLegacy: HTT counts cores, not threads (AMD APM Vol. 3, CPUID Fn8000_0001). */
			if (nr_cpus > 1)
				e->ecx |= 1u << 1;
			else
				e->ecx &= ~(1u << 1);
			break;
		case 0x80000008:
			/* AMD: ECX[7:0] NC = cores - 1, ECX[15:12] ApicIdCoreIdSize. */
			e->ecx = (e->ecx & ~0xf0ffu) | (core_bits << 12) | (nr_cpus - 1);
			break;
		case 0x8000001e:
			/* AMD extended APIC ID; one thread per core; core ID = index. */
			e->eax = index;
			e->ebx = (e->ebx & ~0xffffu) | (index & 0xff);
			e->ecx = 0;
			break;
		default:
			break;
		}
	}

	for (unsigned int m = 0; m < nr_mask; m++) {
		const struct cpuid_feature *f = mask[m];
		struct kvm_cpuid_entry2 *e = cpuid_find(entries, n, f->leaf, f->subleaf);
		if (e)
			*reg_of(e, f->reg) &= ~(1u << f->bit);
	}
}
