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

/* Scenarios in other files. */
__attribute__((noreturn)) void scenario_blk(void);
__attribute__((noreturn)) void scenario_blk_errors(void);
__attribute__((noreturn)) void scenario_blk_hostile(void);

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

/* The AP trampoline (tramp.S): 16-bit code, copied to a low page and started by SIPI. */
extern const char micro_tramp_start[], micro_tramp_count[], micro_tramp_end[];
#endif

#endif
