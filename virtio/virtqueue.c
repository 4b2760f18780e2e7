// SPDX-License-Identifier: Apache-2.0
/*
 * Split virtqueue, device side (virtio 1.2 §2.7). The ring lives in guest RAM and the guest
 * writes it concurrently with us, so every field that feeds a decision is read exactly once
 * into host memory and checked there; nothing read from the ring is ever used to index host
 * memory without a bound, and every buffer goes through gm_ptr() with its length.
 */
#include <errno.h>
#include <string.h>

#include "vmm/virtqueue.h"

/*
 * Bound on the bytes of one chain: §2.7.5.2 forbids chains longer than 2^32 bytes in total (the
 * used ring reports a 32-bit length, §2.7.8); it also keeps the sums far from overflowing.
 */
#define VQ_MAX_CHAIN_BYTES (4 * GiB)


/* Whole extent of one ring part in guest RAM and aligned as §2.7 requires, or NULL. */
static void *vq_map_part(const struct guest_mem *gm, uint64_t gpa, uint64_t len, uint64_t align)
{
	if (!IS_ALIGNED(gpa, align))
		return NULL;
	return gm_ptr(gm, GPA(gpa), len);
}

/* §2.7.6 / §2.7.8: the event-idx fields sit right after ring[size] of the other party's ring. */
static uint16_t *vq_used_event(const struct virtqueue *vq)
{
	return &vq->avail->ring[vq->size];
}

static uint16_t *vq_avail_event(const struct virtqueue *vq)
{
	return (uint16_t *)&vq->used->ring[vq->size];
}

void vq_reset(struct virtqueue *vq)
{
	const struct guest_mem *gm = vq->gm;
	/* Statistics outlive a guest's driver reloads: they are the host's view of the guest. */
	uint64_t malformed = vq->malformed_chains;
	uint32_t gen = vq->gen + 1;

	memset(vq, 0, sizeof(*vq));
	vq->gm = gm;
	vq->malformed_chains = malformed;
	vq->gen = gen;
}

int vq_enable(struct virtqueue *vq, const struct guest_mem *gm, uint16_t max_size, bool event_idx,
	      bool indirect)
{
	vq->enabled = false;
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;

	if (!gm || max_size == 0 || max_size > VQ_MAX_SIZE)
		return -EINVAL;
	/* §2.7: Queue Size is a power of 2; §4.2.2: at most QueueNumMax. */
	if (!IS_POW2(vq->size) || vq->size > max_size)
		return -EINVAL;

	/* §2.7 Table "Virtqueue Part Alignment": desc 16, avail 2, used 4. */
	struct vring_desc *desc = vq_map_part(gm, vq->desc_gpa, vring_desc_bytes(vq->size), 16);
	struct vring_avail *avail = vq_map_part(gm, vq->avail_gpa, vring_avail_bytes(vq->size), 2);
	struct vring_used *used = vq_map_part(gm, vq->used_gpa, vring_used_bytes(vq->size), 4);
	if (!desc || !avail || !used)
		return -EINVAL;

	vq->gm = gm;
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->broken = false;
	/*
	 * last_avail and used_idx are left alone: zero after vq_reset(), or the values a restore
	 * put there. The first vq_should_notify() after enabling always signals.
	 */
	vq->signalled_used_valid = false;
	vq->enabled = true;
	return 0;
}

bool vq_has_avail(struct virtqueue *vq)
{
	if (!vq->enabled || vq->broken)
		return false;
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE) != vq->last_avail;
}

/* A ring the device cannot trust any more (§2.1.2: the device then asks for a reset). */
static int vq_ring_error(struct virtqueue *vq)
{
	vq->broken = true;
	return -EIO;
}

/*
 * Copy one descriptor out of guest memory. The signal fence is a compiler barrier: the checks
 * and uses that follow work on this copy, never on a re-read of guest memory.
 */
static void vq_desc_copy(struct vring_desc *dst, const struct vring_desc *table, uint32_t idx)
{
	memcpy(dst, &table[idx], sizeof(*dst));
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

/* Walk the chain at head into elem; 0 or -EBADMSG. */
static int vq_walk_chain(struct virtqueue *vq, uint16_t head, struct vq_elem *elem)
{
	const struct vring_desc *table = vq->desc;
	uint32_t table_len = vq->size;
	bool in_indirect = false;
	uint32_t idx = head;
	/*
	 * Time to live: a chain visits each descriptor of its table at most once, so more steps
	 * than the table has entries means a loop (§2.7.5.2: chains are not circular).
	 */
	uint32_t ttl = table_len;
	unsigned int n = 0;
	uint64_t total = 0;

	for (;;) {
		struct vring_desc d;

		if (ttl == 0)
			return -EBADMSG;
		ttl--;
		vq_desc_copy(&d, table, idx);

		if (d.flags & VRING_DESC_F_INDIRECT) {
			/*
			 * §2.7.5.3.1: only when negotiated, never inside an indirect table and
			 * never together with NEXT; the table is whole descriptors. §2.7.5.3.2:
			 * normal descriptors may precede it, and its WRITE flag is ignored.
			 */
			if (!vq->indirect || in_indirect || (d.flags & VRING_DESC_F_NEXT))
				return -EBADMSG;
			if (d.len == 0 || d.len % sizeof(struct vring_desc) != 0 ||
			    d.len / sizeof(struct vring_desc) > VQ_MAX_SIZE)
				return -EBADMSG;
			const struct vring_desc *t = gm_ptr(vq->gm, GPA(d.addr), d.len);
			if (!t)
				return -EBADMSG;
			table = t;
			table_len = d.len / sizeof(struct vring_desc);
			in_indirect = true;
			idx = 0;
			ttl = table_len;
			continue;
		}

		uint64_t end;
		if (d.len == 0 || __builtin_add_overflow(d.addr, (uint64_t)d.len, &end))
			return -EBADMSG;
		void *p = gm_ptr(vq->gm, GPA(d.addr), d.len);
		if (!p)
			return -EBADMSG;

		bool write = (d.flags & VRING_DESC_F_WRITE) != 0;
		/* §2.7.4.2: device-readable descriptors come before device-writable ones. */
		if (!write && elem->in_num > 0)
			return -EBADMSG;
		if (n >= elem->iov_cap)
			return -EBADMSG;
		total += d.len;
		if (total > VQ_MAX_CHAIN_BYTES)
			return -EBADMSG;

		elem->iov[n].iov_base = p;
		elem->iov[n].iov_len = d.len;
		n++;
		if (write) {
			/* The device will write it: a diff snapshot must carry the page. */
			gm_mark_dirty(vq->gm, d.addr, d.len);
			elem->in_num++;
			elem->in_len += d.len;
		} else {
			elem->out_num++;
			elem->out_len += d.len;
		}

		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= table_len)
			return -EBADMSG;
		idx = d.next;
	}
}

int vq_pop(struct virtqueue *vq, struct vq_elem *elem)
{
	elem->gen = vq->gen;
	elem->out_num = 0;
	elem->in_num = 0;
	elem->out_len = 0;
	elem->in_len = 0;

	if (vq->broken)
		return -EIO;
	if (!vq->enabled)
		return 0;

	/* Acquire: the ring entries the driver wrote before this index are visible (§2.7.13). */
	uint16_t avail_idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	uint16_t pending = (uint16_t)(avail_idx - vq->last_avail);
	if (pending == 0)
		return 0;
	/* The driver cannot have more than size buffers outstanding: the index is garbage. */
	if (pending > vq->size)
		return vq_ring_error(vq);

	uint16_t head =
		__atomic_load_n(&vq->avail->ring[vq->last_avail % vq->size], __ATOMIC_RELAXED);
	if (head >= vq->size)
		return vq_ring_error(vq);

	elem->head = head;
	int ret = vq_walk_chain(vq, head, elem);
	/* Consumed either way: a malformed chain is completed by the device with an error. */
	vq->last_avail++;
	if (ret < 0) {
		elem->out_num = 0;
		elem->in_num = 0;
		elem->out_len = 0;
		elem->in_len = 0;
		vq->malformed_chains++;
		return ret;
	}
	return 1;
}

int vq_pop_or_arm(struct virtqueue *vq, struct vq_elem *elem)
{
	int r = vq_pop(vq, elem);

	if (r == 0) {
		vq_set_notification(vq, true);
		if (vq_has_avail(vq))
			r = vq_pop(vq, elem);
	}
	return r;
}

void vq_unpop(struct virtqueue *vq, unsigned int n)
{
	vq->last_avail = (uint16_t)(vq->last_avail - n);
}

void vq_fill(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	if (!vq->enabled || vq->broken)
		return;
	if (head >= vq->size) {
		/* A device bug rather than the guest's, but never worth a crash. */
		vq->malformed_chains++;
		return;
	}

	struct vring_used_elem *e = &vq->used->ring[vq->used_idx % vq->size];
	e->id = head;
	e->len = len;
	vq->used_idx++;
}

void vq_flush(struct virtqueue *vq)
{
	if (!vq->enabled || vq->broken)
		return;
	gm_mark_dirty(vq->gm, vq->used_gpa, vring_used_bytes(vq->size));
	/* §2.7.13: the elements must be visible before the index that exposes them. */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

void vq_push(struct virtqueue *vq, uint16_t head, uint32_t len)
{
	vq_fill(vq, head, len);
	vq_flush(vq);
}

/* §2.7.7 (vring_need_event): was event_idx crossed when the index moved from old to new? */
static bool vq_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event_idx - 1) < (uint16_t)(new_idx - old_idx);
}

bool vq_should_notify(struct virtqueue *vq)
{
	if (!vq->enabled)
		return false;
	/*
	 * The used index we published must be ordered before our read of the driver's
	 * suppression field, or we could miss an update the driver made after looking at it.
	 */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	if (vq->event_idx) {
		uint16_t old_idx = vq->signalled_used;
		bool valid = vq->signalled_used_valid;
		uint16_t used_event = __atomic_load_n(vq_used_event(vq), __ATOMIC_RELAXED);

		vq->signalled_used = vq->used_idx;
		vq->signalled_used_valid = true;
		/* Without a previous reference point the crossing is unknown: signal. */
		if (!valid)
			return true;
		return vq_need_event(used_event, vq->used_idx, old_idx);
	}
	uint16_t flags = __atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED);
	return !(flags & VRING_AVAIL_F_NO_INTERRUPT);
}

void vq_set_notification(struct virtqueue *vq, bool enable)
{
	if (!vq->enabled || vq->broken)
		return;

	if (vq->event_idx) {
		/*
		 * §2.7.10: the driver kicks when its avail index moves past avail_event. Enabled:
		 * at the next entry we would pop. Disabled: one behind it, a value the driver's
		 * index has already passed, so that no add kicks until we enable again (merely
		 * leaving it where it was lets a driver that had not reached it kick once more).
		 */
		__atomic_store_n(vq_avail_event(vq), (uint16_t)(vq->last_avail - !enable),
				 __ATOMIC_RELAXED);
	} else {
		uint16_t flags = vq->used->flags;
		if (enable)
			flags &= (uint16_t)~VRING_USED_F_NO_NOTIFY;
		else
			flags |= VRING_USED_F_NO_NOTIFY;
		__atomic_store_n(&vq->used->flags, flags, __ATOMIC_RELAXED);
	}
	gm_mark_dirty(vq->gm, vq->used_gpa, vring_used_bytes(vq->size));
	/* The caller re-reads avail->idx next: that read must not pass this store. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

size_t iov_to_buf(const struct iovec *iov, unsigned int cnt, size_t offset, void *buf, size_t len)
{
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		size_t n = MIN(iov[i].iov_len - offset, len - done);
		memcpy((uint8_t *)buf + done, (const uint8_t *)iov[i].iov_base + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

size_t iov_from_buf(const struct iovec *iov, unsigned int cnt, size_t offset, const void *buf,
		    size_t len)
{
	size_t done = 0;

	for (unsigned int i = 0; i < cnt && done < len; i++) {
		if (offset >= iov[i].iov_len) {
			offset -= iov[i].iov_len;
			continue;
		}
		size_t n = MIN(iov[i].iov_len - offset, len - done);
		memcpy((uint8_t *)iov[i].iov_base + offset, (const uint8_t *)buf + done, n);
		done += n;
		offset = 0;
	}
	return done;
}
