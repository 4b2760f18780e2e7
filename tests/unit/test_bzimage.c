// SPDX-License-Identifier: Apache-2.0
/*
 * bzImage loader: synthetic images (good and malformed) built here, and the real Debian bzImage
 * named by VMM_TEST_BZIMAGE when it is set.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "vmm/layout.h"
#include "vmm/loader.h"

#define SETUP_SECTS 4
#define SETUP_LEN   ((SETUP_SECTS + 1) * 512)
#define PM_LEN	    (64 * 1024)

struct img {
	uint8_t *p;
	size_t len;
};

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, 2);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, 8);
}

/* A minimal but complete 64-bit-capable bzImage as boot.rst describes it. */
static struct img mk_bz(void)
{
	struct img im = {.len = SETUP_LEN + PM_LEN};
	im.p = calloc(1, im.len);
	assert_non_null(im.p);
	uint8_t *p = im.p;
	p[0x1f1] = SETUP_SECTS;
	put32(p, 0x1f4, PM_LEN / 16); /* syssize */
	put16(p, 0x1fe, 0xaa55);      /* boot_flag */
	p[0x200] = 0xeb;	      /* jmp short */
	p[0x201] = 0x6a;	      /* header ends at 0x26c, like Linux 6.1 */
	memcpy(p + 0x202, "HdrS", 4);
	put16(p, 0x206, 0x020f); /* version */
	p[0x211] = BZ_LOADED_HIGH;
	put32(p, 0x214, 0x100000);   /* code32_start */
	put32(p, 0x22c, 0x7fffffff); /* initrd_addr_max */
	put32(p, 0x230, 0x200000);   /* kernel_alignment */
	p[0x234] = 1;		     /* relocatable */
	p[0x235] = 21;		     /* min_alignment */
	put16(p, 0x236, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
	put32(p, 0x238, 2047);		  /* cmdline_size */
	put32(p, 0x248, 0x100);		  /* payload_offset */
	put32(p, 0x24c, 0x1000);	  /* payload_length */
	put64(p, 0x258, 0x1000000);	  /* pref_address */
	put32(p, 0x260, 4 * 1024 * 1024); /* init_size */
	for (size_t i = 0; i < PM_LEN; i++)
		p[SETUP_LEN + i] = (uint8_t)(i * 7 + 3);
	return im;
}

struct fixture {
	struct guest_mem gm;
	struct img im;
	struct boot_result res;
	char err[256];
};

static int setup_64m(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f || gm_create(&f->gm, 64 * MiB) < 0)
		return -1;
	f->im = mk_bz();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	gm_destroy(&f->gm);
	free(f->im.p);
	free(f);
	return 0;
}

static int load(struct fixture *f, const char *cmdline, const uint8_t *initrd, size_t initrd_len)
{
	struct boot_config cfg = {.kernel = f->im.p,
				  .kernel_len = f->im.len,
				  .initrd = initrd,
				  .initrd_len = initrd_len,
				  .cmdline = cmdline,
				  .acpi_rsdp = LAYOUT_ACPI};
	f->err[0] = '\0';
	return loader_load(&f->gm, &cfg, &f->res, f->err, sizeof(f->err));
}

/* Every failure names its cause on one line. */
static void expect_fail(struct fixture *f, int rc, int want, const char *substr)
{
	assert_int_equal(rc, want);
	assert_non_null(strstr(f->err, substr));
	assert_null(strchr(f->err, '\n'));
	print_message("    ok: %s\n", f->err);
}

static const struct bz_boot_params *zero_page(struct fixture *f)
{
	const struct bz_boot_params *bp = gm_ptr(&f->gm, GPA(LAYOUT_ZERO_PAGE), sizeof(*bp));
	assert_non_null(bp);
	return bp;
}

static void test_parse_good(void **state)
{
	struct fixture *f = *state;
	struct bzimage_info bi;

	assert_int_equal(bzimage_parse(f->im.p, f->im.len, &bi, f->err, sizeof(f->err)), 0);
	assert_int_equal(bi.version, 0x020f);
	assert_int_equal(bi.setup_len, SETUP_LEN);
	assert_int_equal(bi.pm_offset, SETUP_LEN);
	assert_int_equal(bi.pm_len, PM_LEN);
	assert_int_equal(bi.hdr_len, 0x26c - 0x1f1);
	assert_int_equal(bi.kernel_alignment, 0x200000);
	assert_true(bi.relocatable);
	assert_int_equal(bi.pref_address, 0x1000000);
	assert_int_equal(bi.init_size, 4 * MiB);
	assert_int_equal(bi.cmdline_size, 2047);
	assert_int_equal(bi.initrd_addr_max, 0x7fffffff);
}

static void test_load_good(void **state)
{
	struct fixture *f = *state;
	static const char cmd[] = "console=ttyS0 root=/dev/vda rw";
	uint8_t initrd[10000];

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i ^ 0x5a);
	assert_int_equal(load(f, cmd, initrd, sizeof(initrd)), 0);
	const struct boot_result *r = &f->res;

	assert_int_equal(r->format, KERNEL_BZIMAGE);
	assert_int_equal(r->kernel_start, 0x1000000);
	assert_int_equal(r->kernel_end, 0x1000000 + 4 * MiB);
	/* initrd page-aligned at the top of low RAM */
	assert_int_equal(r->initrd_start, ALIGN_DOWN(64 * MiB - sizeof(initrd), 4096ULL));
	assert_int_equal(r->initrd_size, sizeof(initrd));
	assert_memory_equal(gm_ptr(&f->gm, GPA(r->initrd_start), sizeof(initrd)), initrd,
			    sizeof(initrd));
	/* protected-mode part */
	assert_memory_equal(gm_ptr(&f->gm, GPA(0x1000000), PM_LEN), f->im.p + SETUP_LEN, PM_LEN);
	/* command line */
	assert_string_equal((const char *)gm_ptr(&f->gm, GPA(LAYOUT_CMDLINE), sizeof(cmd)), cmd);

	/* registers: boot.rst 64-bit boot protocol */
	assert_int_equal(r->regs.rip, 0x1000200);
	assert_int_equal(r->regs.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(r->regs.rflags, 2);
	assert_int_equal(r->regs.rsp, LAYOUT_BOOT_STACK);
	assert_int_equal(r->regs.rax, 0);
	assert_int_equal(r->sregs.cs.selector, 0x10);
	assert_int_equal(r->sregs.cs.l, 1);
	assert_int_equal(r->sregs.cs.db, 0);
	assert_int_equal(r->sregs.cs.type, 0xb);
	assert_int_equal(r->sregs.cs.present, 1);
	assert_int_equal(r->sregs.cs.s, 1);
	assert_int_equal(r->sregs.cs.g, 1);
	assert_int_equal(r->sregs.cs.limit, 0xffffffff);
	assert_int_equal(r->sregs.ds.selector, 0x18);
	assert_int_equal(r->sregs.es.selector, 0x18);
	assert_int_equal(r->sregs.ss.selector, 0x18);
	assert_int_equal(r->sregs.ss.type, 0x3);
	assert_int_equal(r->sregs.ss.db, 1);
	assert_int_equal(r->sregs.tr.selector, 0x20);
	assert_int_equal(r->sregs.tr.type, 0xb);
	assert_int_equal(r->sregs.tr.limit, 0x67);
	assert_int_equal(r->sregs.cr0, 0x80000031);
	assert_int_equal(r->sregs.cr3, LAYOUT_PML4);
	assert_int_equal(r->sregs.cr4, 0x20);
	assert_int_equal(r->sregs.efer, 0x500);
	assert_int_equal(r->sregs.gdt.base, LAYOUT_GDT);
	assert_int_equal(r->sregs.gdt.limit, 6 * 8 - 1);
	assert_int_equal(r->sregs.apic_base, 0xfee00900);

	/* zero page */
	const struct bz_boot_params *bp = zero_page(f);
	assert_memory_equal(&bp->hdr, f->im.p + 0x1f1,
			    offsetof(struct bz_setup_header, type_of_loader));
	assert_int_equal(bp->hdr.header, BZ_HDRS_MAGIC);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.loadflags, BZ_LOADED_HIGH);
	assert_int_equal(bp->hdr.code32_start, 0x1000000);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp->ext_cmd_line_ptr, 0);
	assert_int_equal(bp->hdr.ramdisk_image, r->initrd_start);
	assert_int_equal(bp->hdr.ramdisk_size, sizeof(initrd));
	assert_int_equal(bp->ext_ramdisk_image, 0);
	assert_int_equal(bp->ext_ramdisk_size, 0);
	assert_int_equal(bp->hdr.setup_data, 0);
	assert_int_equal(bp->hdr.init_size, 4 * MiB);
	assert_int_equal(bp->acpi_rsdp_addr, LAYOUT_ACPI);
	assert_int_equal(bp->sentinel, 0);
	assert_int_equal(bp->e820_entries, 3);
	assert_int_equal(bp->e820_table[0].addr, 0);
	assert_int_equal(bp->e820_table[0].size, LAYOUT_EBDA);
	assert_int_equal(bp->e820_table[0].type, E820_RAM);
	assert_int_equal(bp->e820_table[1].addr, LAYOUT_EBDA);
	assert_int_equal(bp->e820_table[1].size, 0x100000 - LAYOUT_EBDA);
	assert_int_equal(bp->e820_table[1].type, E820_RESERVED);
	assert_int_equal(bp->e820_table[2].addr, 0x100000);
	assert_int_equal(bp->e820_table[2].size, 63 * MiB);
	assert_int_equal(bp->e820_table[2].type, E820_RAM);

	/* identity page tables and GDT written */
	const uint64_t *pml4 = gm_ptr(&f->gm, GPA(LAYOUT_PML4), 8);
	const uint64_t *pd = gm_ptr(&f->gm, GPA(LAYOUT_PD), 4 * 4096);
	assert_int_equal(pml4[0], LAYOUT_PDPT | 3);
	assert_int_equal(pd[8], 8 * 2 * MiB | 0x83);
	const uint64_t *gdt = gm_ptr(&f->gm, GPA(LAYOUT_GDT), 6 * 8);
	assert_int_equal(gdt[2], 0x00af9b000000ffffULL);
	assert_int_equal(gdt[3], 0x00cf93000000ffffULL);
}

static void test_load_no_initrd_empty_cmdline(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(load(f, "", NULL, 0), 0);
	assert_int_equal(f->res.initrd_start, 0);
	const struct bz_boot_params *bp = zero_page(f);
	assert_int_equal(bp->hdr.ramdisk_image, 0);
	assert_int_equal(bp->hdr.ramdisk_size, 0);
	assert_int_equal(*(const char *)gm_ptr(&f->gm, GPA(LAYOUT_CMDLINE), 1), '\0');
	/* NULL command line is taken as "" */
	assert_int_equal(load(f, NULL, NULL, 0), 0);
}

static void test_old_protocol_keeps_rsdp_out(void **state)
{
	struct fixture *f = *state;

	/* 2.13 has no acpi_rsdp_addr in boot_params: leave it zero. */
	put16(f->im.p, 0x206, 0x020d);
	assert_int_equal(load(f, "", NULL, 0), 0);
	assert_int_equal(zero_page(f)->acpi_rsdp_addr, 0);
}

static void test_loader_clears_heap_flag(void **state)
{
	struct fixture *f = *state;

	f->im.p[0x211] = BZ_LOADED_HIGH | BZ_CAN_USE_HEAP | BZ_QUIET_FLAG;
	assert_int_equal(load(f, "", NULL, 0), 0);
	assert_int_equal(zero_page(f)->hdr.loadflags, BZ_LOADED_HIGH | BZ_QUIET_FLAG);
}

static void test_setup_sects_zero_means_four(void **state)
{
	struct fixture *f = *state;
	struct bzimage_info bi;

	f->im.p[0x1f1] = 0;
	assert_int_equal(bzimage_parse(f->im.p, f->im.len, &bi, f->err, sizeof(f->err)), 0);
	assert_int_equal(bi.setup_len, 5 * 512);
}

static void test_small_guest_relocates(void **state)
{
	struct fixture *f = *state;
	struct guest_mem small;

	/*
	 * 8 MiB: no room at 16 MiB. Loading a relocatable kernel lower would not help (its
	 * decompressor moves to LOAD_PHYSICAL_ADDR = pref_address anyway), so it is refused with
	 * a message that says where the kernel needs RAM.
	 */
	assert_int_equal(gm_create(&small, 8 * MiB), 0);
	struct boot_config cfg = {.kernel = f->im.p, .kernel_len = f->im.len, .cmdline = ""};
	int rc = loader_load(&small, &cfg, &f->res, f->err, sizeof(f->err));
	gm_destroy(&small);
	expect_fail(f, rc, -ENOMEM, "kernel: needs 4 MiB (init_size) from 0x1000000");
}

static void test_not_relocatable_does_not_fit(void **state)
{
	struct fixture *f = *state;
	struct guest_mem small;

	f->im.p[0x234] = 0;
	assert_int_equal(gm_create(&small, 8 * MiB), 0);
	struct boot_config cfg = {.kernel = f->im.p, .kernel_len = f->im.len, .cmdline = ""};
	int rc = loader_load(&small, &cfg, &f->res, f->err, sizeof(f->err));
	gm_destroy(&small);
	expect_fail(f, rc, -ENOMEM, "kernel: needs 4 MiB (init_size) from 0x1000000");
}

static void test_choose_unaligned_pref(void **state)
{
	struct fixture *f = *state;
	struct bzimage_info bi;
	uint64_t addr;

	put64(f->im.p, 0x258, 0x1100000); /* not 2 MiB aligned: rounded up to kernel_alignment */
	assert_int_equal(bzimage_parse(f->im.p, f->im.len, &bi, f->err, sizeof(f->err)), 0);
	assert_int_equal(bzimage_choose_load_addr(&bi, 64 * MiB, &addr, NULL, 0), 0);
	assert_int_equal(addr, 18 * MiB);
	/* pref_address overflowing with init_size must not wrap around */
	bi.pref_address = UINT64_MAX - 4096;
	bi.relocatable = false;
	assert_int_equal(bzimage_choose_load_addr(&bi, 64 * MiB, &addr, NULL, 0), -ENOMEM);
}

static void test_bad_truncated_header(void **state)
{
	struct fixture *f = *state;
	struct bzimage_info bi;

	int rc = bzimage_parse(f->im.p, 0x210, &bi, f->err, sizeof(f->err));
	expect_fail(f, rc, -EINVAL, "truncated inside its setup header");
	f->im.len = 0x100;
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC,
		    "kernel: not a bzImage or ELF (no HdrS signature, no ELF magic)");
}

static void test_bad_magic(void **state)
{
	struct fixture *f = *state;

	memcpy(f->im.p + 0x202, "HdrX", 4);
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC,
		    "kernel: not a bzImage or ELF (no HdrS signature, no ELF magic)");
	struct bzimage_info bi;
	expect_fail(f, bzimage_parse(f->im.p, f->im.len, &bi, f->err, sizeof(f->err)), -ENOEXEC,
		    "no HdrS");
}

static void test_bad_boot_flag(void **state)
{
	struct fixture *f = *state;

	put16(f->im.p, 0x1fe, 0x1234);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "boot_flag is 0x1234, not 0xaa55");
}

static void test_old_protocol(void **state)
{
	struct fixture *f = *state;

	put16(f->im.p, 0x206, 0x020a);
	expect_fail(
		f, load(f, "", NULL, 0), -ENOEXEC,
		"kernel: bzImage boot protocol 2.10 is too old (need 2.12 for the 64-bit entry)");
}

static void test_short_header_jump(void **state)
{
	struct fixture *f = *state;

	f->im.p[0x201] = 0x50; /* header ends at 0x252: no pref_address/init_size */
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "setup header ends at 0x252");
}

static void test_no_xlf_kernel_64(void **state)
{
	struct fixture *f = *state;

	put16(f->im.p, 0x236, XLF_CAN_BE_LOADED_ABOVE_4G);
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC, "XLF_KERNEL_64");
}

static void test_not_loaded_high(void **state)
{
	struct fixture *f = *state;

	f->im.p[0x211] = 0;
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC, "zImage");
}

static void test_syssize_beyond_file(void **state)
{
	struct fixture *f = *state;

	put32(f->im.p, 0x1f4, PM_LEN / 16 + 1);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL,
		    "kernel: bzImage truncated: syssize says 65552");
	put32(f->im.p, 0x1f4, 0xffffffff); /* * 16 must not wrap */
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "truncated");
	put32(f->im.p, 0x1f4, 0);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "syssize is 0");
}

static void test_truncated_file(void **state)
{
	struct fixture *f = *state;

	f->im.len -= 16;
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "truncated");
}

static void test_huge_setup_sects(void **state)
{
	struct fixture *f = *state;

	f->im.p[0x1f1] = 255;
	f->im.len = 100 * 1024;
	expect_fail(f, load(f, "", NULL, 0), -EINVAL,
		    "setup_sects 255 means 131072 bytes of setup code, the file has only 102400");
}

static void test_bad_alignment(void **state)
{
	struct fixture *f = *state;

	put32(f->im.p, 0x230, 0x300000);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL,
		    "kernel_alignment 0x300000 is not a power of two");
	put32(f->im.p, 0x230, 0);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "not a power of two");
}

static void test_init_size_too_small(void **state)
{
	struct fixture *f = *state;

	put32(f->im.p, 0x260, PM_LEN - 1);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL,
		    "init_size 0xffff is smaller than the kernel");
}

static void test_payload_outside(void **state)
{
	struct fixture *f = *state;

	put32(f->im.p, 0x248, 0xfffffff0);
	put32(f->im.p, 0x24c, 0x100);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "payload");
}

static void test_fixed_below_1m(void **state)
{
	struct fixture *f = *state;

	f->im.p[0x234] = 0;
	put64(f->im.p, 0x258, 0x10000);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "not relocatable and wants 0x10000");
}

static void test_cmdline_too_long(void **state)
{
	struct fixture *f = *state;
	char cmd[3001];

	memset(cmd, 'a', 3000);
	cmd[3000] = '\0';
	expect_fail(f, load(f, cmd, NULL, 0), -E2BIG,
		    "cmdline: 3000 bytes, the kernel accepts at most 2047");
	/* exactly cmdline_size is fine (the limit excludes the NUL) */
	cmd[2047] = '\0';
	assert_int_equal(load(f, cmd, NULL, 0), 0);
	put32(f->im.p, 0x238, 100);
	expect_fail(f, load(f, cmd, NULL, 0), -E2BIG, "at most 100");
}

static void test_initrd_too_big(void **state)
{
	struct fixture *f = *state;

	/* 64 MiB guest, kernel at 16..20 MiB: 44 MiB + a page cannot fit above it. */
	size_t len = 44 * MiB + 1;
	uint8_t *big = calloc(1, len);
	assert_non_null(big);
	int rc = load(f, "", big, len);
	expect_fail(f, rc, -ENOMEM, "initrd: 44.0 MiB does not fit in guest RAM");
	/* exactly 44 MiB fits, right above the kernel */
	assert_int_equal(load(f, "", big, 44 * MiB), 0);
	assert_int_equal(f->res.initrd_start, 20 * MiB);
	free(big);
}

static void test_initrd_addr_max(void **state)
{
	struct fixture *f = *state;
	uint8_t initrd[4096] = {1, 2, 3};

	put32(f->im.p, 0x22c, 32 * MiB - 1);
	assert_int_equal(load(f, "", initrd, sizeof(initrd)), 0);
	assert_int_equal(f->res.initrd_start, 32 * MiB - 4096);
	/* and a limit below the kernel's end is refused */
	put32(f->im.p, 0x22c, 18 * MiB - 1);
	expect_fail(f, load(f, "", initrd, sizeof(initrd)), -ENOMEM,
		    "below 0x11fffff (above the kernel, which ends at 0x1400000)");
}

static const char *env_or_skip(const char *name)
{
	const char *p = getenv(name);
	if (!p || !*p) {
		print_message("    skipped: %s is not set (path of a Debian kernel to test with)\n",
			      name);
		skip();
	}
	return p;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	long n = ftell(fp);
	assert_true(n > 0);
	rewind(fp);
	uint8_t *buf = malloc((size_t)n);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

static void test_real_bzimage(void **state)
{
	struct fixture *f = *state;
	const char *path = env_or_skip("VMM_TEST_BZIMAGE");
	struct guest_mem gm;
	struct bzimage_info bi;
	size_t len;
	uint8_t *img = read_file(path, &len);
	uint8_t initrd[8192] = {0x30, 0x37, 0x30, 0x37};

	assert_int_equal(bzimage_parse(img, len, &bi, f->err, sizeof(f->err)), 0);
	print_message(
		"    %s: protocol %u.%u, setup %zu, kernel %zu, init_size 0x%x, pref 0x%llx\n",
		path, bi.version >> 8, bi.version & 0xff, bi.setup_len, bi.pm_len, bi.init_size,
		(unsigned long long)bi.pref_address);
	assert_true(bi.version >= 0x020c);
	assert_true(bi.xloadflags & XLF_KERNEL_64);
	assert_true(bi.pm_offset + bi.pm_len <= len);

	assert_int_equal(gm_create(&gm, 256 * MiB), 0);
	struct boot_config cfg = {.kernel = img,
				  .kernel_len = len,
				  .initrd = initrd,
				  .initrd_len = sizeof(initrd),
				  .cmdline = "console=ttyS0",
				  .acpi_rsdp = LAYOUT_ACPI};
	int rc = loader_load(&gm, &cfg, &f->res, f->err, sizeof(f->err));
	if (rc)
		print_message("    error: %s\n", f->err);
	assert_int_equal(rc, 0);
	assert_int_equal(f->res.format, KERNEL_BZIMAGE);
	assert_int_equal(f->res.kernel_start, bi.pref_address);
	assert_int_equal(f->res.regs.rip, bi.pref_address + 0x200);
	assert_memory_equal(gm_ptr(&gm, GPA(f->res.kernel_start), bi.pm_len), img + bi.pm_offset,
			    bi.pm_len);
	const struct bz_boot_params *bp = gm_ptr(&gm, GPA(LAYOUT_ZERO_PAGE), sizeof(*bp));
	assert_int_equal(bp->hdr.version, bi.version);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.ramdisk_image, 256 * MiB - sizeof(initrd));
	assert_int_equal(bp->e820_entries, 3);

	/* the same kernel does not fit in 32 MiB (init_size is tens of MiB) */
	gm_destroy(&gm);
	assert_int_equal(gm_create(&gm, 32 * MiB), 0);
	rc = loader_load(&gm, &cfg, &f->res, f->err, sizeof(f->err));
	expect_fail(f, rc, -ENOMEM, "kernel: needs");
	gm_destroy(&gm);
	free(img);
}

/* Deterministic mutations of header bytes: whatever the result, no crash (ASan/UBSan builds),
 * and a failure always comes with a one-line message. */
static void test_mutations(void **state)
{
	struct fixture *f = *state;
	uint8_t *orig = malloc(f->im.len);
	uint32_t seed = 12345;
	unsigned int ok = 0;

	assert_non_null(orig);
	memcpy(orig, f->im.p, f->im.len);
	for (int iter = 0; iter < 4000; iter++) {
		memcpy(f->im.p, orig, f->im.len);
		for (int m = 0; m < 1 + iter % 4; m++) {
			seed = seed * 1103515245u + 12345u;
			uint32_t r = seed >> 8;
			size_t off = 0x1f1 + (r % 0x80);
			seed = seed * 1103515245u + 12345u;
			f->im.p[off] = (uint8_t)(seed >> 16);
		}
		int rc = load(f, "console=ttyS0", (const uint8_t *)"initrd", 6);
		if (rc == 0) {
			ok++;
			assert_true(f->res.kernel_end > f->res.kernel_start);
		} else {
			assert_true(rc < 0);
			assert_true(f->err[0] != '\0');
			assert_null(strchr(f->err, '\n'));
		}
	}
	print_message("    %u of 4000 mutated images still loaded\n", ok);
	free(orig);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_64m, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_parse_good),
		T(test_load_good),
		T(test_load_no_initrd_empty_cmdline),
		T(test_old_protocol_keeps_rsdp_out),
		T(test_loader_clears_heap_flag),
		T(test_setup_sects_zero_means_four),
		T(test_small_guest_relocates),
		T(test_not_relocatable_does_not_fit),
		T(test_choose_unaligned_pref),
		T(test_bad_truncated_header),
		T(test_bad_magic),
		T(test_bad_boot_flag),
		T(test_old_protocol),
		T(test_short_header_jump),
		T(test_no_xlf_kernel_64),
		T(test_not_loaded_high),
		T(test_syssize_beyond_file),
		T(test_truncated_file),
		T(test_huge_setup_sects),
		T(test_bad_alignment),
		T(test_init_size_too_small),
		T(test_payload_outside),
		T(test_fixed_below_1m),
		T(test_cmdline_too_long),
		T(test_initrd_too_big),
		T(test_initrd_addr_max),
		T(test_real_bzimage),
		T(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
