/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest physical memory map (x86-64). One place for every fixed address so that
 * the loader, the table builders and the devices agree.
 *
 *   0x0000_0500  GDT (boot)
 *   0x0000_1000  zero page (struct boot_params) / PVH hvm_start_info + memmap
 *   0x0000_9000  PML4, 0xa000 PDPT, 0xb000..0xefff four page directories (4 GiB, 2 MiB pages)
 *   0x0002_0000  kernel command line (up to 64 KiB)
 *   0x0009_fc00  EBDA start: e820 RAM ends here (reserved up to 1 MiB)
 *   0x000e_0000  ACPI: RSDP, then XSDT, FADT, DSDT, MADT (reserved, 124 KiB)
 *   0x000f_fff0  reset vector: a stub that pulls the i8042 reset line (see vm.c)
 *   0x0010_0000  kernel (bzImage protected-mode part / vmlinux PT_LOAD)
 *   ...          RAM up to min(ram, 3 GiB)
 *   0xc000_0000  32-bit MMIO hole (virtio-mmio window, IOAPIC, LAPIC) up to 4 GiB
 *   0x1_0000_0000 RAM beyond 3 GiB continues here
 */
#ifndef VMM_LAYOUT_H
#define VMM_LAYOUT_H

#include "vmm/compiler.h"

#define LAYOUT_GDT          0x500ULL
#define LAYOUT_ZERO_PAGE    0x1000ULL
#define LAYOUT_PVH_INFO     0x1000ULL
#define LAYOUT_PVH_MEMMAP   0x1800ULL
#define LAYOUT_PVH_MODLIST  0x1f00ULL
#define LAYOUT_PML4         0x9000ULL
#define LAYOUT_PDPT         0xa000ULL
#define LAYOUT_PD           0xb000ULL /* four pages */
#define LAYOUT_CMDLINE      0x20000ULL
#define LAYOUT_CMDLINE_MAX  0x10000ULL
#define LAYOUT_EBDA         0x9fc00ULL
#define LAYOUT_ACPI         0xe0000ULL
#define LAYOUT_ACPI_SIZE    0x1f000ULL
#define LAYOUT_RESET_VECTOR 0xffff0ULL
#define LAYOUT_HIMEM        0x100000ULL
#define LAYOUT_BOOT_STACK   0x8ff0ULL

#define LAYOUT_MMIO_HOLE      0xc0000000ULL /* 3 GiB */
#define LAYOUT_MMIO_HOLE_END  0x100000000ULL
#define LAYOUT_VIRTIO_MMIO    0xd0000000ULL /* virtio-mmio devices, 4 KiB each */
#define LAYOUT_IOAPIC         0xfec00000ULL
#define LAYOUT_LAPIC          0xfee00000ULL

/* I/O ports of the platform devices. */
#define PORT_COM1          0x3f8
#define PORT_I8042_DATA    0x60
#define PORT_I8042_CMD     0x64
#define PORT_CMOS          0x70
#define PORT_PVPANIC       0x505
#define PORT_ACPI_SLEEP    0x600 /* HW-reduced ACPI sleep control (+0) and status (+1) */
#define PORT_DEBUG_EXIT    0xf4  /* default, QEMU isa-debug-exit compatible */

#define IRQ_COM1 4
/*
 * virtio-mmio device i: window LAYOUT_VIRTIO_MMIO + i * 4 KiB and one IOAPIC input of its own
 * (edge, active high, named in its _CRS): 16 + i for the first 8 (KVM's IOAPIC has 24 inputs),
 * then the ISA inputs nothing of the platform uses. Not 0 (PIT), 1 (keyboard), 2 (cascade),
 * 4 (COM1), 8 (RTC), 9 (SCI on a full ACPI machine), 12 (the i8042's mouse). Slots keep their
 * inputs forever: a snapshot's or a live update's guest has its drivers bound to them.
 */
#define LAYOUT_VIRTIO_GSI      16
#define LAYOUT_VIRTIO_MAX_DEVS 17

static inline unsigned int layout_virtio_gsi(unsigned int slot)
{
	static const unsigned char isa[LAYOUT_VIRTIO_MAX_DEVS - 8] = { 5, 6, 7, 10, 11, 13, 14, 15, 3 };

	return slot < 8 ? LAYOUT_VIRTIO_GSI + slot : isa[slot - 8];
}

#endif
