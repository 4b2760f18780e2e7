/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI tables for the guest: RSDP (revision 2) -> XSDT -> FADT (-> DSDT) and MADT.
 * A hardware-reduced ACPI platform (ACPI 6.5 §4.1): no PM timer, no SCI, no PM1/GPE
 * blocks; S5 through the FADT sleep control/status registers, reset through RESET_REG.
 * Layouts follow ACPI 6.5 §5.2 and are packed little-endian, the guest's byte order
 * (and the host's: KVM on x86-64).
 */
#ifndef VMM_ACPI_H
#define VMM_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/compiler.h"

/*
 * One device of the DSDT (\_SB), as a device describes itself (struct device_ops.describe).
 * The resources appear in _CRS in this order: I/O ranges, the fixed memory range, the ISA IRQ,
 * the extended interrupt.
 */
struct acpi_dev_desc {
	char name[5];     /* AML NameSeg: 4 characters, unique in the table ("COM1") */
	char hid[9];      /* "PNP0501" (7 characters: an EISA ID) or "LNRO0005" (a string) */
	int64_t uid;      /* _UID, < 0: none */
	struct {
		uint16_t base;
		uint8_t len;
	} io[2];
	unsigned int nr_io;
	uint64_t mem_base; /* Memory32Fixed when mem_len > 0; must end below 4 GiB */
	uint32_t mem_len;
	int irq;          /* IRQNoFlags (ISA 0-15), < 0: none */
	int64_t gsi;      /* Interrupt (consumer, edge, active high, exclusive), < 0: none */
};

/* The descriptions of the devices vmm has, for their describe() ops and for tests. */
void acpi_desc_uart(struct acpi_dev_desc *d, const char *name, unsigned int uid, uint16_t port,
		    uint8_t irq);
void acpi_desc_rtc(struct acpi_dev_desc *d, uint16_t port);
void acpi_desc_pvpanic(struct acpi_dev_desc *d, uint16_t port);
/* LNRO0005 named V000..VFFF by idx. */
void acpi_desc_virtio_mmio(struct acpi_dev_desc *d, unsigned int idx, uint64_t base, uint32_t len,
			   unsigned int gsi);

struct acpi_config {
	unsigned int nr_cpus; /* MADT: one enabled Local APIC per vCPU, APIC ID = index */
	const struct acpi_dev_desc *devs; /* DSDT \_SB devices, in this order */
	unsigned int nr_devs;
};

/* Limits checked by acpi_build(): xAPIC IDs are 8 bits and the IOAPIC takes ID nr_cpus. */
#define ACPI_MAX_CPUS	   255
#define ACPI_MAX_DEVS      4096

/* \_S5 SLP_TYP; the guest writes (ACPI_S5_SLP_TYP << 2) | ACPI_SLP_EN to PORT_ACPI_SLEEP. */
#define ACPI_S5_SLP_TYP	   5
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK  0x1c
#define ACPI_SLP_EN	   0x20
#define ACPI_RESET_VALUE   0xfe /* written to PORT_I8042_CMD through FADT RESET_REG */

/*
 * Build every table into buf (host memory that will be copied to guest physical gpa_base;
 * LAYOUT_ACPI and LAYOUT_ACPI_SIZE). RSDP first at gpa_base (so Linux's 0xE0000-0xFFFFF
 * scan also finds it); gpa_base must be 16-byte aligned. Returns 0 and *used bytes,
 * *rsdp_gpa; -ENOSPC if buf is too small; -EINVAL for a bad configuration (no CPU, more
 * than ACPI_MAX_CPUS, a memory range not below 4 GiB, a bad name or HID, more than
 * ACPI_MAX_DEVS devices, a misaligned gpa_base).
 */
int acpi_build(uint8_t *buf, size_t buflen, uint64_t gpa_base, const struct acpi_config *cfg,
	       uint64_t *rsdp_gpa, size_t *used) WUR;

/*
 * The DSDT alone (header included, checksummed), as acpi_build() places it. Exposed so
 * that tests can hand it to a disassembler. Same errors as acpi_build().
 */
int acpi_dsdt_build(uint8_t *buf, size_t buflen, const struct acpi_config *cfg, size_t *used) WUR;

/* Byte sum of a table; a valid table sums to 0. */
uint8_t acpi_checksum(const void *data, size_t len);

/* ---- Table layouts (ACPI 6.5 §5.2), exposed for tests and for readers. ---- */

struct acpi_rsdp {	   /* §5.2.5.3 */
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* over the first 20 bytes */
	char oem_id[6];
	uint8_t revision; /* 2: ACPI 2.0+ */
	uint32_t rsdt_address;
	uint32_t length; /* 36 */
	uint64_t xsdt_address;
	uint8_t extended_checksum; /* over all 36 bytes */
	uint8_t reserved[3];
} PACKED;

struct acpi_header { /* §5.2.6 */
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} PACKED;

struct acpi_gas {	  /* §5.2.3.2 Generic Address Structure */
	uint8_t space_id; /* 0 memory, 1 system I/O */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size; /* 1 byte, 2 word, 3 dword, 4 qword */
	uint64_t address;
} PACKED;

#define ACPI_GAS_SYSTEM_IO   1
#define ACPI_GAS_ACCESS_BYTE 1

struct acpi_fadt { /* §5.2.9, revision 6 */
	struct acpi_header header;
	uint32_t firmware_ctrl;
	uint32_t dsdt;
	uint8_t reserved0;
	uint8_t preferred_pm_profile;
	uint16_t sci_int;
	uint32_t smi_cmd;
	uint8_t acpi_enable;
	uint8_t acpi_disable;
	uint8_t s4bios_req;
	uint8_t pstate_cnt;
	uint32_t pm1a_evt_blk;
	uint32_t pm1b_evt_blk;
	uint32_t pm1a_cnt_blk;
	uint32_t pm1b_cnt_blk;
	uint32_t pm2_cnt_blk;
	uint32_t pm_tmr_blk;
	uint32_t gpe0_blk;
	uint32_t gpe1_blk;
	uint8_t pm1_evt_len;
	uint8_t pm1_cnt_len;
	uint8_t pm2_cnt_len;
	uint8_t pm_tmr_len;
	uint8_t gpe0_blk_len;
	uint8_t gpe1_blk_len;
	uint8_t gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat;
	uint16_t p_lvl3_lat;
	uint16_t flush_size;
	uint16_t flush_stride;
	uint8_t duty_offset;
	uint8_t duty_width;
	uint8_t day_alrm;
	uint8_t mon_alrm;
	uint8_t century;
	uint16_t iapc_boot_arch;
	uint8_t reserved1;
	uint32_t flags;
	struct acpi_gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct acpi_gas x_pm1a_evt_blk;
	struct acpi_gas x_pm1b_evt_blk;
	struct acpi_gas x_pm1a_cnt_blk;
	struct acpi_gas x_pm1b_cnt_blk;
	struct acpi_gas x_pm2_cnt_blk;
	struct acpi_gas x_pm_tmr_blk;
	struct acpi_gas x_gpe0_blk;
	struct acpi_gas x_gpe1_blk;
	struct acpi_gas sleep_control_reg;
	struct acpi_gas sleep_status_reg;
	uint64_t hypervisor_vendor_id;
} PACKED;

/* FADT IAPC_BOOT_ARCH (§5.2.9.3) */
#define ACPI_FADT_LEGACY_DEVICES (1u << 0)
#define ACPI_FADT_8042		 (1u << 1)
#define ACPI_FADT_NO_VGA	 (1u << 2)
#define ACPI_FADT_NO_MSI	 (1u << 3)
#define ACPI_FADT_NO_ASPM	 (1u << 4)
#define ACPI_FADT_NO_CMOS_RTC	 (1u << 5)
/* FADT Flags (§5.2.9, table 5.10) */
#define ACPI_FADT_WBINVD	  (1u << 0)
#define ACPI_FADT_PWR_BUTTON	  (1u << 4)
#define ACPI_FADT_SLP_BUTTON	  (1u << 5)
#define ACPI_FADT_RESET_REG_SUP	  (1u << 10)
#define ACPI_FADT_HW_REDUCED_ACPI (1u << 20)

struct acpi_madt { /* §5.2.12 */
	struct acpi_header header;
	uint32_t lapic_address;
	uint32_t flags;
} PACKED;

#define ACPI_MADT_PCAT_COMPAT 1u

#define ACPI_MADT_TYPE_LAPIC	 0
#define ACPI_MADT_TYPE_IOAPIC	 1
#define ACPI_MADT_TYPE_ISO	 2
#define ACPI_MADT_TYPE_LAPIC_NMI 4

struct acpi_madt_lapic { /* §5.2.12.2 */
	uint8_t type;
	uint8_t length; /* 8 */
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags; /* bit 0 enabled, bit 1 online capable */
} PACKED;

#define ACPI_MADT_LAPIC_ENABLED 1u

struct acpi_madt_ioapic { /* §5.2.12.3 */
	uint8_t type;
	uint8_t length; /* 12 */
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} PACKED;

struct acpi_madt_lapic_nmi { /* §5.2.12.7 */
	uint8_t type;
	uint8_t length;	       /* 6 */
	uint8_t processor_uid; /* 0xff: all processors */
	uint16_t flags;	       /* MPS INTI flags */
	uint8_t lint;
} PACKED;

_Static_assert(sizeof(struct acpi_rsdp) == 36, "RSDP size");
_Static_assert(sizeof(struct acpi_header) == 36, "header size");
_Static_assert(sizeof(struct acpi_gas) == 12, "GAS size");
_Static_assert(sizeof(struct acpi_fadt) == 276, "FADT revision 6 size");
_Static_assert(sizeof(struct acpi_madt) == 44, "MADT size");
_Static_assert(sizeof(struct acpi_madt_lapic) == 8, "LAPIC entry size");
_Static_assert(sizeof(struct acpi_madt_ioapic) == 12, "IOAPIC entry size");
_Static_assert(sizeof(struct acpi_madt_lapic_nmi) == 6, "LAPIC NMI entry size");

#endif
