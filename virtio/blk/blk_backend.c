// SPDX-License-Identifier: Apache-2.0
/*
 * Block backends, the part every engine shares: request checks, the depth limit, the O_DIRECT
 * bounce, the done list behind the one eventfd, and the synchronous operations that the sync
 * engine uses for everything and the others for what their kernel interface cannot do.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk_backend_internal.h"

/* Zeroes are written in pieces of this size when the filesystem cannot zero a range itself. */
#define BLK_ZERO_CHUNK (1 * MiB)
/* preadv/pwritev take at most this many segments per call in the synchronous loop. */
#define BLK_RW_WINDOW 64
/* How often a synchronous call is retried on EAGAIN before the error is returned. */
#define BLK_EAGAIN_RETRIES 100

/*
 * A misaligned O_DIRECT read or write goes to the kernel as one aligned buffer covering the
 * aligned range [start, start + req->bounce_len).
 */
struct blk_bounce {
	struct iovec iov; /* the engine's one segment: {buf, bounce_len} */
	uint64_t start;
	void *buf;
};

const char *blk_engine_name(enum blk_engine e)
{
	switch (e) {
	case BLK_ENGINE_URING:
		return "uring";
	case BLK_ENGINE_AIO:
		return "aio";
	case BLK_ENGINE_SYNC:
		return "sync";
	}
	return "?";
}

int blk_engine_parse(const char *s, enum blk_engine *out)
{
	static const enum blk_engine all[] = {BLK_ENGINE_URING, BLK_ENGINE_AIO, BLK_ENGINE_SYNC};

	if (!s || !out)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		if (strcmp(s, blk_engine_name(all[i])) == 0) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- small helpers over iovecs and fds ---- */

/* Copy n bytes out of iov, starting skip bytes in, to dst. */
static void iov_gather(const struct iovec *iov, unsigned int cnt, uint64_t skip, void *dst,
		       uint64_t n)
{
	char *d = dst;

	for (unsigned int i = 0; i < cnt && n; i++) {
		uint64_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l = MIN(l - skip, n);
		memcpy(d, (const char *)iov[i].iov_base + skip, l);
		d += l;
		n -= l;
		skip = 0;
	}
}

/* Copy n bytes from src into iov from its start. */
static void iov_scatter(const struct iovec *iov, unsigned int cnt, const void *src, uint64_t n)
{
	const char *s = src;

	for (unsigned int i = 0; i < cnt && n; i++) {
		uint64_t l = MIN((uint64_t)iov[i].iov_len, n);

		memcpy(iov[i].iov_base, s, l);
		s += l;
		n -= l;
	}
}

static int retry_errno(int err, unsigned int *tries)
{
	if (err == EINTR)
		return 1;
	if (err == EAGAIN && (*tries)++ < BLK_EAGAIN_RETRIES) {
		usleep(1000);
		return 1;
	}
	return 0;
}

/*
 * preadv/pwritev of the len bytes described by iov at offset, of which done are already
 * transferred. Loops over short counts; stops at end of file (reads) and returns the byte
 * count, which the caller sees as short. An error after partial progress returns the
 * progress (short is an error to the device, and the bytes did move).
 */
static int64_t rw_sync(struct blk_backend *b, bool write, const struct iovec *iov,
		       unsigned int iovcnt, uint64_t offset, uint64_t len, uint64_t done)
{
	struct iovec win[BLK_RW_WINDOW];
	unsigned int i = 0, tries = 0;
	uint64_t skip = done;

	while (done < len) {
		unsigned int n = 0;
		ssize_t r;

		while (i < iovcnt && skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			i++;
		}
		if (i == iovcnt)
			break;
		/* O_DIRECT cannot continue at an unaligned point: a short count there is the
		 * end of the file. */
		if (!IS_ALIGNED(done, (uint64_t)b->cfg.dio_align))
			break;
		for (unsigned int j = i; j < iovcnt && n < BLK_RW_WINDOW; j++)
			win[n++] = iov[j];
		win[0].iov_base = (char *)win[0].iov_base + skip;
		win[0].iov_len -= skip;
		if (write)
			r = pwritev(b->fd, win, (int)n, (off_t)(offset + done));
		else
			r = preadv(b->fd, win, (int)n, (off_t)(offset + done));
		if (r < 0) {
			int err = errno;

			if (retry_errno(err, &tries))
				continue;
			return done ? (int64_t)done : -err;
		}
		if (r == 0) {
			if (write && !done)
				return -EIO;
			break;
		}
		done += (uint64_t)r;
		skip += (uint64_t)r;
	}
	return (int64_t)done;
}

static int pwrite_full(int fd, const void *buf, uint64_t n, uint64_t off)
{
	unsigned int tries = 0;

	while (n) {
		ssize_t r = pwrite(fd, buf, n, (off_t)off);

		if (r < 0) {
			if (retry_errno(errno, &tries))
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		buf = (const char *)buf + r;
		n -= (uint64_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Read one aligned block; what lies past the end of the file reads as zeroes. */
static int pread_block(int fd, void *buf, uint64_t n, uint64_t off)
{
	unsigned int tries = 0;
	uint64_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));

		if (r < 0) {
			if (retry_errno(errno, &tries))
				continue;
			return -errno;
		}
		if (r == 0)
			break;
		got += (uint64_t)r;
	}
	memset((char *)buf + got, 0, n - got);
	return 0;
}

static int falloc(int fd, int mode, uint64_t off, uint64_t len)
{
	unsigned int tries = 0;

	while (fallocate(fd, mode, (off_t)off, (off_t)len) < 0) {
		if (!retry_errno(errno, &tries))
			return -errno;
	}
	return 0;
}

/* ---- the done list and the eventfd ---- */

void blk_backend_complete(struct blk_backend *b, struct blk_req *req, int64_t res)
{
	req->result = res;
	req->next_done = NULL;
	if (b->done_tail)
		b->done_tail->next_done = req;
	else
		b->done_head = req;
	b->done_tail = req;
}

void blk_backend_signal(struct blk_backend *b)
{
	uint64_t one = 1;

	/* Cannot fail short of a counter at 2^64-2, which no number of requests reaches. */
	while (write(b->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void eventfd_consume(struct blk_backend *b)
{
	uint64_t v;

	while (read(b->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

/*
 * Wait until the engine holds nothing: every request handed to the kernel has finished and
 * sits on the done list. Used before a read-modify-write, which must not race a write in
 * flight to the same block.
 */
static void backend_quiesce(struct blk_backend *b)
{
	b->ops->kick(b);
	while (b->ops->poll(b, true))
		;
	if (b->done_head)
		blk_backend_signal(b);
}

/* ---- O_DIRECT: read-modify-write and the bounce ---- */

/*
 * Write len bytes at off from iov (zeroes when iov is NULL) through an O_DIRECT fd when off or
 * len is not aligned: the aligned blocks around them are read, patched and written back.
 * Synchronous and after a quiesce, so no write of this backend to the same blocks is in
 * flight (virtio-blk uses one backend for all its queues; two backends on one image would
 * still race here). Slow, but only reached when the guest's blocks are smaller than dio_align.
 * The file does not grow beyond what a buffered write would have made it.
 */
static int64_t rmw_write(struct blk_backend *b, uint64_t off, uint64_t len, const struct iovec *iov,
			 unsigned int iovcnt)
{
	const uint64_t a = b->cfg.dio_align;
	const uint64_t end = off + len;
	const uint64_t astart = ALIGN_DOWN(off, a), aend = ALIGN_UP(end, a);
	const uint64_t chunk_max = MAX(a, ALIGN_DOWN(BLK_ZERO_CHUNK, a));
	uint64_t old_size = 0;
	struct stat st;
	void *buf;
	int r = 0;

	if (!b->is_blockdev) {
		if (fstat(b->fd, &st) < 0)
			return -errno;
		old_size = (uint64_t)st.st_size;
	}
	if (posix_memalign(&buf, a, MIN(aend - astart, chunk_max)))
		return -ENOMEM;
	backend_quiesce(b);

	for (uint64_t cs = astart; cs < aend;) {
		const uint64_t n = MIN(aend - cs, chunk_max), ce = cs + n;
		const uint64_t us = MAX(cs, off), ue = MIN(ce, end);

		if (off > cs) {
			r = pread_block(b->fd, buf, a, cs);
			if (r < 0)
				goto out;
		}
		if (end < ce && !(off > cs && ce - a == cs)) {
			r = pread_block(b->fd, (char *)buf + n - a, a, ce - a);
			if (r < 0)
				goto out;
		}
		if (iov)
			iov_gather(iov, iovcnt, us - off, (char *)buf + (us - cs), ue - us);
		else
			memset((char *)buf + (us - cs), 0, ue - us);
		r = pwrite_full(b->fd, buf, n, cs);
		if (r < 0)
			goto out;
		cs = ce;
	}
	if (!b->is_blockdev && aend > old_size && ftruncate(b->fd, (off_t)MAX(old_size, end)) < 0)
		r = -errno;
out:
	free(buf);
	return r < 0 ? r : (int64_t)len;
}

/* Write zeroes over [off, off+len) the slow way, when the filesystem cannot zero a range. */
static int zero_write(struct blk_backend *b, uint64_t off, uint64_t len)
{
	const uint64_t a = b->cfg.dio_align;
	uint64_t chunk = MIN(len, BLK_ZERO_CHUNK);
	void *buf;
	int r = 0;

	if (!IS_ALIGNED(off, a) || !IS_ALIGNED(len, a)) {
		int64_t n = rmw_write(b, off, len, NULL, 0);

		return n < 0 ? (int)n : 0;
	}
	if (posix_memalign(&buf, MAX(a, 4096), chunk))
		return -ENOMEM;
	memset(buf, 0, chunk);
	for (uint64_t done = 0; done < len && r == 0;) {
		uint64_t n = MIN(chunk, len - done);

		r = pwrite_full(b->fd, buf, n, off + done);
		done += n;
	}
	free(buf);
	return r;
}

/*
 * WRITE_ZEROES: let the filesystem (or the block device's fallocate) do it, deallocating if
 * allowed; zero by hand where it says it cannot (EOPNOTSUPP).
 */
static int write_zeroes_sync(struct blk_backend *b, uint64_t off, uint64_t len, bool unmap)
{
	int r;

	if (unmap) {
		r = falloc(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
		if (r != -EOPNOTSUPP)
			return r;
	}
	r = falloc(b->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len);
	if (r != -EOPNOTSUPP)
		return r;
	return zero_write(b, off, len);
}

int64_t blk_io_do_sync(struct blk_backend *b, const struct blk_io *io)
{
	switch (io->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		return rw_sync(b, io->op == BLK_OP_WRITE, io->iov, io->iovcnt, io->offset, io->len,
			       0);
	case BLK_OP_FLUSH:
		while (fdatasync(b->fd) < 0) {
			if (errno != EINTR)
				return -errno;
		}
		return 0;
	case BLK_OP_DISCARD:
		if (b->is_blockdev) {
			uint64_t range[2] = {io->offset, io->len};

			return ioctl(b->fd, BLKDISCARD, range) < 0 ? -errno : 0;
		}
		return falloc(b->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, io->offset,
			      io->len);
	case BLK_OP_WRITE_ZEROES:
		return write_zeroes_sync(b, io->offset, io->len, io->unmap);
	}
	return -EINVAL;
}

static bool req_misaligned(const struct blk_backend *b, const struct blk_req *req)
{
	const uint64_t a = b->cfg.dio_align;

	if (!IS_ALIGNED(req->offset, a) || !IS_ALIGNED(req->len, a))
		return true;
	for (unsigned int i = 0; i < req->iovcnt; i++) {
		if (!IS_ALIGNED((uintptr_t)req->iov[i].iov_base, (uintptr_t)a) ||
		    !IS_ALIGNED((uint64_t)req->iov[i].iov_len, a))
			return true;
	}
	return false;
}

static void bounce_free(struct blk_req *req)
{
	struct blk_bounce *bb = req->bounce;

	if (!bb)
		return;
	free(bb->buf);
	free(bb);
	req->bounce = NULL;
	req->bounce_len = 0;
}

/*
 * Cover [offset, offset+len) with one aligned buffer; writes are copied in now, reads copied
 * out in bounce_finish(). Writes get here only with offset and len aligned (the rest go
 * through rmw_write), so for them the buffer is exactly the request.
 */
static int bounce_prepare(struct blk_backend *b, struct blk_req *req, struct blk_io *io)
{
	const uint64_t a = b->cfg.dio_align;
	const uint64_t start = ALIGN_DOWN(req->offset, a);
	const uint64_t end = ALIGN_UP(req->offset + req->len, a);
	struct blk_bounce *bb = calloc(1, sizeof(*bb));

	if (!bb)
		return -ENOMEM;
	if (posix_memalign(&bb->buf, a, end - start)) {
		free(bb);
		return -ENOMEM;
	}
	if (req->op == BLK_OP_WRITE)
		iov_gather(req->iov, req->iovcnt, 0, bb->buf, req->len);
	bb->start = start;
	bb->iov.iov_base = bb->buf;
	bb->iov.iov_len = end - start;
	req->bounce = bb;
	req->bounce_len = end - start;
	io->offset = start;
	io->len = end - start;
	io->iov = &bb->iov;
	io->iovcnt = 1;
	return 0;
}

/* res counts bytes of the aligned range; translate it back to the caller's request. */
static int64_t bounce_finish(struct blk_req *req, int64_t res)
{
	struct blk_bounce *bb = req->bounce;

	if (req->op == BLK_OP_READ && res >= 0) {
		const uint64_t head = req->offset - bb->start;
		uint64_t got = (uint64_t)res > head ? MIN((uint64_t)res - head, req->len) : 0;

		iov_scatter(req->iov, req->iovcnt, (char *)bb->buf + head, got);
		res = (int64_t)got;
	} else if (req->op == BLK_OP_WRITE && res > (int64_t)req->len) {
		res = (int64_t)req->len;
	}
	bounce_free(req);
	return res;
}

static void req_io(const struct blk_req *req, struct blk_io *io)
{
	const struct blk_bounce *bb = req->bounce;

	*io = (struct blk_io){
		.op = req->op,
		.offset = req->offset,
		.len = req->len,
		.iov = req->iov,
		.iovcnt = req->iovcnt,
		.unmap = req->unmap,
	};
	if (bb) {
		io->offset = bb->start;
		io->len = req->bounce_len;
		io->iov = &bb->iov;
		io->iovcnt = 1;
	}
}

/*
 * What the kernel said, made final: an interrupted request is done again synchronously, a
 * short transfer is continued (it stops for good at end of file), zeroing that the filesystem
 * refused is done by hand, and a bounce is copied out and freed. Each step is a no-op for a
 * result that is already final, so synchronous completions pass through unchanged.
 */
static void req_finish(struct blk_backend *b, struct blk_req *req)
{
	int64_t res = req->result;
	struct blk_io io;

	req_io(req, &io);
	if (res == -EINTR || res == -EAGAIN)
		res = blk_io_do_sync(b, &io);
	else if ((io.op == BLK_OP_READ || io.op == BLK_OP_WRITE) && res > 0 &&
		 (uint64_t)res < io.len)
		res = rw_sync(b, io.op == BLK_OP_WRITE, io.iov, io.iovcnt, io.offset, io.len,
			      (uint64_t)res);
	else if (io.op == BLK_OP_WRITE_ZEROES && res == -EOPNOTSUPP)
		res = write_zeroes_sync(b, io.offset, io.len, false);
	if (req->bounce)
		res = bounce_finish(req, res);
	req->result = res;
}

/* ---- the interface ---- */

int blk_backend_open(enum blk_engine engine, int fd, const struct blk_backend_config *cfg,
		     struct blk_backend **out)
{
	const struct blk_engine_ops *ops;
	struct blk_backend *b;
	struct stat st;
	int r;

	switch (engine) {
	case BLK_ENGINE_URING:
		ops = &blk_engine_uring_ops;
		break;
	case BLK_ENGINE_AIO:
		ops = &blk_engine_aio_ops;
		break;
	case BLK_ENGINE_SYNC:
		ops = &blk_engine_sync_ops;
		break;
	default:
		return -EINVAL;
	}
	if (!cfg || !out || fd < 0 || cfg->depth == 0 || cfg->depth > BLK_BACKEND_MAX_DEPTH)
		return -EINVAL;
	if (fstat(fd, &st) < 0)
		return -errno;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->engine = engine;
	b->ops = ops;
	b->fd = fd;
	b->is_blockdev = S_ISBLK(st.st_mode);
	b->cfg = *cfg;
	if (!cfg->direct)
		b->cfg.dio_align = 1;
	else if (!cfg->dio_align)
		b->cfg.dio_align = 512;
	if (b->cfg.dio_align & (b->cfg.dio_align - 1)) {
		r = -EINVAL;
		goto err_free;
	}
	b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->efd < 0) {
		r = -errno;
		goto err_free;
	}
	r = ops->open(b);
	if (r < 0)
		goto err_efd;
	*out = b;
	return 0;

err_efd:
	close(b->efd);
err_free:
	free(b);
	return r;
}

void blk_backend_close(struct blk_backend *b)
{
	if (!b)
		return;
	/* Buffers of requests in flight belong to the caller, who frees them after we return:
	 * the kernel must be done with every one of them first. */
	b->ops->kick(b);
	while (b->ops->poll(b, true))
		;
	for (struct blk_req *req = b->done_head; req; req = req->next_done)
		bounce_free(req);
	b->ops->close(b);
	close(b->efd);
	free(b);
}

enum blk_engine blk_backend_engine(const struct blk_backend *b)
{
	return b->engine;
}

int blk_backend_event_fd(const struct blk_backend *b)
{
	return b->efd;
}

static int req_check(const struct blk_req *req)
{
	uint64_t sum = 0, end;

	switch (req->op) {
	case BLK_OP_READ:
	case BLK_OP_WRITE:
		/* IOV_MAX: what preadv, io_uring and aio accept in one request. */
		if (!req->iov || req->iovcnt == 0 || req->iovcnt > IOV_MAX)
			return -EINVAL;
		for (unsigned int i = 0; i < req->iovcnt; i++) {
			if (!req->iov[i].iov_base && req->iov[i].iov_len)
				return -EINVAL;
			if (__builtin_add_overflow(sum, (uint64_t)req->iov[i].iov_len, &sum))
				return -EINVAL;
		}
		if (sum != req->len)
			return -EINVAL;
		break;
	case BLK_OP_FLUSH:
		return 0;
	case BLK_OP_DISCARD:
	case BLK_OP_WRITE_ZEROES:
		if (req->len == 0)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	/* Offsets are off_t in every interface below us. */
	if (__builtin_add_overflow(req->offset, req->len, &end) || end > (uint64_t)INT64_MAX)
		return -EINVAL;
	return 0;
}

/* A request that was done synchronously in the common layer: count it and complete it. */
static void submit_done_now(struct blk_backend *b, struct blk_req *req, int64_t res)
{
	b->inflight++;
	blk_backend_complete(b, req, res);
	blk_backend_signal(b);
}

int blk_backend_submit(struct blk_backend *b, struct blk_req *req)
{
	struct blk_io io;
	int r;

	if (!b || !req)
		return -EINVAL;
	r = req_check(req);
	if (r < 0)
		return r;
	if (b->inflight >= b->cfg.depth)
		return -EAGAIN;

	req->result = 0;
	req->next_done = NULL;
	req->bounce = NULL;
	req->bounce_len = 0;
	req_io(req, &io);
	if (req->op == BLK_OP_READ || req->op == BLK_OP_WRITE) {
		if (req->len == 0) {
			submit_done_now(b, req, 0);
			return 0;
		}
		if (b->cfg.direct && req_misaligned(b, req)) {
			if (req->op == BLK_OP_WRITE &&
			    (!IS_ALIGNED(req->offset, (uint64_t)b->cfg.dio_align) ||
			     !IS_ALIGNED(req->len, (uint64_t)b->cfg.dio_align))) {
				int64_t res =
					rmw_write(b, req->offset, req->len, req->iov, req->iovcnt);

				submit_done_now(b, req, res);
				return 0;
			}
			r = bounce_prepare(b, req, &io);
			if (r < 0)
				return r;
		}
	}
	b->inflight++;
	r = b->ops->submit(b, req, &io);
	if (r < 0) {
		b->inflight--;
		bounce_free(req);
		return r;
	}
	return 0;
}

void blk_backend_kick(struct blk_backend *b)
{
	b->ops->kick(b);
}

unsigned int blk_backend_reap(struct blk_backend *b, blk_done_fn done, void *opaque)
{
	struct blk_req *list;
	unsigned int n = 0;

	if (!b)
		return 0;
	/* Consume the signal first: anything finishing after the poll below signals again. */
	eventfd_consume(b);
	b->ops->poll(b, false);

	/* Deliver what is done now; what completes inside a callback (a sync engine finishing a
	 * request submitted from it) waits for the next reap, with the eventfd readable. */
	list = b->done_head;
	b->done_head = b->done_tail = NULL;
	while (list) {
		struct blk_req *req = list;

		list = req->next_done;
		req->next_done = NULL;
		req_finish(b, req);
		b->inflight--;
		n++;
		if (done)
			done(opaque, req);
	}
	return n;
}

void blk_backend_drain(struct blk_backend *b, blk_done_fn done, void *opaque)
{
	if (!b)
		return;
	while (b->inflight) {
		b->ops->kick(b);
		if (blk_backend_reap(b, done, opaque))
			continue;
		if (!b->ops->poll(b, true) && !b->done_head)
			break; /* nothing anywhere: the count is wrong, do not spin */
	}
}

unsigned int blk_backend_inflight(const struct blk_backend *b)
{
	return b->inflight;
}

bool blk_backend_poll_ready(struct blk_backend *b)
{
	if (!b)
		return false;
	/* Relaxed: only a hint (blk_backend.h); the reaping thread looks again under its lock. */
	if (__atomic_load_n(&b->done_head, __ATOMIC_RELAXED))
		return true;
	return b->ops->ready && b->ops->ready(b);
}
