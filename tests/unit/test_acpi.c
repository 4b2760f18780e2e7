// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/acpi.h"
#include "vmm/devices.h"
#include "vmm/layout.h"

/* The \_S5 package and the sleep-register device must agree on the encoding. */
_Static_assert(ACPI_S5_SLP_TYP == ACPI_PM_SLP_TYP_S5, "SLP_TYP differs from devices/acpi_pm.c");
_Static_assert(ACPI_SLP_EN == ACPI_PM_SLP_EN, "SLP_EN differs from devices/acpi_pm.c");
_Static_assert(ACPI_SLP_TYP_SHIFT == ACPI_PM_SLP_TYP_SHIFT, "SLP_TYP shift differs");
_Static_assert(ACPI_SLP_TYP_MASK == ACPI_PM_SLP_TYP_MASK, "SLP_TYP mask differs");

static uint8_t buf[LAYOUT_ACPI_SIZE];

static struct acpi_dev_desc descs[303];

/* The platform as vmm describes it: COM1, the RTC, pvpanic if asked, then virtio-mmio devices. */
static unsigned int platform(unsigned int nr_mmio, bool pvpanic)
{
	unsigned int n = 0;

	acpi_desc_uart(&descs[n++], "COM1", 0, PORT_COM1, IRQ_COM1);
	acpi_desc_rtc(&descs[n++], PORT_CMOS);
	if (pvpanic)
		acpi_desc_pvpanic(&descs[n++], PORT_PVPANIC);
	for (unsigned int i = 0; i < nr_mmio; i++)
		acpi_desc_virtio_mmio(&descs[n++], i, LAYOUT_VIRTIO_MMIO + i * 0x1000ULL, 0x1000,
				      5 + i % 19);
	return n;
}

static size_t build(const struct acpi_config *cfg)
{
	uint64_t rsdp_gpa = 0;
	size_t used = 0;

	memset(buf, 0xcc, sizeof(buf));
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, cfg, &rsdp_gpa, &used), 0);
	assert_int_equal(rsdp_gpa, LAYOUT_ACPI); /* RSDP first, for the BIOS-area scan */
	assert_true(used > 0 && used <= sizeof(buf));
	return used;
}

/* Host pointer to a table at gpa, checked against the built range. */
static const struct acpi_header *table_at(uint64_t gpa, size_t used)
{
	const struct acpi_header *h;

	assert_true(gpa >= LAYOUT_ACPI);
	assert_true(gpa - LAYOUT_ACPI + sizeof(*h) <= used);
	h = (const struct acpi_header *)(buf + (gpa - LAYOUT_ACPI));
	assert_true(h->length >= sizeof(*h));
	assert_true(gpa - LAYOUT_ACPI + h->length <= used);
	assert_int_equal(acpi_checksum(h, h->length), 0);
	assert_memory_equal(h->oem_id, "VMM   ", 6);
	assert_memory_equal(h->oem_table_id, "VMMACPI ", 8);
	return h;
}

static const struct acpi_rsdp *check_rsdp(void)
{
	const struct acpi_rsdp *r = (const struct acpi_rsdp *)buf;

	assert_memory_equal(r->signature, "RSD PTR ", 8);
	assert_int_equal(r->revision, 2);
	assert_int_equal(r->length, 36);
	assert_int_equal(acpi_checksum(r, 20), 0);
	assert_int_equal(acpi_checksum(r, 36), 0);
	assert_int_equal(r->rsdt_address, 0);
	return r;
}

/* Walks the XSDT; returns the table with the given signature (exactly one expected). */
static const struct acpi_header *find_table(const char *sig, size_t used)
{
	const struct acpi_rsdp *r = check_rsdp();
	const struct acpi_header *xsdt = table_at(r->xsdt_address, used);
	const struct acpi_header *found = NULL;
	size_t n;

	assert_memory_equal(xsdt->signature, "XSDT", 4);
	assert_int_equal(xsdt->revision, 1);
	assert_int_equal((xsdt->length - sizeof(*xsdt)) % 8, 0);
	n = (xsdt->length - sizeof(*xsdt)) / 8;
	for (size_t i = 0; i < n; i++) {
		uint64_t gpa;

		memcpy(&gpa, (const uint8_t *)(xsdt + 1) + 8 * i, 8);
		const struct acpi_header *h = table_at(gpa, used);
		assert_memory_not_equal(h->signature, "DSDT", 4); /* only through the FADT */
		if (!memcmp(h->signature, sig, 4)) {
			assert_null(found);
			found = h;
		}
	}
	return found;
}

static void test_rsdp_xsdt(void **state)
{
	struct acpi_config cfg = {.nr_cpus = 1};
	size_t used;

	(void)state;
	used = build(&cfg);
	check_rsdp();
	assert_non_null(find_table("FACP", used));
	assert_non_null(find_table("APIC", used));
	assert_null(find_table("RSDT", used));
}

static void check_gas_io8(const struct acpi_gas *g, uint64_t port)
{
	assert_int_equal(g->space_id, ACPI_GAS_SYSTEM_IO);
	assert_int_equal(g->bit_width, 8);
	assert_int_equal(g->bit_offset, 0);
	assert_int_equal(g->access_size, ACPI_GAS_ACCESS_BYTE);
	assert_int_equal(g->address, port);
}

static void test_fadt(void **state)
{
	struct acpi_config cfg = {.nr_cpus = 2, .devs = descs, .nr_devs = platform(0, true)};
	const struct acpi_fadt *f;
	const struct acpi_header *dsdt;
	size_t used;

	(void)state;
	used = build(&cfg);
	f = (const struct acpi_fadt *)find_table("FACP", used);
	assert_non_null(f);
	assert_int_equal(f->header.length, sizeof(*f));
	assert_int_equal(f->header.revision, 6);
	assert_true(f->flags & ACPI_FADT_HW_REDUCED_ACPI);
	assert_true(f->flags & ACPI_FADT_RESET_REG_SUP);
	/* Reduced hardware: none of the fixed-hardware blocks. */
	assert_int_equal(f->sci_int, 0);
	assert_int_equal(f->smi_cmd, 0);
	assert_int_equal(f->pm1a_evt_blk, 0);
	assert_int_equal(f->pm1a_cnt_blk, 0);
	assert_int_equal(f->pm_tmr_blk, 0);
	assert_int_equal(f->x_pm_tmr_blk.address, 0);
	assert_int_equal(f->x_pm1a_cnt_blk.address, 0);
	assert_int_equal(f->firmware_ctrl, 0);
	assert_int_equal(f->x_firmware_ctrl, 0);
	/* IA-PC boot flags: no 8042 to probe (reset goes through RESET_REG), no VGA, CMOS RTC. */
	assert_false(f->iapc_boot_arch & ACPI_FADT_8042);
	assert_true(f->iapc_boot_arch & ACPI_FADT_NO_VGA);
	assert_false(f->iapc_boot_arch & ACPI_FADT_NO_CMOS_RTC);
	assert_int_equal(f->century, 0x32);
	/* S5 and reset registers. */
	check_gas_io8(&f->sleep_control_reg, PORT_ACPI_SLEEP);
	check_gas_io8(&f->sleep_status_reg, PORT_ACPI_SLEEP + 1);
	check_gas_io8(&f->reset_reg, PORT_I8042_CMD);
	assert_int_equal(f->reset_value, 0xfe);

	/* X_DSDT leads to a valid DSDT; the 32-bit field stays zero (§5.2.9). */
	assert_int_equal(f->dsdt, 0);
	dsdt = table_at(f->x_dsdt, used);
	assert_memory_equal(dsdt->signature, "DSDT", 4);
	assert_int_equal(dsdt->revision, 2);
}

static bool mem_contains(const void *hay, size_t hlen, const void *needle, size_t nlen)
{
	return memmem(hay, hlen, needle, nlen) != NULL;
}

static size_t mem_count(const uint8_t *hay, size_t hlen, const void *needle, size_t nlen)
{
	size_t n = 0;
	const uint8_t *p = hay, *end = hay + hlen;

	while ((p = memmem(p, (size_t)(end - p), needle, nlen)) != NULL) {
		n++;
		p += nlen;
	}
	return n;
}

static void test_dsdt_contents(void **state)
{
	struct acpi_config cfg = {.nr_cpus = 1, .devs = descs, .nr_devs = platform(8, true)};
	const struct acpi_fadt *f;
	const struct acpi_header *d;
	size_t used;

	(void)state;
	used = build(&cfg);
	f = (const struct acpi_fadt *)find_table("FACP", used);
	d = table_at(f->x_dsdt, used);

	/* Name (_S5_, Package (4) { 5, 0, 0, 0 }) */
	static const uint8_t s5[] = {0x08, '_',	 'S',  '5',  '_',  0x12, 0x07,
				     0x04, 0x0a, 0x05, 0x00, 0x00, 0x00};
	assert_true(mem_contains(d, d->length, s5, sizeof(s5)));
	assert_int_equal(mem_count((const uint8_t *)d, d->length, "\x0dLNRO0005", 10), 8);
	assert_int_equal(mem_count((const uint8_t *)d, d->length, "\x0dQEMU0001", 10), 1);
	assert_true(mem_contains(d, d->length, "V007", 4));
	assert_false(mem_contains(d, d->length, "V008", 4));

	cfg.nr_devs = platform(8, false);
	used = build(&cfg);
	f = (const struct acpi_fadt *)find_table("FACP", used);
	d = table_at(f->x_dsdt, used);
	assert_int_equal(mem_count((const uint8_t *)d, d->length, "QEMU0001", 8), 0);
}

static void check_madt(unsigned int nr_cpus)
{
	struct acpi_config cfg = {.nr_cpus = nr_cpus};
	const struct acpi_madt *m;
	bool seen[256] = {false};
	unsigned int lapics = 0, ioapics = 0, nmis = 0;
	uint8_t ioapic_id = 0;
	size_t used, off;

	used = build(&cfg);
	m = (const struct acpi_madt *)find_table("APIC", used);
	assert_non_null(m);
	assert_int_equal(m->lapic_address, LAYOUT_LAPIC);

	for (off = sizeof(*m); off < m->header.length;) {
		const uint8_t *e = (const uint8_t *)m + off;

		assert_true(off + 2 <= m->header.length);
		assert_true(e[1] >= 2 && off + e[1] <= m->header.length);
		switch (e[0]) {
		case ACPI_MADT_TYPE_LAPIC: {
			const struct acpi_madt_lapic *l = (const void *)e;

			assert_int_equal(l->length, sizeof(*l));
			assert_true(l->flags & ACPI_MADT_LAPIC_ENABLED);
			assert_false(seen[l->apic_id]);
			seen[l->apic_id] = true;
			assert_int_equal(l->apic_id, lapics); /* APIC ID = vCPU index */
			lapics++;
			break;
		}
		case ACPI_MADT_TYPE_IOAPIC: {
			const struct acpi_madt_ioapic *io = (const void *)e;

			assert_int_equal(io->length, sizeof(*io));
			assert_int_equal(io->address, LAYOUT_IOAPIC);
			assert_int_equal(io->gsi_base, 0);
			ioapic_id = io->ioapic_id;
			ioapics++;
			break;
		}
		case ACPI_MADT_TYPE_LAPIC_NMI: {
			const struct acpi_madt_lapic_nmi *n = (const void *)e;

			assert_int_equal(n->length, sizeof(*n));
			assert_int_equal(n->processor_uid, 0xff);
			assert_int_equal(n->lint, 1);
			nmis++;
			break;
		}
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(off, m->header.length);
	assert_int_equal(lapics, nr_cpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(nmis, 1);
	assert_false(seen[ioapic_id]); /* IOAPIC ID never clashes with a LAPIC ID */
}

static void test_madt(void **state)
{
	(void)state;
	check_madt(1);
	check_madt(2);
	check_madt(64);
	check_madt(255);
}

static void test_enospc(void **state)
{
	struct acpi_config cfg = {.nr_cpus = 4, .devs = descs, .nr_devs = platform(4, true)};
	static uint8_t small[4096];
	uint64_t rsdp_gpa;
	size_t used, need;

	(void)state;
	need = build(&cfg);
	assert_true(need <= sizeof(small));
	/* Every buffer size below what is needed fails, and never writes past its end. */
	for (size_t len = 0; len < need; len++) {
		memset(small, 0xcc, sizeof(small));
		assert_int_equal(acpi_build(small, len, LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
				 -ENOSPC);
		for (size_t i = len; i < sizeof(small); i++)
			assert_int_equal(small[i], 0xcc);
	}
	assert_int_equal(acpi_build(small, need, LAYOUT_ACPI, &cfg, &rsdp_gpa, &used), 0);
	assert_int_equal(used, need);
	assert_memory_equal(small, buf, need); /* deterministic */

	/* So many devices that the DSDT cannot fit in the ACPI window. */
	struct acpi_dev_desc *many = calloc(ACPI_MAX_DEVS, sizeof(*many));
	assert_non_null(many);
	for (unsigned int i = 0; i < ACPI_MAX_DEVS; i++)
		acpi_desc_virtio_mmio(&many[i], i, LAYOUT_VIRTIO_MMIO + i * 0x1000ULL, 0x1000, 5);
	cfg.devs = many;
	cfg.nr_devs = ACPI_MAX_DEVS;
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -ENOSPC);
	free(many);
}

static void test_einval(void **state)
{
	struct acpi_dev_desc bad, two[2];
	struct acpi_config cfg = {.nr_cpus = 0};
	uint64_t rsdp_gpa;
	size_t used;

	(void)state;
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
	cfg.nr_cpus = 256;
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
	cfg.nr_cpus = 1;
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI + 8, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, NULL, &rsdp_gpa, &used),
			 -EINVAL);
	/* A virtio-mmio window crossing 4 GiB cannot be a Memory32Fixed. */
	acpi_desc_virtio_mmio(&bad, 0, 0xfffff000, 0x2000, 5);
	cfg.devs = &bad;
	cfg.nr_devs = 1;
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
	acpi_desc_virtio_mmio(&bad, 0, UINT64_MAX - 10, 0x1000, 5);
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
	/* Names and HIDs that AML cannot carry, an ISA IRQ above 15, two devices of one name. */
	acpi_desc_virtio_mmio(&bad, 0, LAYOUT_VIRTIO_MMIO, 0x1000, 5);
	memcpy(bad.name, "v000", 5);
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
	acpi_desc_uart(&bad, "COM1", 0, PORT_COM1, 16);
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
	acpi_desc_uart(&bad, "COM1", 0, PORT_COM1, 4);
	memcpy(bad.hid, "PNPZZZZ", 8);
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
	acpi_desc_rtc(&two[0], PORT_CMOS);
	acpi_desc_rtc(&two[1], PORT_CMOS);
	cfg.devs = two;
	cfg.nr_devs = 2;
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
	cfg.devs = NULL;
	assert_int_equal(acpi_build(buf, sizeof(buf), LAYOUT_ACPI, &cfg, &rsdp_gpa, &used),
			 -EINVAL);
}

/* ---- iasl: the reference ACPICA tools read what we wrote (test-only dependency). ---- */

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	size_t n;

	if (!f)
		return -errno;
	n = fwrite(data, 1, len, f);
	if (fclose(f) != 0 || n != len)
		return -EIO;
	return 0;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	static uint8_t data[LAYOUT_ACPI_SIZE];

	if (!f)
		return NULL;
	*len = fread(data, 1, sizeof(data), f);
	fclose(f);
	return data;
}

static int run(const char *dir, const char *cmd)
{
	char line[1024];

	snprintf(line, sizeof(line), "cd '%s' && %s >>iasl.log 2>&1", dir, cmd);
	return system(line);
}

static void test_iasl(void **state)
{
	struct acpi_config cfg = {.nr_cpus = 4, .devs = descs, .nr_devs = platform(300, true)};
	static const char *const sigs[] = {"XSDT", "FACP", "APIC", "DSDT"};
	char dir[] = "/tmp/vmm-acpi-XXXXXX";
	char path[256];
	const struct acpi_header *d;
	const struct acpi_fadt *f;
	uint8_t *rt;
	size_t used, rt_len = 0;

	(void)state;
	if (system("command -v iasl >/dev/null 2>&1") != 0) {
		print_message("iasl not found (Debian acpica-tools): skipping disassembly check\n");
		skip();
	}
	used = build(&cfg);
	assert_non_null(mkdtemp(dir));

	f = (const struct acpi_fadt *)find_table("FACP", used);
	d = table_at(f->x_dsdt, used);
	for (unsigned int i = 0; i < ARRAY_SIZE(sigs); i++) {
		const struct acpi_header *h =
			!strcmp(sigs[i], "DSDT") ? d : find_table(sigs[i], used);

		if (!strcmp(sigs[i], "XSDT"))
			h = table_at(check_rsdp()->xsdt_address, used);
		snprintf(path, sizeof(path), "%s/%s.dat", dir, sigs[i]);
		assert_int_equal(write_file(path, h, h->length), 0);
		snprintf(path, sizeof(path), "iasl -d %s.dat", sigs[i]);
		assert_int_equal(run(dir, path), 0);
		snprintf(path, sizeof(path), "%s/%s.dsl", dir, sigs[i]);
		assert_int_equal(access(path, R_OK), 0);
	}
	/* Nothing the disassembler complained about. */
	assert_int_equal(run(dir, "! grep -Ei '(error|warning)' iasl.log"), 0);

	/*
	 * Round trip: compiling the disassembly without optimisations gives back our AML
	 * byte for byte, except that iasl writes 0 ("no checksum") in resource End Tags
	 * where we write the real checksum.
	 */
	assert_int_equal(run(dir, "iasl -oa -p rt DSDT.dsl"), 0);
	snprintf(path, sizeof(path), "%s/rt.aml", dir);
	rt = read_file(path, &rt_len);
	assert_non_null(rt);
	assert_int_equal(rt_len, d->length);
	for (size_t i = sizeof(*d); i < rt_len; i++) {
		const uint8_t *ours = (const uint8_t *)d;

		if (ours[i] != rt[i]) {
			assert_int_equal(ours[i - 1], 0x79);
			assert_int_equal(rt[i], 0);
		}
	}

	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	assert_int_equal(system(path), 0);
}

/*
 * Every virtio slot has an IOAPIC input of its own, within KVM's 24, none that a platform
 * device or the PC's fixed wiring uses, and the first 8 keep 16..23 (snapshots rely on it).
 */
static void test_virtio_gsis(void **state)
{
	static const unsigned int taken[] = { 0, 1, 2, IRQ_COM1, 8, 9, 12 };
	bool seen[24] = { false };
	(void)state;

	for (unsigned int slot = 0; slot < LAYOUT_VIRTIO_MAX_DEVS; slot++) {
		unsigned int gsi = layout_virtio_gsi(slot);

		assert_true(gsi < 24);
		assert_false(seen[gsi]);
		seen[gsi] = true;
		for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
			assert_int_not_equal(gsi, taken[i]);
		if (slot < 8)
			assert_int_equal(gsi, 16 + slot);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsdp_xsdt),     cmocka_unit_test(test_fadt),
		cmocka_unit_test(test_dsdt_contents), cmocka_unit_test(test_madt),
		cmocka_unit_test(test_enospc),	      cmocka_unit_test(test_einval),
		cmocka_unit_test(test_iasl),	      cmocka_unit_test(test_virtio_gsis),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
