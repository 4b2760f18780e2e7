// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "vmm/aml.h"

/* Independent PkgLength decoder (ACPI 6.5 §20.2.4), to check the encoder against. */
static size_t pkglen_decode(const uint8_t *p, size_t *nbytes)
{
	unsigned int extra = p[0] >> 6;
	size_t v;

	if (extra == 0) {
		*nbytes = 1;
		return p[0] & 0x3f;
	}
	v = p[0] & 0x0f;
	for (unsigned int i = 0; i < extra; i++)
		v |= (size_t)p[1 + i] << (4 + 8 * i);
	*nbytes = 1 + extra;
	return v;
}

static void check_pkglen(size_t body, int want_bytes)
{
	uint8_t out[4] = {0};
	size_t n, v;
	int ret = aml_pkglen_encode(out, body);

	assert_int_equal(ret, want_bytes);
	v = pkglen_decode(out, &n);
	assert_int_equal(n, (size_t)want_bytes);
	assert_int_equal(v, body + n); /* the value counts its own bytes */
	if (want_bytes > 1)
		assert_int_equal(out[0] & 0x30, 0); /* bits 5:4 reserved */
}

static void test_pkglen_boundaries(void **state)
{
	uint8_t out[4];

	(void)state;
	check_pkglen(0, 1);
	check_pkglen(62, 1); /* total 63: the largest 1-byte value */
	check_pkglen(63, 2); /* total 64 would not fit in 6 bits */
	check_pkglen(64, 2);
	check_pkglen(4093, 2); /* total 4095 = 0xfff */
	check_pkglen(4094, 3);
	check_pkglen(4095, 3);
	check_pkglen(4096, 3);
	check_pkglen(0xfffff - 3, 3);
	check_pkglen(0xfffff - 2, 4);
	check_pkglen(0xfffffff - 4, 4);
	assert_int_equal(aml_pkglen_encode(out, 0xfffffff - 3), -E2BIG);
	assert_int_equal(aml_pkglen_encode(out, SIZE_MAX), -E2BIG);

	/* Exact bytes for two well-known cases. */
	assert_int_equal(aml_pkglen_encode(out, 62), 1);
	assert_int_equal(out[0], 0x3f);
	assert_int_equal(aml_pkglen_encode(out, 63), 2);
	assert_int_equal(out[0], 0x41); /* 65 = 0x41: 1 extra byte, low nibble 1 */
	assert_int_equal(out[1], 0x04);
}

static void expect_bytes(const uint8_t *buf, size_t len, const uint8_t *want, size_t wlen)
{
	assert_int_equal(len, wlen);
	assert_memory_equal(buf, want, wlen);
}

static void check_int(uint64_t v, const uint8_t *want, size_t wlen)
{
	uint8_t buf[16];
	struct aml a;
	size_t len;

	aml_init(&a, buf, sizeof(buf));
	aml_int(&a, v);
	assert_int_equal(aml_finish(&a, &len), 0);
	expect_bytes(buf, len, want, wlen);
}

static void test_integers(void **state)
{
	(void)state;
	check_int(0, (const uint8_t[]){0x00}, 1);
	check_int(1, (const uint8_t[]){0x01}, 1);
	check_int(2, (const uint8_t[]){0x0a, 0x02}, 2);
	check_int(0xff, (const uint8_t[]){0x0a, 0xff}, 2);
	check_int(0x100, (const uint8_t[]){0x0b, 0x00, 0x01}, 3);
	check_int(0xffff, (const uint8_t[]){0x0b, 0xff, 0xff}, 3);
	check_int(0x10000, (const uint8_t[]){0x0c, 0x00, 0x00, 0x01, 0x00}, 5);
	check_int(0xffffffff, (const uint8_t[]){0x0c, 0xff, 0xff, 0xff, 0xff}, 5);
	check_int(0x100000000ULL,
		  (const uint8_t[]){0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00}, 9);
	check_int(UINT64_MAX,
		  (const uint8_t[]){0x0e, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9);
}

static void test_nameseg_valid(void **state)
{
	(void)state;
	assert_true(aml_nameseg_valid("_SB_"));
	assert_true(aml_nameseg_valid("COM1"));
	assert_true(aml_nameseg_valid("V0FF"));
	assert_true(aml_nameseg_valid("____"));
	assert_false(aml_nameseg_valid("1ABC")); /* digit cannot lead */
	assert_false(aml_nameseg_valid("abcd")); /* lower case */
	assert_false(aml_nameseg_valid("AB-D"));
	assert_false(aml_nameseg_valid("ABC"));
	assert_false(aml_nameseg_valid("ABCDE"));
	assert_false(aml_nameseg_valid(""));
	assert_false(aml_nameseg_valid(NULL));
}

static int name_bytes(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	struct aml a;

	aml_init(&a, buf, cap);
	aml_name(&a, path);
	return aml_finish(&a, len);
}

static void test_name_strings(void **state)
{
	uint8_t buf[64];
	size_t len;

	(void)state;
	assert_int_equal(name_bytes("COM1", buf, sizeof(buf), &len), 0);
	expect_bytes(buf, len, (const uint8_t *)"COM1", 4);

	assert_int_equal(name_bytes("RTC", buf, sizeof(buf), &len), 0); /* padded */
	expect_bytes(buf, len, (const uint8_t *)"RTC_", 4);

	assert_int_equal(name_bytes("\\_SB_.COM1", buf, sizeof(buf), &len), 0);
	expect_bytes(buf, len, (const uint8_t *)"\\\x2e_SB_COM1", 10);

	assert_int_equal(name_bytes("\\", buf, sizeof(buf), &len), 0);
	expect_bytes(buf, len, (const uint8_t[]){0x5c, 0x00}, 2);

	assert_int_equal(name_bytes("^^FOO", buf, sizeof(buf), &len), 0);
	expect_bytes(buf, len, (const uint8_t *)"^^FOO_", 6);

	assert_int_equal(name_bytes("\\A.B.C", buf, sizeof(buf), &len), 0);
	expect_bytes(buf, len,
		     (const uint8_t *)"\\\x2f\x03"
				      "A___B___C___",
		     15);

	assert_int_equal(name_bytes("1BAD", buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(name_bytes("TOOLONG", buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(name_bytes("A..B", buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(name_bytes("A.", buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(name_bytes("\\^A", buf, sizeof(buf), &len), -EINVAL);
	assert_int_equal(name_bytes("low", buf, sizeof(buf), &len), -EINVAL);
}

static void test_string_and_eisaid(void **state)
{
	uint8_t buf[32];
	struct aml a;
	size_t len;
	uint32_t id;

	(void)state;
	aml_init(&a, buf, sizeof(buf));
	aml_string(&a, "LNRO0005");
	assert_int_equal(aml_finish(&a, &len), 0);
	expect_bytes(buf, len, (const uint8_t *)"\x0dLNRO0005", 10); /* includes the NUL */

	aml_init(&a, buf, sizeof(buf));
	aml_string(&a, "\xc3\xa9");
	assert_int_equal(aml_finish(&a, &len), -EINVAL);

	/* Well-known compressed IDs: PNP0501 = 0x0105d041, PNP0B00 = 0x000bd041. */
	assert_int_equal(aml_eisaid_encode("PNP0501", &id), 0);
	assert_int_equal(id, 0x0105d041);
	assert_int_equal(aml_eisaid_encode("PNP0B00", &id), 0);
	assert_int_equal(id, 0x000bd041);
	assert_int_equal(aml_eisaid_encode("pnp0501", &id), -EINVAL);
	assert_int_equal(aml_eisaid_encode("PNP05G1", &id), -EINVAL);
	assert_int_equal(aml_eisaid_encode("PNP050", &id), -EINVAL);

	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0501");
	assert_int_equal(aml_finish(&a, &len), 0);
	expect_bytes(buf, len, (const uint8_t[]){0x0c, 0x41, 0xd0, 0x05, 0x01}, 5);
}

static void test_method_package_device(void **state)
{
	uint8_t buf[64];
	struct aml a;
	size_t len, t;

	(void)state;
	/* Method (_STA) { Return (0x0F) } */
	aml_init(&a, buf, sizeof(buf));
	t = aml_method_begin(&a, "_STA", 0, false);
	aml_return(&a);
	aml_int(&a, 0x0f);
	aml_end(&a, t);
	assert_int_equal(aml_finish(&a, &len), 0);
	expect_bytes(buf, len,
		     (const uint8_t[]){0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f}, 10);

	/* Name (_S5_, Package (2) { 5, Zero }) */
	aml_init(&a, buf, sizeof(buf));
	aml_name_decl(&a, "_S5_");
	t = aml_package_begin(&a, 2);
	aml_int(&a, 5);
	aml_int(&a, 0);
	aml_end(&a, t);
	assert_int_equal(aml_finish(&a, &len), 0);
	expect_bytes(
		buf, len,
		(const uint8_t[]){0x08, '_', 'S', '5', '_', 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00},
		11);

	/* Device (FOO_) {} */
	aml_init(&a, buf, sizeof(buf));
	t = aml_device_begin(&a, "FOO");
	aml_end(&a, t);
	assert_int_equal(aml_finish(&a, &len), 0);
	expect_bytes(buf, len, (const uint8_t[]){0x5b, 0x82, 0x05, 'F', 'O', 'O', '_'}, 7);

	aml_init(&a, buf, sizeof(buf));
	t = aml_method_begin(&a, "_XYZ", 8, false); /* at most 7 arguments */
	aml_end(&a, t);
	assert_int_equal(aml_finish(&a, &len), -EINVAL);
}

/* Nested objects whose bodies cross the 1-byte PkgLength limit get their lengths right. */
static void test_nested_long_bodies(void **state)
{
	static uint8_t buf[8192];
	struct aml a;
	size_t len, scope, dev, n, v, pos;

	(void)state;
	aml_init(&a, buf, sizeof(buf));
	scope = aml_scope_begin(&a, "\\_SB_");
	dev = aml_device_begin(&a, "BIG0");
	for (int i = 0; i < 600; i++) /* ~3000 bytes: two-byte PkgLengths */
		aml_int(&a, 0x12345678);
	aml_end(&a, dev);
	aml_end(&a, scope);
	assert_int_equal(aml_finish(&a, &len), 0);

	assert_int_equal(buf[0], AML_SCOPE_OP);
	v = pkglen_decode(buf + 1, &n);
	assert_int_equal(n, 2);
	assert_int_equal(v, len - 1); /* everything after the opcode */
	pos = 1 + n + 5;	      /* \_SB_ */
	assert_int_equal(buf[pos], AML_EXT_OP_PREFIX);
	assert_int_equal(buf[pos + 1], AML_DEVICE_OP);
	v = pkglen_decode(buf + pos + 2, &n);
	assert_int_equal(n, 2);
	assert_int_equal(v, len - (pos + 2));
	assert_memory_equal(buf + pos + 2 + n, "BIG0", 4);
}

static void test_restemplate(void **state)
{
	uint8_t buf[128];
	struct aml a;
	size_t len, t, n, v, size_len, body;
	uint8_t sum = 0;

	(void)state;
	/* Empty template: Buffer (2) { EndTag }, checksum 0x100 - 0x79 */
	aml_init(&a, buf, sizeof(buf));
	t = aml_restemplate_begin(&a);
	aml_restemplate_end(&a, t);
	assert_int_equal(aml_finish(&a, &len), 0);
	expect_bytes(buf, len, (const uint8_t[]){0x11, 0x05, 0x0a, 0x02, 0x79, 0x87}, 6);

	aml_init(&a, buf, sizeof(buf));
	t = aml_restemplate_begin(&a);
	aml_res_io(&a, 0x3f8, 8);
	aml_res_irq_noflags(&a, 4);
	aml_res_mem32_fixed(&a, 0xd0000000, 0x1000, true);
	aml_res_ext_irq(&a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, 5);
	aml_restemplate_end(&a, t);
	assert_int_equal(aml_finish(&a, &len), 0);

	assert_int_equal(buf[0], AML_BUFFER_OP);
	v = pkglen_decode(buf + 1, &n);
	assert_int_equal(v, len - 1);
	assert_int_equal(buf[1 + n], AML_BYTE_PREFIX);
	body = buf[2 + n];
	size_len = 2;
	assert_int_equal(body, 8 + 3 + 12 + 9 + 2);
	assert_int_equal(1 + n + size_len + body, len);

	const uint8_t *d = buf + 1 + n + size_len;
	assert_memory_equal(d, ((const uint8_t[]){0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08}),
			    8);
	assert_memory_equal(d + 8, ((const uint8_t[]){0x22, 0x10, 0x00}), 3);
	assert_memory_equal(d + 11,
			    ((const uint8_t[]){0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xd0, 0x00,
					       0x10, 0x00, 0x00}),
			    12);
	assert_memory_equal(
		d + 23, ((const uint8_t[]){0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00}),
		9);
	/* End tag last, and its checksum zeroes the sum of all descriptor bytes. */
	assert_int_equal(d[body - 2], AML_RES_END_TAG);
	for (size_t i = 0; i < body; i++)
		sum = (uint8_t)(sum + d[i]);
	assert_int_equal(sum, 0);

	aml_init(&a, buf, sizeof(buf));
	t = aml_restemplate_begin(&a);
	aml_res_irq_noflags(&a, 16); /* ISA IRQs are 0-15 */
	aml_restemplate_end(&a, t);
	assert_int_equal(aml_finish(&a, &len), -EINVAL);
}

static void test_enospc_sticky(void **state)
{
	uint8_t buf[64];
	struct aml a;
	size_t len, t;

	(void)state;
	/* Every truncation of a small nested object fails cleanly, never overruns. */
	for (size_t cap = 0; cap < 40; cap++) {
		memset(buf, 0xaa, sizeof(buf));
		aml_init(&a, buf, cap);
		t = aml_device_begin(&a, "DEV0");
		aml_name_decl(&a, "_HID");
		aml_string(&a, "LNRO0005");
		aml_name_decl(&a, "_UID");
		aml_int(&a, 3);
		aml_end(&a, t);
		if (aml_finish(&a, &len) == 0) {
			assert_true(len <= cap);
			assert_int_equal(len, 2 + 1 + 4 + 5 + 10 + 5 + 2);
		} else {
			assert_int_equal(a.err, -ENOSPC);
		}
		for (size_t i = cap; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0xaa);
	}

	/* A later success does not clear an earlier error. */
	aml_init(&a, buf, 2);
	aml_int(&a, 0x10000);
	len = a.len;
	aml_int(&a, 0);
	assert_int_equal(a.len, len);
	assert_int_equal(aml_finish(&a, &len), -ENOSPC);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pkglen_boundaries),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_nameseg_valid),
		cmocka_unit_test(test_name_strings),
		cmocka_unit_test(test_string_and_eisaid),
		cmocka_unit_test(test_method_package_device),
		cmocka_unit_test(test_nested_long_bodies),
		cmocka_unit_test(test_restemplate),
		cmocka_unit_test(test_enospc_sticky),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
