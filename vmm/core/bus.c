// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <string.h>

#include "vmm/bus.h"

void bus_init(struct bus *bus)
{
	memset(bus, 0, sizeof(*bus));
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler_fn fn, void *opaque,
		 const char *name)
{
	uint64_t end;

	if (len == 0 || !fn || __builtin_add_overflow(base, len - 1, &end))
		return -EINVAL;
	if (bus->nr == BUS_MAX_RANGES)
		return -ENOSPC;

	unsigned int pos = 0;
	while (pos < bus->nr && bus->range[pos].base < base)
		pos++;
	/* Neighbours must not overlap [base, end]. */
	if (pos > 0) {
		const struct bus_range *prev = &bus->range[pos - 1];
		if (prev->base + (prev->len - 1) >= base)
			return -EEXIST;
	}
	if (pos < bus->nr && bus->range[pos].base <= end)
		return -EEXIST;

	memmove(&bus->range[pos + 1], &bus->range[pos], (bus->nr - pos) * sizeof(bus->range[0]));
	bus->range[pos] = (struct bus_range){
		.base = base, .len = len, .fn = fn, .opaque = opaque, .name = name
	};
	bus->nr++;
	return 0;
}

unsigned int bus_unregister(struct bus *bus, const void *opaque)
{
	unsigned int kept = 0, removed = 0;

	for (unsigned int i = 0; i < bus->nr; i++) {
		if (bus->range[i].opaque == opaque)
			removed++;
		else
			bus->range[kept++] = bus->range[i];
	}
	bus->nr = kept;
	return removed;
}

const struct bus_range *bus_find(const struct bus *bus, uint64_t addr, uint32_t len)
{
	unsigned int lo = 0, hi = bus->nr;
	uint64_t last;

	if (len == 0 || __builtin_add_overflow(addr, (uint64_t)len - 1, &last))
		return NULL;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->range[mid];
		if (addr < r->base) {
			hi = mid;
		} else if (addr - r->base >= r->len) {
			lo = mid + 1;
		} else {
			/* The access must not run past the end of the range it starts in. */
			return last - r->base < r->len ? r : NULL;
		}
	}
	return NULL;
}

bool bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr, len);

	if (!r) {
		if (is_write) {
			__atomic_fetch_add(&bus->unmapped_writes, 1, __ATOMIC_RELAXED);
		} else {
			__atomic_fetch_add(&bus->unmapped_reads, 1, __ATOMIC_RELAXED);
			memset(data, 0xff, len);
		}
		return false;
	}
	r->fn(r->opaque, addr - r->base, data, len, is_write);
	return true;
}
