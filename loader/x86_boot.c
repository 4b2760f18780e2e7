// SPDX-License-Identifier: Apache-2.0
/*
 * x86 boot plumbing shared by the bzImage and ELF loaders: identification, e820, GDT, identity
 * page tables, the BSP's entry state, command line and initrd placement.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/layout.h"
#include "vmm/loader.h"

void loader_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *loader_fmt_size(uint64_t bytes, char *buf, size_t buflen)
{
	static const char *const unit[] = {"KiB", "MiB", "GiB", "TiB"};

	if (bytes < KiB) {
		snprintf(buf, buflen, "%llu bytes", (unsigned long long)bytes);
		return buf;
	}
	unsigned int u = 0;
	uint64_t div = KiB;
	while (u + 1 < ARRAY_SIZE(unit) && bytes >= div * 1024) {
		div *= 1024;
		u++;
	}
	/* One decimal, truncated rather than rounded so that "4.0 GiB" never means 3.99 GiB. */
	uint64_t tenths = (bytes / div) * 10 + (bytes % div) * 10 / div;
	if (bytes % div == 0)
		snprintf(buf, buflen, "%llu %s", (unsigned long long)(bytes / div), unit[u]);
	else
		snprintf(buf, buflen, "%llu.%llu %s", (unsigned long long)(tenths / 10),
			 (unsigned long long)(tenths % 10), unit[u]);
	return buf;
}

static unsigned int e820_add(struct e820_entry *out, unsigned int n, unsigned int max,
			     uint64_t addr, uint64_t size, uint32_t type)
{
	if (n >= max || size == 0)
		return n;
	out[n] = (struct e820_entry){.addr = addr, .size = size, .type = type};
	return n + 1;
}

unsigned int e820_build(const struct guest_mem *gm, struct e820_entry *out, unsigned int max)
{
	uint64_t low = gm_low_size(gm), high = gm_high_size(gm);
	unsigned int n = 0;

	/*
	 * Conventional memory stops at the EBDA as on a PC; the rest of the first MiB holds our
	 * ACPI tables (LAYOUT_ACPI) and is where a BIOS would be, so it is reserved. Nothing above
	 * low RAM is described: the 3..4 GiB hole is MMIO.
	 */
	n = e820_add(out, n, max, 0, MIN(low, LAYOUT_EBDA), E820_RAM);
	if (low > LAYOUT_EBDA)
		n = e820_add(out, n, max, LAYOUT_EBDA, MIN(low, LAYOUT_HIMEM) - LAYOUT_EBDA,
			     E820_RESERVED);
	if (low > LAYOUT_HIMEM)
		n = e820_add(out, n, max, LAYOUT_HIMEM, low - LAYOUT_HIMEM, E820_RAM);
	if (high)
		n = e820_add(out, n, max, LAYOUT_MMIO_HOLE_END, high, E820_RAM);
	return n;
}

/* Segment descriptor: flags nibble (G, D/B, L, AVL) and access byte (P, DPL, S, type). */
static uint64_t gdt_entry(uint8_t flags, uint8_t access, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000u) << 32) | ((uint64_t)(flags & 0xf) << 52) |
	       ((uint64_t)(limit & 0x000f0000u) << 32) | ((uint64_t)access << 40) |
	       ((uint64_t)(base & 0x00ffffffu) << 16) | (uint64_t)(limit & 0x0000ffffu);
}

#define SEG_FLAGS_G   0x8
#define SEG_FLAGS_DB  0x4
#define SEG_FLAGS_L   0x2
#define SEG_CODE_TYPE 0xb  /* execute/read, accessed */
#define SEG_DATA_TYPE 0x3  /* read/write, accessed */
#define SEG_TSS_BUSY  0xb  /* 32-bit busy TSS; 64-bit busy TSS in long mode */
#define TSS_LIMIT     0x67 /* 104-byte TSS (Intel SDM Vol. 3 §7.2.1/§7.7) */

int x86_boot_write_gdt(struct guest_mem *gm)
{
	/*
	 * One GDT that serves both entries so that a guest reloading a selector gets the segment
	 * it already has: 0x08 for PVH's 32-bit CS, 0x10/0x18 for __BOOT_CS/__BOOT_DS of the 64-bit
	 * boot protocol, 0x20 the TSS the PVH ABI asks for (two slots as a 64-bit descriptor).
	 */
	uint64_t gdt[LOADER_GDT_ENTRIES] = {
		[0] = 0,
		[LOADER_SEL_CODE32 / 8] =
			gdt_entry(SEG_FLAGS_G | SEG_FLAGS_DB, 0x90 | SEG_CODE_TYPE, 0, 0xfffff),
		[LOADER_SEL_CODE64 / 8] =
			gdt_entry(SEG_FLAGS_G | SEG_FLAGS_L, 0x90 | SEG_CODE_TYPE, 0, 0xfffff),
		[LOADER_SEL_DATA / 8] =
			gdt_entry(SEG_FLAGS_G | SEG_FLAGS_DB, 0x90 | SEG_DATA_TYPE, 0, 0xfffff),
		[LOADER_SEL_TSS / 8] = gdt_entry(0, 0x80 | SEG_TSS_BUSY, 0, TSS_LIMIT),
		[LOADER_SEL_TSS / 8 + 1] = 0,
	};
	return gm_write(gm, GPA(LAYOUT_GDT), gdt, sizeof(gdt));
}

#define PTE_P  (1ULL << 0)
#define PTE_RW (1ULL << 1)
#define PTE_PS (1ULL << 7)

int x86_boot_write_page_tables(struct guest_mem *gm)
{
	uint64_t *pml4 = gm_ptr(gm, GPA(LAYOUT_PML4), 4096);
	uint64_t *pdpt = gm_ptr(gm, GPA(LAYOUT_PDPT), 4096);
	uint64_t *pd = gm_ptr(gm, GPA(LAYOUT_PD), 4 * 4096);

	if (!pml4 || !pdpt || !pd)
		return -EFAULT;
	/*
	 * boot.rst "64-bit Boot Protocol": the kernel, zero page and command line must be identity
	 * mapped. The whole first 4 GiB is, with 2 MiB pages, which also covers the MMIO hole
	 * (the kernel builds its own tables before it touches devices).
	 */
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	pml4[0] = LAYOUT_PDPT | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4; i++)
		pdpt[i] = (LAYOUT_PD + i * 4096) | PTE_P | PTE_RW;
	for (uint64_t i = 0; i < 4 * 512; i++)
		pd[i] = (i * 2 * MiB) | PTE_P | PTE_RW | PTE_PS;
	return 0;
}

static struct kvm_segment seg_flat(uint16_t sel, uint8_t type, bool code64)
{
	return (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = code64 ? 0 : 1,
		.s = 1,
		.l = code64 ? 1 : 0,
		.g = 1,
	};
}

#define X86_CR0_PE	 (1ULL << 0)
#define X86_CR0_ET	 (1ULL << 4)
#define X86_CR0_NE	 (1ULL << 5)
#define X86_CR0_PG	 (1ULL << 31)
#define X86_CR4_PAE	 (1ULL << 5)
#define X86_EFER_LME	 (1ULL << 8)
#define X86_EFER_LMA	 (1ULL << 10)
#define APIC_BASE_BSP	 (1ULL << 8)
#define APIC_BASE_ENABLE (1ULL << 11)

static void sregs_common(struct kvm_sregs *s, uint16_t cs_sel, bool code64)
{
	memset(s, 0, sizeof(*s));
	s->cs = seg_flat(cs_sel, SEG_CODE_TYPE, code64);
	s->ds = s->es = s->fs = s->gs = s->ss = seg_flat(LOADER_SEL_DATA, SEG_DATA_TYPE, false);
	s->tr = (struct kvm_segment){.base = 0,
				     .limit = TSS_LIMIT,
				     .selector = LOADER_SEL_TSS,
				     .type = SEG_TSS_BUSY,
				     .present = 1};
	/* No LDT: the reset value (an LDT type, limit 0xffff) that KVM accepts in every mode. */
	s->ldt = (struct kvm_segment){.limit = 0xffff, .type = 2, .present = 1};
	s->gdt.base = LAYOUT_GDT;
	s->gdt.limit = LOADER_GDT_ENTRIES * 8 - 1;
	/* An empty IDT: an exception before the kernel loads its own is a clean triple fault
	 * (shutdown exit) rather than a jump through whatever is at address 0. */
	s->idt.base = 0;
	s->idt.limit = 0;
	s->apic_base = LAYOUT_LAPIC | APIC_BASE_ENABLE | APIC_BASE_BSP;
}

static void regs_common(struct kvm_regs *r, uint64_t entry)
{
	memset(r, 0, sizeof(*r));
	r->rip = entry;
	r->rflags = 2; /* bit 1 is reserved-one; IF clear: interrupts off */
	r->rsp = LAYOUT_BOOT_STACK;
	r->rbp = LAYOUT_BOOT_STACK;
}

void x86_boot_regs_long(uint64_t entry, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	/* boot.rst "64-bit Boot Protocol": long mode, paging on with an identity map, CS
	 * __BOOT_CS, DS/ES/SS __BOOT_DS, interrupts off, RSI = struct boot_params. */
	regs_common(regs, entry);
	regs->rsi = LAYOUT_ZERO_PAGE;
	sregs_common(sregs, LOADER_SEL_CODE64, true);
	/* ET/NE: the x87 state a modern CPU has; CD/NW clear so the guest runs with caches on. */
	sregs->cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	sregs->cr3 = LAYOUT_PML4;
	sregs->cr4 = X86_CR4_PAE;
	sregs->efer = X86_EFER_LME | X86_EFER_LMA;
}

void x86_boot_regs_pvh(uint64_t entry, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	/* Xen docs/misc/pvh.pandoc "x86/HVM direct boot ABI": 32-bit protected mode, paging off,
	 * CS flat 32-bit read/exec, DS/ES/SS flat read/write, TR a 32-bit TSS with base 0 and limit
	 * 0x67, CR0 PE and ET only, CR4 0, EFLAGS.IF/VM clear, EBX = start_info. */
	regs_common(regs, entry);
	regs->rbx = LAYOUT_PVH_INFO;
	sregs_common(sregs, LOADER_SEL_CODE32, false);
	sregs->cr0 = X86_CR0_PE | X86_CR0_ET;
	sregs->cr3 = 0;
	sregs->cr4 = 0;
	sregs->efer = 0;
}

int x86_boot_write_cmdline(struct guest_mem *gm, const char *cmdline, size_t max, char *err,
			   size_t errlen)
{
	if (!cmdline)
		cmdline = "";
	size_t len = strnlen(cmdline, LAYOUT_CMDLINE_MAX);

	max = MIN(max, (size_t)LAYOUT_CMDLINE_MAX - 1);
	if (len > max) {
		loader_err(err, errlen, "cmdline: %s%zu bytes, the kernel accepts at most %zu",
			   len >= LAYOUT_CMDLINE_MAX ? "over " : "", len, max);
		return -E2BIG;
	}
	if (gm_write(gm, GPA(LAYOUT_CMDLINE), cmdline, len + 1) < 0) {
		loader_err(err, errlen,
			   "cmdline: guest RAM too small for the command line at 0x%llx",
			   (unsigned long long)LAYOUT_CMDLINE);
		return -ENOMEM;
	}
	return 0;
}

int x86_boot_place_initrd(struct guest_mem *gm, const uint8_t *initrd, size_t len, uint64_t floor,
			  uint64_t limit, uint64_t *start, char *err, size_t errlen)
{
	char sz[32];

	*start = 0;
	if (len == 0)
		return 0;
	if (!initrd) {
		loader_err(err, errlen, "initrd: no data for %zu bytes", len);
		return -EINVAL;
	}
	/* boot.rst: the initrd goes as high as possible below initrd_addr_max; we also stay in
	 * low RAM (the 64-bit entry only identity-maps 4 GiB and PVH runs with paging off). */
	uint64_t top = MIN(MIN(limit, gm_low_size(gm)), LAYOUT_MMIO_HOLE_END);
	floor = ALIGN_UP(MAX(floor, LAYOUT_HIMEM), 4096ULL);
	if ((uint64_t)len > top || ALIGN_DOWN(top - len, 4096ULL) < floor) {
		loader_err(err, errlen,
			   "initrd: %s does not fit in guest RAM below 0x%llx (above the kernel, "
			   "which ends at 0x%llx)",
			   loader_fmt_size(len, sz, sizeof(sz)),
			   (unsigned long long)(top ? top - 1 : 0), (unsigned long long)floor);
		return -ENOMEM;
	}
	uint64_t addr = ALIGN_DOWN(top - len, 4096ULL);
	if (gm_write(gm, GPA(addr), initrd, len) < 0) {
		loader_err(err, errlen, "initrd: cannot write %zu bytes at 0x%llx", len,
			   (unsigned long long)addr);
		return -EFAULT;
	}
	*start = addr;
	return 0;
}

void x86_boot_fill_zero_page(const struct guest_mem *gm, struct bz_boot_params *bp,
			     uint64_t initrd_start, uint64_t initrd_size, uint64_t rsdp)
{
	bp->hdr.type_of_loader = BZ_LOADER_UNDEF;
	/*
	 * CAN_USE_HEAP and heap_end_ptr describe the real-mode setup code's heap; with the 64-bit
	 * entry that code never runs, so they are left clear. KEEP_SEGMENTS is obsolete (2.07+).
	 */
	bp->hdr.loadflags &= (uint8_t) ~(BZ_CAN_USE_HEAP | BZ_KEEP_SEGMENTS);
	bp->hdr.loadflags |= BZ_LOADED_HIGH;
	bp->hdr.heap_end_ptr = 0;
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE;
	bp->ext_cmd_line_ptr = (uint32_t)(LAYOUT_CMDLINE >> 32);
	bp->hdr.ramdisk_image = (uint32_t)initrd_start;
	bp->ext_ramdisk_image = (uint32_t)(initrd_start >> 32);
	bp->hdr.ramdisk_size = (uint32_t)initrd_size;
	bp->ext_ramdisk_size = (uint32_t)(initrd_size >> 32);
	/* No setup_data chain: the kernel would follow a pointer we did not write. */
	bp->hdr.setup_data = 0;
	bp->e820_entries = (uint8_t)e820_build(gm, bp->e820_table, E820_MAX_ENTRIES_ZEROPAGE);
	if (rsdp)
		bp->acpi_rsdp_addr = rsdp;
}

int loader_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_result *out,
		char *err, size_t errlen)
{
	static const uint8_t elf_magic[4] = {0x7f, 'E', 'L', 'F'};
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if (!gm || !cfg || !out) {
		loader_err(err, errlen, "loader: missing argument");
		return -EINVAL;
	}
	memset(out, 0, sizeof(*out));
	if (!cfg->kernel || cfg->kernel_len == 0) {
		loader_err(err, errlen, "kernel: empty file");
		return -ENOEXEC;
	}
	if (cfg->initrd_len && !cfg->initrd) {
		loader_err(err, errlen, "initrd: no data for %zu bytes", cfg->initrd_len);
		return -EINVAL;
	}
	/* The boot area below 1 MiB (GDT, zero page, page tables, command line) must exist. */
	if (gm_low_size(gm) < LAYOUT_HIMEM) {
		loader_err(err, errlen,
			   "guest RAM: %llu KiB is too small to boot (need 1 MiB + kernel)",
			   (unsigned long long)(gm_low_size(gm) / KiB));
		return -ENOMEM;
	}

	if (cfg->kernel_len >= sizeof(elf_magic) &&
	    memcmp(cfg->kernel, elf_magic, sizeof(elf_magic)) == 0) {
		ret = elf_load(gm, cfg, out, err, errlen);
	} else if (cfg->kernel_len >= BZ_HDR_OFFSET + offsetof(struct bz_setup_header, version) &&
		   memcmp(cfg->kernel + 0x202, "HdrS", 4) == 0) {
		ret = bzimage_load(gm, cfg, out, err, errlen);
	} else {
		loader_err(err, errlen,
			   "kernel: not a bzImage or ELF (no HdrS signature, no ELF magic)");
		return -ENOEXEC;
	}
	if (ret < 0)
		return ret;

	ret = x86_boot_write_gdt(gm);
	if (ret == 0 && out->format != KERNEL_ELF_PVH)
		ret = x86_boot_write_page_tables(gm);
	if (ret < 0)
		loader_err(err, errlen, "guest RAM: cannot write the boot GDT and page tables");
	return ret;
}
