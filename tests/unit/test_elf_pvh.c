// SPDX-License-Identifier: Apache-2.0
/*
 * ELF loader: synthetic ELF32 PVH micro-guests, ELF64 with and without the Xen PVH note, malformed
 * headers, and the real Debian vmlinux named by VMM_TEST_VMLINUX when it is set.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <elf.h>
#include <cmocka.h>

#include "vmm/layout.h"
#include "vmm/loader.h"

#define FILE_LEN  0x3000
#define NOTE_OFF  0x800
#define TEXT_OFF  0x1000
#define TEXT_LEN  0x1000
#define KBASE	  0x100000ULL
#define PVH_ENTRY (KBASE + 0x10)

struct img {
	uint8_t *p;
	size_t len;
	bool is64;
};

struct seg {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

/* Write the Xen PHYS32_ENTRY note (namesz 4, "Xen\0", desc 4 or 8 bytes) at off; its size. */
static size_t put_note(uint8_t *p, size_t off, uint32_t type, uint64_t entry, uint32_t descsz)
{
	uint32_t hdr[3] = {4, descsz, type};
	memcpy(p + off, hdr, 12);
	memcpy(p + off + 12, "Xen", 4);
	memcpy(p + off + 16, &entry, descsz);
	return 16 + ALIGN_UP(descsz, 4u);
}

static void set_phdr(struct img *im, unsigned int i, const struct seg *s)
{
	if (im->is64) {
		Elf64_Phdr ph = {.p_type = s->type,
				 .p_offset = s->offset,
				 .p_vaddr = s->vaddr,
				 .p_paddr = s->paddr,
				 .p_filesz = s->filesz,
				 .p_memsz = s->memsz,
				 .p_align = s->align,
				 .p_flags = PF_R | PF_X};
		memcpy(im->p + sizeof(Elf64_Ehdr) + i * sizeof(ph), &ph, sizeof(ph));
	} else {
		Elf32_Phdr ph = {.p_type = s->type,
				 .p_offset = (uint32_t)s->offset,
				 .p_vaddr = (uint32_t)s->vaddr,
				 .p_paddr = (uint32_t)s->paddr,
				 .p_filesz = (uint32_t)s->filesz,
				 .p_memsz = (uint32_t)s->memsz,
				 .p_align = (uint32_t)s->align,
				 .p_flags = PF_R | PF_X};
		memcpy(im->p + sizeof(Elf32_Ehdr) + i * sizeof(ph), &ph, sizeof(ph));
	}
}

/*
 * A kernel with one PT_LOAD (0x1000 bytes of text + 0x2000 of bss at 1 MiB) and, if note_desc is
 * 4 or 8, a PT_NOTE holding a Xen PVH entry note. vbase is the link address of the text.
 */
static struct img mk_elf(bool is64, uint16_t machine, uint32_t note_desc, uint64_t vbase,
			 uint64_t entry, unsigned int extra_phdrs)
{
	struct img im = {.len = FILE_LEN, .is64 = is64};
	unsigned int phnum = (note_desc ? 2 : 1) + extra_phdrs;
	im.p = calloc(1, im.len);
	assert_non_null(im.p);
	memcpy(im.p, ELFMAG, SELFMAG);
	im.p[EI_CLASS] = is64 ? ELFCLASS64 : ELFCLASS32;
	im.p[EI_DATA] = ELFDATA2LSB;
	im.p[EI_VERSION] = EV_CURRENT;
	if (is64) {
		Elf64_Ehdr eh;
		memcpy(&eh, im.p, sizeof(eh));
		eh.e_type = ET_EXEC, eh.e_machine = machine, eh.e_version = EV_CURRENT;
		eh.e_entry = entry, eh.e_phoff = sizeof(eh), eh.e_ehsize = sizeof(eh);
		eh.e_phentsize = sizeof(Elf64_Phdr), eh.e_phnum = (uint16_t)phnum;
		memcpy(im.p, &eh, sizeof(eh));
	} else {
		Elf32_Ehdr eh;
		memcpy(&eh, im.p, sizeof(eh));
		eh.e_type = ET_EXEC, eh.e_machine = machine, eh.e_version = EV_CURRENT;
		eh.e_entry = (uint32_t)entry, eh.e_phoff = sizeof(eh), eh.e_ehsize = sizeof(eh);
		eh.e_phentsize = sizeof(Elf32_Phdr), eh.e_phnum = (uint16_t)phnum;
		memcpy(im.p, &eh, sizeof(eh));
	}
	for (size_t i = 0; i < TEXT_LEN; i++)
		im.p[TEXT_OFF + i] = (uint8_t)(i * 13 + 1);
	set_phdr(&im, 0, &(struct seg){PT_LOAD, TEXT_OFF, vbase, KBASE, TEXT_LEN, 0x3000, 0x1000});
	if (note_desc) {
		size_t n = put_note(im.p, NOTE_OFF, 1, 0x1234, 4); /* an unrelated Xen note first */
		n += put_note(im.p, NOTE_OFF + n, XEN_ELFNOTE_PHYS32_ENTRY, PVH_ENTRY, note_desc);
		set_phdr(&im, 1, &(struct seg){PT_NOTE, NOTE_OFF, 0, 0, n, n, 4});
	}
	return im;
}

static struct img mk_pvh32(void)
{
	return mk_elf(false, EM_386, 4, KBASE, KBASE, 0);
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
	f->im = mk_pvh32();
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

static void replace(struct fixture *f, struct img im)
{
	free(f->im.p);
	f->im = im;
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

static void expect_fail(struct fixture *f, int rc, int want, const char *substr)
{
	if (rc != want || !strstr(f->err, substr))
		print_message("    got %d: \"%s\"\n", rc, f->err);
	assert_int_equal(rc, want);
	assert_non_null(strstr(f->err, substr));
	assert_null(strchr(f->err, '\n'));
	print_message("    ok: %s\n", f->err);
}

static void test_pvh32_load(void **state)
{
	struct fixture *f = *state;
	uint8_t initrd[5000];
	static const char cmd[] = "console=ttyS0 quiet";

	memset(initrd, 0xab, sizeof(initrd));
	memset(gm_ptr(&f->gm, GPA(KBASE), 0x3000), 0xcc, 0x3000); /* bss must come out zero */
	assert_int_equal(load(f, cmd, initrd, sizeof(initrd)), 0);
	const struct boot_result *r = &f->res;

	assert_int_equal(r->format, KERNEL_ELF_PVH);
	assert_int_equal(r->kernel_start, KBASE);
	assert_int_equal(r->kernel_end, KBASE + 0x3000);
	assert_memory_equal(gm_ptr(&f->gm, GPA(KBASE), TEXT_LEN), f->im.p + TEXT_OFF, TEXT_LEN);
	const uint8_t *bss = gm_ptr(&f->gm, GPA(KBASE + TEXT_LEN), 0x2000);
	for (size_t i = 0; i < 0x2000; i++)
		assert_int_equal(bss[i], 0);

	/* pvh.pandoc: 32-bit flat protected mode, paging off, EBX = start_info */
	assert_int_equal(r->regs.rip, PVH_ENTRY);
	assert_int_equal(r->regs.rbx, LAYOUT_PVH_INFO);
	assert_int_equal(r->regs.rflags, 2);
	assert_int_equal(r->regs.rsi, 0);
	assert_int_equal(r->sregs.cs.selector, 0x08);
	assert_int_equal(r->sregs.cs.base, 0);
	assert_int_equal(r->sregs.cs.limit, 0xffffffff);
	assert_int_equal(r->sregs.cs.type, 0xb);
	assert_int_equal(r->sregs.cs.db, 1);
	assert_int_equal(r->sregs.cs.l, 0);
	assert_int_equal(r->sregs.cs.g, 1);
	assert_int_equal(r->sregs.cs.s, 1);
	assert_int_equal(r->sregs.cs.present, 1);
	assert_int_equal(r->sregs.ds.selector, 0x18);
	assert_int_equal(r->sregs.ds.type, 0x3);
	assert_int_equal(r->sregs.ds.db, 1);
	assert_int_equal(r->sregs.es.selector, 0x18);
	assert_int_equal(r->sregs.ss.selector, 0x18);
	assert_int_equal(r->sregs.ss.limit, 0xffffffff);
	assert_int_equal(r->sregs.tr.selector, 0x20);
	assert_int_equal(r->sregs.tr.base, 0);
	assert_int_equal(r->sregs.tr.limit, 0x67);
	assert_int_equal(r->sregs.tr.type, 0xb);
	assert_int_equal(r->sregs.tr.s, 0);
	assert_int_equal(r->sregs.tr.present, 1);
	assert_int_equal(r->sregs.cr0, 0x11);
	assert_int_equal(r->sregs.cr3, 0);
	assert_int_equal(r->sregs.cr4, 0);
	assert_int_equal(r->sregs.efer, 0);
	assert_int_equal(r->sregs.gdt.base, LAYOUT_GDT);
	const uint64_t *gdt = gm_ptr(&f->gm, GPA(LAYOUT_GDT), 6 * 8);
	assert_int_equal(gdt[1], 0x00cf9b000000ffffULL);
	assert_int_equal(gdt[3], 0x00cf93000000ffffULL);
	assert_int_equal(gdt[4], 0x00008b0000000067ULL);

	/* start_info, memmap, modlist */
	const struct hvm_start_info *si = gm_ptr(&f->gm, GPA(LAYOUT_PVH_INFO), sizeof(*si));
	assert_int_equal(si->magic, 0x336ec578);
	assert_int_equal(si->version, 1);
	assert_int_equal(si->flags, 0);
	assert_int_equal(si->cmdline_paddr, LAYOUT_CMDLINE);
	assert_int_equal(si->rsdp_paddr, LAYOUT_ACPI);
	assert_int_equal(si->nr_modules, 1);
	assert_int_equal(si->modlist_paddr, LAYOUT_PVH_MODLIST);
	assert_int_equal(si->memmap_paddr, LAYOUT_PVH_MEMMAP);
	assert_int_equal(si->memmap_entries, 3);
	assert_string_equal(gm_ptr(&f->gm, GPA(LAYOUT_CMDLINE), sizeof(cmd)), cmd);
	const struct hvm_modlist_entry *mod = gm_ptr(&f->gm, GPA(LAYOUT_PVH_MODLIST), sizeof(*mod));
	assert_int_equal(mod->paddr, ALIGN_DOWN(64 * MiB - sizeof(initrd), 4096ULL));
	assert_int_equal(mod->size, sizeof(initrd));
	assert_int_equal(mod->cmdline_paddr, 0);
	assert_int_equal(r->initrd_start, mod->paddr);
	assert_memory_equal(gm_ptr(&f->gm, GPA(mod->paddr), sizeof(initrd)), initrd,
			    sizeof(initrd));
	struct e820_entry e820[8];
	unsigned int n = e820_build(&f->gm, e820, 8);
	assert_int_equal(n, 3);
	const struct hvm_memmap_table_entry *mm = gm_ptr(&f->gm, GPA(LAYOUT_PVH_MEMMAP), 3 * 24);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(mm[i].addr, e820[i].addr);
		assert_int_equal(mm[i].size, e820[i].size);
		assert_int_equal(mm[i].type, e820[i].type);
		assert_int_equal(mm[i].reserved, 0);
	}
	assert_int_equal(mm[2].addr, 1 * MiB);
	assert_int_equal(mm[2].size, 63 * MiB);
}

static void test_pvh32_no_initrd(void **state)
{
	struct fixture *f = *state;

	/* stale modlist from an earlier boot must not leak into this one */
	memset(gm_ptr(&f->gm, GPA(LAYOUT_PVH_INFO), 4096), 0xee, 4096);
	assert_int_equal(load(f, "", NULL, 0), 0);
	const struct hvm_start_info *si = gm_ptr(&f->gm, GPA(LAYOUT_PVH_INFO), sizeof(*si));
	assert_int_equal(si->nr_modules, 0);
	assert_int_equal(si->modlist_paddr, 0);
	assert_int_equal(si->reserved, 0);
	assert_int_equal(f->res.initrd_start, 0);
}

static void test_pvh64_note8(void **state)
{
	struct fixture *f = *state;
	struct elf_info ei;

	replace(f, mk_elf(true, EM_X86_64, 8, 0xffffffff80100000ULL, KBASE, 0));
	assert_int_equal(elf_pvh_parse(f->im.p, f->im.len, &ei, f->err, sizeof(f->err)), 0);
	assert_true(ei.is64);
	assert_true(ei.has_pvh);
	assert_int_equal(ei.pvh_entry, PVH_ENTRY);
	assert_int_equal(ei.nr_load, 1);
	assert_int_equal(load(f, "", NULL, 0), 0);
	assert_int_equal(f->res.format, KERNEL_ELF_PVH);
	assert_int_equal(f->res.regs.rip, PVH_ENTRY);
	assert_int_equal(f->res.sregs.cs.selector, 0x08);
}

static void test_elf64_entry(void **state)
{
	struct fixture *f = *state;
	uint8_t initrd[4096] = {7};

	/* no note: the 64-bit boot protocol with a synthesized setup header */
	replace(f, mk_elf(true, EM_X86_64, 0, KBASE, KBASE + 0x20, 0));
	assert_int_equal(load(f, "root=/dev/vda", initrd, sizeof(initrd)), 0);
	const struct boot_result *r = &f->res;
	assert_int_equal(r->format, KERNEL_ELF_64);
	assert_int_equal(r->regs.rip, KBASE + 0x20);
	assert_int_equal(r->regs.rsi, LAYOUT_ZERO_PAGE);
	assert_int_equal(r->regs.rflags, 2);
	assert_int_equal(r->sregs.cs.selector, 0x10);
	assert_int_equal(r->sregs.cs.l, 1);
	assert_int_equal(r->sregs.ds.selector, 0x18);
	assert_int_equal(r->sregs.cr3, LAYOUT_PML4);
	assert_int_equal(r->sregs.efer, 0x500);
	assert_int_equal(r->sregs.cr0, 0x80000031);
	const struct bz_boot_params *bp = gm_ptr(&f->gm, GPA(LAYOUT_ZERO_PAGE), sizeof(*bp));
	assert_int_equal(bp->hdr.header, BZ_HDRS_MAGIC);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.version, 0x020f);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.loadflags, BZ_LOADED_HIGH);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE);
	assert_int_equal(bp->hdr.cmdline_size, 2047);
	assert_int_equal(bp->hdr.ramdisk_image, 64 * MiB - 4096);
	assert_int_equal(bp->hdr.ramdisk_size, 4096);
	assert_int_equal(bp->acpi_rsdp_addr, LAYOUT_ACPI);
	assert_int_equal(bp->e820_entries, 3);
	const uint64_t *pdpt = gm_ptr(&f->gm, GPA(LAYOUT_PDPT), 32);
	assert_int_equal(pdpt[3], (LAYOUT_PD + 3 * 4096) | 3);
}

static void test_elf64_virtual_entry(void **state)
{
	struct fixture *f = *state;
	struct elf_info ei;

	/* e_entry given as a link (virtual) address: translated through its segment */
	replace(f, mk_elf(true, EM_X86_64, 0, 0xffffffff81000000ULL, 0xffffffff81000040ULL, 0));
	assert_int_equal(elf_pvh_parse(f->im.p, f->im.len, &ei, f->err, sizeof(f->err)), 0);
	assert_int_equal(ei.entry, KBASE + 0x40);
	/* outside every segment */
	replace(f, mk_elf(true, EM_X86_64, 0, KBASE, 0x5000000, 0));
	expect_fail(f, load(f, "", NULL, 0), -EINVAL,
		    "kernel: ELF entry point 0x5000000 is outside every loadable segment");
}

static void test_elf32_without_note(void **state)
{
	struct fixture *f = *state;

	replace(f, mk_elf(false, EM_386, 0, KBASE, KBASE, 0));
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC, "32-bit ELF without a PVH entry note");
}

static void test_wrong_machine(void **state)
{
	struct fixture *f = *state;

	replace(f, mk_elf(true, EM_AARCH64, 0, KBASE, KBASE, 0));
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC,
		    "kernel: ELF for machine 183 (AArch64), not x86-64");
	replace(f, mk_elf(false, EM_ARM, 4, KBASE, KBASE, 0));
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC, "machine 40 (ARM), not x86-64 or i386");
}

static void test_bad_ident(void **state)
{
	struct fixture *f = *state;

	f->im.p[EI_DATA] = ELFDATA2MSB;
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC, "not little-endian");
	f->im.p[EI_DATA] = ELFDATA2LSB;
	f->im.p[EI_CLASS] = 7;
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC, "ELF class 7");
	f->im.p[EI_CLASS] = ELFCLASS32;
	f->im.p[EI_VERSION] = 0;
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC, "ELF version 0");
	f->im.p[EI_VERSION] = EV_CURRENT;
	f->im.len = 30; /* inside the header */
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "ELF header truncated (30 bytes)");
	struct elf_info ei;
	expect_fail(f, elf_pvh_parse(f->im.p + 1, 40, &ei, f->err, sizeof(f->err)), -ENOEXEC,
		    "no ELF magic");
}

static void test_not_exec(void **state)
{
	struct fixture *f = *state;
	uint16_t t = ET_DYN;

	memcpy(f->im.p + offsetof(Elf32_Ehdr, e_type), &t, 2);
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC, "ELF type 3 is not an executable");
}

static void set_ehdr64(struct fixture *f, uint64_t phoff, uint16_t phentsize, uint16_t phnum)
{
	Elf64_Ehdr eh;
	memcpy(&eh, f->im.p, sizeof(eh));
	eh.e_phoff = phoff, eh.e_phentsize = phentsize, eh.e_phnum = phnum;
	memcpy(f->im.p, &eh, sizeof(eh));
}

static void test_bad_phdrs(void **state)
{
	struct fixture *f = *state;

	replace(f, mk_elf(true, EM_X86_64, 8, KBASE, KBASE, 0));
	set_ehdr64(f, FILE_LEN - 56, 56, 2);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL,
		    "program headers (offset 0x2fc8, 2 entries) extend past the end of the file");
	set_ehdr64(f, UINT64_MAX - 8, 56, 2); /* offset + size wraps */
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "extend past the end of the file");
	set_ehdr64(f, 64, 32, 2);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "e_phentsize 32, expected 56");
	set_ehdr64(f, 64, 56, 0);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "no program headers");
	set_ehdr64(f, 64, 56, PN_XNUM);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "PN_XNUM");
}

static void test_segment_outside_file(void **state)
{
	struct fixture *f = *state;
	const uint64_t big = 0xffffffffffffff00ULL;

	replace(f, mk_elf(true, EM_X86_64, 8, KBASE, KBASE, 0));
	set_phdr(&f->im, 0, &(struct seg){PT_LOAD, big, KBASE, KBASE, 0x1000, 0x1000, 0});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "PT_LOAD segment lies outside the file");
	set_phdr(&f->im, 0, &(struct seg){PT_LOAD, TEXT_OFF, KBASE, KBASE, FILE_LEN, FILE_LEN, 0});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "PT_LOAD segment lies outside the file");
	set_phdr(&f->im, 0, &(struct seg){PT_LOAD, TEXT_OFF, KBASE, KBASE, 0x1000, 0x1000, 0});
	set_phdr(&f->im, 1, &(struct seg){PT_NOTE, FILE_LEN - 4, 0, 0, 0x100, 0x100, 4});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "PT_NOTE segment lies outside the file");
}

static void test_filesz_gt_memsz(void **state)
{
	struct fixture *f = *state;

	set_phdr(&f->im, 0, &(struct seg){PT_LOAD, TEXT_OFF, KBASE, KBASE, 0x1000, 0x800, 0});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL,
		    "segment 0: p_filesz 0x1000 is larger than p_memsz 0x800");
}

static void test_paddr_overflow(void **state)
{
	struct fixture *f = *state;

	replace(f, mk_elf(true, EM_X86_64, 8, KBASE, KBASE, 0));
	set_phdr(&f->im, 0,
		 &(struct seg){PT_LOAD, TEXT_OFF, 0, 0xfffffffffffff000ULL, 0x1000, 0x2000, 0});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "does not end below 4 GiB");
	set_phdr(&f->im, 0, &(struct seg){PT_LOAD, TEXT_OFF, 0, 0xfffff000ULL, 0x1000, 0x2000, 0});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL,
		    "segment 0 (0xfffff000, 8 KiB) does not end below 4 GiB");
	/* ELF32 cannot express the overflow, but 32-bit paddr + memsz beyond 4 GiB is caught too */
	replace(f, mk_pvh32());
	set_phdr(&f->im, 0, &(struct seg){PT_LOAD, TEXT_OFF, 0, 0xfffff000ULL, 0x1000, 0x2000, 0});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "does not end below 4 GiB");
}

static void test_outside_ram(void **state)
{
	struct fixture *f = *state;

	/* 64 MiB guest, segment at 128 MiB (the PVH entry moves with it) */
	replace(f, mk_elf(false, EM_386, 4, 0x8000000, 0x8000000, 0));
	set_phdr(&f->im, 0, &(struct seg){PT_LOAD, TEXT_OFF, 0, 0x8000000, 0x1000, 0x1000, 0});
	size_t n = put_note(f->im.p, NOTE_OFF, XEN_ELFNOTE_PHYS32_ENTRY, 0x8000000, 4);
	set_phdr(&f->im, 1, &(struct seg){PT_NOTE, NOTE_OFF, 0, 0, n, n, 4});
	expect_fail(f, load(f, "", NULL, 0), -ENOMEM,
		    "kernel: ELF segment at 0x8000000..0x8001000 is outside guest RAM (64 MiB "
		    "below 4 GiB)");
	/* straddling the end of RAM */
	set_phdr(&f->im, 0,
		 &(struct seg){PT_LOAD, TEXT_OFF, 0, 64 * MiB - 0x1000, 0x1000, 0x2000, 0});
	n = put_note(f->im.p, NOTE_OFF, XEN_ELFNOTE_PHYS32_ENTRY, 64 * MiB - 0x1000, 4);
	expect_fail(f, load(f, "", NULL, 0), -ENOMEM, "outside guest RAM");
}

static void test_below_1m(void **state)
{
	struct fixture *f = *state;

	set_phdr(&f->im, 0, &(struct seg){PT_LOAD, TEXT_OFF, 0, 0x8000, 0x1000, 0x1000, 0});
	size_t n = put_note(f->im.p, NOTE_OFF, XEN_ELFNOTE_PHYS32_ENTRY, 0x8000, 4);
	set_phdr(&f->im, 1, &(struct seg){PT_NOTE, NOTE_OFF, 0, 0, n, n, 4});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "would overwrite the boot area below 1 MiB");
}

static void test_overlapping_segments(void **state)
{
	struct fixture *f = *state;

	replace(f, mk_elf(false, EM_386, 4, KBASE, KBASE, 1));
	set_phdr(&f->im, 2, &(struct seg){PT_LOAD, TEXT_OFF, 0, KBASE + 0x2000, 0x1000, 0x1000, 0});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL,
		    "segment 2 (0x102000..0x103000) overlaps another loadable segment");
	/* adjacent is fine; same file bytes twice is fine too */
	set_phdr(&f->im, 2, &(struct seg){PT_LOAD, TEXT_OFF, 0, KBASE + 0x3000, 0x1000, 0x1000, 0});
	assert_int_equal(load(f, "", NULL, 0), 0);
	assert_int_equal(f->res.kernel_end, KBASE + 0x4000);
	/* a PT_LOAD with p_memsz 0 is ignored */
	set_phdr(&f->im, 2, &(struct seg){PT_LOAD, 0, 0, 0, 0, 0, 0});
	assert_int_equal(load(f, "", NULL, 0), 0);
}

static void test_no_load_segments(void **state)
{
	struct fixture *f = *state;

	set_phdr(&f->im, 0, &(struct seg){PT_NULL, 0, 0, 0, 0, 0, 0});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "no loadable segments");
}

static void test_too_many_segments(void **state)
{
	struct fixture *f = *state;

	replace(f, mk_elf(false, EM_386, 4, KBASE, KBASE, 16));
	for (unsigned int i = 0; i < 16; i++)
		set_phdr(&f->im, 2 + i,
			 &(struct seg){PT_LOAD, TEXT_OFF, 0, KBASE + 0x10000 * (i + 1), 0x100,
				       0x100, 0});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "more than 16 loadable segments");
}

static void test_bad_notes(void **state)
{
	struct fixture *f = *state;

	/* PVH entry outside the loaded range */
	size_t n = put_note(f->im.p, NOTE_OFF, XEN_ELFNOTE_PHYS32_ENTRY, 0x200000, 4);
	set_phdr(&f->im, 1, &(struct seg){PT_NOTE, NOTE_OFF, 0, 0, n, n, 4});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "PVH entry 0x200000 is outside the loadable");
	/* 8-byte entry above 4 GiB */
	n = put_note(f->im.p, NOTE_OFF, XEN_ELFNOTE_PHYS32_ENTRY, 0x100000000ULL, 8);
	set_phdr(&f->im, 1, &(struct seg){PT_NOTE, NOTE_OFF, 0, 0, n, n, 4});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "not a 32-bit address");
	/* odd descriptor size */
	n = put_note(f->im.p, NOTE_OFF, XEN_ELFNOTE_PHYS32_ENTRY, PVH_ENTRY, 2);
	set_phdr(&f->im, 1, &(struct seg){PT_NOTE, NOTE_OFF, 0, 0, n, n, 4});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "PVH entry note has 2 bytes");
	/* descsz running past the segment (and a huge one must not wrap) */
	uint32_t hdr[3] = {4, 0x100, XEN_ELFNOTE_PHYS32_ENTRY};
	memcpy(f->im.p + NOTE_OFF, hdr, 12);
	set_phdr(&f->im, 1, &(struct seg){PT_NOTE, NOTE_OFF, 0, 0, 24, 24, 4});
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "note at 0x0 runs past its segment");
	hdr[0] = 0xffffffff, hdr[1] = 0xffffffff;
	memcpy(f->im.p + NOTE_OFF, hdr, 12);
	expect_fail(f, load(f, "", NULL, 0), -EINVAL, "runs past its segment");
	/* a note segment shorter than a note header is just empty: no PVH, and ELF32 is refused */
	set_phdr(&f->im, 1, &(struct seg){PT_NOTE, NOTE_OFF, 0, 0, 8, 8, 4});
	expect_fail(f, load(f, "", NULL, 0), -ENOEXEC, "without a PVH entry note");
}

static void test_cmdline_too_long(void **state)
{
	struct fixture *f = *state;
	char cmd[2049];

	memset(cmd, 'x', 2048);
	cmd[2048] = '\0';
	expect_fail(f, load(f, cmd, NULL, 0), -E2BIG,
		    "cmdline: 2048 bytes, the kernel accepts at most 2047");
	cmd[2047] = '\0';
	assert_int_equal(load(f, cmd, NULL, 0), 0);
}

static void test_initrd_too_big(void **state)
{
	struct fixture *f = *state;
	size_t len = 64 * MiB;
	uint8_t *big = calloc(1, len);

	assert_non_null(big);
	expect_fail(f, load(f, "", big, len), -ENOMEM,
		    "initrd: 64 MiB does not fit in guest RAM below 0x3ffffff");
	/* right up to the kernel's end fits */
	len = 64 * MiB - KBASE - 0x3000;
	assert_int_equal(load(f, "", big, len), 0);
	assert_int_equal(f->res.initrd_start, KBASE + 0x3000);
	free(big);
}

static void test_real_vmlinux(void **state)
{
	struct fixture *f = *state;
	const char *path = getenv("VMM_TEST_VMLINUX");
	struct elf_info ei;
	struct guest_mem gm;

	if (!path || !*path) {
		print_message("    skipped: VMM_TEST_VMLINUX is not set (path of an uncompressed "
			      "Debian vmlinux to test with)\n");
		skip();
	}
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size_t len = (size_t)ftell(fp);
	rewind(fp);
	uint8_t *img = malloc(len);
	assert_non_null(img);
	assert_int_equal(fread(img, 1, len, fp), len);
	fclose(fp);

	assert_int_equal(elf_pvh_parse(img, len, &ei, f->err, sizeof(f->err)), 0);
	print_message("    %s: %u PT_LOAD, 0x%llx..0x%llx, entry 0x%llx, PVH entry 0x%llx\n", path,
		      ei.nr_load, (unsigned long long)ei.paddr_start,
		      (unsigned long long)ei.paddr_end, (unsigned long long)ei.entry,
		      (unsigned long long)ei.pvh_entry);
	assert_true(ei.is64);
	assert_true(ei.has_pvh);
	assert_true(ei.pvh_entry >= ei.paddr_start && ei.pvh_entry < ei.paddr_end);

	assert_int_equal(gm_create(&gm, 256 * MiB), 0);
	uint8_t initrd[4096] = {1};
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
	assert_int_equal(f->res.format, KERNEL_ELF_PVH);
	assert_int_equal(f->res.regs.rip, ei.pvh_entry);
	assert_int_equal(f->res.kernel_start, ei.paddr_start);
	for (unsigned int i = 0; i < ei.nr_load; i++)
		assert_memory_equal(gm_ptr(&gm, GPA(ei.load[i].paddr), ei.load[i].filesz),
				    img + ei.load[i].offset, ei.load[i].filesz);
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
			size_t off = (r % 0x100 < 0xc0) ? r % 0xc0 : NOTE_OFF + r % 0x40;
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
		T(test_pvh32_load),
		T(test_pvh32_no_initrd),
		T(test_pvh64_note8),
		T(test_elf64_entry),
		T(test_elf64_virtual_entry),
		T(test_elf32_without_note),
		T(test_wrong_machine),
		T(test_bad_ident),
		T(test_not_exec),
		T(test_bad_phdrs),
		T(test_segment_outside_file),
		T(test_filesz_gt_memsz),
		T(test_paddr_overflow),
		T(test_outside_ram),
		T(test_below_1m),
		T(test_overlapping_segments),
		T(test_no_load_segments),
		T(test_too_many_segments),
		T(test_bad_notes),
		T(test_cmdline_too_long),
		T(test_initrd_too_big),
		T(test_real_vmlinux),
		T(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
