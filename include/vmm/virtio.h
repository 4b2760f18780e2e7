/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What every virtio device shares, independent of the transport (virtio 1.2 §2, §3): status,
 * features, queues, config space. A device model (virtio_blk.c, virtio_console.c) fills in a
 * struct virtio_dev_ops; a transport (virtio_mmio.c now, virtio-pci later) owns the register
 * layout and calls the ops. Devices never see transport registers.
 *
 * Threads and locking: transport register accesses arrive on vCPU threads, queue work and
 * backend completions on an I/O thread (struct ev_loop). Both hold vdev->lock while they touch
 * device or queue state; every op below is called with vdev->lock held.
 */
#ifndef VMM_VIRTIO_H
#define VMM_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>

#include "vmm/compiler.h"
#include "vmm/devices.h"
#include "vmm/guest_mem.h"
#include "vmm/virtqueue.h"

/* §2.1 Device Status Field */
#define VIRTIO_STATUS_ACKNOWLEDGE        1
#define VIRTIO_STATUS_DRIVER             2
#define VIRTIO_STATUS_DRIVER_OK          4
#define VIRTIO_STATUS_FEATURES_OK        8
#define VIRTIO_STATUS_DEVICE_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED             128

/* §6 Reserved feature bits (bit numbers) */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define VIRTIO_F_ACCESS_PLATFORM 33 /* never offered: no IOMMU */

#define VIRTIO_BIT(b) (1ULL << (b))

/* §5 Device IDs */
#define VIRTIO_ID_NET     1
#define VIRTIO_ID_BLOCK   2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG     4
#define VIRTIO_ID_VSOCK   19

/* Interrupt reasons (virtio-mmio InterruptStatus bits, §4.2.2) */
#define VIRTIO_INT_USED   1
#define VIRTIO_INT_CONFIG 2

#define VIRTIO_MAX_QUEUES 64

struct virtio_device;
struct dev_state_writer;
struct dev_state_reader;

struct virtio_dev_ops {
	const char *name;    /* "virtio-blk" */
	uint32_t device_id;  /* VIRTIO_ID_* */
	/*
	 * Optional: the driver wrote FEATURES_OK with these features (already a subset of
	 * vdev->device_features). Return false to refuse the combination (FEATURES_OK is then
	 * not kept, §3.1.1).
	 */
	bool (*features_ok)(struct virtio_device *vdev, uint64_t features);
	/* Config space (§4.2.2 offset 0x100+); offset+len already checked against config_len. */
	void (*config_read)(struct virtio_device *vdev, uint32_t offset, uint8_t *data, uint32_t len);
	void (*config_write)(struct virtio_device *vdev, uint32_t offset, const uint8_t *data,
			     uint32_t len);
	/*
	 * DRIVER_OK: the queues the driver made ready are enabled (vq_enable succeeded).
	 * Return < 0 to refuse; the transport then sets DEVICE_NEEDS_RESET. Called again when
	 * the driver makes another queue ready after DRIVER_OK: set up the queues not yet
	 * active, leave the others as they are.
	 */
	int (*activate)(struct virtio_device *vdev);
	/*
	 * Device reset (status written 0, or the VM is torn down): stop using the queues, wait
	 * for in-flight I/O (its completions are dropped), forget negotiated state. After it the
	 * device is as freshly created; a guest kexec or driver reload works again.
	 */
	void (*reset)(struct virtio_device *vdev);
	/* The guest kicked queue qidx (ioeventfd). Runs on the I/O thread. */
	void (*queue_notify)(struct virtio_device *vdev, unsigned int qidx);
	/*
	 * Optional. The VM pauses (vdev->quiesced is already set, I/O thread, lock held): finish
	 * what is in flight (completions are pushed to the used rings as usual) and start
	 * nothing new until vdev->quiesced is cleared. Kicks meanwhile are not delivered;
	 * virtio_device_resume() notifies every queue afterwards.
	 */
	void (*quiesce)(struct virtio_device *vdev);
	/*
	 * Optional: the device model's own state beyond the common part (virtio_device_save),
	 * and back (lock held; the blob is untrusted: check everything, -EINVAL with a line in
	 * err).
	 */
	void (*save)(struct virtio_device *vdev, struct dev_state_writer *w);
	int (*load)(struct virtio_device *vdev, const struct dev_state_reader *r, char *err,
		    size_t errlen);
};

/* How a device signals the driver; implemented by the transport. Called with vdev->lock held. */
struct virtio_transport_ops {
	/* Used-buffer notification for queue qidx (interrupt; §2.7.10 suppression decided by caller). */
	void (*notify_queue)(struct virtio_device *vdev, unsigned int qidx);
	/* The config space changed: bump config_generation and raise a config interrupt. */
	void (*notify_config)(struct virtio_device *vdev);
	/* Something the guest did is beyond repair: set DEVICE_NEEDS_RESET and notify (§2.1.2). */
	void (*needs_reset)(struct virtio_device *vdev);
};

struct virtio_device {
	const struct virtio_dev_ops *ops;
	void *opaque; /* the device model's own struct */
	const struct guest_mem *gm;
	pthread_mutex_t lock;

	uint64_t device_features; /* offered; VERSION_1 always */
	uint64_t driver_features; /* accepted by the driver (written by the transport) */
	uint8_t status;
	uint32_t config_generation;
	uint32_t config_len;      /* bytes of device config space */

	unsigned int nr_queues;
	uint16_t queue_max_size;  /* QueueNumMax, a power of 2 */
	struct virtqueue vq[VIRTIO_MAX_QUEUES];

	const struct virtio_transport_ops *transport;
	void *transport_opaque;

	/* The VM is paused: no queue work (see virtio_dev_ops.quiesce). */
	bool quiesced;

	/* Counted, never fatal (guest-triggered). */
	uint64_t malformed; /* chains completed with an error or rings that forced NEEDS_RESET */
	struct dev_ratelimit rl; /* the log lines about them */
};

/* Initialise the common part; the device model sets features, config_len, queues. */
void virtio_device_init(struct virtio_device *vdev, const struct virtio_dev_ops *ops, void *opaque,
			const struct guest_mem *gm, unsigned int nr_queues, uint16_t queue_max_size);
void virtio_device_fini(struct virtio_device *vdev);

static inline bool virtio_has_feature(const struct virtio_device *vdev, unsigned int bit)
{
	return (vdev->driver_features & VIRTIO_BIT(bit)) != 0;
}

/*
 * After pushing used buffers on queue qidx: interrupt the driver unless it asked not to be
 * (vq_should_notify). Lock held.
 */
void virtio_queue_notify_driver(struct virtio_device *vdev, unsigned int qidx);
/*
 * Snapshot state common to every virtio device: status, features, config generation and
 * config space, and per queue its driver-written registers and ring indexes (virtio.c).
 * Save quiesced; load into a freshly created device (not yet used by a driver), then the
 * device's own load, with vdev->lock held by the caller. A loaded queue is enabled again
 * (its rings checked against guest RAM as when the driver made it ready) and the device
 * activated if the driver had set DRIVER_OK. -EINVAL and one line in err for anything
 * inconsistent: another device type, other features or config (an image that changed),
 * another number of queues, a queue size or ring that a driver could not have set.
 */
void virtio_device_save(struct virtio_device *vdev, struct dev_state_writer *w);
int virtio_device_load(struct virtio_device *vdev, const struct dev_state_reader *r, char *err,
		       size_t errlen) WUR;

/*
 * Pause and continue the device's queue work. Call on the device's I/O thread (so that no
 * queue callback runs meanwhile), without the lock.
 */
void virtio_device_quiesce(struct virtio_device *vdev);
void virtio_device_resume(struct virtio_device *vdev);
/* A malformed ring: count it, mark the queue broken, ask the transport for NEEDS_RESET. */
void virtio_device_fail(struct virtio_device *vdev, const char *why);

#endif
