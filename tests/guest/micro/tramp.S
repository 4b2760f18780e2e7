/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Application processor trampoline. A SIPI starts the AP in real mode at CS = vector << 8, IP = 0
 * (Intel SDM Vol. 3A §9.4.4 "MP Initialization Example"), so this code is position independent
 * and addresses its counter relative to CS. Each AP adds one to the counter with a locked xadd
 * and parks with interrupts off; the BSP only counts arrivals.
 */
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
