/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Micro-guests: freestanding test kernels for the vmm guest suite. The same C (micro.c) is built
 * twice, -m64 for the bzImage (64-bit boot protocol entry) and -m32 for the PVH ELF (32-bit flat
 * protected mode, paging off). The entry stubs only set a stack and call micro_main().
 */
#ifndef MICRO_H
#define MICRO_H

/* How we were entered: selects the layout of the boot information pointer. */
#define MICRO_BOOT_BZIMAGE 1 /* boot_params, Linux Documentation/arch/x86/boot.rst */
#define MICRO_BOOT_PVH	   2 /* struct hvm_start_info, Xen arch-x86/hvm/start_info.h */

#define MICRO_STACK_SIZE 16384

/*
 * AP workers (tramp.S, micro_ap_workers()): each started AP serves commands from its own
 * mailbox, 64 bytes of 32-bit fields at these offsets. The BSP fills in a command and bumps
 * seq; the AP runs it and sets done = seq. One command: `count` times (or until stop is set),
 * wait `delay` pause loops, then
 *   MICRO_AP_WRITE  *addr = val0
 *   MICRO_AP_ALT    *addr = val0; wait delay; *addr2 = val1 (addr2 0: addr)
 *   MICRO_AP_READ   val1 = *addr
 * iters counts the iterations done.
 */
#define MICRO_AP_MAX	   4
#define MICRO_AP_BOX_SHIFT 6
#define MB_SEQ		   0
#define MB_DONE		   4
#define MB_OP		   8
#define MB_ADDR		   12
#define MB_ADDR2	   16
#define MB_VAL0		   20
#define MB_VAL1		   24
#define MB_COUNT	   28
#define MB_DELAY	   32
#define MB_STOP		   36
#define MB_ITERS	   40
#define MB_ALIVE	   44
#define MICRO_AP_WRITE	   1
#define MICRO_AP_ALT	   2
#define MICRO_AP_READ	   3

#ifndef __ASSEMBLER__
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* debug-exit value when a check failed: the VMM then exits with (0x7f << 1) | 1 = 255 */
#define FAIL_EXIT_CODE 0x7f

void micro_main(uint32_t boot_kind, uintptr_t boot_info);

/* ---- shared by the scenario files (micro.c) ---- */

void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* Console on COM1. printf subset: %s %c %u (uint32_t) %x (uint32_t) %llx (uint64_t). */
__attribute__((format(printf, 1, 2))) void uart_printf(const char *fmt, ...);
/* "MICRO PASS <check>" / "MICRO FAIL <check>: ..."; both counted for micro_done(). */
bool pass(const char *check);
__attribute__((format(printf, 2, 3))) bool fail(const char *check, const char *fmt, ...);
/* "MICRO DONE ...", then ACPI poweroff if nothing failed, else debug-exit FAIL_EXIT_CODE. */
__attribute__((noreturn)) void micro_done(void);
__attribute__((noreturn)) void debug_exit(uint8_t code);
__attribute__((noreturn)) void poweroff(void);
void delay(uint32_t n);

/* A guest physical range below 4 GiB as a pointer, or NULL (overflow-checked). */
const void *phys(uint64_t addr, uint64_t len);

/* The kernel command line ("t.key=value" tokens) and its parsers. */
const char *micro_cmdline(void);
bool is_space(char c);
const char *param_find(const char *cmdline, const char *key);
bool param_u64(const char *cmdline, const char *key, uint64_t *out);
bool param_is(const char *cmdline, const char *key, const char *want);

/* The DSDT reached from the boot information's RSDP, or NULL; *len its length. */
const uint8_t *micro_dsdt(uint32_t *len);

/* The end of the highest RAM range below 4 GiB in the memory map (0 if none). */
uint64_t micro_ram_top_4g(void);

/* The i-th RAM entry of the memory map (any address); false past the last. */
bool micro_ram_range(uint32_t i, uint64_t *addr, uint64_t *size);
/* The kernel's footprint, boot data and live page tables: never to be overwritten. */
struct micro_range {
	uint64_t addr;
	uint64_t size;
};
uint32_t micro_ram_reserved(struct micro_range *out, uint32_t max);

/*
 * Start every AP of the MADT as a worker (tramp.S); returns how many arrived. Idempotent:
 * later calls return the same count. The workers run with interrupts off and never return.
 */
uint32_t micro_ap_workers(void);
/* Post a command to worker `ap` (0-based); it starts at once. See MICRO_AP_* above. */
void micro_ap_post(uint32_t ap, uint32_t op, uintptr_t addr, uintptr_t addr2, uint32_t val0,
		   uint32_t val1, uint32_t count, uint32_t delay);
/* Wait up to `tsc` TSC ticks for the command to finish; false on timeout (stop then set). */
bool micro_ap_wait(uint32_t ap, uint64_t tsc);
/* Ask the running command to end early (it finishes its current iteration). */
void micro_ap_stop(uint32_t ap);
bool micro_ap_busy(uint32_t ap);
uint32_t micro_ap_iters(uint32_t ap);

/* Scenarios in other files. */
__attribute__((noreturn)) void scenario_blk(void);
__attribute__((noreturn)) void scenario_blk_errors(void);
__attribute__((noreturn)) void scenario_blk_hostile(void);
__attribute__((noreturn)) void scenario_vcon(void);

static inline void outb(uint8_t v, uint16_t port)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline void cpu_pause(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline uint32_t mmio_read32(uintptr_t addr)
{
	return *(volatile uint32_t *)addr;
}

static inline void mmio_write32(uintptr_t addr, uint32_t v)
{
	*(volatile uint32_t *)addr = v;
}

static inline uint16_t mmio_read16(uintptr_t addr)
{
	return *(volatile uint16_t *)addr;
}

static inline uint8_t mmio_read8(uintptr_t addr)
{
	return *(volatile uint8_t *)addr;
}

static inline void mmio_write8(uintptr_t addr, uint8_t v)
{
	*(volatile uint8_t *)addr = v;
}

/* The AP trampolines (tramp.S): 16-bit code, copied to a low page and started by SIPI. */
extern const char micro_tramp_start[], micro_tramp_count[], micro_tramp_end[];
extern const char micro_wtramp_start[], micro_wtramp_end[];
/* count.c */
__attribute__((noreturn)) void scenario_count(uint64_t cycles);
/* gap.c */
__attribute__((noreturn)) void scenario_gap(void);
#endif

#endif
