// SPDX-License-Identifier: Apache-2.0
/*
 * bzImage: Linux x86 boot protocol, 64-bit entry (Documentation/arch/x86/boot.rst). We never run
 * the real-mode setup code: we validate the setup header, copy the protected-mode part into
 * guest RAM, fill the zero page ourselves and enter at load address + 0x200 in long mode.
 */
#include <errno.h>
#include <string.h>

#include "vmm/layout.h"
#include "vmm/loader.h"

#define BZ_MIN_VERSION		   0x020c /* 2.12: xloadflags, hence XLF_KERNEL_64 */
#define BZ_HDR_END_2_12		   0x268 /* end of handover_offset, the last field a 2.12 header has */
#define BZ_ENTRY_64		   0x200 /* boot.rst: 64-bit entry is 0x200 past the protected-mode start */
#define BZ_INITRD_ADDR_MAX_DEFAULT 0x37ffffffu /* boot.rst: for protocols before 2.03 */

int bzimage_parse(const uint8_t *img, size_t len, struct bzimage_info *out, char *err,
		  size_t errlen)
{
	struct bz_setup_header h;
	char sz[32];

	memset(out, 0, sizeof(*out));
	if (!img || len < 0x206 || memcmp(img + 0x202, "HdrS", 4) != 0) {
		loader_err(err, errlen, "kernel: not a bzImage (no HdrS signature at 0x202)");
		return -ENOEXEC;
	}
	if (len < BZ_HDR_OFFSET + sizeof(h)) {
		loader_err(err, errlen,
			   "kernel: bzImage truncated inside its setup header (%zu bytes)", len);
		return -EINVAL;
	}
	memcpy(&h, img + BZ_HDR_OFFSET, sizeof(h));

	if (h.boot_flag != BZ_BOOT_FLAG) {
		loader_err(err, errlen, "kernel: bzImage boot_flag is 0x%04x, not 0xaa55",
			   h.boot_flag);
		return -EINVAL;
	}
	if (h.version < BZ_MIN_VERSION) {
		loader_err(err, errlen,
			   "kernel: bzImage boot protocol %u.%u is too old (need 2.12 for the "
			   "64-bit entry)",
			   h.version >> 8, h.version & 0xff);
		return -ENOEXEC;
	}
	/* boot.rst: the header ends at 0x202 + the byte at 0x201 (the target of the short jump). */
	size_t hdr_end = 0x202 + (size_t)img[0x201];
	if (hdr_end < BZ_HDR_END_2_12) {
		loader_err(err, errlen,
			   "kernel: bzImage setup header ends at 0x%zx, before the fields of "
			   "protocol 2.12",
			   hdr_end);
		return -EINVAL;
	}
	out->hdr_len = MIN(hdr_end - BZ_HDR_OFFSET, sizeof(h));
	out->version = h.version;
	out->loadflags = h.loadflags;
	out->xloadflags = h.xloadflags;

	/* boot.rst: "If this field is 0, the real value is 4." */
	unsigned int sects = h.setup_sects ? h.setup_sects : 4;
	out->setup_len = ((size_t)sects + 1) * 512;
	if (out->setup_len > len) {
		loader_err(err, errlen,
			   "kernel: bzImage setup_sects %u means %zu bytes of setup code, the file "
			   "has only %zu",
			   sects, out->setup_len, len);
		return -EINVAL;
	}
	out->pm_offset = out->setup_len;

	if (!(h.xloadflags & XLF_KERNEL_64)) {
		loader_err(err, errlen,
			   "kernel: bzImage has no 64-bit entry point (XLF_KERNEL_64 not in "
			   "xloadflags 0x%x)",
			   h.xloadflags);
		return -ENOEXEC;
	}
	if (!(h.loadflags & BZ_LOADED_HIGH)) {
		loader_err(err, errlen,
			   "kernel: zImage (loaded at 0x10000) is not supported, only bzImage");
		return -ENOEXEC;
	}

	uint64_t pm_len = (uint64_t)h.syssize * 16;
	if (pm_len == 0) {
		loader_err(err, errlen, "kernel: bzImage syssize is 0 (no protected-mode kernel)");
		return -EINVAL;
	}
	if (pm_len > len - out->setup_len) {
		loader_err(err, errlen,
			   "kernel: bzImage truncated: syssize says %llu bytes of kernel after the "
			   "setup code, the file has %zu",
			   (unsigned long long)pm_len, len - out->setup_len);
		return -EINVAL;
	}
	out->pm_len = (size_t)pm_len;

	/* boot.rst "kernel_alignment": the alignment unit required by a relocatable kernel. */
	if (h.kernel_alignment == 0 || (h.kernel_alignment & (h.kernel_alignment - 1)) != 0) {
		loader_err(err, errlen,
			   "kernel: bzImage kernel_alignment 0x%x is not a power of two",
			   h.kernel_alignment);
		return -EINVAL;
	}
	out->kernel_alignment = h.kernel_alignment;
	out->relocatable = h.relocatable_kernel != 0;

	/* init_size is the memory the kernel needs from its load address, which includes the
	 * image itself: anything smaller is a corrupt header. */
	if (h.init_size < pm_len) {
		loader_err(
			err, errlen,
			"kernel: bzImage init_size 0x%x is smaller than the kernel itself (0x%llx)",
			h.init_size, (unsigned long long)pm_len);
		return -EINVAL;
	}
	out->init_size = h.init_size;

	uint64_t pl_end;
	if (__builtin_add_overflow((uint64_t)h.payload_offset, (uint64_t)h.payload_length,
				   &pl_end) ||
	    pl_end > pm_len) {
		loader_err(err, errlen,
			   "kernel: bzImage payload (offset 0x%x, %u bytes) lies outside the %s "
			   "kernel",
			   h.payload_offset, h.payload_length,
			   loader_fmt_size(pm_len, sz, sizeof(sz)));
		return -EINVAL;
	}
	out->payload_offset = h.payload_offset;
	out->payload_length = h.payload_length;

	/* A kernel that must sit at pref_address cannot sit in the boot area below 1 MiB. */
	out->pref_address = h.pref_address;
	if (!out->relocatable && h.pref_address && h.pref_address < LAYOUT_HIMEM) {
		loader_err(err, errlen,
			   "kernel: bzImage is not relocatable and wants 0x%llx, below 1 MiB",
			   (unsigned long long)h.pref_address);
		return -EINVAL;
	}
	out->cmdline_size = h.cmdline_size;
	out->initrd_addr_max = h.initrd_addr_max ? h.initrd_addr_max : BZ_INITRD_ADDR_MAX_DEFAULT;
	return 0;
}

static bool range_fits(uint64_t addr, uint64_t size, uint64_t low_end)
{
	uint64_t end;

	return addr >= LAYOUT_HIMEM && !__builtin_add_overflow(addr, size, &end) && end <= low_end;
}

/*
 * Where the protected-mode part goes: pref_address (CONFIG_PHYSICAL_START, 16 MiB on Debian),
 * rounded up to kernel_alignment for a relocatable kernel. The 64-bit entry decompresses in
 * place and needs init_size bytes from there, all in identity-mapped low RAM.
 */
int bzimage_choose_load_addr(const struct bzimage_info *bi, uint64_t low_end, uint64_t *addr,
			     char *err, size_t errlen)
{
	uint64_t need = ALIGN_UP((uint64_t)bi->init_size, 4096ULL);
	uint64_t align = MAX((uint64_t)bi->kernel_alignment, 4096ULL);
	uint64_t pref = bi->pref_address ? bi->pref_address : LAYOUT_HIMEM;
	char sz[32];

	/*
	 * A relocatable kernel loaded below pref_address (= LOAD_PHYSICAL_ADDR) decompresses at
	 * pref_address anyway (arch/x86/boot/compressed/head_64.S rounds the load address up to
	 * kernel_alignment and takes LOAD_PHYSICAL_ADDR if that is lower), so loading lower
	 * saves nothing: [pref, pref + init_size) must be RAM either way.
	 */
	uint64_t base = bi->relocatable ? ALIGN_UP(MAX(pref, LAYOUT_HIMEM), align) : pref;
	low_end = MIN(low_end, LAYOUT_MMIO_HOLE_END);
	if (range_fits(base, need, low_end)) {
		*addr = base;
		return 0;
	}
	loader_err(
		err, errlen,
		"kernel: needs %s (init_size) from 0x%llx but guest RAM below 4 GiB ends at 0x%llx",
		loader_fmt_size(need, sz, sizeof(sz)), (unsigned long long)base,
		(unsigned long long)low_end);
	return -ENOMEM;
}

int bzimage_load(struct guest_mem *gm, const struct boot_config *cfg, struct boot_result *out,
		 char *err, size_t errlen)
{
	struct bzimage_info bi;
	struct bz_boot_params *bp = NULL;
	uint64_t addr, initrd = 0;
	int ret;

	ret = bzimage_parse(cfg->kernel, cfg->kernel_len, &bi, err, errlen);
	if (ret < 0)
		return ret;
	ret = bzimage_choose_load_addr(&bi, gm_low_size(gm), &addr, err, errlen);
	if (ret < 0)
		return ret;
	/* Check everything that can be refused before writing anything big. */
	ret = x86_boot_write_cmdline(gm, cfg->cmdline, bi.cmdline_size, err, errlen);
	if (ret < 0)
		return ret;
	ret = x86_boot_place_initrd(gm, cfg->initrd, cfg->initrd_len, addr + bi.init_size,
				    (uint64_t)bi.initrd_addr_max + 1, &initrd, err, errlen);
	if (ret < 0)
		return ret;
	if (gm_write(gm, GPA(addr), cfg->kernel + bi.pm_offset, bi.pm_len) < 0) {
		loader_err(err, errlen, "kernel: cannot write %zu bytes at 0x%llx", bi.pm_len,
			   (unsigned long long)addr);
		return -EFAULT;
	}

	/* The zero page: zeroed, then the setup header copied from the image as boot.rst
	 * ("64-bit Boot Protocol") says, then our fields. */
	bp = gm_ptr(gm, GPA(LAYOUT_ZERO_PAGE), sizeof(*bp));
	if (!bp) {
		loader_err(err, errlen, "kernel: no guest RAM for the zero page");
		return -EFAULT;
	}
	memset(bp, 0, sizeof(*bp));
	memcpy(&bp->hdr, cfg->kernel + BZ_HDR_OFFSET, bi.hdr_len);
	bp->hdr.code32_start = (uint32_t)addr;
	x86_boot_fill_zero_page(gm, bp, initrd, initrd ? cfg->initrd_len : 0,
				/* boot_params.acpi_rsdp_addr exists from protocol 2.14 on */
				bi.version >= 0x020e ? cfg->acpi_rsdp : 0);

	out->format = KERNEL_BZIMAGE;
	x86_boot_regs_long(addr + BZ_ENTRY_64, &out->regs, &out->sregs);
	out->kernel_start = addr;
	out->kernel_end = addr + bi.init_size;
	out->initrd_start = initrd;
	out->initrd_size = initrd ? cfg->initrd_len : 0;
	return 0;
}
