// SPDX-License-Identifier: Apache-2.0
/*
 * scenario gap: how long the guest was stopped, as the guest itself can tell
 * (bench/live_update.sh).
 *
 * It spins reading the TSC and keeps the largest difference between two consecutive reads. A
 * VMM that stops the vCPU (a pause, a live update, a restore) shows up as one large difference,
 * provided the VMM carries the TSC forward by the time that passed (vmm does; a VMM that gave
 * the guest back the TSC it saved would hide the stop from it). So that the host can see the
 * stop from outside as well, every iteration also stores the TSC it read in a "beat" record in
 * RAM (magic "GAPBEAT1", then the TSC): a host that maps guest RAM sees the value stop changing.
 *
 * Before it spins, the guest writes one word into every 4 KiB page of its RAM (t.touch=1, the
 * default), so that a large guest has all of its memory populated on the host as a guest that
 * has been running for a while would, and a snapshot has every page to write (a word that is
 * not zero: snapshot writers skip zero pages). Pages below 4 GiB are reached directly (flat
 * segments or the VMM's identity map), except the first MiB, the kernel and the boot data; RAM
 * above 4 GiB through a 1 GiB window of 2 MiB pages: in the 32-bit (PVH) build, long-mode
 * paging switched on for the time of the touch with the 32-bit code segment kept (compatibility
 * mode), in the 64-bit build one more PDPT entry in the VMM's tables. At CPL0 on our nested KVM
 * a page costs ~20 us (the first touch of a page is most of it): ~1.3 s for 256 MiB, ~21 s for
 * 4 GiB.
 *
 * Console protocol (COM1, polled every t.poll_us of TSC time; the guest runs with interrupts off):
 *   guest: "GAP TOUCH low=<pages> high=<pages> ms=<ms>" once, "GAP READY beat=0x<addr>"
 *   host sends '?': guest answers "GAP max_us=<us> over=<n> iters=<n>", the largest gap and the
 *                   number of gaps above t.over_us since the previous answer (or READY), then
 *                   starts a new interval after it has printed (printing is not counted).
 *
 *   t.scenario=gap t.tsc_khz=N [t.touch=0|1] [t.poll_us=1000] [t.over_us=100]
 *
 * Only what works at CPL0 on our nested KVM: rdtsc, integer ALU, pause, port I/O, mov cr*,
 * rdmsr/wrmsr of EFER.
 */
#include <stddef.h>
#include <stdint.h>

#include "micro.h"
#include "vblk.h"

#define COM1	    0x3f8
#define UART_LSR    5
#define UART_LSR_DR 0x01

#define MiB	       (1024ULL * 1024)
#define GiB	       (1024ULL * MiB)
#define PAGE	       4096ULL
#define GAP_MAGIC      0x3154414542504147ULL /* "GAPBEAT1" in memory order */
#define MAX_RESERVED   24
#define PDE_2M	       0x83ULL /* present, writable, 2 MiB page */
#define PDPTE_PRESENT  0x01ULL
#define PDPTE_WRITABLE 0x02ULL

/* The record the host watches: magic, then the TSC of the latest iteration. */
static volatile struct {
	uint64_t magic;
	uint64_t tsc;
	uint64_t pad[6];
} gap_beat __attribute__((aligned(64)));

/* The window's page directory (both builds) and, for the 32-bit build, the PAE tables. */
static uint64_t win_pd[512] __attribute__((aligned(4096)));
#ifndef __x86_64__
static uint64_t lm_pml4[512] __attribute__((aligned(4096)));
static uint64_t lm_pdpt[512] __attribute__((aligned(4096)));
static uint64_t lm_pd0[512] __attribute__((aligned(4096)));
#endif

/* n / d without libgcc in the 32-bit build (d != 0). */
static uint64_t div64_32(uint64_t n, uint32_t d)
{
#ifdef __x86_64__
	return n / d;
#else
	uint32_t hi = (uint32_t)(n >> 32), lo = (uint32_t)n, qhi = hi / d, r = hi % d, qlo;

	/* r < d, so the 64/32 division cannot overflow. */
	__asm__("divl %4" : "=a"(qlo), "=d"(r) : "a"(lo), "d"(r), "rm"(d));
	return ((uint64_t)qhi << 32) | qlo;
#endif
}

static uint32_t ticks_to_us(uint64_t ticks, uint32_t khz)
{
	uint64_t us = div64_32(ticks * 1000, khz);

	return us > 0xffffffffULL ? 0xffffffffu : (uint32_t)us;
}

static uint32_t ticks_to_ms(uint64_t ticks, uint32_t khz)
{
	uint64_t ms = div64_32(ticks, khz);

	return ms > 0xffffffffULL ? 0xffffffffu : (uint32_t)ms;
}

/* One word per page of [virt, virt+len), the value derived from the physical address. */
static uint32_t touch(uintptr_t virt, uint64_t phys, uint64_t len)
{
	uint32_t n = 0;

	for (uint64_t off = 0; off < len; off += PAGE, n++)
		*(volatile uint32_t *)(virt + (uintptr_t)off) =
			(uint32_t)((phys + off) >> 12) | 0x80000000u;
	return n;
}

/* The pages of [a, e) (below 4 GiB, identity-addressed) that hold nothing of ours. */
static uint32_t touch_low(uint64_t a, uint64_t e, const struct micro_range *res, uint32_t nres)
{
	uint32_t n = 0;

	a = (a + PAGE - 1) & ~(PAGE - 1);
	e &= ~(PAGE - 1);
	while (a < e) {
		uint64_t stop = e;
		bool skip = false;

		/* The nearest reserved range at or after a decides where this run ends. */
		for (uint32_t i = 0; i < nres; i++) {
			uint64_t rs = res[i].addr & ~(PAGE - 1);
			uint64_t re = (res[i].addr + res[i].size + PAGE - 1) & ~(PAGE - 1);

			if (re <= a || rs >= stop)
				continue;
			if (rs <= a) {
				a = re;
				skip = true;
				break;
			}
			stop = rs;
		}
		if (skip)
			continue;
		n += touch((uintptr_t)a, a, stop - a);
		a = stop;
	}
	return n;
}

#ifdef __x86_64__
static inline uint64_t cr_read3(void)
{
	uint64_t v;

	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static inline void cr_write3(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

#define WINDOW_BASE (4 * GiB) /* virtual: PDPT entry 4 of the VMM's PML4[0] */

/* The PDPT that PML4[0] points to (it maps the first 512 GiB), or NULL. */
static volatile uint64_t *pdpt0(void)
{
	const uint64_t *pml4 = (const uint64_t *)(uintptr_t)(cr_read3() & 0x000ffffffffff000ULL);

	if (!(pml4[0] & 1))
		return NULL;
	return (volatile uint64_t *)(uintptr_t)(pml4[0] & 0x000ffffffffff000ULL);
}

/* PDPT entry 4 (virtual [4 GiB, 5 GiB)) to our page directory, if the VMM left it empty. */
static bool window_open(void)
{
	volatile uint64_t *pdpt = pdpt0();

	if (!pdpt || (pdpt[4] & 1))
		return false; /* the VMM maps more than 4 GiB: leave its tables alone */
	pdpt[4] = (uint64_t)(uintptr_t)win_pd | PDPTE_PRESENT | PDPTE_WRITABLE;
	cr_write3(cr_read3());
	return true;
}

static void window_close(void)
{
	pdpt0()[4] = 0;
	cr_write3(cr_read3());
}

static void window_flush(void)
{
	cr_write3(cr_read3());
}
#else
#define WINDOW_BASE (3 * GiB) /* virtual: PDPT entry 3 */
#define MSR_EFER    0xc0000080u
#define EFER_LME    0x100u

static inline uint32_t cr_read(int n)
{
	uint32_t v = 0;

	if (n == 0)
		__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	else if (n == 4)
		__asm__ volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline uint64_t msr_read(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void msr_write(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			 : "memory");
}

/*
 * 4-level paging in compatibility mode (EFER.LME with our 32-bit code segment): legacy PAE
 * paging ends in a triple fault on our nested KVM, long mode works. Virtual addresses stay
 * 32-bit: the first GiB identity-mapped (the kernel lives at 1 MiB), the window at 3 GiB.
 */
static bool window_open(void)
{
	if (cr_read(0) & 0x80000000u)
		return false; /* paging already on: not the PVH entry we know */
	for (uint32_t i = 0; i < 512; i++)
		lm_pd0[i] = ((uint64_t)i << 21) | PDE_2M;
	lm_pdpt[0] = (uint64_t)(uintptr_t)lm_pd0 | PDPTE_PRESENT | PDPTE_WRITABLE;
	lm_pdpt[3] = (uint64_t)(uintptr_t)win_pd | PDPTE_PRESENT | PDPTE_WRITABLE;
	lm_pml4[0] = (uint64_t)(uintptr_t)lm_pdpt | PDPTE_PRESENT | PDPTE_WRITABLE;
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr_read(4) | 0x20u) : "memory");
	__asm__ volatile("mov %0, %%cr3" : : "r"((uint32_t)(uintptr_t)lm_pml4) : "memory");
	msr_write(MSR_EFER, msr_read(MSR_EFER) | EFER_LME);
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr_read(0) | 0x80000000u) : "memory");
	return true;
}

static void window_close(void)
{
	__asm__ volatile("mov %0, %%cr0" : : "r"(cr_read(0) & ~0x80000000u) : "memory");
	msr_write(MSR_EFER, msr_read(MSR_EFER) & ~(uint64_t)EFER_LME);
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr_read(4) & ~0x20u) : "memory");
}

static void window_flush(void)
{
	__asm__ volatile("mov %0, %%cr3" : : "r"((uint32_t)(uintptr_t)lm_pml4) : "memory");
}
#endif

/* RAM at and above 4 GiB, [a, e), one GiB at a time through the window. */
static uint32_t touch_high(uint64_t a, uint64_t e)
{
	uint32_t n = 0;

	a = (a + 2 * MiB - 1) & ~(2 * MiB - 1);
	for (; a < e; a += GiB) {
		uint64_t len = e - a < GiB ? e - a : GiB;

		for (uint32_t i = 0; i < 512; i++)
			win_pd[i] = (uint64_t)i * 2 * MiB < len ? (a + i * 2 * MiB) | PDE_2M : 0;
		window_flush();
		n += touch((uintptr_t)WINDOW_BASE, a, len & ~(PAGE - 1));
	}
	return n;
}

static void touch_ram(uint32_t khz)
{
	struct micro_range res[MAX_RESERVED];
	uint32_t nres = micro_ram_reserved(res, MAX_RESERVED), low = 0, high = 0;
	uint64_t a, size, t0 = rdtsc(), high_left = 0;
	bool window = false;

	for (uint32_t i = 0; micro_ram_range(i, &a, &size); i++) {
		uint64_t e = a + size;

		/* Below 1 MiB: boot structures of the VMM and its firmware; nothing to gain. */
		if (a < MiB)
			a = MiB;
		if (a < 4 * GiB && a < e)
			low += touch_low(a, e < 4 * GiB ? e : 4 * GiB, res, nres);
		if (e > 4 * GiB)
			high_left += e - (a > 4 * GiB ? a : 4 * GiB);
	}
	if (high_left && (window = window_open())) {
		for (uint32_t i = 0; micro_ram_range(i, &a, &size); i++)
			if (a + size > 4 * GiB)
				high += touch_high(a > 4 * GiB ? a : 4 * GiB, a + size);
		window_close();
	}
	uart_printf("GAP TOUCH low=%u high=%u ms=%u%s\n", low, high,
		    ticks_to_ms(rdtsc() - t0, khz),
		    high_left && !window ? " (RAM above 4 GiB not reachable)" : "");
}

__attribute__((noreturn)) void scenario_gap(void)
{
	uint64_t khz = param_or("t.tsc_khz", 0);
	uint64_t poll, over, prev, last_poll, max = 0;
	uint32_t nover = 0, iters = 0;

	if (!khz || khz > 0xffffffffULL) {
		fail("gap", "t.tsc_khz missing");
		debug_exit(FAIL_EXIT_CODE);
	}
	poll = div64_32(param_or("t.poll_us", 1000) * khz, 1000);
	over = div64_32(param_or("t.over_us", 100) * khz, 1000);
	if (param_or("t.touch", 1))
		touch_ram((uint32_t)khz);
	gap_beat.magic = GAP_MAGIC;
	gap_beat.tsc = rdtsc();
	uart_printf("GAP READY beat=%x\n", (uint32_t)(uintptr_t)&gap_beat);

	prev = last_poll = rdtsc();
	for (;;) {
		uint64_t now = rdtsc(), d = now - prev;

		prev = now;
		gap_beat.tsc = now;
		iters++;
		if (d > max)
			max = d;
		if (d > over)
			nover++;
		if (now - last_poll < poll)
			continue;
		last_poll = now;
		if (!(inb(COM1 + UART_LSR) & UART_LSR_DR))
			continue;
		if (inb(COM1) != '?')
			continue;
		uart_printf("GAP max_us=%u over=%u iters=%u\n", ticks_to_us(max, (uint32_t)khz),
			    nover, iters);
		max = 0;
		nover = 0;
		iters = 0;
		prev = last_poll = rdtsc();
	}
}
