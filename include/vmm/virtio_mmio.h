/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-mmio transport, version 2 registers only (virtio 1.2 §4.2.2; no legacy). One 4 KiB
 * window per device in the MMIO hole, announced in the ACPI DSDT as LNRO0005 with a memory
 * and an interrupt resource. QueueNotify is an ioeventfd per queue (datamatch = queue index),
 * so a kick never exits to userspace; the interrupt is an irqfd. Both eventfds are watched by /
 * written from the I/O thread; register accesses arrive on vCPU threads through the MMIO bus.
 */
#ifndef VMM_VIRTIO_MMIO_H
#define VMM_VIRTIO_MMIO_H

#include "vmm/event_loop.h"
#include "vmm/platform.h"
#include "vmm/virtio.h"

#define VIRTIO_MMIO_SIZE  0x1000
#define VIRTIO_MMIO_MAGIC 0x74726976 /* "virt" */
#define VIRTIO_MMIO_VENDOR 0x00564d4d /* "MMV\0": vmm */

/* §4.2.2 register offsets */
#define VIRTIO_MMIO_MAGIC_VALUE         0x000
#define VIRTIO_MMIO_VERSION             0x004
#define VIRTIO_MMIO_DEVICE_ID           0x008
#define VIRTIO_MMIO_VENDOR_ID           0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES     0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES     0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL           0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX       0x034
#define VIRTIO_MMIO_QUEUE_NUM           0x038
#define VIRTIO_MMIO_QUEUE_READY         0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY        0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS    0x060
#define VIRTIO_MMIO_INTERRUPT_ACK       0x064
#define VIRTIO_MMIO_STATUS              0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW      0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH     0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW    0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH   0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW    0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH   0x0a4
#define VIRTIO_MMIO_SHM_SEL             0x0ac
#define VIRTIO_MMIO_SHM_LEN_LOW         0x0b0
#define VIRTIO_MMIO_SHM_LEN_HIGH        0x0b4
#define VIRTIO_MMIO_SHM_BASE_LOW        0x0b8
#define VIRTIO_MMIO_SHM_BASE_HIGH       0x0bc
#define VIRTIO_MMIO_QUEUE_RESET         0x0c0
#define VIRTIO_MMIO_CONFIG_GENERATION   0x0fc
#define VIRTIO_MMIO_CONFIG              0x100

struct virtio_mmio;

struct virtio_mmio_config {
	uint64_t base;                     /* guest physical, VIRTIO_MMIO_SIZE aligned */
	unsigned int gsi;                  /* IOAPIC input, edge */
	struct ev_loop *loop;              /* I/O thread that serves the queue kicks */
	const struct vm_eventfd_ops *efd;  /* KVM routes; NULL or NULL members: none */
};

/*
 * Bind a transport to an initialised device: create the interrupt eventfd and one notify
 * eventfd per queue, route them (irqfd, ioeventfd) and watch the notify eventfds on the loop.
 * Register the window yourself: bus_register(mmio, base, VIRTIO_MMIO_SIZE, virtio_mmio_io, t).
 */
int virtio_mmio_create(struct virtio_mmio **out, struct virtio_device *vdev,
		       const struct virtio_mmio_config *cfg) WUR;
/* Unroute and close the eventfds, reset the device. Call after the vCPUs and the loop stopped. */
void virtio_mmio_destroy(struct virtio_mmio *t);
/* The MMIO bus handler (vCPU threads). Only aligned 4-byte accesses to registers; the config
 * space also takes 1, 2 and 8 bytes. Anything else reads 0 / is ignored, and is counted. */
void virtio_mmio_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* The transport's registers in a snapshot (vdev->lock held); load raises a pending interrupt
 * again. */
struct dev_state_writer;
struct dev_state_reader;
void virtio_mmio_save(struct virtio_mmio *t, struct dev_state_writer *w);
int virtio_mmio_load(struct virtio_mmio *t, const struct dev_state_reader *r, char *err,
		     size_t errlen) WUR;

/* For tests: the eventfd the transport writes to interrupt the guest. */
int virtio_mmio_irq_fd(const struct virtio_mmio *t);
/* The kernel command-line form, for kernels built with VIRTIO_MMIO_CMDLINE_DEVICES:
 * "virtio_mmio.device=4K@0xd0000000:16". */
int virtio_mmio_cmdline(const struct virtio_mmio_config *cfg, char *buf, size_t len);

#endif
