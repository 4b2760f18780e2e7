// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-mmio transport (virtio 1.2 §4.2.2, §3.1, §2.1) driven purely through register
 * accesses, as a guest driver would, with a tiny fake device behind it and a real I/O thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_mmio_driver.h"
#include "fake_vring.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/virtio_mmio.h"

#define RAM_SIZE  (1 * MiB)
#define BASE	  0xd0000000ULL
#define GSI	  17
#define NR_QUEUES 2
#define QMAX	  16
#define CFG_LEN	  12
#define DEV_ID	  42
#define F_DEV_A	  0 /* device-specific feature bits the fake device offers */
#define F_DEV_B	  1
#define F_REFUSED F_DEV_B /* offered, but the device refuses it in features_ok */
#define F_UNKNOWN 5	  /* never offered */

#define WAIT_MS 2000

struct fake_dev {
	struct virtio_device vdev;
	uint8_t config[CFG_LEN];

	/* Observations; `mu` because queue_notify runs on the I/O thread. */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned int notify[NR_QUEUES];
	unsigned int notify_bad_qidx;
	bool notify_on_test_thread;
	pthread_t test_thread;
	unsigned int resets, activates, features_ok_calls, config_reads, config_writes;
	uint64_t features_seen;
	int activate_ret;
	uint32_t last_write_off, last_write_len;
	uint8_t last_write[8];
};

struct fixture {
	struct guest_mem gm;
	struct ev_loop *loop;
	struct fake_dev dev;
	struct virtio_mmio *t;
	struct fake_vring ring[NR_QUEUES];
};

static struct fake_dev *fdev(struct virtio_device *vdev)
{
	return vdev->opaque;
}

static bool fd_features_ok(struct virtio_device *vdev, uint64_t f)
{
	struct fake_dev *d = fdev(vdev);

	d->features_ok_calls++;
	d->features_seen = f;
	return !(f & VIRTIO_BIT(F_REFUSED));
}

static void fd_config_read(struct virtio_device *vdev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct fake_dev *d = fdev(vdev);

	d->config_reads++;
	memcpy(data, d->config + off, len);
}

static void fd_config_write(struct virtio_device *vdev, uint32_t off, const uint8_t *data,
			    uint32_t len)
{
	struct fake_dev *d = fdev(vdev);

	d->config_writes++;
	d->last_write_off = off;
	d->last_write_len = len;
	memcpy(d->last_write, data, len);
}

static int fd_activate(struct virtio_device *vdev)
{
	struct fake_dev *d = fdev(vdev);

	d->activates++;
	return d->activate_ret;
}

static void fd_reset(struct virtio_device *vdev)
{
	fdev(vdev)->resets++;
}

static void fd_queue_notify(struct virtio_device *vdev, unsigned int qidx)
{
	struct fake_dev *d = fdev(vdev);

	pthread_mutex_lock(&d->mu);
	if (qidx < NR_QUEUES)
		d->notify[qidx]++;
	else
		d->notify_bad_qidx++;
	if (pthread_equal(pthread_self(), d->test_thread))
		d->notify_on_test_thread = true;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->mu);
}

static const struct virtio_dev_ops fake_ops = {
	.name = "fake",
	.device_id = DEV_ID,
	.features_ok = fd_features_ok,
	.config_read = fd_config_read,
	.config_write = fd_config_write,
	.activate = fd_activate,
	.reset = fd_reset,
	.queue_notify = fd_queue_notify,
};

static uint64_t good_features(struct fixture *f)
{
	return VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(F_DEV_A);
}

/* Wait until queue q has been notified at least n times. */
static bool wait_notify(struct fake_dev *d, unsigned int q, unsigned int n)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&d->mu);
	while (d->notify[q] < n) {
		if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) == ETIMEDOUT)
			break;
	}
	ok = d->notify[q] >= n;
	pthread_mutex_unlock(&d->mu);
	return ok;
}

static unsigned int notify_count(struct fake_dev *d, unsigned int q)
{
	pthread_mutex_lock(&d->mu);
	unsigned int n = d->notify[q];
	pthread_mutex_unlock(&d->mu);
	return n;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gm_create(&f->gm, RAM_SIZE), 0);
	assert_int_equal(ev_loop_create(&f->loop, THREAD_IO), 0);
	assert_int_equal(ev_loop_start(f->loop), 0);

	struct fake_dev *d = &f->dev;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	d->test_thread = pthread_self();
	for (unsigned int i = 0; i < CFG_LEN; i++)
		d->config[i] = (uint8_t)(0x10 + i);
	virtio_device_init(&d->vdev, &fake_ops, d, &f->gm, NR_QUEUES, QMAX);
	d->vdev.device_features |= VIRTIO_BIT(F_DEV_A) | VIRTIO_BIT(F_DEV_B);
	d->vdev.config_len = CFG_LEN;

	struct virtio_mmio_config cfg = {.base = BASE, .gsi = GSI, .loop = f->loop, .efd = NULL};
	assert_int_equal(virtio_mmio_create(&f->t, &d->vdev, &cfg), 0);

	for (unsigned int q = 0; q < NR_QUEUES; q++)
		fake_vring_init(&f->ring[q], &f->gm, 0x10000 + q * 0x10000ULL, 0x10000, 8);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_mmio_destroy(f->t);
	ev_loop_destroy(f->loop);
	virtio_device_fini(&f->dev.vdev);
	pthread_mutex_destroy(&f->dev.mu);
	pthread_cond_destroy(&f->dev.cv);
	gm_destroy(&f->gm);
	free(f);
	return 0;
}

/* Everything up to DRIVER_OK with both queues on the fixture's rings. */
static void full_init(struct fixture *f)
{
	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	for (unsigned int q = 0; q < NR_QUEUES; q++)
		mmio_queue_setup_ring(f->t, q, &f->ring[q]);
	mmio_driver_ok(f->t);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS),
			 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* ---- identification ---- */

static void test_identification(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_MAGIC_VALUE), 0x74726976); /* "virt" */
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_ID), DEV_ID);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_VENDOR_ID), VIRTIO_MMIO_VENDOR);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), 0);

	/* QueueNumMax per queue; 0 says "no such queue" to the driver (§4.2.3.2). */
	for (uint32_t q = 0; q < NR_QUEUES; q++) {
		mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, q);
		assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX), QMAX);
		assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 0);
	}
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, NR_QUEUES);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 0xffffffff);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);

	/* No shared memory regions: length -1 (§4.2.2), whatever SHMSel says. */
	for (uint32_t id = 0; id < 3; id++) {
		mmio_wr(f->t, VIRTIO_MMIO_SHM_SEL, id);
		assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_SHM_LEN_LOW), 0xffffffffU);
		assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_SHM_LEN_HIGH), 0xffffffffU);
	}
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_RESET), 0);
}

static void test_cmdline(void **state)
{
	struct virtio_mmio_config cfg = {.base = 0xd0001000ULL, .gsi = 17};
	char buf[64], tiny[10];

	assert_int_equal(virtio_mmio_cmdline(&cfg, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "virtio_mmio.device=4K@0xd0001000:17");
	assert_int_equal(virtio_mmio_cmdline(&cfg, tiny, sizeof(tiny)), -ENOSPC);
}

/* ---- feature negotiation (§3.1.1, §2.2) ---- */

static void test_device_features(void **state)
{
	struct fixture *f = *state;
	uint64_t offered = f->dev.vdev.device_features;

	assert_true(offered & VIRTIO_BIT(VIRTIO_F_VERSION_1));
	mmio_wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)offered);
	mmio_wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES), (uint32_t)(offered >> 32));
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES) & 1); /* VERSION_1 is bit 32 */
	mmio_wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 2);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

static void test_features_refused_without_version_1(void **state)
{
	struct fixture *f = *state;
	uint32_t st = mmio_negotiate(f->t, VIRTIO_BIT(F_DEV_A));

	assert_false(st & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(st, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	/* Queues cannot be made ready without negotiated features. */
	mmio_queue_setup_ring(f->t, 0, &f->ring[0]);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 0);
	/* Nor can the driver go live. */
	mmio_driver_ok(f->t);
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(f->dev.activates, 0);
}

static void test_features_refused_unknown_bit(void **state)
{
	struct fixture *f = *state;
	uint32_t st = mmio_negotiate(f->t, good_features(f) | VIRTIO_BIT(F_UNKNOWN));

	assert_false(st & VIRTIO_STATUS_FEATURES_OK);
	/* A bit above 32 that is not offered either. */
	st = mmio_negotiate(f->t, good_features(f) | VIRTIO_BIT(40));
	assert_false(st & VIRTIO_STATUS_FEATURES_OK);
}

static void test_features_refused_by_device(void **state)
{
	struct fixture *f = *state;
	uint64_t want = good_features(f) | VIRTIO_BIT(F_REFUSED);
	uint32_t st = mmio_negotiate(f->t, want);

	assert_false(st & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(f->dev.features_ok_calls, 1);
	assert_true(f->dev.features_seen == want);

	/* Still DRIVER without FEATURES_OK: the driver may try another subset (§3.1.1 note). */
	mmio_wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mmio_wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)good_features(f));
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_FEATURES_OK);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK);
	assert_true(f->dev.features_seen == good_features(f));
}

static void test_features_accepted_then_frozen(void **state)
{
	struct fixture *f = *state;
	uint64_t want = good_features(f) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	uint32_t st = mmio_negotiate(f->t, want);

	assert_true(st & VIRTIO_STATUS_FEATURES_OK);
	assert_true(f->dev.vdev.driver_features == want);
	assert_true(f->dev.features_seen == want);

	/* After FEATURES_OK the driver can no longer change them. */
	mmio_wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mmio_wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	mmio_wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES, 0);
	assert_true(f->dev.vdev.driver_features == want);
}

static void test_features_need_driver_bit(void **state)
{
	struct fixture *f = *state;

	/* DriverFeatures before DRIVER is ignored... */
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	mmio_wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES, 1);
	assert_true(f->dev.vdev.driver_features == 0);
	/* ...and FEATURES_OK without DRIVER is not kept. */
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), VIRTIO_STATUS_ACKNOWLEDGE);
}

/* ---- status ---- */

static void test_status_bits_never_cleared(void **state)
{
	struct fixture *f = *state;

	full_init(f);
	unsigned int resets = f->dev.resets;
	uint32_t st = mmio_rd(f->t, VIRTIO_MMIO_STATUS);
	/* §2.1.2: the driver MUST NOT clear a bit; such a write changes nothing. */
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), st);
	assert_int_equal(f->dev.resets, resets);
	assert_true(f->dev.vdev.vq[0].enabled);
	/* FAILED is recorded. */
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, st | VIRTIO_STATUS_FAILED);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), st | VIRTIO_STATUS_FAILED);
	assert_int_equal(f->dev.activates, 1);
}

static void test_activate_failure_needs_reset(void **state)
{
	struct fixture *f = *state;

	f->dev.activate_ret = -EIO;
	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, 0, &f->ring[0]);
	mmio_driver_ok(f->t);
	uint32_t st = mmio_rd(f->t, VIRTIO_MMIO_STATUS);
	assert_true(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(f->dev.activates, 1);
	/* Announced to the running driver as a config change (§2.1.2). */
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	assert_true(mmio_irq_take(f->t, WAIT_MS) >= 1);
	/* A driver writing back what it read does not clear NEEDS_RESET. */
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, st);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* Kicks are not delivered to a device that needs a reset. */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	usleep(100 * 1000);
	assert_int_equal(notify_count(&f->dev, 0), 0);
	/* Reset clears it. */
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), 0);
}

/* ---- queues ---- */

static void test_queue_setup_good(void **state)
{
	struct fixture *f = *state;
	struct virtqueue *vq = &f->dev.vdev.vq[1];

	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, 1, &f->ring[1]);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_true(vq->enabled);
	assert_int_equal(vq->size, f->ring[1].size);
	assert_true(vq->desc_gpa == f->ring[1].desc_gpa);
	assert_true(vq->avail_gpa == f->ring[1].avail_gpa);
	assert_true(vq->used_gpa == f->ring[1].used_gpa);
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);

	/* While ready, size and addresses are frozen (§4.2.2). */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NUM, 4);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_DESC_LOW, 0x20000);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 1);
	assert_int_equal(vq->size, f->ring[1].size);
	assert_true(vq->desc_gpa == f->ring[1].desc_gpa);
	assert_true(vq->used_gpa == f->ring[1].used_gpa);

	/* Queue 0 is untouched. */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 0);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 0);

	/* QueueReady 0 takes the queue down; the driver may then set it up again. */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 1);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(vq->enabled);
	mmio_queue_setup_ring(f->t, 1, &f->ring[0]);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_true(vq->enabled);
	assert_true(vq->desc_gpa == f->ring[0].desc_gpa);
}

struct bad_queue {
	const char *what;
	uint32_t size;
	uint64_t desc, avail, used;
};

static void test_queue_setup_bad(void **state)
{
	struct fixture *f = *state;
	const struct fake_vring *r = &f->ring[0];
	const struct bad_queue cases[] = {
		{"size 0", 0, r->desc_gpa, r->avail_gpa, r->used_gpa},
		{"size not a power of 2", 6, r->desc_gpa, r->avail_gpa, r->used_gpa},
		{"size above QueueNumMax", QMAX * 2, r->desc_gpa, r->avail_gpa, r->used_gpa},
		{"size beyond 16 bits", 0x10008, r->desc_gpa, r->avail_gpa, r->used_gpa},
		{"desc misaligned", 8, r->desc_gpa + 8, r->avail_gpa, r->used_gpa},
		{"avail misaligned", 8, r->desc_gpa, r->avail_gpa + 1, r->used_gpa},
		{"used misaligned", 8, r->desc_gpa, r->avail_gpa, r->used_gpa + 2},
		{"desc outside RAM", 8, RAM_SIZE, r->avail_gpa, r->used_gpa},
		{"avail straddles the end of RAM", 8, r->desc_gpa, RAM_SIZE - 8, r->used_gpa},
		{"used far above RAM", 8, r->desc_gpa, r->avail_gpa, 0xfffffffffffff000ULL},
		{"used wraps around", 8, r->desc_gpa, r->avail_gpa, 0xfffffffffffffff0ULL},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct bad_queue *c = &cases[i];

		assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
		mmio_queue_setup(f->t, 0, c->size, c->desc, c->avail, c->used);
		uint32_t st = mmio_rd(f->t, VIRTIO_MMIO_STATUS);
		if (!(st & VIRTIO_STATUS_DEVICE_NEEDS_RESET))
			fail_msg("%s: status 0x%x without NEEDS_RESET", c->what, st);
		assert_false(f->dev.vdev.vq[0].enabled);
		/* No config interrupt yet: the driver is not running (before DRIVER_OK). */
		assert_int_equal(mmio_irq_take(f->t, 0), 0);
		/* DRIVER_OK on a device needing a reset does not activate it, and the now running
		 * driver is told with a config interrupt (§2.1.2) instead of facing a dead device. */
		mmio_driver_ok(f->t);
		assert_int_equal(f->dev.activates, 0);
		assert_int_not_equal(mmio_irq_take(f->t, 1000), 0);
		assert_true(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	}
	/* A reset and a good setup after all that. */
	full_init(f);
	assert_true(f->dev.vdev.vq[0].enabled);
	assert_int_equal(f->dev.activates, 1);
}

static void test_queue_bad_after_driver_ok(void **state)
{
	struct fixture *f = *state;

	/* Only queue 0 before DRIVER_OK; a broken queue 1 afterwards. */
	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, 0, &f->ring[0]);
	mmio_driver_ok(f->t);
	mmio_irq_take(f->t, 0);
	mmio_queue_setup(f->t, 1, 8, 0x10008, f->ring[1].avail_gpa, f->ring[1].used_gpa);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG);
	assert_int_equal(mmio_irq_take(f->t, WAIT_MS), 1);
}

/*
 * A queue made ready after DRIVER_OK is activated then (the device sets up what it needs for
 * it) and looked at once; if the device refuses, NEEDS_RESET. Found by the micro-guest's
 * blk-hostile-queue-after-driver-ok case: virtio-blk took the requests and never completed
 * them (its request slots are set up by activate, which only DRIVER_OK called).
 */
static void test_queue_ready_after_driver_ok(void **state)
{
	struct fixture *f = *state;

	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, 0, &f->ring[0]);
	mmio_driver_ok(f->t);
	assert_int_equal(f->dev.activates, 1);
	assert_true(wait_notify(&f->dev, 0, 1));
	mmio_queue_setup_ring(f->t, 1, &f->ring[1]);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);
	assert_int_equal(f->dev.activates, 2);
	assert_true(wait_notify(&f->dev, 1, 1));
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	/* Taken down and made ready again: the same. */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_READY, 0);
	mmio_queue_setup_ring(f->t, 1, &f->ring[1]);
	assert_int_equal(f->dev.activates, 3);
	assert_true(wait_notify(&f->dev, 1, 2));
	/* The device refusing the late queue: NEEDS_RESET, announced to the running driver. */
	mmio_irq_take(f->t, 0);
	f->dev.activate_ret = -ENOMEM;
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_READY, 0);
	mmio_queue_setup_ring(f->t, 1, &f->ring[1]);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	/* Before DRIVER_OK nothing is activated early. */
	f->dev.activate_ret = 0;
	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	unsigned int before = f->dev.activates;
	mmio_queue_setup_ring(f->t, 0, &f->ring[0]);
	assert_int_equal(f->dev.activates, before);
}

static void test_queue_registers_out_of_range(void **state)
{
	struct fixture *f = *state;

	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, NR_QUEUES, &f->ring[0]);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 0);
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	for (unsigned int q = 0; q < NR_QUEUES; q++)
		assert_false(f->dev.vdev.vq[q].ready);
}

/* ---- notifications ---- */

static void test_queue_notify_on_loop_thread(void **state)
{
	struct fixture *f = *state;

	full_init(f);
	/* DRIVER_OK kicks each ready queue once (kicks before it are dropped, not lost). */
	assert_true(wait_notify(&f->dev, 0, 1));
	assert_true(wait_notify(&f->dev, 1, 1));
	unsigned int n0 = notify_count(&f->dev, 0), n1 = notify_count(&f->dev, 1);

	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_true(wait_notify(&f->dev, 1, n1 + 1));
	assert_int_equal(notify_count(&f->dev, 0), n0);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	assert_true(wait_notify(&f->dev, 0, n0 + 1));

	/* A queue index that does not exist goes nowhere. */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, NR_QUEUES);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0xffff);
	usleep(50 * 1000);
	pthread_mutex_lock(&f->dev.mu);
	assert_int_equal(f->dev.notify_bad_qidx, 0);
	assert_false(f->dev.notify_on_test_thread);
	pthread_mutex_unlock(&f->dev.mu);
}

static void test_kick_before_driver_ok(void **state)
{
	struct fixture *f = *state;

	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, 0, &f->ring[0]);
	/* The device is not live yet: the kick must not reach it... */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	usleep(100 * 1000);
	assert_int_equal(notify_count(&f->dev, 0), 0);
	/* ...but once it is, it looks at the queue, and only the enabled one. */
	mmio_driver_ok(f->t);
	assert_true(wait_notify(&f->dev, 0, 1));
	usleep(50 * 1000);
	assert_int_equal(notify_count(&f->dev, 1), 0);
}

/* ---- interrupts ---- */

static void test_interrupts(void **state)
{
	struct fixture *f = *state;
	struct virtio_device *vdev = &f->dev.vdev;

	full_init(f);
	uint32_t gen = mmio_rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(mmio_irq_take(f->t, 0), 0);

	pthread_mutex_lock(&vdev->lock);
	vdev->transport->notify_queue(vdev, 1);
	pthread_mutex_unlock(&vdev->lock);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_USED);
	assert_int_equal(mmio_irq_take(f->t, WAIT_MS), 1);

	pthread_mutex_lock(&vdev->lock);
	vdev->transport->notify_config(vdev);
	pthread_mutex_unlock(&vdev->lock);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS),
			 VIRTIO_INT_USED | VIRTIO_INT_CONFIG);
	assert_int_equal(mmio_irq_take(f->t, WAIT_MS), 1);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);

	/* ACK clears only the bits written. */
	mmio_wr(f->t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG);
	mmio_wr(f->t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_CONFIG);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* The driver cannot set bits through ACK. */
	mmio_wr(f->t, VIRTIO_MMIO_INTERRUPT_ACK, 0);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	/* Writes to InterruptStatus (read-only) do nothing either. */
	mmio_wr(f->t, VIRTIO_MMIO_INTERRUPT_STATUS, 3);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

static void test_config_change_before_driver_ok(void **state)
{
	struct fixture *f = *state;
	struct virtio_device *vdev = &f->dev.vdev;

	uint32_t gen = mmio_rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION);
	pthread_mutex_lock(&vdev->lock);
	vdev->transport->notify_config(vdev);
	pthread_mutex_unlock(&vdev->lock);
	/* The generation moves so a driver reading the config sees it; no interrupt yet. */
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION), gen + 1);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(mmio_irq_take(f->t, 50), 0);
}

/* ---- config space ---- */

static void test_config_access(void **state)
{
	struct fixture *f = *state;
	const uint8_t *c = f->dev.config;
	uint64_t want;

	/* Every width at every offset that fits reads the device's bytes, little endian. */
	for (uint32_t len = 1; len <= 8; len *= 2) {
		for (uint32_t off = 0; off + len <= CFG_LEN; off++) {
			want = 0;
			memcpy(&want, c + off, len);
			assert_true(mmio_cfg_rd(f->t, off, len) == want);
		}
	}
	unsigned int reads = f->dev.config_reads;

	/* Past the end, partly or wholly: 0, and the device is not asked. */
	assert_true(mmio_cfg_rd(f->t, CFG_LEN - 2, 4) == 0);
	assert_true(mmio_cfg_rd(f->t, CFG_LEN - 4, 8) == 0);
	assert_true(mmio_cfg_rd(f->t, CFG_LEN, 1) == 0);
	assert_true(mmio_cfg_rd(f->t, VIRTIO_MMIO_SIZE - VIRTIO_MMIO_CONFIG - 1, 1) == 0);
	/* Widths other than 1/2/4/8. */
	assert_true(mmio_cfg_rd(f->t, 0, 3) == 0);
	assert_true(mmio_cfg_rd(f->t, 0, 6) == 0);
	assert_int_equal(f->dev.config_reads, reads);

	/* Writes reach the device with their offset and bytes. */
	uint8_t w[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + 2, w, 2, true);
	assert_int_equal(f->dev.config_writes, 1);
	assert_int_equal(f->dev.last_write_off, 2);
	assert_int_equal(f->dev.last_write_len, 2);
	assert_memory_equal(f->dev.last_write, w, 2);
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + 4, w, 8, true);
	assert_int_equal(f->dev.config_writes, 2);
	assert_int_equal(f->dev.last_write_len, 8);
	assert_memory_equal(f->dev.last_write, w, 8);
	/* ...unless they do not fit. */
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + CFG_LEN - 1, w, 2, true);
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + 0, w, 5, true);
	assert_int_equal(f->dev.config_writes, 2);
}

static void test_config_none(void **state)
{
	struct fixture *f = *state;

	f->dev.vdev.config_len = 0;
	assert_true(mmio_cfg_rd(f->t, 0, 1) == 0);
	assert_int_equal(f->dev.config_reads, 0);
}

/* ---- bad accesses ---- */

static void test_bad_register_accesses(void **state)
{
	struct fixture *f = *state;
	uint8_t b[8];

	/* Reads of another width or misaligned read 0 (here: the magic value). */
	memset(b, 0xa5, sizeof(b));
	virtio_mmio_io(f->t, VIRTIO_MMIO_MAGIC_VALUE, b, 1, false);
	assert_int_equal(b[0], 0);
	memset(b, 0xa5, sizeof(b));
	virtio_mmio_io(f->t, VIRTIO_MMIO_MAGIC_VALUE, b, 2, false);
	assert_int_equal(b[0] | b[1], 0);
	memset(b, 0xa5, sizeof(b));
	virtio_mmio_io(f->t, VIRTIO_MMIO_MAGIC_VALUE, b, 8, false);
	for (int i = 0; i < 8; i++)
		assert_int_equal(b[i], 0);
	memset(b, 0xa5, sizeof(b));
	virtio_mmio_io(f->t, VIRTIO_MMIO_MAGIC_VALUE + 2, b, 4, false);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);

	/* Writes of another width or misaligned change nothing. */
	uint32_t ack = VIRTIO_STATUS_ACKNOWLEDGE;
	memcpy(b, &ack, 4);
	virtio_mmio_io(f->t, VIRTIO_MMIO_STATUS, b, 1, true);
	virtio_mmio_io(f->t, VIRTIO_MMIO_STATUS, b, 2, true);
	virtio_mmio_io(f->t, VIRTIO_MMIO_STATUS + 1, b, 4, true);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), 0);
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, ack);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), ack);
	/* A status above 8 bits is not a status. */
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0x100 | ack | VIRTIO_STATUS_DRIVER);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), ack);

	/* Read-only registers ignore writes. */
	mmio_wr(f->t, VIRTIO_MMIO_MAGIC_VALUE, 0);
	mmio_wr(f->t, VIRTIO_MMIO_VERSION, 1);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX, 1);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_MAGIC_VALUE), VIRTIO_MMIO_MAGIC);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_VERSION), 2);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX), QMAX);

	/* Write-only and undefined registers read 0. */
	const uint64_t wo[] = {VIRTIO_MMIO_QUEUE_NOTIFY,
			       VIRTIO_MMIO_DRIVER_FEATURES,
			       VIRTIO_MMIO_QUEUE_DESC_LOW,
			       VIRTIO_MMIO_INTERRUPT_ACK,
			       0x018,
			       0x0f8};
	for (size_t i = 0; i < ARRAY_SIZE(wo); i++)
		assert_int_equal(mmio_rd(f->t, wo[i]), 0);
	/* Nothing of that reached the device. */
	assert_int_equal(f->dev.resets, 0);
	assert_int_equal(f->dev.config_reads, 0);
}

/* ---- reset ---- */

/* Every register the driver can read, in a fixed order, with QueueSel as it is. */
static const uint64_t readable[] = {
	VIRTIO_MMIO_MAGIC_VALUE, VIRTIO_MMIO_VERSION,	       VIRTIO_MMIO_DEVICE_ID,
	VIRTIO_MMIO_VENDOR_ID,	 VIRTIO_MMIO_DEVICE_FEATURES,  VIRTIO_MMIO_QUEUE_NUM_MAX,
	VIRTIO_MMIO_QUEUE_READY, VIRTIO_MMIO_INTERRUPT_STATUS, VIRTIO_MMIO_STATUS,
	VIRTIO_MMIO_SHM_LEN_LOW, VIRTIO_MMIO_SHM_LEN_HIGH,     VIRTIO_MMIO_QUEUE_RESET,
};

static void snapshot(struct fixture *f, uint32_t *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(readable); i++)
		out[i] = mmio_rd(f->t, readable[i]);
}

static void test_reset_and_reinit(void **state)
{
	struct fixture *f = *state;
	struct virtio_device *vdev = &f->dev.vdev;
	uint32_t initial[ARRAY_SIZE(readable)], after[ARRAY_SIZE(readable)];

	snapshot(f, initial);
	uint32_t gen0 = mmio_rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION);

	full_init(f);
	assert_true(wait_notify(&f->dev, 1, 1));
	/* Leave every selector and the interrupt status somewhere else. */
	pthread_mutex_lock(&vdev->lock);
	vdev->transport->notify_queue(vdev, 0);
	vdev->transport->notify_config(vdev);
	pthread_mutex_unlock(&vdev->lock);
	mmio_wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	mmio_wr(f->t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 1);
	snapshot(f, after);
	assert_memory_not_equal(initial, after, sizeof(initial));

	unsigned int resets = f->dev.resets;
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(f->dev.resets, resets + 1);
	snapshot(f, after);
	for (size_t i = 0; i < ARRAY_SIZE(readable); i++) {
		if (after[i] != initial[i])
			fail_msg("register 0x%03llx: 0x%x after reset, 0x%x at start",
				 (unsigned long long)readable[i], after[i], initial[i]);
	}
	/* Queue 1 too, and the device state behind the registers. */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 1);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 0);
	for (unsigned int q = 0; q < NR_QUEUES; q++)
		assert_false(vdev->vq[q].ready || vdev->vq[q].enabled);
	assert_true(vdev->driver_features == 0);
	/* The generation is never reset: a driver comparing it must see a change. */
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION) != gen0);

	/* A second initialisation (kexec, driver reload) on other rings works. */
	struct fake_vring r2;
	fake_vring_init(&r2, &f->gm, 0x80000, 0x10000, 4);
	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	assert_int_equal(f->dev.resets, resets + 2); /* mmio_negotiate writes 0 first */
	mmio_queue_setup_ring(f->t, 1, &r2);
	mmio_driver_ok(f->t);
	assert_int_equal(f->dev.activates, 2);
	assert_true(vdev->vq[1].enabled);
	assert_true(vdev->vq[1].desc_gpa == r2.desc_gpa);
	assert_int_equal(vdev->vq[1].size, 4);
	unsigned int n = notify_count(&f->dev, 1);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
	assert_true(wait_notify(&f->dev, 1, n + 1));
}

static void test_queue_num_defaults_to_max(void **state)
{
	struct fixture *f = *state;

	/* A driver that never writes QueueNum gets QueueNumMax (as virtio-pci's queue_size). */
	assert_true(mmio_negotiate(f->t, good_features(f)) & VIRTIO_STATUS_FEATURES_OK);
	struct fake_vring big;
	fake_vring_init(&big, &f->gm, 0x40000, 0x10000, QMAX);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 0);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)big.desc_gpa);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)big.avail_gpa);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)big.used_gpa);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_READY, 1);
	assert_true(f->dev.vdev.vq[0].enabled);
	assert_int_equal(f->dev.vdev.vq[0].size, QMAX);
}

/* ---- routes and unwinding ---- */

#define MAX_ROUTES 8

struct fake_routes {
	int fail_ioeventfd_at; /* 0-based call index that fails, -1 never */
	int fail_irqfd;
	int ioeventfd_calls;
	struct {
		uint64_t addr;
		uint32_t len;
		uint64_t datamatch;
		int fd;
		bool live;
	} io[MAX_ROUTES];
	unsigned int nr_io;
	int irq_fd;
	unsigned int irq_gsi;
	bool irq_live;
	int io_unassign_unknown;
};

static int fr_ioeventfd(void *opaque, uint64_t addr, uint32_t len, uint64_t datamatch, int fd,
			bool assign)
{
	struct fake_routes *r = opaque;

	if (assign) {
		if (r->ioeventfd_calls++ == r->fail_ioeventfd_at)
			return -ENOSPC;
		assert_true(r->nr_io < MAX_ROUTES);
		r->io[r->nr_io].addr = addr;
		r->io[r->nr_io].len = len;
		r->io[r->nr_io].datamatch = datamatch;
		r->io[r->nr_io].fd = fd;
		r->io[r->nr_io].live = true;
		r->nr_io++;
		return 0;
	}
	for (unsigned int i = 0; i < r->nr_io; i++) {
		if (r->io[i].live && r->io[i].fd == fd && r->io[i].addr == addr &&
		    r->io[i].datamatch == datamatch && r->io[i].len == len) {
			r->io[i].live = false;
			return 0;
		}
	}
	r->io_unassign_unknown++;
	return -ENOENT;
}

static int fr_irqfd(void *opaque, unsigned int gsi, int fd, bool assign)
{
	struct fake_routes *r = opaque;

	if (assign) {
		if (r->fail_irqfd)
			return -EBUSY;
		r->irq_fd = fd;
		r->irq_gsi = gsi;
		r->irq_live = true;
		return 0;
	}
	assert_int_equal(fd, r->irq_fd);
	assert_int_equal(gsi, r->irq_gsi);
	r->irq_live = false;
	return 0;
}

static unsigned int live_io(const struct fake_routes *r)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < r->nr_io; i++)
		n += r->io[i].live;
	return n;
}

static void test_routes(void **state)
{
	struct fixture *f = *state;
	struct fake_routes r = {.fail_ioeventfd_at = -1};
	struct vm_eventfd_ops ops = {.ioeventfd = fr_ioeventfd, .irqfd = fr_irqfd, .opaque = &r};
	struct virtio_mmio_config cfg = {
		.base = BASE + 0x1000, .gsi = 23, .loop = f->loop, .efd = &ops};
	struct fake_dev d2 = {0};
	struct virtio_mmio *t2;

	virtio_device_init(&d2.vdev, &fake_ops, &d2, &f->gm, NR_QUEUES, QMAX);
	assert_int_equal(virtio_mmio_create(&t2, &d2.vdev, &cfg), 0);
	assert_int_equal(r.nr_io, NR_QUEUES);
	for (unsigned int q = 0; q < NR_QUEUES; q++) {
		/* QueueNotify of this window, 4 bytes, the queue index as datamatch (§4.2.2). */
		assert_true(r.io[q].addr == cfg.base + VIRTIO_MMIO_QUEUE_NOTIFY);
		assert_int_equal(r.io[q].len, 4);
		assert_true(r.io[q].datamatch == q);
		assert_true(r.io[q].fd >= 0);
		assert_true(r.io[q].fd != r.io[(q + 1) % NR_QUEUES].fd);
	}
	assert_true(r.irq_live);
	assert_int_equal(r.irq_gsi, 23);
	assert_int_equal(r.irq_fd, virtio_mmio_irq_fd(t2));
	assert_true(d2.vdev.transport != NULL);

	virtio_mmio_destroy(t2);
	assert_int_equal(live_io(&r), 0);
	assert_int_equal(r.io_unassign_unknown, 0);
	assert_false(r.irq_live);
	assert_null(d2.vdev.transport);
	virtio_device_fini(&d2.vdev);
}

static void test_create_unwinds(void **state)
{
	struct fixture *f = *state;

	for (int fail_at = 0; fail_at <= NR_QUEUES; fail_at++) {
		struct fake_routes r = {.fail_ioeventfd_at = fail_at < NR_QUEUES ? fail_at : -1,
					.fail_irqfd = fail_at == NR_QUEUES};
		struct vm_eventfd_ops ops = {
			.ioeventfd = fr_ioeventfd, .irqfd = fr_irqfd, .opaque = &r};
		struct virtio_mmio_config cfg = {
			.base = BASE, .gsi = 5, .loop = f->loop, .efd = &ops};
		struct fake_dev d2 = {0};
		struct virtio_mmio *t2 = NULL;

		virtio_device_init(&d2.vdev, &fake_ops, &d2, &f->gm, NR_QUEUES, QMAX);
		assert_true(virtio_mmio_create(&t2, &d2.vdev, &cfg) < 0);
		assert_int_equal(live_io(&r), 0);
		assert_int_equal(r.io_unassign_unknown, 0);
		assert_false(r.irq_live);
		assert_null(d2.vdev.transport);
		virtio_device_fini(&d2.vdev);
	}

	/* Misaligned base and a missing loop are refused outright. */
	struct fake_dev d3 = {0};
	struct virtio_mmio *t3 = NULL;
	struct virtio_mmio_config bad = {.base = BASE + 0x10, .loop = f->loop};
	virtio_device_init(&d3.vdev, &fake_ops, &d3, &f->gm, NR_QUEUES, QMAX);
	assert_int_equal(virtio_mmio_create(&t3, &d3.vdev, &bad), -EINVAL);
	bad = (struct virtio_mmio_config){.base = BASE, .loop = NULL};
	assert_int_equal(virtio_mmio_create(&t3, &d3.vdev, &bad), -EINVAL);
	virtio_device_fini(&d3.vdev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identification, setup, teardown),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test_setup_teardown(test_device_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_refused_without_version_1, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_features_refused_unknown_bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_refused_by_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_features_accepted_then_frozen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_features_need_driver_bit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_bits_never_cleared, setup, teardown),
		cmocka_unit_test_setup_teardown(test_activate_failure_needs_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_setup_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_setup_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_bad_after_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_ready_after_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_registers_out_of_range, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_notify_on_loop_thread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kick_before_driver_ok, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_change_before_driver_ok, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_config_access, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_none, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_register_accesses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_and_reinit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_num_defaults_to_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_unwinds, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
