/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Block I/O engines behind one interface: io_uring (liburing; the default), libaio, and a
 * synchronous fallback. All of them complete through one eventfd, so a device has exactly one
 * completion path: watch blk_backend_event_fd(), then call blk_backend_reap().
 *
 * The backend does I/O on a file descriptor it is given (the image, opened and locked by
 * blk_image_open()); it does not own the fd. Requests are one operation each, with a
 * caller-owned struct blk_req that must stay alive until its completion callback ran.
 * Errors are negative errno values. Not thread-safe: one backend is used by one thread (the
 * device's I/O thread) at a time; callers serialise (the virtio device lock).
 */
#ifndef VMM_BLK_BACKEND_H
#define VMM_BLK_BACKEND_H

#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "vmm/compiler.h"

enum blk_engine { BLK_ENGINE_URING, BLK_ENGINE_AIO, BLK_ENGINE_SYNC };

enum blk_op {
	BLK_OP_READ,         /* preadv into iov */
	BLK_OP_WRITE,        /* pwritev from iov */
	BLK_OP_FLUSH,        /* fdatasync: when it completes with 0, every write completed before
			      * the flush was submitted is durable */
	BLK_OP_DISCARD,      /* punch a hole [offset, offset+len) (reads back as zeroes) */
	BLK_OP_WRITE_ZEROES, /* zero [offset, offset+len); may unmap if req->unmap */
};

struct blk_req {
	enum blk_op op;
	uint64_t offset;          /* bytes */
	uint64_t len;             /* DISCARD/WRITE_ZEROES: bytes; READ/WRITE: sum of iov (set by caller) */
	const struct iovec *iov;  /* READ/WRITE */
	unsigned int iovcnt;
	bool unmap;               /* WRITE_ZEROES: deallocating is allowed */
	void *opaque;             /* for the caller */

	/* Filled on completion: bytes transferred (READ/WRITE; a short count is an error to the
	 * device) or 0, or -errno. */
	int64_t result;

	/* Private to the backend layer. */
	struct blk_req *next_done;
	void *bounce;
	size_t bounce_len;
};

struct blk_backend_config {
	unsigned int depth;  /* most requests in flight at once (>= 1) */
	bool direct;         /* the fd is O_DIRECT: buffers/offsets/lengths misaligned to
			      * dio_align are bounced through an aligned buffer */
	unsigned int dio_align; /* alignment for O_DIRECT, from statx or 512 */
};

struct blk_backend;

typedef void (*blk_done_fn)(void *opaque, struct blk_req *req);

const char *blk_engine_name(enum blk_engine e);
/* "uring", "aio", "sync" -> engine; -EINVAL for anything else. */
int blk_engine_parse(const char *s, enum blk_engine *out) WUR;

/*
 * Set up an engine for fd. -ENOSYS (or -EPERM, -EOPNOTSUPP) when the host cannot do this
 * engine (io_uring disabled by sysctl or seccomp, restrictions unsupported): the caller may
 * fall back. io_uring: the ring is created disabled (IORING_SETUP_R_DISABLED), the fd is
 * registered as fixed file 0, opcodes are restricted to what enum blk_op needs
 * (IORING_REGISTER_RESTRICTIONS), then the ring is enabled.
 */
int blk_backend_open(enum blk_engine engine, int fd, const struct blk_backend_config *cfg,
		     struct blk_backend **out) WUR;
void blk_backend_close(struct blk_backend *b); /* waits for what is in flight first */
enum blk_engine blk_backend_engine(const struct blk_backend *b);

/* Completions are signalled here (readable); never changes for the backend's lifetime. */
int blk_backend_event_fd(const struct blk_backend *b);
/*
 * Queue one request. -EAGAIN when depth requests are in flight (the caller retries after a
 * reap), -EINVAL for a malformed request. The request may not reach the kernel until
 * blk_backend_kick(); a sync backend performs it here and completes it through the eventfd.
 */
int blk_backend_submit(struct blk_backend *b, struct blk_req *req) WUR;
/* Hand everything queued since the last kick to the kernel (one io_uring_submit). */
void blk_backend_kick(struct blk_backend *b);
/* Call done for each completed request (non-blocking; consumes the eventfd). Returns how many. */
unsigned int blk_backend_reap(struct blk_backend *b, blk_done_fn done, void *opaque);
/* Wait until nothing is in flight, calling done for each completion. */
void blk_backend_drain(struct blk_backend *b, blk_done_fn done, void *opaque);
unsigned int blk_backend_inflight(const struct blk_backend *b);
/*
 * Added for adaptive polling (virtio_blk.c): whether a blk_backend_reap() now would deliver a
 * completion, found without a system call (io_uring: its completion ring; libaio: the
 * completion ring the kernel maps into our memory; the sync engine and the synchronous
 * fallbacks of the others: the done list). Does not consume the eventfd. May be called
 * without the caller's lock while another thread reaps: the answer is then a hint, possibly
 * stale but harmless, and the caller reaps under its lock to find out.
 */
bool blk_backend_poll_ready(struct blk_backend *b);

/* ---- images (virtio/blk_image.c) ---- */

enum blk_cache { BLK_CACHE_WRITEBACK, BLK_CACHE_NONE };

struct blk_image {
	int fd;
	bool read_only;
	bool direct;            /* opened O_DIRECT (cache=none) */
	bool is_blockdev;
	uint64_t size;          /* bytes */
	unsigned int dio_align; /* O_DIRECT alignment (memory and offset), else 1 */
	unsigned int logical_block; /* 512, or the block device's logical block size */
	bool can_discard;       /* hole punching / BLKDISCARD works */
	dev_t dev;              /* the file's identity (stat st_dev, st_ino; st_rdev for a */
	ino_t ino;              /* block device), to tell one image given twice */
	dev_t rdev;
};

/*
 * Open and lock an image (regular file or block device). The lock is an OFD lock over the
 * whole file: exclusive for read-write, shared for read-only, so two VMMs never write one
 * image. On error, -errno and one line in err naming path and cause ("... is locked by
 * another process", "Permission denied", "not a regular file or block device", ...).
 */
int blk_image_open(struct blk_image *img, const char *path, bool read_only, enum blk_cache cache,
		   char *err, size_t errlen) WUR;
/*
 * The same for an already open image (a live update hands them over): fd is dup'ed and must be
 * open for reading, and writing unless read_only; path only names it in messages.
 */
int blk_image_adopt(struct blk_image *img, int fd, const char *path, bool read_only,
		    enum blk_cache cache, char *err, size_t errlen) WUR;
void blk_image_close(struct blk_image *img);

#endif
