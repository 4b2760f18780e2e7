/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the block backend layer: what the common code (blk_backend.c) shares with the
 * engines (blk_backend_{uring,aio,sync}.c). Device code uses include/vmm/blk_backend.h only.
 *
 * The common layer checks requests, counts them against the depth, bounces misaligned
 * O_DIRECT buffers and hands each engine a struct blk_io that is ready for the kernel. An
 * engine reports every finished request with blk_backend_complete(); the common layer keeps
 * them on a done list and delivers them from blk_backend_reap(), so every engine completes
 * through the one eventfd and one callback.
 */
#ifndef VMM_VIRTIO_BLK_BACKEND_INTERNAL_H
#define VMM_VIRTIO_BLK_BACKEND_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/blk_backend.h"

/* Deepest queue we accept: io_uring rings (at most 32768 SQ entries without
 * IORING_SETUP_CLAMP) and aio contexts are sized from it. */
#define BLK_BACKEND_MAX_DEPTH 32768

/*
 * One operation as an engine sees it. For READ/WRITE on an O_DIRECT fd the offset, length
 * and every buffer are aligned to dio_align (the common layer bounced them if they were
 * not). iov stays valid until the request completes.
 */
struct blk_io {
	enum blk_op op;
	uint64_t offset;
	uint64_t len;
	const struct iovec *iov;
	unsigned int iovcnt;
	bool unmap;
};

struct blk_engine_ops {
	/* Set up b->engine_priv for b->fd and b->efd. -ENOSYS/-EPERM/-EOPNOTSUPP: fall back. */
	int (*open)(struct blk_backend *b);
	/* Called with nothing held by the engine any more. */
	void (*close)(struct blk_backend *b);
	/* Queue io for req, or do it now and blk_backend_complete() it. */
	int (*submit)(struct blk_backend *b, struct blk_req *req, const struct blk_io *io);
	void (*kick)(struct blk_backend *b);
	/*
	 * Pass every request the kernel has finished to blk_backend_complete(). With wait,
	 * block until at least one has finished if the engine holds any (a signal may end the
	 * wait early). Returns how many requests the engine still holds (queued or in the
	 * kernel).
	 */
	unsigned int (*poll)(struct blk_backend *b, bool wait);
	/*
	 * Optional: the kernel has finished requests that poll() would collect, seen without a
	 * system call. May run on a thread that does not hold the caller's lock (a hint).
	 */
	bool (*ready)(struct blk_backend *b);
};

struct blk_backend {
	enum blk_engine engine;
	const struct blk_engine_ops *ops;
	int fd;
	int efd; /* completions; EFD_NONBLOCK */
	bool is_blockdev;
	struct blk_backend_config cfg; /* dio_align: a power of two; 1 unless direct */
	unsigned int inflight;	       /* submitted, done callback not yet called */
	struct blk_req *done_head, *done_tail;
	void *engine_priv;
};

extern const struct blk_engine_ops blk_engine_uring_ops;
extern const struct blk_engine_ops blk_engine_aio_ops;
extern const struct blk_engine_ops blk_engine_sync_ops;

/* An engine finished req with res (bytes or -errno): onto the done list, not yet signalled. */
void blk_backend_complete(struct blk_backend *b, struct blk_req *req, int64_t res);
/* Make the eventfd readable (for completions that did not come from the kernel's own signal). */
void blk_backend_signal(struct blk_backend *b);
/*
 * Do io now, on the calling thread: preadv/pwritev looping over short counts, fdatasync,
 * hole punching (BLKDISCARD on block devices), zeroing with a fallback to writing zeroes.
 * Returns bytes (READ/WRITE), 0, or -errno.
 */
int64_t blk_io_do_sync(struct blk_backend *b, const struct blk_io *io);

#endif
