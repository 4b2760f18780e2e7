/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PIO and MMIO buses: sorted, non-overlapping ranges looked up by binary search. A device is a
 * handler with one signature for every range; offset is relative to the range base.
 */
#ifndef VMM_BUS_H
#define VMM_BUS_H

#include <stdbool.h>
#include "vmm/compiler.h"

/* data holds len (1, 2, 4 or 8) bytes, little endian; on a read the handler fills it. */
typedef void (*bus_handler_fn)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			       bool is_write);

struct bus_range {
	uint64_t base;
	uint64_t len;
	bus_handler_fn fn;
	void *opaque;
	const char *name;
};

#define BUS_MAX_RANGES 64

struct bus {
	struct bus_range range[BUS_MAX_RANGES];
	unsigned int nr;
	uint64_t unmapped_reads;  /* accesses that hit nothing: counted, never fatal */
	uint64_t unmapped_writes;
};

void bus_init(struct bus *bus);
/* -EINVAL for an empty or overflowing range, -EEXIST on overlap, -ENOSPC when full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler_fn fn, void *opaque,
		 const char *name) WUR;
/* Remove every range whose opaque is opaque (a device being unrealized); returns how many.
 * Not safe while vCPUs run: the bus has no lock, it is only written with them stopped. */
unsigned int bus_unregister(struct bus *bus, const void *opaque);
const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, uint32_t len);
/*
 * Dispatch one access. Returns true if a device took it. An unmapped read returns all-ones
 * (what an ISA bus floats to) and is counted.
 */
bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
