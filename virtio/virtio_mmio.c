// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-mmio transport, register layout version 2 (virtio 1.2 §4.2.2), device initialisation
 * as in §3.1, device status as in §2.1.
 *
 * Threads. Register accesses come from vCPU threads through the MMIO bus; queue kicks arrive as
 * eventfds (one per queue, routed from QueueNotify by KVM_IOEVENTFD with the queue index as
 * datamatch) on the I/O thread; interrupts leave through one eventfd routed to the guest's GSI
 * by KVM_IRQFD. Everything here, the transport's own registers included, is under vdev->lock.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/devices.h"
#include "vmm/state.h"
#include "vmm/virtio_mmio.h"

struct virtio_mmio;

/* What a queue's notify watch needs to find its way back. */
struct vmmio_kick {
	struct virtio_mmio *t;
	unsigned int qidx;
	int fd;		    /* eventfd, -1 if not created */
	bool routed;	    /* ioeventfd assigned */
	unsigned int watch; /* ev_loop watch id, 0 if none */
};

struct virtio_mmio {
	struct virtio_device *vdev;
	struct virtio_mmio_config cfg;
	int irq_fd;
	bool irq_routed;

	/* Driver-written selectors and the interrupt status (§4.2.2); vdev->lock. */
	uint32_t device_features_sel;
	uint32_t driver_features_sel;
	uint32_t queue_sel;
	uint32_t interrupt_status;

	uint64_t bad_access; /* ignored accesses: guest bugs or probing, never fatal */
	struct dev_ratelimit rl;

	unsigned int nr_kicks;
	struct vmmio_kick kick[];
};

/* ---- signalling the guest (vdev->lock held) ---- */

/*
 * An eventfd write only fails (EAGAIN) once the counter is near 2^64 unread: the irqfd or the
 * reader has the interrupt pending already, so there is nothing more to do.
 */
static void vmmio_eventfd_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

static void vmmio_signal(struct virtio_mmio *t, uint32_t reason)
{
	t->interrupt_status |= reason;
	vmmio_eventfd_signal(t->irq_fd);
}

static void vmmio_notify_queue(struct virtio_device *vdev, unsigned int qidx)
{
	vmmio_signal(vdev->transport_opaque, VIRTIO_INT_USED);
}

/*
 * A config change bumps the generation so that a driver reading a multi-field config twice
 * notices (§2.5.1, §4.2.2 ConfigGeneration). The interrupt only goes out once the driver is
 * running (DRIVER_OK): before it the driver is not prepared for one and reads the config anyway.
 */
static void vmmio_notify_config(struct virtio_device *vdev)
{
	struct virtio_mmio *t = vdev->transport_opaque;

	vdev->config_generation++;
	if (vdev->status & VIRTIO_STATUS_DRIVER_OK)
		vmmio_signal(t, VIRTIO_INT_CONFIG);
}

/* §2.1.2: NEEDS_RESET is announced to a running driver with a configuration change notification. */
static void vmmio_needs_reset(struct virtio_device *vdev)
{
	struct virtio_mmio *t = vdev->transport_opaque;

	vdev->status |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
	if (vdev->status & VIRTIO_STATUS_DRIVER_OK)
		vmmio_signal(t, VIRTIO_INT_CONFIG);
}

static const struct virtio_transport_ops vmmio_transport_ops = {
	.notify_queue = vmmio_notify_queue,
	.notify_config = vmmio_notify_config,
	.needs_reset = vmmio_needs_reset,
};

/* ---- queue kicks (I/O thread) ---- */

static bool vmmio_running(const struct virtio_device *vdev)
{
	return (vdev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
	       VIRTIO_STATUS_DRIVER_OK;
}

static void vmmio_kick_cb(void *opaque)
{
	struct vmmio_kick *k = opaque;
	struct virtio_device *vdev = k->t->vdev;
	uint64_t cnt;

	/* Consume first: kicks that arrive while the device works re-arm the watch. */
	if (read(k->fd, &cnt, sizeof(cnt)) < 0)
		return; /* EAGAIN: a spurious wakeup */
	pthread_mutex_lock(&vdev->lock);
	/*
	 * A kick before DRIVER_OK, after NEEDS_RESET, or for a queue that is not running is
	 * dropped: DRIVER_OK kicks every queue once (vmmio_status_write), so nothing is lost.
	 */
	struct virtqueue *vq = &vdev->vq[k->qidx];
	/* Quiesced (the VM is paused): virtio_device_resume() looks at every queue. */
	if (vmmio_running(vdev) && !vdev->quiesced && vq->enabled && !vq->broken &&
	    vdev->ops->queue_notify)
		vdev->ops->queue_notify(vdev, k->qidx);
	/* The device may drop and retake the lock inside queue_notify: assume nothing here. */
	pthread_mutex_unlock(&vdev->lock);
}

/* Hand a kick to the I/O thread, as the ioeventfd would have done. */
static void vmmio_kick(struct virtio_mmio *t, unsigned int qidx)
{
	vmmio_eventfd_signal(t->kick[qidx].fd);
}

/* ---- reset and status (vdev->lock held) ---- */

/*
 * A queue's driver-written fields start as after reset; QueueNum starts at QueueNumMax, as
 * virtio-pci's queue_size does (§4.1.4.3), so a driver that never writes QueueNum gets the
 * largest ring rather than an unusable size 0.
 */
static void vmmio_queue_reset(struct virtio_device *vdev, unsigned int i)
{
	vq_reset(&vdev->vq[i]);
	vdev->vq[i].size = vdev->queue_max_size;
}

/* §2.4 Device Reset: everything back to its initial value except the config generation. */
static void vmmio_device_reset(struct virtio_mmio *t)
{
	struct virtio_device *vdev = t->vdev;

	if (vdev->ops->reset)
		vdev->ops->reset(vdev);
	for (unsigned int i = 0; i < vdev->nr_queues; i++)
		vmmio_queue_reset(vdev, i);
	vdev->driver_features = 0;
	vdev->status = 0;
	t->device_features_sel = 0;
	t->driver_features_sel = 0;
	t->queue_sel = 0;
	t->interrupt_status = 0;
}

/* §3.1.1 step 5/6: FEATURES_OK stays set only for a combination the device accepts. */
static bool vmmio_features_acceptable(struct virtio_device *vdev)
{
	uint64_t f = vdev->driver_features;

	if (!(f & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
		return false; /* version 2 registers are not for legacy drivers (§4.2.4) */
	if (f & ~vdev->device_features)
		return false; /* §6.1: the driver MUST NOT accept a feature not offered */
	if (vdev->ops->features_ok && !vdev->ops->features_ok(vdev, f))
		return false;
	return true;
}

static void vmmio_status_write(struct virtio_mmio *t, uint32_t val)
{
	struct virtio_device *vdev = t->vdev;
	const uint8_t dev_bits = VIRTIO_STATUS_DEVICE_NEEDS_RESET;

	if (val == 0) {
		vmmio_device_reset(t);
		return;
	}
	if (val > 0xff) {
		t->bad_access++;
		return;
	}
	/*
	 * §2.1.2: the driver never clears a bit. NEEDS_RESET is the device's; a driver writing
	 * back what it read (read-modify-write, as Linux does) may carry it along, so it is
	 * neither taken from the driver nor counted as cleared.
	 */
	uint8_t old = vdev->status & (uint8_t)~dev_bits;
	uint8_t want = (uint8_t)val & (uint8_t)~dev_bits;
	if (old & ~want) {
		t->bad_access++;
		dev_log_ratelimited(&t->rl,
				    "%s: driver cleared status bits (0x%x -> 0x%x), ignored",
				    vdev->ops->name, old, want);
		return;
	}
	uint8_t added = want & (uint8_t)~old;

	if (added & VIRTIO_STATUS_FEATURES_OK) {
		if (!(old & VIRTIO_STATUS_DRIVER) && !(added & VIRTIO_STATUS_DRIVER)) {
			added &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		} else if (!vmmio_features_acceptable(vdev)) {
			/* The driver reads the status back and gives up (§3.1.1). */
			added &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK;
		}
	}
	if ((added & VIRTIO_STATUS_DRIVER_OK) && !((old | added) & VIRTIO_STATUS_FEATURES_OK)) {
		/* DRIVER_OK without negotiated features: nothing sane to run. */
		added &= (uint8_t)~VIRTIO_STATUS_DRIVER_OK;
		vdev->status |= added;
		vmmio_needs_reset(vdev);
		return;
	}
	vdev->status |= added;

	if ((added & VIRTIO_STATUS_DRIVER_OK) &&
	    (vdev->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET)) {
		/* A queue was refused before the driver ran: tell it now that it is running
		 * (§2.1.2), rather than leave a device that silently does nothing. */
		vmmio_needs_reset(vdev);
		return;
	}
	if (added & VIRTIO_STATUS_DRIVER_OK) {
		if (vdev->ops->activate && vdev->ops->activate(vdev) < 0) {
			vmmio_needs_reset(vdev);
			return;
		}
		/*
		 * Kicks that came before DRIVER_OK were dropped (vmmio_kick_cb); a driver may
		 * post buffers and kick before it sets DRIVER_OK. One kick per enabled queue
		 * lets the device look at them now.
		 */
		for (unsigned int i = 0; i < vdev->nr_queues; i++) {
			if (vdev->vq[i].enabled)
				vmmio_kick(t, i);
		}
	}
}

/* ---- queue registers (vdev->lock held) ---- */

static struct virtqueue *vmmio_sel_vq(struct virtio_mmio *t)
{
	if (t->queue_sel >= t->vdev->nr_queues)
		return NULL;
	return &t->vdev->vq[t->queue_sel];
}

static void vmmio_queue_ready_write(struct virtio_mmio *t, struct virtqueue *vq, uint32_t val)
{
	struct virtio_device *vdev = t->vdev;

	if (val == 0) {
		/*
		 * The driver takes a queue down (Linux does on del_vqs, normally after a reset).
		 * The ring state goes; the driver-written size and addresses stay, as they
		 * would in the write-only registers.
		 */
		struct virtqueue saved = *vq;
		vq_reset(vq);
		vq->size = saved.size;
		vq->desc_gpa = saved.desc_gpa;
		vq->avail_gpa = saved.avail_gpa;
		vq->used_gpa = saved.used_gpa;
		return;
	}
	if (val != 1 || vq->ready) {
		t->bad_access++;
		return;
	}
	/* §3.1.1: queues are set up after FEATURES_OK (EVENT_IDX, INDIRECT are known then). */
	if (!(vdev->status & VIRTIO_STATUS_FEATURES_OK)) {
		t->bad_access++;
		return;
	}
	vq->ready = true;
	if (vq_enable(vq, vdev->gm, vdev->queue_max_size,
		      virtio_has_feature(vdev, VIRTIO_F_EVENT_IDX),
		      virtio_has_feature(vdev, VIRTIO_F_INDIRECT_DESC)) < 0) {
		vdev->malformed++;
		dev_log_ratelimited(&t->rl,
				    "%s: queue %u: bad ring (size %u, desc 0x%" PRIx64
				    ", driver 0x%" PRIx64 ", device 0x%" PRIx64 "), needs reset",
				    vdev->ops->name, t->queue_sel, vq->size, vq->desc_gpa,
				    vq->avail_gpa, vq->used_gpa);
		vmmio_needs_reset(vdev);
		return;
	}
	/*
	 * A queue made ready after DRIVER_OK (§3.1.1 sets queues up before it, but nothing
	 * stops a driver): activate it as DRIVER_OK would have, rather than leave a queue that
	 * takes buffers and never completes them.
	 */
	if (vmmio_running(vdev)) {
		if (vdev->ops->activate && vdev->ops->activate(vdev) < 0) {
			vmmio_needs_reset(vdev);
			return;
		}
		vmmio_kick(t, t->queue_sel);
	}
}

/* The 32-bit half of a 64-bit ring address (§4.2.2 QueueDescLow/High etc.). */
static void vmmio_set_half(uint64_t *reg, bool high, uint32_t val)
{
	if (high)
		*reg = (*reg & 0xffffffffULL) | ((uint64_t)val << 32);
	else
		*reg = (*reg & ~0xffffffffULL) | val;
}

/* ---- registers ---- */

static uint32_t vmmio_reg_read(struct virtio_mmio *t, uint64_t off)
{
	struct virtio_device *vdev = t->vdev;
	struct virtqueue *vq = vmmio_sel_vq(t);

	switch (off) {
	case VIRTIO_MMIO_MAGIC_VALUE:
		return VIRTIO_MMIO_MAGIC;
	case VIRTIO_MMIO_VERSION:
		return 2;
	case VIRTIO_MMIO_DEVICE_ID:
		return vdev->ops->device_id;
	case VIRTIO_MMIO_VENDOR_ID:
		return VIRTIO_MMIO_VENDOR;
	case VIRTIO_MMIO_DEVICE_FEATURES:
		if (t->device_features_sel == 0)
			return (uint32_t)vdev->device_features;
		if (t->device_features_sel == 1)
			return (uint32_t)(vdev->device_features >> 32);
		return 0;
	case VIRTIO_MMIO_QUEUE_NUM_MAX:
		return vq ? vdev->queue_max_size : 0; /* 0: no such queue (§4.2.3.2) */
	case VIRTIO_MMIO_QUEUE_READY:
		return vq ? vq->ready : 0;
	case VIRTIO_MMIO_INTERRUPT_STATUS:
		return t->interrupt_status;
	case VIRTIO_MMIO_STATUS:
		return vdev->status;
	case VIRTIO_MMIO_SHM_LEN_LOW:
	case VIRTIO_MMIO_SHM_LEN_HIGH:
		return 0xffffffff; /* §4.2.2: a length of -1 means no such region; we have none */
	case VIRTIO_MMIO_SHM_BASE_LOW:
	case VIRTIO_MMIO_SHM_BASE_HIGH:
	case VIRTIO_MMIO_QUEUE_RESET:
		return 0; /* VIRTIO_F_RING_RESET is not offered */
	case VIRTIO_MMIO_CONFIG_GENERATION:
		return vdev->config_generation;
	default:
		/* Write-only or undefined registers. */
		t->bad_access++;
		return 0;
	}
}

static void vmmio_reg_write(struct virtio_mmio *t, uint64_t off, uint32_t val)
{
	struct virtio_device *vdev = t->vdev;
	struct virtqueue *vq = vmmio_sel_vq(t);

	switch (off) {
	case VIRTIO_MMIO_DEVICE_FEATURES_SEL:
		t->device_features_sel = val;
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES:
		/* §3.1.1: features are written after DRIVER and never after FEATURES_OK. */
		if ((vdev->status & (VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)) !=
			    VIRTIO_STATUS_DRIVER ||
		    t->driver_features_sel > 1) {
			t->bad_access++;
			return;
		}
		vmmio_set_half(&vdev->driver_features, t->driver_features_sel == 1, val);
		return;
	case VIRTIO_MMIO_DRIVER_FEATURES_SEL:
		t->driver_features_sel = val;
		return;
	case VIRTIO_MMIO_QUEUE_SEL:
		t->queue_sel = val;
		return;
	case VIRTIO_MMIO_QUEUE_NOTIFY:
		/* Only reaches us without an ioeventfd route (or a non-matching value). */
		if (val >= vdev->nr_queues) {
			t->bad_access++;
			return;
		}
		vmmio_kick(t, val);
		return;
	case VIRTIO_MMIO_INTERRUPT_ACK:
		t->interrupt_status &= ~val;
		return;
	case VIRTIO_MMIO_STATUS:
		vmmio_status_write(t, val);
		return;
	case VIRTIO_MMIO_SHM_SEL:
		return; /* any region id: reads say "none" */
	case VIRTIO_MMIO_QUEUE_NUM:
	case VIRTIO_MMIO_QUEUE_READY:
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
	case VIRTIO_MMIO_QUEUE_DEVICE_LOW:
	case VIRTIO_MMIO_QUEUE_DEVICE_HIGH:
		break;
	default:
		t->bad_access++;
		return;
	}

	/* Per-queue registers, for the queue QueueSel names. */
	if (!vq) {
		t->bad_access++;
		return;
	}
	if (off == VIRTIO_MMIO_QUEUE_READY) {
		vmmio_queue_ready_write(t, vq, val);
		return;
	}
	/* §4.2.2: size and addresses may only change while the queue is not ready. */
	if (vq->ready) {
		t->bad_access++;
		return;
	}
	switch (off) {
	case VIRTIO_MMIO_QUEUE_NUM:
		/* Kept unchanged in 16 bits would let 0x10040 pass as 0x40; 0 fails vq_enable. */
		vq->size = val <= VQ_MAX_SIZE ? (uint16_t)val : 0;
		break;
	case VIRTIO_MMIO_QUEUE_DESC_LOW:
	case VIRTIO_MMIO_QUEUE_DESC_HIGH:
		vmmio_set_half(&vq->desc_gpa, off == VIRTIO_MMIO_QUEUE_DESC_HIGH, val);
		break;
	case VIRTIO_MMIO_QUEUE_DRIVER_LOW:
	case VIRTIO_MMIO_QUEUE_DRIVER_HIGH:
		vmmio_set_half(&vq->avail_gpa, off == VIRTIO_MMIO_QUEUE_DRIVER_HIGH, val);
		break;
	default:
		vmmio_set_half(&vq->used_gpa, off == VIRTIO_MMIO_QUEUE_DEVICE_HIGH, val);
		break;
	}
}

static void vmmio_config_access(struct virtio_mmio *t, uint64_t off, uint8_t *data, uint32_t len,
				bool is_write)
{
	struct virtio_device *vdev = t->vdev;
	uint64_t end;

	if ((len != 1 && len != 2 && len != 4 && len != 8) ||
	    __builtin_add_overflow(off, (uint64_t)len, &end) || end > vdev->config_len) {
		t->bad_access++;
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write) {
		if (vdev->ops->config_write)
			vdev->ops->config_write(vdev, (uint32_t)off, data, len);
	} else {
		memset(data, 0, len);
		if (vdev->ops->config_read)
			vdev->ops->config_read(vdev, (uint32_t)off, data, len);
	}
}

void virtio_mmio_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct virtio_mmio *t = opaque;
	struct virtio_device *vdev = t->vdev;

	pthread_mutex_lock(&vdev->lock);
	if (offset >= VIRTIO_MMIO_CONFIG) {
		vmmio_config_access(t, offset - VIRTIO_MMIO_CONFIG, data, len, is_write);
	} else if (len != 4 || !IS_ALIGNED(offset, 4ULL)) {
		/* §4.2.2.2: the driver MUST use 32-bit aligned accesses for registers. */
		t->bad_access++;
		if (!is_write)
			memset(data, 0, len);
	} else if (is_write) {
		uint32_t v;
		memcpy(&v, data, 4); /* little endian, as the host */
		vmmio_reg_write(t, offset, v);
	} else {
		uint32_t v = vmmio_reg_read(t, offset);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&vdev->lock);
}

/* ---- create / destroy ---- */

static void vmmio_unroute_kicks(struct virtio_mmio *t)
{
	const struct vm_eventfd_ops *efd = t->cfg.efd;

	for (unsigned int i = t->nr_kicks; i-- > 0;) {
		struct vmmio_kick *k = &t->kick[i];

		if (k->watch)
			ev_loop_remove_fd(t->cfg.loop, k->watch);
		k->watch = 0;
		if (k->routed && efd->ioeventfd(efd->opaque, t->cfg.base + VIRTIO_MMIO_QUEUE_NOTIFY,
						4, i, k->fd, false) < 0)
			fprintf(stderr, "vmm: %s: could not remove the queue %u notify route\n",
				t->vdev->ops->name, i);
		k->routed = false;
		if (k->fd >= 0)
			close(k->fd);
		k->fd = -1;
	}
}

static int vmmio_route_kick(struct virtio_mmio *t, unsigned int i)
{
	const struct vm_eventfd_ops *efd = t->cfg.efd;
	struct vmmio_kick *k = &t->kick[i];
	int ret;

	k->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (k->fd < 0)
		return -errno;
	if (efd && efd->ioeventfd) {
		ret = efd->ioeventfd(efd->opaque, t->cfg.base + VIRTIO_MMIO_QUEUE_NOTIFY, 4, i,
				     k->fd, true);
		if (ret < 0)
			return ret;
		k->routed = true;
	}
	k->watch = ev_loop_add_fd(t->cfg.loop, k->fd, vmmio_kick_cb, k);
	if (!k->watch)
		return -ENOMEM;
	return 0;
}

int virtio_mmio_create(struct virtio_mmio **out, struct virtio_device *vdev,
		       const struct virtio_mmio_config *cfg)
{
	const struct vm_eventfd_ops *efd = cfg->efd;
	struct virtio_mmio *t;
	int ret;

	if (!vdev || !vdev->ops || !cfg->loop || vdev->nr_queues > VIRTIO_MAX_QUEUES ||
	    !IS_ALIGNED(cfg->base, (uint64_t)VIRTIO_MMIO_SIZE))
		return -EINVAL;
	t = calloc(1, sizeof(*t) + vdev->nr_queues * sizeof(t->kick[0]));
	if (!t)
		return -ENOMEM;
	t->vdev = vdev;
	t->cfg = *cfg;
	t->irq_fd = -1;
	t->nr_kicks = vdev->nr_queues;
	for (unsigned int i = 0; i < t->nr_kicks; i++)
		t->kick[i] = (struct vmmio_kick){.t = t, .qidx = i, .fd = -1};

	t->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->irq_fd < 0) {
		ret = -errno;
		goto err_free;
	}
	if (efd && efd->irqfd) {
		ret = efd->irqfd(efd->opaque, cfg->gsi, t->irq_fd, true);
		if (ret < 0)
			goto err_irq_fd;
		t->irq_routed = true;
	}

	/* The device must be fully wired before the first kick can reach it. */
	pthread_mutex_lock(&vdev->lock);
	vdev->transport = &vmmio_transport_ops;
	vdev->transport_opaque = t;
	for (unsigned int i = 0; i < vdev->nr_queues; i++)
		vmmio_queue_reset(vdev, i);
	pthread_mutex_unlock(&vdev->lock);

	for (unsigned int i = 0; i < t->nr_kicks; i++) {
		ret = vmmio_route_kick(t, i);
		if (ret < 0)
			goto err_kicks;
	}
	*out = t;
	return 0;

err_kicks:
	vmmio_unroute_kicks(t); /* every kick slot, whatever state it reached */
	pthread_mutex_lock(&vdev->lock);
	vdev->transport = NULL;
	vdev->transport_opaque = NULL;
	pthread_mutex_unlock(&vdev->lock);
	if (t->irq_routed)
		(void)efd->irqfd(efd->opaque, cfg->gsi, t->irq_fd, false);
err_irq_fd:
	close(t->irq_fd);
err_free:
	free(t);
	return ret;
}

void virtio_mmio_destroy(struct virtio_mmio *t)
{
	struct virtio_device *vdev;
	const struct vm_eventfd_ops *efd;

	if (!t)
		return;
	vdev = t->vdev;
	efd = t->cfg.efd;
	/* Watches first and without the lock: a running kick callback may be waiting for it. */
	vmmio_unroute_kicks(t);
	if (t->irq_routed && efd->irqfd(efd->opaque, t->cfg.gsi, t->irq_fd, false) < 0)
		fprintf(stderr, "vmm: %s: could not remove the interrupt route\n", vdev->ops->name);

	pthread_mutex_lock(&vdev->lock);
	vmmio_device_reset(t);
	vdev->transport = NULL;
	vdev->transport_opaque = NULL;
	pthread_mutex_unlock(&vdev->lock);
	close(t->irq_fd);
	free(t);
}

void virtio_mmio_save(struct virtio_mmio *t, struct dev_state_writer *w)
{
	uint32_t regs[4] = { t->device_features_sel, t->driver_features_sel, t->queue_sel,
			     t->interrupt_status };

	dev_state_put(w, "virtio-mmio-regs", regs, sizeof(regs));
}

int virtio_mmio_load(struct virtio_mmio *t, const struct dev_state_reader *r, char *err,
		     size_t errlen)
{
	uint32_t regs[4];

	if (dev_state_get(r, "virtio-mmio-regs", regs, sizeof(regs)) < 0 ||
	    regs[3] & ~(uint32_t)(VIRTIO_INT_USED | VIRTIO_INT_CONFIG)) {
		snprintf(err, errlen, "%s: virtio-mmio registers missing or impossible",
			 t->vdev->ops->name);
		return -EINVAL;
	}
	t->device_features_sel = regs[0];
	t->driver_features_sel = regs[1];
	t->queue_sel = regs[2];
	t->interrupt_status = regs[3];
	/* An interrupt the driver had not acknowledged yet is raised again (an extra edge is
	 * harmless: the driver reads InterruptStatus and finds what there is). */
	if (t->interrupt_status)
		vmmio_eventfd_signal(t->irq_fd);
	return 0;
}

int virtio_mmio_irq_fd(const struct virtio_mmio *t)
{
	return t->irq_fd;
}

int virtio_mmio_cmdline(const struct virtio_mmio_config *cfg, char *buf, size_t len)
{
	int n = snprintf(buf, len, "virtio_mmio.device=4K@0x%llx:%u", (unsigned long long)cfg->base,
			 cfg->gsi);

	if (n < 0)
		return -EINVAL;
	if ((size_t)n >= len)
		return -ENOSPC;
	return 0;
}
