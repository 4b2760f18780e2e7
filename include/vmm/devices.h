/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small legacy and pseudo devices of the PC platform: i8042 (reset line), CMOS RTC, QEMU-style
 * debug-exit port, pvpanic, hardware-reduced ACPI sleep registers. The 16550A UART has its own
 * header (vmm/serial.h).
 *
 * Each device is a register model behind the bus handler signature of vmm/bus.h, has its own
 * mutex (handlers run on several vCPU threads at once) and talks back only through the sinks of
 * vmm/platform.h. The vm_stop_sink may be called from any vCPU thread, with no device lock held.
 * Registering the ranges on the PIO bus is the caller's job; the *_PORT_LEN constants give sizes.
 */
#ifndef VMM_DEVICES_H
#define VMM_DEVICES_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "vmm/compiler.h"
#include "vmm/log.h"
#include "vmm/platform.h"

/*
 * Rate limit for guest-triggered log lines: a guest that hammers a port must not flood stderr.
 * At most DEV_RATELIMIT_BURST lines per DEV_RATELIMIT_WINDOW_S seconds; the caller serialises
 * (holds the device lock).
 */
#define DEV_RATELIMIT_BURST    10
#define DEV_RATELIMIT_WINDOW_S 5

struct dev_ratelimit {
	int64_t window_start; /* CLOCK_MONOTONIC seconds */
	unsigned int printed;
	unsigned int suppressed;
};

static inline bool dev_ratelimit_ok(struct dev_ratelimit *rl)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec - rl->window_start >= DEV_RATELIMIT_WINDOW_S) {
		if (rl->suppressed)
			log_warn("(%u similar messages suppressed)", rl->suppressed);
		rl->window_start = ts.tv_sec;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed >= DEV_RATELIMIT_BURST) {
		rl->suppressed++;
		return false;
	}
	rl->printed++;
	return true;
}

#define dev_log_ratelimited(rl, fmt, ...)                                                          \
	do {                                                                                       \
		if (dev_ratelimit_ok(rl))                                                          \
			log_warn(fmt, ##__VA_ARGS__);                                              \
	} while (0)

/* ---- i8042 keyboard controller: just enough for the reset line and Linux's probes ---- */

#define I8042_PORT_LEN 1 /* one range at PORT_I8042_DATA, one at PORT_I8042_CMD */

struct i8042;

/* irq (may be NULL) raises IRQ 1 for keyboard bytes. */
int i8042_create(struct i8042 **out, const struct vm_stop_sink *stop,
		 const struct irq_sink *irq) WUR;
void i8042_destroy(struct i8042 *k);
void i8042_reset(struct i8042 *k);
/* Press and release Ctrl-Alt-Del on the keyboard (thread-safe). */
void i8042_send_ctrl_alt_del(struct i8042 *k);
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* ---- CMOS RTC (MC146818-compatible), index port PORT_CMOS, data port PORT_CMOS + 1 ---- */

#define RTC_PORT_LEN  2
#define RTC_CMOS_SIZE 128

/* Wall clock source, UTC seconds since the epoch. NULL in rtc_create means CLOCK_REALTIME. */
struct rtc_clock {
	int64_t (*now)(void *opaque);
	void *opaque;
};

/* Guest-visible state for snapshots. */
struct rtc_state {
	uint8_t index;		     /* last index written, NMI bit stripped */
	uint8_t cmos[RTC_CMOS_SIZE]; /* RAM, registers A..D, and the time fields while B.SET */
	int64_t offset;		     /* guest time - host time, seconds (guest set the clock) */
};

struct rtc;

int rtc_create(struct rtc **out, const struct rtc_clock *clock) WUR;
void rtc_destroy(struct rtc *r);
void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void rtc_state_get(struct rtc *r, struct rtc_state *st);
int rtc_state_set(struct rtc *r, const struct rtc_state *st) WUR;

/* ---- debug-exit (QEMU isa-debug-exit compatible) ---- */

struct debug_exit;

/*
 * port: base the caller registers (PORT_DEBUG_EXIT by default), iosize 1, 2 or 4 (QEMU's iosize)
 * is the length of the range. A write of v stops the VM with VMM_STOP_DEBUG_EXIT, code v.
 */
int debug_exit_create(struct debug_exit **out, const struct vm_stop_sink *stop, uint16_t port,
		      unsigned int iosize) WUR;
void debug_exit_destroy(struct debug_exit *d);
uint16_t debug_exit_port(const struct debug_exit *d);
unsigned int debug_exit_len(const struct debug_exit *d);
void debug_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* ---- pvpanic (QEMU pvpanic ISA device, ACPI _HID QEMU0001) ---- */

#define PVPANIC_PORT_LEN     1
#define PVPANIC_PANICKED     (1u << 0)
#define PVPANIC_CRASH_LOADED (1u << 1)

struct pvpanic;

int pvpanic_create(struct pvpanic **out, const struct vm_stop_sink *stop) WUR;
void pvpanic_destroy(struct pvpanic *p);
void pvpanic_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
/* True once the guest reported that a crash kernel took over (PVPANIC_CRASH_LOADED). */
bool pvpanic_crash_loaded(struct pvpanic *p);

/* ---- hardware-reduced ACPI sleep control (+0) and status (+1) registers ---- */

#define ACPI_PM_PORT_LEN      2
#define ACPI_PM_SLP_TYP_S5    5 /* the SLP_TYP our DSDT's \_S5 package must carry */
#define ACPI_PM_SLP_EN	      (1u << 5)
#define ACPI_PM_SLP_TYP_SHIFT 2
#define ACPI_PM_SLP_TYP_MASK  (7u << ACPI_PM_SLP_TYP_SHIFT)
#define ACPI_PM_WAK_STS	      (1u << 7)

struct acpi_pm;

int acpi_pm_create(struct acpi_pm **out, const struct vm_stop_sink *stop) WUR;
void acpi_pm_destroy(struct acpi_pm *a);
void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

#endif
