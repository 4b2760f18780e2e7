// SPDX-License-Identifier: Apache-2.0
/* i8042, CMOS RTC, debug-exit, pvpanic, ACPI sleep registers: register models without KVM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <time.h>

#include "vmm/devices.h"
#include "vmm/layout.h"

struct fake_stop {
	int calls;
	enum vmm_stop_reason reason;
	int code;
};

static void fake_stop_request(void *opaque, enum vmm_stop_reason reason, int code)
{
	struct fake_stop *f = opaque;

	f->calls++;
	f->reason = reason;
	f->code = code;
}

#define FAKE_STOP(name)                                                                            \
	struct fake_stop name = {0};                                                               \
	struct vm_stop_sink name##_sink = {.request = fake_stop_request, .opaque = &name}

/* ---- i8042 ---- */

static uint8_t kbd_rd(struct i8042 *k, bool cmd_port)
{
	uint8_t v = 0;

	if (cmd_port)
		i8042_cmd_io(k, 0, &v, 1, false);
	else
		i8042_data_io(k, 0, &v, 1, false);
	return v;
}

static void kbd_wr(struct i8042 *k, bool cmd_port, uint8_t v)
{
	if (cmd_port)
		i8042_cmd_io(k, 0, &v, 1, true);
	else
		i8042_data_io(k, 0, &v, 1, true);
}

static void test_i8042_reset(void **state)
{
	FAKE_STOP(stop);
	struct i8042 *k;

	assert_int_equal(i8042_create(&k, &stop_sink, NULL), 0);
	/* Linux kb_wait(): input buffer empty, nothing pending. */
	assert_int_equal(kbd_rd(k, true) & 0x03, 0);
	kbd_wr(k, true, 0xfe);
	assert_int_equal(stop.calls, 1);
	assert_int_equal(stop.reason, VMM_STOP_REBOOT);
	/* Pulsing other lines (bit 0 set) is no reset. */
	kbd_wr(k, true, 0xff);
	assert_int_equal(stop.calls, 1);
	/* Output port write with the reset bit low resets too. */
	kbd_wr(k, true, 0xd1);
	kbd_wr(k, false, 0x02);
	assert_int_equal(stop.calls, 2);
	assert_int_equal(stop.reason, VMM_STOP_REBOOT);
	i8042_destroy(k);
}

static void test_i8042_probe(void **state)
{
	FAKE_STOP(stop);
	struct i8042 *k;
	uint8_t ctr;

	assert_int_equal(i8042_create(&k, &stop_sink, NULL), 0);
	kbd_wr(k, true, 0xaa);
	assert_int_equal(kbd_rd(k, true) & 0x01, 0x01);
	assert_int_equal(kbd_rd(k, false), 0x55);
	assert_int_equal(kbd_rd(k, true) & 0x01, 0);
	/* CTR read, write, read back. */
	kbd_wr(k, true, 0x20);
	ctr = kbd_rd(k, false);
	kbd_wr(k, true, 0x60);
	kbd_wr(k, false, (uint8_t)(ctr ^ 0x01));
	kbd_wr(k, true, 0x20);
	assert_int_equal(kbd_rd(k, false), ctr ^ 0x01);
	/* AUX loopback comes back without AUXDATA: Linux concludes "no AUX" at once. */
	kbd_wr(k, true, 0xd3);
	kbd_wr(k, false, 0x5a);
	assert_int_equal(kbd_rd(k, true) & 0x21, 0x01);
	assert_int_equal(kbd_rd(k, false), 0x5a);
	kbd_wr(k, true, 0xa9);
	assert_int_equal(kbd_rd(k, false), 0x01);
	/* Unknown commands do nothing harmful. */
	kbd_wr(k, true, 0x90);
	assert_int_equal(stop.calls, 0);
	i8042_destroy(k);
}

/* ---- RTC ---- */

static uint8_t cmos_rd(struct rtc *r, uint8_t idx)
{
	uint8_t v = 0;

	rtc_io(r, 0, &idx, 1, true);
	rtc_io(r, 1, &v, 1, false);
	return v;
}

static void cmos_wr(struct rtc *r, uint8_t idx, uint8_t v)
{
	rtc_io(r, 0, &idx, 1, true);
	rtc_io(r, 1, &v, 1, true);
}

static unsigned int bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

struct rtc_fields {
	unsigned int sec, min, hour, mday, mon, year, century, wday;
};

static unsigned int dec(uint8_t v, bool binary)
{
	return binary ? v : bcd(v);
}

/* Like Linux's mc146818_get_time(): read again if the seconds moved during the read. */
static void rtc_get(struct rtc *r, struct rtc_fields *f, bool binary)
{
	do {
		f->sec = dec(cmos_rd(r, 0x00), binary);
		f->min = dec(cmos_rd(r, 0x02), binary);
		f->hour = cmos_rd(r, 0x04); /* decoded by the caller: 12h mode */
		f->wday = dec(cmos_rd(r, 0x06), binary);
		f->mday = dec(cmos_rd(r, 0x07), binary);
		f->mon = dec(cmos_rd(r, 0x08), binary);
		f->year = dec(cmos_rd(r, 0x09), binary);
		f->century = dec(cmos_rd(r, 0x32), binary);
	} while (f->sec != dec(cmos_rd(r, 0x00), binary));
}

static int64_t rtc_fields_to_time(const struct rtc_fields *f, unsigned int hour24)
{
	struct tm tm = {.tm_sec = (int)f->sec,
			.tm_min = (int)f->min,
			.tm_hour = (int)hour24,
			.tm_mday = (int)f->mday,
			.tm_mon = (int)f->mon - 1,
			.tm_year = (int)(f->century * 100 + f->year) - 1900};

	return (int64_t)timegm(&tm);
}

static void test_rtc_host_time_bcd_binary(void **state)
{
	struct rtc *r;
	struct rtc_fields f;
	int64_t t, now;

	assert_int_equal(rtc_create(&r, NULL), 0);
	assert_int_equal(cmos_rd(r, 0x0b), 0x02);
	assert_int_equal(cmos_rd(r, 0x0a) & 0x80, 0); /* UIP clear */
	assert_int_equal(cmos_rd(r, 0x0a) & 0x70, 0x20);
	assert_int_equal(cmos_rd(r, 0x0d), 0x80);
	rtc_get(r, &f, false);
	t = rtc_fields_to_time(&f, bcd((uint8_t)f.hour));
	now = time(NULL);
	assert_true(t <= now && now - t <= 1);
	{
		time_t tt = (time_t)t;
		struct tm tm;
		gmtime_r(&tt, &tm);
		assert_int_equal(f.wday, tm.tm_wday + 1);
	}
	/* Binary mode. */
	cmos_wr(r, 0x0b, 0x06);
	rtc_get(r, &f, true);
	t = rtc_fields_to_time(&f, f.hour);
	now = time(NULL);
	assert_true(t <= now && now - t <= 1);
	/* The NMI bit of the index is ignored. */
	assert_int_equal(cmos_rd(r, 0x80 | 0x0b), 0x06);
	rtc_destroy(r);
}

static int64_t fixed_now(void *opaque)
{
	return *(int64_t *)opaque;
}

static void test_rtc_12h(void **state)
{
	/* 2024-02-29 13:05:09 UTC, a Thursday */
	int64_t now = 1709211909;
	struct rtc_clock clk = {.now = fixed_now, .opaque = &now};
	struct rtc *r;

	assert_int_equal(rtc_create(&r, &clk), 0);
	assert_int_equal(cmos_rd(r, 0x04), 0x13);
	assert_int_equal(cmos_rd(r, 0x06), 5);
	assert_int_equal(cmos_rd(r, 0x32), 0x20);
	assert_int_equal(cmos_rd(r, 0x09), 0x24);
	cmos_wr(r, 0x0b, 0x00); /* 12h, BCD */
	assert_int_equal(cmos_rd(r, 0x04), 0x80 | 0x01);
	cmos_wr(r, 0x0b, 0x04); /* 12h, binary */
	assert_int_equal(cmos_rd(r, 0x04), 0x80 | 1);
	now -= 13 * 3600; /* 00:05 -> 12 AM */
	assert_int_equal(cmos_rd(r, 0x04), 12);
	now += 12 * 3600; /* 12:05 -> 12 PM */
	assert_int_equal(cmos_rd(r, 0x04), 0x80 | 12);
	rtc_destroy(r);
}

static void test_rtc_guest_sets_time(void **state)
{
	int64_t now = 1709211909; /* 2024-02-29 13:05:09 */
	struct rtc_clock clk = {.now = fixed_now, .opaque = &now};
	struct rtc_state st;
	struct rtc *r;

	assert_int_equal(rtc_create(&r, &clk), 0);
	/* Datasheet sequence: SET, write fields, clear SET. */
	cmos_wr(r, 0x0b, 0x82);
	assert_int_equal(cmos_rd(r, 0x00), 0x09); /* frozen */
	cmos_wr(r, 0x04, 0x10);
	cmos_wr(r, 0x07, 0x01);
	cmos_wr(r, 0x08, 0x03);
	now += 5;
	assert_int_equal(cmos_rd(r, 0x00), 0x09); /* still frozen */
	cmos_wr(r, 0x0b, 0x02);
	/* 2024-03-01 10:05:09, and the clock runs on from there. */
	now += 2;
	assert_int_equal(cmos_rd(r, 0x04), 0x10);
	assert_int_equal(cmos_rd(r, 0x07), 0x01);
	assert_int_equal(cmos_rd(r, 0x08), 0x03);
	assert_int_equal(cmos_rd(r, 0x00), 0x11);
	/* One field with the clock running. */
	cmos_wr(r, 0x02, 0x30);
	assert_int_equal(cmos_rd(r, 0x02), 0x30);
	assert_int_equal(cmos_rd(r, 0x04), 0x10);
	/* Invalid dates and BCD are ignored. */
	cmos_wr(r, 0x08, 0x13);
	assert_int_equal(cmos_rd(r, 0x08), 0x03);
	cmos_wr(r, 0x07, 0x1a);
	assert_int_equal(cmos_rd(r, 0x07), 0x01);
	cmos_wr(r, 0x0b, 0x82);
	cmos_wr(r, 0x07, 0x31); /* 31 March: fine */
	cmos_wr(r, 0x08, 0x04); /* 31 April: not */
	cmos_wr(r, 0x0b, 0x02);
	assert_int_equal(cmos_rd(r, 0x08), 0x03);
	/* The offset survives a state round trip. */
	rtc_state_get(r, &st);
	assert_int_not_equal(st.offset, 0);
	rtc_destroy(r);
	assert_int_equal(rtc_create(&r, &clk), 0);
	assert_int_equal(rtc_state_set(r, &st), 0);
	assert_int_equal(cmos_rd(r, 0x02), 0x30);
	st.index = 200;
	assert_int_equal(rtc_state_set(r, &st), -EINVAL);
	rtc_destroy(r);
}

static void test_rtc_ram(void **state)
{
	struct rtc *r;
	uint8_t v = 0;

	assert_int_equal(rtc_create(&r, NULL), 0);
	cmos_wr(r, 0x40, 0xab);
	cmos_wr(r, 0x7f, 0xcd);
	assert_int_equal(cmos_rd(r, 0x40), 0xab);
	assert_int_equal(cmos_rd(r, 0x7f), 0xcd);
	cmos_wr(r, 0x0d, 0x00); /* read-only */
	assert_int_equal(cmos_rd(r, 0x0d), 0x80);
	cmos_wr(r, 0x0a, 0xa6); /* UIP is read-only */
	assert_int_equal(cmos_rd(r, 0x0a), 0x26);
	assert_int_equal(cmos_rd(r, 0x0c), 0);
	rtc_io(r, 0, &v, 1, false);
	assert_int_equal(v, 0xff);
	rtc_destroy(r);
}

/* ---- debug-exit ---- */

static void test_debug_exit_widths(void **state)
{
	static const unsigned int sizes[] = {1, 2, 4};

	for (unsigned int i = 0; i < 3; i++) {
		FAKE_STOP(stop);
		struct debug_exit *d;
		uint8_t data[4] = {0x21, 0x43, 0x65, 0x07};
		uint32_t expect = 0;

		assert_int_equal(debug_exit_create(&d, &stop_sink, PORT_DEBUG_EXIT, sizes[i]), 0);
		assert_int_equal(debug_exit_port(d), PORT_DEBUG_EXIT);
		assert_int_equal(debug_exit_len(d), sizes[i]);
		for (unsigned int b = 0; b < sizes[i]; b++)
			expect |= (uint32_t)data[b] << (8 * b);
		debug_exit_io(d, 0, data, sizes[i], true);
		assert_int_equal(stop.calls, 1);
		assert_int_equal(stop.reason, VMM_STOP_DEBUG_EXIT);
		assert_int_equal((uint32_t)stop.code, expect);
		debug_exit_destroy(d);
	}
}

static void test_debug_exit_bad_args(void **state)
{
	struct debug_exit *d;

	assert_int_equal(debug_exit_create(&d, NULL, 0xf4, 3), -EINVAL);
	assert_int_equal(debug_exit_create(&d, NULL, 0xf4, 8), -EINVAL);
	assert_int_equal(debug_exit_create(&d, NULL, 0xfffe, 4), -EINVAL);
	assert_int_equal(debug_exit_create(&d, NULL, 0xfffc, 4), 0);
	debug_exit_destroy(d);
}

/* ---- pvpanic ---- */

static void test_pvpanic(void **state)
{
	FAKE_STOP(stop);
	struct pvpanic *p;
	uint8_t v = 0;

	assert_int_equal(pvpanic_create(&p, &stop_sink), 0);
	pvpanic_io(p, 0, &v, 1, false);
	assert_int_equal(v, PVPANIC_PANICKED | PVPANIC_CRASH_LOADED);
	v = PVPANIC_CRASH_LOADED;
	pvpanic_io(p, 0, &v, 1, true);
	assert_int_equal(stop.calls, 0);
	assert_true(pvpanic_crash_loaded(p));
	v = 0x04; /* not advertised */
	pvpanic_io(p, 0, &v, 1, true);
	assert_int_equal(stop.calls, 0);
	v = PVPANIC_PANICKED;
	pvpanic_io(p, 0, &v, 1, true);
	assert_int_equal(stop.calls, 1);
	assert_int_equal(stop.reason, VMM_STOP_PANIC);
	pvpanic_destroy(p);
}

/* ---- ACPI sleep registers ---- */

static void test_acpi_pm(void **state)
{
	FAKE_STOP(stop);
	struct acpi_pm *a;
	uint8_t v;

	assert_int_equal(acpi_pm_create(&a, &stop_sink), 0);
	v = 0;
	acpi_pm_io(a, 1, &v, 1, false);
	assert_int_equal(v, 0);
	/* S5 type without SLP_EN, and S5 in the wrong bits: nothing. */
	v = ACPI_PM_SLP_TYP_S5 << ACPI_PM_SLP_TYP_SHIFT;
	acpi_pm_io(a, 0, &v, 1, true);
	v = ACPI_PM_SLP_EN | ACPI_PM_SLP_TYP_S5;
	acpi_pm_io(a, 0, &v, 1, true);
	assert_int_equal(stop.calls, 0);
	/* S3 request: no stop, but WAK_STS so ACPICA's wait loop ends; write 1 clears it. */
	v = ACPI_PM_WAK_STS;
	acpi_pm_io(a, 1, &v, 1, true);
	v = ACPI_PM_SLP_EN | (3 << ACPI_PM_SLP_TYP_SHIFT);
	acpi_pm_io(a, 0, &v, 1, true);
	assert_int_equal(stop.calls, 0);
	acpi_pm_io(a, 1, &v, 1, false);
	assert_int_equal(v, ACPI_PM_WAK_STS);
	v = ACPI_PM_WAK_STS;
	acpi_pm_io(a, 1, &v, 1, true);
	acpi_pm_io(a, 1, &v, 1, false);
	assert_int_equal(v, 0);
	/* S5: power off. */
	v = ACPI_PM_SLP_EN | (ACPI_PM_SLP_TYP_S5 << ACPI_PM_SLP_TYP_SHIFT);
	acpi_pm_io(a, 0, &v, 1, true);
	assert_int_equal(stop.calls, 1);
	assert_int_equal(stop.reason, VMM_STOP_POWEROFF);
	acpi_pm_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_i8042_reset),
		cmocka_unit_test(test_i8042_probe),
		cmocka_unit_test(test_rtc_host_time_bcd_binary),
		cmocka_unit_test(test_rtc_12h),
		cmocka_unit_test(test_rtc_guest_sets_time),
		cmocka_unit_test(test_rtc_ram),
		cmocka_unit_test(test_debug_exit_widths),
		cmocka_unit_test(test_debug_exit_bad_args),
		cmocka_unit_test(test_pvpanic),
		cmocka_unit_test(test_acpi_pm),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
