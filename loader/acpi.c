// SPDX-License-Identifier: Apache-2.0
/*
 * ACPI tables for a hardware-reduced x86 platform. Section numbers are ACPI 6.5.
 *
 * What Linux 6.1 needs from them, and why each choice:
 * - CPUs: the Debian cloud kernel has no MP-table parser, so the MADT's Local APIC
 *   entries are the only way it finds vCPUs (arch/x86/kernel/acpi/boot.c).
 * - Poweroff: in reduced mode Linux offers S5 only when \_S5 evaluates AND both FADT
 *   SLEEP_CONTROL_REG and SLEEP_STATUS_REG are set (acpi_sleep_state_supported() in
 *   drivers/acpi/sleep.c); ACPICA then writes (SLP_TYP << 2) | SLP_EN as one byte to
 *   SLEEP_CONTROL_REG (hwesleep.c).
 * - Reboot: FADT RESET_REG with RESET_REG_SUP; acpi_reboot() wants an 8-bit register at
 *   bit offset 0. Port 0x64 value 0xFE is what the i8042 model turns into a reset.
 * - HW_REDUCED_ACPI makes Linux skip the SCI, the PM timer, the FACS and the legacy PIC
 *   (acpi_reduced_hw_init() installs null_legacy_pic).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/acpi.h"
#include "vmm/aml.h"
#include "vmm/layout.h"

#define ACPI_OEM_ID	  "VMM   "
#define ACPI_OEM_TABLE_ID "VMMACPI "
#define ACPI_OEM_REVISION 1
#define ACPI_CREATOR_ID	  "VMMC"
#define ACPI_CREATOR_REV  1
#define ACPI_TABLE_ALIGN  16

/*
 * Table revisions of ACPI 6.3, the first where the MADT has the online-capable bit
 * (Linux looks at it only from FADT 6.3 on; our entries are plain "enabled" anyway).
 * DSDT revision 2 makes AML integers 64 bits wide (§5.2.11.1).
 */
#define ACPI_RSDP_REVISION 2
#define ACPI_XSDT_REVISION 1
#define ACPI_FADT_REVISION 6
#define ACPI_FADT_MINOR	   3
#define ACPI_MADT_REVISION 5
#define ACPI_DSDT_REVISION 2

#define ACPI_XSDT_ENTRIES 2 /* FADT, MADT */
#define ACPI_CMOS_CENTURY 0x32

uint8_t acpi_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;

	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return sum;
}

static void acpi_header_init(struct acpi_header *h, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(h->signature, sig, 4);
	h->length = len;
	h->revision = rev;
	h->checksum = 0;
	memcpy(h->oem_id, ACPI_OEM_ID, 6);
	memcpy(h->oem_table_id, ACPI_OEM_TABLE_ID, 8);
	h->oem_revision = ACPI_OEM_REVISION;
	memcpy(h->creator_id, ACPI_CREATOR_ID, 4);
	h->creator_revision = ACPI_CREATOR_REV;
}

static void acpi_header_seal(struct acpi_header *h)
{
	h->checksum = 0;
	h->checksum = (uint8_t)(0x100 - acpi_checksum(h, h->length));
}

static bool acpi_name_valid(const char *n)
{
	if (strlen(n) != 4 || !((n[0] >= 'A' && n[0] <= 'Z') || n[0] == '_'))
		return false;
	for (int i = 1; i < 4; i++) {
		if (!((n[i] >= 'A' && n[i] <= 'Z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '_'))
			return false;
	}
	return true;
}

static int acpi_desc_check(const struct acpi_dev_desc *d)
{
	uint64_t end;
	size_t hl = strnlen(d->hid, sizeof(d->hid));
	uint32_t eisa;

	if (!acpi_name_valid(d->name) || hl == 0 || hl == sizeof(d->hid))
		return -EINVAL;
	if (hl == 7 && aml_eisaid_encode(d->hid, &eisa) < 0)
		return -EINVAL;
	if (d->nr_io > ARRAY_SIZE(d->io) || d->irq > 15)
		return -EINVAL;
	/* Memory32Fixed: the whole range must sit below 4 GiB (§6.4.3.4). */
	if (d->mem_len && (__builtin_add_overflow(d->mem_base, (uint64_t)d->mem_len, &end) ||
			   end > 0x100000000ULL))
		return -EINVAL;
	if (d->gsi > UINT32_MAX)
		return -EINVAL;
	return 0;
}

static int acpi_config_check(const struct acpi_config *cfg)
{
	if (!cfg || cfg->nr_cpus == 0 || cfg->nr_cpus > ACPI_MAX_CPUS)
		return -EINVAL;
	if (cfg->nr_devs > ACPI_MAX_DEVS || (cfg->nr_devs && !cfg->devs))
		return -EINVAL;
	for (unsigned int i = 0; i < cfg->nr_devs; i++) {
		if (acpi_desc_check(&cfg->devs[i]) < 0)
			return -EINVAL;
		for (unsigned int j = 0; j < i; j++) {
			if (!strcmp(cfg->devs[i].name, cfg->devs[j].name))
				return -EINVAL;
		}
	}
	return 0;
}

static void acpi_desc_init(struct acpi_dev_desc *d, const char *name, const char *hid)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "%s", name);
	snprintf(d->hid, sizeof(d->hid), "%s", hid);
	d->uid = -1;
	d->irq = -1;
	d->gsi = -1;
}

void acpi_desc_uart(struct acpi_dev_desc *d, const char *name, unsigned int uid, uint16_t port,
		    uint8_t irq)
{
	acpi_desc_init(d, name, "PNP0501"); /* 16550A-compatible */
	d->uid = uid;
	d->io[0].base = port;
	d->io[0].len = 8;
	d->nr_io = 1;
	d->irq = irq;
}

void acpi_desc_rtc(struct acpi_dev_desc *d, uint16_t port)
{
	acpi_desc_init(d, "RTC_", "PNP0B00"); /* AT CMOS clock */
	/*
	 * No IRQ 8: nothing here raises the RTC alarm interrupt, and with the null legacy PIC
	 * of reduced mode rtc-cmos does not guess one either; it then reads the clock by
	 * polling, which is all the guest needs.
	 */
	d->io[0].base = port;
	d->io[0].len = 2;
	d->nr_io = 1;
}

void acpi_desc_pvpanic(struct acpi_dev_desc *d, uint16_t port)
{
	/* Linux drivers/misc/pvpanic/pvpanic-mmio.c matches QEMU0001 and takes an I/O resource. */
	acpi_desc_init(d, "PEVT", "QEMU0001");
	d->io[0].base = port;
	d->io[0].len = 1;
	d->nr_io = 1;
}

void acpi_desc_virtio_mmio(struct acpi_dev_desc *d, unsigned int idx, uint64_t base, uint32_t len,
			   unsigned int gsi)
{
	char name[5] = { 'V', "0123456789ABCDEF"[(idx >> 8) & 0xf],
			 "0123456789ABCDEF"[(idx >> 4) & 0xf], "0123456789ABCDEF"[idx & 0xf], 0 };

	/* V000..VFFF: 'V' is a valid lead character, upper-case hex digits valid after it. */
	/* Linux drivers/virtio/virtio_mmio.c binds LNRO0005 through ACPI. */
	acpi_desc_init(d, name, "LNRO0005");
	d->uid = idx;
	d->mem_base = base;
	d->mem_len = len;
	/*
	 * Edge, active high, exclusive. QEMU microvm declares these level-triggered because it
	 * uses irqfds with a resample fd; we inject through plain irqfds, which pulse the IOAPIC
	 * pin (set then clear). A level-triggered pin drops a pulse that arrives while its
	 * remote IRR is still set, so edge is the honest description (Firecracker does the
	 * same). The driver acknowledges through the InterruptACK register, so no interrupt is
	 * lost to the edge semantics.
	 */
	d->gsi = gsi;
}

static void acpi_dsdt_device(struct aml *a, const struct acpi_dev_desc *d)
{
	size_t dev = aml_device_begin(a, d->name);
	size_t crs;

	aml_name_decl(a, "_HID");
	if (strlen(d->hid) == 7)
		aml_eisaid(a, d->hid);
	else
		aml_string(a, d->hid);
	if (d->uid >= 0) {
		aml_name_decl(a, "_UID");
		aml_int(a, (uint64_t)d->uid);
	}
	aml_name_decl(a, "_CRS");
	crs = aml_restemplate_begin(a);
	for (unsigned int i = 0; i < d->nr_io; i++)
		aml_res_io(a, d->io[i].base, d->io[i].len);
	if (d->mem_len)
		aml_res_mem32_fixed(a, (uint32_t)d->mem_base, d->mem_len, true);
	if (d->irq >= 0)
		aml_res_irq_noflags(a, (uint8_t)d->irq);
	if (d->gsi >= 0)
		aml_res_ext_irq(a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, (uint32_t)d->gsi);
	aml_restemplate_end(a, crs);
	aml_end(a, dev);
}

/* Writes the DSDT body (AML after the header) with the builder; header done by callers. */
static void acpi_dsdt_aml(struct aml *a, const struct acpi_config *cfg)
{
	size_t pkg, sb;

	/*
	 * \_S5: SLP_TYPa = 5 is what the VMM expects in SLEEP_CONTROL bits 4:2. The
	 * 4-element form is the conventional one; only the first element matters in
	 * reduced mode (ACPICA acpi_get_sleep_type_data()).
	 */
	aml_name_decl(a, "_S5_");
	pkg = aml_package_begin(a, 4);
	aml_int(a, ACPI_S5_SLP_TYP);
	aml_int(a, 0);
	aml_int(a, 0);
	aml_int(a, 0);
	aml_end(a, pkg);

	sb = aml_scope_begin(a, "\\_SB_");
	for (unsigned int i = 0; i < cfg->nr_devs; i++)
		acpi_dsdt_device(a, &cfg->devs[i]);
	aml_end(a, sb);
}

int acpi_dsdt_build(uint8_t *buf, size_t buflen, const struct acpi_config *cfg, size_t *used)
{
	struct acpi_header *h = (struct acpi_header *)buf;
	struct aml a;
	size_t body;
	int ret;

	ret = acpi_config_check(cfg);
	if (ret)
		return ret;
	if (!buf || buflen < sizeof(*h))
		return -ENOSPC;

	aml_init(&a, buf + sizeof(*h), buflen - sizeof(*h));
	acpi_dsdt_aml(&a, cfg);
	ret = aml_finish(&a, &body);
	if (ret)
		return ret;
	if (body > UINT32_MAX - sizeof(*h))
		return -E2BIG;

	acpi_header_init(h, "DSDT", (uint32_t)(sizeof(*h) + body), ACPI_DSDT_REVISION);
	acpi_header_seal(h);
	*used = sizeof(*h) + body;
	return 0;
}

static void acpi_gas_io8(struct acpi_gas *g, uint16_t port)
{
	g->space_id = ACPI_GAS_SYSTEM_IO;
	g->bit_width = 8;
	g->bit_offset = 0;
	g->access_size = ACPI_GAS_ACCESS_BYTE;
	g->address = port;
}

static void acpi_fadt_fill(struct acpi_fadt *f, uint64_t dsdt_gpa)
{
	memset(f, 0, sizeof(*f));
	acpi_header_init(&f->header, "FACP", sizeof(*f), ACPI_FADT_REVISION);
	f->minor_version = ACPI_FADT_MINOR;

	/*
	 * §5.2.9: in hardware-reduced mode the SCI, SMI, PM1/PM2/PM timer/GPE blocks and
	 * FIRMWARE_CTRL are all zero; FACS is optional and Linux skips it. Power and
	 * sleep buttons, if any, would be control-method devices.
	 */
	f->flags = ACPI_FADT_HW_REDUCED_ACPI | ACPI_FADT_RESET_REG_SUP | ACPI_FADT_PWR_BUTTON |
		   ACPI_FADT_SLP_BUTTON;

	/*
	 * §5.2.9.3 IA-PC boot architecture: LPC/ISA devices (COM1, CMOS) present; no VGA;
	 * NO_CMOS_RTC clear: the RTC is there. The 8042 bit is left clear on purpose: our
	 * i8042 only has a reset line, and without the bit Linux's i8042 driver gives up at
	 * once instead of probing a keyboard that is not there. Reset still works: Linux
	 * writes RESET_REG (and, failing that, 0xFE to port 0x64) without the driver.
	 */
	f->iapc_boot_arch = ACPI_FADT_LEGACY_DEVICES | ACPI_FADT_NO_VGA;
	/* CMOS index of the century byte; devices/rtc.c models it at 0x32, as PCs do. */
	f->century = ACPI_CMOS_CENTURY;

	acpi_gas_io8(&f->reset_reg, PORT_I8042_CMD);
	f->reset_value = ACPI_RESET_VALUE;

	/* §5.2.9: DSDT must be zero when X_DSDT is used. */
	f->x_dsdt = dsdt_gpa;

	acpi_gas_io8(&f->sleep_control_reg, PORT_ACPI_SLEEP);
	acpi_gas_io8(&f->sleep_status_reg, PORT_ACPI_SLEEP + 1);

	acpi_header_seal(&f->header);
}

static size_t acpi_madt_size(const struct acpi_config *cfg)
{
	return sizeof(struct acpi_madt) + cfg->nr_cpus * sizeof(struct acpi_madt_lapic) +
	       sizeof(struct acpi_madt_ioapic) + sizeof(struct acpi_madt_lapic_nmi);
}

static void acpi_madt_fill(uint8_t *p, const struct acpi_config *cfg)
{
	struct acpi_madt *m = (struct acpi_madt *)p;
	size_t off = sizeof(*m);
	size_t len = acpi_madt_size(cfg);

	memset(p, 0, len);
	acpi_header_init(&m->header, "APIC", (uint32_t)len, ACPI_MADT_REVISION);
	m->lapic_address = (uint32_t)LAYOUT_LAPIC;
	/*
	 * PCAT_COMPAT: KVM's in-kernel irqchip does contain the dual 8259. Linux 6.1 does
	 * not look at the flag on x86, and in reduced mode it uses the null legacy PIC
	 * and never unmasks the 8259's output (LINT0 stays masked).
	 */
	m->flags = ACPI_MADT_PCAT_COMPAT;

	for (unsigned int i = 0; i < cfg->nr_cpus; i++) {
		struct acpi_madt_lapic *l = (struct acpi_madt_lapic *)(p + off);

		l->type = ACPI_MADT_TYPE_LAPIC;
		l->length = sizeof(*l);
		l->processor_uid = (uint8_t)i;
		l->apic_id = (uint8_t)i; /* vcpu.c sets the APIC ID to the vCPU index */
		l->flags = ACPI_MADT_LAPIC_ENABLED;
		off += sizeof(*l);
	}

	/*
	 * The IOAPIC takes ID nr_cpus so it never shares an ID with a Local APIC
	 * (both live in the same 8-bit APIC ID space on the system bus).
	 */
	struct acpi_madt_ioapic *io = (struct acpi_madt_ioapic *)(p + off);
	io->type = ACPI_MADT_TYPE_IOAPIC;
	io->length = sizeof(*io);
	io->ioapic_id = (uint8_t)cfg->nr_cpus;
	io->address = (uint32_t)LAYOUT_IOAPIC;
	io->gsi_base = 0;
	off += sizeof(*io);

	/*
	 * No Interrupt Source Overrides: KVM's default GSI routing sends ISA IRQ n to IOAPIC
	 * pin n, and its in-kernel PIT raises GSI 0 (the usual IRQ 0 -> pin 2 override of PC
	 * firmware would be wrong here). There is no SCI to override. Note that in
	 * hardware-reduced mode Linux installs the null legacy PIC, so nr_legacy_irqs() is 0
	 * and it maps no ISA IRQs by itself: every ISA device must list its IRQ in its _CRS
	 * (COM1 does).
	 */

	/* §5.2.12.7: NMI arrives on LINT1 of every processor (UID 0xff = all). */
	struct acpi_madt_lapic_nmi *nmi = (struct acpi_madt_lapic_nmi *)(p + off);
	nmi->type = ACPI_MADT_TYPE_LAPIC_NMI;
	nmi->length = sizeof(*nmi);
	nmi->processor_uid = 0xff;
	nmi->flags = 0; /* conforms to the bus: edge, active high */
	nmi->lint = 1;
	off += sizeof(*nmi);

	acpi_header_seal(&m->header);
}

/* Reserves len bytes at the next aligned offset; -ENOSPC if they do not fit. */
static int acpi_alloc(size_t *cursor, size_t len, size_t buflen, size_t *start)
{
	size_t off = ALIGN_UP(*cursor, (size_t)ACPI_TABLE_ALIGN);

	if (off < *cursor || off > buflen || len > buflen - off)
		return -ENOSPC;
	*start = off;
	*cursor = off + len;
	return 0;
}

int acpi_build(uint8_t *buf, size_t buflen, uint64_t gpa_base, const struct acpi_config *cfg,
	       uint64_t *rsdp_gpa, size_t *used)
{
	size_t cursor = 0, rsdp_off, xsdt_off, fadt_off, dsdt_off, madt_off, dsdt_len, madt_len;
	size_t xsdt_len = sizeof(struct acpi_header) + ACPI_XSDT_ENTRIES * sizeof(uint64_t);
	uint64_t end;
	int ret;

	ret = acpi_config_check(cfg);
	if (ret)
		return ret;
	/* §5.2.5.1: the RSDP is found on a 16-byte boundary. */
	if (!IS_ALIGNED(gpa_base, 16ULL) ||
	    __builtin_add_overflow(gpa_base, (uint64_t)buflen, &end))
		return -EINVAL;
	if (!buf)
		return -ENOSPC;

	ret = acpi_alloc(&cursor, sizeof(struct acpi_rsdp), buflen, &rsdp_off);
	if (ret)
		return ret;
	ret = acpi_alloc(&cursor, xsdt_len, buflen, &xsdt_off);
	if (ret)
		return ret;
	ret = acpi_alloc(&cursor, sizeof(struct acpi_fadt), buflen, &fadt_off);
	if (ret)
		return ret;
	/* The DSDT's size is known only once built: build it in place with what is left. */
	ret = acpi_alloc(&cursor, 0, buflen, &dsdt_off);
	if (ret)
		return ret;
	memset(buf, 0, dsdt_off);
	ret = acpi_dsdt_build(buf + dsdt_off, buflen - dsdt_off, cfg, &dsdt_len);
	if (ret)
		return ret;
	cursor = dsdt_off + dsdt_len;
	madt_len = acpi_madt_size(cfg);
	ret = acpi_alloc(&cursor, madt_len, buflen, &madt_off);
	if (ret)
		return ret;
	memset(buf + dsdt_off + dsdt_len, 0, madt_off - (dsdt_off + dsdt_len));

	acpi_fadt_fill((struct acpi_fadt *)(buf + fadt_off), gpa_base + dsdt_off);
	acpi_madt_fill(buf + madt_off, cfg);

	/* §5.2.8 XSDT: 64-bit physical addresses of the other tables (not the DSDT). */
	struct acpi_header *xsdt = (struct acpi_header *)(buf + xsdt_off);
	uint64_t entries[ACPI_XSDT_ENTRIES] = {gpa_base + fadt_off, gpa_base + madt_off};

	memset(xsdt, 0, xsdt_len);
	acpi_header_init(xsdt, "XSDT", (uint32_t)xsdt_len, ACPI_XSDT_REVISION);
	memcpy(xsdt + 1, entries, sizeof(entries));
	acpi_header_seal(xsdt);

	/* §5.2.5.3 RSDP: no RSDT (revision 2 readers use the XSDT). */
	struct acpi_rsdp *rsdp = (struct acpi_rsdp *)(buf + rsdp_off);

	memset(rsdp, 0, sizeof(*rsdp));
	memcpy(rsdp->signature, "RSD PTR ", 8);
	memcpy(rsdp->oem_id, ACPI_OEM_ID, 6);
	rsdp->revision = ACPI_RSDP_REVISION;
	rsdp->length = sizeof(*rsdp);
	rsdp->xsdt_address = gpa_base + xsdt_off;
	rsdp->checksum = (uint8_t)(0x100 - acpi_checksum(rsdp, 20));
	rsdp->extended_checksum = (uint8_t)(0x100 - acpi_checksum(rsdp, sizeof(*rsdp)));

	*rsdp_gpa = gpa_base + rsdp_off;
	*used = cursor;
	return 0;
}
