/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The register side of a fake virtio-mmio driver for unit tests: every access goes through
 * virtio_mmio_io() as a vCPU's would, in the order of virtio 1.2 §3.1.1 and §4.2.3.
 * Header-only so that each virtio test executable can use it without a build change.
 */
#ifndef VMM_TEST_FAKE_MMIO_DRIVER_H
#define VMM_TEST_FAKE_MMIO_DRIVER_H

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake_vring.h"
#include "vmm/virtio_mmio.h"

static inline uint32_t mmio_rd(struct virtio_mmio *t, uint64_t off)
{
	uint8_t b[4] = {0xa5, 0xa5, 0xa5, 0xa5};
	uint32_t v;

	virtio_mmio_io(t, off, b, 4, false);
	memcpy(&v, b, 4);
	return v;
}

static inline void mmio_wr(struct virtio_mmio *t, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	memcpy(b, &v, 4);
	virtio_mmio_io(t, off, b, 4, true);
}

/* Config space access of len bytes (1, 2, 4, 8), little endian. */
static inline uint64_t mmio_cfg_rd(struct virtio_mmio *t, uint32_t off, uint32_t len)
{
	uint8_t b[8];
	uint64_t v = 0;

	memset(b, 0xa5, sizeof(b));
	virtio_mmio_io(t, VIRTIO_MMIO_CONFIG + off, b, len, false);
	memcpy(&v, b, len);
	return v;
}

/*
 * §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK. Returns the status the
 * driver reads back (FEATURES_OK missing: refused).
 */
static inline uint32_t mmio_negotiate(struct virtio_mmio *t, uint64_t features)
{
	mmio_wr(t, VIRTIO_MMIO_STATUS, 0);
	mmio_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	mmio_wr(t, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	mmio_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	mmio_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)features);
	mmio_wr(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	mmio_wr(t, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(features >> 32));
	mmio_wr(t, VIRTIO_MMIO_STATUS, mmio_rd(t, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_FEATURES_OK);
	return mmio_rd(t, VIRTIO_MMIO_STATUS);
}

/* §4.2.3.2: size and the three ring addresses of queue q, then QueueReady. */
static inline void mmio_queue_setup(struct virtio_mmio *t, uint32_t q, uint32_t size, uint64_t desc,
				    uint64_t avail, uint64_t used)
{
	mmio_wr(t, VIRTIO_MMIO_QUEUE_SEL, q);
	mmio_wr(t, VIRTIO_MMIO_QUEUE_NUM, size);
	mmio_wr(t, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	mmio_wr(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
	mmio_wr(t, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	mmio_wr(t, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
	mmio_wr(t, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	mmio_wr(t, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
	mmio_wr(t, VIRTIO_MMIO_QUEUE_READY, 1);
}

static inline void mmio_queue_setup_ring(struct virtio_mmio *t, uint32_t q,
					 const struct fake_vring *r)
{
	mmio_queue_setup(t, q, r->size, r->desc_gpa, r->avail_gpa, r->used_gpa);
}

static inline void mmio_driver_ok(struct virtio_mmio *t)
{
	mmio_wr(t, VIRTIO_MMIO_STATUS, mmio_rd(t, VIRTIO_MMIO_STATUS) | VIRTIO_STATUS_DRIVER_OK);
}

/* Interrupts signalled on the irq eventfd since the last call, waiting up to timeout_ms. */
static inline uint64_t mmio_irq_take(struct virtio_mmio *t, int timeout_ms)
{
	struct pollfd pfd = {.fd = virtio_mmio_irq_fd(t), .events = POLLIN};
	uint64_t n = 0;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	if (read(pfd.fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static inline int64_t test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Next used element, waiting up to timeout_ms for the I/O thread to return it. */
static inline bool wait_used(struct fake_vring *r, uint32_t *id, uint32_t *len, int timeout_ms)
{
	int64_t end = test_now_ms() + timeout_ms;

	do {
		if (fake_vring_get_used(r, id, len))
			return true;
		usleep(1000);
	} while (test_now_ms() < end);
	return false;
}

#endif
