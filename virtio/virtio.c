// SPDX-License-Identifier: Apache-2.0
/*
 * The transport-independent part of a virtio device (virtio 1.2 §2, §3): initial state, used
 * buffer notifications, and the way out when the guest broke a ring beyond repair.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/devices.h"
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
