// SPDX-License-Identifier: Apache-2.0
/* x86 boot plumbing: e820, GDT, page tables, entry registers, cmdline/initrd placement,
 * loader_load's identification and argument checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <elf.h>
#include <cmocka.h>

#include "vmm/layout.h"
#include "vmm/loader.h"

static void check_e820(uint64_t ram, const struct e820_entry *want, unsigned int nwant)
{
	struct guest_mem gm;
	struct e820_entry e[8];

	assert_int_equal(gm_create(&gm, ram), 0);
	unsigned int n = e820_build(&gm, e, 8);
	assert_int_equal(n, nwant);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(e[i].addr, want[i].addr);
		assert_int_equal(e[i].size, want[i].size);
		assert_int_equal(e[i].type, want[i].type);
	}
	gm_destroy(&gm);
}

static void test_e820_small(void **state)
{
	const struct e820_entry want[] = {
		{0, LAYOUT_EBDA, E820_RAM},
		{LAYOUT_EBDA, MiB - LAYOUT_EBDA, E820_RESERVED},
		{MiB, 127 * MiB, E820_RAM},
	};
	check_e820(128 * MiB, want, 3);
	/* below 1 MiB: no RAM entry from 1 MiB, reserved part cut at the end of RAM */
	const struct e820_entry tiny[] = {
		{0, LAYOUT_EBDA, E820_RAM},
		{LAYOUT_EBDA, 0xc0000 - LAYOUT_EBDA, E820_RESERVED},
	};
	check_e820(0xc0000, tiny, 2);
}

static void test_e820_3g(void **state)
{
	const struct e820_entry want[] = {
		{0, LAYOUT_EBDA, E820_RAM},
		{LAYOUT_EBDA, MiB - LAYOUT_EBDA, E820_RESERVED},
		{MiB, 3 * GiB - MiB, E820_RAM},
	};
	check_e820(3 * GiB, want, 3);
}

static void test_e820_4g(void **state)
{
	/* A 4 GiB guest: 3 GiB low, the last GiB above the 4 GiB boundary, visible to Linux. */
	const struct e820_entry want[] = {
		{0, LAYOUT_EBDA, E820_RAM},
		{LAYOUT_EBDA, MiB - LAYOUT_EBDA, E820_RESERVED},
		{MiB, 3 * GiB - MiB, E820_RAM},
		{4 * GiB, 1 * GiB, E820_RAM},
	};
	check_e820(4 * GiB, want, 4);
	const struct e820_entry want6[] = {
		{0, LAYOUT_EBDA, E820_RAM},
		{LAYOUT_EBDA, MiB - LAYOUT_EBDA, E820_RESERVED},
		{MiB, 3 * GiB - MiB, E820_RAM},
		{4 * GiB, 3 * GiB, E820_RAM},
	};
	check_e820(6 * GiB, want6, 4);
}

static void test_e820_max(void **state)
{
	struct guest_mem gm;
	struct e820_entry e[2];

	assert_int_equal(gm_create(&gm, 4 * GiB), 0);
	assert_int_equal(e820_build(&gm, e, 2), 2);
	assert_int_equal(e820_build(&gm, e, 0), 0);
	gm_destroy(&gm);
}

static void test_fmt_size(void **state)
{
	char b[32];

	assert_string_equal(loader_fmt_size(0, b, sizeof(b)), "0 bytes");
	assert_string_equal(loader_fmt_size(1023, b, sizeof(b)), "1023 bytes");
	assert_string_equal(loader_fmt_size(1024, b, sizeof(b)), "1 KiB");
	assert_string_equal(loader_fmt_size(1536, b, sizeof(b)), "1.5 KiB");
	assert_string_equal(loader_fmt_size(64 * MiB, b, sizeof(b)), "64 MiB");
	assert_string_equal(loader_fmt_size(4 * GiB - 100 * MiB, b, sizeof(b)), "3.9 GiB");
	assert_string_equal(loader_fmt_size(UINT64_MAX, b, sizeof(b)), "16777215.9 TiB");
}

static void test_gdt_and_page_tables(void **state)
{
	struct guest_mem gm;

	assert_int_equal(gm_create(&gm, 2 * MiB), 0);
	assert_int_equal(x86_boot_write_gdt(&gm), 0);
	const uint64_t *gdt = gm_ptr(&gm, GPA(LAYOUT_GDT), LOADER_GDT_ENTRIES * 8);
	assert_int_equal(gdt[0], 0);
	assert_int_equal(gdt[1], 0x00cf9b000000ffffULL); /* 32-bit code, flat */
	assert_int_equal(gdt[2], 0x00af9b000000ffffULL); /* 64-bit code: L=1, D=0 */
	assert_int_equal(gdt[3], 0x00cf93000000ffffULL); /* data, flat */
	assert_int_equal(gdt[4], 0x00008b0000000067ULL); /* busy TSS, base 0, limit 0x67 */
	assert_int_equal(gdt[5], 0);

	assert_int_equal(x86_boot_write_page_tables(&gm), 0);
	const uint64_t *pml4 = gm_ptr(&gm, GPA(LAYOUT_PML4), 4096);
	const uint64_t *pdpt = gm_ptr(&gm, GPA(LAYOUT_PDPT), 4096);
	const uint64_t *pd = gm_ptr(&gm, GPA(LAYOUT_PD), 4 * 4096);
	assert_int_equal(pml4[0], 0xa003);
	for (int i = 1; i < 512; i++)
		assert_int_equal(pml4[i], 0);
	for (uint64_t i = 0; i < 4; i++)
		assert_int_equal(pdpt[i], (0xb000 + i * 0x1000) | 3);
	assert_int_equal(pdpt[4], 0);
	for (uint64_t i = 0; i < 2048; i++)
		assert_int_equal(pd[i], (i << 21) | 0x83);
	gm_destroy(&gm);

	/* RAM too small for the page directories */
	assert_int_equal(gm_create(&gm, 0xc000), 0);
	assert_int_equal(x86_boot_write_page_tables(&gm), -EFAULT);
	gm_destroy(&gm);
}

static void test_regs(void **state)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	memset(&r, 0xff, sizeof(r));
	memset(&s, 0xff, sizeof(s));
	x86_boot_regs_long(0x1000200, &r, &s);
	assert_int_equal(r.rip, 0x1000200);
	assert_int_equal(r.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(r.rflags, 2);
	assert_int_equal(r.rax | r.rbx | r.rcx | r.rdx | r.rdi | r.r8 | r.r15, 0);
	assert_int_equal(s.cs.selector, 0x10);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.cs.db, 0);
	assert_int_equal(s.fs.selector, 0x18);
	assert_int_equal(s.gs.selector, 0x18);
	assert_int_equal(s.cr0, 0x80000031);
	assert_int_equal(s.cr3, 0x9000);
	assert_int_equal(s.cr4, 0x20);
	assert_int_equal(s.efer, 0x500);
	assert_int_equal(s.idt.limit, 0);
	assert_int_equal(s.cr8, 0);
	for (size_t i = 0; i < ARRAY_SIZE(s.interrupt_bitmap); i++)
		assert_int_equal(s.interrupt_bitmap[i], 0);

	x86_boot_regs_pvh(0x100010, &r, &s);
	assert_int_equal(r.rip, 0x100010);
	assert_int_equal(r.rbx, LAYOUT_PVH_INFO);
	assert_int_equal(r.rsi, 0);
	assert_int_equal(r.rflags, 2);
	assert_int_equal(s.cs.selector, 0x08);
	assert_int_equal(s.cs.l, 0);
	assert_int_equal(s.cs.db, 1);
	assert_int_equal(s.tr.selector, 0x20);
	assert_int_equal(s.tr.type, 11);
	assert_int_equal(s.cr0, 0x11);
	assert_int_equal(s.cr3, 0);
	assert_int_equal(s.cr4, 0);
	assert_int_equal(s.efer, 0);
	assert_int_equal(s.apic_base, 0xfee00900);
}

static void test_cmdline(void **state)
{
	struct guest_mem gm;
	char err[128];

	assert_int_equal(gm_create(&gm, 2 * MiB), 0);
	assert_int_equal(x86_boot_write_cmdline(&gm, "abc", 3, err, sizeof(err)), 0);
	assert_string_equal(gm_ptr(&gm, GPA(LAYOUT_CMDLINE), 4), "abc");
	assert_int_equal(x86_boot_write_cmdline(&gm, "abcd", 3, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "cmdline: 4 bytes, the kernel accepts at most 3");
	assert_int_equal(x86_boot_write_cmdline(&gm, NULL, 3, NULL, 0), 0);
	/* a huge cmdline_size in the image is capped by our 64 KiB buffer */
	char *big = malloc(LAYOUT_CMDLINE_MAX + 10);
	assert_non_null(big);
	memset(big, 'y', LAYOUT_CMDLINE_MAX + 9);
	big[LAYOUT_CMDLINE_MAX + 9] = '\0';
	assert_int_equal(x86_boot_write_cmdline(&gm, big, UINT32_MAX, err, sizeof(err)), -E2BIG);
	assert_string_equal(err, "cmdline: over 65536 bytes, the kernel accepts at most 65535");
	free(big);
	gm_destroy(&gm);
}

static void test_initrd_placement(void **state)
{
	struct guest_mem gm;
	char err[160];
	uint64_t start = 1;
	uint8_t data[100] = {9};

	assert_int_equal(gm_create(&gm, 4 * GiB), 0);
	/* no initrd */
	assert_int_equal(x86_boot_place_initrd(&gm, NULL, 0, 0, UINT64_MAX, &start, err, 160), 0);
	assert_int_equal(start, 0);
	/* 4 GiB guest: stays below the 3 GiB hole even with no limit */
	assert_int_equal(
		x86_boot_place_initrd(&gm, data, sizeof(data), 0, UINT64_MAX, &start, err, 160), 0);
	assert_int_equal(start, 3 * GiB - 4096);
	/* the limit (initrd_addr_max + 1) wins when lower */
	assert_int_equal(
		x86_boot_place_initrd(&gm, data, sizeof(data), 0, 0x38000000, &start, err, 160), 0);
	assert_int_equal(start, 0x38000000 - 4096);
	/* a floor inside a page is rounded up; exact fit */
	assert_int_equal(x86_boot_place_initrd(&gm, data, sizeof(data), 0x37fff001, 0x38000000,
					       &start, err, 160),
			 -ENOMEM);
	assert_int_equal(x86_boot_place_initrd(&gm, data, sizeof(data), 0x37ffe000, 0x38000000,
					       &start, err, 160),
			 0);
	assert_int_equal(start, 0x37fff000);
	/* data missing */
	assert_int_equal(x86_boot_place_initrd(&gm, NULL, 10, 0, UINT64_MAX, &start, err, 160),
			 -EINVAL);
	gm_destroy(&gm);
}

/* A minimal PVH ELF32 (one PT_LOAD at 1 MiB, one PT_NOTE). */
static uint8_t *mk_pvh(size_t *len)
{
	*len = 0x2000;
	uint8_t *p = calloc(1, *len);
	assert_non_null(p);
	Elf32_Ehdr eh = {.e_type = ET_EXEC,
			 .e_machine = EM_386,
			 .e_version = EV_CURRENT,
			 .e_entry = 0x100000,
			 .e_phoff = sizeof(eh),
			 .e_ehsize = sizeof(eh),
			 .e_phentsize = sizeof(Elf32_Phdr),
			 .e_phnum = 2};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS32, eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(p, &eh, sizeof(eh));
	Elf32_Phdr ph[2] = {
		{.p_type = PT_LOAD,
		 .p_offset = 0x1000,
		 .p_paddr = 0x100000,
		 .p_filesz = 0x10,
		 .p_memsz = 0x1000},
		{.p_type = PT_NOTE, .p_offset = 0x800, .p_filesz = 20, .p_align = 4},
	};
	memcpy(p + sizeof(eh), ph, sizeof(ph));
	uint32_t note[5] = {4, 4, XEN_ELFNOTE_PHYS32_ENTRY, 0, 0x100000};
	memcpy(note + 3, "Xen", 4);
	memcpy(p + 0x800, note, sizeof(note));
	memset(p + 0x1000, 0xf4, 0x10); /* hlt */
	return p;
}

static void test_load_4g_guest(void **state)
{
	struct guest_mem gm;
	struct boot_result res;
	char err[160];
	size_t len;
	uint8_t *k = mk_pvh(&len);
	uint8_t initrd[4096] = {1};

	assert_int_equal(gm_create(&gm, 4 * GiB), 0);
	struct boot_config cfg = {.kernel = k,
				  .kernel_len = len,
				  .initrd = initrd,
				  .initrd_len = sizeof(initrd),
				  .cmdline = "x"};
	assert_int_equal(loader_load(&gm, &cfg, &res, err, sizeof(err)), 0);
	assert_int_equal(res.format, KERNEL_ELF_PVH);
	assert_int_equal(res.initrd_start, 3 * GiB - 4096);
	const struct hvm_start_info *si = gm_ptr(&gm, GPA(LAYOUT_PVH_INFO), sizeof(*si));
	assert_int_equal(si->memmap_entries, 4);
	assert_int_equal(si->rsdp_paddr, 0);
	const struct hvm_memmap_table_entry *mm = gm_ptr(&gm, GPA(LAYOUT_PVH_MEMMAP), 4 * 24);
	assert_int_equal(mm[3].addr, 4 * GiB);
	assert_int_equal(mm[3].size, 1 * GiB);
	assert_int_equal(mm[3].type, E820_RAM);
	gm_destroy(&gm);
	free(k);
}

static void test_load_arguments(void **state)
{
	struct guest_mem gm;
	struct boot_result res;
	char err[160];
	size_t len;
	uint8_t *k = mk_pvh(&len);
	static const uint8_t junk[0x300] = {'M', 'Z'};

	assert_int_equal(gm_create(&gm, 16 * MiB), 0);
	struct boot_config cfg = {.kernel = junk, .kernel_len = sizeof(junk), .cmdline = ""};
	assert_int_equal(loader_load(&gm, &cfg, &res, err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "kernel: not a bzImage or ELF (no HdrS signature, no ELF magic)");
	/* no err buffer is fine */
	assert_int_equal(loader_load(&gm, &cfg, &res, NULL, 0), -ENOEXEC);
	/* a tiny err buffer is truncated, never overrun */
	char small[8];
	assert_int_equal(loader_load(&gm, &cfg, &res, small, sizeof(small)), -ENOEXEC);
	assert_string_equal(small, "kernel:");
	cfg.kernel_len = 0;
	assert_int_equal(loader_load(&gm, &cfg, &res, err, sizeof(err)), -ENOEXEC);
	assert_string_equal(err, "kernel: empty file");
	cfg.kernel = k, cfg.kernel_len = len, cfg.initrd_len = 5;
	assert_int_equal(loader_load(&gm, &cfg, &res, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "initrd: no data for 5 bytes");
	cfg.initrd_len = 0;
	assert_int_equal(loader_load(NULL, &cfg, &res, err, sizeof(err)), -EINVAL);
	assert_int_equal(loader_load(&gm, &cfg, &res, err, sizeof(err)), 0);
	assert_string_equal(err, "");
	gm_destroy(&gm);

	/* a guest without the first MiB */
	assert_int_equal(gm_create(&gm, 512 * KiB), 0);
	assert_int_equal(loader_load(&gm, &cfg, &res, err, sizeof(err)), -ENOMEM);
	assert_string_equal(err, "guest RAM: 512 KiB is too small to boot (need 1 MiB + kernel)");
	gm_destroy(&gm);
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_e820_small),
		cmocka_unit_test(test_e820_3g),
		cmocka_unit_test(test_e820_4g),
		cmocka_unit_test(test_e820_max),
		cmocka_unit_test(test_fmt_size),
		cmocka_unit_test(test_gdt_and_page_tables),
		cmocka_unit_test(test_regs),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_initrd_placement),
		cmocka_unit_test(test_load_4g_guest),
		cmocka_unit_test(test_load_arguments),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
