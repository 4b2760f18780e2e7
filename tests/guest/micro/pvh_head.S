/* SPDX-License-Identifier: Apache-2.0 */
/*
 * micro-pvh.elf: i386 ELF entered through the Xen PVH boot ABI (xen/include/public/arch-x86/
 * hvm/start_info.h and docs/misc/pvh.pandoc): XEN_ELFNOTE_PHYS32_ENTRY gives the 32-bit entry;
 * the CPU is in flat 32-bit protected mode, paging off, EBX = struct hvm_start_info.
 */
#include "micro.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

	.section .note.Xen, "a"
	.balign	4
	.long	4				/* namesz: "Xen\0" */
	.long	4				/* descsz: a 32-bit physical address */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.balign	4
	.long	pvh_start
	.balign	4

	.text
	.code32
	.globl	pvh_start
pvh_start:
	cli
	cld
	movl	$micro_stack_top, %esp
	/* The segment registers may hold any flat selectors; only the GDTR may be stale. */
	movl	$micro_bss_start, %edi
	movl	$micro_bss_end, %ecx
	subl	%edi, %ecx
	xorl	%eax, %eax
	rep stosb
	pushl	%ebx				/* boot_info */
	pushl	$MICRO_BOOT_PVH			/* boot_kind */
	call	micro_main
1:	cli
	hlt
	jmp	1b

	.section .micro_stack, "aw", @nobits
	.balign	16
	.space	MICRO_STACK_SIZE
	.globl	micro_stack_top
micro_stack_top:
