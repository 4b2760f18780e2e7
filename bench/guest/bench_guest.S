/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Benchmark micro-guest: one i386 ELF booted through the Xen PVH ABI (docs/misc/pvh.pandoc:
 * flat 32-bit protected mode, paging off, entry from XEN_ELFNOTE_PHYS32_ENTRY), the boot path
 * that both vmm and QEMU's microvm (via its qboot firmware) take for an ELF given as -kernel.
 *
 * Two variants, chosen at build time:
 *   BENCH_FIRST: the very first instruction writes AL to the debug-exit port, so exec -> exit
 *                measures VMM setup + teardown (an upper bound of "exec to first instruction").
 *                AL is not defined by the PVH ABI: the exit status is (AL << 1) | 1, any odd value.
 *   otherwise:   print one line on COM1 (polling LSR.THRE like a real driver, 16550 datasheet
 *                "Line Status Register" bit 5) and write 0 to the debug-exit port: status 1.
 * Only integer instructions and port I/O: privileged guest code is emulated on nested KVM.
 */
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define PORT_DEBUG_EXIT 0xf4
#define PORT_COM1 0x3f8
#define UART_LSR 5
#define UART_LSR_THRE 0x20
#define THRE_SPINS 100000 /* never hang on a missing or stuck UART */

	.section .note.Xen, "a"
	.balign	4
	.long	4				/* namesz: "Xen\0" */
	.long	4				/* descsz: 32-bit physical entry */
	.long	XEN_ELFNOTE_PHYS32_ENTRY
	.asciz	"Xen"
	.balign	4
	.long	bench_start
	.balign	4

	.text
	.code32
	.globl	bench_start
bench_start:
#ifdef BENCH_FIRST
	outb	%al, $PORT_DEBUG_EXIT
#else
	movl	$bench_msg, %esi
next_char:
	movb	(%esi), %bl
	testb	%bl, %bl
	jz	done
	movl	$THRE_SPINS, %ecx
	movw	$(PORT_COM1 + UART_LSR), %dx
wait_thre:
	inb	%dx, %al
	testb	$UART_LSR_THRE, %al
	jnz	send
	loop	wait_thre
send:
	movw	$PORT_COM1, %dx
	movb	%bl, %al
	outb	%al, %dx
	incl	%esi
	jmp	next_char
done:
	xorl	%eax, %eax
	outb	%al, $PORT_DEBUG_EXIT
#endif
	/* Only reached if the debug-exit port is missing. */
1:	cli
	hlt
	jmp	1b

	.section .rodata
bench_msg:
	.asciz	"vmm-bench: hello from the micro-guest\n"
