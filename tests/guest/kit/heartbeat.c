// SPDX-License-Identifier: Apache-2.0
/*
 * heartbeat: print "VMMTEST hb N SECS.USECS up SECS.CS" on stdout about every second, N from 1,
 * forever. SECS.USECS is CLOCK_REALTIME (what date shows; busybox date has no sub-second
 * format); up is CLOCK_BOOTTIME, the guest's uptime: it never goes back unless the guest
 * rebooted (the host-update case carries the guest across a kexec of its host).
 *
 * For the live-update case (records scenario), whose host compares each line with its own
 * clock as the line arrives: the clock is read right before the line is written, in a
 * process that stays (no fork, exec or cold page between the two), so that what the host
 * sees late is the console's delay, not the guest's work. Freestanding, as outb.c.
 */
#define SYS_WRITE         1
#define SYS_NANOSLEEP     35
#define SYS_CLOCK_GETTIME 228
#define CLOCK_REALTIME    0
#define CLOCK_BOOTTIME    7

struct kts {
	long sec;
	long nsec;
};

long heartbeat_main(void);

static long sys2(long nr, long a, long b)
{
	long ret;

	__asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return ret;
}

static long sys3(long nr, long a, long b, long c)
{
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

/* v in decimal at p, at least width digits (zeros in front); returns the end. */
static char *put_dec(char *p, unsigned long v, int width)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width)
		tmp[n++] = '0';
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

__asm__(".globl _start\n"
	"_start:\n"
	"	and $-16, %rsp\n"
	"	call heartbeat_main\n"
	"	mov %rax, %rdi\n"
	"	mov $60, %eax\n"
	"	syscall\n"
	"	hlt\n");

long heartbeat_main(void)
{
	struct kts now, up, second = { 1, 0 };
	char line[80], *p;

	for (unsigned long n = 1;; n++) {
		if (sys2(SYS_CLOCK_GETTIME, CLOCK_REALTIME, (long)&now) != 0 ||
		    sys2(SYS_CLOCK_GETTIME, CLOCK_BOOTTIME, (long)&up) != 0)
			return 1;
		p = put_str(line, "VMMTEST hb ");
		p = put_dec(p, n, 1);
		*p++ = ' ';
		p = put_dec(p, (unsigned long)now.sec, 1);
		*p++ = '.';
		p = put_dec(p, (unsigned long)now.nsec / 1000, 6);
		p = put_str(p, " up ");
		p = put_dec(p, (unsigned long)up.sec, 1);
		*p++ = '.';
		p = put_dec(p, (unsigned long)up.nsec / 10000000, 2);
		*p++ = '\n';
		if (sys3(SYS_WRITE, 1, (long)line, p - line) != p - line)
			return 1;
		sys2(SYS_NANOSLEEP, (long)&second, 0);
	}
}
