/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structures of the x86 Linux boot protocol and the PVH boot ABI, written from the specs:
 *   - Linux Documentation/arch/x86/boot.rst ("The Real-Mode Kernel Header", "Details of Header
 *     Fields", "64-bit Boot Protocol") for struct bz_setup_header,
 *   - Linux Documentation/arch/x86/zero-page.rst for struct bz_boot_params (the "zero page"),
 *   - Xen include/public/arch-x86/hvm/start_info.h and docs/misc/pvh.pandoc for hvm_start_info
 *     (version 1, with the memory map).
 * Only the fields a loader touches are named; the rest is padding at the documented offsets, and
 * every named field's offset is checked at compile time below.
 */
#ifndef VMM_BOOTPARAM_H
#define VMM_BOOTPARAM_H

#include <stdint.h>
#include "vmm/compiler.h"

/* e820 types (ACPI 6.5 §15 "System Address Map Interfaces"; PVH memmap uses the same values). */
#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3
#define E820_NVS      4
#define E820_UNUSABLE 5

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} PACKED;

#define E820_MAX_ENTRIES_ZEROPAGE 128

/* Setup header as it appears in the image at 0x1f1 and in boot_params.hdr (boot.rst). */
struct bz_setup_header {
	uint8_t setup_sects;		/* 0x1f1 */
	uint16_t root_flags;		/* 0x1f2 */
	uint32_t syssize;		/* 0x1f4, 16-byte paragraphs */
	uint16_t ram_size;		/* 0x1f8 */
	uint16_t vid_mode;		/* 0x1fa */
	uint16_t root_dev;		/* 0x1fc */
	uint16_t boot_flag;		/* 0x1fe, 0xaa55 */
	uint16_t jump;			/* 0x200 */
	uint32_t header;		/* 0x202, "HdrS" */
	uint16_t version;		/* 0x206 */
	uint32_t realmode_swtch;	/* 0x208 */
	uint16_t start_sys_seg;		/* 0x20c */
	uint16_t kernel_version;	/* 0x20e */
	uint8_t type_of_loader;		/* 0x210 */
	uint8_t loadflags;		/* 0x211 */
	uint16_t setup_move_size;	/* 0x212 */
	uint32_t code32_start;		/* 0x214 */
	uint32_t ramdisk_image;		/* 0x218 */
	uint32_t ramdisk_size;		/* 0x21c */
	uint32_t bootsect_kludge;	/* 0x220 */
	uint16_t heap_end_ptr;		/* 0x224 */
	uint8_t ext_loader_ver;		/* 0x226 */
	uint8_t ext_loader_type;	/* 0x227 */
	uint32_t cmd_line_ptr;		/* 0x228 */
	uint32_t initrd_addr_max;	/* 0x22c, highest byte an initrd may occupy */
	uint32_t kernel_alignment;	/* 0x230 */
	uint8_t relocatable_kernel;	/* 0x234 */
	uint8_t min_alignment;		/* 0x235, log2 */
	uint16_t xloadflags;		/* 0x236 */
	uint32_t cmdline_size;		/* 0x238, without the terminating NUL */
	uint32_t hardware_subarch;	/* 0x23c */
	uint64_t hardware_subarch_data; /* 0x240 */
	uint32_t payload_offset;	/* 0x248, from the start of the protected-mode part */
	uint32_t payload_length;	/* 0x24c */
	uint64_t setup_data;		/* 0x250 */
	uint64_t pref_address;		/* 0x258 */
	uint32_t init_size;		/* 0x260 */
	uint32_t handover_offset;	/* 0x264 */
	uint32_t kernel_info_offset;	/* 0x268 */
} PACKED;

#define BZ_HDR_OFFSET	0x1f1u
#define BZ_HDRS_MAGIC	0x53726448u /* "HdrS" little-endian */
#define BZ_BOOT_FLAG	0xaa55u
#define BZ_LOADER_UNDEF 0xffu /* type_of_loader: boot loader with no assigned ID */

/* loadflags (boot.rst "Details of Header Fields") */
#define BZ_LOADED_HIGH	 (1u << 0)
#define BZ_KASLR_FLAG	 (1u << 1)
#define BZ_QUIET_FLAG	 (1u << 5)
#define BZ_KEEP_SEGMENTS (1u << 6)
#define BZ_CAN_USE_HEAP	 (1u << 7)

/* xloadflags */
#define XLF_KERNEL_64		   (1u << 0)
#define XLF_CAN_BE_LOADED_ABOVE_4G (1u << 1)
#define XLF_EFI_HANDOVER_32	   (1u << 2)
#define XLF_EFI_HANDOVER_64	   (1u << 3)
#define XLF_EFI_KEXEC		   (1u << 4)

/* The zero page (zero-page.rst). 4096 bytes. */
struct bz_boot_params {
	uint8_t screen_info[0x40];	 /* 0x000 */
	uint8_t apm_bios_info[0x14];	 /* 0x040 */
	uint8_t _pad2[4];		 /* 0x054 */
	uint64_t tboot_addr;		 /* 0x058 */
	uint8_t ist_info[0x10];		 /* 0x060 */
	uint64_t acpi_rsdp_addr;	 /* 0x070 */
	uint8_t _pad3[8];		 /* 0x078 */
	uint8_t hd0_info[16];		 /* 0x080 */
	uint8_t hd1_info[16];		 /* 0x090 */
	uint8_t sys_desc_table[0x10];	 /* 0x0a0 */
	uint8_t olpc_ofw_header[0x10];	 /* 0x0b0 */
	uint32_t ext_ramdisk_image;	 /* 0x0c0 */
	uint32_t ext_ramdisk_size;	 /* 0x0c4 */
	uint32_t ext_cmd_line_ptr;	 /* 0x0c8 */
	uint8_t _pad4[0x13c - 0xcc];	 /* 0x0cc */
	uint32_t cc_blob_address;	 /* 0x13c */
	uint8_t edid_info[0x80];	 /* 0x140 */
	uint8_t efi_info[0x20];		 /* 0x1c0 */
	uint32_t alt_mem_k;		 /* 0x1e0 */
	uint32_t scratch;		 /* 0x1e4 */
	uint8_t e820_entries;		 /* 0x1e8 */
	uint8_t eddbuf_entries;		 /* 0x1e9 */
	uint8_t edd_mbr_sig_buf_entries; /* 0x1ea */
	uint8_t kbd_status;		 /* 0x1eb */
	uint8_t secure_boot;		 /* 0x1ec */
	uint8_t _pad5[2];		 /* 0x1ed */
	uint8_t sentinel;		 /* 0x1ef */
	uint8_t _pad6[1];		 /* 0x1f0 */
	struct bz_setup_header hdr;	 /* 0x1f1 */
	uint8_t _pad7[0x290 - 0x1f1 - sizeof(struct bz_setup_header)];
	uint32_t edd_mbr_sig_buffer[16];			 /* 0x290 */
	struct e820_entry e820_table[E820_MAX_ENTRIES_ZEROPAGE]; /* 0x2d0 */
	uint8_t _pad8[48];					 /* 0xcd0 */
	uint8_t eddbuf[0x1ec];					 /* 0xd00 */
	uint8_t _pad9[276];					 /* 0xeec */
} PACKED;

_Static_assert(sizeof(struct bz_setup_header) == 0x26c - 0x1f1, "setup_header size");
_Static_assert(offsetof(struct bz_setup_header, version) == 0x206 - 0x1f1, "version");
_Static_assert(offsetof(struct bz_setup_header, cmd_line_ptr) == 0x228 - 0x1f1, "cmd_line_ptr");
_Static_assert(offsetof(struct bz_setup_header, xloadflags) == 0x236 - 0x1f1, "xloadflags");
_Static_assert(offsetof(struct bz_setup_header, pref_address) == 0x258 - 0x1f1, "pref_address");
_Static_assert(offsetof(struct bz_setup_header, init_size) == 0x260 - 0x1f1, "init_size");
_Static_assert(offsetof(struct bz_boot_params, acpi_rsdp_addr) == 0x070, "acpi_rsdp_addr");
_Static_assert(offsetof(struct bz_boot_params, ext_ramdisk_image) == 0x0c0, "ext_ramdisk_image");
_Static_assert(offsetof(struct bz_boot_params, cc_blob_address) == 0x13c, "cc_blob_address");
_Static_assert(offsetof(struct bz_boot_params, e820_entries) == 0x1e8, "e820_entries");
_Static_assert(offsetof(struct bz_boot_params, sentinel) == 0x1ef, "sentinel");
_Static_assert(offsetof(struct bz_boot_params, hdr) == 0x1f1, "hdr");
_Static_assert(offsetof(struct bz_boot_params, edd_mbr_sig_buffer) == 0x290, "edd_mbr_sig_buffer");
_Static_assert(offsetof(struct bz_boot_params, e820_table) == 0x2d0, "e820_table");
_Static_assert(offsetof(struct bz_boot_params, eddbuf) == 0xd00, "eddbuf");
_Static_assert(sizeof(struct bz_boot_params) == 4096, "boot_params size");

/* PVH: Xen start_info.h. The magic is "xEn3" with the top bit of each byte flipped. */
#define HVM_START_MAGIC		 0x336ec578u
#define XEN_ELFNOTE_PHYS32_ENTRY 18

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	/* version 1 */
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* e820 types */
	uint32_t reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info");
_Static_assert(offsetof(struct hvm_start_info, memmap_paddr) == 40, "memmap_paddr");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "hvm_memmap_table_entry");

#endif
