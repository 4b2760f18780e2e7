// SPDX-License-Identifier: Apache-2.0
/*
 * The hardened split virtqueue (virtio 1.2 §2.7) against a fake driver (fake_vring.c) over a
 * memfd guest RAM: well-formed chains, 16-bit index wraparound, every malformed chain and ring
 * the header promises to survive, notification suppression, and the common virtio device code.
 * After every malformed case no iovec may point outside the guest RAM mapping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_vring.h"
#include "vmm/layout.h"
#include "vmm/virtio.h"
#include "vmm/virtqueue.h"

#define RAM_SIZE  (16 * MiB)
#define RING_BASE (1 * MiB)
#define RING_SPAN (4 * MiB)
#define QSIZE	  16
#define QMAX	  256
#define IOV_MAX_T 8

/* An iovec slot vq_pop() did not write keeps this; anything else must be inside guest RAM. */
#define IOV_POISON ((void *)0x5a5a5a5a5a5a5a5aULL)

struct fx {
	struct guest_mem gm;
	struct fake_vring r;
	struct virtqueue vq;
	struct iovec iov[IOV_MAX_T];
	struct vq_elem elem;
};

static void fx_elem(struct fx *f, unsigned int cap)
{
	for (unsigned int i = 0; i < IOV_MAX_T; i++)
		f->iov[i] = (struct iovec){.iov_base = IOV_POISON, .iov_len = 0x5a5a};
	memset(&f->elem, 0xa5, sizeof(f->elem));
	f->elem.iov = f->iov;
	f->elem.iov_cap = cap;
}

/* The ring set up as a transport would: configured by the driver, enabled at DRIVER_OK. */
static void fx_start(struct fx *f, uint16_t size, bool event_idx, bool indirect)
{
	memset(&f->vq, 0, sizeof(f->vq));
	f->vq.gm = &f->gm;
	vq_reset(&f->vq);
	fake_vring_init(&f->r, &f->gm, RING_BASE, RING_SPAN, size);
	fake_vring_configure(&f->r, &f->vq);
	assert_int_equal(vq_enable(&f->vq, &f->gm, QMAX, event_idx, indirect), 0);
	assert_true(f->vq.enabled);
	fx_elem(f, IOV_MAX_T);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(gm_create(&f->gm, RAM_SIZE), 0);
	fx_start(f, QSIZE, false, true);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	gm_destroy(&f->gm);
	free(f);
	return 0;
}

/* Every iovec slot is either untouched or a range wholly inside the guest RAM mapping. */
static void assert_iov_in_ram(const struct fx *f)
{
	const uint8_t *lo = f->gm.base;
	const uint8_t *hi = f->gm.base + f->gm.ram_size;

	for (unsigned int i = 0; i < IOV_MAX_T; i++) {
		const uint8_t *p = f->iov[i].iov_base;
		if (f->iov[i].iov_base == IOV_POISON)
			continue;
		assert_true(p >= lo && p <= hi);
		assert_true(f->iov[i].iov_len <= (size_t)(hi - p));
	}
}

/* A guest buffer filled with a byte pattern. */
static uint64_t buf_with(struct fx *f, uint32_t len, uint8_t fill)
{
	uint64_t gpa = fake_vring_alloc(&f->r, len);
	assert_true(gpa != 0);
	memset(fake_vring_host(&f->r, gpa, len), fill, len);
	return gpa;
}

/* Publish a single readable segment; returns its head. */
static uint16_t publish_one(struct fx *f, uint32_t len, uint8_t fill)
{
	struct fake_seg s = {buf_with(f, len, fill), len, false};
	uint16_t head = fake_vring_add_chain(&f->r, &s, 1);
	fake_vring_publish(&f->r, head);
	return head;
}

/*
 * The chain at head was published malformed: vq_pop() reports it with its head so that the
 * device can complete it, consumes it, leaves the queue usable and points nowhere outside RAM.
 */
static void expect_bad_chain(struct fx *f, uint16_t head)
{
	uint16_t last = f->vq.last_avail;
	uint64_t bad = f->vq.malformed_chains;

	fx_elem(f, f->elem.iov_cap);
	assert_int_equal(vq_pop(&f->vq, &f->elem), -EBADMSG);
	assert_int_equal(f->elem.head, head);
	assert_int_equal(f->elem.out_num + f->elem.in_num, 0);
	assert_int_equal(f->vq.last_avail, (uint16_t)(last + 1));
	assert_int_equal(f->vq.malformed_chains, bad + 1);
	assert_false(f->vq.broken);
	assert_iov_in_ram(f);

	/* The device completes it with nothing written; the driver gets the head back. */
	uint32_t id, len;
	vq_push(&f->vq, f->elem.head, 0);
	assert_true(fake_vring_get_used(&f->r, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 0);

	/* The queue goes on: a well-formed chain after it pops normally. */
	uint16_t good = publish_one(f, 8, 0x11);
	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.head, good);
	vq_push(&f->vq, good, 0);
	assert_true(fake_vring_get_used(&f->r, NULL, NULL));
}

/* The ring itself was garbage: -EIO, broken, nothing consumed now or later. */
static void expect_broken_ring(struct fx *f)
{
	uint16_t last = f->vq.last_avail;

	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), -EIO);
	assert_true(f->vq.broken);
	assert_int_equal(f->vq.last_avail, last);
	assert_iov_in_ram(f);
	assert_int_equal(vq_pop(&f->vq, &f->elem), -EIO);
	assert_false(vq_has_avail(&f->vq));
	assert_int_equal(f->vq.last_avail, last);
}

static void test_simple_chain(void **state)
{
	struct fx *f = *state;
	static const char hdr[] = "0123456789abcdef";
	uint64_t out = buf_with(f, 16, 0);
	uint64_t in1 = buf_with(f, 64, 0xee);
	uint64_t in2 = buf_with(f, 1, 0xee);
	memcpy(fake_vring_host(&f->r, out, 16), hdr, 16);

	assert_false(vq_has_avail(&f->vq));
	assert_int_equal(vq_pop(&f->vq, &f->elem), 0);

	struct fake_seg segs[] = {{out, 16, false}, {in1, 64, true}, {in2, 1, true}};
	uint16_t head = fake_vring_add_chain(&f->r, segs, 3);
	assert_false(vq_has_avail(&f->vq)); /* not published yet */
	fake_vring_publish(&f->r, head);
	assert_true(vq_has_avail(&f->vq));

	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.head, head);
	assert_int_equal(f->elem.out_num, 1);
	assert_int_equal(f->elem.in_num, 2);
	assert_int_equal(f->elem.out_len, 16);
	assert_int_equal(f->elem.in_len, 65);
	assert_ptr_equal(f->iov[0].iov_base, fake_vring_host(&f->r, out, 16));
	assert_ptr_equal(f->iov[1].iov_base, fake_vring_host(&f->r, in1, 64));
	assert_ptr_equal(f->iov[2].iov_base, fake_vring_host(&f->r, in2, 1));
	assert_ptr_equal(f->iov[3].iov_base, IOV_POISON);

	char got[16];
	assert_int_equal(iov_to_buf(f->iov, f->elem.out_num, 0, got, sizeof(got)), 16);
	assert_memory_equal(got, hdr, 16);

	/* Fill the whole writable part; the last byte lands in the second segment. */
	uint8_t reply[65];
	for (unsigned int i = 0; i < sizeof(reply); i++)
		reply[i] = (uint8_t)i;
	assert_int_equal(iov_from_buf(f->iov + f->elem.out_num, f->elem.in_num, 0, reply, 65), 65);
	assert_memory_equal(fake_vring_host(&f->r, in1, 64), reply, 64);
	assert_int_equal(*(uint8_t *)fake_vring_host(&f->r, in2, 1), 64);

	assert_false(vq_has_avail(&f->vq));
	assert_int_equal(vq_pop(&f->vq, &f->elem), 0);

	uint32_t id, len;
	assert_false(fake_vring_get_used(&f->r, &id, &len));
	vq_push(&f->vq, head, 65);
	assert_true(fake_vring_get_used(&f->r, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, 65);
	assert_false(fake_vring_get_used(&f->r, &id, &len));
}

static void test_iov_helpers(void **state)
{
	(void)state;
	uint8_t a[3] = {1, 2, 3}, b[2] = {4, 5}, c[4] = {6, 7, 8, 9};
	struct iovec iov[] = {{a, 3}, {b, 2}, {c, 4}};
	uint8_t out[16];

	memset(out, 0, sizeof(out));
	assert_int_equal(iov_to_buf(iov, 3, 2, out, 4), 4);
	assert_memory_equal(out, ((uint8_t[]){3, 4, 5, 6}), 4);
	/* Asking for more than there is returns what there is. */
	assert_int_equal(iov_to_buf(iov, 3, 7, out, 16), 2);
	assert_memory_equal(out, ((uint8_t[]){8, 9}), 2);
	assert_int_equal(iov_to_buf(iov, 3, 9, out, 16), 0);
	assert_int_equal(iov_to_buf(iov, 3, 100, out, 16), 0);
	assert_int_equal(iov_to_buf(iov, 0, 0, out, 16), 0);

	static const uint8_t src[] = {0xa0, 0xa1, 0xa2, 0xa3, 0xa4};
	assert_int_equal(iov_from_buf(iov, 3, 4, src, 5), 5);
	assert_memory_equal(a, ((uint8_t[]){1, 2, 3}), 3);
	assert_memory_equal(b, ((uint8_t[]){4, 0xa0}), 2);
	assert_memory_equal(c, ((uint8_t[]){0xa1, 0xa2, 0xa3, 0xa4}), 4);
	assert_int_equal(iov_from_buf(iov, 3, 8, src, 5), 1);
	assert_int_equal(c[3], 0xa0);
	/* An empty segment in the middle is skipped. */
	struct iovec holes[] = {{a, 1}, {b, 0}, {c, 1}};
	assert_int_equal(iov_to_buf(holes, 3, 0, out, 4), 2);
	assert_int_equal(out[0], 1);
	assert_int_equal(out[1], 0xa1);
}

/* 16-bit avail and used indexes wrap; ring slots are index % size. */
static void test_wraparound(void **state)
{
	struct fx *f = *state;
	const uint16_t start = 65533;

	fake_vring_set_avail_idx(&f->r, start);
	f->vq.last_avail = start;
	f->vq.used_idx = start;
	f->r.last_used = start;
	struct vring_used *u = fake_vring_host(&f->r, f->r.used_gpa, 4);
	u->idx = start;

	uint16_t heads[6];
	for (unsigned int i = 0; i < 6; i++)
		heads[i] = publish_one(f, 4 + i, (uint8_t)(0x40 + i));
	assert_int_equal(f->r.avail_idx, (uint16_t)(start + 6));

	for (unsigned int i = 0; i < 6; i++) {
		fx_elem(f, IOV_MAX_T);
		assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
		assert_int_equal(f->elem.head, heads[i]);
		assert_int_equal(f->elem.out_len, 4 + i);
		assert_int_equal(*(uint8_t *)f->iov[0].iov_base, 0x40 + i);
		vq_push(&f->vq, f->elem.head, i);
	}
	assert_int_equal(vq_pop(&f->vq, &f->elem), 0);
	assert_int_equal(f->vq.last_avail, 3);
	assert_int_equal(f->vq.used_idx, 3);
	assert_int_equal(u->idx, 3);

	for (unsigned int i = 0; i < 6; i++) {
		uint32_t id, len;
		assert_true(fake_vring_get_used(&f->r, &id, &len));
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, i);
	}
	assert_false(fake_vring_get_used(&f->r, NULL, NULL));
}

/* A full ring (size outstanding) is legal; a chain using every descriptor is too. */
static void test_full_ring_and_longest_chain(void **state)
{
	struct fx *f = *state;

	for (unsigned int i = 0; i < QSIZE; i++)
		publish_one(f, 8, (uint8_t)i);
	for (unsigned int i = 0; i < QSIZE; i++) {
		fx_elem(f, IOV_MAX_T);
		assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
		assert_int_equal(*(uint8_t *)f->iov[0].iov_base, i);
		vq_push(&f->vq, f->elem.head, 0);
	}
	assert_int_equal(vq_pop(&f->vq, &f->elem), 0);

	/* QSIZE descriptors in one chain: the time to live must not cut it short. */
	struct iovec big[QSIZE];
	struct fake_seg segs[QSIZE];
	for (unsigned int i = 0; i < QSIZE; i++)
		segs[i] = (struct fake_seg){buf_with(f, 2, (uint8_t)i), 2, i >= QSIZE / 2};
	uint16_t head = fake_vring_add_chain(&f->r, segs, QSIZE);
	fake_vring_publish(&f->r, head);
	struct vq_elem e = {.iov = big, .iov_cap = QSIZE};
	assert_int_equal(vq_pop(&f->vq, &e), 1);
	assert_int_equal(e.out_num, QSIZE / 2);
	assert_int_equal(e.in_num, QSIZE / 2);
	assert_int_equal(e.out_len + e.in_len, 2 * QSIZE);
	for (unsigned int i = 0; i < QSIZE; i++)
		assert_int_equal(*(uint8_t *)big[i].iov_base, i);
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = *state;

	fake_vring_publish(&f->r, QSIZE);
	expect_broken_ring(f);
	/* A broken queue completes nothing either. */
	struct vring_used *u = fake_vring_host(&f->r, f->r.used_gpa, 4);
	vq_push(&f->vq, 0, 1);
	assert_int_equal(u->idx, 0);

	fx_start(f, QSIZE, false, true);
	fake_vring_publish(&f->r, 0xffff);
	expect_broken_ring(f);
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;
	uint64_t b = buf_with(f, 16, 0);

	fake_vring_set_desc(&f->r, 0, b, 16, VRING_DESC_F_NEXT, QSIZE);
	fake_vring_publish(&f->r, 0);
	f->r.next_desc = 1;
	expect_bad_chain(f, 0);

	fake_vring_set_desc(&f->r, 5, b, 16, VRING_DESC_F_NEXT, 0xffff);
	fake_vring_publish(&f->r, 5);
	expect_bad_chain(f, 5);
}

static void test_cycles(void **state)
{
	struct fx *f = *state;
	uint64_t b = buf_with(f, 16, 0);

	/* a -> b -> a */
	fake_vring_set_desc(&f->r, 3, b, 16, VRING_DESC_F_NEXT, 4);
	fake_vring_set_desc(&f->r, 4, b, 16, VRING_DESC_F_NEXT, 3);
	fake_vring_publish(&f->r, 3);
	/* Wide enough that only the cycle breaker can stop the walk. */
	struct iovec big[64];
	struct vq_elem e = {.iov = big, .iov_cap = 64};
	assert_int_equal(vq_pop(&f->vq, &e), -EBADMSG);
	assert_int_equal(e.head, 3);
	assert_int_equal(f->vq.malformed_chains, 1);
	/* The walk stopped within size steps: nothing written beyond big[QSIZE - 1]. */
	for (unsigned int i = 0; i < 64; i++)
		big[i].iov_base = IOV_POISON;
	fake_vring_publish(&f->r, 3);
	e = (struct vq_elem){.iov = big, .iov_cap = 64};
	assert_int_equal(vq_pop(&f->vq, &e), -EBADMSG);
	for (unsigned int i = QSIZE; i < 64; i++)
		assert_ptr_equal(big[i].iov_base, IOV_POISON);

	/* a -> a, through the fixture's checks */
	fake_vring_set_desc(&f->r, 7, b, 16, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 7);
	fake_vring_publish(&f->r, 7);
	f->r.next_desc = 8;
	expect_bad_chain(f, 7);

	/* A cycle that starts after a few good steps: 9 -> 10 -> 11 -> 10 */
	fake_vring_set_desc(&f->r, 9, b, 16, VRING_DESC_F_NEXT, 10);
	fake_vring_set_desc(&f->r, 10, b, 16, VRING_DESC_F_NEXT, 11);
	fake_vring_set_desc(&f->r, 11, b, 16, VRING_DESC_F_NEXT, 10);
	fake_vring_publish(&f->r, 9);
	f->r.next_desc = 12;
	e = (struct vq_elem){.iov = big, .iov_cap = 64};
	assert_int_equal(vq_pop(&f->vq, &e), -EBADMSG);
	assert_int_equal(e.head, 9);
}

static void test_zero_length(void **state)
{
	struct fx *f = *state;
	uint64_t b = buf_with(f, 16, 0);

	fake_vring_set_desc(&f->r, 0, b, 0, 0, 0);
	fake_vring_publish(&f->r, 0);
	f->r.next_desc = 1;
	expect_bad_chain(f, 0);

	/* Zero-length in the middle of a chain. */
	struct fake_seg segs[] = {{b, 16, false}, {b, 0, true}, {b, 4, true}};
	uint16_t head = fake_vring_add_chain(&f->r, segs, 3);
	fake_vring_publish(&f->r, head);
	expect_bad_chain(f, head);
}

static void test_bad_ranges(void **state)
{
	struct fx *f = *state;
	const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{0xffffffffffffff00ULL, 0x200}, /* addr + len wraps */
		{UINT64_MAX, 1},
		{0xfffffffffffffff0ULL, 0xffffffff},
		{RAM_SIZE - 8, 16},	/* partly outside RAM */
		{RAM_SIZE, 1},		/* just past the end */
		{1 * GiB, 4096},	/* nowhere near RAM */
		{LAYOUT_MMIO_HOLE, 16}, /* the MMIO hole */
		{0, 0xffffffff},	/* starts in RAM, far too long */
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		struct fake_seg segs[] = {{buf_with(f, 8, 0), 8, false},
					  {bad[i].addr, bad[i].len, true}};
		uint16_t head = fake_vring_add_chain(&f->r, segs, 2);
		fake_vring_publish(&f->r, head);
		expect_bad_chain(f, head);
	}

	/* The last byte of RAM is fine. */
	struct fake_seg last = {RAM_SIZE - 1, 1, true};
	uint16_t head = fake_vring_add_chain(&f->r, &last, 1);
	fake_vring_publish(&f->r, head);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_ptr_equal(f->iov[0].iov_base, f->gm.base + RAM_SIZE - 1);
}

/* RAM above 3 GiB continues at 4 GiB: a buffer may not straddle the hole. */
static void test_low_ram_end(void **state)
{
	struct fx *f = *state;
	struct guest_mem big;

	assert_int_equal(gm_create(&big, 4 * GiB), 0);
	gm_destroy(&f->gm);
	f->gm = big;
	fx_start(f, QSIZE, false, true);

	struct fake_seg straddle = {LAYOUT_MMIO_HOLE - 8, 16, false};
	uint16_t head = fake_vring_add_chain(&f->r, &straddle, 1);
	fake_vring_publish(&f->r, head);
	expect_bad_chain(f, head);

	struct fake_seg past_high = {5 * GiB - 8, 16, false};
	head = fake_vring_add_chain(&f->r, &past_high, 1);
	fake_vring_publish(&f->r, head);
	expect_bad_chain(f, head);

	/* Each side on its own is RAM, and the host pointer follows the memfd layout. */
	struct fake_seg ok[] = {{LAYOUT_MMIO_HOLE - 16, 16, false}, {4 * GiB, 16, true}};
	head = fake_vring_add_chain(&f->r, ok, 2);
	fake_vring_publish(&f->r, head);
	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_ptr_equal(f->iov[0].iov_base, f->gm.base + LAYOUT_MMIO_HOLE - 16);
	assert_ptr_equal(f->iov[1].iov_base, f->gm.base + LAYOUT_MMIO_HOLE);

	/*
	 * A chain may not add up to more than 2^32 bytes (§2.7.5.2): the same 3 GiB range twice
	 * is rejected, low and high RAM together (4 GiB - 2 MiB) are not.
	 */
	uint32_t low_len = (uint32_t)(LAYOUT_MMIO_HOLE - 2 * MiB);
	struct fake_seg twice[] = {{2 * MiB, low_len, false}, {2 * MiB, low_len, false}};
	head = fake_vring_add_chain(&f->r, twice, 2);
	fake_vring_publish(&f->r, head);
	expect_bad_chain(f, head);

	struct fake_seg all[] = {{2 * MiB, low_len, false}, {4 * GiB, (uint32_t)GiB, true}};
	head = fake_vring_add_chain(&f->r, all, 2);
	fake_vring_publish(&f->r, head);
	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.out_len, low_len);
	assert_int_equal(f->elem.in_len, GiB);
}

static void test_readable_after_writable(void **state)
{
	struct fx *f = *state;
	uint64_t b = buf_with(f, 16, 0);

	struct fake_seg segs[] = {{b, 4, false}, {b, 4, true}, {b, 4, false}};
	uint16_t head = fake_vring_add_chain(&f->r, segs, 3);
	fake_vring_publish(&f->r, head);
	expect_bad_chain(f, head);

	/* Only writable, or only readable, is fine. */
	struct fake_seg w[] = {{b, 4, true}, {b, 4, true}};
	head = fake_vring_add_chain(&f->r, w, 2);
	fake_vring_publish(&f->r, head);
	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.out_num, 0);
	assert_int_equal(f->elem.in_num, 2);
}

static void test_iov_cap(void **state)
{
	struct fx *f = *state;
	struct fake_seg segs[5];

	for (unsigned int i = 0; i < 5; i++)
		segs[i] = (struct fake_seg){buf_with(f, 8, (uint8_t)i), 8, i >= 3};

	/* Exactly the cap fits. */
	uint16_t head = fake_vring_add_chain(&f->r, segs, 5);
	fake_vring_publish(&f->r, head);
	fx_elem(f, 5);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.out_num + f->elem.in_num, 5);
	assert_ptr_equal(f->iov[5].iov_base, IOV_POISON);

	/* One more than the cap: nothing written past it. */
	head = fake_vring_add_chain(&f->r, segs, 5);
	fake_vring_publish(&f->r, head);
	fx_elem(f, 4);
	expect_bad_chain(f, head);
	assert_ptr_equal(f->iov[4].iov_base, IOV_POISON);

	/* The same through an indirect table. */
	head = fake_vring_add_indirect(&f->r, segs, 5);
	fake_vring_publish(&f->r, head);
	fx_elem(f, 4);
	expect_bad_chain(f, head);
	assert_ptr_equal(f->iov[4].iov_base, IOV_POISON);
}

static void test_indirect_ok(void **state)
{
	struct fx *f = *state;
	uint64_t o = buf_with(f, 8, 0x10), i1 = buf_with(f, 32, 0), i2 = buf_with(f, 1, 0);
	struct fake_seg segs[] = {{o, 8, false}, {i1, 32, true}, {i2, 1, true}};

	uint16_t head = fake_vring_add_indirect(&f->r, segs, 3);
	fake_vring_publish(&f->r, head);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.head, head);
	assert_int_equal(f->elem.out_num, 1);
	assert_int_equal(f->elem.in_num, 2);
	assert_int_equal(f->elem.out_len, 8);
	assert_int_equal(f->elem.in_len, 33);
	assert_ptr_equal(f->iov[0].iov_base, fake_vring_host(&f->r, o, 8));
	assert_ptr_equal(f->iov[1].iov_base, fake_vring_host(&f->r, i1, 32));
	assert_ptr_equal(f->iov[2].iov_base, fake_vring_host(&f->r, i2, 1));
	vq_push(&f->vq, head, 33);
	uint32_t id;
	assert_true(fake_vring_get_used(&f->r, &id, NULL));
	assert_int_equal(id, head);

	/*
	 * §2.7.5.3.2: normal descriptors may precede the indirect one, and the WRITE flag on the
	 * indirect descriptor itself means nothing.
	 */
	uint64_t table = fake_vring_alloc(&f->r, 32);
	struct vring_desc *t = fake_vring_host(&f->r, table, 32);
	t[0] = (struct vring_desc){i1, 32, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1};
	t[1] = (struct vring_desc){i2, 1, VRING_DESC_F_WRITE, 0};
	fake_vring_set_desc(&f->r, 10, o, 8, VRING_DESC_F_NEXT, 11);
	fake_vring_set_desc(&f->r, 11, table, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	fake_vring_publish(&f->r, 10);
	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.out_num, 1);
	assert_int_equal(f->elem.in_num, 2);
	assert_ptr_equal(f->iov[2].iov_base, fake_vring_host(&f->r, i2, 1));

	/*
	 * An indirect table may be longer than the ring (here 40 entries for 16 descriptors): its
	 * walk is bounded by its own length.
	 */
	struct fake_seg many[40];
	struct iovec wide[40];
	for (unsigned int i = 0; i < 40; i++)
		many[i] = (struct fake_seg){buf_with(f, 4, (uint8_t)i), 4, i >= 20};
	head = fake_vring_add_indirect(&f->r, many, 40);
	fake_vring_publish(&f->r, head);
	struct vq_elem we = {.iov = wide, .iov_cap = 40};
	assert_int_equal(vq_pop(&f->vq, &we), 1);
	assert_int_equal(we.out_num, 20);
	assert_int_equal(we.in_num, 20);
	for (unsigned int i = 0; i < 40; i++)
		assert_int_equal(*(uint8_t *)wide[i].iov_base, i);

	/* An indirect table as large as allowed (VQ_MAX_SIZE entries), of which one is used. */
	uint64_t huge = fake_vring_alloc(&f->r, 16ULL * VQ_MAX_SIZE);
	assert_true(huge != 0);
	memset(fake_vring_host(&f->r, huge, 16ULL * VQ_MAX_SIZE), 0, 16ULL * VQ_MAX_SIZE);
	*(struct vring_desc *)fake_vring_host(&f->r, huge, 16) = (struct vring_desc){o, 8, 0, 0};
	fake_vring_set_desc(&f->r, 12, huge, 16U * VQ_MAX_SIZE, VRING_DESC_F_INDIRECT, 0);
	fake_vring_publish(&f->r, 12);
	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.out_len, 8);

	/* One entry more is refused, although the walk would stop at the first. */
	uint64_t huger = fake_vring_alloc(&f->r, 16ULL * (VQ_MAX_SIZE + 1));
	assert_true(huger != 0);
	memcpy(fake_vring_host(&f->r, huger, 16ULL * (VQ_MAX_SIZE + 1)),
	       fake_vring_host(&f->r, huge, 16ULL * VQ_MAX_SIZE), 16ULL * VQ_MAX_SIZE);
	fake_vring_set_desc(&f->r, 13, huger, 16U * (VQ_MAX_SIZE + 1), VRING_DESC_F_INDIRECT, 0);
	fake_vring_publish(&f->r, 13);
	expect_bad_chain(f, 13);
}

static void test_indirect_malformed(void **state)
{
	struct fx *f = *state;
	uint64_t b = buf_with(f, 64, 0);
	struct fake_seg segs[] = {{b, 8, false}, {b, 8, true}};

	/* INDIRECT together with NEXT (§2.7.5.3.1). */
	uint16_t head = fake_vring_add_indirect(&f->r, segs, 2);
	struct vring_desc *d = fake_vring_host(&f->r, f->r.desc_gpa + 16ULL * head, 16);
	d->flags |= VRING_DESC_F_NEXT;
	d->next = (uint16_t)(head + 1);
	fake_vring_set_desc(&f->r, (uint16_t)(head + 1), b, 8, VRING_DESC_F_WRITE, 0);
	f->r.next_desc = (uint16_t)(head + 2);
	fake_vring_publish(&f->r, head);
	expect_bad_chain(f, head);

	/* Nested: an entry of the table is itself indirect. */
	uint16_t inner = fake_vring_add_indirect(&f->r, segs, 2);
	struct vring_desc *idesc = fake_vring_host(&f->r, f->r.desc_gpa + 16ULL * inner, 16);
	uint64_t outer_table = fake_vring_alloc(&f->r, 32);
	struct vring_desc *ot = fake_vring_host(&f->r, outer_table, 32);
	ot[0] = (struct vring_desc){b, 8, VRING_DESC_F_NEXT, 1};
	ot[1] = (struct vring_desc){idesc->addr, idesc->len, VRING_DESC_F_INDIRECT, 0};
	fake_vring_set_desc(&f->r, inner, outer_table, 32, VRING_DESC_F_INDIRECT, 0);
	fake_vring_publish(&f->r, inner);
	expect_bad_chain(f, inner);

	/* Table lengths: not whole descriptors, zero, outside RAM. */
	const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
		{0, 24}, {0, 40}, {0, 8}, {0, 0}, {RAM_SIZE - 16, 32}, {UINT64_MAX - 15, 32},
	};
	for (unsigned int i = 0; i < ARRAY_SIZE(bad); i++) {
		head = fake_vring_add_indirect(&f->r, segs, 2);
		d = fake_vring_host(&f->r, f->r.desc_gpa + 16ULL * head, 16);
		if (bad[i].addr)
			d->addr = bad[i].addr;
		d->len = bad[i].len;
		fake_vring_publish(&f->r, head);
		expect_bad_chain(f, head);
	}

	/*
	 * next beyond the table: the table has 2 entries (the ring has 16), and what follows it
	 * in memory looks like a good descriptor, so only the table bound can refuse it.
	 */
	uint64_t table = fake_vring_alloc(&f->r, 48);
	struct vring_desc *t = fake_vring_host(&f->r, table, 48);
	t[0] = (struct vring_desc){b, 8, VRING_DESC_F_NEXT, 2};
	t[1] = (struct vring_desc){b, 8, 0, 0};
	t[2] = (struct vring_desc){b, 8, 0, 0};
	head = f->r.next_desc;
	fake_vring_set_desc(&f->r, head, table, 32, VRING_DESC_F_INDIRECT, 0);
	f->r.next_desc = (uint16_t)((head + 1) % QSIZE);
	fake_vring_publish(&f->r, head);
	expect_bad_chain(f, head);

	/* A loop inside the table. */
	t[0] = (struct vring_desc){b, 8, VRING_DESC_F_NEXT, 1};
	t[1] = (struct vring_desc){b, 8, VRING_DESC_F_NEXT, 0};
	fake_vring_publish(&f->r, head);
	struct iovec big[64];
	struct vq_elem e = {.iov = big, .iov_cap = 64};
	assert_int_equal(vq_pop(&f->vq, &e), -EBADMSG);
	assert_int_equal(e.head, head);
}

static void test_indirect_not_negotiated(void **state)
{
	struct fx *f = *state;
	uint64_t b = buf_with(f, 16, 0);
	struct fake_seg segs[] = {{b, 8, false}, {b, 8, true}};

	fx_start(f, QSIZE, false, false);
	uint16_t head = fake_vring_add_indirect(&f->r, segs, 2);
	fake_vring_publish(&f->r, head);
	expect_bad_chain(f, head);
}

/* An avail index more than size ahead cannot come from a driver: the ring is garbage. */
static void test_avail_idx_jump(void **state)
{
	struct fx *f = *state;

	publish_one(f, 8, 1);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	publish_one(f, 8, 2);
	fake_vring_set_avail_idx(&f->r, (uint16_t)(f->vq.last_avail + QSIZE + 1));
	assert_true(vq_has_avail(&f->vq));
	expect_broken_ring(f);
	/* Even once the index looks sane again, the queue stays dead until reset. */
	fake_vring_set_avail_idx(&f->r, (uint16_t)(f->vq.last_avail + 1));
	assert_int_equal(vq_pop(&f->vq, &f->elem), -EIO);
	assert_false(vq_has_avail(&f->vq));

	/* Going backwards is a jump of almost 65536. */
	fx_start(f, QSIZE, false, true);
	publish_one(f, 8, 1);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	fake_vring_set_avail_idx(&f->r, 0);
	expect_broken_ring(f);

	/* vq_reset() and a new enable bring it back. */
	vq_reset(&f->vq);
	assert_false(f->vq.broken);
	assert_false(f->vq.enabled);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 0);
	fake_vring_init(&f->r, &f->gm, RING_BASE, RING_SPAN, QSIZE);
	fake_vring_configure(&f->r, &f->vq);
	assert_int_equal(vq_enable(&f->vq, &f->gm, QMAX, false, true), 0);
	uint16_t head = publish_one(f, 8, 3);
	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_int_equal(f->elem.head, head);
}

static void test_enable_rejects(void **state)
{
	struct fx *f = *state;
	struct virtqueue *vq = &f->vq;
	struct fake_vring *r = &f->r;

	const uint16_t bad_sizes[] = {0, 3, 6, 100, 512, 32767};
	for (unsigned int i = 0; i < ARRAY_SIZE(bad_sizes); i++) {
		fake_vring_configure(r, vq);
		vq->size = bad_sizes[i];
		assert_int_equal(vq_enable(vq, &f->gm, QMAX, false, false), -EINVAL);
		assert_false(vq->enabled);
		assert_int_equal(vq_pop(vq, &f->elem), 0);
		assert_false(vq_has_avail(vq));
	}
	/* Sizes from 1 to max_size, powers of 2 only (the extent fits the ring span). */
	for (uint32_t s = 1; s <= QMAX; s *= 2) {
		fake_vring_init(r, &f->gm, RING_BASE, RING_SPAN, (uint16_t)s);
		fake_vring_configure(r, vq);
		assert_int_equal(vq_enable(vq, &f->gm, QMAX, false, false), 0);
		assert_int_equal(vq_enable(vq, &f->gm, (uint16_t)(s > 1 ? s / 2 : 0), false, false),
				 -EINVAL);
	}
	/* A device cannot offer more than VQ_MAX_SIZE. */
	fake_vring_init(r, &f->gm, RING_BASE, RING_SPAN, 8);
	fake_vring_configure(r, vq);
	assert_int_equal(vq_enable(vq, &f->gm, 65535, false, false), -EINVAL);
	assert_int_equal(vq_enable(vq, &f->gm, VQ_MAX_SIZE, false, false), 0);

	/* Alignments: desc 16, avail 2, used 4 (§2.7). */
	const struct {
		int64_t d, a, u;
		int ok;
	} al[] = {
		{8, 0, 0, 0}, {1, 0, 0, 0},  {0, 1, 0, 0}, {0, 0, 2, 0},
		{0, 0, 1, 0}, {16, 0, 0, 1}, {0, 2, 0, 1}, {0, 0, 4, 1},
	};
	for (unsigned int i = 0; i < ARRAY_SIZE(al); i++) {
		fake_vring_configure(r, vq);
		vq->desc_gpa += (uint64_t)al[i].d;
		vq->avail_gpa += (uint64_t)al[i].a;
		vq->used_gpa += (uint64_t)al[i].u;
		assert_int_equal(vq_enable(vq, &f->gm, QMAX, true, true), al[i].ok ? 0 : -EINVAL);
		assert_int_equal(vq->enabled, al[i].ok);
	}

	/* Each part's whole extent, event-idx field included, inside RAM. */
	const uint16_t n = 8;
	const uint64_t dsz = 16ULL * n, asz = 6ULL + 2 * n, usz = 6ULL + 8 * n;
	const struct {
		uint64_t d, a, u;
		int ok;
	} ext[] = {
		{RAM_SIZE - dsz, 0x2000, 0x3000, 1},
		{RAM_SIZE - dsz + 16, 0x2000, 0x3000, 0},
		{0x1000, RAM_SIZE - asz, 0x3000, 1},
		{0x1000, RAM_SIZE - asz + 2, 0x3000, 0}, /* used_event past the end */
		{0x1000, 0x2000, RAM_SIZE - usz - 2, 1}, /* 4-aligned */
		{0x1000, 0x2000, RAM_SIZE - usz + 2, 0}, /* avail_event past the end */
		{LAYOUT_MMIO_HOLE, 0x2000, 0x3000, 0},
		{0x1000, 1 * GiB, 0x3000, 0},
		{0x1000, 0x2000, 0xfffffffffffffffcULL, 0},
		{0xfffffffffffffff0ULL, 0x2000, 0x3000, 0},
	};
	for (unsigned int i = 0; i < ARRAY_SIZE(ext); i++) {
		vq->size = n;
		vq->desc_gpa = ext[i].d;
		vq->avail_gpa = ext[i].a;
		vq->used_gpa = ext[i].u;
		assert_int_equal(vq_enable(vq, &f->gm, QMAX, true, true), ext[i].ok ? 0 : -EINVAL);
		assert_int_equal(vq->enabled, ext[i].ok);
		if (ext[i].ok) {
			assert_ptr_equal(vq->desc, f->gm.base + ext[i].d);
			assert_ptr_equal(vq->avail, f->gm.base + ext[i].a);
			assert_ptr_equal(vq->used, f->gm.base + ext[i].u);
		}
	}
}

static void test_push(void **state)
{
	struct fx *f = *state;
	struct vring_used *u = fake_vring_host(&f->r, f->r.used_gpa, vring_used_bytes(QSIZE));
	uint16_t h[3];

	for (unsigned int i = 0; i < 3; i++)
		h[i] = publish_one(f, 8, 0);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(vq_pop(&f->vq, &f->elem), 1);

	/* Completion order is the device's, not the driver's (§2.7.8). */
	vq_push(&f->vq, h[2], 300);
	assert_int_equal(u->idx, 1);
	vq_push(&f->vq, h[0], 100);
	vq_push(&f->vq, QSIZE, 7); /* ignored */
	vq_push(&f->vq, 0xffff, 7);
	assert_int_equal(u->idx, 2);
	assert_int_equal(f->vq.malformed_chains, 2);
	vq_push(&f->vq, h[1], 200);
	assert_int_equal(u->idx, 3);
	assert_int_equal(f->vq.used_idx, 3);

	const uint32_t want_id[] = {h[2], h[0], h[1]}, want_len[] = {300, 100, 200};
	for (unsigned int i = 0; i < 3; i++) {
		uint32_t id, len;
		assert_true(fake_vring_get_used(&f->r, &id, &len));
		assert_int_equal(id, want_id[i]);
		assert_int_equal(len, want_len[i]);
	}
	assert_false(fake_vring_get_used(&f->r, NULL, NULL));

	/* Not enabled: nothing written. */
	vq_reset(&f->vq);
	vq_push(&f->vq, 0, 1);
	assert_int_equal(u->idx, 3);
}

/*
 * A chain popped before the queue went down (QueueReady 0: vq_reset, then enabled again on the
 * same ring) is no longer current: the device must not complete it into the new ring. Found by
 * the micro-guest's blk-hostile-queue-ready-inflight case (stale heads in a re-enabled queue).
 */
static void test_elem_stale_after_queue_reset(void **state)
{
	struct fx *f = *state;
	struct vq_elem old;
	struct iovec old_iov[IOV_MAX_T];

	publish_one(f, 8, 0);
	old = (struct vq_elem){.iov = old_iov, .iov_cap = IOV_MAX_T};
	assert_int_equal(vq_pop(&f->vq, &old), 1);
	assert_true(vq_elem_current(&f->vq, &old));

	/* QueueReady 0 keeps the driver-written fields; QueueReady 1 enables them again. */
	struct virtqueue saved = f->vq;
	vq_reset(&f->vq);
	f->vq.size = saved.size;
	f->vq.desc_gpa = saved.desc_gpa;
	f->vq.avail_gpa = saved.avail_gpa;
	f->vq.used_gpa = saved.used_gpa;
	fake_vring_init(&f->r, &f->gm, RING_BASE, RING_SPAN, QSIZE);
	assert_int_equal(vq_enable(&f->vq, &f->gm, QMAX, false, true), 0);
	assert_false(vq_elem_current(&f->vq, &old));

	/* What the new ring gives is current; a later reset makes it stale too. */
	publish_one(f, 8, 0);
	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	assert_true(vq_elem_current(&f->vq, &f->elem));
	vq_reset(&f->vq);
	assert_false(vq_elem_current(&f->vq, &f->elem));
	assert_false(vq_elem_current(&f->vq, &old));
}

static void test_notify_flags(void **state)
{
	struct fx *f = *state;
	struct vring_avail *a = fake_vring_host(&f->r, f->r.avail_gpa, 4);
	struct vring_used *u = fake_vring_host(&f->r, f->r.used_gpa, 4);

	uint16_t head = publish_one(f, 8, 0);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	vq_push(&f->vq, head, 0);
	assert_true(vq_should_notify(&f->vq));
	a->flags = VRING_AVAIL_F_NO_INTERRUPT;
	assert_false(vq_should_notify(&f->vq));
	a->flags = 0;
	assert_true(vq_should_notify(&f->vq));

	vq_set_notification(&f->vq, false);
	assert_true(u->flags & VRING_USED_F_NO_NOTIFY);
	vq_set_notification(&f->vq, true);
	assert_false(u->flags & VRING_USED_F_NO_NOTIFY);
	/* Without EVENT_IDX the avail_event field is not ours to touch. */
	assert_int_equal(fake_vring_avail_event(&f->r), 0);

	/* The usual loop: disable, drain, enable, re-check. */
	vq_set_notification(&f->vq, false);
	publish_one(f, 8, 0);
	assert_true(vq_has_avail(&f->vq));
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	vq_set_notification(&f->vq, true);
	assert_false(vq_has_avail(&f->vq));
	assert_int_equal(u->flags, 0);
}

/* Push k buffers and ask whether to interrupt. */
static bool push_and_ask(struct fx *f, unsigned int k)
{
	for (unsigned int i = 0; i < k; i++)
		vq_push(&f->vq, 0, 0);
	return vq_should_notify(&f->vq);
}

/* The driver's side of §2.7.10: after moving its avail index from old to new, it kicks iff
 * avail_event lies in [old, new), modulo 2^16. */
static bool driver_would_kick(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

static void test_notify_event_idx(void **state)
{
	struct fx *f = *state;
	struct vring_used *u = fake_vring_host(&f->r, f->r.used_gpa, 4);
	struct vring_avail *a = fake_vring_host(&f->r, f->r.avail_gpa, 4);

	fx_start(f, QSIZE, true, false);
	/* No reference point yet: the first check signals. */
	fake_vring_set_used_event(&f->r, 100);
	assert_true(push_and_ask(f, 1));

	/* The driver wants an interrupt once the used entry at index 3 is written. */
	fake_vring_set_used_event(&f->r, 3);
	assert_false(push_and_ask(f, 1)); /* idx 2 */
	assert_false(push_and_ask(f, 1)); /* idx 3: entry 3 not written yet */
	assert_true(push_and_ask(f, 1));  /* idx 4 */
	assert_false(push_and_ask(f, 1)); /* already past it */
	/* A batch that jumps over the event index still signals once. */
	fake_vring_set_used_event(&f->r, 7);
	assert_true(push_and_ask(f, 4)); /* 5 -> 9 */
	assert_false(push_and_ask(f, 0));
	/* The NO_INTERRUPT flag is ignored under EVENT_IDX (§2.7.7). */
	a->flags = VRING_AVAIL_F_NO_INTERRUPT;
	fake_vring_set_used_event(&f->r, 9);
	assert_true(push_and_ask(f, 1));
	a->flags = 0;
	/* An event index the device has long passed (stale): no interrupt. */
	fake_vring_set_used_event(&f->r, 2);
	assert_false(push_and_ask(f, 2));

	/* Wraparound of the used index: event at 65535, then at 0. */
	fx_start(f, QSIZE, true, false);
	f->vq.used_idx = 65533;
	u->idx = 65533;
	f->r.last_used = 65533;
	assert_true(push_and_ask(f, 0)); /* reference point at 65533 */
	fake_vring_set_used_event(&f->r, 65535);
	assert_false(push_and_ask(f, 1)); /* 65534 */
	assert_false(push_and_ask(f, 1)); /* 65535 */
	assert_true(push_and_ask(f, 1));  /* 0 */
	fake_vring_set_used_event(&f->r, 1);
	assert_true(push_and_ask(f, 3)); /* 0 -> 3 crosses 1 */
	f->vq.used_idx = 65534;
	u->idx = 65534;
	assert_false(push_and_ask(f, 0)); /* 3 -> 65534: event 1 is behind us */
	fake_vring_set_used_event(&f->r, 0);
	assert_true(push_and_ask(f, 3)); /* 65534 -> 1 crosses 0 */

	/*
	 * avail_event: enabling publishes last_avail (the driver kicks when it adds that entry);
	 * disabling puts it one behind, where no add of the driver crosses it (the driver's
	 * rule, vring_need_event(event, new, old): kick iff event is in [old, new)).
	 */
	fx_start(f, QSIZE, true, false);
	for (unsigned int i = 0; i < 3; i++)
		publish_one(f, 8, 0);
	vq_set_notification(&f->vq, false);
	assert_int_equal(fake_vring_avail_event(&f->r), 65535);
	for (unsigned int i = 0; i < 3; i++)
		assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	/* vq_pop does not move avail_event by itself. */
	assert_int_equal(fake_vring_avail_event(&f->r), 65535);
	vq_set_notification(&f->vq, true);
	assert_int_equal(fake_vring_avail_event(&f->r), 3);
	assert_true(driver_would_kick(fake_vring_avail_event(&f->r), 4, 3));
	assert_int_equal(u->flags, 0); /* the flag is not used with EVENT_IDX */
	vq_set_notification(&f->vq, false);
	assert_int_equal(fake_vring_avail_event(&f->r), 2);
	assert_int_equal(u->flags, 0);
	/* Disabled: neither the next add nor a batch of adds kicks. */
	assert_false(driver_would_kick(fake_vring_avail_event(&f->r), 4, 3));
	assert_false(driver_would_kick(fake_vring_avail_event(&f->r), 3 + QSIZE, 3));
}

/*
 * A second thread rewrites the descriptor while the device pops it. Whatever mix of old and
 * new fields the device sees, it must never hand out a range outside guest RAM; when it
 * accepts the chain, the iovec is one the checks allowed.
 */
struct mutator {
	struct vring_desc *d;
	uint64_t a, b;
	int stop;
	int started;
};

static void *mutate(void *arg)
{
	struct mutator *m = arg;
	const uint64_t addrs[] = {m->a, m->b, 0xfffffffffffffff0ULL, RAM_SIZE - 4};
	const uint32_t lens[] = {16, 32, 0, 0xffffffff};
	const uint16_t flags[] = {0, VRING_DESC_F_WRITE, VRING_DESC_F_NEXT, VRING_DESC_F_INDIRECT};
	unsigned int x = 1;

	while (!__atomic_load_n(&m->stop, __ATOMIC_RELAXED)) {
		x = x * 1103515245 + 12345;
		__atomic_store_n(&m->d->addr, addrs[(x >> 8) & 3], __ATOMIC_RELAXED);
		__atomic_store_n(&m->d->len, lens[(x >> 12) & 3], __ATOMIC_RELAXED);
		__atomic_store_n(&m->d->flags, flags[(x >> 16) & 3], __ATOMIC_RELAXED);
		__atomic_store_n(&m->d->next, (uint16_t)(x >> 20), __ATOMIC_RELAXED);
		__atomic_store_n(&m->started, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void test_descriptor_changes_under_us(void **state)
{
	struct fx *f = *state;
	struct mutator m;
	pthread_t th;
	unsigned int good = 0, bad = 0;

	m.a = buf_with(f, 64, 0xaa);
	m.b = buf_with(f, 64, 0xbb);
	m.d = fake_vring_host(&f->r, f->r.desc_gpa, 16);
	m.stop = 0;
	m.started = 0;
	uint8_t *ha = fake_vring_host(&f->r, m.a, 64), *hb = fake_vring_host(&f->r, m.b, 64);

	assert_int_equal(pthread_create(&th, NULL, mutate, &m), 0);
	/* Make sure the writer really runs while we pop. */
	while (!__atomic_load_n(&m.started, __ATOMIC_ACQUIRE))
		sched_yield();
	for (unsigned int i = 0; i < 20000; i++) {
		fake_vring_publish(&f->r, 0);
		fx_elem(f, IOV_MAX_T);
		int ret = vq_pop(&f->vq, &f->elem);
		assert_true(ret == 1 || ret == -EBADMSG);
		assert_int_equal(f->elem.head, 0);
		assert_iov_in_ram(f);
		if (ret == 1) {
			/*
			 * Every segment is a copy the checks accepted: one of the two buffers
			 * with one of the two lengths. (A self-linked copy followed by an
			 * unlinked one is a legal two-segment chain, so count them all.)
			 */
			unsigned int nseg = f->elem.out_num + f->elem.in_num;
			uint64_t sum = 0;
			assert_true(nseg >= 1 && nseg <= QSIZE);
			for (unsigned int s = 0; s < nseg && s < IOV_MAX_T; s++) {
				assert_true(f->iov[s].iov_base == ha || f->iov[s].iov_base == hb);
				assert_true(f->iov[s].iov_len == 16 || f->iov[s].iov_len == 32);
				sum += f->iov[s].iov_len;
			}
			assert_int_equal(f->elem.out_len + f->elem.in_len, sum);
			good++;
		} else {
			bad++;
		}
		vq_push(&f->vq, 0, 0);
		assert_true(fake_vring_get_used(&f->r, NULL, NULL));
	}
	__atomic_store_n(&m.stop, 1, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	assert_false(f->vq.broken);
	assert_int_equal(f->vq.malformed_chains, bad);
	/* Not asserted: how often the writer wins depends on scheduling. */
	print_message("descriptor race: %u accepted, %u rejected\n", good, bad);

	/* After the guest stops writing, the copy is what was checked: a stable descriptor. */
	fake_vring_set_desc(&f->r, 0, m.a, 16, VRING_DESC_F_WRITE, 0);
	fake_vring_publish(&f->r, 0);
	fx_elem(f, IOV_MAX_T);
	assert_int_equal(vq_pop(&f->vq, &f->elem), 1);
	/* The guest rewrites it after the pop: the element keeps what was checked. */
	fake_vring_set_desc(&f->r, 0, 0xfffffffffffffff0ULL, 0xffffffff, 0, 0);
	assert_ptr_equal(f->iov[0].iov_base, ha);
	assert_int_equal(f->iov[0].iov_len, 16);
	assert_int_equal(f->elem.in_len, 16);
}

/* ---- the common device code (virtio.c) ---- */

struct transport_log {
	unsigned int notified[4];
	unsigned int resets;
};

static struct transport_log tlog;

static void t_notify_queue(struct virtio_device *vdev, unsigned int qidx)
{
	(void)vdev;
	assert_true(qidx < 4);
	tlog.notified[qidx]++;
}

static void t_needs_reset(struct virtio_device *vdev)
{
	(void)vdev;
	tlog.resets++;
}

static const struct virtio_transport_ops t_ops = {
	.notify_queue = t_notify_queue,
	.needs_reset = t_needs_reset,
};

static const struct virtio_dev_ops dev_ops = {.name = "virtio-test", .device_id = 42};

static void test_virtio_device(void **state)
{
	struct fx *f = *state;
	struct virtio_device *vdev = calloc(1, sizeof(*vdev));
	assert_non_null(vdev);
	memset(&tlog, 0, sizeof(tlog));

	virtio_device_init(vdev, &dev_ops, f, &f->gm, 2, 128);
	assert_ptr_equal(vdev->ops, &dev_ops);
	assert_ptr_equal(vdev->opaque, f);
	assert_int_equal(vdev->nr_queues, 2);
	assert_int_equal(vdev->queue_max_size, 128);
	assert_true(vdev->device_features & VIRTIO_BIT(VIRTIO_F_VERSION_1));
	assert_true(vdev->device_features & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	assert_true(vdev->device_features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX));
	assert_false(vdev->device_features & VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM));
	assert_int_equal(vdev->driver_features, 0);
	assert_int_equal(vdev->status, 0);
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		assert_ptr_equal(vdev->vq[i].gm, &f->gm);
		assert_false(vdev->vq[i].enabled);
	}
	/* The lock is usable. */
	assert_int_equal(pthread_mutex_lock(&vdev->lock), 0);
	assert_int_equal(pthread_mutex_unlock(&vdev->lock), 0);
	vdev->transport = &t_ops;

	/* Queue 1 runs on the fixture's ring. */
	struct virtqueue *vq = &vdev->vq[1];
	fake_vring_configure(&f->r, vq);
	assert_int_equal(vq_enable(vq, &f->gm, vdev->queue_max_size, false, true), 0);
	uint16_t head = publish_one(f, 8, 0);
	assert_int_equal(vq_pop(vq, &f->elem), 1);
	vq_push(vq, head, 0);
	virtio_queue_notify_driver(vdev, 1);
	assert_int_equal(tlog.notified[1], 1);
	struct vring_avail *a = fake_vring_host(&f->r, f->r.avail_gpa, 4);
	a->flags = VRING_AVAIL_F_NO_INTERRUPT;
	virtio_queue_notify_driver(vdev, 1);
	assert_int_equal(tlog.notified[1], 1);
	a->flags = 0;
	virtio_queue_notify_driver(vdev, 7); /* no such queue */
	assert_int_equal(tlog.notified[0] + tlog.notified[2] + tlog.notified[3], 0);

	/* A broken ring: counted, the transport asked for NEEDS_RESET, the queue stops. */
	virtio_device_fail(vdev, "test: avail index jumped");
	assert_int_equal(vdev->malformed, 1);
	assert_int_equal(tlog.resets, 1);
	assert_true(vq->broken);
	assert_false(vq_has_avail(vq));
	publish_one(f, 8, 0);
	assert_int_equal(vq_pop(vq, &f->elem), -EIO);
	for (unsigned int i = 0; i < 20; i++)
		virtio_device_fail(vdev, "test: again");
	assert_int_equal(vdev->malformed, 21);
	assert_int_equal(tlog.resets, 21);
	/* No transport hook: still counted, nothing called. */
	vdev->transport = NULL;
	virtio_device_fail(vdev, "test: no transport");
	assert_int_equal(vdev->malformed, 22);
	virtio_queue_notify_driver(vdev, 1);
	virtio_device_fini(vdev);

	/* Out-of-range requests are clamped to what the spec allows. */
	virtio_device_init(vdev, &dev_ops, NULL, &f->gm, 1000, 1000);
	assert_int_equal(vdev->nr_queues, VIRTIO_MAX_QUEUES);
	assert_true(vdev->queue_max_size <= 1000);
	assert_int_equal(vdev->queue_max_size & (vdev->queue_max_size - 1), 0);
	virtio_device_fini(vdev);
	virtio_device_init(vdev, &dev_ops, NULL, &f->gm, 1, 65535);
	assert_true(vdev->queue_max_size <= VQ_MAX_SIZE);
	assert_true(vdev->queue_max_size > 0);
	virtio_device_fini(vdev);
	free(vdev);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_simple_chain),
		T(test_iov_helpers),
		T(test_wraparound),
		T(test_full_ring_and_longest_chain),
		T(test_head_out_of_range),
		T(test_next_out_of_range),
		T(test_cycles),
		T(test_zero_length),
		T(test_bad_ranges),
		T(test_low_ram_end),
		T(test_readable_after_writable),
		T(test_iov_cap),
		T(test_indirect_ok),
		T(test_indirect_malformed),
		T(test_indirect_not_negotiated),
		T(test_avail_idx_jump),
		T(test_enable_rejects),
		T(test_push),
		T(test_elem_stale_after_queue_reset),
		T(test_notify_flags),
		T(test_notify_event_idx),
		T(test_descriptor_changes_under_us),
		T(test_virtio_device),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
