// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-rng (virtio 1.2 §5.4) behind the virtio-mmio transport, driven as a guest would, and
 * the token buckets of its rate limit (vmm/ratelimit.h) with a clock of the test's own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "fake_mmio_driver.h"
#include "fake_vring.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/ratelimit.h"
#include "vmm/virtio_mmio.h"
#include "vmm/virtio_rng.h"

#define RAM_SIZE (1 * MiB)
#define REQQ	 0
#define RING	 16
#define WAIT_MS	 2000
#define MS	 1000000ULL

struct fixture {
	struct guest_mem gm;
	struct ev_loop *loop;
	struct virtio_rng *rng;
	struct virtio_mmio *t;
	struct fake_vring q;
};

static struct fixture *fixture_new(const struct vmm_rate_limiter *rl)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gm_create(&f->gm, RAM_SIZE), 0);
	assert_int_equal(ev_loop_create(&f->loop, THREAD_IO), 0);
	assert_int_equal(ev_loop_start(f->loop), 0);
	assert_int_equal(virtio_rng_create(&f->rng, &f->gm, f->loop, rl), 0);
	struct virtio_mmio_config cfg = {.base = 0xd0000000ULL, .gsi = 16, .loop = f->loop};
	assert_int_equal(virtio_mmio_create(&f->t, virtio_rng_device(f->rng), &cfg), 0);
	fake_vring_init(&f->q, &f->gm, 0x10000, 0x80000, RING);
	return f;
}

static void fixture_free(struct fixture *f)
{
	virtio_mmio_destroy(f->t);
	virtio_rng_destroy(f->rng);
	ev_loop_destroy(f->loop);
	gm_destroy(&f->gm);
	free(f);
}

static int setup(void **state)
{
	*state = fixture_new(NULL);
	return 0;
}

static int teardown(void **state)
{
	fixture_free(*state);
	return 0;
}

static void driver_init(struct fixture *f)
{
	uint64_t want = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);

	assert_true(mmio_negotiate(f->t, want) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, REQQ, &f->q);
	mmio_driver_ok(f->t);
}

/* Post one writable buffer of len bytes (zeroed); its guest address in *gpa. */
static uint16_t post(struct fixture *f, uint32_t len, uint64_t *gpa)
{
	uint64_t a = fake_vring_alloc(&f->q, len);

	assert_int_not_equal(a, 0);
	memset(fake_vring_host(&f->q, a, len), 0, len);
	struct fake_seg seg = {.gpa = a, .len = len, .write = true};
	uint16_t head = fake_vring_add_chain(&f->q, &seg, 1);

	fake_vring_publish(&f->q, head);
	if (gpa)
		*gpa = a;
	return head;
}

static void kick(struct fixture *f)
{
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, REQQ);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i])
			return false;
	}
	return true;
}

static void test_identity_and_features(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_RNG);
	mmio_wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES) & 1); /* VERSION_1 */
	mmio_wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t lo = mmio_rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES);
	/* No device-specific feature bits (§5.4.3): only reserved ones, from bit 24 on. */
	assert_int_equal(lo & 0x00ffffff, 0);
	assert_true(lo & (1u << VIRTIO_F_EVENT_IDX));
	driver_init(f);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);
}

static void test_fills_buffers(void **state)
{
	struct fixture *f = *state;
	uint64_t a, b;
	uint32_t id, len;

	driver_init(f);
	mmio_irq_take(f->t, 0);
	uint16_t h1 = post(f, 256, &a);
	uint16_t h2 = post(f, 256, &b);
	kick(f);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h1);
	assert_int_equal(len, 256);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h2);
	assert_int_equal(len, 256);
	const uint8_t *pa = fake_vring_host(&f->q, a, 256), *pb = fake_vring_host(&f->q, b, 256);
	assert_false(all_zero(pa, 256));
	assert_memory_not_equal(pa, pb, 256);
	assert_true(mmio_irq_take(f->t, WAIT_MS) >= 1);
}

/* One request gets at most VIRTIO_RNG_REQ_MAX bytes, however big its buffer. */
static void test_request_cap(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;
	uint64_t a;

	driver_init(f);
	uint16_t h = post(f, 2 * VIRTIO_RNG_REQ_MAX, &a);
	kick(f);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h);
	assert_int_equal(len, VIRTIO_RNG_REQ_MAX);
	const uint8_t *p = fake_vring_host(&f->q, a, 2 * VIRTIO_RNG_REQ_MAX);
	assert_true(all_zero(p + VIRTIO_RNG_REQ_MAX, VIRTIO_RNG_REQ_MAX));
}

/* A chain the device cannot write into, or one that points outside RAM, completes empty. */
static void test_malformed_chains(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;
	char stats[128];

	driver_init(f);
	uint64_t a = fake_vring_alloc(&f->q, 64);
	struct fake_seg ro = {.gpa = a, .len = 64, .write = false};
	uint16_t h1 = fake_vring_add_chain(&f->q, &ro, 1);
	fake_vring_publish(&f->q, h1);
	struct fake_seg out = {.gpa = RAM_SIZE - 16, .len = 64, .write = true};
	uint16_t h2 = fake_vring_add_chain(&f->q, &out, 1);
	fake_vring_publish(&f->q, h2);
	uint16_t h3 = post(f, 32, NULL);
	kick(f);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h1);
	assert_int_equal(len, 0);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h2);
	assert_int_equal(len, 0);
	/* The device goes on with the next, good, chain. */
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h3);
	assert_int_equal(len, 32);
	virtio_rng_stats(f->rng, stats, sizeof(stats));
	assert_non_null(strstr(stats, "malformed=2"));
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* A head beyond the ring is a broken ring: NEEDS_RESET, and a reset brings the device back. */
static void test_broken_ring_and_reset(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;

	driver_init(f);
	fake_vring_publish(&f->q, RING + 3);
	kick(f);
	for (int i = 0; i < 200 && !(mmio_rd(f->t, VIRTIO_MMIO_STATUS) &
				     VIRTIO_STATUS_DEVICE_NEEDS_RESET); i++)
		usleep(10000);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), 0);
	fake_vring_init(&f->q, &f->gm, 0x10000, 0x80000, RING);
	driver_init(f);
	uint16_t h = post(f, 16, NULL);
	kick(f);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h);
	assert_int_equal(len, 16);
}

/*
 * 1000 bytes per 10 s: the first request takes the whole bucket, the next waits for the
 * refill (a byte every 10 ms) instead of completing empty, and then gets what has come back.
 */
static void test_rate_limited(void **state)
{
	(void)state;
	struct vmm_rate_limiter rl = {.bandwidth = {.size = 1000, .refill_time_ms = 10000}};
	struct fixture *f = fixture_new(&rl);
	uint32_t id, len;
	char stats[128];

	driver_init(f);
	uint16_t h1 = post(f, 4096, NULL);
	uint16_t h2 = post(f, 4096, NULL);
	kick(f);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h1);
	assert_int_equal(len, 1000);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h2);
	assert_in_range(len, 1, 1000);
	/* The second found the bucket empty (its pop came microseconds after the first, a byte
	 * takes 10 ms) and waited for its timer. */
	virtio_rng_stats(f->rng, stats, sizeof(stats));
	assert_null(strstr(stats, "throttled=0 "));
	fixture_free(f);
}

/* 2 requests per 200 ms, no burst: a third request waits about 100 ms for its token. */
static void test_ops_limited(void **state)
{
	(void)state;
	struct vmm_rate_limiter rl = {.ops = {.size = 2, .refill_time_ms = 200}};
	struct fixture *f = fixture_new(&rl);
	uint32_t id, len;

	driver_init(f);
	post(f, 8, NULL);
	post(f, 8, NULL);
	uint16_t h3 = post(f, 8, NULL);
	int64_t t0 = test_now_ms();
	kick(f);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h3);
	assert_int_equal(len, 8);
	assert_true(test_now_ms() - t0 >= 90);
	fixture_free(f);
}

/* ---- token buckets ---- */

static void test_bucket_refill(void **state)
{
	(void)state;
	struct vmm_token_bucket cfg = {.size = 1000, .refill_time_ms = 1000};
	struct token_bucket b;

	tb_init(&b, &cfg, 0);
	assert_int_equal(tb_available(&b, 0), 1000);
	tb_consume(&b, 1000);
	assert_int_equal(tb_available(&b, 0), 0);
	/* 1 token per ms, fractions kept: 0.5 ms twice is one token. */
	assert_int_equal(tb_available(&b, MS / 2), 0);
	assert_int_equal(tb_available(&b, MS), 1);
	assert_int_equal(tb_available(&b, 250 * MS), 250);
	/* Never beyond size, and time going backwards changes nothing. */
	assert_int_equal(tb_available(&b, 5000 * MS), 1000);
	assert_int_equal(tb_available(&b, 10 * MS), 1000);
	/* The wait for n tokens, rounded up; at most size is waited for. */
	tb_consume(&b, 1000);
	assert_int_equal(tb_wait_ns(&b, 10, 5000 * MS), 10 * MS);
	assert_int_equal(tb_wait_ns(&b, 5000, 5000 * MS), 1000 * MS);
}

/* A packet bigger than what is left (or than the bucket) is taken whole; the bucket then owes
 * the rest and gives nothing until refills paid it: the rate holds over time. */
static void test_bucket_debt(void **state)
{
	(void)state;
	struct vmm_token_bucket cfg = {.size = 1000, .refill_time_ms = 1000};
	struct token_bucket b;

	tb_init(&b, &cfg, 0);
	tb_consume(&b, 2500); /* 1000 of the budget, 1500 owed */
	assert_int_equal(tb_available(&b, 0), 0);
	assert_int_equal(tb_wait_ns(&b, 1, 0), 1501 * MS);
	assert_int_equal(tb_available(&b, 1000 * MS), 0); /* 1000 paid back */
	assert_int_equal(tb_available(&b, 1500 * MS), 0); /* all of it */
	assert_int_equal(tb_available(&b, 1600 * MS), 100);
	assert_int_equal(tb_available(&b, 9000 * MS), 1000);
	/* In debt, a wait for more than size still counts the debt. */
	tb_consume(&b, 1200);
	assert_int_equal(tb_wait_ns(&b, 5000, 9000 * MS), 1200 * MS);
	/* Saturating, not wrapping. */
	tb_consume(&b, UINT64_MAX);
	tb_consume(&b, UINT64_MAX);
	assert_int_equal(tb_available(&b, 9000 * MS), 0);
	assert_int_equal(tb_wait_ns(&b, 1, 9000 * MS), UINT64_MAX);
}

static void test_bucket_burst_and_unlimited(void **state)
{
	(void)state;
	struct vmm_token_bucket cfg = {.size = 100, .one_time_burst = 50, .refill_time_ms = 100};
	struct token_bucket b;

	tb_init(&b, &cfg, 0);
	assert_int_equal(tb_available(&b, 0), 150);
	tb_consume(&b, 120); /* the burst first, then 70 of the budget */
	assert_int_equal(tb_available(&b, 0), 30);
	/* Refilled to size, never with the burst again. */
	assert_int_equal(tb_available(&b, 1000 * MS), 100);

	struct token_bucket u;
	tb_init(&u, NULL, 0);
	assert_true(tb_unlimited(&u));
	assert_int_equal(tb_available(&u, 0), UINT64_MAX);
	assert_int_equal(tb_wait_ns(&u, 1 << 20, 0), 0);

	/* Huge values neither overflow nor wrap. */
	struct vmm_token_bucket big = {.size = UINT64_MAX, .refill_time_ms = UINT64_MAX};
	tb_init(&b, &big, 0);
	tb_consume(&b, UINT64_MAX);
	assert_true(tb_available(&b, UINT64_MAX / 2) < UINT64_MAX);
	assert_true(tb_wait_ns(&b, UINT64_MAX, 0) > 0);
}

static void test_bucket_config_valid(void **state)
{
	(void)state;
	assert_true(tb_config_valid(&(struct vmm_token_bucket){0}));
	assert_true(tb_config_valid(&(struct vmm_token_bucket){.size = 1, .refill_time_ms = 1}));
	assert_false(tb_config_valid(&(struct vmm_token_bucket){.size = 1}));
	assert_false(tb_config_valid(&(struct vmm_token_bucket){.refill_time_ms = 1}));
	assert_false(tb_config_valid(&(struct vmm_token_bucket){.one_time_burst = 1}));
}

static void test_limiter_allow(void **state)
{
	(void)state;
	struct vmm_rate_limiter cfg = {.bandwidth = {.size = 100, .refill_time_ms = 10},
				       .ops = {.size = 1, .refill_time_ms = 50}};
	struct rate_limiter rl;
	uint64_t wait;

	rate_limiter_init(&rl, &cfg, 0);
	assert_int_equal(rate_limiter_allow(&rl, 64, 0, &wait), 64);
	rate_limiter_consume(&rl, 64);
	/* Bytes are left, but the one op is spent: wait for the op bucket. */
	assert_int_equal(rate_limiter_allow(&rl, 64, 0, &wait), 0);
	assert_int_equal(wait, 50 * MS);
	assert_int_equal(rate_limiter_allow(&rl, 1000, 50 * MS, &wait), 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_and_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fills_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_chains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_broken_ring_and_reset, setup, teardown),
		cmocka_unit_test(test_rate_limited),
		cmocka_unit_test(test_ops_limited),
		cmocka_unit_test(test_bucket_refill),
		cmocka_unit_test(test_bucket_debt),
		cmocka_unit_test(test_bucket_burst_and_unlimited),
		cmocka_unit_test(test_bucket_config_valid),
		cmocka_unit_test(test_limiter_allow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
