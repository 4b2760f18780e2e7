/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk (virtio 1.2 §5.2) over a raw image: FLUSH, RO, BLK_SIZE, SEG_MAX, SIZE_MAX,
 * DISCARD, WRITE_ZEROES, GET_ID, MQ (one queue per vCPU). Requests go to a block backend
 * (blk_backend.h) and complete through its eventfd on the device's I/O thread.
 */
#ifndef VMM_VIRTIO_BLK_H
#define VMM_VIRTIO_BLK_H

#include "vmm/blk_backend.h"
#include "vmm/event_loop.h"
#include "vmm/virtio.h"

/* §5.2.6 request types and status */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_GET_LIFETIME 10
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_T_SECURE_ERASE 14
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

/* §5.2.3 feature bits */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_GEOMETRY     4
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_TOPOLOGY     10
#define VIRTIO_BLK_F_CONFIG_WCE   11
#define VIRTIO_BLK_F_MQ           12
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_ID_BYTES   20
#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SECTOR     512

struct virtio_blk;

struct virtio_blk_config {
	const char *label;      /* names the disk in messages: "disk 'rootfs'" */
	const char *path;       /* the image (with fd >= 0: only its name) */
	int fd;                 /* >= 0: adopt this open image (dup'ed; the caller keeps fd) */
	bool read_only;
	enum blk_cache cache;
	enum blk_engine engine; /* the first engine tried */
	bool engine_fixed;      /* no fallback from it */
	const char *serial;     /* GET_ID, at most 20 bytes; NULL: none */
	unsigned int poll_us;   /* adaptive polling window, 0 = off */
	unsigned int nr_queues; /* one per vCPU */
};

/*
 * Open (or adopt) and lock the image, pick the engine (io_uring with a logged fallback to aio,
 * then sync, unless engine_fixed) and initialise the device. Backend completions are watched on
 * loop. On error: -errno and one line in err that starts with the label.
 */
int virtio_blk_create(struct virtio_blk **out, const struct virtio_blk_config *cfg,
		      const struct guest_mem *gm, struct ev_loop *loop, char *err,
		      size_t errlen) WUR;
struct virtio_device *virtio_blk_device(struct virtio_blk *b);
enum blk_engine virtio_blk_engine(const struct virtio_blk *b);
/* Reset (drains in-flight I/O), close the backend and the image. */
void virtio_blk_destroy(struct virtio_blk *b);
/* The image's open file (a live update hands it over). */
int virtio_blk_image_fd(const struct virtio_blk *b);

/*
 * Added for adaptive polling (--disk poll=USEC): after a kick or a completion, the I/O thread
 * keeps the driver's kicks suppressed and busy-polls the avail rings and the backend for up to
 * a window that adapts between 0 and the maximum; what it did is counted here.
 */
struct virtio_blk_poll_stats {
	uint64_t max_ns;    /* the configured maximum window; 0: polling off */
	uint64_t window_ns; /* the window now */
	bool active;	    /* a poll phase is running right now */
	uint64_t phases;    /* poll phases started (one per event while the window is open) */
	uint64_t found;	    /* looks during a window that found work and did it */
	uint64_t expired;   /* windows that ran out with nothing found: back to the event loop */
	uint64_t cut;	    /* phases ended by the time budget while work kept coming */
	uint64_t grown;	    /* times the window widened / narrowed */
	uint64_t shrunk;
	uint64_t idle_wakeups; /* kicks and completion signals that found nothing left to do */
};
/* A consistent copy, taken under the device lock (any thread). */
void virtio_blk_get_poll_stats(struct virtio_blk *b, struct virtio_blk_poll_stats *out);
/*
 * The adaptation rule, pure: the next window given the current one, the maximum and how long
 * the device waited for the event that just came (all nanoseconds). Unchanged if polling would
 * have caught it, widened (from 4 us, doubling, up to max) if a longer window within max
 * would have, halved (closed below 4 us) if the wait was longer than max; 0 if max is 0.
 */
uint64_t virtio_blk_poll_adapt(uint64_t window_ns, uint64_t max_ns, uint64_t waited_ns);

#endif
