/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Application processor trampoline. A SIPI starts the AP in real mode at CS = vector << 8, IP = 0
 * (Intel SDM Vol. 3A §9.4.4 "MP Initialization Example"), so this code is position independent
 * and addresses its counter relative to CS. Each AP adds one to the counter with a locked xadd
 * and parks with interrupts off; the BSP only counts arrivals.
 */
#include "micro.h"

	.section .rodata.tramp, "a"
	.code16
	.globl micro_tramp_start, micro_tramp_count, micro_tramp_end
micro_tramp_start:
	cli
	movl	$1, %eax
	lock xaddl %eax, %cs:(micro_tramp_count - micro_tramp_start)
1:	cli
	hlt
	jmp	1b
	.balign 4
micro_tramp_count:
	.long	0
micro_tramp_end:
	.code32

/*
 * Worker trampoline (micro_ap_workers() in micro.c): the AP leaves real mode for flat 32-bit
 * protected mode, paging off, in both kernels (the 64-bit BSP keeps its own mode), and serves
 * commands from its mailbox (struct micro_ap_box, micro.h) until the VM ends: the second vCPU
 * of the races in hostile.c. Register-only code, no stack; every access is a plain 32-bit
 * load or store, so it reaches RAM and the MMIO hole below 4 GiB alike.
 */
	.section .rodata.tramp, "a"
	.code16
	.globl micro_wtramp_start, micro_wtramp_end
	.balign 16
micro_wtramp_start:
	cli
	movw	%cs, %ax
	movw	%ax, %ds
	lgdtl	(micro_wtramp_gdtr - micro_wtramp_start)
	movl	%cr0, %eax
	andl	$0x9fffffff, %eax		/* CD, NW off (INIT leaves them set) */
	orl	$1, %eax			/* PE */
	movl	%eax, %cr0
	ljmpl	$0x08, $micro_ap_pm32
	.balign 4
micro_wtramp_gdtr:
	.word	micro_ap_gdt_end - micro_ap_gdt - 1
	.long	micro_ap_gdt
micro_wtramp_end:

	.section .rodata
	.balign 8
micro_ap_gdt:
	.quad	0
	.quad	0x00cf9a000000ffff		/* 0x08: code, flat 4 GiB, 32-bit */
	.quad	0x00cf92000000ffff		/* 0x10: data, flat 4 GiB */
micro_ap_gdt_end:

	.text
	.code32
micro_ap_pm32:
	movl	$0x10, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	$1, %eax
	lock xaddl %eax, micro_ap_next
	cmpl	$MICRO_AP_MAX, %eax
	jae	.Lap_park
	shll	$MICRO_AP_BOX_SHIFT, %eax
	leal	micro_ap_box(%eax), %ebx
	lock incl MB_ALIVE(%ebx)
.Lap_idle:
	movl	MB_SEQ(%ebx), %ebp
	cmpl	MB_DONE(%ebx), %ebp
	jne	.Lap_cmd
	pause
	jmp	.Lap_idle
.Lap_cmd:
	movl	$0, MB_ITERS(%ebx)
	movl	MB_ADDR(%ebx), %edi
	movl	MB_ADDR2(%ebx), %esi
	testl	%esi, %esi
	jnz	1f
	movl	%edi, %esi			/* no second address: the first one */
1:	movl	MB_COUNT(%ebx), %ecx
.Lap_loop:
	testl	%ecx, %ecx
	jz	.Lap_done
	cmpl	$0, MB_STOP(%ebx)
	jne	.Lap_done
	movl	MB_DELAY(%ebx), %edx
2:	testl	%edx, %edx
	jz	3f
	pause
	decl	%edx
	jmp	2b
3:	movl	MB_OP(%ebx), %eax
	cmpl	$MICRO_AP_READ, %eax
	je	.Lap_read
	movl	MB_VAL0(%ebx), %eax
	movl	%eax, (%edi)
	cmpl	$MICRO_AP_ALT, MB_OP(%ebx)
	jne	.Lap_next
	movl	MB_DELAY(%ebx), %edx
4:	testl	%edx, %edx
	jz	5f
	pause
	decl	%edx
	jmp	4b
5:	movl	MB_VAL1(%ebx), %eax
	movl	%eax, (%esi)
	jmp	.Lap_next
.Lap_read:
	movl	(%edi), %eax
	movl	%eax, MB_VAL1(%ebx)		/* the last value read */
.Lap_next:
	incl	MB_ITERS(%ebx)
	decl	%ecx
	jmp	.Lap_loop
.Lap_done:
	movl	%ebp, MB_DONE(%ebx)
	jmp	.Lap_idle
.Lap_park:
	cli
	hlt
	jmp	.Lap_park

	.bss
	.balign 64
	.globl micro_ap_box, micro_ap_next
micro_ap_next:
	.long	0
	.balign 64
micro_ap_box:
	.space	MICRO_AP_MAX << MICRO_AP_BOX_SHIFT
