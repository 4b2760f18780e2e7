// SPDX-License-Identifier: Apache-2.0
/*
 * A fake virtio driver over a gm_create()d guest RAM: it lays out a split ring (virtio 1.2 §2.7)
 * and adds chains the way a driver does, so that device-side code is tested against the same
 * memory layout a guest would produce. Assertions go through cmocka: a test that misuses the
 * helper fails instead of corrupting memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fake_vring.h"

/* Parts are spaced further apart than §2.7 requires so that an off-by-one shows as a gap. */
#define FAKE_PART_ALIGN 64ULL

void fake_vring_init(struct fake_vring *r, struct guest_mem *gm, uint64_t base, uint64_t span,
		     uint16_t size)
{
	assert_true(size > 0);
	assert_true(IS_ALIGNED(base, 4096ULL));

	memset(r, 0, sizeof(*r));
	r->gm = gm;
	r->size = size;
	r->desc_gpa = base;
	r->avail_gpa = ALIGN_UP(r->desc_gpa + vring_desc_bytes(size), FAKE_PART_ALIGN);
	r->used_gpa = ALIGN_UP(r->avail_gpa + vring_avail_bytes(size), FAKE_PART_ALIGN);
	uint64_t rings_end = r->used_gpa + vring_used_bytes(size);
	r->heap_next = ALIGN_UP(rings_end, 4096ULL);
	r->heap_end = base + span;
	assert_true(r->heap_next <= r->heap_end);

	memset(fake_vring_host(r, base, rings_end - base), 0, rings_end - base);
}

uint64_t fake_vring_alloc(struct fake_vring *r, uint64_t len)
{
	uint64_t gpa = r->heap_next;
	uint64_t end;

	if (len == 0)
		len = 1;
	if (__builtin_add_overflow(gpa, len, &end) || end > r->heap_end)
		return 0;
	r->heap_next = ALIGN_UP(end, 16ULL);
	return gpa;
}

void *fake_vring_host(struct fake_vring *r, uint64_t gpa, uint64_t len)
{
	void *p = gm_ptr(r->gm, GPA(gpa), len);
	assert_non_null(p);
	return p;
}

static struct vring_desc *fake_desc(struct fake_vring *r, uint16_t idx)
{
	assert_true(idx < r->size);
	return fake_vring_host(r, r->desc_gpa + 16ULL * idx, sizeof(struct vring_desc));
}

static struct vring_avail *fake_avail(struct fake_vring *r)
{
	return fake_vring_host(r, r->avail_gpa, vring_avail_bytes(r->size));
}

static struct vring_used *fake_used(struct fake_vring *r)
{
	return fake_vring_host(r, r->used_gpa, vring_used_bytes(r->size));
}

void fake_vring_set_desc(struct fake_vring *r, uint16_t idx, uint64_t addr, uint32_t len,
			 uint16_t flags, uint16_t next)
{
	struct vring_desc *d = fake_desc(r, idx);

	d->addr = addr;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

uint16_t fake_vring_add_chain(struct fake_vring *r, const struct fake_seg *segs, unsigned int n)
{
	assert_true(n > 0 && n <= r->size);

	uint16_t head = r->next_desc;
	uint16_t idx = head;
	for (unsigned int i = 0; i < n; i++) {
		uint16_t next = (uint16_t)((idx + 1) % r->size);
		uint16_t flags = segs[i].write ? VRING_DESC_F_WRITE : 0;
		if (i + 1 < n)
			flags |= VRING_DESC_F_NEXT;
		fake_vring_set_desc(r, idx, segs[i].gpa, segs[i].len, flags, i + 1 < n ? next : 0);
		idx = next;
	}
	r->next_desc = idx;
	return head;
}

uint16_t fake_vring_add_indirect(struct fake_vring *r, const struct fake_seg *segs, unsigned int n)
{
	assert_true(n > 0 && n <= VQ_MAX_SIZE);

	uint64_t table = fake_vring_alloc(r, 16ULL * n);
	assert_true(table != 0);
	struct vring_desc *t = fake_vring_host(r, table, 16ULL * n);
	for (unsigned int i = 0; i < n; i++) {
		t[i].addr = segs[i].gpa;
		t[i].len = segs[i].len;
		t[i].flags = segs[i].write ? VRING_DESC_F_WRITE : 0;
		t[i].next = 0;
		if (i + 1 < n) {
			t[i].flags |= VRING_DESC_F_NEXT;
			t[i].next = (uint16_t)(i + 1);
		}
	}

	uint16_t head = r->next_desc;
	fake_vring_set_desc(r, head, table, (uint32_t)(16U * n), VRING_DESC_F_INDIRECT, 0);
	r->next_desc = (uint16_t)((head + 1) % r->size);
	return head;
}

void fake_vring_publish(struct fake_vring *r, uint16_t head)
{
	struct vring_avail *a = fake_avail(r);

	a->ring[r->avail_idx % r->size] = head;
	r->avail_idx++;
	/* §2.7.13.3: the ring entry must be visible before the index that exposes it. */
	__atomic_store_n(&a->idx, r->avail_idx, __ATOMIC_RELEASE);
}

void fake_vring_set_avail_idx(struct fake_vring *r, uint16_t idx)
{
	/* The shadow follows, so that later publishes continue from the index written here. */
	r->avail_idx = idx;
	__atomic_store_n(&fake_avail(r)->idx, idx, __ATOMIC_RELEASE);
}

bool fake_vring_get_used(struct fake_vring *r, uint32_t *id, uint32_t *len)
{
	struct vring_used *u = fake_used(r);

	if (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == r->last_used)
		return false;
	struct vring_used_elem e = u->ring[r->last_used % r->size];
	r->last_used++;
	if (id)
		*id = e.id;
	if (len)
		*len = e.len;
	return true;
}

void fake_vring_set_used_event(struct fake_vring *r, uint16_t v)
{
	/* §2.7.6: used_event follows ring[size] in the available ring. */
	__atomic_store_n(&fake_avail(r)->ring[r->size], v, __ATOMIC_RELEASE);
}

uint16_t fake_vring_avail_event(struct fake_vring *r)
{
	/* §2.7.8: avail_event follows ring[size] in the used ring. */
	uint16_t *p = fake_vring_host(r, r->used_gpa + 4 + 8ULL * r->size, sizeof(uint16_t));
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

void fake_vring_configure(struct fake_vring *r, struct virtqueue *vq)
{
	vq->size = r->size;
	vq->desc_gpa = r->desc_gpa;
	vq->avail_gpa = r->avail_gpa;
	vq->used_gpa = r->used_gpa;
	vq->ready = true;
}
