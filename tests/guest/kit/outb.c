// SPDX-License-Identifier: Apache-2.0
/*
 * outb PORT VALUE: write one byte to an x86 I/O port from guest user space.
 *
 * The cloud kernel has no /dev/port (CONFIG_DEVPORT is not set), so the debug-exit
 * scenario needs ioperm(2) (CONFIG_X86_IOPL_IOPERM=y in both reference kernels).
 * Freestanding (no libc) so that it builds static with any gcc, without libc.a.
 * PORT and VALUE are decimal or 0x-prefixed hexadecimal.
 */
#define SYS_EXIT   60
#define SYS_IOPERM 173

long outb_main(long *sp);

static long sys3(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

/* Returns -1 on anything that is not a number below 0x10000. */
static long parse(const char *s)
{
	unsigned long v = 0, base = 10, d;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else
			return -1;
		if (d >= base)
			return -1;
		v = v * base + d;
		if (v > 0xffff)
			return -1;
	}
	return (long)v;
}

/* The x86-64 process entry: argc at (%rsp), argv after it (System V ABI §3.4.1). */
__asm__(".globl _start\n"
	"_start:\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call outb_main\n"
	"	mov %rax, %rdi\n"
	"	mov $60, %eax\n"
	"	syscall\n"
	"	hlt\n");

long outb_main(long *sp)
{
	long argc = sp[0];
	char **argv = (char **)(sp + 1);
	long port, value;
	unsigned char byte;

	if (argc != 3)
		return 2;
	port = parse(argv[1]);
	value = parse(argv[2]);
	if (port < 0 || value < 0 || value > 0xff)
		return 2;
	if (sys3(SYS_IOPERM, port, 1, 1) != 0)
		return 1;
	byte = (unsigned char)value;
	__asm__ volatile("outb %0, %w1" : : "a"(byte), "Nd"((unsigned short)port));
	return 0;
}
