/* SPDX-License-Identifier: Apache-2.0 */
/*
 * How devices talk back to the VM without knowing about KVM: raise an interrupt line, or ask
 * the VM to stop (the guest powered off, reset, panicked, wrote the debug-exit port...).
 */
#ifndef VMM_PLATFORM_H
#define VMM_PLATFORM_H

#include <stdbool.h>

#include "vmm/compiler.h"
#include "vmm/vmm.h" /* enum vmm_stop_reason */


struct vm_stop_sink {
	void (*request)(void *opaque, enum vmm_stop_reason reason, int code);
	void *opaque;
};

static inline void vm_stop_request(const struct vm_stop_sink *s, enum vmm_stop_reason r, int code)
{
	if (s && s->request)
		s->request(s->opaque, r, code);
}

/* Level of a GSI (IOAPIC input; 0-15 are the ISA IRQs). */
struct irq_sink {
	void (*set_level)(void *opaque, unsigned int gsi, int level);
	void *opaque;
};

static inline void irq_set_level(const struct irq_sink *s, unsigned int gsi, int level)
{
	if (s && s->set_level)
		s->set_level(s->opaque, gsi, level);
}

/*
 * Eventfd routes in and out of the guest that bypass userspace (KVM_IOEVENTFD, KVM_IRQFD).
 * NULL functions (unit tests) mean: no route; the transport then signals the fds itself.
 */
struct vm_eventfd_ops {
	/* A guest write of len bytes equal to datamatch at MMIO address addr signals fd. */
	int (*ioeventfd)(void *opaque, uint64_t addr, uint32_t len, uint64_t datamatch, int fd,
			 bool assign);
	/* A write to fd raises an edge on IOAPIC input gsi. */
	int (*irqfd)(void *opaque, unsigned int gsi, int fd, bool assign);
	void *opaque;
};

#endif
