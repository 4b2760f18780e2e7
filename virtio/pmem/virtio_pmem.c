// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-pmem (virtio 1.2 §5.19): config space { le64 start; le64 size; }, request queue 0.
 * A request is { le32 type } (device-readable) then { le32 ret } (device-writable); the only
 * type is FLUSH, answered 0 when the file's data is on stable storage, non-zero otherwise.
 *
 * A flush is an fdatasync(2) of the file, which can take seconds when the guest wrote much
 * through DAX. It runs asynchronously, as an io_uring IORING_OP_FSYNC (the kernel's workers
 * block, not the I/O thread that serves every other device too), and the requests it answers
 * are completed when it ends; those that come meanwhile wait in the ring for the next one
 * (each must cover what was written before it). Without io_uring (or a loop: tests, fuzzing)
 * the flush is synchronous.
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/devices.h"
#include "vmm/virtio_pmem.h"

#define VPMEM_REQQ    0
#define VPMEM_CFG_LEN 16
/* Requests taken per kick (the queue's size), and the segments one may have (2 in Linux). */
#define VPMEM_BATCH   VIRTIO_PMEM_QUEUE_SIZE
#define VPMEM_REQ_IOV 8

enum vpmem_kind { VPMEM_BAD, VPMEM_FLUSH, VPMEM_UNKNOWN };

struct vpmem_req {
	struct vq_elem elem;
	struct iovec iov[VPMEM_REQ_IOV];
	enum vpmem_kind kind;
};

struct virtio_pmem {
	struct virtio_device vdev;
	int fd;
	bool read_only;
	uint64_t start, size;
	struct ev_loop *loop;
	struct io_uring ring;  /* the asynchronous flush (have_ring) */
	bool have_ring;
	unsigned int ring_watch;

	/* vdev->lock */
	struct vpmem_req req[VPMEM_BATCH];
	unsigned int inflight; /* req[0 .. inflight) wait for the flush in flight */
	bool inflight_broken;  /* and the ring turned out malformed after them */
	bool kicked;           /* a kick came meanwhile: the ring is looked at again after */
	uint64_t flushes, flush_errors;
	struct dev_ratelimit rl;
};

static struct virtio_pmem *vpmem_of(struct virtio_device *vdev)
{
	return vdev->opaque;
}

static void vpmem_config_read(struct virtio_device *vdev, uint32_t offset, uint8_t *data,
			      uint32_t len)
{
	struct virtio_pmem *p = vpmem_of(vdev);
	uint8_t cfg[VPMEM_CFG_LEN];

	/* Little-endian, as the host: start then size. */
	memcpy(cfg, &p->start, 8);
	memcpy(cfg + 8, &p->size, 8);
	memcpy(data, cfg + offset, len);
}

static void vpmem_config_write(struct virtio_device *vdev, uint32_t offset, const uint8_t *data,
			       uint32_t len)
{
	(void)vdev, (void)offset, (void)data, (void)len; /* read-only (§5.19.4) */
}

/* The flush's outcome (fdatasync's 0 or -errno) as the answer: 0 when the data is stable. */
static uint32_t vpmem_result(struct virtio_pmem *p, int r)
{
	if (r == 0)
		return 0;
	p->flush_errors++;
	dev_log_ratelimited(&p->rl, "virtio-pmem: flush: %s", strerror(-r));
	return 1;
}

static uint32_t vpmem_flush_sync(struct virtio_pmem *p)
{
	int r;

	while ((r = fdatasync(p->fd) < 0 ? -errno : 0) == -EINTR)
		;
	return vpmem_result(p, r);
}

/* Start the flush on the ring: true when it runs (it ends in vpmem_reap). */
static bool vpmem_flush_async(struct virtio_pmem *p)
{
	struct io_uring_sqe *sqe;

	if (!p->have_ring || !(sqe = io_uring_get_sqe(&p->ring)))
		return false;
	io_uring_prep_fsync(sqe, p->fd, IORING_FSYNC_DATASYNC);
	if (io_uring_submit(&p->ring) == 1)
		return true;
	/* Not taken (the sqe stays queued for the next submit: none comes, the ring is only
	 * ever used here), so the flush is done here. */
	p->have_ring = false;
	return false;
}

/* Answer req[0 .. nr): the flushes with flushed, the others with an error (or empty). */
static void vpmem_complete(struct virtio_pmem *p, unsigned int nr, uint32_t flushed, bool broken)
{
	struct virtio_device *vdev = &p->vdev;
	struct virtqueue *vq = &vdev->vq[VPMEM_REQQ];

	for (unsigned int i = 0; i < nr; i++) {
		struct vpmem_req *q = &p->req[i];
		uint32_t ret = q->kind == VPMEM_FLUSH ? flushed : 1;

		if (q->kind == VPMEM_BAD) {
			vq_push(vq, q->elem.head, 0);
			continue;
		}
		iov_from_buf(q->elem.iov + q->elem.out_num, q->elem.in_num, 0, &ret, sizeof(ret));
		vq_push(vq, q->elem.head, sizeof(ret));
	}
	if (nr)
		virtio_queue_notify_driver(vdev, VPMEM_REQQ);
	if (broken)
		virtio_device_fail(vdev, "malformed request ring");
}

/*
 * The flush in flight ended (wait: block until it does). Its requests are answered, unless a
 * reset dropped them meanwhile, and a kick that came during it is served now.
 */
static void vpmem_reap(struct virtio_pmem *p, bool wait)
{
	struct io_uring_cqe *cqe;
	int r;

	do
		r = wait ? io_uring_wait_cqe(&p->ring, &cqe) : io_uring_peek_cqe(&p->ring, &cqe);
	while (r == -EINTR);
	if (r < 0)
		return;
	r = cqe->res;
	io_uring_cqe_seen(&p->ring, cqe);
	if (!p->inflight)
		return;
	unsigned int nr = p->inflight;

	p->inflight = 0;
	vpmem_complete(p, nr, vpmem_result(p, r), p->inflight_broken);
	if (p->kicked && !p->vdev.quiesced) {
		p->kicked = false;
		p->vdev.ops->queue_notify(&p->vdev, VPMEM_REQQ);
	}
}

/* The ring has a completion (I/O thread). */
static void vpmem_ring_ready(void *opaque)
{
	struct virtio_pmem *p = opaque;

	pthread_mutex_lock(&p->vdev.lock);
	vpmem_reap(p, false);
	pthread_mutex_unlock(&p->vdev.lock);
}

/*
 * Take every request there is, then sync once for all the flushes among them (each asks that
 * what was written before it be stable: one fdatasync after they all arrived covers them).
 * While a flush is in flight the ring is left alone: what comes meanwhile needs a flush that
 * starts after it.
 */
static void vpmem_queue_notify(struct virtio_device *vdev, unsigned int qidx)
{
	struct virtio_pmem *p = vpmem_of(vdev);
	struct virtqueue *vq = &vdev->vq[VPMEM_REQQ];
	unsigned int nr = 0, flushes = 0;
	bool broken = false;

	if (qidx != VPMEM_REQQ || !vq->enabled || vq->broken || vdev->quiesced)
		return;
	if (p->inflight) {
		p->kicked = true;
		return;
	}
	while (nr < VPMEM_BATCH) {
		struct vpmem_req *q = &p->req[nr];
		int r;

		q->elem = (struct vq_elem){.iov = q->iov, .iov_cap = VPMEM_REQ_IOV};
		r = vq_pop_or_arm(vq, &q->elem);
		if (r == 0)
			break;
		if (r == -EIO) {
			broken = true;
			break;
		}
		uint32_t type;
		if (r < 0 || q->elem.out_len < sizeof(type) || q->elem.in_len < sizeof(uint32_t)) {
			/* Malformed, or no room for the answer: complete it empty. */
			vdev->malformed++;
			q->kind = VPMEM_BAD;
		} else {
			iov_to_buf(q->elem.iov, q->elem.out_num, 0, &type, sizeof(type));
			q->kind = type == VIRTIO_PMEM_REQ_TYPE_FLUSH ? VPMEM_FLUSH : VPMEM_UNKNOWN;
			if (q->kind == VPMEM_FLUSH)
				flushes++;
			else
				vdev->malformed++;
		}
		nr++;
	}
	p->flushes += flushes;
	if (flushes && !p->read_only && vpmem_flush_async(p)) {
		p->inflight = nr;
		p->inflight_broken = broken;
		return;
	}
	vpmem_complete(p, nr, flushes && !p->read_only ? vpmem_flush_sync(p) : 0, broken);
	/* Stopped at the batch with more waiting: the driver kicks again when it sees the used
	 * entries (its requests wait for them), so nothing is left behind. */
}

static int vpmem_activate(struct virtio_device *vdev)
{
	(void)vdev;
	return 0;
}

/* The driver reset the device (lock held): a flush in flight is waited for, its requests
 * dropped with the rings they came from. */
static void vpmem_reset(struct virtio_device *vdev)
{
	struct virtio_pmem *p = vpmem_of(vdev);

	p->kicked = false;
	if (p->inflight) {
		p->inflight = 0;
		vpmem_reap(p, true);
	}
}

/* The VM pauses (I/O thread, lock held): the flush in flight ends and is answered. */
static void vpmem_quiesce(struct virtio_device *vdev)
{
	struct virtio_pmem *p = vpmem_of(vdev);

	if (p->inflight)
		vpmem_reap(p, true);
}

static const struct virtio_dev_ops vpmem_ops = {
	.name = "virtio-pmem",
	.device_id = VIRTIO_ID_PMEM,
	.config_read = vpmem_config_read,
	.config_write = vpmem_config_write,
	.activate = vpmem_activate,
	.reset = vpmem_reset,
	.queue_notify = vpmem_queue_notify,
	.quiesce = vpmem_quiesce,
};

int virtio_pmem_create(struct virtio_pmem **out, const struct guest_mem *gm,
		       struct ev_loop *loop, int fd, uint64_t start, uint64_t size, bool read_only)
{
	struct virtio_pmem *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->loop = loop;
	/* A read-only device's flush does nothing; without io_uring the flush is synchronous. */
	if (loop && !read_only && io_uring_queue_init(2, &p->ring, 0) == 0) {
		p->have_ring = true;
		if (!(p->ring_watch = ev_loop_add_fd(loop, p->ring.ring_fd, vpmem_ring_ready, p))) {
			io_uring_queue_exit(&p->ring);
			free(p);
			return -ENOMEM;
		}
	}
	p->fd = fd;
	p->start = start;
	p->size = size;
	p->read_only = read_only;
	virtio_device_init(&p->vdev, &vpmem_ops, p, gm, 1, VIRTIO_PMEM_QUEUE_SIZE);
	p->vdev.device_features |= VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
				   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	p->vdev.config_len = VPMEM_CFG_LEN;
	*out = p;
	return 0;
}

struct virtio_device *virtio_pmem_device(struct virtio_pmem *p)
{
	return &p->vdev;
}

void virtio_pmem_stats(struct virtio_pmem *p, char *buf, size_t len)
{
	pthread_mutex_lock(&p->vdev.lock);
	snprintf(buf, len, "flushes=%llu flush_errors=%llu malformed=%llu",
		 (unsigned long long)p->flushes, (unsigned long long)p->flush_errors,
		 (unsigned long long)p->vdev.malformed);
	pthread_mutex_unlock(&p->vdev.lock);
}

/* On the I/O thread, so that the ring's callback is not running meanwhile. */
static void vpmem_unwatch_sync(void *opaque)
{
	struct virtio_pmem *p = opaque;

	ev_loop_remove_fd(p->loop, p->ring_watch);
	p->ring_watch = 0;
}

void virtio_pmem_destroy(struct virtio_pmem *p)
{
	if (!p)
		return;
	if (p->ring_watch)
		ev_loop_call_sync(p->loop, vpmem_unwatch_sync, p);
	if (p->have_ring) {
		/* A flush still in flight ends before the ring does (and the file is closed). */
		pthread_mutex_lock(&p->vdev.lock);
		if (p->inflight) {
			p->inflight = 0;
			vpmem_reap(p, true);
		}
		pthread_mutex_unlock(&p->vdev.lock);
		io_uring_queue_exit(&p->ring);
	}
	virtio_device_fini(&p->vdev);
	free(p);
}
