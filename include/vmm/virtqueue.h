/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueue, device side (virtio 1.2 §2.7): VERSION_1 layout, EVENT_IDX, INDIRECT_DESC.
 * Transport-independent and pure over guest memory, so cmocka tests it with a fake ring.
 *
 * The guest is hostile and runs concurrently: every descriptor is copied into host memory once
 * and checked there (index < size, a time-to-live of `size` steps against cycles, lengths,
 * overflow-safe ranges wholly inside guest RAM through gm_ptr(), an iovec cap, readable before
 * writable); an avail index that moved by more than the queue size is rejected.
 *
 * Two kinds of error:
 *  - a malformed chain (bad next, cycle, buffer outside RAM, zero-length or overflowing
 *    descriptor, too many segments, bad indirect table): vq_pop() returns -EBADMSG with
 *    elem->head set; the device completes that head with an error (or used len 0) and goes on;
 *  - a malformed ring (head >= size, avail index jumped): vq_pop() returns -EIO and sets
 *    vq->broken; the device must stop using the queue and ask for NEEDS_RESET.
 * Neither ever touches memory outside guest RAM.
 */
#ifndef VMM_VIRTQUEUE_H
#define VMM_VIRTQUEUE_H

#include <stdbool.h>
#include <sys/uio.h>

#include "vmm/compiler.h"
#include "vmm/guest_mem.h"

#define VQ_MAX_SIZE 32768 /* §2.7: Queue Size is at most 32768 and a power of 2 */

/* §2.7.5 The Virtqueue Descriptor Table (little endian, as the host) */
struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4

/* §2.7.6 The Virtqueue Available Ring: flags, idx, ring[size], used_event (EVENT_IDX) */
struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};
#define VRING_AVAIL_F_NO_INTERRUPT 1

/* §2.7.8 The Virtqueue Used Ring: flags, idx, ring[size], avail_event (EVENT_IDX) */
struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};
struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];
};
#define VRING_USED_F_NO_NOTIFY 1

/* Bytes of each part for a queue of `size` entries, event-idx fields included. */
static inline uint64_t vring_desc_bytes(uint16_t size) { return 16ULL * size; }
static inline uint64_t vring_avail_bytes(uint16_t size) { return 6ULL + 2ULL * size; }
static inline uint64_t vring_used_bytes(uint16_t size) { return 6ULL + 8ULL * size; }

/* One popped request: device-readable segments first (out), then device-writable (in). */
struct vq_elem {
	uint16_t head;        /* descriptor index to give back with vq_push() */
	unsigned int out_num; /* iov[0 .. out_num) are readable by the device */
	unsigned int in_num;  /* iov[out_num .. out_num+in_num) are writable by the device */
	uint64_t out_len;     /* total bytes of the readable segments */
	uint64_t in_len;      /* total bytes of the writable segments */
	struct iovec *iov;    /* caller's array of iov_cap entries; host pointers into guest RAM */
	unsigned int iov_cap;
	uint32_t gen;         /* the queue's gen when popped (vq_elem_current) */
};

struct virtqueue {
	/* Set by the driver through the transport while the queue is not ready. */
	uint16_t size;        /* QueueNum */
	uint64_t desc_gpa;    /* QueueDesc */
	uint64_t avail_gpa;   /* QueueDriver */
	uint64_t used_gpa;    /* QueueDevice */
	bool ready;           /* QueueReady as the driver wrote it */

	/* Device state, valid once enabled. */
	bool enabled;         /* vq_enable() succeeded */
	bool broken;          /* a malformed ring was seen: unusable until reset */
	bool event_idx;       /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;        /* VIRTIO_F_INDIRECT_DESC negotiated */
	uint16_t last_avail;  /* next avail ring index to consume */
	uint16_t used_idx;    /* next used index to publish */
	uint16_t signalled_used;     /* used idx at the last interrupt (EVENT_IDX) */
	bool signalled_used_valid;
	const struct guest_mem *gm;
	struct vring_desc *desc;     /* host pointers, whole extent checked by vq_enable() */
	struct vring_avail *avail;
	struct vring_used *used;

	uint64_t malformed_chains;   /* statistics */
	/*
	 * Bumped by every vq_reset() (device reset, QueueReady 0): a chain popped before belongs
	 * to a ring the driver has taken down, even if the queue was enabled again since.
	 */
	uint32_t gen;
};

/* Forget everything: as after a device reset (§2.4). gm is kept, gen is bumped. */
void vq_reset(struct virtqueue *vq);
/*
 * Start using the queue the driver configured (size, the three addresses): size a power of 2,
 * 1..max_size; desc 16-byte, avail 2-byte, used 4-byte aligned (§2.7); each part wholly in
 * guest RAM. -EINVAL otherwise (the transport then sets NEEDS_RESET).
 */
int vq_enable(struct virtqueue *vq, const struct guest_mem *gm, uint16_t max_size,
	      bool event_idx, bool indirect) WUR;

/* True if the driver has made buffers available that we have not popped. */
bool vq_has_avail(struct virtqueue *vq);
/*
 * Take the next available chain. 1: got one in *elem; 0: none; -EBADMSG: malformed chain
 * (elem->head valid, complete it with an error); -EIO: malformed ring (vq->broken set).
 */
int vq_pop(struct virtqueue *vq, struct vq_elem *elem) WUR;
/*
 * As vq_pop(), but when the ring is empty it first asks the driver for a kick on its next
 * buffer and looks once more (§2.7.10), so that a chain added meanwhile is not left waiting
 * for a kick that will not come. 0: empty, and the next buffer will kick.
 */
int vq_pop_or_arm(struct virtqueue *vq, struct vq_elem *elem) WUR;
/*
 * Whether elem was popped since the queue's last vq_reset(). A device that completes chains
 * later (a backend's I/O, output waiting for its fd) MUST check this before writing a status
 * or calling vq_push(): after QueueReady 0 (and 1 again) the driver forgot those chains, and
 * their heads mean other buffers in the new ring.
 */
static inline bool vq_elem_current(const struct virtqueue *vq, const struct vq_elem *elem)
{
	return elem->gen == vq->gen;
}
/*
 * Give back the last n chains popped and not pushed, as if they had not been taken (a device
 * that took more buffers than one packet needed: virtio-net's mergeable receive buffers).
 */
void vq_unpop(struct virtqueue *vq, unsigned int n);
/*
 * Return a chain to the driver with `len` bytes written into its writable part. The used
 * element is written before the used index (release order). A head >= size is ignored.
 */
void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len);
/*
 * vq_push() in two steps, for chains the driver must see together (virtio-net's mergeable
 * buffers of one frame, §5.1.6.4): vq_fill() writes each used element, vq_flush() then
 * publishes the used index once.
 */
void vq_fill(struct virtqueue *vq, uint16_t head, uint32_t len);
void vq_flush(struct virtqueue *vq);
/*
 * After one or more vq_push(): whether the driver wants an interrupt now (§2.7.10: used_event
 * with EVENT_IDX, else the avail NO_INTERRUPT flag). Updates the EVENT_IDX bookkeeping.
 */
bool vq_should_notify(struct virtqueue *vq);
/*
 * Ask the driver for kicks (true) or to skip them (false) (§2.7.10: avail_event with
 * EVENT_IDX, else the used NO_NOTIFY flag). After enabling, check vq_has_avail() again:
 * a buffer may have arrived in between (the usual disable; pop all; enable; re-check loop).
 */
void vq_set_notification(struct virtqueue *vq, bool enable);

/* Copy helpers over an iovec (for headers and status bytes split across segments). */
size_t iov_to_buf(const struct iovec *iov, unsigned int cnt, size_t offset, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned int cnt, size_t offset, const void *buf,
		    size_t len);

#endif
