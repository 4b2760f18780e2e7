// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-rng (virtio 1.2 §5.4): requestq is queue 0, no feature bits of its own, no config
 * space. Each chain's writable part gets up to VIRTIO_RNG_REQ_MAX bytes of getrandom(2),
 * written straight into guest RAM; a chain with nothing writable is completed empty.
 * Everything runs under vdev->lock: kicks on the I/O thread, the rate limit's timer there too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/ratelimit.h"
#include "vmm/virtio_rng.h"

#define VRNG_REQQ    0
#define VRNG_IOV_MAX VIRTIO_RNG_QUEUE_SIZE
/*
 * Bytes served per callback before the queue yields the I/O thread (to the disks and console
 * that share it) and comes back by its timer: a guest that keeps the ring full cannot hold it.
 */
#define VRNG_BATCH   (1024 * 1024)

struct virtio_rng {
	struct virtio_device vdev;
	struct ev_loop *loop;

	/* vdev->lock */
	bool limited;
	struct rate_limiter rl;
	int timer_fd;
	unsigned int timer_watch;
	bool waiting;              /* the timer is armed: the queue waits for tokens or its turn */
	struct iovec iov[VRNG_IOV_MAX];
	uint64_t bytes, requests, throttled;
};

static struct virtio_rng *vrng_of(struct virtio_device *vdev)
{
	return vdev->opaque;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static bool vrng_running(const struct virtio_device *vdev)
{
	return (vdev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
	       VIRTIO_STATUS_DRIVER_OK;
}

/* Up to max bytes of randomness into the writable segments; the count written. */
static uint32_t vrng_fill(const struct iovec *iov, unsigned int cnt, uint64_t max)
{
	uint64_t done = 0;

	for (unsigned int i = 0; i < cnt && done < max; i++) {
		uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		if (left > max - done)
			left = max - done;
		while (left) {
			/* Never wait on the I/O thread: a pool not yet initialised gives less. */
			ssize_t n = getrandom(p, left, GRND_NONBLOCK);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				return (uint32_t)done;
			p += n;
			left -= (size_t)n;
			done += (uint64_t)n;
		}
	}
	return (uint32_t)done;
}

/* Serve the queue again in ns (at least 1). */
static void vrng_wait(struct virtio_rng *r, uint64_t ns)
{
	struct itimerspec its = {0};

	if (ns == 0)
		ns = 1;
	its.it_value.tv_sec = (time_t)(ns / 1000000000ULL);
	its.it_value.tv_nsec = (long)(ns % 1000000000ULL);
	if (timerfd_settime(r->timer_fd, 0, &its, NULL) == 0)
		r->waiting = true;
}

/* Serve the requestq until it is empty or the rate limit says wait. Lock held. */
static void vrng_serve(struct virtio_rng *r)
{
	struct virtio_device *vdev = &r->vdev;
	struct virtqueue *vq = &vdev->vq[VRNG_REQQ];
	bool pushed = false;
	uint64_t served = 0;

	if (!vrng_running(vdev) || !vq->enabled || vq->broken || vdev->quiesced || r->waiting)
		return;
	for (;;) {
		uint64_t allow = VIRTIO_RNG_REQ_MAX, wait = 0;

		if (!vq_has_avail(vq)) {
			/* Ask for a kick on the next buffer, then look once more (§2.7.10). */
			vq_set_notification(vq, true);
			if (!vq_has_avail(vq))
				break;
		}
		if (served >= VRNG_BATCH) {
			vrng_wait(r, 1);
			break;
		}
		if (r->limited &&
		    (allow = rate_limiter_allow(&r->rl, VIRTIO_RNG_REQ_MAX, now_ns(), &wait)) == 0) {
			vrng_wait(r, wait);
			r->throttled++;
			break;
		}

		struct vq_elem elem = {.iov = r->iov, .iov_cap = VRNG_IOV_MAX};
		int rc = vq_pop(vq, &elem);

		if (rc == 0)
			continue;
		if (rc == -EIO) {
			virtio_device_fail(vdev, "malformed requestq ring");
			break;
		}
		uint32_t n = 0;
		if (rc < 0 || elem.in_num == 0) {
			vdev->malformed++; /* malformed, or nothing to write into: complete it empty */
		} else if ((n = vrng_fill(elem.iov + elem.out_num, elem.in_num, allow)) == 0) {
			/* §5.4.6.2: at least one byte. The host's pool is not ready yet (early
			 * boot): the buffer waits in the ring and we try again in 10 ms. */
			vq_unpop(vq, 1);
			vrng_wait(r, 10 * 1000 * 1000);
			break;
		}
		vq_push(vq, elem.head, n);
		pushed = true;
		r->requests++;
		r->bytes += n;
		served += n + 1; /* an empty completion counts too */
		if (r->limited)
			rate_limiter_consume(&r->rl, n);
	}
	if (pushed)
		virtio_queue_notify_driver(vdev, VRNG_REQQ);
}

/* The rate limit's timer (I/O thread): tokens are there again. */
static void vrng_timer(void *opaque)
{
	struct virtio_rng *r = opaque;
	uint64_t expirations;

	if (read(r->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&r->vdev.lock);
	r->waiting = false;
	vrng_serve(r);
	pthread_mutex_unlock(&r->vdev.lock);
}

static void vrng_queue_notify(struct virtio_device *vdev, unsigned int qidx)
{
	if (qidx == VRNG_REQQ)
		vrng_serve(vrng_of(vdev));
}

static int vrng_activate(struct virtio_device *vdev)
{
	(void)vdev;
	return 0; /* the queue is looked at when kicked; the transport kicks it once now */
}

static void vrng_reset(struct virtio_device *vdev)
{
	struct virtio_rng *r = vrng_of(vdev);

	/* A timer that already fired finds a device that is not running and does nothing. */
	if (r->waiting) {
		struct itimerspec off = {0};

		(void)timerfd_settime(r->timer_fd, 0, &off, NULL);
		r->waiting = false;
	}
}

static const struct virtio_dev_ops vrng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.activate = vrng_activate,
	.reset = vrng_reset,
	.queue_notify = vrng_queue_notify,
};

static bool limit_set(const struct vmm_rate_limiter *rl)
{
	return rl && (rl->bandwidth.size || rl->ops.size);
}

int virtio_rng_create(struct virtio_rng **out, const struct guest_mem *gm, struct ev_loop *loop,
		      const struct vmm_rate_limiter *rl)
{
	struct virtio_rng *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->loop = loop;
	if (limit_set(rl)) {
		r->limited = true;
		rate_limiter_init(&r->rl, rl, now_ns());
	}
	r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (r->timer_fd < 0 || !(r->timer_watch = ev_loop_add_fd(loop, r->timer_fd, vrng_timer, r))) {
		int e = r->timer_fd < 0 ? -errno : -ENOMEM;

		if (r->timer_fd >= 0)
			close(r->timer_fd);
		free(r);
		return e;
	}
	virtio_device_init(&r->vdev, &vrng_ops, r, gm, 1, VIRTIO_RNG_QUEUE_SIZE);
	r->vdev.device_features |= VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
				   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	r->vdev.config_len = 0;
	*out = r;
	return 0;
}

struct virtio_device *virtio_rng_device(struct virtio_rng *r)
{
	return &r->vdev;
}

void virtio_rng_stats(struct virtio_rng *r, char *buf, size_t len)
{
	pthread_mutex_lock(&r->vdev.lock);
	snprintf(buf, len, "bytes=%llu requests=%llu throttled=%llu malformed=%llu",
		 (unsigned long long)r->bytes, (unsigned long long)r->requests,
		 (unsigned long long)r->throttled, (unsigned long long)r->vdev.malformed);
	pthread_mutex_unlock(&r->vdev.lock);
}

void virtio_rng_destroy(struct virtio_rng *r)
{
	if (!r)
		return;
	/* Waits for a running callback: after it, the timer cannot touch r. */
	if (r->timer_watch)
		ev_loop_remove_fd(r->loop, r->timer_watch);
	close(r->timer_fd);
	virtio_device_fini(&r->vdev);
	free(r);
}
