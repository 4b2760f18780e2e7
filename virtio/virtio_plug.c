// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/layout.h"
#include "vmm/virtio_plug.h"

struct ev_loop *virtio_plug_loop(const struct device_host *h, char *err, size_t errlen,
				 const char *label)
{
	struct ev_loop *l = h->io_loop ? h->io_loop(h->opaque) : NULL;

	if (!l)
		snprintf(err, errlen, "%s: cannot start the I/O thread", label);
	return l;
}

int virtio_plug(struct virtio_plug *p, struct virtio_device *vdev, struct ev_loop *loop,
		const struct device_host *h, const char *label, char *err, size_t errlen)
{
	struct virtio_mmio_config mc = { .loop = loop, .efd = h->efd };
	int r;

	memset(p, 0, sizeof(*p));
	p->vdev = vdev;
	p->loop = loop;
	if ((r = h->virtio_slot(h->opaque, &mc.base, &mc.gsi)) < 0) {
		snprintf(err, errlen, "%s: no virtio-mmio slot left (at most %d virtio devices)",
			 label, LAYOUT_VIRTIO_MAX_DEVS);
		return r;
	}
	p->base = mc.base;
	p->gsi = mc.gsi;
	p->slot = (unsigned int)((mc.base - LAYOUT_VIRTIO_MMIO) / VIRTIO_MMIO_SIZE);
	if ((r = virtio_mmio_create(&p->mmio, vdev, &mc)) < 0) {
		snprintf(err, errlen, "%s: virtio-mmio transport: %s", label, strerror(-r));
		return r;
	}
	if ((r = bus_register(h->mmio, mc.base, VIRTIO_MMIO_SIZE, virtio_mmio_io, p->mmio,
			      vdev->ops->name)) < 0) {
		snprintf(err, errlen, "%s: MMIO window at 0x%llx: %s", label,
			 (unsigned long long)mc.base, strerror(-r));
		virtio_mmio_destroy(p->mmio);
		p->mmio = NULL;
		return r;
	}
	p->bus = h->mmio;
	return 0;
}

void virtio_unplug(struct virtio_plug *p)
{
	if (p->bus)
		bus_unregister(p->bus, p->mmio);
	p->bus = NULL;
	if (p->mmio)
		virtio_mmio_destroy(p->mmio);
	p->mmio = NULL;
}

static void quiesce_cb(void *opaque)
{
	virtio_device_quiesce(opaque);
}

static void resume_cb(void *opaque)
{
	virtio_device_resume(opaque);
}

int virtio_plug_quiesce(struct virtio_plug *p)
{
	/* On the I/O thread: no queue callback or poll phase runs meanwhile. */
	ev_loop_call_sync(p->loop, quiesce_cb, p->vdev);
	return 0;
}

void virtio_plug_resume(struct virtio_plug *p)
{
	ev_loop_call_sync(p->loop, resume_cb, p->vdev);
}

int virtio_plug_save(struct virtio_plug *p, struct dev_state_writer *w)
{
	pthread_mutex_lock(&p->vdev->lock);
	virtio_device_save(p->vdev, w);
	virtio_mmio_save(p->mmio, w);
	pthread_mutex_unlock(&p->vdev->lock);
	return 0;
}

int virtio_plug_load(struct virtio_plug *p, const struct dev_state_reader *r, char *err,
		     size_t errlen)
{
	int e;

	pthread_mutex_lock(&p->vdev->lock);
	e = virtio_device_load(p->vdev, r, err, errlen);
	if (e == 0)
		e = virtio_mmio_load(p->mmio, r, err, errlen);
	pthread_mutex_unlock(&p->vdev->lock);
	return e;
}

bool virtio_plug_describe(const struct virtio_plug *p, struct acpi_dev_desc *out)
{
	acpi_desc_virtio_mmio(out, p->slot, p->base, VIRTIO_MMIO_SIZE, p->gsi);
	return true;
}
