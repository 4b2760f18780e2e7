// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-blk device model (virtio 1.2 §5.2), driven the way a transport drives it: the fake
 * driver lays out real split rings in gm_create()d guest RAM, the device runs over a real image
 * file in /var/tmp with a real backend and a real I/O thread, and completions are awaited by
 * polling the used ring. Every case runs once per engine (uring, aio, sync).
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/virtio.h"
#include "vmm/virtio_blk.h"
#include "fake_vring.h"
#include "../../virtio/blk/virtio_blk_req.h"

#define RAM_SIZE   (64 * MiB)
#define RING_SPAN  (24 * MiB)
#define IMG_SIZE   (8 * MiB + 300) /* a tail shorter than a sector: not visible */
#define NR_SECTORS (IMG_SIZE / 512)
#define QSIZE	   256
#define MAXQ	   2

static enum blk_engine g_engine;

struct ctx {
	struct guest_mem gm;
	struct ev_loop *loop;
	char path[64];
	int fd; /* host view of the image, for pread/fstat */
	struct virtio_blk *b;
	struct virtio_device *vdev;
	unsigned int nq;
	struct fake_vring r[MAXQ];
	unsigned int notified[MAXQ];
	unsigned int needs_reset;
	unsigned int poll_us; /* --disk poll= (0: the zeroed default, no polling) */
	bool event_idx;	      /* negotiate VIRTIO_F_EVENT_IDX */
	/* Kicks through the I/O thread, as the transport's ioeventfds deliver them. */
	struct loop_kick {
		struct ctx *c;
		unsigned int q;
		int fd;
		unsigned int watch;
	} lk[MAXQ];
};

/* ---- a transport stand-in ---- */

static void tr_notify_queue(struct virtio_device *vdev, unsigned int qidx)
{
	struct ctx *c = vdev->transport_opaque;

	__atomic_add_fetch(&c->notified[qidx], 1, __ATOMIC_RELAXED);
}

static void tr_notify_config(struct virtio_device *vdev)
{
}

static void tr_needs_reset(struct virtio_device *vdev)
{
	struct ctx *c = vdev->transport_opaque;

	c->needs_reset++;
}

static const struct virtio_transport_ops tr_ops = {
	.notify_queue = tr_notify_queue,
	.notify_config = tr_notify_config,
	.needs_reset = tr_needs_reset,
};

static char *make_image(char *path, size_t pathlen, uint64_t size, int *fd)
{
	snprintf(path, pathlen, "/var/tmp/vblk-test-XXXXXX");
	*fd = mkstemp(path);
	assert_true(*fd >= 0);
	assert_int_equal(ftruncate(*fd, (off_t)size), 0);
	return path;
}

static int blk_open(struct ctx *c, struct virtio_blk **out, const char *path, bool ro,
		    enum blk_cache cache, const char *serial, unsigned int nq, char *err,
		    size_t errlen)
{
	struct virtio_blk_config disk = {
		.label = "disk 'test'",
		.path = path,
		.fd = -1,
		.read_only = ro,
		.cache = cache,
		.engine = g_engine,
		.engine_fixed = true,
		.serial = serial,
		.poll_us = c->poll_us,
		.nr_queues = nq,
	};

	return virtio_blk_create(out, &disk, &c->gm, c->loop, err, errlen);
}

/* Feature negotiation, queues, DRIVER_OK: what virtio-mmio does for the driver. */
static void driver_init(struct ctx *c)
{
	struct virtio_device *vdev = c->vdev;

	pthread_mutex_lock(&vdev->lock);
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER;
	/* no EVENT_IDX unless asked: every batch of used buffers is an interrupt, so they can
	 * be counted */
	vdev->driver_features = vdev->device_features;
	if (!c->event_idx)
		vdev->driver_features &= ~VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	assert_true(vdev->ops->features_ok(vdev, vdev->driver_features));
	vdev->status |= VIRTIO_STATUS_FEATURES_OK;
	for (unsigned int q = 0; q < c->nq; q++) {
		fake_vring_init(&c->r[q], &c->gm, MiB + q * 32 * MiB, RING_SPAN, QSIZE);
		fake_vring_configure(&c->r[q], &vdev->vq[q]);
		assert_int_equal(
			vq_enable(&vdev->vq[q], &c->gm, vdev->queue_max_size, c->event_idx, true),
			0);
	}
	assert_int_equal(vdev->ops->activate(vdev), 0);
	vdev->status |= VIRTIO_STATUS_DRIVER_OK;
	pthread_mutex_unlock(&vdev->lock);
}

/* Status 0 written: device reset, then the transport forgets the queues (§2.4). */
static void driver_reset(struct ctx *c)
{
	struct virtio_device *vdev = c->vdev;

	pthread_mutex_lock(&vdev->lock);
	vdev->ops->reset(vdev);
	for (unsigned int q = 0; q < vdev->nr_queues; q++)
		vq_reset(&vdev->vq[q]);
	vdev->status = 0;
	vdev->driver_features = 0;
	pthread_mutex_unlock(&vdev->lock);
}

static void ctx_open_poll(struct ctx *c, unsigned int nq, unsigned int poll_us, bool event_idx)
{
	char err[256] = "";
	int r;

	memset(c, 0, sizeof(*c));
	c->nq = nq;
	c->poll_us = poll_us;
	c->event_idx = event_idx;
	assert_int_equal(gm_create(&c->gm, RAM_SIZE), 0);
	assert_int_equal(ev_loop_create(&c->loop, THREAD_IO), 0);
	assert_int_equal(ev_loop_start(c->loop), 0);
	make_image(c->path, sizeof(c->path), IMG_SIZE, &c->fd);
	r = blk_open(c, &c->b, c->path, false, BLK_CACHE_WRITEBACK, "vmm-test-serial", nq, err,
		     sizeof(err));
	if (r == -ENOSYS || r == -EPERM || r == -EOPNOTSUPP) {
		fprintf(stderr, "engine %s unavailable here: %s\n", blk_engine_name(g_engine), err);
		skip();
	}
	if (r != 0)
		fail_msg("virtio_blk_create: %d %s", r, err);
	assert_int_equal(virtio_blk_engine(c->b), g_engine);
	c->vdev = virtio_blk_device(c->b);
	c->vdev->transport = &tr_ops;
	c->vdev->transport_opaque = c;
	driver_init(c);
}

static void ctx_open(struct ctx *c, unsigned int nq)
{
	ctx_open_poll(c, nq, 0, false);
}

static int setup1(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	/* kick watches first: a running one calls into the device */
	for (unsigned int q = 0; q < MAXQ; q++) {
		if (c->lk[q].watch)
			ev_loop_remove_fd(c->loop, c->lk[q].watch);
		if (c->lk[q].c)
			close(c->lk[q].fd);
	}
	if (c->b)
		virtio_blk_destroy(c->b);
	if (c->loop)
		ev_loop_destroy(c->loop);
	if (c->gm.base)
		gm_destroy(&c->gm);
	if (c->path[0]) {
		close(c->fd);
		unlink(c->path);
	}
	free(c);
	return 0;
}

/* ---- the fake driver's requests ---- */

static void kick(struct ctx *c, unsigned int q)
{
	pthread_mutex_lock(&c->vdev->lock);
	c->vdev->ops->queue_notify(c->vdev, q);
	pthread_mutex_unlock(&c->vdev->lock);
}

/* The next used element of queue q, waiting up to 10 s for the I/O thread. */
static void wait_used(struct ctx *c, unsigned int q, uint32_t *id, uint32_t *len)
{
	struct timespec ts = {0, 200 * 1000};

	for (int i = 0; i < 50000; i++) {
		if (fake_vring_get_used(&c->r[q], id, len))
			return;
		nanosleep(&ts, NULL);
	}
	fail_msg("no used buffer on queue %u within 10 s", q);
}

static uint64_t guest_buf(struct ctx *c, unsigned int q, uint64_t len, const void *src)
{
	uint64_t gpa = fake_vring_alloc(&c->r[q], len);

	assert_true(gpa != 0);
	if (src)
		memcpy(fake_vring_host(&c->r[q], gpa, len), src, len);
	return gpa;
}

static uint64_t header(struct ctx *c, unsigned int q, uint32_t type, uint64_t sector)
{
	uint8_t h[16] = {0};
	uint32_t t = htole32(type);
	uint64_t s = htole64(sector);

	memcpy(h, &t, 4);
	memcpy(h + 8, &s, 8);
	return guest_buf(c, q, sizeof(h), h);
}

/* Publish a chain, kick, wait for it; check the head comes back. Returns the used length. */
static uint32_t run_chain(struct ctx *c, unsigned int q, const struct fake_seg *segs,
			  unsigned int n, bool indirect)
{
	uint16_t head = indirect ? fake_vring_add_indirect(&c->r[q], segs, n)
				 : fake_vring_add_chain(&c->r[q], segs, n);
	uint32_t id, len;

	fake_vring_publish(&c->r[q], head);
	kick(c, q);
	wait_used(c, q, &id, &len);
	assert_int_equal(id, head);
	return len;
}

/*
 * A simple request: header, optional readable payload, optional writable buffer, status byte,
 * each in its own segment. Returns the status; *used gets the used length.
 */
static uint8_t req(struct ctx *c, unsigned int q, uint32_t type, uint64_t sector, const void *out,
		   uint32_t out_len, void *in, uint32_t in_len, uint32_t *used)
{
	struct fake_seg segs[4];
	unsigned int n = 0;
	uint64_t in_gpa = 0, st;
	uint32_t len;

	segs[n++] = (struct fake_seg){header(c, q, type, sector), 16, false};
	if (out_len)
		segs[n++] = (struct fake_seg){guest_buf(c, q, out_len, out), out_len, false};
	if (in_len) {
		in_gpa = guest_buf(c, q, in_len, NULL);
		memset(fake_vring_host(&c->r[q], in_gpa, in_len), 0xEE, in_len);
		segs[n++] = (struct fake_seg){in_gpa, in_len, true};
	}
	st = guest_buf(c, q, 1, NULL);
	*(uint8_t *)fake_vring_host(&c->r[q], st, 1) = 0xFF;
	segs[n++] = (struct fake_seg){st, 1, true};
	len = run_chain(c, q, segs, n, false);
	if (in_len)
		memcpy(in, fake_vring_host(&c->r[q], in_gpa, in_len), in_len);
	if (used)
		*used = len;
	return *(uint8_t *)fake_vring_host(&c->r[q], st, 1);
}

struct rw_layout {
	unsigned int nseg; /* data segments, uneven sizes */
	bool indirect;
	bool hdr_split; /* header over two segments (7 + 9 bytes) */
	bool merged;	/* OUT: header and data in one segment; IN: data and status in one */
};

/*
 * IN or OUT of len bytes at sector with the data spread as lay says. buf is the source (OUT)
 * or the destination (IN). Returns the status.
 */
static uint8_t rw(struct ctx *c, unsigned int q, uint32_t type, uint64_t sector, void *buf,
		  uint32_t len, const struct rw_layout *lay, uint32_t *used)
{
	bool in = type == VIRTIO_BLK_T_IN;
	/* a zero-length transfer has no data segment (descriptors are never empty, §2.7.5) */
	unsigned int nseg = len == 0 ? 0 : lay->nseg ? lay->nseg : 1;
	struct fake_seg segs[16];
	uint64_t piece_gpa[16];
	uint32_t piece_len[16];
	unsigned int n = 0;
	uint64_t st_gpa;
	uint32_t ulen, done = 0;
	uint8_t h[16] = {0};
	uint32_t t = htole32(type);
	uint64_t s = htole64(sector);

	assert_true(nseg <= 8);
	assert_true(nseg > 0 || !lay->merged);
	memcpy(h, &t, 4);
	memcpy(h + 8, &s, 8);

	/* uneven pieces: the first is 100 bytes short of an even share, the last makes it up */
	for (unsigned int i = 0; i + 1 < nseg; i++)
		piece_len[i] = len / nseg;
	if (nseg >= 2 && len / nseg > 100)
		piece_len[0] -= 100;
	for (unsigned int i = 0; i + 1 < nseg; i++)
		done += piece_len[i];
	if (nseg)
		piece_len[nseg - 1] = len - done;

	if (lay->merged && !in) {
		uint64_t g = guest_buf(c, q, 16 + (uint64_t)piece_len[0], NULL);
		uint8_t *p = fake_vring_host(&c->r[q], g, 16 + (uint64_t)piece_len[0]);

		memcpy(p, h, 16);
		memcpy(p + 16, buf, piece_len[0]);
		segs[n++] = (struct fake_seg){g, 16 + piece_len[0], false};
		piece_gpa[0] = g + 16;
	} else if (lay->hdr_split) {
		segs[n++] = (struct fake_seg){guest_buf(c, q, 7, h), 7, false};
		segs[n++] = (struct fake_seg){guest_buf(c, q, 9, h + 7), 9, false};
	} else {
		segs[n++] = (struct fake_seg){guest_buf(c, q, 16, h), 16, false};
	}

	done = 0;
	for (unsigned int i = 0; i < nseg; i++) {
		bool last = i + 1 == nseg;
		uint32_t extra = in && lay->merged && last ? 1 : 0;

		if (!(lay->merged && !in && i == 0)) {
			piece_gpa[i] =
				guest_buf(c, q, piece_len[i] + extra, in ? NULL : buf + done);
			if (in)
				memset(fake_vring_host(&c->r[q], piece_gpa[i],
						       piece_len[i] + extra),
				       0xEE, piece_len[i] + extra);
			segs[n++] = (struct fake_seg){piece_gpa[i], piece_len[i] + extra, in};
		}
		done += piece_len[i];
	}
	if (in && lay->merged) {
		st_gpa = piece_gpa[nseg - 1] + piece_len[nseg - 1];
	} else {
		st_gpa = guest_buf(c, q, 1, NULL);
		segs[n++] = (struct fake_seg){st_gpa, 1, true};
	}
	*(uint8_t *)fake_vring_host(&c->r[q], st_gpa, 1) = 0xFF;

	ulen = run_chain(c, q, segs, n, lay->indirect);
	if (in) {
		done = 0;
		for (unsigned int i = 0; i < nseg; i++) {
			memcpy((uint8_t *)buf + done,
			       fake_vring_host(&c->r[q], piece_gpa[i], piece_len[i]), piece_len[i]);
			done += piece_len[i];
		}
	}
	if (used)
		*used = ulen;
	return *(uint8_t *)fake_vring_host(&c->r[q], st_gpa, 1);
}

static void fill(uint8_t *p, size_t len, unsigned int seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)((i * 31 + seed * 7 + (i >> 9)) ^ (seed >> 3));
}

static void host_read(struct ctx *c, uint64_t off, void *buf, size_t len)
{
	assert_int_equal(pread(c->fd, buf, len, (off_t)off), (ssize_t)len);
}

static uint8_t dwz(struct ctx *c, uint32_t type, uint64_t sector, uint32_t num, uint32_t flags,
		   unsigned int nranges)
{
	uint8_t seg[2][16];

	assert_true(nranges >= 1 && nranges <= 2);
	for (unsigned int i = 0; i < nranges; i++) {
		uint64_t s = htole64(sector + i * (uint64_t)num);
		uint32_t n = htole32(num), f = htole32(flags);

		memcpy(seg[i], &s, 8);
		memcpy(seg[i] + 8, &n, 4);
		memcpy(seg[i] + 12, &f, 4);
	}
	return req(c, 0, type, 0, seg, 16 * nranges, NULL, 0, NULL);
}

/* ---- the pure parser, over host buffers (no ring, no backend) ---- */

struct pelem {
	struct vq_elem e;
	struct iovec iov[8];
	struct iovec data[8];
};

/* Segments: readable ones first, then writable ones, as vq_pop() hands them over. */
static void pelem_init(struct pelem *pe, uint8_t **bufs, const size_t *lens, unsigned int nout,
		       unsigned int nin)
{
	memset(pe, 0, sizeof(*pe));
	pe->e.iov = pe->iov;
	pe->e.iov_cap = 8;
	for (unsigned int i = 0; i < nout + nin; i++) {
		pe->iov[i] = (struct iovec){bufs[i], lens[i]};
		if (i < nout)
			pe->e.out_len += lens[i];
		else
			pe->e.in_len += lens[i];
	}
	pe->e.out_num = nout;
	pe->e.in_num = nin;
}

static void put_hdr(uint8_t *h, uint32_t type, uint64_t sector)
{
	uint32_t t = htole32(type);
	uint64_t s = htole64(sector);

	memset(h, 0, 16);
	memcpy(h, &t, 4);
	memcpy(h + 8, &s, 8);
}

static const uint8_t test_id[VIRTIO_BLK_ID_BYTES] = "0123456789";

static struct vblk_limits test_limits(void)
{
	return (struct vblk_limits){
		.capacity = 1000,
		.max_data = 64 * 1024,
		.discard = true,
		.write_zeroes = true,
		.max_discard_sectors = 100,
		.max_discard_seg = 1,
		.max_write_zeroes_sectors = 200,
		.max_write_zeroes_seg = 1,
		.id = test_id,
	};
}

/* A read whose header spans two segments and whose status shares the last data segment. */
static void test_parse_in_split(void **state)
{
	uint8_t hdr[16], a[300], b[212 + 1];
	uint8_t *bufs[] = {hdr, hdr + 5, a, b};
	size_t lens[] = {5, 11, sizeof(a), sizeof(b)};
	struct vblk_limits lim = test_limits();
	struct pelem pe;
	struct vblk_parsed p;

	put_hdr(hdr, VIRTIO_BLK_T_IN, 7);
	pelem_init(&pe, bufs, lens, 2, 2);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
	assert_int_equal(p.action, VBLK_SUBMIT);
	assert_int_equal(p.op, BLK_OP_READ);
	assert_int_equal(p.offset, 7 * 512);
	assert_int_equal(p.len, 512);
	assert_int_equal(p.used_len, 513);
	assert_int_equal(p.status_off, sizeof(a) + sizeof(b) - 1);
	assert_int_equal(p.data_cnt, 2);
	assert_ptr_equal(pe.data[0].iov_base, a);
	assert_int_equal(pe.data[0].iov_len, sizeof(a));
	assert_ptr_equal(pe.data[1].iov_base, b);
	assert_int_equal(pe.data[1].iov_len, 212); /* the status byte is not data */
}

/* A write with the header and the first data bytes in one segment. */
static void test_parse_out_merged(void **state)
{
	uint8_t first[16 + 100], rest[412], st[3];
	uint8_t *bufs[] = {first, rest, st};
	size_t lens[] = {sizeof(first), sizeof(rest), sizeof(st)};
	struct vblk_limits lim = test_limits();
	struct pelem pe;
	struct vblk_parsed p;

	put_hdr(first, VIRTIO_BLK_T_OUT, 999);
	pelem_init(&pe, bufs, lens, 2, 1);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
	assert_int_equal(p.action, VBLK_SUBMIT);
	assert_int_equal(p.op, BLK_OP_WRITE);
	assert_int_equal(p.len, 512);
	assert_int_equal(p.offset, 999 * 512);
	assert_int_equal(p.used_len, 1);
	assert_int_equal(p.status_off, 2); /* the last writable byte */
	assert_int_equal(p.data_cnt, 2);
	assert_ptr_equal(pe.data[0].iov_base, first + 16);
	assert_int_equal(pe.data[0].iov_len, 100);

	/* one sector further is past the end; read-only refuses any write */
	put_hdr(first, VIRTIO_BLK_T_OUT, 1000);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
	assert_int_equal(p.action, VBLK_DONE);
	assert_int_equal(p.status, VIRTIO_BLK_S_IOERR);
	put_hdr(first, VIRTIO_BLK_T_OUT, 0);
	lim.read_only = true;
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
	assert_int_equal(p.action, VBLK_DONE);
	assert_int_equal(p.status, VIRTIO_BLK_S_IOERR);
}

/* More data than the device's per-request limit is refused, not cut short. */
static void test_parse_too_long(void **state)
{
	static uint8_t big[64 * 1024 + 512];
	uint8_t hdr[16], st;
	uint8_t *bufs[] = {hdr, big, &st};
	size_t lens[] = {16, sizeof(big), 1};
	struct vblk_limits lim = test_limits();
	struct pelem pe;
	struct vblk_parsed p;

	put_hdr(hdr, VIRTIO_BLK_T_OUT, 0);
	pelem_init(&pe, bufs, lens, 2, 1);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
	assert_int_equal(p.action, VBLK_DONE);
	assert_int_equal(p.status, VIRTIO_BLK_S_IOERR);
	lens[1] = 64 * 1024;
	pelem_init(&pe, bufs, lens, 2, 1);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
	assert_int_equal(p.action, VBLK_SUBMIT);
}

static void dwz_seg(uint8_t *s, uint64_t sector, uint32_t num, uint32_t flags)
{
	uint64_t a = htole64(sector);
	uint32_t b = htole32(num), c = htole32(flags);

	memcpy(s, &a, 8);
	memcpy(s + 8, &b, 4);
	memcpy(s + 12, &c, 4);
}

static void test_parse_discard_write_zeroes(void **state)
{
	struct {
		uint32_t type;
		uint64_t sector;
		uint32_t num, flags;
		unsigned int nseg;
		int action;
		uint8_t status;
	} cases[] = {
		{VIRTIO_BLK_T_DISCARD, 10, 100, 0, 1, VBLK_SUBMIT, 0},
		{VIRTIO_BLK_T_DISCARD, 10, 101, 0, 1, VBLK_DONE, VIRTIO_BLK_S_IOERR},
		{VIRTIO_BLK_T_DISCARD, 10, 1, 1, 1, VBLK_DONE, VIRTIO_BLK_S_UNSUPP},
		{VIRTIO_BLK_T_DISCARD, 10, 1, 0x80, 1, VBLK_DONE, VIRTIO_BLK_S_UNSUPP},
		{VIRTIO_BLK_T_DISCARD, 10, 1, 0, 2, VBLK_DONE, VIRTIO_BLK_S_IOERR},
		{VIRTIO_BLK_T_DISCARD, 10, 1, 0, 0, VBLK_DONE, VIRTIO_BLK_S_IOERR},
		{VIRTIO_BLK_T_DISCARD, 950, 51, 0, 1, VBLK_DONE, VIRTIO_BLK_S_IOERR},
		{VIRTIO_BLK_T_DISCARD, 950, 50, 0, 1, VBLK_SUBMIT, 0},
		{VIRTIO_BLK_T_DISCARD, 5, 0, 0, 1, VBLK_DONE, VIRTIO_BLK_S_OK},
		{VIRTIO_BLK_T_DISCARD, UINT64_MAX / 512 + 1, 1, 0, 1, VBLK_DONE,
		 VIRTIO_BLK_S_IOERR},
		{VIRTIO_BLK_T_WRITE_ZEROES, 0, 200, 1, 1, VBLK_SUBMIT, 0},
		{VIRTIO_BLK_T_WRITE_ZEROES, 0, 201, 0, 1, VBLK_DONE, VIRTIO_BLK_S_IOERR},
		{VIRTIO_BLK_T_WRITE_ZEROES, 0, 1, 3, 1, VBLK_DONE, VIRTIO_BLK_S_UNSUPP},
	};
	struct vblk_limits lim = test_limits();

	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t hdr[16], segs[2 * 16], st;
		uint8_t *bufs[] = {hdr, segs, &st};
		size_t lens[] = {16, 16 * cases[i].nseg, 1};
		struct pelem pe;
		struct vblk_parsed p;

		put_hdr(hdr, cases[i].type, 0);
		dwz_seg(segs, cases[i].sector, cases[i].num, cases[i].flags);
		dwz_seg(segs + 16, cases[i].sector, cases[i].num, cases[i].flags);
		if (cases[i].nseg)
			pelem_init(&pe, bufs, lens, 2, 1);
		else
			pelem_init(&pe, (uint8_t *[]){hdr, &st}, (size_t[]){16, 1}, 1, 1);
		assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
		assert_int_equal(p.action, cases[i].action);
		if (p.action == VBLK_DONE) {
			assert_int_equal(p.status, cases[i].status);
			continue;
		}
		assert_int_equal(p.op, cases[i].type == VIRTIO_BLK_T_DISCARD ? BLK_OP_DISCARD
									     : BLK_OP_WRITE_ZEROES);
		assert_int_equal(p.offset, cases[i].sector * 512);
		assert_int_equal(p.len, (uint64_t)cases[i].num * 512);
		assert_int_equal(p.unmap, (cases[i].flags & 1) != 0);
	}

	/* not offered (the image cannot punch holes): UNSUPP */
	uint8_t hdr[16], seg[16], st;
	struct pelem pe;
	struct vblk_parsed p;

	lim.discard = lim.write_zeroes = false;
	put_hdr(hdr, VIRTIO_BLK_T_DISCARD, 0);
	dwz_seg(seg, 0, 1, 0);
	pelem_init(&pe, (uint8_t *[]){hdr, seg, &st}, (size_t[]){16, 16, 1}, 2, 1);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
	assert_int_equal(p.status, VIRTIO_BLK_S_UNSUPP);
}

static void test_parse_short_and_get_id(void **state)
{
	uint8_t hdr[16], id[24], st;
	struct vblk_limits lim = test_limits();
	struct pelem pe;
	struct vblk_parsed p;

	/* no writable byte, or a 15-byte header: -EBADMSG */
	put_hdr(hdr, VIRTIO_BLK_T_FLUSH, 0);
	pelem_init(&pe, (uint8_t *[]){hdr}, (size_t[]){16}, 1, 0);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), -EBADMSG);
	pelem_init(&pe, (uint8_t *[]){hdr, &st}, (size_t[]){15, 1}, 1, 1);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), -EBADMSG);
	pelem_init(&pe, (uint8_t *[]){hdr, &st}, (size_t[]){16, 1}, 1, 1);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
	assert_int_equal(p.action, VBLK_SUBMIT);
	assert_int_equal(p.op, BLK_OP_FLUSH);

	/* GET_ID: the ID NUL padded to 20 bytes, nothing written past them but the status */
	put_hdr(hdr, VIRTIO_BLK_T_GET_ID, 0);
	memset(id, 0xEE, sizeof(id));
	pelem_init(&pe, (uint8_t *[]){hdr, id}, (size_t[]){16, sizeof(id)}, 1, 1);
	assert_int_equal(vblk_req_parse(&pe.e, &lim, pe.data, 8, &p), 0);
	assert_int_equal(p.action, VBLK_DONE);
	assert_int_equal(p.status, VIRTIO_BLK_S_OK);
	assert_int_equal(p.used_len, 21);
	assert_int_equal(p.status_off, sizeof(id) - 1);
	assert_memory_equal(id, test_id, VIRTIO_BLK_ID_BYTES);
	assert_int_equal(id[20], 0xEE);
	assert_int_equal(id[22], 0xEE);
}

/*
 * io_uring refused by the host (seccomp, as a container runtime does): without io= the device
 * falls back to aio and says so on stderr; with io=uring named it is an error.
 */
static int deny_io_uring(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = ARRAY_SIZE(f), .filter = f};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* In a child: 0 = created with the expected engine, 1 = create failed, 2+ = other trouble. */
static int fallback_child(const char *path, bool explicit_engine, int errfd)
{
	struct virtio_blk_config disk = {.label = "disk 'test'",
					 .path = path,
					 .fd = -1,
					 .engine = BLK_ENGINE_URING,
					 .engine_fixed = explicit_engine,
					 .nr_queues = 1};
	struct guest_mem gm;
	struct ev_loop *loop;
	struct virtio_blk *b;
	char err[256] = "";
	int r;

	if (dup2(errfd, 2) < 0 || deny_io_uring() < 0)
		return 2;
	if (gm_create(&gm, 1 * MiB) < 0 || ev_loop_create(&loop, THREAD_IO) < 0)
		return 3;
	r = virtio_blk_create(&b, &disk, &gm, loop, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "ERR %s\n", err);
		return 1;
	}
	r = virtio_blk_engine(b) == BLK_ENGINE_AIO ? 0 : 4;
	virtio_blk_destroy(b);
	ev_loop_destroy(loop);
	gm_destroy(&gm);
	return r;
}

static int run_fallback(const char *path, bool explicit_engine, char *out, size_t outlen)
{
	char tmpl[] = "/var/tmp/vblk-test-err-XXXXXX";
	int errfd = mkstemp(tmpl);
	int status;
	ssize_t n;
	pid_t pid;

	assert_true(errfd >= 0);
	unlink(tmpl);
	fflush(stderr);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(fallback_child(path, explicit_engine, errfd));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	n = pread(errfd, out, outlen - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(errfd);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_engine_fallback(void **state)
{
	struct ctx *c = *state;
	char out[1024], want[128];

	make_image(c->path, sizeof(c->path), IMG_SIZE, &c->fd);
	assert_int_equal(run_fallback(c->path, false, out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "vmm: disk 'test': io_uring unavailable (");
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "), using aio\n"));
	/* one line (the other one the test image gets is about its partial last sector) */
	assert_null(strstr(strstr(out, "unavailable") + 1, "unavailable"));
	assert_non_null(strstr(out, "the last 300 bytes not at all"));

	assert_int_equal(run_fallback(c->path, true, out, sizeof(out)), 1);
	snprintf(want, sizeof(want), "ERR disk 'test': I/O engine uring: ");
	assert_non_null(strstr(out, want));
	assert_null(strstr(out, "using aio"));
}

/* ---- cases ---- */

static void test_write_read_roundtrip(void **state)
{
	struct ctx *c = *state;
	struct rw_layout lay = {0};
	uint8_t wbuf[3 * 512], rbuf[3 * 512], host[3 * 512];
	uint32_t used;

	ctx_open(c, 1);
	fill(wbuf, sizeof(wbuf), 1);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, 5, wbuf, sizeof(wbuf), &lay, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1); /* only the status byte was written */
	host_read(c, 5 * 512, host, sizeof(host));
	assert_memory_equal(host, wbuf, sizeof(wbuf));

	memset(rbuf, 0, sizeof(rbuf));
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, 5, rbuf, sizeof(rbuf), &lay, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, sizeof(rbuf) + 1);
	assert_memory_equal(rbuf, wbuf, sizeof(wbuf));

	/* the last visible sector is reachable, and an untouched one reads as zeroes */
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, NR_SECTORS - 1, rbuf, 512, &lay, NULL),
			 VIRTIO_BLK_S_OK);
	for (int i = 0; i < 512; i++)
		assert_int_equal(rbuf[i], 0);
	/* a zero-length transfer is fine */
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, 0, rbuf, 0, &lay, &used), VIRTIO_BLK_S_OK);
}

static void test_layouts(void **state)
{
	struct ctx *c = *state;
	static const struct rw_layout lays[] = {
		{.nseg = 4},
		{.nseg = 3, .indirect = true},
		{.nseg = 1, .hdr_split = true},
		{.nseg = 5, .hdr_split = true, .indirect = true},
		{.nseg = 1, .merged = true},
		{.nseg = 3, .merged = true},
		{.nseg = 2, .merged = true, .indirect = true},
	};
	uint8_t wbuf[8 * 512], rbuf[8 * 512], host[8 * 512];

	ctx_open(c, 1);
	for (unsigned int i = 0; i < ARRAY_SIZE(lays); i++) {
		uint64_t sector = 100 + 16 * i;
		struct rw_layout plain = {0};
		uint32_t used;

		fill(wbuf, sizeof(wbuf), 10 + i);
		/* written with the layout, read back plainly, and the other way round */
		assert_int_equal(
			rw(c, 0, VIRTIO_BLK_T_OUT, sector, wbuf, sizeof(wbuf), &lays[i], NULL),
			VIRTIO_BLK_S_OK);
		host_read(c, sector * 512, host, sizeof(host));
		assert_memory_equal(host, wbuf, sizeof(wbuf));
		memset(rbuf, 0, sizeof(rbuf));
		assert_int_equal(
			rw(c, 0, VIRTIO_BLK_T_IN, sector, rbuf, sizeof(rbuf), &plain, NULL),
			VIRTIO_BLK_S_OK);
		assert_memory_equal(rbuf, wbuf, sizeof(wbuf));
		memset(rbuf, 0, sizeof(rbuf));
		assert_int_equal(
			rw(c, 0, VIRTIO_BLK_T_IN, sector, rbuf, sizeof(rbuf), &lays[i], &used),
			VIRTIO_BLK_S_OK);
		assert_int_equal(used, sizeof(rbuf) + 1);
		assert_memory_equal(rbuf, wbuf, sizeof(wbuf));
	}
}

static void test_out_of_range(void **state)
{
	struct ctx *c = *state;
	struct rw_layout lay = {.nseg = 2};
	uint8_t wbuf[2 * 512], host[512], zero[512] = {0};
	uint32_t used;

	ctx_open(c, 1);
	fill(wbuf, sizeof(wbuf), 3);
	/* straddles the end: nothing may be written, not even the in-range first sector */
	assert_int_equal(
		rw(c, 0, VIRTIO_BLK_T_OUT, NR_SECTORS - 1, wbuf, sizeof(wbuf), &lay, &used),
		VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	host_read(c, (NR_SECTORS - 1) * 512, host, 512);
	assert_memory_equal(host, zero, 512);
	/* the invisible tail past the last whole sector stays unreachable */
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, NR_SECTORS, wbuf, 512, &lay, NULL),
			 VIRTIO_BLK_S_IOERR);
	/* sector * 512 overflows 64 bits */
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, UINT64_MAX / 256, wbuf, 512, &lay, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, UINT64_MAX, wbuf, 512, &lay, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, NR_SECTORS, wbuf, 512, &lay, NULL),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, NR_SECTORS + 1, wbuf, 0, &lay, NULL),
			 VIRTIO_BLK_S_IOERR);
}

static void test_unaligned_len(void **state)
{
	struct ctx *c = *state;
	struct rw_layout lay = {0};
	uint8_t buf[1024], host[1024], zero[1024] = {0};

	ctx_open(c, 1);
	fill(buf, sizeof(buf), 4);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, 0, buf, 100, &lay, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, 0, buf, 513, &lay, NULL), VIRTIO_BLK_S_IOERR);
	host_read(c, 0, host, sizeof(host));
	assert_memory_equal(host, zero, sizeof(host));
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, 0, buf, 300, &lay, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, 0, buf, 1023, &lay, NULL), VIRTIO_BLK_S_IOERR);
}

static void test_read_only(void **state)
{
	struct ctx *c = *state;
	struct rw_layout lay = {0};
	uint8_t wbuf[512], rbuf[512], host[512];
	char err[256];
	struct virtio_blk *ro;

	ctx_open(c, 1);
	/* put data in the image through the rw device, then hand the image over read-only */
	fill(wbuf, sizeof(wbuf), 5);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, 7, wbuf, 512, &lay, NULL), VIRTIO_BLK_S_OK);
	virtio_blk_destroy(c->b);
	c->b = NULL;
	assert_int_equal(
		blk_open(c, &ro, c->path, true, BLK_CACHE_WRITEBACK, NULL, 1, err, sizeof(err)), 0);
	c->b = ro;
	c->vdev = virtio_blk_device(ro);
	c->vdev->transport = &tr_ops;
	c->vdev->transport_opaque = c;
	assert_true(c->vdev->device_features & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	assert_false(c->vdev->device_features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD));
	assert_false(c->vdev->device_features & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES));
	driver_init(c);

	fill(rbuf, sizeof(rbuf), 6);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, 7, rbuf, 512, &lay, NULL), VIRTIO_BLK_S_IOERR);
	host_read(c, 7 * 512, host, 512);
	assert_memory_equal(host, wbuf, 512);
	assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, 7, 1, 0, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, 7, 1, 0, 1), VIRTIO_BLK_S_IOERR);
	host_read(c, 7 * 512, host, 512);
	assert_memory_equal(host, wbuf, 512);
	/* reads and flushes still work */
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, 7, rbuf, 512, &lay, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(rbuf, wbuf, 512);
	assert_int_equal(req(c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, NULL), VIRTIO_BLK_S_OK);
}

static void test_flush(void **state)
{
	struct ctx *c = *state;
	struct rw_layout lay = {0};
	uint8_t wbuf[4096];
	uint32_t used;

	ctx_open(c, 1);
	fill(wbuf, sizeof(wbuf), 7);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, 0, wbuf, sizeof(wbuf), &lay, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(req(c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, &used),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
}

static void test_get_id(void **state)
{
	struct ctx *c = *state;
	uint8_t id[VIRTIO_BLK_ID_BYTES], want[VIRTIO_BLK_ID_BYTES] = {0};
	uint32_t used;
	char err[256];
	static const char full[] = "ABCDEFGHIJKLMNOPQRST"; /* exactly 20 */

	ctx_open(c, 1);
	memcpy(want, "vmm-test-serial", strlen("vmm-test-serial"));
	assert_int_equal(req(c, 0, VIRTIO_BLK_T_GET_ID, 0, NULL, 0, id, sizeof(id), &used),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(id, want, sizeof(id)); /* NUL padded */
	assert_int_equal(used, sizeof(id) + 1);
	/* a shorter buffer gets what fits */
	uint8_t small[6];

	assert_int_equal(req(c, 0, VIRTIO_BLK_T_GET_ID, 0, NULL, 0, small, sizeof(small), &used),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(small, "vmm-te", sizeof(small));
	assert_int_equal(used, sizeof(small) + 1);

	/* a 20-byte serial fills the buffer without a terminator; longer ones are cut */
	virtio_blk_destroy(c->b);
	c->b = NULL;
	struct virtio_blk_config disk = {.label = "disk 'test'",
					 .path = c->path,
					 .fd = -1,
					 .engine = g_engine,
					 .engine_fixed = true,
					 .serial = full,
					 .nr_queues = 1};

	assert_int_equal(virtio_blk_create(&c->b, &disk, &c->gm, c->loop, err, sizeof(err)), 0);
	c->vdev = virtio_blk_device(c->b);
	c->vdev->transport = &tr_ops;
	c->vdev->transport_opaque = c;
	driver_init(c);
	uint8_t big[32];

	assert_int_equal(req(c, 0, VIRTIO_BLK_T_GET_ID, 0, NULL, 0, big, sizeof(big), &used),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(big, full, 20);
	for (int i = 20; i < 32; i++)
		assert_int_equal(big[i], 0xEE); /* untouched past the ID */
}

static void test_discard(void **state)
{
	struct ctx *c = *state;
	struct rw_layout lay = {0};
	const uint32_t len = 1 * MiB;
	uint8_t *wbuf = malloc(len), *rbuf = malloc(len), *zero = calloc(1, len);
	struct stat before, after;
	uint64_t sector = 2048;

	assert_non_null(wbuf);
	assert_non_null(rbuf);
	assert_non_null(zero);
	ctx_open(c, 1);
	if (!(c->vdev->device_features & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD))) {
		free(wbuf), free(rbuf), free(zero);
		skip();
	}
	fill(wbuf, len, 8);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, sector, wbuf, len, &lay, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(req(c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(fstat(c->fd, &before), 0);

	/* forbidden flags, too many ranges, out of range: refused, nothing punched */
	assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, sector, len / 512, 1, 1),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, sector, len / 512, 4, 1),
			 VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, sector, len / 1024, 0, 2),
			 VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, NR_SECTORS - 1, 2, 0, 1), VIRTIO_BLK_S_IOERR);
	assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, UINT64_MAX / 512, 2, 0, 1),
			 VIRTIO_BLK_S_IOERR);
	host_read(c, sector * 512, rbuf, len);
	assert_memory_equal(rbuf, wbuf, len);

	assert_int_equal(dwz(c, VIRTIO_BLK_T_DISCARD, sector, len / 512, 0, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(fstat(c->fd, &after), 0);
	/* the 1 MiB hole is 2048 blocks of 512 bytes; allow for extent metadata */
	assert_true(after.st_blocks + 1536 <= before.st_blocks);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, sector, rbuf, len, &lay, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(rbuf, zero, len);
	host_read(c, sector * 512, rbuf, len);
	assert_memory_equal(rbuf, zero, len);
	free(wbuf);
	free(rbuf);
	free(zero);
}

static void test_write_zeroes(void **state)
{
	struct ctx *c = *state;
	struct rw_layout lay = {0};
	uint8_t wbuf[8 * 512], rbuf[8 * 512], zero[8 * 512] = {0};

	ctx_open(c, 1);
	if (!(c->vdev->device_features & VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES)))
		skip();
	for (uint32_t unmap = 0; unmap <= 1; unmap++) {
		uint64_t sector = 300 + 64 * unmap;

		fill(wbuf, sizeof(wbuf), 9 + unmap);
		assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, sector, wbuf, sizeof(wbuf), &lay, NULL),
				 VIRTIO_BLK_S_OK);
		/* zero the middle 4 sectors; the neighbours keep their data */
		assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, sector + 2, 4, unmap, 1),
				 VIRTIO_BLK_S_OK);
		host_read(c, sector * 512, rbuf, sizeof(rbuf));
		assert_memory_equal(rbuf, wbuf, 2 * 512);
		assert_memory_equal(rbuf + 2 * 512, zero, 4 * 512);
		assert_memory_equal(rbuf + 6 * 512, wbuf + 6 * 512, 2 * 512);
		memset(rbuf, 0xAA, sizeof(rbuf));
		assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, sector + 2, rbuf, 4 * 512, &lay, NULL),
				 VIRTIO_BLK_S_OK);
		assert_memory_equal(rbuf, zero, 4 * 512);
	}
	/* unknown flag bits and out-of-range ranges are refused */
	assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, 0, 1, 2, 1), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(dwz(c, VIRTIO_BLK_T_WRITE_ZEROES, NR_SECTORS, 1, 0, 1),
			 VIRTIO_BLK_S_IOERR);
}

static void test_unsupported_types(void **state)
{
	struct ctx *c = *state;
	static const uint32_t types[] = {VIRTIO_BLK_T_GET_LIFETIME, VIRTIO_BLK_T_SECURE_ERASE, 2,
					 99, 0x80000000u};
	uint8_t buf[512];
	uint32_t used;

	ctx_open(c, 1);
	for (unsigned int i = 0; i < ARRAY_SIZE(types); i++) {
		assert_int_equal(req(c, 0, types[i], 0, NULL, 0, buf, sizeof(buf), &used),
				 VIRTIO_BLK_S_UNSUPP);
		assert_int_equal(used, 1);
	}
}

/* Chains that cannot carry a status come back with used length 0, and are counted. */
static void test_no_status_byte(void **state)
{
	struct ctx *c = *state;
	uint64_t before;
	struct fake_seg segs[2];
	uint8_t wbuf[512];

	ctx_open(c, 1);
	fill(wbuf, sizeof(wbuf), 11);
	before = c->vdev->malformed;
	/* header and data, nothing writable */
	segs[0] = (struct fake_seg){header(c, 0, VIRTIO_BLK_T_OUT, 0), 16, false};
	segs[1] = (struct fake_seg){guest_buf(c, 0, 512, wbuf), 512, false};
	assert_int_equal(run_chain(c, 0, segs, 2, false), 0);
	/* a header cut short, then a writable byte */
	segs[0] = (struct fake_seg){header(c, 0, VIRTIO_BLK_T_IN, 0), 15, false};
	segs[1] = (struct fake_seg){guest_buf(c, 0, 1, NULL), 1, true};
	assert_int_equal(run_chain(c, 0, segs, 2, false), 0);
	/* only writable buffers */
	segs[0] = (struct fake_seg){guest_buf(c, 0, 512, NULL), 512, true};
	segs[1] = (struct fake_seg){guest_buf(c, 0, 1, NULL), 1, true};
	assert_int_equal(run_chain(c, 0, segs, 2, true), 0);
	assert_int_equal(c->vdev->malformed, before + 3);

	uint8_t host[512], zero[512] = {0};

	host_read(c, 0, host, sizeof(host));
	assert_memory_equal(host, zero, sizeof(host));
	/* the queue still works */
	assert_int_equal(req(c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, NULL), VIRTIO_BLK_S_OK);
}

/* A chain the virtqueue rejects (buffer outside RAM): used length 0, the queue goes on. */
static void test_malformed_chain(void **state)
{
	struct ctx *c = *state;
	struct fake_seg segs[2];

	ctx_open(c, 1);
	segs[0] = (struct fake_seg){header(c, 0, VIRTIO_BLK_T_IN, 0), 16, false};
	segs[1] = (struct fake_seg){RAM_SIZE + 4096, 513, true};
	assert_int_equal(run_chain(c, 0, segs, 2, false), 0);
	assert_int_equal(c->needs_reset, 0);
	assert_int_equal(req(c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, NULL), VIRTIO_BLK_S_OK);
}

static uint32_t cfg32(struct ctx *c, uint32_t off)
{
	uint32_t v;

	pthread_mutex_lock(&c->vdev->lock);
	c->vdev->ops->config_read(c->vdev, off, (uint8_t *)&v, 4);
	pthread_mutex_unlock(&c->vdev->lock);
	return le32toh(v);
}

static void test_config_space(void **state)
{
	struct ctx *c = *state;
	uint8_t cfg[60], again[60];
	uint64_t cap;
	uint16_t nq;
	uint64_t f;

	ctx_open(c, 2);
	f = c->vdev->device_features;
	assert_true(f & VIRTIO_BIT(VIRTIO_F_VERSION_1));
	assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_FLUSH));
	assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX));
	assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX));
	assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE));
	assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_TOPOLOGY));
	assert_true(f & VIRTIO_BIT(VIRTIO_BLK_F_MQ));
	assert_false(f & VIRTIO_BIT(VIRTIO_BLK_F_RO));
	assert_false(f & VIRTIO_BIT(VIRTIO_BLK_F_CONFIG_WCE));
	assert_false(f & VIRTIO_BIT(VIRTIO_BLK_F_GEOMETRY));
	assert_true(c->vdev->config_len >= 60);

	pthread_mutex_lock(&c->vdev->lock);
	c->vdev->ops->config_read(c->vdev, 0, cfg, sizeof(cfg));
	pthread_mutex_unlock(&c->vdev->lock);
	memcpy(&cap, cfg, 8);
	assert_int_equal(le64toh(cap), IMG_SIZE / 512); /* the 300-byte tail is not visible */
	assert_int_equal(cfg32(c, 12), VIRTIO_BLK_QUEUE_SIZE - 2); /* seg_max */
	assert_true(cfg32(c, 8) >= 4096);			   /* size_max */
	assert_int_equal(cfg32(c, 20), 512);			   /* blk_size */
	memcpy(&nq, cfg + 34, 2);
	assert_int_equal(le16toh(nq), 2);
	assert_int_equal(cfg[24], 0); /* physical block = logical block */
	if (f & VIRTIO_BIT(VIRTIO_BLK_F_DISCARD)) {
		assert_true(cfg32(c, 36) >= 1);	   /* max_discard_sectors */
		assert_true(cfg32(c, 40) >= 1);	   /* max_discard_seg */
		assert_int_equal(cfg32(c, 44), 1); /* alignment in sectors = 512 / 512 */
		assert_true(cfg32(c, 48) >= 1);
		assert_true(cfg32(c, 52) >= 1);
		assert_int_equal(cfg[56], 1);
	}
	assert_int_equal(cfg[33], 0); /* padding */
	assert_int_equal(cfg[57] | cfg[58] | cfg[59], 0);

	/* read-only for the driver */
	uint8_t junk[60];

	memset(junk, 0x5A, sizeof(junk));
	pthread_mutex_lock(&c->vdev->lock);
	c->vdev->ops->config_write(c->vdev, 0, junk, sizeof(junk));
	c->vdev->ops->config_read(c->vdev, 0, again, sizeof(again));
	pthread_mutex_unlock(&c->vdev->lock);
	assert_memory_equal(again, cfg, sizeof(cfg));
	/* a partial read sees the same bytes */
	assert_int_equal(cfg32(c, 12), VIRTIO_BLK_QUEUE_SIZE - 2);

	/* the second queue serves requests and interrupts on its own */
	uint8_t wbuf[512], rbuf[512];
	struct rw_layout lay = {0};
	unsigned int n0 = c->notified[0];

	fill(wbuf, sizeof(wbuf), 12);
	assert_int_equal(rw(c, 1, VIRTIO_BLK_T_OUT, 9, wbuf, 512, &lay, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, 9, rbuf, 512, &lay, NULL), VIRTIO_BLK_S_OK);
	assert_memory_equal(rbuf, wbuf, 512);
	assert_true(__atomic_load_n(&c->notified[1], __ATOMIC_RELAXED) >= 1);
	assert_true(__atomic_load_n(&c->notified[0], __ATOMIC_RELAXED) >= n0 + 1);
}

/* Requests settled without the backend: one interrupt for the whole batch. */
static void test_notify_batch(void **state)
{
	struct ctx *c = *state;
	uint16_t heads[8];
	unsigned int n0;

	ctx_open(c, 1);
	for (unsigned int i = 0; i < 8; i++) {
		struct fake_seg segs[2] = {
			{header(c, 0, 99, 0), 16, false},
			{guest_buf(c, 0, 1, NULL), 1, true},
		};

		heads[i] = fake_vring_add_chain(&c->r[0], segs, 2);
		fake_vring_publish(&c->r[0], heads[i]);
	}
	n0 = c->notified[0];
	kick(c, 0);
	assert_int_equal(__atomic_load_n(&c->notified[0], __ATOMIC_RELAXED), n0 + 1);
	for (unsigned int i = 0; i < 8; i++) {
		uint32_t id, len;

		assert_true(fake_vring_get_used(&c->r[0], &id, &len));
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, 1);
	}
	assert_false(fake_vring_get_used(&c->r[0], NULL, NULL));
}

/*
 * A hostile driver publishes heads again while the device still holds them: with every
 * request slot in flight the queue stops popping, and resumes when completions free slots.
 */
static void test_slots_exhausted(void **state)
{
	struct ctx *c = *state;
	const unsigned int extra = 10;
	unsigned int got = 0;
	uint64_t hdr, st;

	ctx_open(c, 1);
	hdr = header(c, 0, VIRTIO_BLK_T_FLUSH, 0);
	st = guest_buf(c, 0, 1, NULL);
	/* the I/O thread cannot reap while we hold the lock: nothing completes in between */
	pthread_mutex_lock(&c->vdev->lock);
	for (unsigned int i = 0; i < QSIZE; i++) {
		struct fake_seg segs[2] = {{hdr, 16, false}, {st, 1, true}};

		fake_vring_publish(&c->r[0], fake_vring_add_chain(&c->r[0], segs, 2));
	}
	c->vdev->ops->queue_notify(c->vdev, 0);
	for (unsigned int i = 0; i < extra; i++) {
		struct fake_seg segs[2] = {{hdr, 16, false}, {st, 1, true}};

		fake_vring_publish(&c->r[0], fake_vring_add_chain(&c->r[0], segs, 2));
	}
	c->vdev->ops->queue_notify(c->vdev, 0);
	/* all slots are busy: the extra chains are still in the avail ring */
	assert_int_equal((uint16_t)(c->r[0].avail_idx - c->vdev->vq[0].last_avail), extra);
	pthread_mutex_unlock(&c->vdev->lock);

	/* count used entries (the used ring wraps; its index counts them all) */
	struct vring_used *u = fake_vring_host(&c->r[0], c->r[0].used_gpa, 4);
	struct timespec ts = {0, 1000 * 1000};

	for (int i = 0; i < 10000 && got < QSIZE + extra; i++) {
		got = __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
		if (got < QSIZE + extra)
			nanosleep(&ts, NULL);
	}
	assert_int_equal(got, QSIZE + extra);
	assert_int_equal(*(uint8_t *)fake_vring_host(&c->r[0], st, 1), VIRTIO_BLK_S_OK);
	assert_int_equal(c->needs_reset, 0);
}

/* Many writes in flight, then a reset: nothing completes afterwards; a new driver works. */
static void test_reset_inflight(void **state)
{
	struct ctx *c = *state;
	const uint32_t len = 64 * 1024;
	uint8_t *wbuf = malloc(len);
	struct rw_layout lay = {0};
	uint8_t rbuf[4096];
	uint16_t used_idx;

	assert_non_null(wbuf);
	ctx_open(c, 1);
	fill(wbuf, len, 13);
	for (unsigned int i = 0; i < 64; i++) {
		struct fake_seg segs[3] = {
			{header(c, 0, VIRTIO_BLK_T_OUT, i * (len / 512)), 16, false},
			{guest_buf(c, 0, len, wbuf), len, false},
			{guest_buf(c, 0, 1, NULL), 1, true},
		};

		fake_vring_publish(&c->r[0], fake_vring_add_chain(&c->r[0], segs, 3));
	}
	kick(c, 0);
	driver_reset(c);
	struct vring_used *u = fake_vring_host(&c->r[0], c->r[0].used_gpa, 4);

	used_idx = __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
	usleep(100 * 1000);
	assert_int_equal(__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE), used_idx);

	/* a fresh initialisation (driver reload, kexec) */
	driver_init(c);
	fill(rbuf, sizeof(rbuf), 14);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, 4000, rbuf, sizeof(rbuf), &lay, NULL),
			 VIRTIO_BLK_S_OK);
	memset(wbuf, 0, sizeof(rbuf));
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, 4000, wbuf, sizeof(rbuf), &lay, NULL),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(wbuf, rbuf, sizeof(rbuf));
	/* and a second reset with nothing in flight, then again */
	driver_reset(c);
	driver_init(c);
	assert_int_equal(req(c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, NULL), VIRTIO_BLK_S_OK);
	free(wbuf);
}

/*
 * Writes in flight, then the queue taken down and set up again at once on the same, cleared
 * ring (QueueReady 0 then 1, as virtio-mmio does it): none of the old writes may complete
 * into the new ring (its heads mean other buffers now), and the queue then works. Found by
 * the micro-guest's blk-hostile-queue-ready-inflight case with cache=none.
 */
static void test_queue_ready_toggle_inflight(void **state)
{
	struct ctx *c = *state;
	struct virtio_device *vdev;
	struct virtqueue *vq;
	const uint32_t len = 64 * 1024;
	uint8_t *wbuf = malloc(len);
	struct rw_layout lay = {0};
	uint8_t rbuf[4096], back[4096];

	assert_non_null(wbuf);
	ctx_open(c, 1);
	vdev = c->vdev;
	vq = &vdev->vq[0];
	fill(wbuf, len, 21);
	for (unsigned int i = 0; i < 64; i++) {
		struct fake_seg segs[3] = {
			{header(c, 0, VIRTIO_BLK_T_OUT, i * (len / 512)), 16, false},
			{guest_buf(c, 0, len, wbuf), len, false},
			{guest_buf(c, 0, 1, NULL), 1, true},
		};

		fake_vring_publish(&c->r[0], fake_vring_add_chain(&c->r[0], segs, 3));
	}
	kick(c, 0);
	pthread_mutex_lock(&vdev->lock);
	struct virtqueue saved = *vq;
	vq_reset(vq);
	vq->size = saved.size;
	vq->desc_gpa = saved.desc_gpa;
	vq->avail_gpa = saved.avail_gpa;
	vq->used_gpa = saved.used_gpa;
	fake_vring_init(&c->r[0], &c->gm, MiB, RING_SPAN, QSIZE);
	assert_int_equal(vq_enable(vq, &c->gm, vdev->queue_max_size, false, true), 0);
	pthread_mutex_unlock(&vdev->lock);

	struct vring_used *u = fake_vring_host(&c->r[0], c->r[0].used_gpa, 4);
	for (int i = 0; i < 20; i++) {
		usleep(10 * 1000);
		assert_int_equal(__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE), 0);
	}
	assert_int_equal(c->needs_reset, 0);

	fill(rbuf, sizeof(rbuf), 22);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, 5000, rbuf, sizeof(rbuf), &lay, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, 5000, back, sizeof(back), &lay, NULL),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(back, rbuf, sizeof(rbuf));
	assert_int_equal(__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE), 2);
	free(wbuf);
}

static void test_image_lock(void **state)
{
	struct ctx *c = *state;
	struct virtio_blk *second = NULL;
	char err[256] = "";
	int r;

	ctx_open(c, 1);
	r = blk_open(c, &second, c->path, false, BLK_CACHE_WRITEBACK, NULL, 1, err, sizeof(err));
	assert_true(r < 0);
	assert_null(second);
	assert_non_null(strstr(err, "lock"));
	assert_non_null(strstr(err, c->path));
	assert_true(strncmp(err, "disk 'test': ", 13) == 0);
	/* a missing file is named too */
	r = blk_open(c, &second, "/var/tmp/vblk-test-does-not-exist", false, BLK_CACHE_WRITEBACK,
		     NULL, 1, err, sizeof(err));
	assert_true(r < 0);
	assert_non_null(strstr(err, "disk 'test': /var/tmp/vblk-test-does-not-exist"));
}

/* cache=none: O_DIRECT, guest buffers only 16-byte aligned (the backend bounces them). */
static void test_cache_none(void **state)
{
	struct ctx *c = *state;
	struct rw_layout lay = {.nseg = 3};
	uint8_t wbuf[4 * 512], rbuf[4 * 512], host[4 * 512];
	char err[256];

	ctx_open(c, 1);
	virtio_blk_destroy(c->b);
	c->b = NULL;
	if (blk_open(c, &c->b, c->path, false, BLK_CACHE_NONE, NULL, 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "cache=none unavailable: %s\n", err);
		c->b = NULL;
		skip();
	}
	c->vdev = virtio_blk_device(c->b);
	c->vdev->transport = &tr_ops;
	c->vdev->transport_opaque = c;
	driver_init(c);
	fill(wbuf, sizeof(wbuf), 15);
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_OUT, 33, wbuf, sizeof(wbuf), &lay, NULL),
			 VIRTIO_BLK_S_OK);
	assert_int_equal(req(c, 0, VIRTIO_BLK_T_FLUSH, 0, NULL, 0, NULL, 0, NULL), VIRTIO_BLK_S_OK);
	host_read(c, 33 * 512, host, sizeof(host));
	assert_memory_equal(host, wbuf, sizeof(wbuf));
	assert_int_equal(rw(c, 0, VIRTIO_BLK_T_IN, 33, rbuf, sizeof(rbuf), &lay, NULL),
			 VIRTIO_BLK_S_OK);
	assert_memory_equal(rbuf, wbuf, sizeof(wbuf));
}

/* ---- adaptive polling ---- */

/* The rule alone, against the behaviour the header promises (all in ns). */
static void test_poll_adapt(void **state)
{
	const uint64_t us = 1000, max = 32 * us;
	uint64_t w = 0;

	(void)state;
	/* polling off: always closed */
	assert_int_equal(virtio_blk_poll_adapt(0, 0, 1), 0);
	assert_int_equal(virtio_blk_poll_adapt(8 * us, 0, 1), 0);
	/* events within the maximum open the window at 4 us and double it up to the maximum */
	w = virtio_blk_poll_adapt(w, max, 1 * us);
	assert_int_equal(w, 4 * us);
	for (uint64_t want = 8 * us; want <= max; want *= 2) {
		w = virtio_blk_poll_adapt(w, max, w + 1);
		assert_int_equal(w, want);
	}
	assert_int_equal(virtio_blk_poll_adapt(w, max, max), max);
	/* an event that the window caught changes nothing */
	assert_int_equal(virtio_blk_poll_adapt(16 * us, max, 16 * us), 16 * us);
	assert_int_equal(virtio_blk_poll_adapt(16 * us, max, 3 * us), 16 * us);
	/* waits longer than the maximum halve it, and below 4 us it closes */
	w = max;
	for (uint64_t want = max / 2; want >= 4 * us; want /= 2) {
		w = virtio_blk_poll_adapt(w, max, max + 1);
		assert_int_equal(w, want);
	}
	assert_int_equal(virtio_blk_poll_adapt(w, max, 10 * max), 0);
	assert_int_equal(virtio_blk_poll_adapt(0, max, 10 * max), 0);
	/* a maximum below 4 us: the window never exceeds it */
	assert_int_equal(virtio_blk_poll_adapt(0, 2 * us, 1 * us), 2 * us);
	assert_int_equal(virtio_blk_poll_adapt(2 * us, 2 * us, 3 * us), 0);
	/* a window above a (lowered) maximum is clamped */
	assert_int_equal(virtio_blk_poll_adapt(64 * us, max, 1), max);
}

static void loop_kick_cb(void *opaque)
{
	struct loop_kick *k = opaque;
	uint64_t v;

	if (read(k->fd, &v, sizeof(v)) != sizeof(v))
		return;
	pthread_mutex_lock(&k->c->vdev->lock);
	k->c->vdev->ops->queue_notify(k->c->vdev, k->q);
	pthread_mutex_unlock(&k->c->vdev->lock);
}

/* Deliver kicks on the device's I/O thread, through an eventfd, as an ioeventfd would. */
static void loop_kick_init(struct ctx *c)
{
	for (unsigned int q = 0; q < c->nq; q++) {
		struct loop_kick *k = &c->lk[q];

		k->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(k->fd >= 0);
		k->c = c;
		k->q = q;
		k->watch = ev_loop_add_fd(c->loop, k->fd, loop_kick_cb, k);
		assert_true(k->watch > 0);
	}
}

/* The driver's side of §2.7.10 after moving avail->idx from old to new: must it kick? */
static bool driver_must_kick(struct ctx *c, unsigned int q, uint16_t old, uint16_t new)
{
	/* the index store must be visible before the suppression field is read */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (c->event_idx) {
		uint16_t ev = fake_vring_avail_event(&c->r[q]);

		return (uint16_t)(new - ev - 1) < (uint16_t)(new - old);
	}
	struct vring_used *u = fake_vring_host(&c->r[q], c->r[q].used_gpa, 4);

	return !(__atomic_load_n(&u->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
}

/* Kicks are asked for: the next buffer made available would be announced. */
static bool kicks_enabled(struct ctx *c, unsigned int q)
{
	uint16_t idx = c->r[q].avail_idx;

	return driver_must_kick(c, q, idx, (uint16_t)(idx + 1));
}

static void loop_kick(struct ctx *c, unsigned int q)
{
	uint64_t one = 1;

	assert_int_equal(write(c->lk[q].fd, &one, sizeof(one)), sizeof(one));
}

/*
 * A 4 KiB write of pattern seed at sector, published like a driver does: kicked (through the
 * I/O thread) only if the device asks for kicks, and never unless may_kick. Returns whether
 * the device asked for a kick; *head gets the chain.
 */
static bool publish_write_ex(struct ctx *c, unsigned int q, uint64_t sector, unsigned int seed,
			     uint16_t *head, bool may_kick)
{
	uint8_t data[4096];
	uint64_t st = guest_buf(c, q, 1, NULL);
	uint16_t old = c->r[q].avail_idx;

	fill(data, sizeof(data), seed);
	*(uint8_t *)fake_vring_host(&c->r[q], st, 1) = 0xFF;
	struct fake_seg segs[3] = {
		{header(c, q, VIRTIO_BLK_T_OUT, sector), 16, false},
		{guest_buf(c, q, sizeof(data), data), sizeof(data), false},
		{st, 1, true},
	};
	*head = fake_vring_add_chain(&c->r[q], segs, 3);
	fake_vring_publish(&c->r[q], *head);
	if (!driver_must_kick(c, q, old, c->r[q].avail_idx))
		return false;
	if (may_kick)
		loop_kick(c, q);
	return true;
}

static bool publish_write(struct ctx *c, unsigned int q, uint64_t sector, unsigned int seed,
			  uint16_t *head)
{
	return publish_write_ex(c, q, sector, seed, head, true);
}

static void expect_written(struct ctx *c, unsigned int q, uint16_t head, uint64_t sector,
			   unsigned int seed)
{
	uint8_t want[4096], got[4096];
	uint32_t id, len;

	wait_used(c, q, &id, &len);
	assert_int_equal(id, head);
	assert_int_equal(len, 1);
	fill(want, sizeof(want), seed);
	host_read(c, sector * 512, got, sizeof(got));
	assert_memory_equal(got, want, sizeof(want));
}

static struct virtio_blk_poll_stats poll_stats(struct ctx *c)
{
	struct virtio_blk_poll_stats st;

	virtio_blk_get_poll_stats(c->b, &st);
	return st;
}

/* Wait (up to 10 s) until no poll phase runs. */
static struct virtio_blk_poll_stats wait_phase_over(struct ctx *c)
{
	struct timespec ts = {0, 100 * 1000};

	for (int i = 0; i < 100000; i++) {
		struct virtio_blk_poll_stats st = poll_stats(c);

		if (!st.active)
			return st;
		nanosleep(&ts, NULL);
	}
	fail_msg("poll phase still running after 10 s");
	return poll_stats(c);
}

#define POLL_MAX_US 250000 /* long windows, so that a loaded test machine keeps up */

/*
 * Polling on: once the window has grown, buffers that the driver makes available while the
 * I/O thread polls are completed without a kick, because kicks are suppressed (§2.7.10) for
 * as long as it polls; when the window runs out they are asked for again. The spin does not
 * hold the device lock (the stats, read under it, see the phase running). A wait longer than
 * the maximum narrows the window.
 */
static void poll_no_kick(struct ctx *c, bool event_idx)
{
	struct virtio_blk_poll_stats st, st0;
	unsigned int seed = 1, kicks = 0, iters = 0;
	uint64_t sector = 0;
	uint16_t head;

	ctx_open_poll(c, 1, POLL_MAX_US, event_idx);
	loop_kick_init(c);
	st = poll_stats(c);
	assert_int_equal(st.max_ns, POLL_MAX_US * 1000ULL);
	assert_int_equal(st.window_ns, 0);
	assert_true(kicks_enabled(c, 0));

	/* Events closer together than the maximum open the window and widen it. */
	while (st.window_ns < POLL_MAX_US * 1000ULL / 2) {
		assert_true(++iters < 60);
		kicks += publish_write(c, 0, sector, seed, &head);
		expect_written(c, 0, head, sector, seed);
		sector += 8, seed++;
		st = wait_phase_over(c);
		/* at rest, kicks are asked for */
		assert_true(kicks_enabled(c, 0));
	}
	assert_int_equal(kicks, iters);
	assert_true(st.grown >= 2);
	assert_true(st.expired >= 1);

	/* One kicked request starts a phase ... */
	assert_true(publish_write(c, 0, sector, seed, &head));
	expect_written(c, 0, head, sector, seed);
	sector += 8, seed++;
	st0 = poll_stats(c);
	assert_true(st0.active);
	/* ... during which kicks are suppressed and new buffers are picked up without one */
	for (unsigned int i = 0; i < 4; i++) {
		assert_false(kicks_enabled(c, 0));
		assert_false(publish_write(c, 0, sector, seed, &head));
		expect_written(c, 0, head, sector, seed);
		sector += 8, seed++;
	}
	st = poll_stats(c);
	assert_true(st.active);
	assert_true(st.found >= st0.found + 4);
	assert_int_equal(st.phases, st0.phases);

	/* The window runs out: kicks are asked for again, and one is needed again. */
	st = wait_phase_over(c);
	assert_int_equal(st.expired, st0.expired + 1);
	assert_true(kicks_enabled(c, 0));
	if (event_idx)
		assert_int_equal(fake_vring_avail_event(&c->r[0]), c->r[0].avail_idx);
	else
		assert_false(((struct vring_used *)fake_vring_host(&c->r[0], c->r[0].used_gpa, 4))
				     ->flags &
			     VRING_USED_F_NO_NOTIFY);

	/* A wait longer than the maximum halves the window. */
	usleep(POLL_MAX_US + 100000);
	st0 = st;
	assert_true(publish_write(c, 0, sector, seed, &head));
	expect_written(c, 0, head, sector, seed);
	st = wait_phase_over(c);
	assert_int_equal(st.shrunk, st0.shrunk + 1);
	assert_int_equal(st.window_ns, st0.window_ns / 2);
	assert_true(kicks_enabled(c, 0));
	assert_int_equal(c->needs_reset, 0);
}

static void test_poll_no_kick(void **state)
{
	poll_no_kick(*state, false);
}

static void test_poll_no_kick_event_idx(void **state)
{
	poll_no_kick(*state, true);
}

/*
 * poll=0: no phase ever runs, kicks are asked for again as soon as a request was taken, and a
 * buffer made available without a kick stays where it is until the kick.
 */
static void test_poll_off(void **state)
{
	struct ctx *c = *state;
	struct virtio_blk_poll_stats st;
	unsigned int seed = 1;
	uint16_t head;
	uint32_t id, len;

	ctx_open_poll(c, 1, 0, false);
	loop_kick_init(c);
	for (uint64_t sector = 0; sector < 64; sector += 8, seed++) {
		assert_true(publish_write(c, 0, sector, seed, &head));
		expect_written(c, 0, head, sector, seed);
		assert_true(kicks_enabled(c, 0));
	}
	/* published but not kicked: nobody looks until the kick */
	assert_true(publish_write_ex(c, 0, 64, seed, &head, false));
	usleep(50 * 1000);
	assert_false(fake_vring_get_used(&c->r[0], &id, &len));
	loop_kick(c, 0);
	expect_written(c, 0, head, 64, seed);

	st = poll_stats(c);
	assert_int_equal(st.max_ns, 0);
	assert_int_equal(st.window_ns, 0);
	assert_int_equal(st.phases, 0);
	assert_int_equal(st.found, 0);
	assert_int_equal(st.grown, 0);
	assert_false(st.active);
}

/* Two queues: a phase started by queue 0 also picks up queue 1's unkicked buffers. */
static void test_poll_two_queues(void **state)
{
	struct ctx *c = *state;
	struct virtio_blk_poll_stats st, st0;
	unsigned int seed = 1, iters = 0;
	uint64_t sector = 0;
	uint16_t head;

	ctx_open_poll(c, 2, POLL_MAX_US, false);
	loop_kick_init(c);
	do {
		assert_true(++iters < 60);
		assert_true(publish_write(c, 0, sector, seed, &head));
		expect_written(c, 0, head, sector, seed);
		sector += 8, seed++;
		st = wait_phase_over(c);
	} while (st.window_ns < POLL_MAX_US * 1000ULL / 2);

	assert_true(publish_write(c, 0, sector, seed, &head));
	expect_written(c, 0, head, sector, seed);
	sector += 8, seed++;
	st0 = poll_stats(c);
	assert_true(st0.active);
	assert_false(kicks_enabled(c, 1));
	assert_false(publish_write(c, 1, sector, seed, &head));
	expect_written(c, 1, head, sector, seed);
	/* found by the same phase, not by the re-check after it */
	st = poll_stats(c);
	assert_true(st.active);
	assert_int_equal(st.phases, st0.phases);
	assert_true(st.found > st0.found);
	st = wait_phase_over(c);
	assert_true(kicks_enabled(c, 0));
	assert_true(kicks_enabled(c, 1));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup1, teardown)

int main(int argc, char **argv)
{
	static const struct CMUnitTest tests[] = {
		T(test_write_read_roundtrip),
		T(test_layouts),
		T(test_out_of_range),
		T(test_unaligned_len),
		T(test_read_only),
		T(test_flush),
		T(test_get_id),
		T(test_discard),
		T(test_write_zeroes),
		T(test_unsupported_types),
		T(test_no_status_byte),
		T(test_malformed_chain),
		T(test_config_space),
		T(test_notify_batch),
		T(test_slots_exhausted),
		T(test_reset_inflight),
		T(test_queue_ready_toggle_inflight),
		T(test_image_lock),
		T(test_cache_none),
		T(test_poll_off),
		T(test_poll_no_kick),
		T(test_poll_no_kick_event_idx),
		T(test_poll_two_queues),
	};
	static const enum blk_engine engines[] = {BLK_ENGINE_URING, BLK_ENGINE_AIO,
						  BLK_ENGINE_SYNC};
	static const struct CMUnitTest parser_tests[] = {
		cmocka_unit_test(test_parse_in_split),
		cmocka_unit_test(test_parse_out_merged),
		cmocka_unit_test(test_parse_too_long),
		cmocka_unit_test(test_parse_discard_write_zeroes),
		cmocka_unit_test(test_parse_short_and_get_id),
		cmocka_unit_test(test_poll_adapt),
		cmocka_unit_test_setup_teardown(test_engine_fallback, setup1, teardown),
	};
	char name[64];
	int failed = 0;

	if (argc <= 1)
		failed += cmocka_run_group_tests_name("virtio_blk_parse", parser_tests, NULL, NULL);

	for (unsigned int i = 0; i < ARRAY_SIZE(engines); i++) {
		if (argc > 1 && strcmp(argv[1], blk_engine_name(engines[i])) != 0)
			continue;
		g_engine = engines[i];
		snprintf(name, sizeof(name), "virtio_blk[%s]", blk_engine_name(g_engine));
		failed += cmocka_run_group_tests_name(name, tests, NULL, NULL);
	}
	return failed ? 1 : 0;
}
