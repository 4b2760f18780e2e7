/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-rng (virtio 1.2 §5.4, "entropy device"): one requestq of device-writable buffers,
 * filled from the host's getrandom(2) on the I/O thread, under an optional rate limit (bytes
 * and requests, vmm/ratelimit.h). When the limit is reached the queue waits on a timer; the
 * guest's buffers stay in the ring meanwhile. Nothing is in flight between two callbacks, so
 * pausing needs no work, and the snapshot state is the common virtio part alone.
 */
#ifndef VMM_VIRTIO_RNG_H
#define VMM_VIRTIO_RNG_H

#include "vmm/event_loop.h"
#include "vmm/virtio.h"

#define VIRTIO_RNG_QUEUE_SIZE 256
/* At most this many bytes per request, whatever the buffer's size. */
#define VIRTIO_RNG_REQ_MAX (64 * 1024)

struct virtio_rng;
struct vmm_rate_limiter;

/* rl NULL or all zero: no limit. */
int virtio_rng_create(struct virtio_rng **out, const struct guest_mem *gm, struct ev_loop *loop,
		      const struct vmm_rate_limiter *rl) WUR;
struct virtio_device *virtio_rng_device(struct virtio_rng *r);
/* Before the ev_loop is destroyed: its timer lives on it. */
void virtio_rng_destroy(struct virtio_rng *r);
/* "bytes=N requests=N throttled=N malformed=N". */
void virtio_rng_stats(struct virtio_rng *r, char *buf, size_t len);

#endif
