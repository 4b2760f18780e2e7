// SPDX-License-Identifier: Apache-2.0
/*
 * The ordered device table (vm/devtable.c): devices are realized row by row, instance by
 * instance, and unwound in exactly the reverse order, also when a realize fails part-way (the
 * failing one included); quiesce undoes itself on failure; ids are unique; the machine's real
 * legacy devices go through the same table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/layout.h"

static char trace[1024];
static const char *fail_at;     /* "b1": realize of b's instance 1 fails */
static const char *quiesce_fail; /* id whose quiesce fails */

static void note(const char *what, const char *id)
{
	size_t n = strlen(trace);

	snprintf(trace + n, sizeof(trace) - n, "%s%s:%s", n ? " " : "", what, id);
}

static int fake_realize(struct device *d, const struct device_host *h, unsigned int idx,
			char *err, size_t errlen)
{
	const char *kind = d->ops->kind;

	snprintf(d->id, sizeof(d->id), "%s%u", kind, idx);
	note("realize", d->id);
	if (fail_at && !strcmp(fail_at, d->id)) {
		snprintf(err, errlen, "%s: refused", d->id);
		return -EIO;
	}
	d->priv = d; /* anything non-NULL */
	return 0;
}

static void fake_unrealize(struct device *d)
{
	note("unrealize", d->id);
}

static int fake_quiesce(struct device *d)
{
	note("quiesce", d->id);
	return quiesce_fail && !strcmp(quiesce_fail, d->id) ? -EBUSY : 0;
}

static void fake_resume(struct device *d)
{
	note("resume", d->id);
}

static bool fake_describe(struct device *d, struct acpi_dev_desc *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%.4s", d->id);
	return true;
}

static const struct device_ops ops_a = { .kind = "a", .realize = fake_realize,
					 .unrealize = fake_unrealize, .quiesce = fake_quiesce,
					 .resume = fake_resume, .describe = fake_describe };
static const struct device_ops ops_b = { .kind = "b", .realize = fake_realize,
					 .unrealize = fake_unrealize, .quiesce = fake_quiesce,
					 .resume = fake_resume };
static const struct device_ops ops_c = { .kind = "c", .realize = fake_realize,
					 .unrealize = fake_unrealize, .describe = fake_describe };

static unsigned int three(const struct vmm_config *c)
{
	return 3;
}

static unsigned int none(const struct vmm_config *c)
{
	return 0;
}

static const struct device_row rows[] = {
	{ &ops_a, NULL }, { &ops_b, three }, { &ops_a, none }, { &ops_c, NULL },
};

static void reset_trace(void)
{
	trace[0] = 0;
	fail_at = NULL;
	quiesce_fail = NULL;
}

static void test_order(void **state)
{
	struct vmm_config cfg;
	struct device_host h = { .cfg = &cfg };
	struct device_table t = { 0 };
	struct acpi_dev_desc desc[8];
	char err[128];
	(void)state;

	config_init(&cfg);
	reset_trace();
	assert_int_equal(devtable_realize(&t, rows, 4, &h, err, sizeof(err)), 0);
	assert_string_equal(trace, "realize:a0 realize:b0 realize:b1 realize:b2 realize:c0");
	assert_int_equal(t.nr, 5);
	assert_non_null(devtable_find(&t, "b2"));
	assert_null(devtable_find(&t, "b3"));

	/* Described in table order, devices without describe() left out. */
	assert_int_equal(devtable_describe(&t, desc, 8), 2);
	assert_string_equal(desc[0].name, "a0");
	assert_string_equal(desc[1].name, "c0");

	reset_trace();
	assert_int_equal(devtable_quiesce(&t), 0);
	devtable_resume(&t);
	assert_string_equal(trace, "quiesce:a0 quiesce:b0 quiesce:b1 quiesce:b2 "
				   "resume:b2 resume:b1 resume:b0 resume:a0");

	/* A quiesce that fails resumes the ones before it, in reverse. */
	reset_trace();
	quiesce_fail = "b1";
	assert_int_equal(devtable_quiesce(&t), -EBUSY);
	assert_string_equal(trace, "quiesce:a0 quiesce:b0 quiesce:b1 resume:b0 resume:a0");

	reset_trace();
	devtable_unrealize(&t);
	assert_string_equal(trace,
			    "unrealize:c0 unrealize:b2 unrealize:b1 unrealize:b0 unrealize:a0");
	assert_int_equal(t.nr, 0);
	config_fini(&cfg);
}

static void test_unwind(void **state)
{
	struct vmm_config cfg;
	struct device_host h = { .cfg = &cfg };
	struct device_table t = { 0 };
	char err[128] = "";
	(void)state;

	config_init(&cfg);
	reset_trace();
	fail_at = "b1";
	assert_int_equal(devtable_realize(&t, rows, 4, &h, err, sizeof(err)), -EIO);
	assert_string_equal(err, "b1: refused");
	/* The failed one is unrealized too (it may have taken something before failing). */
	assert_string_equal(trace, "realize:a0 realize:b0 realize:b1 "
				   "unrealize:b1 unrealize:b0 unrealize:a0");
	assert_int_equal(t.nr, 0);
	assert_null(t.dev);

	/* The very first one failing leaves nothing behind either. */
	reset_trace();
	fail_at = "a0";
	assert_int_equal(devtable_realize(&t, rows, 4, &h, err, sizeof(err)), -EIO);
	assert_string_equal(trace, "realize:a0 unrealize:a0");
	config_fini(&cfg);
}

static void test_duplicate_id(void **state)
{
	static const struct device_row dup[] = { { &ops_a, NULL }, { &ops_a, NULL } };
	struct vmm_config cfg;
	struct device_host h = { .cfg = &cfg };
	struct device_table t = { 0 };
	char err[128] = "";
	(void)state;

	config_init(&cfg);
	reset_trace();
	assert_int_equal(devtable_realize(&t, dup, 2, &h, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "id 'a0' is taken"));
	assert_string_equal(trace, "realize:a0 realize:a0 unrealize:a0 unrealize:a0");
	config_fini(&cfg);
}

/* The real legacy devices through the table: their ranges on the bus, their descriptions. */
static void irq_nop(void *opaque, unsigned int gsi, int level)
{
}

static void test_legacy_devices(void **state)
{
	static const struct device_row legacy[] = {
		{ &serial_device_ops, NULL }, { &i8042_device_ops, NULL },
		{ &rtc_device_ops, NULL },    { &pvpanic_device_ops, NULL },
		{ &acpi_pm_device_ops, NULL }, { &debug_exit_device_ops, NULL },
	};
	struct vmm_config cfg;
	struct bus pio, mmio;
	struct device_host h = { .cfg = &cfg, .pio = &pio, .mmio = &mmio,
				 .irq = { irq_nop, NULL } };
	struct device_table t = { 0 };
	struct acpi_dev_desc desc[8];
	char err[128] = "";
	(void)state;

	config_init(&cfg);
	bus_init(&pio);
	bus_init(&mmio);
	assert_int_equal(devtable_realize(&t, legacy, 6, &h, err, sizeof(err)), 0);
	assert_non_null(bus_find(&pio, PORT_COM1, 1));
	assert_non_null(bus_find(&pio, PORT_I8042_CMD, 1));
	assert_non_null(bus_find(&pio, PORT_CMOS + 1, 1));
	assert_non_null(bus_find(&pio, PORT_PVPANIC, 1));
	assert_non_null(bus_find(&pio, PORT_ACPI_SLEEP, 1));
	assert_non_null(bus_find(&pio, 0xf4, 1));
	assert_int_equal(devtable_describe(&t, desc, 8), 3);
	assert_string_equal(desc[0].hid, "PNP0501");
	assert_string_equal(desc[1].hid, "PNP0B00");
	assert_string_equal(desc[2].hid, "QEMU0001");
	assert_non_null(devtable_find(&t, "com1"));
	devtable_reset(&t);
	devtable_unrealize(&t);

	/* A debug-exit port on a taken range: the device's realize says so. */
	bus_init(&pio);
	cfg.debug_exit_port = PORT_COM1 + 2;
	assert_int_equal(devtable_realize(&t, legacy, 6, &h, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "debug-exit port: 0x3fa"));
	config_fini(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_unwind),
		cmocka_unit_test(test_duplicate_id),
		cmocka_unit_test(test_legacy_devices),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
