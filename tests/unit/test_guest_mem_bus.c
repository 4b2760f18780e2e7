// SPDX-License-Identifier: Apache-2.0
/* Guest memory translation (overflow, hole, region edges) and bus registration/lookup. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/bus.h"
#include "vmm/guest_mem.h"
#include "vmm/layout.h"
#include "vmm/escape.h"

static void test_gm_small(void **state)
{
	struct guest_mem gm;
	(void)state;

	assert_int_equal(gm_create(&gm, 0), -EINVAL);
	assert_int_equal(gm_create(&gm, 4097), -EINVAL);
	assert_int_equal(gm_create(&gm, 16 * MiB), 0);
	assert_int_equal(gm.nr_regions, 1);
	assert_int_equal(gm_low_size(&gm), 16 * MiB);
	assert_int_equal(gm_high_size(&gm), 0);
	assert_int_equal(gm_end(&gm), 16 * MiB);
	assert_non_null(gm_ptr(&gm, GPA(0), 16 * MiB));
	assert_null(gm_ptr(&gm, GPA(0), 16 * MiB + 1));
	assert_null(gm_ptr(&gm, GPA(16 * MiB), 1));
	assert_non_null(gm_ptr(&gm, GPA(16 * MiB - 1), 1));
	assert_non_null(gm_ptr(&gm, GPA(16 * MiB), 0)); /* empty range at the end */
	assert_null(gm_ptr(&gm, GPA(UINT64_MAX), 2));   /* wraps */
	assert_null(gm_ptr(&gm, GPA(8), UINT64_MAX));

	uint32_t v = 0xdeadbeef, r = 0;
	assert_int_equal(gm_write(&gm, GPA(0x1000), &v, 4), 0);
	assert_int_equal(gm_read(&gm, &r, GPA(0x1000), 4), 0);
	assert_int_equal(r, v);
	assert_int_equal(gm_write(&gm, GPA(16 * MiB - 2), &v, 4), -EFAULT);
	assert_int_equal(gm_read(&gm, &r, GPA(16 * MiB - 2), 4), -EFAULT);
	gm_destroy(&gm);
}

/*
 * The mapping of a memfd of /proc/self/smaps that starts at base: its end and its VmFlags.
 * Returns false if there is none.
 */
static bool smaps_entry(const void *base, uintptr_t *end, char *flags, size_t flags_len)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false, found = false;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		/* A mapping's first line; field lines ("AnonHugePages: ...") have no '-'. */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = lo == (uintptr_t)base;
			if (in)
				*end = hi;
			continue;
		}
		if (in && strncmp(line, "VmFlags:", 8) == 0) {
			snprintf(flags, flags_len, "%s", line + 8);
			found = true;
			break;
		}
	}
	fclose(f);
	return found;
}

/* Guest RAM starts on a 2 MiB boundary, is marked for huge pages (VmFlags "hg"), and nothing
 * of the address space reserved to align it stays mapped around it. */
static void test_gm_huge_aligned(void **state)
{
	static const uint64_t sizes[] = { 16 * MiB, 16 * MiB + 4096, 2 * MiB - 4096 };
	(void)state;

	for (unsigned int i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct guest_mem gm;
		uintptr_t end = 0;
		char flags[512];

		assert_int_equal(gm_create(&gm, sizes[i]), 0);
		assert_true(IS_ALIGNED((uintptr_t)gm.base, (uintptr_t)GM_HUGE_ALIGN));
		assert_true(smaps_entry(gm.base, &end, flags, sizeof(flags)));
		assert_int_equal(end, (uintptr_t)gm.base + sizes[i]);
		assert_non_null(strstr(flags, " hg"));
		/* The reservation's slack is gone: its pages are not mapped. */
		unsigned char vec;
		assert_int_equal(mincore(gm.base - 4096, 4096, &vec), -1);
		assert_int_equal(errno, ENOMEM);
		assert_int_equal(mincore(gm.base + ALIGN_UP(sizes[i], 4096ULL), 4096, &vec), -1);
		assert_int_equal(errno, ENOMEM);
		uint8_t b = 0x5a, r = 0;
		assert_int_equal(gm_write(&gm, GPA(sizes[i] - 1), &b, 1), 0);
		assert_int_equal(gm_read(&gm, &r, GPA(sizes[i] - 1), 1), 0);
		assert_int_equal(r, b);
		gm_destroy(&gm);
	}
}

static void test_gm_split(void **state)
{
	struct guest_mem gm;
	(void)state;

	/* 4 GiB: 3 GiB below the hole, 1 GiB from 4 GiB; pages are not touched. */
	assert_int_equal(gm_create(&gm, 4 * GiB), 0);
	assert_int_equal(gm.nr_regions, 2);
	assert_int_equal(gm_low_size(&gm), LAYOUT_MMIO_HOLE);
	assert_int_equal(gm_high_size(&gm), GiB);
	assert_int_equal(gm_end(&gm), 5 * GiB);
	assert_non_null(gm_ptr(&gm, GPA(LAYOUT_MMIO_HOLE - 4), 4));
	assert_null(gm_ptr(&gm, GPA(LAYOUT_MMIO_HOLE - 4), 8)); /* straddles into the hole */
	assert_null(gm_ptr(&gm, GPA(LAYOUT_MMIO_HOLE), 1));
	assert_null(gm_ptr(&gm, GPA(LAYOUT_IOAPIC), 4));
	assert_non_null(gm_ptr(&gm, GPA(4 * GiB), 4096));
	assert_null(gm_ptr(&gm, GPA(5 * GiB - 1), 2));
	/* One memfd: the byte after the low region in the file is the first byte at 4 GiB. */
	uint8_t *lo = gm_ptr(&gm, GPA(LAYOUT_MMIO_HOLE - 1), 1);
	uint8_t *hi = gm_ptr(&gm, GPA(4 * GiB), 1);
	assert_ptr_equal(lo + 1, hi);
	gm_destroy(&gm);
}

static void nop_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(*(int *)opaque)++;
}

static void test_bus(void **state)
{
	struct bus bus;
	int hits = 0;
	uint8_t data[4];
	(void)state;

	bus_init(&bus);
	assert_int_equal(bus_register(&bus, 0x3f8, 8, nop_io, &hits, "a"), 0);
	assert_int_equal(bus_register(&bus, 0x60, 1, nop_io, &hits, "b"), 0);
	assert_int_equal(bus_register(&bus, 0x64, 1, nop_io, &hits, "c"), 0);
	assert_int_equal(bus_register(&bus, 0x3f0, 9, nop_io, &hits, "x"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3ff, 1, nop_io, &hits, "x"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3fa, 1, nop_io, &hits, "x"), -EEXIST);
	assert_int_equal(bus_register(&bus, 0x3f0, 8, nop_io, &hits, "ok"), 0);
	assert_int_equal(bus_register(&bus, 0x100, 0, nop_io, &hits, "x"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 2, nop_io, &hits, "x"), -EINVAL);
	assert_int_equal(bus_register(&bus, UINT64_MAX, 1, nop_io, &hits, "top"), 0);

	assert_string_equal(bus_find(&bus, 0x3fc, 1)->name, "a");
	assert_string_equal(bus_find(&bus, 0x3f7, 1)->name, "ok");
	assert_string_equal(bus_find(&bus, 0x64, 1)->name, "c");
	assert_null(bus_find(&bus, 0x61, 1));
	assert_null(bus_find(&bus, 0x3fe, 4)); /* runs past the end of the range */
	assert_null(bus_find(&bus, UINT64_MAX, 2));
	assert_string_equal(bus_find(&bus, UINT64_MAX, 1)->name, "top");

	assert_true(bus_access(&bus, 0x3f8, data, 1, true));
	assert_int_equal(hits, 1);
	assert_false(bus_access(&bus, 0x80, data, 2, false));
	assert_int_equal(data[0], 0xff);
	assert_int_equal(bus.unmapped_reads, 1);
	assert_false(bus_access(&bus, 0x80, data, 1, true));
	assert_int_equal(bus.unmapped_writes, 1);

	/* Fill to capacity. */
	bus_init(&bus);
	for (unsigned int i = 0; i < BUS_MAX_RANGES; i++)
		assert_int_equal(bus_register(&bus, 0x1000 + i * 2, 1, nop_io, &hits, "n"), 0);
	assert_int_equal(bus_register(&bus, 0x9000, 1, nop_io, &hits, "n"), -ENOSPC);
	for (unsigned int i = 0; i < BUS_MAX_RANGES; i++)
		assert_non_null(bus_find(&bus, 0x1000 + i * 2, 1));
}

static void test_term_escape(void **state)
{
	struct term_escape e;
	uint8_t out[16];
	(void)state;

	term_escape_init(&e, true);
	assert_int_equal(term_escape_filter(&e, (const uint8_t *)"ab\x01\x01" "c", 5, out, 16), 4);
	assert_memory_equal(out, "ab\x01" "c", 4);
	assert_int_equal(term_escape_filter(&e, (const uint8_t *)"\x01", 1, out, 16), 0);
	assert_true(e.armed);
	assert_int_equal(term_escape_filter(&e, (const uint8_t *)"q", 1, out, 16), 2);
	assert_memory_equal(out, "\x01q", 2);
	assert_false(e.quit);
	assert_int_equal(term_escape_filter(&e, (const uint8_t *)"z\x01x", 3, out, 16), 1);
	assert_true(e.quit);

	term_escape_init(&e, false); /* a pipe: bytes pass unchanged */
	assert_int_equal(term_escape_filter(&e, (const uint8_t *)"\x01x", 2, out, 16), 2);
	assert_false(e.quit);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gm_small),
		cmocka_unit_test(test_gm_huge_aligned),
		cmocka_unit_test(test_gm_split),
		cmocka_unit_test(test_bus),
		cmocka_unit_test(test_term_escape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
