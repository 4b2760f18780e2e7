// SPDX-License-Identifier: Apache-2.0
/*
 * The transport-independent part of a virtio device (virtio 1.2 §2, §3): initial state, used
 * buffer notifications, and the way out when the guest broke a ring beyond repair.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/devices.h"
#include "vmm/state.h"
#include "vmm/virtio.h"

/* QueueNumMax when the device model does not choose one. */
#define VIRTIO_DEFAULT_QUEUE_SIZE 256

void virtio_device_init(struct virtio_device *vdev, const struct virtio_dev_ops *ops, void *opaque,
			const struct guest_mem *gm, unsigned int nr_queues, uint16_t queue_max_size)
{
	memset(vdev, 0, sizeof(*vdev));
	pthread_mutex_init(&vdev->lock, NULL);
	vdev->ops = ops;
	vdev->opaque = opaque;
	vdev->gm = gm;
	vdev->nr_queues = MIN(nr_queues, (unsigned int)VIRTIO_MAX_QUEUES);

	/* §2.7: a power of 2, at most 32768. Round a bad request down rather than fail. */
	uint32_t qmax = queue_max_size ? queue_max_size : VIRTIO_DEFAULT_QUEUE_SIZE;
	if (qmax > VQ_MAX_SIZE)
		qmax = VQ_MAX_SIZE;
	while (qmax & (qmax - 1))
		qmax &= qmax - 1;
	vdev->queue_max_size = (uint16_t)qmax;

	/* What every device offers: §6 VERSION_1 is mandatory for a non-legacy device. */
	vdev->device_features = VIRTIO_BIT(VIRTIO_F_VERSION_1) |
				VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX);

	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		vdev->vq[i].gm = gm;
		vq_reset(&vdev->vq[i]);
	}
}

void virtio_device_fini(struct virtio_device *vdev)
{
	for (unsigned int i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vq_reset(&vdev->vq[i]);
	pthread_mutex_destroy(&vdev->lock);
}

void virtio_queue_notify_driver(struct virtio_device *vdev, unsigned int qidx)
{
	if (qidx >= vdev->nr_queues)
		return;
	if (!vq_should_notify(&vdev->vq[qidx]))
		return;
	if (vdev->transport && vdev->transport->notify_queue)
		vdev->transport->notify_queue(vdev, qidx);
}

void virtio_device_quiesce(struct virtio_device *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->quiesced = true;
	if (vdev->ops->quiesce)
		vdev->ops->quiesce(vdev);
	pthread_mutex_unlock(&vdev->lock);
}

void virtio_device_resume(struct virtio_device *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->quiesced = false;
	/* Kicks that came while quiesced were not delivered: look at every queue once. */
	if ((vdev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
	    VIRTIO_STATUS_DRIVER_OK) {
		for (unsigned int i = 0; i < vdev->nr_queues; i++) {
			if (vdev->vq[i].enabled && !vdev->vq[i].broken && vdev->ops->queue_notify)
				vdev->ops->queue_notify(vdev, i);
		}
	}
	pthread_mutex_unlock(&vdev->lock);
}

/* One queue in the state: fixed widths, little-endian (x86 only, like the rest). */
struct vq_saved {
	uint64_t desc, avail, used;
	uint16_t size, last_avail, used_idx, signalled_used;
	uint8_t ready, enabled, broken, signalled_used_valid;
	uint8_t pad[4];
} PACKED;

void virtio_device_save(struct virtio_device *vdev, struct dev_state_writer *w)
{
	struct vq_saved q[VIRTIO_MAX_QUEUES];
	uint8_t config[256];
	uint32_t u32;

	memset(q, 0, sizeof(q));
	u32 = vdev->ops->device_id;
	dev_state_put(w, "device-id", &u32, sizeof(u32));
	dev_state_put(w, "device-features", &vdev->device_features, sizeof(uint64_t));
	dev_state_put(w, "driver-features", &vdev->driver_features, sizeof(uint64_t));
	u32 = vdev->status;
	dev_state_put(w, "status", &u32, sizeof(u32));
	dev_state_put(w, "config-generation", &vdev->config_generation, sizeof(uint32_t));
	/* The config space as the driver would read it: compared on load (same image size...). */
	if (vdev->config_len <= sizeof(config) && vdev->ops->config_read) {
		vdev->ops->config_read(vdev, 0, config, vdev->config_len);
		dev_state_put(w, "config", config, vdev->config_len);
	}
	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		const struct virtqueue *vq = &vdev->vq[i];

		q[i] = (struct vq_saved){
			.desc = vq->desc_gpa, .avail = vq->avail_gpa, .used = vq->used_gpa,
			.size = vq->size, .last_avail = vq->last_avail, .used_idx = vq->used_idx,
			.signalled_used = vq->signalled_used, .ready = vq->ready,
			.enabled = vq->enabled, .broken = vq->broken,
			.signalled_used_valid = vq->signalled_used_valid,
		};
	}
	dev_state_put(w, "queues", q, vdev->nr_queues * sizeof(q[0]));
	if (vdev->ops->save)
		vdev->ops->save(vdev, w);
}

int virtio_device_load(struct virtio_device *vdev, const struct dev_state_reader *r, char *err,
		       size_t errlen)
{
	const char *name = vdev->ops->name;
	struct vq_saved q[VIRTIO_MAX_QUEUES];
	uint64_t dev_f, drv_f;
	uint32_t id, status, gen;
	uint8_t config[256], mine[256];
	size_t qlen = vdev->nr_queues * sizeof(q[0]);

	if (dev_state_get(r, "device-id", &id, sizeof(id)) < 0 ||
	    dev_state_get(r, "device-features", &dev_f, sizeof(dev_f)) < 0 ||
	    dev_state_get(r, "driver-features", &drv_f, sizeof(drv_f)) < 0 ||
	    dev_state_get(r, "status", &status, sizeof(status)) < 0 ||
	    dev_state_get(r, "config-generation", &gen, sizeof(gen)) < 0) {
		snprintf(err, errlen, "%s: its virtio state is incomplete", name);
		return -EINVAL;
	}
	if (id != vdev->ops->device_id) {
		snprintf(err, errlen, "%s: the state is of virtio device type %u", name, id);
		return -EINVAL;
	}
	if (dev_f != vdev->device_features) {
		snprintf(err, errlen, "%s: offered features differ (state 0x%llx, now 0x%llx)", name,
			 (unsigned long long)dev_f, (unsigned long long)vdev->device_features);
		return -EINVAL;
	}
	if ((drv_f & ~dev_f) || status > 0xff || (status & VIRTIO_STATUS_FAILED)) {
		snprintf(err, errlen, "%s: driver features or status impossible", name);
		return -EINVAL;
	}
	if (vdev->ops->config_read && vdev->config_len <= sizeof(config)) {
		if (dev_state_get(r, "config", config, vdev->config_len) < 0) {
			snprintf(err, errlen, "%s: config space missing or of another size", name);
			return -EINVAL;
		}
		vdev->ops->config_read(vdev, 0, mine, vdev->config_len);
		if (memcmp(config, mine, vdev->config_len)) {
			snprintf(err, errlen, "%s: its configuration differs from the state's (its "
				 "image resized or replaced?)", name);
			return -EINVAL;
		}
	}
	if (dev_state_get(r, "queues", q, qlen) < 0) {
		snprintf(err, errlen, "%s: queue state missing or for another number of queues",
			 name);
		return -EINVAL;
	}
	vdev->device_features = dev_f;
	vdev->driver_features = drv_f;
	vdev->status = (uint8_t)status;
	vdev->config_generation = gen;
	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		struct virtqueue *vq = &vdev->vq[i];

		vq_reset(vq);
		vq->size = q[i].size;
		vq->desc_gpa = q[i].desc;
		vq->avail_gpa = q[i].avail;
		vq->used_gpa = q[i].used;
		vq->ready = q[i].ready != 0;
		if (!q[i].enabled)
			continue;
		/* The rings are checked as when the driver made the queue ready. */
		if (!vq->ready ||
		    vq_enable(vq, vdev->gm, vdev->queue_max_size,
			      virtio_has_feature(vdev, VIRTIO_F_EVENT_IDX),
			      virtio_has_feature(vdev, VIRTIO_F_INDIRECT_DESC)) < 0) {
			snprintf(err, errlen, "%s: queue %u: its ring is not in guest RAM", name, i);
			return -EINVAL;
		}
		vq->last_avail = q[i].last_avail;
		vq->used_idx = q[i].used_idx;
		vq->broken = q[i].broken != 0;
		/* Signal at the first chance: an interrupt owed at the pause is not lost. */
		vq->signalled_used_valid = false;
	}
	if (vdev->ops->load && vdev->ops->load(vdev, r, err, errlen) < 0)
		return -EINVAL;
	if ((vdev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
		    VIRTIO_STATUS_DRIVER_OK &&
	    vdev->ops->activate && vdev->ops->activate(vdev) < 0) {
		snprintf(err, errlen, "%s: cannot activate it", name);
		return -ENOMEM;
	}
	return 0;
}

void virtio_device_fail(struct virtio_device *vdev, const char *why)
{
	vdev->malformed++;
	dev_log_ratelimited(&vdev->rl, "%s: %s (%llu time%s)",
			    vdev->ops && vdev->ops->name ? vdev->ops->name : "virtio",
			    why ? why : "device error", (unsigned long long)vdev->malformed,
			    vdev->malformed == 1 ? "" : "s");

	/*
	 * §2.1.2: the device is in an error state until the driver resets it. The caller does
	 * not say which queue, so stop them all: nothing more is consumed or completed.
	 */
	for (unsigned int i = 0; i < vdev->nr_queues; i++)
		if (vdev->vq[i].enabled)
			vdev->vq[i].broken = true;

	if (vdev->transport && vdev->transport->needs_reset)
		vdev->transport->needs_reset(vdev);
}
