// SPDX-License-Identifier: Apache-2.0
/*
 * ELF kernels: an uncompressed vmlinux (ELF64 x86-64) or one of our micro-guests (ELF32 i386).
 * With the Xen XEN_ELFNOTE_PHYS32_ENTRY note we use the PVH boot ABI (Xen docs/misc/pvh.pandoc):
 * hvm_start_info in EBX, 32-bit flat protected mode. Without it, an ELF64 is entered at e_entry
 * through the 64-bit boot protocol with a synthesized setup header, as for a bzImage.
 * Every field of the file is untrusted: all offsets and sizes are checked with overflow-safe math.
 */
#include <elf.h>
#include <errno.h>
#include <string.h>

#include "vmm/layout.h"
#include "vmm/loader.h"

/* One program header, widened to 64 bits whatever the class. */
struct phdr {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

static const char *machine_name(unsigned int m)
{
	switch (m) {
	case EM_386:
		return "i386";
	case EM_X86_64:
		return "x86-64";
	case EM_ARM:
		return "ARM";
	case EM_AARCH64:
		return "AArch64";
	case EM_RISCV:
		return "RISC-V";
	case EM_PPC:
		return "PowerPC";
	case EM_PPC64:
		return "PowerPC64";
	case EM_S390:
		return "S/390";
	case EM_MIPS:
		return "MIPS";
	case EM_SPARCV9:
		return "SPARC64";
	case EM_LOONGARCH:
		return "LoongArch";
	default:
		return "unknown";
	}
}

static void phdr_read(const uint8_t *p, bool is64, struct phdr *ph)
{
	if (is64) {
		Elf64_Phdr e;
		memcpy(&e, p, sizeof(e));
		*ph = (struct phdr){e.p_type,	e.p_offset, e.p_vaddr, e.p_paddr,
				    e.p_filesz, e.p_memsz,  e.p_align};
	} else {
		Elf32_Phdr e;
		memcpy(&e, p, sizeof(e));
		*ph = (struct phdr){e.p_type,	e.p_offset, e.p_vaddr, e.p_paddr,
				    e.p_filesz, e.p_memsz,  e.p_align};
	}
}

static bool in_file(uint64_t off, uint64_t size, size_t len)
{
	uint64_t end;

	return !__builtin_add_overflow(off, size, &end) && end <= len;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/*
 * Look for the Xen PHYS32_ENTRY note in one PT_NOTE segment (ELF gABI "Note Section"):
 * namesz, descsz, type, then name and desc, each padded to the note alignment.
 * Returns 1 if found, 0 if not, -errno for a malformed note.
 */
static int notes_find_pvh(const uint8_t *notes, uint64_t size, uint64_t align, uint64_t *entry,
			  char *err, size_t errlen)
{
	uint64_t off = 0;

	align = align == 8 ? 8 : 4;
	while (size - off >= 12) {
		uint64_t namesz = rd32(notes + off), descsz = rd32(notes + off + 4);
		uint32_t type = rd32(notes + off + 8);
		uint64_t name_off = off + 12;
		uint64_t desc_off = name_off + ALIGN_UP(namesz, align); /* < 2^34: no overflow */
		uint64_t next = desc_off + ALIGN_UP(descsz, align);

		if (desc_off > size || descsz > size - desc_off) {
			loader_err(err, errlen, "kernel: ELF note at 0x%llx runs past its segment",
				   (unsigned long long)off);
			return -EINVAL;
		}
		if (namesz == 4 && memcmp(notes + name_off, "Xen", 4) == 0 &&
		    type == XEN_ELFNOTE_PHYS32_ENTRY) {
			/* Linux writes it as a pointer-sized value (_ASM_PTR), our micro-guests
			 * as 32 bits: either way it must be a 32-bit address. */
			uint64_t v;
			if (descsz == 4) {
				v = rd32(notes + desc_off);
			} else if (descsz == 8) {
				memcpy(&v, notes + desc_off, 8);
			} else {
				loader_err(err, errlen,
					   "kernel: PVH entry note has %llu bytes, expected 4 or 8",
					   (unsigned long long)descsz);
				return -EINVAL;
			}
			if (v > UINT32_MAX) {
				loader_err(err, errlen,
					   "kernel: PVH entry 0x%llx is not a 32-bit address",
					   (unsigned long long)v);
				return -EINVAL;
			}
			*entry = v;
			return 1;
		}
		if (next > size)
			break; /* last note without trailing padding */
		off = next;
	}
	return 0;
}

int elf_pvh_parse(const uint8_t *img, size_t len, struct elf_info *out, char *err, size_t errlen)
{
	const char *what;
	char sz[32];
	int ret;

	memset(out, 0, sizeof(*out));
	if (!img || len < EI_NIDENT || memcmp(img, ELFMAG, SELFMAG) != 0) {
		loader_err(err, errlen, "kernel: not an ELF file (no ELF magic)");
		return -ENOEXEC;
	}
	if (img[EI_CLASS] != ELFCLASS32 && img[EI_CLASS] != ELFCLASS64) {
		loader_err(err, errlen, "kernel: ELF class %u is neither 32- nor 64-bit",
			   img[EI_CLASS]);
		return -ENOEXEC;
	}
	if (img[EI_DATA] != ELFDATA2LSB) {
		loader_err(err, errlen, "kernel: ELF is not little-endian (EI_DATA %u)",
			   img[EI_DATA]);
		return -ENOEXEC;
	}
	if (img[EI_VERSION] != EV_CURRENT) {
		loader_err(err, errlen, "kernel: ELF version %u is not 1", img[EI_VERSION]);
		return -ENOEXEC;
	}
	out->is64 = img[EI_CLASS] == ELFCLASS64;

	uint16_t type, machine, phentsize, phnum;
	uint32_t version;
	uint64_t entry, phoff;
	if (out->is64) {
		Elf64_Ehdr eh;
		if (len < sizeof(eh))
			goto short_header;
		memcpy(&eh, img, sizeof(eh));
		type = eh.e_type, machine = eh.e_machine, version = eh.e_version;
		entry = eh.e_entry, phoff = eh.e_phoff;
		phentsize = eh.e_phentsize, phnum = eh.e_phnum;
	} else {
		Elf32_Ehdr eh;
		if (len < sizeof(eh))
			goto short_header;
		memcpy(&eh, img, sizeof(eh));
		type = eh.e_type, machine = eh.e_machine, version = eh.e_version;
		entry = eh.e_entry, phoff = eh.e_phoff;
		phentsize = eh.e_phentsize, phnum = eh.e_phnum;
	}
	out->machine = machine;

	if ((out->is64 && machine != EM_X86_64) || (!out->is64 && machine != EM_386)) {
		loader_err(err, errlen, "kernel: ELF for machine %u (%s), not x86-64%s", machine,
			   machine_name(machine), out->is64 ? "" : " or i386");
		return -ENOEXEC;
	}
	if (version != EV_CURRENT) {
		loader_err(err, errlen, "kernel: ELF e_version %u is not 1", version);
		return -ENOEXEC;
	}
	if (type != ET_EXEC) {
		loader_err(err, errlen, "kernel: ELF type %u is not an executable (ET_EXEC)", type);
		return -ENOEXEC;
	}
	size_t want_phent = out->is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (phentsize != want_phent) {
		loader_err(err, errlen, "kernel: ELF e_phentsize %u, expected %zu", phentsize,
			   want_phent);
		return -EINVAL;
	}
	if (phnum == 0 || phnum == PN_XNUM) {
		loader_err(err, errlen, "kernel: ELF has %s program headers",
			   phnum ? "too many (PN_XNUM)" : "no");
		return -EINVAL;
	}
	if (!in_file(phoff, (uint64_t)phnum * phentsize, len)) {
		loader_err(err, errlen,
			   "kernel: ELF program headers (offset 0x%llx, %u entries) extend past "
			   "the end of the file (%zu bytes)",
			   (unsigned long long)phoff, phnum, len);
		return -EINVAL;
	}

	uint64_t vaddr[LOADER_ELF_MAX_LOAD];
	out->paddr_start = UINT64_MAX;
	for (unsigned int i = 0; i < phnum; i++) {
		struct phdr ph;
		phdr_read(img + phoff + (uint64_t)i * phentsize, out->is64, &ph);

		if (ph.type == PT_NOTE && !out->has_pvh) {
			if (!in_file(ph.offset, ph.filesz, len)) {
				what = "PT_NOTE";
				goto outside_file;
			}
			ret = notes_find_pvh(img + ph.offset, ph.filesz, ph.align, &out->pvh_entry,
					     err, errlen);
			if (ret < 0)
				return ret;
			out->has_pvh = ret == 1;
		}
		if (ph.type != PT_LOAD || ph.memsz == 0)
			continue;
		if (ph.filesz > ph.memsz) {
			loader_err(err, errlen,
				   "kernel: ELF segment %u: p_filesz 0x%llx is larger than p_memsz "
				   "0x%llx",
				   i, (unsigned long long)ph.filesz, (unsigned long long)ph.memsz);
			return -EINVAL;
		}
		if (!in_file(ph.offset, ph.filesz, len)) {
			what = "PT_LOAD";
			goto outside_file;
		}
		/* PVH runs with paging off and the 64-bit entry identity-maps only 4 GiB. */
		uint64_t pend;
		if (__builtin_add_overflow(ph.paddr, ph.memsz, &pend) ||
		    pend > LAYOUT_MMIO_HOLE_END) {
			loader_err(err, errlen,
				   "kernel: ELF segment %u (0x%llx, %s) does not end below 4 GiB",
				   i, (unsigned long long)ph.paddr,
				   loader_fmt_size(ph.memsz, sz, sizeof(sz)));
			return -EINVAL;
		}
		for (unsigned int j = 0; j < out->nr_load; j++) {
			const struct elf_load *o = &out->load[j];
			if (ph.paddr < o->paddr + o->memsz && o->paddr < pend) {
				loader_err(err, errlen,
					   "kernel: ELF segment %u (0x%llx..0x%llx) overlaps "
					   "another loadable segment",
					   i, (unsigned long long)ph.paddr,
					   (unsigned long long)pend);
				return -EINVAL;
			}
		}
		if (out->nr_load == LOADER_ELF_MAX_LOAD) {
			loader_err(err, errlen, "kernel: ELF has more than %u loadable segments",
				   LOADER_ELF_MAX_LOAD);
			return -EINVAL;
		}
		vaddr[out->nr_load] = ph.vaddr;
		out->load[out->nr_load++] = (struct elf_load){.offset = ph.offset,
							      .filesz = ph.filesz,
							      .paddr = ph.paddr,
							      .memsz = ph.memsz};
		out->paddr_start = MIN(out->paddr_start, ph.paddr);
		out->paddr_end = MAX(out->paddr_end, pend);
	}
	if (out->nr_load == 0) {
		loader_err(err, errlen, "kernel: ELF has no loadable segments");
		return -EINVAL;
	}

	if (!out->has_pvh && !out->is64) {
		loader_err(err, errlen,
			   "kernel: 32-bit ELF without a PVH entry note (Xen PHYS32_ENTRY); it "
			   "cannot be booted");
		return -ENOEXEC;
	}
	if (out->has_pvh &&
	    (out->pvh_entry < out->paddr_start || out->pvh_entry >= out->paddr_end)) {
		loader_err(err, errlen, "kernel: PVH entry 0x%llx is outside the loadable segments",
			   (unsigned long long)out->pvh_entry);
		return -EINVAL;
	}
	/* e_entry may be physical (vmlinux: phys_startup_64) or virtual: translate through the
	 * segment that holds it. Only the 64-bit entry uses it. */
	out->entry = UINT64_MAX;
	for (unsigned int j = 0; j < out->nr_load; j++) {
		const struct elf_load *l = &out->load[j];
		if (entry >= l->paddr && entry - l->paddr < l->memsz) {
			out->entry = entry;
			break;
		}
		if (entry >= vaddr[j] && entry - vaddr[j] < l->memsz) {
			out->entry = l->paddr + (entry - vaddr[j]);
			break;
		}
	}
	if (out->entry == UINT64_MAX) {
		if (!out->has_pvh) {
			loader_err(
				err, errlen,
				"kernel: ELF entry point 0x%llx is outside every loadable segment",
				(unsigned long long)entry);
			return -EINVAL;
		}
		out->entry = 0;
	}
	return 0;

short_header:
	loader_err(err, errlen, "kernel: ELF header truncated (%zu bytes)", len);
	return -EINVAL;
outside_file:
	loader_err(err, errlen, "kernel: ELF %s segment lies outside the file (%zu bytes)", what,
		   len);
	return -EINVAL;
}

static int pvh_write_start_info(struct guest_mem *gm, const struct boot_config *cfg,
				uint64_t initrd)
{
	struct hvm_memmap_table_entry mm[(LAYOUT_PVH_MODLIST - LAYOUT_PVH_MEMMAP) /
					 sizeof(struct hvm_memmap_table_entry)];
	struct e820_entry e820[ARRAY_SIZE(mm)];
	unsigned int n = e820_build(gm, e820, ARRAY_SIZE(e820));
	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE,
		.rsdp_paddr = cfg->acpi_rsdp,
		.memmap_paddr = LAYOUT_PVH_MEMMAP,
		.memmap_entries = n,
	};
	int ret;

	for (unsigned int i = 0; i < n; i++)
		mm[i] = (struct hvm_memmap_table_entry){
			.addr = e820[i].addr, .size = e820[i].size, .type = e820[i].type};
	if (initrd) {
		struct hvm_modlist_entry mod = {.paddr = initrd, .size = cfg->initrd_len};
		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_PVH_MODLIST;
		ret = gm_write(gm, GPA(LAYOUT_PVH_MODLIST), &mod, sizeof(mod));
		if (ret < 0)
			return ret;
	}
	ret = gm_write(gm, GPA(LAYOUT_PVH_MEMMAP), mm, n * sizeof(mm[0]));
	if (ret < 0)
		return ret;
	return gm_write(gm, GPA(LAYOUT_PVH_INFO), &si, sizeof(si));
}

/* A setup header for a kernel that has none, with what the 64-bit entry reads (boot.rst). */
static void elf_synth_header(struct bz_boot_params *bp, uint64_t kernel_start)
{
	bp->hdr.boot_flag = BZ_BOOT_FLAG;
	bp->hdr.header = BZ_HDRS_MAGIC;
	bp->hdr.version = 0x020f;
	bp->hdr.loadflags = BZ_LOADED_HIGH;
	bp->hdr.code32_start = (uint32_t)kernel_start;
	bp->hdr.kernel_alignment = 2 * MiB;
	bp->hdr.xloadflags = XLF_KERNEL_64;
	bp->hdr.cmdline_size = LOADER_ELF_CMDLINE_MAX;
	bp->hdr.initrd_addr_max = UINT32_MAX;
	bp->hdr.vid_mode = 0xffff; /* "normal" */
}

int elf_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_result *out,
	     char *err, size_t errlen)
{
	struct elf_info info, *ei = &info;
	uint64_t initrd = 0;
	char sz[32];
	int ret;

	ret = elf_pvh_parse(cfg->kernel, cfg->kernel_len, ei, err, errlen);
	if (ret < 0)
		return ret;

	/* All segments are checked against RAM before any is written. The boot area below
	 * 1 MiB (zero page, page tables, command line, ACPI) is ours. */
	for (unsigned int i = 0; i < ei->nr_load; i++) {
		const struct elf_load *l = &ei->load[i];
		if (l->paddr < LAYOUT_HIMEM) {
			loader_err(err, errlen,
				   "kernel: ELF segment at 0x%llx would overwrite the boot area "
				   "below 1 MiB",
				   (unsigned long long)l->paddr);
			return -EINVAL;
		}
		if (!gm_ptr(gm, GPA(l->paddr), l->memsz)) {
			loader_err(err, errlen,
				   "kernel: ELF segment at 0x%llx..0x%llx is outside guest RAM (%s "
				   "below 4 GiB)",
				   (unsigned long long)l->paddr,
				   (unsigned long long)(l->paddr + l->memsz),
				   loader_fmt_size(gm_low_size(gm), sz, sizeof(sz)));
			return -ENOMEM;
		}
	}
	ret = x86_boot_write_cmdline(gm, cfg->cmdline, LOADER_ELF_CMDLINE_MAX, err, errlen);
	if (ret < 0)
		return ret;
	ret = x86_boot_place_initrd(gm, cfg->initrd, cfg->initrd_len, ei->paddr_end,
				    LAYOUT_MMIO_HOLE_END, &initrd, err, errlen);
	if (ret < 0)
		return ret;
	for (unsigned int i = 0; i < ei->nr_load; i++) {
		const struct elf_load *l = &ei->load[i];
		uint8_t *dst = gm_ptr(gm, GPA(l->paddr), l->memsz); /* checked above */
		memcpy(dst, cfg->kernel + l->offset, l->filesz);
		memset(dst + l->filesz, 0, l->memsz - l->filesz); /* bss */
	}

	out->kernel_start = ei->paddr_start;
	out->kernel_end = ei->paddr_end;
	out->initrd_start = initrd;
	out->initrd_size = initrd ? cfg->initrd_len : 0;
	if (ei->has_pvh) {
		out->format = KERNEL_ELF_PVH;
		/* Zero the whole PVH page first so no stale memmap or modlist is left behind. */
		void *page = gm_ptr(gm, GPA(LAYOUT_PVH_INFO), 4096);
		if (!page)
			goto no_boot_area;
		memset(page, 0, 4096);
		if (pvh_write_start_info(gm, cfg, initrd) < 0)
			goto no_boot_area;
		x86_boot_regs_pvh(ei->pvh_entry, &out->regs, &out->sregs);
		return 0;
	}

	out->format = KERNEL_ELF_64;
	struct bz_boot_params *bp = gm_ptr(gm, GPA(LAYOUT_ZERO_PAGE), sizeof(*bp));
	if (!bp)
		goto no_boot_area;
	memset(bp, 0, sizeof(*bp));
	elf_synth_header(bp, ei->paddr_start);
	x86_boot_fill_zero_page(gm, bp, initrd, out->initrd_size, cfg->acpi_rsdp);
	x86_boot_regs_long(ei->entry, &out->regs, &out->sregs);
	return 0;

no_boot_area:
	loader_err(err, errlen, "kernel: no guest RAM for the boot information at 0x%llx",
		   (unsigned long long)LAYOUT_ZERO_PAGE);
	return -EFAULT;
}
