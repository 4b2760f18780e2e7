/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every virtio device does to be a device of the machine (virtio/virtio_plug.c): take a
 * virtio-mmio slot, bind the transport (ioeventfd kicks, irqfd interrupt), map its window on
 * the MMIO bus; quiesce and resume its queue work on the I/O thread; describe it in the DSDT
 * (LNRO0005). Device models stay transport-agnostic; their device_ops adapters call these.
 */
#ifndef VMM_VIRTIO_PLUG_H
#define VMM_VIRTIO_PLUG_H

#include "vmm/device.h"
#include "vmm/virtio.h"
#include "vmm/virtio_mmio.h"

struct virtio_plug {
	struct virtio_device *vdev;
	struct virtio_mmio *mmio;
	struct ev_loop *loop;
	struct bus *bus;
	uint64_t base;
	unsigned int gsi;
	unsigned int slot; /* window index: the DSDT name V000 + slot and _UID */
};

/* The I/O thread a device model should use (the machine's, created on first use). */
struct ev_loop *virtio_plug_loop(const struct device_host *h, char *err, size_t errlen,
				 const char *label);
int virtio_plug(struct virtio_plug *p, struct virtio_device *vdev, struct ev_loop *loop,
		const struct device_host *h, const char *label, char *err, size_t errlen) WUR;
/* Unmap, unroute, reset the device. Safe on a zeroed or partly plugged struct. */
void virtio_unplug(struct virtio_plug *p);
int virtio_plug_quiesce(struct virtio_plug *p);
void virtio_plug_resume(struct virtio_plug *p);
/* The device's state (common virtio part, the model's own, the transport's), and back. */
int virtio_plug_save(struct virtio_plug *p, struct dev_state_writer *w);
int virtio_plug_load(struct virtio_plug *p, const struct dev_state_reader *r, char *err,
		     size_t errlen) WUR;
bool virtio_plug_describe(const struct virtio_plug *p, struct acpi_dev_desc *out);

#endif
