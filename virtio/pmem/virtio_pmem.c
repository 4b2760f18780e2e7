// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-pmem (virtio 1.2 §5.19): config space { le64 start; le64 size; }, request queue 0.
 * A request is { le32 type } (device-readable) then { le32 ret } (device-writable); the only
 * type is FLUSH, answered 0 when the file's data is on stable storage, non-zero otherwise.
 */
#include <errno.h>
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

	/* vdev->lock */
	struct vpmem_req req[VPMEM_BATCH];
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

/* 0: the file's data reached stable storage. */
static uint32_t vpmem_flush(struct virtio_pmem *p)
{
	p->flushes++;
	if (p->read_only)
		return 0;
	while (fdatasync(p->fd) < 0) {
		if (errno == EINTR)
			continue;
		p->flush_errors++;
		dev_log_ratelimited(&p->rl, "virtio-pmem: flush: %s", strerror(errno));
		return 1;
	}
	return 0;
}

/*
 * Take every request there is, then sync once for all the flushes among them (each asks that
 * what was written before it be stable: one fdatasync after they all arrived covers them).
 */
static void vpmem_queue_notify(struct virtio_device *vdev, unsigned int qidx)
{
	struct virtio_pmem *p = vpmem_of(vdev);
	struct virtqueue *vq = &vdev->vq[VPMEM_REQQ];
	unsigned int nr = 0, flushes = 0;
	bool broken = false;

	if (qidx != VPMEM_REQQ || !vq->enabled || vq->broken || vdev->quiesced)
		return;
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
	uint32_t flushed = flushes ? vpmem_flush(p) : 0;
	p->flushes += flushes ? flushes - 1 : 0; /* vpmem_flush counted one */
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
	/* Stopped at the batch with more waiting: the driver kicks again when it sees the used
	 * entries (its requests wait for them), so nothing is left behind. */
}

static int vpmem_activate(struct virtio_device *vdev)
{
	(void)vdev;
	return 0;
}

static void vpmem_reset(struct virtio_device *vdev)
{
	(void)vdev; /* nothing in flight between two callbacks */
}

static const struct virtio_dev_ops vpmem_ops = {
	.name = "virtio-pmem",
	.device_id = VIRTIO_ID_PMEM,
	.config_read = vpmem_config_read,
	.config_write = vpmem_config_write,
	.activate = vpmem_activate,
	.reset = vpmem_reset,
	.queue_notify = vpmem_queue_notify,
};

int virtio_pmem_create(struct virtio_pmem **out, const struct guest_mem *gm, int fd,
		       uint64_t start, uint64_t size, bool read_only)
{
	struct virtio_pmem *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
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

void virtio_pmem_destroy(struct virtio_pmem *p)
{
	if (!p)
		return;
	virtio_device_fini(&p->vdev);
	free(p);
}
