// SPDX-License-Identifier: Apache-2.0
/* CPUID shaping: topology for N vCPUs, APIC IDs, masks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "vmm/cpuid.h"

/* A plausible KVM_GET_SUPPORTED_CPUID answer with the leaves the shaper touches. */
static unsigned int fake_supported(struct kvm_cpuid_entry2 *e)
{
	unsigned int n = 0;
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0x1f };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 1, .eax = 0x806f8, .ebx = 0x00000800,
					     .ecx = (1u << 13) | (1u << 21) | (1u << 24),
					     .edx = 0x078bfbff };
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t level = i < 2 ? 1 : i; /* L1d, L1i, L2, L3 */
		e[n++] = (struct kvm_cpuid_entry2){ .function = 4, .index = i,
						     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
						     .eax = (level << 5) | 1 | (7u << 26) };
	}
	e[n++] = (struct kvm_cpuid_entry2){ .function = 7, .index = 0,
					     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
					     .ebx = (1u << 23) | (1u << 24) | (1u << 5),
					     .ecx = (1u << 8) };
	for (uint32_t i = 0; i < 3; i++)
		e[n++] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = i,
						     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
						     .eax = 9, .ebx = 9, .ecx = 9, .edx = 9 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x80000001, .ecx = 0x1, .edx = 1u << 27 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x80000008, .eax = 0x3030, .ecx = 0x7007 };
	e[n++] = (struct kvm_cpuid_entry2){ .function = 0x8000001e, .eax = 7, .ebx = 0x0107,
					     .ecx = 3 };
	return n;
}

static void test_topology(void **state)
{
	static const unsigned int counts[] = { 1, 2, 3, 4, 64, 254 };
	(void)state;

	for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
		unsigned int nr = counts[c];
		for (unsigned int idx = 0; idx < nr; idx += (nr > 4 ? nr / 3 : 1)) {
			struct kvm_cpuid_entry2 e[32];
			unsigned int n = fake_supported(e);
			cpuid_shape(e, n, idx, nr, NULL, 0);

			struct kvm_cpuid_entry2 *l1 = cpuid_find(e, n, 1, 0);
			assert_int_equal(l1->ebx >> 24, idx);
			assert_int_equal((l1->ebx >> 16) & 0xff, nr > 255 ? 255 : nr);
			assert_int_equal(l1->ebx & 0xffff, 0x0800); /* CLFLUSH size kept */
			assert_int_equal(!!(l1->edx & (1u << 28)), nr > 1);
			assert_true(l1->ecx & (1u << 31));

			/* Leaf 4: cores per package, LLC shared by all, L1 private. */
			struct kvm_cpuid_entry2 *l4 = cpuid_find(e, n, 4, 0);
			assert_int_equal(l4->eax >> 26, nr - 1 > 63 ? 63 : nr - 1);
			assert_int_equal((l4->eax >> 14) & 0xfff, 0);
			struct kvm_cpuid_entry2 *l4_3 = cpuid_find(e, n, 4, 3);
			assert_int_equal((l4_3->eax >> 14) & 0xfff, nr - 1);

			/* Leaf 0xb: SMT level has 1 thread, core level has nr, x2APIC ID = idx. */
			struct kvm_cpuid_entry2 *b0 = cpuid_find(e, n, 0xb, 0);
			struct kvm_cpuid_entry2 *b1 = cpuid_find(e, n, 0xb, 1);
			struct kvm_cpuid_entry2 *b2 = cpuid_find(e, n, 0xb, 2);
			assert_int_equal(b0->ebx, 1);
			assert_int_equal((b0->ecx >> 8) & 0xff, 1);
			assert_int_equal(b0->edx, idx);
			assert_int_equal(b1->ebx, nr);
			assert_int_equal((b1->ecx >> 8) & 0xff, 2);
			assert_true((1u << b1->eax) >= nr);
			assert_true(b1->eax == 0 || (1u << (b1->eax - 1)) < nr);
			assert_int_equal((b2->ecx >> 8) & 0xff, 0);

			/* AMD: NC and core id. */
			struct kvm_cpuid_entry2 *x8 = cpuid_find(e, n, 0x80000008, 0);
			assert_int_equal(x8->ecx & 0xff, nr - 1);
			struct kvm_cpuid_entry2 *x1e = cpuid_find(e, n, 0x8000001e, 0);
			assert_int_equal(x1e->eax, idx);
			assert_int_equal(x1e->ebx & 0xff, idx & 0xff);
			assert_int_equal((x1e->ebx >> 8) & 0xff, 0); /* one thread per core */
			struct kvm_cpuid_entry2 *x1 = cpuid_find(e, n, 0x80000001, 0);
			assert_int_equal(!!(x1->ecx & 2), nr > 1);
		}
	}
}

static void test_mask(void **state)
{
	const struct cpuid_feature *mask[8];
	unsigned int nm;
	char bad[32];
	struct kvm_cpuid_entry2 e[32];
	(void)state;

	assert_int_equal(cpuid_mask_parse("cx16,clflushopt,clwb,gfni,rdtscp", mask, 8, &nm, bad,
					  sizeof(bad)), 0);
	assert_int_equal(nm, 5);
	unsigned int n = fake_supported(e);
	cpuid_shape(e, n, 0, 1, mask, nm);
	assert_false(cpuid_find(e, n, 1, 0)->ecx & (1u << 13));
	assert_true(cpuid_find(e, n, 1, 0)->ecx & (1u << 21)); /* x2apic untouched */
	assert_false(cpuid_find(e, n, 7, 0)->ebx & (1u << 23));
	assert_false(cpuid_find(e, n, 7, 0)->ebx & (1u << 24));
	assert_true(cpuid_find(e, n, 7, 0)->ebx & (1u << 5)); /* avx2 untouched */
	assert_false(cpuid_find(e, n, 7, 0)->ecx & (1u << 8));
	assert_false(cpuid_find(e, n, 0x80000001, 0)->edx & (1u << 27));

	assert_int_equal(cpuid_mask_parse("cx16,bogus", mask, 8, &nm, bad, sizeof(bad)), -EINVAL);
	assert_string_equal(bad, "bogus");
	assert_int_equal(cpuid_mask_parse("cx16,,clwb", mask, 8, &nm, bad, sizeof(bad)), -EINVAL);
	assert_int_equal(cpuid_mask_parse("cx16,clwb", mask, 1, &nm, bad, sizeof(bad)), -E2BIG);
	assert_int_equal(cpuid_mask_parse(NULL, mask, 8, &nm, bad, sizeof(bad)), 0);
	assert_int_equal(nm, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_mask),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
