// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-blk (virtio 1.2 §5.2) over a raw image and one block backend.
 *
 * Requests are parsed by vblk_req_parse() (pure, below), turned into at most one struct blk_req
 * each and submitted to the backend; completions arrive through the backend's eventfd on the
 * I/O thread. Every entry point runs with vdev->lock held: transport ops by contract
 * (virtio.h), the eventfd callback takes it itself.
 *
 * Per queue there are VIRTIO_BLK_QUEUE_SIZE request slots, allocated when the driver sets
 * DRIVER_OK and freed on reset. A hostile driver can publish a head again before we returned it,
 * so slots can run out: the queue then stops popping (the chains stay in the avail ring) and
 * resumes after the next completion, as it does when the backend says -EAGAIN.
 *
 * Adaptive polling (--disk poll=USEC, vblk_poll_*): after the I/O thread handled a kick or a
 * completion it may stay a little longer, with the driver's kicks suppressed (§2.7.10), and
 * spin on the avail indexes and the backend's completion ring; every kick avoided is a VM exit
 * avoided. How long it stays adapts to how long the device has been waiting for its events.
 */
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/log.h"
#include "vmm/vmm.h"
#include "vmm/virtio_blk.h"
#include "virtio_blk_req.h"

/*
 * §5.2.4 struct virtio_blk_config up to write_zeroes_may_unmap and its 3 padding bytes; the
 * secure-erase and zoned fields after it belong to features we do not offer.
 */
#define CFG_CAPACITY		0  /* le64 */
#define CFG_SIZE_MAX		8  /* le32 */
#define CFG_SEG_MAX		12 /* le32 */
#define CFG_GEOMETRY		16 /* le16 cylinders, u8 heads, u8 sectors: not offered */
#define CFG_BLK_SIZE		20 /* le32 */
#define CFG_PHYS_BLOCK_EXP	24 /* u8  topology.physical_block_exp */
#define CFG_ALIGN_OFFSET	25 /* u8  topology.alignment_offset */
#define CFG_MIN_IO_SIZE		26 /* le16 topology.min_io_size (in blk_size units) */
#define CFG_OPT_IO_SIZE		28 /* le32 topology.opt_io_size */
#define CFG_WRITEBACK		32 /* u8, CONFIG_WCE only */
#define CFG_NUM_QUEUES		34 /* le16 */
#define CFG_MAX_DISCARD_SECTORS 36
#define CFG_MAX_DISCARD_SEG	40
#define CFG_DISCARD_ALIGNMENT	44
#define CFG_MAX_WZ_SECTORS	48
#define CFG_MAX_WZ_SEG		52
#define CFG_WZ_MAY_UNMAP	56 /* u8, then u8 unused1[3] */
#define CFG_LEN			60

/*
 * size_max: 1 MiB per segment. With seg_max 254 a request then carries at most 254 MiB, far
 * below what one preadv/pwritev moves at once (Linux MAX_RW_COUNT, 2 GiB - 4 KiB), so a
 * well-formed request is never cut short by the kernel, and an O_DIRECT bounce buffer stays
 * bounded. The same product caps IN/OUT requests from drivers that ignore the hint.
 */
#define VBLK_SIZE_MAX (1U << 20)
/* §5.2.4 seg_max counts data segments; a chain also carries the header and the status. */
#define VBLK_SEG_MAX  (VIRTIO_BLK_QUEUE_SIZE - 2)
#define VBLK_IOV_CAP  (VBLK_SEG_MAX + 2)
#define VBLK_MAX_DATA ((uint64_t)VBLK_SEG_MAX * VBLK_SIZE_MAX)
/*
 * One discard or write-zeroes range is one backend operation: 1 GiB (2^21 sectors, a multiple
 * of any discard alignment up to 1 MiB) bounds how long one request keeps the backend busy;
 * Linux splits larger ranges. One range per request (as QEMU offers): no userspace interface
 * produces multi-range discards and it keeps one struct blk_req per slot.
 */
#define VBLK_MAX_DWZ_SECTORS (1U << 21)
#define VBLK_MAX_DWZ_SEG     1U

/*
 * Adaptive polling. The window starts at 0 (no spinning) and opens at VBLK_POLL_START_NS once
 * events come in closer together than the configured maximum, doubling each time an event came
 * after the window had closed but within the maximum; a wait longer than the maximum halves it
 * (below the start it closes). One poll phase, restarts included, ends after
 * VBLK_POLL_BUDGET_WINDOWS windows (at least VBLK_POLL_BUDGET_MIN_NS) so that the other fds
 * of the I/O thread (other disks, the console) are not starved by a busy disk.
 */
#define VBLK_POLL_START_NS	 4000ULL
#define VBLK_POLL_BUDGET_WINDOWS 16ULL
#define VBLK_POLL_BUDGET_MIN_NS	 256000ULL

static const char *blk_op_name(enum blk_op op)
{
	switch (op) {
	case BLK_OP_READ:
		return "read";
	case BLK_OP_WRITE:
		return "write";
	case BLK_OP_FLUSH:
		return "flush";
	case BLK_OP_DISCARD:
		return "discard";
	case BLK_OP_WRITE_ZEROES:
		return "write-zeroes";
	}
	return "?";
}

/* ---- request parsing (pure) ---- */

/* dst = the bytes [off, off+len) of src; false if that needs more than cap entries or bytes. */
static bool iov_slice(const struct iovec *src, unsigned int cnt, uint64_t off, uint64_t len,
		      struct iovec *dst, unsigned int cap, unsigned int *out_cnt)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < cnt && len > 0; i++) {
		uint64_t seg = src[i].iov_len;

		if (off >= seg) {
			off -= seg;
			continue;
		}
		if (n == cap)
			return false;
		uint64_t take = MIN(seg - off, len);

		dst[n].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[n].iov_len = take;
		n++;
		len -= take;
		off = 0;
	}
	if (len > 0)
		return false;
	*out_cnt = n;
	return true;
}

/* [sector, sector + len bytes) lies inside the disk; overflow-safe. */
static bool vblk_in_range(const struct vblk_limits *lim, uint64_t sector, uint64_t len)
{
	uint64_t off, end;

	if (__builtin_mul_overflow(sector, (uint64_t)VIRTIO_BLK_SECTOR, &off) ||
	    __builtin_add_overflow(off, len, &end))
		return false;
	return end <= lim->capacity * VIRTIO_BLK_SECTOR;
}

static void vblk_settle(struct vblk_parsed *p, uint8_t status, uint32_t used_len)
{
	p->action = VBLK_DONE;
	p->status = status;
	p->used_len = used_len;
}

/* IN and OUT (§5.2.6): data in multiples of 512 bytes, wholly inside capacity. */
static void vblk_parse_rw(const struct vq_elem *elem, const struct vblk_limits *lim,
			  struct iovec *data, unsigned int data_cap, struct vblk_parsed *p)
{
	const struct iovec *src;
	unsigned int cnt;
	uint64_t off, len;

	if (p->type == VIRTIO_BLK_T_IN) {
		/* the data is the writable part less its last byte (the status) */
		src = elem->iov + elem->out_num;
		cnt = elem->in_num;
		off = 0;
		len = elem->in_len - 1;
		p->op = BLK_OP_READ;
	} else {
		/* §5.2.6.2: a write to a device offering RO fails without writing anything */
		if (lim->read_only)
			return vblk_settle(p, VIRTIO_BLK_S_IOERR, 1);
		src = elem->iov;
		cnt = elem->out_num;
		off = VBLK_HDR_BYTES;
		len = elem->out_len - VBLK_HDR_BYTES;
		p->op = BLK_OP_WRITE;
	}
	if (len % VIRTIO_BLK_SECTOR || len > lim->max_data || !vblk_in_range(lim, p->sector, len))
		return vblk_settle(p, VIRTIO_BLK_S_IOERR, 1);
	if (len == 0)
		return vblk_settle(p, VIRTIO_BLK_S_OK, 1);
	if (!iov_slice(src, cnt, off, len, data, data_cap, &p->data_cnt))
		return vblk_settle(p, VIRTIO_BLK_S_IOERR, 1);
	p->action = VBLK_SUBMIT;
	p->offset = p->sector * VIRTIO_BLK_SECTOR;
	p->len = len;
	p->used_len = p->type == VIRTIO_BLK_T_IN ? (uint32_t)len + 1 : 1;
}

/* DISCARD and WRITE_ZEROES (§5.2.6): one 16-byte range, flags checked per §5.2.6.2. */
static void vblk_parse_dwz(const struct vq_elem *elem, const struct vblk_limits *lim,
			   struct vblk_parsed *p)
{
	bool wz = p->type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint32_t max_seg = wz ? lim->max_write_zeroes_seg : lim->max_discard_seg;
	uint32_t max_sectors = wz ? lim->max_write_zeroes_sectors : lim->max_discard_sectors;
	uint64_t dlen = elem->out_len - VBLK_HDR_BYTES;
	struct {
		uint64_t sector;
		uint32_t num_sectors;
		uint32_t flags;
	} seg;
	uint64_t sector;
	uint32_t num, flags;

	if (lim->read_only)
		return vblk_settle(p, VIRTIO_BLK_S_IOERR, 1);
	if (!(wz ? lim->write_zeroes : lim->discard))
		return vblk_settle(p, VIRTIO_BLK_S_UNSUPP, 1);
	/* §5.2.6.1: a multiple of the segment size, at most max_*_seg segments */
	if (dlen == 0 || dlen % VBLK_DWZ_SEG_BYTES || dlen / VBLK_DWZ_SEG_BYTES > max_seg ||
	    max_seg > 1)
		return vblk_settle(p, VIRTIO_BLK_S_IOERR, 1);
	if (iov_to_buf(elem->iov, elem->out_num, VBLK_HDR_BYTES, &seg, sizeof(seg)) != sizeof(seg))
		return vblk_settle(p, VIRTIO_BLK_S_IOERR, 1);
	sector = le64toh(seg.sector);
	num = le32toh(seg.num_sectors);
	flags = le32toh(seg.flags);
	/* §5.2.6.2: unknown flags, and unmap on a discard, are UNSUPP */
	if ((flags & ~VBLK_DWZ_FLAG_UNMAP) || (!wz && (flags & VBLK_DWZ_FLAG_UNMAP)))
		return vblk_settle(p, VIRTIO_BLK_S_UNSUPP, 1);
	if (num > max_sectors || !vblk_in_range(lim, sector, (uint64_t)num * VIRTIO_BLK_SECTOR))
		return vblk_settle(p, VIRTIO_BLK_S_IOERR, 1);
	if (num == 0)
		return vblk_settle(p, VIRTIO_BLK_S_OK, 1);
	p->action = VBLK_SUBMIT;
	p->op = wz ? BLK_OP_WRITE_ZEROES : BLK_OP_DISCARD;
	p->offset = sector * VIRTIO_BLK_SECTOR;
	p->len = (uint64_t)num * VIRTIO_BLK_SECTOR;
	p->unmap = wz && (flags & VBLK_DWZ_FLAG_UNMAP);
	p->used_len = 1;
}

int vblk_req_parse(const struct vq_elem *elem, const struct vblk_limits *lim, struct iovec *data,
		   unsigned int data_cap, struct vblk_parsed *p)
{
	struct {
		uint32_t type;
		uint32_t reserved;
		uint64_t sector;
	} hdr;

	memset(p, 0, sizeof(*p));
	/* Without a header or a status byte there is nothing to answer with (§5.2.6). */
	if (elem->out_len < VBLK_HDR_BYTES || elem->in_len < 1)
		return -EBADMSG;
	if (iov_to_buf(elem->iov, elem->out_num, 0, &hdr, sizeof(hdr)) != sizeof(hdr))
		return -EBADMSG;
	p->type = le32toh(hdr.type);
	p->sector = le64toh(hdr.sector);
	p->status_off = elem->in_len - 1;

	switch (p->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		vblk_parse_rw(elem, lim, data, data_cap, p);
		break;
	case VIRTIO_BLK_T_FLUSH:
		/* Always honoured, also with cache=none: the disk's own cache may be volatile. */
		p->action = VBLK_SUBMIT;
		p->op = BLK_OP_FLUSH;
		p->used_len = 1;
		break;
	case VIRTIO_BLK_T_GET_ID: {
		/* §5.2.6: NUL-padded, no terminator at 20 bytes; the driver passes 20 bytes */
		uint64_t n = MIN(elem->in_len - 1, (uint64_t)VIRTIO_BLK_ID_BYTES);

		iov_from_buf(elem->iov + elem->out_num, elem->in_num, 0, lim->id, n);
		vblk_settle(p, VIRTIO_BLK_S_OK, (uint32_t)n + 1);
		break;
	}
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		vblk_parse_dwz(elem, lim, p);
		break;
	default:
		/* GET_LIFETIME, SECURE_ERASE (features not offered) and unknown types */
		vblk_settle(p, VIRTIO_BLK_S_UNSUPP, 1);
		break;
	}
	return 0;
}

/* ---- the device ---- */

struct blk_queue;

struct blk_slot {
	struct blk_queue *q;
	struct vq_elem elem;
	struct iovec *data; /* VBLK_IOV_CAP entries: the trimmed data buffers */
	struct blk_req req;
	uint64_t status_off;
	uint32_t used_len; /* on success */
};

struct blk_queue {
	struct virtio_blk *b;
	unsigned int idx;
	struct blk_slot *slots; /* NULL until activated */
	struct iovec *iov_pool; /* 2 * VBLK_IOV_CAP per slot */
	uint16_t *free;		/* stack of free slot indices */
	unsigned int nr_free;
	struct blk_slot *pending; /* parsed, the backend said -EAGAIN */
	bool stalled;		  /* stopped popping (no slot or -EAGAIN): resume on completion */
	bool notify;		  /* pushed since the last driver notification */
};

struct virtio_blk {
	struct virtio_device vdev;
	struct blk_image img;
	struct blk_backend *be;
	struct ev_loop *loop;
	unsigned int watch;
	char *label; /* "disk 'rootfs'": names it in messages */
	uint8_t id[VIRTIO_BLK_ID_BYTES];
	uint8_t config[CFG_LEN];
	struct vblk_limits lim;
	struct blk_queue q[VIRTIO_MAX_QUEUES];

	/* Rate-limited logging of guest-visible I/O errors (lock held). */
	struct timespec log_last;
	uint64_t log_suppressed;
	uint64_t io_errors;

	/* Adaptive polling; the fields are changed with the lock held unless marked. */
	struct vblk_poll {
		uint64_t max_ns;    /* --disk poll=, 0: never poll */
		uint64_t window_ns; /* the current window, 0..max_ns */
		uint64_t idle_ns;   /* when the device last ran out of work (monotonic), 0: never */
		bool active;	    /* a phase runs: vblk_queue_run() leaves kicks suppressed */
		/*
		 * What the spin compares against without the lock (I/O thread only): the avail
		 * index in guest RAM and the last one popped, per queue that can take work. A stale
		 * pointer (the driver reset the device meanwhile) still points into guest RAM,
		 * which stays mapped while the device exists; a wrong answer only costs a look
		 * under the lock.
		 */
		struct {
			const uint16_t *avail_idx;
			uint16_t seen;
			bool on;
		} q[VIRTIO_MAX_QUEUES];
		struct virtio_blk_poll_stats st;
	} poll;
};

PRINTF(2, 3)
static void vblk_log(struct virtio_blk *b, const char *fmt, ...)
{
	struct timespec now;
	va_list ap;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (b->log_last.tv_sec != 0 && now.tv_sec - b->log_last.tv_sec < 1) {
		b->log_suppressed++;
		return;
	}
	b->log_last = now;
	char line[400];
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (b->log_suppressed)
		log_warn("%s: %s (%llu similar messages suppressed)", b->label, line,
			 (unsigned long long)b->log_suppressed);
	else
		log_warn("%s: %s", b->label, line);
	b->log_suppressed = 0;
}

static struct blk_slot *slot_get(struct blk_queue *q)
{
	struct blk_slot *s;

	if (q->nr_free == 0)
		return NULL;
	s = &q->slots[q->free[--q->nr_free]];
	s->elem.iov = s->data + VBLK_IOV_CAP;
	s->elem.iov_cap = VBLK_IOV_CAP;
	return s;
}

static void slot_put(struct blk_queue *q, struct blk_slot *s)
{
	q->free[q->nr_free++] = (uint16_t)(s - q->slots);
}

/*
 * Write the status byte, give the chain back, free the slot (§5.2.6, §2.7.8). A chain of a
 * ring the driver took down meanwhile (QueueReady 0) is dropped: its head means another
 * buffer now, and the status byte is memory the driver has taken back.
 */
static void vblk_complete(struct blk_queue *q, struct blk_slot *s, uint8_t status, uint32_t len)
{
	struct virtqueue *vq = &q->b->vdev.vq[q->idx];

	if (!vq_elem_current(vq, &s->elem)) {
		slot_put(q, s);
		return;
	}
	iov_from_buf(s->elem.iov + s->elem.out_num, s->elem.in_num, s->status_off, &status, 1);
	vq_push(vq, s->elem.head, len);
	q->notify = true;
	slot_put(q, s);
}

static void vblk_queue_run(struct blk_queue *q);

static void vblk_done(void *opaque, struct blk_req *req)
{
	struct blk_slot *s = req->opaque;
	struct blk_queue *q = s->q;
	struct virtio_blk *b = q->b;
	bool rw = req->op == BLK_OP_READ || req->op == BLK_OP_WRITE;
	int64_t want = rw ? (int64_t)req->len : 0;

	if (req->result == want) {
		vblk_complete(q, s, VIRTIO_BLK_S_OK, s->used_len);
		return;
	}
	b->io_errors++;
	if (req->result < 0)
		vblk_log(b, "%s of %llu bytes at offset %llu failed: %s", blk_op_name(req->op),
			 (unsigned long long)req->len, (unsigned long long)req->offset,
			 strerror((int)-req->result));
	else
		vblk_log(b, "short %s: %lld of %llu bytes at offset %llu", blk_op_name(req->op),
			 (long long)req->result, (unsigned long long)req->len,
			 (unsigned long long)req->offset);
	vblk_complete(q, s, VIRTIO_BLK_S_IOERR, 1);
}

/* Reset: the guest no longer waits for these; the slots are freed after the drain. */
static void vblk_drop(void *opaque, struct blk_req *req)
{
}

/* Submit a parsed request. false: the backend is full, the slot is now q->pending. */
static bool vblk_submit(struct blk_queue *q, struct blk_slot *s)
{
	struct virtio_blk *b = q->b;
	int r = blk_backend_submit(b->be, &s->req);

	if (r == -EAGAIN) {
		q->pending = s;
		q->stalled = true;
		return false;
	}
	if (r < 0) {
		b->io_errors++;
		vblk_log(b, "%s at offset %llu not submitted: %s", blk_op_name(s->req.op),
			 (unsigned long long)s->req.offset, strerror(-r));
		vblk_complete(q, s, VIRTIO_BLK_S_IOERR, 1);
	}
	return true;
}

/* One popped chain: settle it or hand it to the backend. false: stalled on -EAGAIN. */
static bool vblk_handle(struct blk_queue *q, struct blk_slot *s)
{
	struct virtio_blk *b = q->b;
	struct vblk_parsed p;

	if (vblk_req_parse(&s->elem, &b->lim, s->data, VBLK_IOV_CAP, &p) < 0) {
		/* no place for a status: give the chain back with nothing written */
		b->vdev.malformed++;
		vq_push(&b->vdev.vq[q->idx], s->elem.head, 0);
		q->notify = true;
		slot_put(q, s);
		return true;
	}
	s->status_off = p.status_off;
	if (p.action == VBLK_DONE) {
		vblk_complete(q, s, p.status, p.used_len);
		return true;
	}
	s->used_len = p.used_len;
	memset(&s->req, 0, sizeof(s->req));
	s->req.op = p.op;
	s->req.offset = p.offset;
	s->req.len = p.len;
	s->req.iov = s->data;
	s->req.iovcnt = p.data_cnt;
	s->req.unmap = p.unmap;
	s->req.opaque = s;
	return vblk_submit(q, s);
}

/*
 * Pop and start everything the driver made available, with kicks suppressed while we do so
 * (§2.7.10: disable, pop all, enable, check again). Stops early when out of slots or when the
 * backend is full; a completion resumes it.
 */
static void vblk_queue_run(struct blk_queue *q)
{
	struct virtio_device *vdev = &q->b->vdev;
	struct virtqueue *vq = &vdev->vq[q->idx];

	if (!q->slots || !vq->enabled || vq->broken || vdev->quiesced)
		return;
	q->stalled = false;
	if (q->pending) {
		struct blk_slot *s = q->pending;

		q->pending = NULL;
		/* popped before a QueueReady 0: not for this ring, never submitted */
		if (!vq_elem_current(vq, &s->elem))
			slot_put(q, s);
		else if (!vblk_submit(q, s))
			return;
	}
	for (;;) {
		vq_set_notification(vq, false);
		for (;;) {
			struct blk_slot *s = slot_get(q);
			int r;

			if (!s) {
				q->stalled = true;
				return;
			}
			r = vq_pop(vq, &s->elem);
			if (r == 0) {
				slot_put(q, s);
				break;
			}
			if (r == -EBADMSG) {
				/* a broken chain: nothing to answer with (virtqueue.h) */
				vdev->malformed++;
				vq_push(vq, s->elem.head, 0);
				q->notify = true;
				slot_put(q, s);
				continue;
			}
			if (r < 0) {
				slot_put(q, s);
				virtio_device_fail(vdev, "virtio-blk: malformed request queue");
				return;
			}
			if (!vblk_handle(q, s))
				return;
		}
		/* A poll phase keeps kicks off until its window ends (vblk_poll_disarm). */
		if (q->b->poll.active)
			return;
		vq_set_notification(vq, true);
		if (!vq_has_avail(vq))
			break;
	}
}

static void vblk_notify_all(struct virtio_blk *b)
{
	for (unsigned int i = 0; i < b->vdev.nr_queues; i++) {
		if (b->q[i].notify) {
			b->q[i].notify = false;
			virtio_queue_notify_driver(&b->vdev, i);
		}
	}
}

/*
 * Collect the backend's completions and resume the queues that waited for a slot or for the
 * backend (lock held). Returns whether anything completed; the caller notifies the driver.
 */
static bool vblk_reap(struct virtio_blk *b)
{
	if (blk_backend_reap(b->be, vblk_done, b) == 0)
		return false;
	for (unsigned int i = 0; i < b->vdev.nr_queues; i++) {
		if (b->q[i].stalled)
			vblk_queue_run(&b->q[i]);
	}
	return true;
}

/* ---- adaptive polling ---- */

uint64_t virtio_blk_poll_adapt(uint64_t window_ns, uint64_t max_ns, uint64_t waited_ns)
{
	if (max_ns == 0)
		return 0;
	window_ns = MIN(window_ns, max_ns);
	/* The event came while we would have been polling: the window is right. */
	if (waited_ns <= window_ns)
		return window_ns;
	/* Polling would not have caught it without spinning longer than allowed. */
	if (waited_ns > max_ns) {
		window_ns /= 2;
		return window_ns < MIN(VBLK_POLL_START_NS, max_ns) ? 0 : window_ns;
	}
	/* Caught by a longer window that is still within the maximum. */
	window_ns = window_ns ? window_ns * 2 : VBLK_POLL_START_NS;
	return MIN(window_ns, max_ns);
}

/* CLOCK_MONOTONIC is served by the vDSO: no system call while spinning. */
static uint64_t vblk_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline void vblk_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* A queue the device can pop from (lock held). */
static bool vblk_queue_live(struct blk_queue *q)
{
	struct virtqueue *vq = &q->b->vdev.vq[q->idx];

	return q->slots && vq->enabled && !vq->broken && !q->stalled;
}

/*
 * An event arrived (lock held): the window that the wait for it calls for, in *window. If that
 * is open, a phase is to follow: kicks stay suppressed while the event is handled. Returns
 * whether so.
 */
static bool vblk_poll_enter(struct virtio_blk *b, uint64_t *window)
{
	struct vblk_poll *p = &b->poll;

	*window = p->window_ns;
	/* One phase at a time (queue_notify is meant for the I/O thread alone, but be safe). */
	if (!p->max_ns || p->active)
		return false;
	if (p->idle_ns)
		*window =
			virtio_blk_poll_adapt(p->window_ns, p->max_ns, vblk_now_ns() - p->idle_ns);
	if (!*window)
		return false;
	p->active = true;
	return true;
}

static void vblk_poll_phase(struct virtio_blk *b);
static bool vblk_poll_disarm(struct virtio_blk *b);

/*
 * The event was handled (lock held); did: it brought work. A wakeup without work (the signal
 * of a completion or the kick of a buffer that a poll already took) says nothing about when
 * events come: it neither moves the window nor starts a phase.
 */
static void vblk_poll_after(struct virtio_blk *b, bool entered, uint64_t window, bool did)
{
	struct vblk_poll *p = &b->poll;

	if (!p->max_ns || (p->active && !entered))
		return;
	if (!did) {
		p->st.idle_wakeups++;
		if (entered && vblk_poll_disarm(b))
			p->idle_ns = vblk_now_ns();
		return;
	}
	if (window > p->window_ns)
		p->st.grown++;
	else if (window < p->window_ns)
		p->st.shrunk++;
	p->window_ns = window;
	if (entered)
		vblk_poll_phase(b);
	else
		p->idle_ns = vblk_now_ns();
}

/*
 * Suppress kicks on every live queue and note what the spin compares with. Lock held.
 * §2.7.10: without EVENT_IDX this sets VRING_USED_F_NO_NOTIFY. With EVENT_IDX, avail_event
 * stays where the last enable put it: a driver whose index has passed it (the one whose kick
 * started the phase) does not kick again, one that has not yet kicks once more, at the first
 * buffer of the phase. The spin does not depend on kicks either way.
 */
static void vblk_poll_arm(struct virtio_blk *b)
{
	for (unsigned int i = 0; i < b->vdev.nr_queues; i++) {
		struct virtqueue *vq = &b->vdev.vq[i];

		b->poll.q[i].on = vblk_queue_live(&b->q[i]);
		if (!b->poll.q[i].on)
			continue;
		vq_set_notification(vq, false);
		b->poll.q[i].avail_idx = &vq->avail->idx;
		b->poll.q[i].seen = vq->last_avail;
	}
}

/* Anything to do? Without the lock and without a system call. */
static bool vblk_poll_check(struct virtio_blk *b)
{
	for (unsigned int i = 0; i < b->vdev.nr_queues; i++) {
		if (b->poll.q[i].on &&
		    __atomic_load_n(b->poll.q[i].avail_idx, __ATOMIC_ACQUIRE) != b->poll.q[i].seen)
			return true;
	}
	return blk_backend_poll_ready(b->be);
}

/* The check said there is work (lock held): do it. Returns whether anything was done. */
static bool vblk_poll_work(struct virtio_blk *b)
{
	bool did = false;

	if (blk_backend_poll_ready(b->be))
		did = vblk_reap(b);
	for (unsigned int i = 0; i < b->vdev.nr_queues; i++) {
		struct blk_queue *q = &b->q[i];
		struct virtqueue *vq = &b->vdev.vq[i];
		uint16_t before = vq->last_avail;

		if (!vblk_queue_live(q) || !vq_has_avail(vq))
			continue;
		vblk_queue_run(q);
		did |= vq->last_avail != before;
	}
	blk_backend_kick(b->be);
	vblk_notify_all(b);
	vblk_poll_arm(b);
	return did;
}

/*
 * The window is over (lock held): ask for kicks again, then look once more, since a buffer
 * made available before the driver saw the change would get no kick (§2.7.10). Stalled
 * queues keep kicks off: a completion resumes them, as without polling.
 */
static bool vblk_poll_disarm(struct virtio_blk *b)
{
	bool did = false;

	b->poll.active = false;
	for (unsigned int i = 0; i < b->vdev.nr_queues; i++) {
		struct blk_queue *q = &b->q[i];
		struct virtqueue *vq = &b->vdev.vq[i];

		b->poll.q[i].on = false;
		if (!vblk_queue_live(q))
			continue;
		vq_set_notification(vq, true);
		if (vq_has_avail(vq)) {
			vblk_queue_run(q); /* not active any more: disable, pop, enable, re-check */
			did = true;
		}
	}
	if (did) {
		blk_backend_kick(b->be);
		vblk_notify_all(b);
	}
	return did;
}

/*
 * The poll phase, after an event was handled with kicks left suppressed. Called and returns
 * with the lock held, but spins without it: vCPU threads take it for register accesses (the
 * interrupt acknowledgement of every completion among them). Each look that finds work
 * restarts the window.
 */
static void vblk_poll_phase(struct virtio_blk *b)
{
	struct vblk_poll *p = &b->poll;
	uint64_t window = p->window_ns;
	uint64_t start = vblk_now_ns();
	uint64_t budget_end =
		start + MAX(window * VBLK_POLL_BUDGET_WINDOWS, VBLK_POLL_BUDGET_MIN_NS);
	bool expired = false;

	p->st.phases++;
	vblk_poll_arm(b);
	pthread_mutex_unlock(&b->vdev.lock);
	for (;;) {
		uint64_t now = vblk_now_ns();

		if (now - start >= window) {
			expired = true;
			break;
		}
		if (now >= budget_end)
			break;
		if (!vblk_poll_check(b)) {
			vblk_cpu_relax();
			continue;
		}
		pthread_mutex_lock(&b->vdev.lock);
		if (vblk_poll_work(b)) {
			p->st.found++;
			start = vblk_now_ns();
		}
		pthread_mutex_unlock(&b->vdev.lock);
	}
	pthread_mutex_lock(&b->vdev.lock);
	if (expired)
		p->st.expired++;
	else
		p->st.cut++;
	/* The device has been waiting since the last work it found. */
	p->idle_ns = vblk_poll_disarm(b) ? vblk_now_ns() : start;
}

void virtio_blk_get_poll_stats(struct virtio_blk *b, struct virtio_blk_poll_stats *out)
{
	pthread_mutex_lock(&b->vdev.lock);
	*out = b->poll.st;
	out->max_ns = b->poll.max_ns;
	out->window_ns = b->poll.window_ns;
	out->active = b->poll.active;
	pthread_mutex_unlock(&b->vdev.lock);
}

/* Backend completions (I/O thread). */
static void vblk_event(void *opaque)
{
	struct virtio_blk *b = opaque;
	uint64_t window;
	bool poll, did = false;

	pthread_mutex_lock(&b->vdev.lock);
	poll = vblk_poll_enter(b, &window);
	did = vblk_reap(b);
	if (did)
		vblk_notify_all(b);
	/* Always, not only after resuming a stalled queue: SQEs that a kick could not hand over
	 * (the kernel said EAGAIN/EBUSY) must not wait for the guest's next kick. */
	blk_backend_kick(b->be);
	vblk_poll_after(b, poll, window, did);
	pthread_mutex_unlock(&b->vdev.lock);
}

static void vblk_queue_notify(struct virtio_device *vdev, unsigned int qidx)
{
	struct virtio_blk *b = vdev->opaque;
	uint16_t before;
	uint64_t window;
	bool poll;

	if (qidx >= vdev->nr_queues)
		return;
	poll = vblk_poll_enter(b, &window);
	before = vdev->vq[qidx].last_avail;
	vblk_queue_run(&b->q[qidx]);
	blk_backend_kick(b->be);
	vblk_notify_all(b);
	/* virtio.h allows dropping the lock in here: a phase spins without it. */
	vblk_poll_after(b, poll, window, vdev->vq[qidx].last_avail != before);
}

static void vblk_queue_free(struct blk_queue *q)
{
	free(q->slots);
	free(q->iov_pool);
	free(q->free);
	q->slots = NULL;
	q->iov_pool = NULL;
	q->free = NULL;
	q->nr_free = 0;
	q->pending = NULL;
	q->stalled = false;
	q->notify = false;
}

static int vblk_queue_alloc(struct blk_queue *q)
{
	unsigned int n = VIRTIO_BLK_QUEUE_SIZE;

	q->slots = calloc(n, sizeof(*q->slots));
	/* calloc of this size is mmap'ed: pages are touched only as requests use them */
	q->iov_pool = calloc((size_t)n * 2 * VBLK_IOV_CAP, sizeof(*q->iov_pool));
	q->free = calloc(n, sizeof(*q->free));
	if (!q->slots || !q->iov_pool || !q->free) {
		vblk_queue_free(q);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		q->slots[i].q = q;
		q->slots[i].data = q->iov_pool + (size_t)i * 2 * VBLK_IOV_CAP;
		q->free[i] = (uint16_t)(n - 1 - i);
	}
	q->nr_free = n;
	return 0;
}

static int vblk_activate(struct virtio_device *vdev)
{
	struct virtio_blk *b = vdev->opaque;

	for (unsigned int i = 0; i < vdev->nr_queues; i++) {
		if (!vdev->vq[i].enabled || b->q[i].slots)
			continue;
		if (vblk_queue_alloc(&b->q[i]) < 0) {
			for (unsigned int j = 0; j < i; j++)
				vblk_queue_free(&b->q[j]);
			return -ENOMEM;
		}
	}
	return 0;
}

static void vblk_reset(struct virtio_device *vdev)
{
	struct virtio_blk *b = vdev->opaque;

	/* Nothing may still write into guest memory once the driver believes the device reset. */
	blk_backend_drain(b->be, vblk_drop, b);
	for (unsigned int i = 0; i < vdev->nr_queues; i++)
		vblk_queue_free(&b->q[i]);
}

/*
 * The VM pauses (I/O thread, lock held, vdev.quiesced set): finish every request the driver
 * handed us, including one popped but refused by a full backend, and push their completions.
 */
static void vblk_quiesce(struct virtio_device *vdev)
{
	struct virtio_blk *b = vdev->opaque;
	bool again;

	do {
		blk_backend_drain(b->be, vblk_done, b);
		again = false;
		for (unsigned int i = 0; i < vdev->nr_queues; i++) {
			struct blk_queue *q = &b->q[i];
			struct blk_slot *s = q->pending;

			if (!s)
				continue;
			q->pending = NULL;
			if (vblk_submit(q, s))
				again = true;
		}
		blk_backend_kick(b->be);
	} while (again || blk_backend_inflight(b->be));
	vblk_notify_all(b);
}

static bool vblk_features_ok(struct virtio_device *vdev, uint64_t features)
{
	/* No legacy interface (§6.1: a device may refuse a driver without VERSION_1). */
	return (features & VIRTIO_BIT(VIRTIO_F_VERSION_1)) != 0;
}

static void vblk_config_read(struct virtio_device *vdev, uint32_t offset, uint8_t *data,
			     uint32_t len)
{
	struct virtio_blk *b = vdev->opaque;

	if (offset > CFG_LEN || len > CFG_LEN - offset) {
		memset(data, 0, len);
		return;
	}
	memcpy(data, b->config + offset, len);
}

/* No CONFIG_WCE, so every field is read-only for the driver: writes are ignored (§5.2.4). */
static void vblk_config_write(struct virtio_device *vdev, uint32_t offset, const uint8_t *data,
			      uint32_t len)
{
}

static const struct virtio_dev_ops vblk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features_ok = vblk_features_ok,
	.config_read = vblk_config_read,
	.config_write = vblk_config_write,
	.activate = vblk_activate,
	.reset = vblk_reset,
	.queue_notify = vblk_queue_notify,
	.quiesce = vblk_quiesce,
};

static void put_le16(uint8_t *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

/* §5.2.3 features and §5.2.4 config space, from the image and the queue count. */
static void vblk_setup_config(struct virtio_blk *b, unsigned int nr_queues)
{
	struct virtio_device *vdev = &b->vdev;
	struct vblk_limits *lim = &b->lim;
	uint8_t *c = b->config;
	unsigned int blk_size = b->img.logical_block ? b->img.logical_block : VIRTIO_BLK_SECTOR;

	/* a tail shorter than a sector is not visible to the guest */
	lim->capacity = b->img.size / VIRTIO_BLK_SECTOR;
	lim->max_data = VBLK_MAX_DATA;
	lim->read_only = b->img.read_only;
	lim->discard = !b->img.read_only && b->img.can_discard;
	lim->write_zeroes = lim->discard;
	if (lim->discard) {
		lim->max_discard_sectors = VBLK_MAX_DWZ_SECTORS;
		lim->max_discard_seg = VBLK_MAX_DWZ_SEG;
		lim->max_write_zeroes_sectors = VBLK_MAX_DWZ_SECTORS;
		lim->max_write_zeroes_seg = VBLK_MAX_DWZ_SEG;
	}
	lim->id = b->id;

	vdev->device_features |= VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) |
				 VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
				 VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
				 VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY);
	if (nr_queues > 1)
		vdev->device_features |= VIRTIO_BIT(VIRTIO_BLK_F_MQ);
	if (lim->read_only)
		vdev->device_features |= VIRTIO_BIT(VIRTIO_BLK_F_RO);
	if (lim->discard)
		vdev->device_features |=
			VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) | VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	vdev->config_len = CFG_LEN;

	memset(c, 0, CFG_LEN); /* §5.2.5: padding (unused0, unused1) is zero */
	put_le64(c + CFG_CAPACITY, lim->capacity);
	put_le32(c + CFG_SIZE_MAX, VBLK_SIZE_MAX);
	put_le32(c + CFG_SEG_MAX, VBLK_SEG_MAX);
	put_le32(c + CFG_BLK_SIZE, blk_size);
	/* physical block = logical block, no offset, minimum I/O one block, no optimal size */
	c[CFG_PHYS_BLOCK_EXP] = 0;
	c[CFG_ALIGN_OFFSET] = 0;
	put_le16(c + CFG_MIN_IO_SIZE, 1);
	put_le32(c + CFG_OPT_IO_SIZE, 0);
	put_le16(c + CFG_NUM_QUEUES, (uint16_t)nr_queues);
	if (lim->discard) {
		put_le32(c + CFG_MAX_DISCARD_SECTORS, lim->max_discard_sectors);
		put_le32(c + CFG_MAX_DISCARD_SEG, lim->max_discard_seg);
		put_le32(c + CFG_DISCARD_ALIGNMENT, blk_size / VIRTIO_BLK_SECTOR);
		put_le32(c + CFG_MAX_WZ_SECTORS, lim->max_write_zeroes_sectors);
		put_le32(c + CFG_MAX_WZ_SEG, lim->max_write_zeroes_seg);
		c[CFG_WZ_MAY_UNMAP] = 1;
	}
}

static const char *vblk_engine_display(enum blk_engine e)
{
	return e == BLK_ENGINE_URING ? "io_uring" : blk_engine_name(e);
}

/* Open the engine; when the user did not name one, fall back uring -> aio -> sync. */
static int vblk_open_backend(struct virtio_blk *b, const struct virtio_blk_config *disk,
			     unsigned int nr_queues, char *err, size_t errlen)
{
	struct blk_backend_config cfg = {
		.depth = nr_queues * VIRTIO_BLK_QUEUE_SIZE,
		.direct = b->img.direct,
		.dio_align = b->img.dio_align,
	};
	enum blk_engine e = disk->engine;

	for (;;) {
		int r = blk_backend_open(e, b->img.fd, &cfg, &b->be);

		if (r == 0)
			return 0;
		if (disk->engine_fixed || e == BLK_ENGINE_SYNC ||
		    (r != -ENOSYS && r != -EPERM && r != -EOPNOTSUPP)) {
			snprintf(err, errlen, "%s: I/O engine %s: %s", b->label, blk_engine_name(e),
				 strerror(-r));
			return r;
		}
		enum blk_engine next = e == BLK_ENGINE_URING ? BLK_ENGINE_AIO : BLK_ENGINE_SYNC;

		log_warn("%s: %s unavailable (%s), using %s", b->label, vblk_engine_display(e),
			 strerror(-r), blk_engine_name(next));
		e = next;
	}
}

int virtio_blk_create(struct virtio_blk **out, const struct virtio_blk_config *disk,
		      const struct guest_mem *gm, struct ev_loop *loop, char *err, size_t errlen)
{
	unsigned int nr_queues = disk->nr_queues;
	struct virtio_blk *b;
	char sub[480];
	int r;

	if (nr_queues < 1 || nr_queues > VIRTIO_MAX_QUEUES) {
		snprintf(err, errlen, "%s: %u queues (1..%u)", disk->label, nr_queues,
			 VIRTIO_MAX_QUEUES);
		return -EINVAL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "%s: out of memory", disk->label);
		return -ENOMEM;
	}
	b->label = strdup(disk->label);
	if (!b->label) {
		snprintf(err, errlen, "%s: out of memory", disk->label);
		r = -ENOMEM;
		goto err_free;
	}
	if (disk->fd >= 0)
		r = blk_image_adopt(&b->img, disk->fd, disk->path, disk->read_only, disk->cache,
				    sub, sizeof(sub));
	else
		r = blk_image_open(&b->img, disk->path, disk->read_only, disk->cache, sub,
				   sizeof(sub));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", disk->label, sub);
		goto err_label;
	}
	if (b->img.size % VIRTIO_BLK_SECTOR)
		log_warn("%s: %s: %llu bytes, not a whole number of %d-byte sectors: the guest "
			 "sees %llu sectors, the last %llu bytes not at all", disk->label,
			 disk->path ? disk->path : "image", (unsigned long long)b->img.size,
			 VIRTIO_BLK_SECTOR, (unsigned long long)(b->img.size / VIRTIO_BLK_SECTOR),
			 (unsigned long long)(b->img.size % VIRTIO_BLK_SECTOR));
	r = vblk_open_backend(b, disk, nr_queues, err, errlen);
	if (r < 0)
		goto err_image;
	if (disk->serial)
		memcpy(b->id, disk->serial, strnlen(disk->serial, VIRTIO_BLK_ID_BYTES));

	virtio_device_init(&b->vdev, &vblk_ops, b, gm, nr_queues, VIRTIO_BLK_QUEUE_SIZE);
	for (unsigned int i = 0; i < nr_queues; i++) {
		b->q[i].b = b;
		b->q[i].idx = i;
	}
	vblk_setup_config(b, nr_queues);

	b->poll.max_ns = (uint64_t)MIN(disk->poll_us, (unsigned int)VMM_DISK_POLL_US_MAX) * 1000;

	b->loop = loop;
	b->watch = ev_loop_add_fd(loop, blk_backend_event_fd(b->be), vblk_event, b);
	if (!b->watch) {
		snprintf(err, errlen, "%s: cannot watch the completion eventfd", disk->label);
		r = -ENOMEM;
		goto err_vdev;
	}
	*out = b;
	return 0;

err_vdev:
	virtio_device_fini(&b->vdev);
	blk_backend_close(b->be);
err_image:
	blk_image_close(&b->img);
err_label:
	free(b->label);
err_free:
	free(b);
	return r;
}

struct virtio_device *virtio_blk_device(struct virtio_blk *b)
{
	return &b->vdev;
}

enum blk_engine virtio_blk_engine(const struct virtio_blk *b)
{
	return blk_backend_engine(b->be);
}

int virtio_blk_image_fd(const struct virtio_blk *b)
{
	return b->img.fd;
}

void virtio_blk_destroy(struct virtio_blk *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->vdev.lock);
	vblk_reset(&b->vdev);
	pthread_mutex_unlock(&b->vdev.lock);
	/* not under the lock: removal waits for a running callback, which takes the lock */
	ev_loop_remove_fd(b->loop, b->watch);
	blk_backend_close(b->be);
	blk_image_close(&b->img);
	virtio_device_fini(&b->vdev);
	free(b->label);
	free(b);
}
