/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Linux x86 boot: bzImage (64-bit boot protocol), vmlinux/other ELF (PVH entry when the Xen
 * PHYS32_ENTRY note is present, else the 64-bit entry), initrd and command line placement, the
 * e820 map, and the BSP register state at entry. Pure functions over buffers and guest_mem: no
 * KVM calls, so everything here is unit-tested without /dev/kvm.
 *
 * What loader_load() writes into guest RAM (include/vmm/layout.h):
 *   LAYOUT_GDT         GDT: 0x08 32-bit flat code, 0x10 64-bit code (__BOOT_CS), 0x18 flat data
 *                      (__BOOT_DS), 0x20 busy TSS (base 0, limit 0x67)
 *   LAYOUT_ZERO_PAGE   struct boot_params (bzImage, ELF 64-bit entry) or
 *   LAYOUT_PVH_INFO    hvm_start_info (+ LAYOUT_PVH_MEMMAP, LAYOUT_PVH_MODLIST) for PVH
 *   LAYOUT_PML4..      identity map of the first 4 GiB with 2 MiB pages (64-bit entries only)
 *   LAYOUT_CMDLINE     the command line, NUL-terminated
 *   kernel             at the address reported in boot_result
 *   initrd             page-aligned at the top of low RAM
 * It does not write the ACPI tables (loader/acpi.c) nor anything else below 1 MiB.
 */
#ifndef VMM_LOADER_H
#define VMM_LOADER_H

#include <stdbool.h>
#include <linux/kvm.h>

#include "vmm/compiler.h"
#include "vmm/bootparam.h"
#include "vmm/guest_mem.h"

struct boot_config {
	const uint8_t *kernel; /* whole file in memory */
	size_t kernel_len;
	const uint8_t *initrd; /* may be NULL/0 */
	size_t initrd_len;
	const char *cmdline; /* may be "" (NULL is taken as "") */
	uint64_t acpi_rsdp;  /* gpa of the RSDP (0 = none) */
};

enum kernel_format { KERNEL_BZIMAGE, KERNEL_ELF_PVH, KERNEL_ELF_64 };

struct boot_result {
	enum kernel_format format;
	/* BSP general registers at entry: rip, rsi = zero page (64-bit) or rbx = start_info (PVH),
	 * rsp = rbp = LAYOUT_BOOT_STACK, rflags = 2 (interrupts off). */
	struct kvm_regs regs;
	/* BSP system registers, complete: apic_base is the reset value (LAPIC enabled, BSP) and
	 * interrupt_bitmap is empty, so the whole struct can go to KVM_SET_SREGS as it is. */
	struct kvm_sregs sregs;
	uint64_t kernel_start, kernel_end; /* guest physical [start, end): what the kernel owns */
	uint64_t initrd_start;		   /* 0 if none */
	uint64_t initrd_size;
};

/* GDT selectors (boot.rst "64-bit Boot Protocol" requires __BOOT_CS 0x10, __BOOT_DS 0x18). */
#define LOADER_SEL_CODE32  0x08
#define LOADER_SEL_CODE64  0x10
#define LOADER_SEL_DATA	   0x18
#define LOADER_SEL_TSS	   0x20
#define LOADER_GDT_ENTRIES 6 /* the 64-bit TSS descriptor takes two slots */

#define LOADER_ELF_CMDLINE_MAX                                                                     \
	2047		       /* what an ELF kernel is told (no setup header says otherwise) */
#define LOADER_ELF_MAX_LOAD 16 /* PT_LOAD segments accepted */

/*
 * Identify, validate and load; on error return -errno and write one line into err (no newline)
 * naming what is wrong in terms a user understands. err may be NULL.
 * -ENOEXEC: not a kernel we can boot; -EINVAL: a malformed image or option; -ENOMEM: does not
 * fit in guest RAM; -E2BIG: command line too long.
 */
int loader_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_result *out,
		char *err, size_t errlen) WUR;

/* ---- bzImage (loader/bzimage.c) ---- */
struct bzimage_info {
	uint16_t version; /* protocol, e.g. 0x020f */
	uint8_t loadflags;
	uint16_t xloadflags;
	size_t setup_len; /* (setup_sects + 1) * 512, setup_sects 0 meaning 4 */
	size_t hdr_len;	  /* setup header bytes to copy from 0x1f1 (boot.rst: 0x202 + jump byte) */
	size_t pm_offset; /* protected-mode part in the file */
	size_t pm_len;	  /* syssize * 16 */
	uint32_t kernel_alignment;
	bool relocatable;
	uint64_t pref_address;
	uint32_t init_size;	  /* linear memory the kernel needs from its load address */
	uint32_t cmdline_size;	  /* max bytes without the NUL */
	uint32_t initrd_addr_max; /* highest address an initrd byte may occupy */
	uint32_t payload_offset, payload_length; /* compressed vmlinux, from pm_offset */
};

/* Validate the setup header of a bzImage (boot protocol >= 2.12 with XLF_KERNEL_64). */
int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_info *out, char *err,
		  size_t errlen) WUR;
/* Choose the load address of the protected-mode part for RAM that ends at low_end (below
 * 4 GiB). See bzimage.c for the policy. */
int bzimage_choose_load_addr(const struct bzimage_info *bi, uint64_t low_end, uint64_t *addr,
			     char *err, size_t errlen) WUR;

/* ---- ELF (loader/elf_pvh.c) ---- */
struct elf_load {
	uint64_t offset, filesz; /* in the file */
	uint64_t paddr, memsz;	 /* in guest physical memory */
};

struct elf_info {
	bool is64;	    /* ELFCLASS64 */
	uint16_t machine;   /* EM_X86_64 or EM_386 */
	uint64_t entry;	    /* e_entry as a physical address */
	bool has_pvh;	    /* Xen PHYS32_ENTRY note found */
	uint64_t pvh_entry; /* 32-bit physical entry */
	unsigned int nr_load;
	struct elf_load load[LOADER_ELF_MAX_LOAD];
	uint64_t paddr_start, paddr_end; /* lowest and highest+1 physical byte of all PT_LOADs */
};

/*
 * Validate an ELF kernel: ELF64 x86-64 EXEC (PVH note optional) or ELF32 i386 EXEC with a PVH
 * note; program headers and every PT_LOAD inside the file, below 4 GiB, not overlapping.
 */
int elf_pvh_parse(const uint8_t *img, size_t len, struct elf_info *out, char *err,
		  size_t errlen) WUR;

/* ---- boot plumbing (loader/x86_boot.c) ---- */

/* The RAM/reserved map Linux expects (RAM below the EBDA, reserved EBDA..1 MiB, RAM from 1 MiB
 * to the end of low RAM, RAM from 4 GiB). Returns the number of entries written (<= max). */
unsigned int e820_build(const struct guest_mem *gm, struct e820_entry *out, unsigned int max);

/* GDT at LAYOUT_GDT. */
int x86_boot_write_gdt(struct guest_mem *gm) WUR;
/* Identity map of [0, 4 GiB) with 2 MiB pages at LAYOUT_PML4, LAYOUT_PDPT, LAYOUT_PD. */
int x86_boot_write_page_tables(struct guest_mem *gm) WUR;
/* BSP state for the 64-bit entry: long mode, CS = 0x10, DS/ES/SS = 0x18, RSI = zero page. */
void x86_boot_regs_long(uint64_t entry, struct kvm_regs *regs, struct kvm_sregs *sregs);
/* BSP state for the PVH entry: 32-bit flat protected mode, paging off, EBX = start_info. */
void x86_boot_regs_pvh(uint64_t entry, struct kvm_regs *regs, struct kvm_sregs *sregs);

/* Copy cmdline to LAYOUT_CMDLINE if it has at most max bytes (besides the NUL). */
int x86_boot_write_cmdline(struct guest_mem *gm, const char *cmdline, size_t max, char *err,
			   size_t errlen) WUR;
/*
 * Copy the initrd page-aligned as high as possible below min(limit, low RAM end, 4 GiB) and not
 * below floor. *start = 0 when there is no initrd.
 */
int x86_boot_place_initrd(struct guest_mem *gm, const uint8_t *initrd, size_t len, uint64_t floor,
			  uint64_t limit, uint64_t *start, char *err, size_t errlen) WUR;

/*
 * The fields of the zero page every 64-bit entry gets: type_of_loader, command line pointer,
 * initrd, e820 map, and acpi_rsdp_addr when rsdp != 0 (the caller decides if the protocol has it).
 */
void x86_boot_fill_zero_page(const struct guest_mem *gm, struct bz_boot_params *bp,
			     uint64_t initrd_start, uint64_t initrd_size, uint64_t rsdp);

/* Loaders per format, called by loader_load after identification. */
int bzimage_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_result *out,
		 char *err, size_t errlen) WUR;
int elf_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_result *out,
	     char *err, size_t errlen) WUR;

/* One-line error message helper (err may be NULL). */
void loader_err(char *err, size_t errlen, const char *fmt, ...) PRINTF(3, 4);
/* "3.9 GiB", "512 KiB", "100 bytes": sizes in messages. */
const char *loader_fmt_size(uint64_t bytes, char *buf, size_t buflen);

#endif
