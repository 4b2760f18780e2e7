// SPDX-License-Identifier: Apache-2.0
/*
 * The io_uring engine (liburing). The ring is locked down before it can be used: created
 * disabled (IORING_SETUP_R_DISABLED), the image registered as fixed file 0 and the eventfd
 * attached, then restricted (IORING_REGISTER_RESTRICTIONS) to the four opcodes enum blk_op
 * needs, with IOSQE_FIXED_FILE both allowed and required, and only then enabled. Once enabled,
 * a restricted ring takes no io_uring_register() call but IORING_UNREGISTER_FILES (needed at
 * close), so nothing can widen it.
 * Everything used here exists since Linux 5.10 (the oldest kernel we run on is 6.1).
 *
 * READ/WRITE are READV/WRITEV, FLUSH is FSYNC with IORING_FSYNC_DATASYNC, DISCARD and
 * WRITE_ZEROES are FALLOCATE (PUNCH_HOLE or ZERO_RANGE, with KEEP_SIZE). A block device has
 * no hole punching that discards, so its DISCARD is a synchronous BLKDISCARD completed through
 * the eventfd. WRITE_ZEROES that the filesystem refuses (EOPNOTSUPP) is redone by hand in the
 * common layer's reap.
 */
#include <errno.h>
#include <sched.h>
#include <linux/falloc.h>
#include <liburing.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "blk_backend_internal.h"

struct uring_engine {
	struct io_uring ring;
	unsigned int held; /* SQEs handed out and not yet completed */
};

/*
 * io_uring_register(2) directly: liburing 2.3 (Debian 12) declares
 * io_uring_register_restrictions() and io_uring_enable_rings() but its shared library does not
 * export them (they are missing from its symbol map), and its io_uring_register() wrapper is
 * new in 2.3.
 */
static int ring_register(struct io_uring *ring, unsigned int opcode, const void *arg,
			 unsigned int nr)
{
	return syscall(__NR_io_uring_register, ring->ring_fd, opcode, arg, nr) < 0 ? -errno : 0;
}

/* Any setup failure: the caller falls back to another engine. */
static int uring_setup_err(int r)
{
	if (r == -ENOSYS || r == -EPERM || r == -EOPNOTSUPP)
		return r;
	if (r == -EACCES) /* an LSM refused io_uring */
		return -EPERM;
	return -EOPNOTSUPP; /* EINVAL: a kernel older than 5.10 that lacks R_DISABLED, ... */
}

static int uring_open(struct blk_backend *b)
{
	static const unsigned char ops[] = {IORING_OP_READV, IORING_OP_WRITEV, IORING_OP_FSYNC,
					    IORING_OP_FALLOCATE};
	struct io_uring_restriction res[ARRAY_SIZE(ops) + 3] = {0};
	struct io_uring_params p = {.flags = IORING_SETUP_R_DISABLED};
	struct uring_engine *e = calloc(1, sizeof(*e));
	unsigned int n = 0;
	int r;

	if (!e)
		return -ENOMEM;
	/* The SQ holds depth entries and the CQ twice that, so neither can overflow when at
	 * most depth requests are in flight. */
	r = io_uring_queue_init_params(b->cfg.depth, &e->ring, &p);
	if (r < 0)
		goto err_free;
	r = io_uring_register_files(&e->ring, &b->fd, 1);
	if (r < 0)
		goto err_ring;
	r = io_uring_register_eventfd(&e->ring, b->efd);
	if (r < 0)
		goto err_ring;

	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		res[n].opcode = IORING_RESTRICTION_SQE_OP;
		res[n++].sqe_op = ops[i];
	}
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[n++].sqe_flags = IOSQE_FIXED_FILE;
	res[n].opcode = IORING_RESTRICTION_SQE_FLAGS_REQUIRED;
	res[n++].sqe_flags = IOSQE_FIXED_FILE;
	/* The one registration left open: dropping the file again (uring_close). */
	res[n].opcode = IORING_RESTRICTION_REGISTER_OP;
	res[n++].register_op = IORING_UNREGISTER_FILES;
	r = ring_register(&e->ring, IORING_REGISTER_RESTRICTIONS, res, n);
	if (r < 0)
		goto err_ring;
	r = ring_register(&e->ring, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
	if (r < 0)
		goto err_ring;
	b->engine_priv = e;
	return 0;

err_ring:
	io_uring_queue_exit(&e->ring);
err_free:
	free(e);
	return uring_setup_err(r);
}

static void uring_close(struct blk_backend *b)
{
	struct uring_engine *e = b->engine_priv;

	/*
	 * The kernel tears a ring down asynchronously, after io_uring_queue_exit() returned, and
	 * a file registered with it stays open until then: its OFD lock would outlive
	 * blk_image_close() and refuse the next open of the image (ours, or the new process's
	 * in a live update). Unregistering drops the file now; nothing is in flight.
	 */
	(void)io_uring_unregister_files(&e->ring);
	io_uring_queue_exit(&e->ring);
	free(e);
}

static int uring_submit(struct blk_backend *b, struct blk_req *req, const struct blk_io *io)
{
	struct uring_engine *e = b->engine_priv;
	struct io_uring_sqe *sqe;
	int mode;

	if (io->op == BLK_OP_DISCARD && b->is_blockdev) {
		blk_backend_complete(b, req, blk_io_do_sync(b, io));
		blk_backend_signal(b);
		return 0;
	}
	sqe = io_uring_get_sqe(&e->ring);
	if (!sqe)
		return -EAGAIN; /* cannot happen: the SQ has room for depth requests */

	/* Fixed file index 0 is the image (registered in uring_open). */
	switch (io->op) {
	case BLK_OP_READ:
		io_uring_prep_readv(sqe, 0, io->iov, io->iovcnt, io->offset);
		break;
	case BLK_OP_WRITE:
		io_uring_prep_writev(sqe, 0, io->iov, io->iovcnt, io->offset);
		break;
	case BLK_OP_FLUSH:
		io_uring_prep_fsync(sqe, 0, IORING_FSYNC_DATASYNC);
		break;
	case BLK_OP_DISCARD:
		io_uring_prep_fallocate(sqe, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)io->offset, (off_t)io->len);
		break;
	case BLK_OP_WRITE_ZEROES:
		mode = (io->unmap ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE) |
		       FALLOC_FL_KEEP_SIZE;
		io_uring_prep_fallocate(sqe, 0, mode, (off_t)io->offset, (off_t)io->len);
		break;
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data(sqe, req);
	e->held++;
	return 0;
}

static void uring_kick(struct blk_backend *b)
{
	struct uring_engine *e = b->engine_priv;

	/* An error here (EAGAIN, EBUSY, EINTR) leaves the SQEs in the ring; the next kick or a
	 * drain submits them. */
	/* EAGAIN/EBUSY mean the kernel is short of memory or the CQ is full: retry a few times
	 * now; what is still left goes with the next kick (every reap also kicks). */
	for (int tries = 0; io_uring_sq_ready(&e->ring) && tries < 8; tries++) {
		int r = io_uring_submit(&e->ring);
		if (r >= 0 || (r != -EINTR && r != -EAGAIN && r != -EBUSY))
			break;
		if (r != -EINTR)
			sched_yield();
	}
}

static unsigned int uring_poll(struct blk_backend *b, bool wait)
{
	struct uring_engine *e = b->engine_priv;
	struct io_uring_cqe *cqe;

	/* submit_and_wait also hands over SQEs a failed kick left behind, so the wait cannot
	 * be for requests the kernel never saw. */
	if (wait && e->held && !io_uring_cq_ready(&e->ring))
		(void)io_uring_submit_and_wait(&e->ring, 1);
	while (io_uring_peek_cqe(&e->ring, &cqe) == 0) {
		struct blk_req *req = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&e->ring, cqe);
		e->held--;
		blk_backend_complete(b, req, res);
	}
	return e->held;
}

/* The CQ ring is shared memory: a tail ahead of the head is a completion, no syscall needed. */
static bool uring_ready(struct blk_backend *b)
{
	struct uring_engine *e = b->engine_priv;

	return io_uring_cq_ready(&e->ring) > 0;
}

const struct blk_engine_ops blk_engine_uring_ops = {
	.open = uring_open,
	.close = uring_close,
	.submit = uring_submit,
	.kick = uring_kick,
	.poll = uring_poll,
	.ready = uring_ready,
};
