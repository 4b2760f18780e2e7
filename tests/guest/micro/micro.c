// SPDX-License-Identifier: Apache-2.0
/*
 * The micro-guest proper: shared by micro-bzimage (-m64) and micro-pvh.elf (-m32).
 *
 * Everything here runs at CPL0, which the nested KVM of our test machines emulates at about one
 * microsecond per instruction (/work/shared/ENVIRONMENT.md), so the code is integer only, small,
 * and each check costs a few thousand instructions. Expected values come from the kernel command
 * line ("t.key=value"), never from constants in the guest: the guest checks what the test asked
 * the VMM to build.
 *
 * Output on COM1, one line per check: "MICRO PASS <check>" or "MICRO FAIL <check>: detail".
 * End: ACPI poweroff (VMM exits 0) when everything passed, debug-exit 0x7f (VMM exits 255) if not.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "micro.h"

#define COM1		0x3f8
#define UART_LSR	5
#define UART_LSR_DR	0x01 /* data ready */
#define UART_LSR_THRE	0x20 /* transmit holding register empty */
#define PORT_DEBUG_EXIT 0xf4
#define PORT_PVPANIC	0x505
#define PORT_SLEEP_CTL	0x600
#define PORT_I8042_CMD	0x64
#define PORT_I8042_DATA	0x60

/* ACPI 6.5 §4.8.3.7: SLP_EN (bit 5) | SLP_TYP (bits 2-4), S5 type 5 as the VMM's \_S5 says. */
#define SLEEP_CTL_S5 ((5 << 2) | 0x20)

#define E820_RAM      1
#define E820_RESERVED 2
#define E820_ACPI     3

#define GiB	   (1024ULL * 1024 * 1024)
#define MiB	   (1024ULL * 1024)
#define PHYS_LIMIT (4 * GiB) /* identity map (64-bit) or flat segments (32-bit) */
#define MAX_MAP	   128
#define MAX_CPUS   64
#define MAX_USED   16

/* Symbols from the linker scripts: the kernel's whole footprint. */
extern char micro_pm_start_sym[] __asm__("micro_pm_start");
extern char micro_end_sym[] __asm__("micro_end");

struct mem_range {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

struct boot {
	uint32_t kind;
	const char *kind_name;
	uintptr_t info;
	uint64_t cmdline_addr;
	const char *cmdline; /* NULL if the pointer was unusable */
	uint32_t cmdline_len;
	uint32_t cmdline_max; /* what the kernel declared it accepts */
	bool has_initrd;
	uint64_t initrd_addr;
	uint64_t initrd_size;
	uint64_t initrd_max; /* highest address the initrd may end at, inclusive */
	uint64_t rsdp_addr;
	uint32_t nmap;
	struct mem_range map[MAX_MAP];
	/* ranges the guest must not reuse (boot data still referenced, live page tables) */
	uint32_t nused;
	struct mem_range used[MAX_USED];
};

struct params {
	uint64_t mem;
	uint64_t cpus;
	uint64_t cmdlen;
	uint64_t initrd_len;
	uint64_t initrd_crc;
	bool have_mem, have_cpus, have_cmdlen, have_initrd_len, have_initrd_crc;
};

static struct boot boot;
static uint32_t crc_table[256];
static unsigned int n_pass, n_fail;

/* gcc may emit calls to these even in freestanding code (struct copies, zeroing). */
void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;

	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

/* ---- CPU ---- */

static __attribute__((noreturn)) void park(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" ::: "memory");
}

/*
 * A guest physical range as a pointer, or NULL. Both builds reach exactly the first 4 GiB (the
 * VMM identity-maps them for the 64-bit entry; PVH runs with paging off), and every range comes
 * from the VMM, so it is checked with overflow-safe arithmetic before use.
 */
const void *phys(uint64_t addr, uint64_t len)
{
	uint64_t end;

	if (__builtin_add_overflow(addr, len, &end) || end > PHYS_LIMIT)
		return NULL;
	if (addr == 0)
		return NULL;
	return (const void *)(uintptr_t)addr;
}

static uint8_t rd8(const void *p, uint32_t off)
{
	return ((const uint8_t *)p)[off];
}

static uint16_t rd16(const void *p, uint32_t off)
{
	uint16_t v;

	memcpy(&v, (const uint8_t *)p + off, sizeof(v));
	return v;
}

static uint32_t rd32(const void *p, uint32_t off)
{
	uint32_t v;

	memcpy(&v, (const uint8_t *)p + off, sizeof(v));
	return v;
}

static uint64_t rd64(const void *p, uint32_t off)
{
	uint64_t v;

	memcpy(&v, (const uint8_t *)p + off, sizeof(v));
	return v;
}

/* ---- console ---- */

static void uart_putc(char c)
{
	/* Poll THRE before every byte, as a real 16550A driver must. */
	unsigned int spins = 0;

	while (!(inb(COM1 + UART_LSR) & UART_LSR_THRE) && spins++ < 100000)
		cpu_pause();
	outb((uint8_t)c, COM1);
}

static void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

static int uart_getc(void)
{
	while (!(inb(COM1 + UART_LSR) & UART_LSR_DR))
		cpu_pause();
	return inb(COM1);
}

static void put_u64(uint64_t v, bool hex)
{
	char buf[24];
	int i = 0;

	if (hex) {
		uart_puts("0x");
		do {
			buf[i++] = "0123456789abcdef"[v & 0xf];
			v >>= 4;
		} while (v);
	} else {
		/* Decimal only for 32-bit values: no libgcc 64-bit division in the -m32 build. */
		uint32_t w = (uint32_t)v;

		do {
			buf[i++] = (char)('0' + w % 10);
			w /= 10;
		} while (w);
	}
	while (i)
		uart_putc(buf[--i]);
}

/* printf subset: %s %c %u (uint32_t) %x (uint32_t) %llx (uint64_t), all in hex with 0x. */
static void uart_vprintf(const char *fmt, va_list ap)
{
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			if (*fmt == '\n')
				uart_putc('\r');
			uart_putc(*fmt);
			continue;
		}
		fmt++;
		if (*fmt == 's') {
			const char *s = va_arg(ap, const char *);

			uart_puts(s ? s : "(null)");
		} else if (*fmt == 'c') {
			uart_putc((char)va_arg(ap, int));
		} else if (*fmt == 'u') {
			put_u64(va_arg(ap, unsigned int), false);
		} else if (*fmt == 'x') {
			put_u64(va_arg(ap, unsigned int), true);
		} else if (fmt[0] == 'l' && fmt[1] == 'l' && fmt[2] == 'x') {
			fmt += 2;
			put_u64(va_arg(ap, unsigned long long), true);
		} else if (*fmt == '%') {
			uart_putc('%');
		} else {
			break;
		}
	}
}

void uart_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	uart_vprintf(fmt, ap);
	va_end(ap);
}

bool pass(const char *check)
{
	n_pass++;
	uart_printf("MICRO PASS %s\n", check);
	return true;
}

bool fail(const char *check, const char *fmt, ...)
{
	va_list ap;

	n_fail++;
	uart_printf("MICRO FAIL %s: ", check);
	va_start(ap, fmt);
	uart_vprintf(fmt, ap);
	va_end(ap);
	uart_puts("\r\n");
	return false;
}

/* ---- ending the VM ---- */

void delay(uint32_t n)
{
	while (n--)
		cpu_pause();
}

void debug_exit(uint8_t code)
{
	outb(code, PORT_DEBUG_EXIT);
	/* The VMM stops the VM after the exit; reaching here means the port is not wired. */
	delay(100000);
	uart_puts("MICRO FAIL debug-exit: still running\r\n");
	park();
}

void poweroff(void)
{
	/* ACPI 6.5 §4.8.3.7 hardware-reduced sleep control register, S5. */
	outb(SLEEP_CTL_S5, PORT_SLEEP_CTL);
	delay(100000);
	uart_puts("MICRO FAIL poweroff: still running\r\n");
	debug_exit(FAIL_EXIT_CODE);
}

/* ---- command line ---- */

bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* The value of "key=..." as a token of the command line, or NULL. */
const char *param_find(const char *cmdline, const char *key)
{
	size_t klen = 0;
	const char *p = cmdline;

	if (!cmdline)
		return NULL;
	while (key[klen])
		klen++;
	while (*p) {
		while (is_space(*p))
			p++;
		if (!memcmp(p, key, klen) && p[klen] == '=')
			return p + klen + 1;
		while (*p && !is_space(*p))
			p++;
	}
	return NULL;
}

bool param_u64(const char *cmdline, const char *key, uint64_t *out)
{
	const char *p = param_find(cmdline, key);
	uint64_t v = 0;
	unsigned int base = 10, digits = 0;

	if (!p)
		return false;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (; *p && !is_space(*p); p++, digits++) {
		unsigned int d;

		if (*p >= '0' && *p <= '9')
			d = (unsigned int)(*p - '0');
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = (unsigned int)(*p - 'a' + 10);
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = (unsigned int)(*p - 'A' + 10);
		else
			return false;
		if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v))
			return false;
	}
	if (!digits)
		return false;
	*out = v;
	return true;
}

bool param_is(const char *cmdline, const char *key, const char *want)
{
	const char *p = param_find(cmdline, key);
	size_t n = 0;

	if (!p)
		return false;
	while (want[n]) {
		if (p[n] != want[n])
			return false;
		n++;
	}
	return p[n] == '\0' || is_space(p[n]);
}

/* ---- boot information: boot_params or hvm_start_info, normalised ---- */

/* boot.rst "The zero page" offsets. */
#define BP_ACPI_RSDP_ADDR   0x070
#define BP_EXT_RAMDISK_IMG  0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES	    0x1e8
#define BP_BOOT_FLAG	    0x1fe
#define BP_HEADER	    0x202
#define BP_VERSION	    0x206
#define BP_TYPE_OF_LOADER   0x210
#define BP_LOADFLAGS	    0x211
#define BP_RAMDISK_IMAGE    0x218
#define BP_RAMDISK_SIZE	    0x21c
#define BP_CMD_LINE_PTR	    0x228
#define BP_INITRD_ADDR_MAX  0x22c
#define BP_CMDLINE_SIZE	    0x238
#define BP_E820_TABLE	    0x2d0
#define BP_SIZE		    0x1000

/* Xen public/arch-x86/hvm/start_info.h */
#define HVM_START_MAGIC	   0x336ec578
#define HVM_MAGIC	   0
#define HVM_VERSION	   4
#define HVM_NR_MODULES	   12
#define HVM_MODLIST_PADDR  16
#define HVM_CMDLINE_PADDR  24
#define HVM_RSDP_PADDR	   32
#define HVM_MEMMAP_PADDR   40
#define HVM_MEMMAP_ENTRIES 48
#define HVM_SIZE_V1	   56
#define HVM_MODLIST_ENTRY  32
#define HVM_MEMMAP_ENTRY   24

static void used_add(uint64_t addr, uint64_t size)
{
	if (boot.nused < MAX_USED && size) {
		boot.used[boot.nused].addr = addr;
		boot.used[boot.nused].size = size;
		boot.nused++;
	}
}

static void cmdline_load(uint32_t max)
{
	const char *s = phys(boot.cmdline_addr, 1);
	uint32_t n = 0;

	boot.cmdline = NULL;
	if (!s || !phys(boot.cmdline_addr, max + 1ULL))
		return;
	while (n <= max && s[n])
		n++;
	if (n > max)
		return; /* not terminated where the kernel said it must be */
	boot.cmdline = s;
	boot.cmdline_len = n;
	used_add(boot.cmdline_addr, n + 1ULL);
}

/* Returns false with a FAIL line when the boot information cannot be used at all. */
static bool boot_parse(uint32_t kind, uintptr_t info)
{
	boot.kind = kind;
	boot.info = info;
	if (kind == MICRO_BOOT_BZIMAGE) {
		const void *bp = phys(info, BP_SIZE);
		uint32_t i;

		boot.kind_name = "bzimage";
		if (!bp)
			return fail("bootinfo", "boot_params pointer %llx unusable",
				    (unsigned long long)info);
		used_add(info, BP_SIZE);
		if (rd16(bp, BP_BOOT_FLAG) != 0xaa55 ||
		    memcmp((const char *)bp + BP_HEADER, "HdrS", 4))
			return fail("bootinfo", "setup header not copied into boot_params");
		boot.cmdline_addr =
			rd32(bp, BP_CMD_LINE_PTR) | ((uint64_t)rd32(bp, BP_EXT_CMD_LINE_PTR) << 32);
		boot.cmdline_max = rd32(bp, BP_CMDLINE_SIZE);
		cmdline_load(boot.cmdline_max);
		boot.initrd_addr =
			rd32(bp, BP_RAMDISK_IMAGE) | ((uint64_t)rd32(bp, BP_EXT_RAMDISK_IMG) << 32);
		boot.initrd_size =
			rd32(bp, BP_RAMDISK_SIZE) | ((uint64_t)rd32(bp, BP_EXT_RAMDISK_SIZE) << 32);
		boot.has_initrd = boot.initrd_size != 0;
		boot.initrd_max = rd32(bp, BP_INITRD_ADDR_MAX);
		boot.rsdp_addr = rd64(bp, BP_ACPI_RSDP_ADDR);
		boot.nmap = rd8(bp, BP_E820_ENTRIES);
		if (boot.nmap > MAX_MAP)
			boot.nmap = MAX_MAP;
		for (i = 0; i < boot.nmap; i++) {
			uint32_t off = BP_E820_TABLE + i * 20;

			boot.map[i].addr = rd64(bp, off);
			boot.map[i].size = rd64(bp, off + 8);
			boot.map[i].type = rd32(bp, off + 16);
		}
		return true;
	}

	const void *si = phys(info, HVM_SIZE_V1);
	const void *mm;
	uint32_t i, n;

	boot.kind_name = "pvh";
	if (!si)
		return fail("bootinfo", "hvm_start_info pointer %llx unusable",
			    (unsigned long long)info);
	used_add(info, HVM_SIZE_V1);
	if (rd32(si, HVM_MAGIC) != HVM_START_MAGIC)
		return fail("bootinfo", "hvm_start_info magic %x", rd32(si, HVM_MAGIC));
	if (rd32(si, HVM_VERSION) < 1)
		return fail("bootinfo", "hvm_start_info version %u has no memmap",
			    rd32(si, HVM_VERSION));
	boot.cmdline_addr = rd64(si, HVM_CMDLINE_PADDR);
	boot.cmdline_max = 4095; /* PVH has no declared limit; ours must fit a page */
	cmdline_load(boot.cmdline_max);
	boot.initrd_max = PHYS_LIMIT - 1;
	if (rd32(si, HVM_NR_MODULES)) {
		uint64_t ml = rd64(si, HVM_MODLIST_PADDR);
		const void *m = phys(ml, HVM_MODLIST_ENTRY);

		used_add(ml, HVM_MODLIST_ENTRY * (uint64_t)rd32(si, HVM_NR_MODULES));
		boot.has_initrd = true;
		if (m) {
			boot.initrd_addr = rd64(m, 0);
			boot.initrd_size = rd64(m, 8);
		}
	}
	boot.rsdp_addr = rd64(si, HVM_RSDP_PADDR);
	n = rd32(si, HVM_MEMMAP_ENTRIES);
	if (n > MAX_MAP)
		return fail("bootinfo", "memmap_entries %u > %u", n, MAX_MAP);
	mm = phys(rd64(si, HVM_MEMMAP_PADDR), (uint64_t)n * HVM_MEMMAP_ENTRY);
	if (n && !mm)
		return fail("bootinfo", "memmap_paddr %llx unusable",
			    (unsigned long long)rd64(si, HVM_MEMMAP_PADDR));
	used_add(rd64(si, HVM_MEMMAP_PADDR), (uint64_t)n * HVM_MEMMAP_ENTRY);
	for (i = 0; i < n; i++) {
		boot.map[i].addr = rd64(mm, i * HVM_MEMMAP_ENTRY);
		boot.map[i].size = rd64(mm, i * HVM_MEMMAP_ENTRY + 8);
		boot.map[i].type = rd32(mm, i * HVM_MEMMAP_ENTRY + 16);
	}
	boot.nmap = n;
	return true;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Is [addr, addr+len) entirely inside one map entry of the given type? */
static bool map_covers(uint64_t addr, uint64_t len, uint32_t type)
{
	uint32_t i;
	uint64_t end;

	if (__builtin_add_overflow(addr, len, &end))
		return false;
	for (i = 0; i < boot.nmap; i++) {
		const struct mem_range *r = &boot.map[i];

		if (r->type == type && addr >= r->addr && end - r->addr <= r->size)
			return true;
	}
	return false;
}

/* ---- CRC-32 (IEEE 802.3, reflected 0xEDB88320), same as zlib.crc32 on the host ---- */

static void crc_init(void)
{
	uint32_t i, j, c;

	for (i = 0; i < 256; i++) {
		c = i;
		for (j = 0; j < 8; j++)
			c = (c & 1) ? (c >> 1) ^ 0xedb88320u : c >> 1;
		crc_table[i] = c;
	}
}

static uint32_t crc32(const uint8_t *p, uint64_t n)
{
	uint32_t c = 0xffffffffu;

	while (n--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* ---- checks: boot information ---- */

static bool check_bootinfo(void)
{
	if (boot.kind == MICRO_BOOT_BZIMAGE) {
		const void *bp = phys(boot.info, BP_SIZE);

		/* boot.rst: type_of_loader is obligatory for the boot loader to fill in. */
		if (rd8(bp, BP_TYPE_OF_LOADER) == 0)
			return fail("bootinfo", "type_of_loader not set");
		if (!(rd8(bp, BP_LOADFLAGS) & 0x01))
			return fail("bootinfo", "loadflags lost LOADED_HIGH");
		if (rd16(bp, BP_VERSION) != 0x020f)
			return fail("bootinfo", "header version %x, image says 0x20f",
				    rd16(bp, BP_VERSION));
	}
	return pass("bootinfo");
}

static bool check_cmdline(const struct params *t)
{
	const char *last, *p;

	if (!boot.cmdline)
		return fail("cmdline", "pointer %llx unusable or string not terminated",
			    (unsigned long long)boot.cmdline_addr);
	if (!map_covers(boot.cmdline_addr, boot.cmdline_len + 1ULL, E820_RAM))
		return fail("cmdline", "at %llx not in RAM", (unsigned long long)boot.cmdline_addr);
	if (!t->have_cmdlen)
		return fail("cmdline", "no t.cmdlen in \"%s\"", boot.cmdline);
	if (boot.cmdline_len != t->cmdlen)
		return fail("cmdline", "length %u, test passed %u", boot.cmdline_len,
			    (uint32_t)t->cmdlen);
	/* The last token proves nothing was cut or appended. */
	last = boot.cmdline;
	for (p = boot.cmdline; *p; p++)
		if (is_space(*p) && p[1] && !is_space(p[1]))
			last = p + 1;
	if (memcmp(last, "t.end", 6))
		return fail("cmdline", "last token is not t.end: \"%s\"", last);
	return pass("cmdline");
}

static bool check_memmap(const struct params *t)
{
	uint64_t ram = 0, top = 0, want_top, page;
	bool high = false;
	uint32_t i, j;

	if (!t->have_mem)
		return fail("memmap", "no t.mem");
	if (!boot.nmap)
		return fail("memmap", "empty");
	for (i = 0; i < boot.nmap; i++) {
		const struct mem_range *r = &boot.map[i];
		uint64_t end;

		if (r->type != E820_RAM)
			continue;
		if (!r->size || __builtin_add_overflow(r->addr, r->size, &end))
			return fail("memmap", "bad RAM entry %llx+%llx",
				    (unsigned long long)r->addr, (unsigned long long)r->size);
		/* The 32-bit MMIO hole (layout.h) must never be reported as RAM. */
		if (ranges_overlap(r->addr, r->size, 3 * GiB, GiB))
			return fail("memmap", "RAM %llx+%llx overlaps the MMIO hole",
				    (unsigned long long)r->addr, (unsigned long long)r->size);
		for (j = 0; j < i; j++)
			if (boot.map[j].type == E820_RAM &&
			    ranges_overlap(r->addr, r->size, boot.map[j].addr, boot.map[j].size))
				return fail("memmap", "RAM entries %u and %u overlap", j, i);
		ram += r->size;
		if (end > top)
			top = end;
		if (r->addr >= 4 * GiB)
			high = true;
	}
	want_top = t->mem <= 3 * GiB ? t->mem : 4 * GiB + (t->mem - 3 * GiB);
	if (t->mem > 3 * GiB && !high)
		return fail("memmap", "no RAM above 4 GiB with %llx bytes of memory",
			    (unsigned long long)t->mem);
	if (top != want_top)
		return fail("memmap", "RAM ends at %llx, expected %llx", (unsigned long long)top,
			    (unsigned long long)want_top);
	/* Only the legacy area below 1 MiB may be left out of the RAM the test asked for. */
	if (ram > t->mem || ram + MiB < t->mem)
		return fail("memmap", "RAM sums to %llx, expected %llx", (unsigned long long)ram,
			    (unsigned long long)t->mem);
	/* ACPI tables live in 0xE0000-0xFFFFF: reserved (or ACPI reclaim), never RAM. */
	for (page = 0xe0000; page < 0x100000; page += 0x1000)
		if (!map_covers(page, 0x1000, E820_RESERVED) &&
		    !map_covers(page, 0x1000, E820_ACPI))
			return fail("memmap", "page %llx of the BIOS area is not reserved",
				    (unsigned long long)page);
	if (!map_covers((uintptr_t)micro_pm_start_sym,
			(uintptr_t)micro_end_sym - (uintptr_t)micro_pm_start_sym, E820_RAM))
		return fail("memmap", "the kernel footprint is not in RAM");
	return pass("memmap");
}

static bool check_initrd(const struct params *t)
{
	const uint8_t *p;
	uint64_t last;
	uint32_t crc, i;

	if (!t->have_initrd_len) {
		if (boot.has_initrd)
			return fail("initrd", "VMM passed one (%llx bytes) but the test gave none",
				    (unsigned long long)boot.initrd_size);
		return pass("initrd");
	}
	if (!boot.has_initrd)
		return fail("initrd", "missing");
	if (boot.initrd_size != t->initrd_len)
		return fail("initrd", "size %llx, expected %llx",
			    (unsigned long long)boot.initrd_size,
			    (unsigned long long)t->initrd_len);
	if (__builtin_add_overflow(boot.initrd_addr, boot.initrd_size - 1, &last) ||
	    last > boot.initrd_max)
		return fail("initrd", "%llx+%llx beyond initrd_addr_max %llx",
			    (unsigned long long)boot.initrd_addr,
			    (unsigned long long)boot.initrd_size,
			    (unsigned long long)boot.initrd_max);
	if (!map_covers(boot.initrd_addr, boot.initrd_size, E820_RAM))
		return fail("initrd", "at %llx not in RAM", (unsigned long long)boot.initrd_addr);
	for (i = 0; i < boot.nused; i++)
		if (ranges_overlap(boot.initrd_addr, boot.initrd_size, boot.used[i].addr,
				   boot.used[i].size))
			return fail("initrd", "overlaps boot data at %llx",
				    (unsigned long long)boot.used[i].addr);
	if (ranges_overlap(boot.initrd_addr, boot.initrd_size, (uintptr_t)micro_pm_start_sym,
			   (uintptr_t)micro_end_sym - (uintptr_t)micro_pm_start_sym))
		return fail("initrd", "overlaps the kernel");
	p = phys(boot.initrd_addr, boot.initrd_size);
	if (!p)
		return fail("initrd", "at %llx not addressable",
			    (unsigned long long)boot.initrd_addr);
	crc = crc32(p, boot.initrd_size);
	if (!t->have_initrd_crc || crc != t->initrd_crc)
		return fail("initrd", "crc32 %x, expected %x", crc, (uint32_t)t->initrd_crc);
	used_add(boot.initrd_addr, boot.initrd_size);
	return pass("initrd");
}

/* ---- checks: ACPI ---- */

struct acpi {
	const uint8_t *rsdp;
	const uint8_t *xsdt;
	const uint8_t *madt;
	const uint8_t *fadt;
	const uint8_t *dsdt;
	uint32_t lapic_addr;
	uint32_t ncpus;
	uint32_t apic_ids[MAX_CPUS];
};

static uint8_t sum8(const uint8_t *p, uint32_t n)
{
	uint8_t s = 0;

	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static bool rsdp_valid(const uint8_t *p)
{
	/* ACPI 6.5 §5.2.5.3: 20-byte checksum, then the extended one over "Length" bytes. */
	if (memcmp(p, "RSD PTR ", 8) || sum8(p, 20))
		return false;
	if (p[15] >= 2 &&
	    (rd32(p, 20) < 36 || !phys((uintptr_t)p, rd32(p, 20)) || sum8(p, rd32(p, 20))))
		return false;
	return true;
}

static bool check_rsdp(struct acpi *a)
{
	const uint8_t *bios = phys(0xe0000, 0x20000), *found = NULL;
	uint32_t off;

	/* ACPI 6.5 §5.2.5.1: on 16-byte boundaries of the BIOS read-only area. */
	for (off = 0; bios && off + 36 <= 0x20000; off += 16)
		if (bios[off] == 'R' && rsdp_valid(bios + off)) {
			found = bios + off;
			break;
		}
	if (!boot.rsdp_addr)
		return fail("rsdp", "%s boot information has no RSDP address", boot.kind_name);
	a->rsdp = phys(boot.rsdp_addr, 36);
	if (!a->rsdp || !rsdp_valid(a->rsdp))
		return fail("rsdp", "no valid RSDP at %llx", (unsigned long long)boot.rsdp_addr);
	if (!found)
		return fail("rsdp", "not found by scanning 0xE0000-0xFFFFF");
	if ((uintptr_t)found != (uintptr_t)a->rsdp)
		return fail("rsdp", "scan found %x, boot information says %llx",
			    (uint32_t)(uintptr_t)found, (unsigned long long)boot.rsdp_addr);
	return pass("rsdp");
}

/* A system description table with a sane length and a valid checksum, or NULL. */
static const uint8_t *acpi_table(uint64_t addr, const char *sig, const char **why)
{
	const uint8_t *h = phys(addr, 36);
	uint32_t len;

	*why = "unaddressable";
	if (!h)
		return NULL;
	*why = "wrong signature";
	if (memcmp(h, sig, 4))
		return NULL;
	len = rd32(h, 4);
	*why = "bad length";
	if (len < 36 || len > 1024 * 1024 || !phys(addr, len))
		return NULL;
	*why = "bad checksum";
	if (sum8(h, len))
		return NULL;
	return h;
}

static bool check_acpi_tables(struct acpi *a)
{
	const char *why;
	uint32_t i, n;

	if (!a->rsdp)
		return fail("acpi", "no RSDP");
	if (a->rsdp[15] < 2)
		return fail("acpi", "RSDP revision %u has no XSDT", a->rsdp[15]);
	a->xsdt = acpi_table(rd64(a->rsdp, 24), "XSDT", &why);
	if (!a->xsdt)
		return fail("acpi", "XSDT at %llx: %s", (unsigned long long)rd64(a->rsdp, 24), why);
	n = (rd32(a->xsdt, 4) - 36) / 8;
	for (i = 0; i < n; i++) {
		uint64_t addr = rd64(a->xsdt, 36 + i * 8);
		const uint8_t *h = phys(addr, 36);

		if (!h)
			return fail("acpi", "XSDT entry %u (%llx) unaddressable", i,
				    (unsigned long long)addr);
		if (!memcmp(h, "APIC", 4)) {
			a->madt = acpi_table(addr, "APIC", &why);
			if (!a->madt)
				return fail("acpi", "MADT: %s", why);
		} else if (!memcmp(h, "FACP", 4)) {
			a->fadt = acpi_table(addr, "FACP", &why);
			if (!a->fadt)
				return fail("acpi", "FADT: %s", why);
		} else if (!acpi_table(addr, (const char *)h, &why)) {
			return fail("acpi", "table %c%c%c%c: %s", h[0], h[1], h[2], h[3], why);
		}
	}
	if (!a->madt || !a->fadt)
		return fail("acpi", "XSDT lacks %s", a->madt ? "FADT" : "MADT");
	/* ACPI 6.5 §5.2.9: X_DSDT (offset 140) wins over DSDT (offset 40) when set. */
	{
		uint64_t d = rd32(a->fadt, 40);

		if (rd32(a->fadt, 4) >= 148 && rd64(a->fadt, 140))
			d = rd64(a->fadt, 140);
		a->dsdt = acpi_table(d, "DSDT", &why);
		if (!a->dsdt)
			return fail("acpi", "DSDT at %llx: %s", (unsigned long long)d, why);
	}
	return pass("acpi");
}

static bool check_madt(struct acpi *a, const struct params *t)
{
	uint32_t len, off;

	if (!a->madt)
		return fail("madt", "missing");
	len = rd32(a->madt, 4);
	a->lapic_addr = rd32(a->madt, 36);
	/* ACPI 6.5 §5.2.12: interrupt controller structures follow the 44-byte header. */
	for (off = 44; off + 2 <= len;) {
		uint8_t type = a->madt[off], elen = a->madt[off + 1];
		uint32_t id = 0;
		bool enabled = false;

		if (elen < 2 || off + elen > len)
			return fail("madt", "entry at %u has length %u", off, elen);
		if (type == 0 && elen >= 8) { /* Processor Local APIC */
			id = a->madt[off + 3];
			enabled = rd32(a->madt, off + 4) & 1;
		} else if (type == 9 && elen >= 16) { /* Processor Local x2APIC */
			id = rd32(a->madt, off + 4);
			enabled = rd32(a->madt, off + 8) & 1;
		}
		if (enabled) {
			if (a->ncpus == MAX_CPUS)
				return fail("madt", "more than %u CPUs", MAX_CPUS);
			a->apic_ids[a->ncpus++] = id;
		}
		off += elen;
	}
	if (!t->have_cpus)
		return fail("madt", "no t.cpus");
	if (a->ncpus != t->cpus)
		return fail("madt", "%u enabled local APICs, expected %u", a->ncpus,
			    (uint32_t)t->cpus);
	if (a->lapic_addr == 0)
		return fail("madt", "local APIC address is 0");
	return pass("madt");
}

static bool check_fadt(struct acpi *a, uint64_t want_port, bool have_port)
{
	const uint8_t *f = a->fadt;
	uint32_t i, dlen;
	bool s5 = false;

	if (!f)
		return fail("fadt", "missing");
	/* ACPI 6.5 §5.2.9: SLEEP_CONTROL_REG at 244 and SLEEP_STATUS_REG at 256 (12-byte GAS). */
	if (rd32(f, 4) < 268)
		return fail("fadt", "length %u too short for the sleep registers", rd32(f, 4));
	if (!(rd32(f, 112) & (1u << 20)))
		return fail("fadt", "HW_REDUCED_ACPI flag clear (flags %x)", rd32(f, 112));
	if (f[244] != 1 || rd64(f, 248) == 0 || f[245] != 8)
		return fail("fadt", "sleep control register: space %u width %u address %llx",
			    f[244], f[245], (unsigned long long)rd64(f, 248));
	if (have_port && rd64(f, 248) != want_port)
		return fail("fadt", "sleep control at %llx, expected %llx",
			    (unsigned long long)rd64(f, 248), (unsigned long long)want_port);
	if (f[256] != 1 || rd64(f, 260) == 0)
		return fail("fadt", "no sleep status register");
	/* The \_S5 package must exist for the guest to know SLP_TYP (ACPI 6.5 §7.4.2). */
	dlen = rd32(a->dsdt, 4);
	for (i = 36; i + 4 <= dlen; i++)
		if (!memcmp(a->dsdt + i, "_S5_", 4)) {
			s5 = true;
			break;
		}
	if (!s5)
		return fail("fadt", "DSDT has no \\_S5");
	return pass("fadt");
}

/* ---- checks: SMP bring-up through the xAPIC ---- */

#define LAPIC_ID	 0x020
#define LAPIC_SVR	 0x0f0
#define LAPIC_ICR_LO	 0x300
#define LAPIC_ICR_HI	 0x310
#define ICR_INIT	 0x00000500
#define ICR_STARTUP	 0x00000600
#define ICR_LEVEL_ASSERT 0x00004000
#define ICR_BUSY	 0x00001000

static inline uintptr_t read_cr3(void)
{
	uintptr_t v;

	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

/* Record the live page-table pages (64-bit entry only) so the trampoline avoids them. */
static void used_add_page_tables(void)
{
#ifdef __x86_64__
	const uint64_t *pml4 = phys(read_cr3() & ~0xfffULL, 4096), *pdpt;
	uint32_t i;

	if (!pml4)
		return;
	used_add(read_cr3() & ~0xfffULL, 4096);
	if (!(pml4[0] & 1))
		return;
	pdpt = phys(pml4[0] & 0x000ffffffffff000ULL, 4096);
	if (!pdpt)
		return;
	used_add(pml4[0] & 0x000ffffffffff000ULL, 4096);
	for (i = 0; i < 4; i++)
		if ((pdpt[i] & 1) && !(pdpt[i] & 0x80))
			used_add(pdpt[i] & 0x000ffffffffff000ULL, 4096);
#endif
}

static uintptr_t tramp_page_pick(void)
{
	/* Candidates well clear of layout.h's boot data; each must still prove itself free. */
	static const uint32_t cand[] = {0x70000, 0x60000, 0x50000, 0x40000, 0x80000, 0x90000};
	uint32_t i, j;

	for (i = 0; i < sizeof(cand) / sizeof(cand[0]); i++) {
		bool ok = map_covers(cand[i], 4096, E820_RAM);

		for (j = 0; ok && j < boot.nused; j++)
			if (ranges_overlap(cand[i], 4096, boot.used[j].addr, boot.used[j].size))
				ok = false;
		if (ok)
			return cand[i];
	}
	return 0;
}

static bool lapic_wait_idle(uintptr_t lapic)
{
	uint32_t n;

	for (n = 0; n < 100000; n++) {
		if (!(mmio_read32(lapic + LAPIC_ICR_LO) & ICR_BUSY))
			return true;
		cpu_pause();
	}
	return false;
}

static bool check_smp(struct acpi *a, const struct params *t)
{
	uintptr_t lapic, page;
	volatile uint32_t *count;
	uint32_t self, i, started = 0, got;
	uint64_t t0;

	if (!t->have_cpus || a->ncpus != t->cpus)
		return fail("smp", "MADT does not list t.cpus processors");
	if (t->cpus == 1)
		return pass("smp");
	if (!phys(a->lapic_addr, 0x400))
		return fail("smp", "local APIC at %x unaddressable", a->lapic_addr);
	lapic = a->lapic_addr;
	used_add_page_tables();
	page = tramp_page_pick();
	if (!page)
		return fail("smp", "no free low RAM page for the AP trampoline");
	memcpy((void *)page, micro_tramp_start, (size_t)(micro_tramp_end - micro_tramp_start));
	count = (volatile uint32_t *)(page + (uintptr_t)(micro_tramp_count - micro_tramp_start));
	*count = 0;

	/* Software-enable the local APIC (Intel SDM Vol. 3A §11.4.7.1), spurious vector 0xff. */
	mmio_write32(lapic + LAPIC_SVR, mmio_read32(lapic + LAPIC_SVR) | 0x1ff);
	self = mmio_read32(lapic + LAPIC_ID) >> 24;
	for (i = 0; i < a->ncpus; i++) {
		uint32_t id = a->apic_ids[i];

		if (id == self)
			continue;
		if (id > 0xff)
			return fail("smp", "APIC id %u needs x2APIC", id);
		/* INIT-SIPI-SIPI, Intel SDM Vol. 3A §9.4.4.1; KVM needs no 10 ms wait. */
		mmio_write32(lapic + LAPIC_ICR_HI, id << 24);
		mmio_write32(lapic + LAPIC_ICR_LO, ICR_INIT | ICR_LEVEL_ASSERT);
		if (!lapic_wait_idle(lapic))
			return fail("smp", "INIT to APIC %u stuck", id);
		delay(100);
		for (int s = 0; s < 2; s++) {
			mmio_write32(lapic + LAPIC_ICR_HI, id << 24);
			mmio_write32(lapic + LAPIC_ICR_LO,
				     ICR_STARTUP | ICR_LEVEL_ASSERT | (uint32_t)(page >> 12));
			if (!lapic_wait_idle(lapic))
				return fail("smp", "SIPI to APIC %u stuck", id);
			delay(20);
		}
		started++;
	}
	if (started != t->cpus - 1)
		return fail("smp", "BSP APIC id %u not in the MADT", self);
	/* Bounded wait: a few seconds of TSC at any plausible frequency. */
	t0 = rdtsc();
	while ((got = *count) < started && rdtsc() - t0 < 8000000000ULL)
		cpu_pause();
	if (got != started)
		return fail("smp", "%u of %u APs arrived (trampoline at %x)", got, started,
			    (uint32_t)page);
	return pass("smp");
}

/* ---- for the other scenario files (micro.h) ---- */

const char *micro_cmdline(void)
{
	return boot.cmdline;
}

/* The DSDT the boot information leads to (RSDP, XSDT, FADT), or NULL; no output. */
const uint8_t *micro_dsdt(uint32_t *len)
{
	const uint8_t *rsdp = phys(boot.rsdp_addr, 36), *xsdt, *fadt = NULL, *dsdt;
	const char *why;
	uint32_t i, n;
	uint64_t d;

	if (!rsdp || !rsdp_valid(rsdp) || rsdp[15] < 2)
		return NULL;
	xsdt = acpi_table(rd64(rsdp, 24), "XSDT", &why);
	if (!xsdt)
		return NULL;
	n = (rd32(xsdt, 4) - 36) / 8;
	for (i = 0; i < n && !fadt; i++)
		fadt = acpi_table(rd64(xsdt, 36 + i * 8), "FACP", &why);
	if (!fadt)
		return NULL;
	d = rd32(fadt, 40);
	if (rd32(fadt, 4) >= 148 && rd64(fadt, 140))
		d = rd64(fadt, 140);
	dsdt = acpi_table(d, "DSDT", &why);
	if (dsdt)
		*len = rd32(dsdt, 4);
	return dsdt;
}

uint64_t micro_ram_top_4g(void)
{
	uint64_t top = 0;

	for (uint32_t i = 0; i < boot.nmap; i++) {
		uint64_t end = boot.map[i].addr + boot.map[i].size;

		if (boot.map[i].type == E820_RAM && end <= PHYS_LIMIT && end > top)
			top = end;
	}
	return top;
}

/* The i-th RAM entry of the memory map, in map order; false past the last. */
bool micro_ram_range(uint32_t i, uint64_t *addr, uint64_t *size)
{
	uint32_t n = 0;

	for (uint32_t j = 0; j < boot.nmap; j++) {
		if (boot.map[j].type != E820_RAM)
			continue;
		if (n++ == i) {
			*addr = boot.map[j].addr;
			*size = boot.map[j].size;
			return true;
		}
	}
	return false;
}

/*
 * What the guest must not overwrite, as ranges: the kernel's own footprint (code, data, stack),
 * the boot data it recorded while parsing and (64-bit entry) the VMM's live page tables.
 * Returns how many were written to out (at most max).
 */
uint32_t micro_ram_reserved(struct micro_range *out, uint32_t max)
{
	static bool tables_added;
	uint32_t n = 0;

	if (!tables_added) {
		used_add_page_tables();
		tables_added = true;
	}
	if (n < max) {
		out[n].addr = (uintptr_t)micro_pm_start_sym;
		out[n].size = (uintptr_t)micro_end_sym - (uintptr_t)micro_pm_start_sym;
		n++;
	}
	for (uint32_t i = 0; i < boot.nused && n < max; i++, n++) {
		out[n].addr = boot.used[i].addr;
		out[n].size = boot.used[i].size;
	}
	return n;
}

/* ---- AP workers (tramp.S) ---- */

struct ap_box {
	volatile uint32_t seq, done, op, addr, addr2, val0, val1, count, delay, stop, iters, alive;
	uint32_t pad[4];
};
_Static_assert(sizeof(struct ap_box) == 1 << MICRO_AP_BOX_SHIFT, "mailbox size");
_Static_assert(offsetof(struct ap_box, alive) == MB_ALIVE, "mailbox layout");
_Static_assert(offsetof(struct ap_box, iters) == MB_ITERS, "mailbox layout");
_Static_assert(offsetof(struct ap_box, addr2) == MB_ADDR2, "mailbox layout");
extern struct ap_box micro_ap_box[MICRO_AP_MAX];
static uint32_t ap_workers = 0xffffffff;

/* The enabled local APICs of the MADT (quietly; the "check" scenario reports on them). */
static uint32_t madt_cpus(uint32_t *ids, uint32_t max, uint32_t *lapic)
{
	const uint8_t *rsdp = phys(boot.rsdp_addr, 36), *xsdt, *madt = NULL;
	const char *why;
	uint32_t n = 0, len;

	if (!rsdp || !rsdp_valid(rsdp) || rsdp[15] < 2)
		return 0;
	xsdt = acpi_table(rd64(rsdp, 24), "XSDT", &why);
	if (!xsdt)
		return 0;
	for (uint32_t i = 0; i < (rd32(xsdt, 4) - 36) / 8 && !madt; i++)
		madt = acpi_table(rd64(xsdt, 36 + i * 8), "APIC", &why);
	if (!madt)
		return 0;
	len = rd32(madt, 4);
	*lapic = rd32(madt, 36);
	for (uint32_t off = 44; off + 2 <= len && madt[off + 1] >= 2 && n < max;
	     off += madt[off + 1]) {
		if (madt[off] == 0 && madt[off + 1] >= 8 && (rd32(madt, off + 4) & 1))
			ids[n++] = madt[off + 3];
	}
	return n;
}

uint32_t micro_ap_workers(void)
{
	uint32_t ids[MAX_CPUS], lapic_addr = 0, n, self, started = 0, arrived = 0;
	uintptr_t lapic, page;
	uint64_t t0;

	if (ap_workers != 0xffffffff)
		return ap_workers;
	ap_workers = 0;
	n = madt_cpus(ids, MAX_CPUS, &lapic_addr);
	if (n < 2 || !phys(lapic_addr, 0x400))
		return 0;
	lapic = lapic_addr;
	used_add_page_tables();
	page = tramp_page_pick();
	if (!page)
		return 0;
	memcpy((void *)page, micro_wtramp_start, (size_t)(micro_wtramp_end - micro_wtramp_start));
	mmio_write32(lapic + LAPIC_SVR, mmio_read32(lapic + LAPIC_SVR) | 0x1ff);
	self = mmio_read32(lapic + LAPIC_ID) >> 24;
	for (uint32_t i = 0; i < n && started < MICRO_AP_MAX; i++) {
		if (ids[i] == self)
			continue;
		mmio_write32(lapic + LAPIC_ICR_HI, ids[i] << 24);
		mmio_write32(lapic + LAPIC_ICR_LO, ICR_INIT | ICR_LEVEL_ASSERT);
		if (!lapic_wait_idle(lapic))
			return 0;
		delay(100);
		for (int s = 0; s < 2; s++) {
			mmio_write32(lapic + LAPIC_ICR_HI, ids[i] << 24);
			mmio_write32(lapic + LAPIC_ICR_LO,
				     ICR_STARTUP | ICR_LEVEL_ASSERT | (uint32_t)(page >> 12));
			if (!lapic_wait_idle(lapic))
				return 0;
			delay(20);
		}
		started++;
	}
	/* Each AP marks its own mailbox alive; the second SIPI may find it running already. */
	for (t0 = rdtsc(); rdtsc() - t0 < 8000000000ULL;) {
		arrived = 0;
		for (uint32_t i = 0; i < MICRO_AP_MAX; i++)
			arrived += micro_ap_box[i].alive != 0;
		if (arrived == started)
			break;
		cpu_pause();
	}
	ap_workers = arrived;
	return arrived;
}

void micro_ap_post(uint32_t ap, uint32_t op, uintptr_t addr, uintptr_t addr2, uint32_t val0,
		   uint32_t val1, uint32_t count, uint32_t delay_loops)
{
	struct ap_box *b = &micro_ap_box[ap];

	b->op = op;
	b->addr = (uint32_t)addr;
	b->addr2 = (uint32_t)addr2;
	b->val0 = val0;
	b->val1 = val1;
	b->count = count;
	b->delay = delay_loops;
	b->stop = 0;
	b->iters = 0;
	__asm__ volatile("mfence" ::: "memory");
	b->seq = b->done + 1;
}

bool micro_ap_busy(uint32_t ap)
{
	return micro_ap_box[ap].seq != micro_ap_box[ap].done;
}

void micro_ap_stop(uint32_t ap)
{
	micro_ap_box[ap].stop = 1;
}

bool micro_ap_wait(uint32_t ap, uint64_t tsc)
{
	uint64_t t0 = rdtsc();

	while (micro_ap_busy(ap)) {
		if (rdtsc() - t0 > tsc) {
			micro_ap_stop(ap);
			return false;
		}
		cpu_pause();
	}
	return true;
}

uint32_t micro_ap_iters(uint32_t ap)
{
	return micro_ap_box[ap].iters;
}

void micro_done(void)
{
	if (n_fail) {
		uart_printf("MICRO DONE fail %u/%u\n", n_fail, n_pass + n_fail);
		debug_exit(FAIL_EXIT_CODE);
	}
	uart_printf("MICRO DONE pass %u\n", n_pass);
	poweroff();
}

/* ---- scenarios ---- */

static void params_read(struct params *t)
{
	const char *c = boot.cmdline;

	t->have_mem = param_u64(c, "t.mem", &t->mem);
	t->have_cpus = param_u64(c, "t.cpus", &t->cpus);
	t->have_cmdlen = param_u64(c, "t.cmdlen", &t->cmdlen);
	t->have_initrd_len = param_u64(c, "t.initrd_len", &t->initrd_len);
	t->have_initrd_crc = param_u64(c, "t.initrd_crc", &t->initrd_crc);
}

static __attribute__((noreturn)) void scenario_check(void)
{
	struct params t;
	struct acpi a;
	uint64_t port = 0;
	bool have_port;

	memset(&a, 0, sizeof(a));
	params_read(&t);
	have_port = param_u64(boot.cmdline, "t.sleep_port", &port);
	crc_init();

	check_bootinfo();
	check_cmdline(&t);
	check_memmap(&t);
	check_initrd(&t);
	check_rsdp(&a);
	check_acpi_tables(&a);
	check_madt(&a, &t);
	check_fadt(&a, port, have_port);
	check_smp(&a, &t);

	micro_done();
}

static __attribute__((noreturn)) void scenario_triple(void)
{
	struct {
		uint16_t limit;
		uintptr_t base;
	} __attribute__((packed)) idtr = {0, 0};

	/*
	 * With an empty IDT the #UD cannot be delivered (#GP), neither can that (#DF), and a
	 * fault while delivering #DF is a shutdown: KVM_EXIT_SHUTDOWN (SDM Vol. 3A §6.15).
	 */
	uart_puts("MICRO TRIPLE\r\n");
	__asm__ volatile("lidt %0; ud2" : : "m"(idtr));
	park();
}

static __attribute__((noreturn)) void scenario_echo(void)
{
	char line[128];
	uint32_t n = 0;

	uart_puts("READY\r\n");
	for (;;) {
		int c = uart_getc();

		if (c == '\r' || c == '\n') {
			if (!n)
				continue; /* the other half of a CR LF */
			line[n] = '\0';
			if (!memcmp(line, "quit", 5)) {
				uart_puts("MICRO ECHO BYE\r\n");
				poweroff();
			}
			for (uint32_t i = 0; i < n; i++)
				if (line[i] >= 'a' && line[i] <= 'z')
					line[i] = (char)(line[i] - 'a' + 'A');
			uart_printf("%s\n", line);
			n = 0;
		} else if (n < sizeof(line) - 1) {
			line[n++] = (char)c;
		}
	}
}

/*
 * A heartbeat for the pause/resume tests: "TICK n" every t.cycles TSC cycles, n counting from
 * 1 without a gap, forever. Paused, the lines stop; resumed, they go on with n + 1.
 */
static __attribute__((noreturn)) void scenario_tick(uint64_t cycles)
{
	uint32_t n = 0;

	uart_puts("READY\r\n");
	for (;;) {
		uint64_t t0 = rdtsc();

		while (rdtsc() - t0 < cycles)
			cpu_pause();
		uart_printf("TICK %u\n", ++n);
	}
}

/*
 * Firecracker's SendCtrlAltDel reaches the i8042: poll its status port for each byte (the
 * guest runs with interrupts off) and expect Ctrl, Alt, Del pressed and released in scan code
 * set 1 (translation is on, as firmware leaves it). Exits 0x2a when they came, else fails.
 */
static __attribute__((noreturn)) void scenario_cad(void)
{
	static const uint8_t want[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	uint8_t got[sizeof(want)];

	uart_puts("READY\r\n");
	for (uint32_t i = 0; i < sizeof(want); i++) {
		while (!(inb(PORT_I8042_CMD) & 1))
			cpu_pause();
		got[i] = inb(PORT_I8042_DATA);
		if (got[i] != want[i]) {
			fail("cad", "byte %u is 0x%x, not 0x%x", i, got[i], want[i]);
			debug_exit(FAIL_EXIT_CODE);
		}
	}
	uart_puts("MICRO CAD ok\r\n");
	debug_exit(0x2a);
}

static __attribute__((noreturn)) void scenario_spin(uint64_t n)
{
	uint32_t iters = (uint32_t)((n + 7) >> 3), todo = iters, a = 1, b = 2;

	/* Eight integer instructions per iteration, all at CPL0. */
	if (iters)
		__asm__ volatile("1:\n\t"
				 "add %1, %0\n\t"
				 "xor %0, %1\n\t"
				 "add $3, %0\n\t"
				 "rol $1, %1\n\t"
				 "sub %1, %0\n\t"
				 "or %0, %1\n\t"
				 "dec %2\n\t"
				 "jnz 1b"
				 : "+r"(a), "+r"(b), "+r"(todo)
				 :
				 : "cc");
	uart_printf("MICRO SPIN done %u iterations (%x)\n", iters, a ^ b);
	poweroff();
}

void micro_main(uint32_t boot_kind, uintptr_t boot_info)
{
	const char *c;
	uint64_t v;

	/* 8N1, no interrupts: the VMM's 16550A only needs LCR for the divisor latch. */
	outb(0x00, COM1 + 1);
	outb(0x03, COM1 + 3);
	uart_printf("MICRO START %s\n", boot_kind == MICRO_BOOT_BZIMAGE ? "bzimage" : "pvh");
	if (!boot_parse(boot_kind, boot_info) || !boot.cmdline) {
		if (!n_fail)
			fail("cmdline", "pointer %llx unusable",
			     (unsigned long long)boot.cmdline_addr);
		debug_exit(FAIL_EXIT_CODE);
	}
	c = boot.cmdline;
	if (param_is(c, "t.scenario", "check"))
		scenario_check();
	if (param_is(c, "t.scenario", "exit")) {
		if (!param_u64(c, "t.code", &v) || v > 0xff) {
			fail("exit", "t.code missing or > 255");
			debug_exit(FAIL_EXIT_CODE);
		}
		uart_printf("MICRO EXIT %u\n", (uint32_t)v);
		debug_exit((uint8_t)v);
	}
	if (param_is(c, "t.scenario", "panic")) {
		uart_puts("MICRO PANIC\r\n");
		outb(1, PORT_PVPANIC); /* PVPANIC_PANICKED */
		delay(100000);
		fail("panic", "still running");
		debug_exit(FAIL_EXIT_CODE);
	}
	if (param_is(c, "t.scenario", "triple"))
		scenario_triple();
	if (param_is(c, "t.scenario", "hang")) {
		uart_puts("MICRO HANG\r\n");
		for (;;)
			cpu_pause();
	}
	if (param_is(c, "t.scenario", "reset")) {
		uart_puts("MICRO RESET\r\n");
		outb(0xfe, PORT_I8042_CMD); /* pulse the CPU reset line */
		delay(100000);
		fail("reset", "still running");
		debug_exit(FAIL_EXIT_CODE);
	}
	if (param_is(c, "t.scenario", "echo"))
		scenario_echo();
	if (param_is(c, "t.scenario", "spin")) {
		if (!param_u64(c, "t.n", &v)) {
			fail("spin", "t.n missing");
			debug_exit(FAIL_EXIT_CODE);
		}
		scenario_spin(v);
	}
	if (param_is(c, "t.scenario", "tick")) {
		if (!param_u64(c, "t.cycles", &v)) {
			fail("tick", "t.cycles missing");
			debug_exit(FAIL_EXIT_CODE);
		}
		scenario_tick(v);
	}
	if (param_is(c, "t.scenario", "cad"))
		scenario_cad();
	if (param_is(c, "t.scenario", "count")) {
		if (!param_u64(c, "t.cycles", &v))
			v = 20000000;
		scenario_count(v);
	}
	if (param_is(c, "t.scenario", "blk"))
		scenario_blk();
	if (param_is(c, "t.scenario", "blk-errors"))
		scenario_blk_errors();
	if (param_is(c, "t.scenario", "blk-hostile"))
		scenario_blk_hostile();
	if (param_is(c, "t.scenario", "vcon"))
		scenario_vcon();
	if (param_is(c, "t.scenario", "gap"))
		scenario_gap();
	fail("scenario", "unknown t.scenario in \"%s\"", c);
	debug_exit(FAIL_EXIT_CODE);
}
