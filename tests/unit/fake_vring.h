/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake virtio driver for unit tests: lays out a split ring in guest RAM (a gm_create()d memfd,
 * no KVM) and adds chains the way a driver does, or writes raw (malformed) descriptors. Used by
 * the virtqueue, virtio-mmio, virtio-blk and virtio-console tests.
 */
#ifndef VMM_TEST_FAKE_VRING_H
#define VMM_TEST_FAKE_VRING_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/guest_mem.h"
#include "vmm/virtqueue.h"

struct fake_seg {
	uint64_t gpa;
	uint32_t len;
	bool write; /* device-writable */
};

struct fake_vring {
	struct guest_mem *gm;
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa; /* the three parts, suitably aligned */
	uint16_t avail_idx;  /* driver's shadow of avail->idx */
	uint16_t next_desc;  /* next free descriptor (round robin) */
	uint16_t last_used;  /* driver's shadow of the used entries consumed */
	uint64_t heap_next, heap_end; /* bump allocator for buffers and indirect tables */
};

/* Rings at base (page aligned), buffers in [base + rings, base + span). Zeroes the rings. */
void fake_vring_init(struct fake_vring *r, struct guest_mem *gm, uint64_t base, uint64_t span,
		     uint16_t size);
/* A guest buffer of len bytes (16-byte aligned), or 0 when the span is used up. */
uint64_t fake_vring_alloc(struct fake_vring *r, uint64_t len);
/* Host pointer to a guest range (asserts it is in RAM). */
void *fake_vring_host(struct fake_vring *r, uint64_t gpa, uint64_t len);
/* A chain of n segments in the descriptor table; returns its head. Not yet published. */
uint16_t fake_vring_add_chain(struct fake_vring *r, const struct fake_seg *segs, unsigned int n);
/* An indirect table holding the n segments, referenced by one descriptor; returns its head. */
uint16_t fake_vring_add_indirect(struct fake_vring *r, const struct fake_seg *segs, unsigned int n);
/* Write descriptor idx verbatim (for malformed chains). */
void fake_vring_set_desc(struct fake_vring *r, uint16_t idx, uint64_t addr, uint32_t len,
			 uint16_t flags, uint16_t next);
/* Put head in the avail ring and bump avail->idx (release). */
void fake_vring_publish(struct fake_vring *r, uint16_t head);
/* Set avail->idx verbatim (racing or garbage index). */
void fake_vring_set_avail_idx(struct fake_vring *r, uint16_t idx);
/* Next used element the device returned, if any. */
bool fake_vring_get_used(struct fake_vring *r, uint32_t *id, uint32_t *len);
/* EVENT_IDX fields: used_event (driver writes), avail_event (device writes). */
void fake_vring_set_used_event(struct fake_vring *r, uint16_t v);
uint16_t fake_vring_avail_event(struct fake_vring *r);
/* Configure vq's driver-written fields (size, addresses) as a transport would. */
void fake_vring_configure(struct fake_vring *r, struct virtqueue *vq);

#endif
