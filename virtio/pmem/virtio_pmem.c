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
#define VPMEM_IOV_MAX VIRTIO_PMEM_QUEUE_SIZE
#define VPMEM_CFG_LEN 16

struct virtio_pmem {
	struct virtio_device vdev;
	int fd;
	bool read_only;
	uint64_t start, size;

	/* vdev->lock */
	struct iovec iov[VPMEM_IOV_MAX];
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

static void vpmem_queue_notify(struct virtio_device *vdev, unsigned int qidx)
{
	struct virtio_pmem *p = vpmem_of(vdev);
	struct virtqueue *vq = &vdev->vq[VPMEM_REQQ];
	bool pushed = false;

	if (qidx != VPMEM_REQQ || !vq->enabled || vq->broken || vdev->quiesced)
		return;
	for (;;) {
		struct vq_elem elem = {.iov = p->iov, .iov_cap = VPMEM_IOV_MAX};
		int r = vq_pop(vq, &elem);

		if (r == 0) {
			vq_set_notification(vq, true);
			if (vq_has_avail(vq))
				continue;
			break;
		}
		if (r == -EIO) {
			virtio_device_fail(vdev, "malformed request ring");
			break;
		}
		uint32_t type, ret, used = 0;
		if (r < 0 || elem.out_len < sizeof(type) || elem.in_len < sizeof(ret)) {
			/* Malformed, or no room for the answer: complete it empty. */
			vdev->malformed++;
		} else {
			iov_to_buf(elem.iov, elem.out_num, 0, &type, sizeof(type));
			ret = type == VIRTIO_PMEM_REQ_TYPE_FLUSH ? vpmem_flush(p) : 1;
			if (type != VIRTIO_PMEM_REQ_TYPE_FLUSH)
				vdev->malformed++;
			iov_from_buf(elem.iov + elem.out_num, elem.in_num, 0, &ret, sizeof(ret));
			used = sizeof(ret);
		}
		vq_push(vq, elem.head, used);
		pushed = true;
	}
	if (pushed)
		virtio_queue_notify_driver(vdev, VPMEM_REQQ);
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
