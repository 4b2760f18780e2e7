// SPDX-License-Identifier: Apache-2.0
/*
 * The Linux AIO engine (libaio): READ and WRITE go to the kernel as IOCB_CMD_PREADV/PWRITEV,
 * each iocb tagged with our eventfd (IOCB_FLAG_RESFD), batched into one io_submit() per kick;
 * reap collects them with a zero-timeout io_getevents().
 *
 * FLUSH, DISCARD and WRITE_ZEROES are done synchronously in submit and completed through the
 * same eventfd: IOCB_CMD_FDSYNC is only implemented since Linux 4.18 and not by every
 * filesystem, and AIO has no discard or fallocate command at all. A flush done at submit time
 * still covers every write that completed before it was submitted, which is its contract.
 * AIO is truly asynchronous only for O_DIRECT; on a buffered fd io_submit() does the work.
 */
#include <errno.h>
#include <libaio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "blk_backend_internal.h"

struct aio_engine {
	io_context_t ctx;
	unsigned int depth;
	struct iocb *iocbs;	 /* depth of them */
	struct iocb **free_list; /* free iocbs */
	unsigned int nfree;
	struct iocb **queue; /* prepared, not yet accepted by io_submit */
	unsigned int nqueue;
	unsigned int in_kernel;	 /* accepted by io_submit, no event collected yet */
	struct io_event *events; /* depth of them */
};

static int aio_engine_open(struct blk_backend *b)
{
	struct aio_engine *e = calloc(1, sizeof(*e));
	unsigned int depth = b->cfg.depth;
	int r;

	if (!e)
		return -ENOMEM;
	e->depth = depth;
	e->iocbs = calloc(depth, sizeof(*e->iocbs));
	e->free_list = calloc(depth, sizeof(*e->free_list));
	e->queue = calloc(depth, sizeof(*e->queue));
	e->events = calloc(depth, sizeof(*e->events));
	if (!e->iocbs || !e->free_list || !e->queue || !e->events) {
		r = -ENOMEM;
		goto err;
	}
	for (unsigned int i = 0; i < depth; i++)
		e->free_list[i] = &e->iocbs[i];
	e->nfree = depth;

	r = io_setup((int)depth, &e->ctx); /* libaio returns -errno */
	if (r < 0) {
		/* ENOSYS: no AIO in this kernel; EAGAIN: fs.aio-max-nr used up. Either way the
		 * caller can fall back to the sync engine. */
		if (r != -ENOSYS && r != -EPERM)
			r = -EOPNOTSUPP;
		goto err;
	}
	b->engine_priv = e;
	return 0;

err:
	free(e->iocbs);
	free(e->free_list);
	free(e->queue);
	free(e->events);
	free(e);
	return r;
}

static void aio_engine_close(struct blk_backend *b)
{
	struct aio_engine *e = b->engine_priv;

	io_destroy(e->ctx);
	free(e->iocbs);
	free(e->free_list);
	free(e->queue);
	free(e->events);
	free(e);
}

static void iocb_release(struct aio_engine *e, struct iocb *cb)
{
	e->free_list[e->nfree++] = cb;
}

static int aio_engine_submit(struct blk_backend *b, struct blk_req *req, const struct blk_io *io)
{
	struct aio_engine *e = b->engine_priv;
	struct iocb *cb;

	if (io->op != BLK_OP_READ && io->op != BLK_OP_WRITE) {
		blk_backend_complete(b, req, blk_io_do_sync(b, io));
		blk_backend_signal(b);
		return 0;
	}
	if (!e->nfree)
		return -EAGAIN; /* cannot happen: the common layer keeps us within depth */
	cb = e->free_list[--e->nfree];
	if (io->op == BLK_OP_READ)
		io_prep_preadv(cb, b->fd, io->iov, (int)io->iovcnt, (long long)io->offset);
	else
		io_prep_pwritev(cb, b->fd, io->iov, (int)io->iovcnt, (long long)io->offset);
	io_set_eventfd(cb, b->efd);
	cb->data = req;
	e->queue[e->nqueue++] = cb;
	return 0;
}

static void aio_engine_kick(struct blk_backend *b)
{
	struct aio_engine *e = b->engine_priv;
	unsigned int done = 0;

	while (done < e->nqueue) {
		int r = io_submit(e->ctx, (long)(e->nqueue - done), &e->queue[done]);

		if (r > 0) {
			done += (unsigned int)r;
			e->in_kernel += (unsigned int)r;
			continue;
		}
		if (r == 0 || r == -EAGAIN || r == -EINTR)
			break; /* kernel out of resources: the rest stays queued for the next kick
				*/
		/* The first iocb was refused (EINVAL, EBADF, ...): fail just that request. */
		struct iocb *cb = e->queue[done++];

		blk_backend_complete(b, cb->data, r);
		blk_backend_signal(b);
		iocb_release(e, cb);
	}
	for (unsigned int i = done; i < e->nqueue; i++)
		e->queue[i - done] = e->queue[i];
	e->nqueue -= done;
}

static unsigned int aio_engine_poll(struct blk_backend *b, bool wait)
{
	struct aio_engine *e = b->engine_priv;
	struct timespec zero = {0, 0};
	int n;

	if (wait && !e->in_kernel && e->nqueue) {
		/* Everything is queued behind an io_submit that said EAGAIN: try again after a
		 * moment rather than block on events that cannot come. */
		aio_engine_kick(b);
		if (!e->in_kernel) {
			usleep(1000);
			return e->nqueue;
		}
	}
	if (!e->in_kernel)
		return e->nqueue;
	n = io_getevents(e->ctx, wait ? 1 : 0, (long)e->depth, e->events, wait ? NULL : &zero);
	for (int i = 0; i < n; i++) {
		struct iocb *cb = e->events[i].obj;
		/* res is the syscall's return value: bytes or -errno, in an unsigned long. */
		long res = (long)e->events[i].res;

		e->in_kernel--;
		blk_backend_complete(b, e->events[i].data, res);
		iocb_release(e, cb);
	}
	return e->in_kernel + e->nqueue;
}

/*
 * The kernel's AIO completion ring, which io_setup() maps into our memory and whose address is
 * the io_context_t (fs/aio.c struct aio_ring, a stable user ABI: libaio and QEMU read it the
 * same way). Events are between head (we advance it, through io_getevents) and tail (the
 * kernel advances it).
 */
struct aio_ring_hdr {
	unsigned int id;
	unsigned int nr;
	unsigned int head;
	unsigned int tail;
	unsigned int magic;
	unsigned int compat_features;
	unsigned int incompat_features;
	unsigned int header_length;
};
#define AIO_RING_MAGIC 0xa10a10a1

static bool aio_engine_ready(struct blk_backend *b)
{
	struct aio_engine *e = b->engine_priv;
	const struct aio_ring_hdr *r = (const struct aio_ring_hdr *)e->ctx;

	/* A layout we do not recognise: say nothing is ready, the eventfd still works. */
	if (!r || __atomic_load_n(&r->magic, __ATOMIC_RELAXED) != AIO_RING_MAGIC)
		return false;
	return __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE) !=
	       __atomic_load_n(&r->head, __ATOMIC_RELAXED);
}

const struct blk_engine_ops blk_engine_aio_ops = {
	.open = aio_engine_open,
	.close = aio_engine_close,
	.submit = aio_engine_submit,
	.kick = aio_engine_kick,
	.poll = aio_engine_poll,
	.ready = aio_engine_ready,
};
