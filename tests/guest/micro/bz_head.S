/* SPDX-License-Identifier: Apache-2.0 */
/*
 * micro-bzimage: a minimal bzImage. Layout as Linux Documentation/arch/x86/boot.rst describes:
 * the real-mode part ("setup", 1 + setup_sects sectors) with the setup header at 0x1f1, then the
 * protected-mode part, which the loader puts at pref_address (0x100000). Only the 64-bit entry
 * (protected-mode part + 0x200, boot.rst "64-bit Boot Protocol") is implemented; the 16-bit and
 * 32-bit entries just park the CPU.
 *
 * relocatable_kernel is 0: the code is linked at 0x100000 (no PIC), so a loader must honour
 * pref_address; that is also what makes a misplacing VMM fail loudly.
 */
#include "micro.h"

#define SETUP_SECTS   1
#define LOADED_HIGH   0x01
#define XLF_KERNEL_64 0x0001

	.section .setup, "ax"
	.code16
setup_start:
	/* Boot sector: a loader never runs it; park if something does. */
	cli
	hlt
	jmp	setup_start

	.org	0x1f1
hdr_setup_sects:	.byte	SETUP_SECTS
hdr_root_flags:		.word	0
hdr_syssize:		.long	micro_syssize		/* 16-byte units, from the linker script */
hdr_ram_size:		.word	0
hdr_vid_mode:		.word	0xffff			/* NORMAL_VGA */
hdr_root_dev:		.word	0
hdr_boot_flag:		.word	0xaa55
	/* 0x200: the 16-bit entry jumps over the header to a parking loop. */
hdr_jump:		.byte	0xeb, setup_park - 1f
1:
hdr_header:		.ascii	"HdrS"
hdr_version:		.word	0x020f			/* 2.15 */
hdr_realmode_swtch:	.long	0
hdr_start_sys_seg:	.word	0x1000
hdr_kernel_version:	.word	kernel_version_str - 0x200
hdr_type_of_loader:	.byte	0
hdr_loadflags:		.byte	LOADED_HIGH
hdr_setup_move_size:	.word	0x8000
hdr_code32_start:	.long	0x100000
hdr_ramdisk_image:	.long	0
hdr_ramdisk_size:	.long	0
hdr_bootsect_kludge:	.long	0
hdr_heap_end_ptr:	.word	0
hdr_ext_loader_ver:	.byte	0
hdr_ext_loader_type:	.byte	0
hdr_cmd_line_ptr:	.long	0
hdr_initrd_addr_max:	.long	0x7fffffff
hdr_kernel_alignment:	.long	0x200000
hdr_relocatable:	.byte	0
hdr_min_alignment:	.byte	21
hdr_xloadflags:		.word	XLF_KERNEL_64
hdr_cmdline_size:	.long	2047
hdr_hardware_subarch:	.long	0
hdr_subarch_data:	.quad	0
hdr_payload_offset:	.long	0
hdr_payload_length:	.long	0
hdr_setup_data:		.quad	0
hdr_pref_address:	.quad	0x100000
hdr_init_size:		.long	micro_init_size		/* from the linker script */
hdr_handover_offset:	.long	0
hdr_kernel_info_offset:	.long	micro_kernel_info_offset	/* from the linker script */

kernel_version_str:
	.asciz	"vmm micro-bzimage"
setup_park:
	cli
	hlt
	jmp	setup_park
	.org	(SETUP_SECTS + 1) * 512

	/* Protected-mode part, linked at 0x100000. */
	.section .head.text, "ax"
	.code32
	.globl	pm_start
pm_start:
	/* 32-bit entry (code32_start): not supported, park. */
	cli
	hlt
	jmp	pm_start

	.org	0x200
	.code64
	.globl	startup_64
startup_64:
	/* boot.rst: interrupts off, RSI = boot_params, flat 4 GiB identity map, CS 0x10. */
	cli
	cld
	movabs	$micro_stack_top, %rsp
	/* Clear .bss (CRC table, AP bookkeeping); the stack lives outside it. */
	movabs	$micro_bss_start, %rdi
	movabs	$micro_bss_end, %rcx
	subq	%rdi, %rcx
	xorl	%eax, %eax
	rep stosb
	movl	$MICRO_BOOT_BZIMAGE, %edi
	/* RSI already holds the boot_params pointer: second argument. */
	call	micro_main
2:	cli
	hlt
	jmp	2b

	/* boot.rst "The kernel_info": header, size, size_total, setup_type_max. */
	.balign	4
	.globl	kernel_info
kernel_info:
	.ascii	"LToP"
	.long	16
	.long	16
	.long	0

	.section .micro_stack, "aw", @nobits
	.balign	16
	.space	MICRO_STACK_SIZE
	.globl	micro_stack_top
micro_stack_top:
