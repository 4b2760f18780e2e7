// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net (virtio 1.2 §5.1), one queue pair: receiveq 0, transmitq 1, no control queue.
 * Config space: mac[6], status (LINK_UP); with VIRTIO_NET_F_MTU max_virtqueue_pairs (1) and
 * mtu. Everything runs on the I/O thread under vdev->lock: guest kicks, and the tap's
 * readability watch, which is taken away while the guest has no receive buffers (or the VM is
 * paused) and put back when it posts some (or resumes).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "vmm/devices.h"
#include "vmm/ratelimit.h"
#include "vmm/virtio_net.h"

#define VNET_RXQ	 0
#define VNET_TXQ	 1
/* mac[6], status; then max_virtqueue_pairs and mtu (§5.1.4), only with VIRTIO_NET_F_MTU: a
 * device without keeps the 8 bytes its saved states (live updates from older vmm) have. */
#define VNET_CFG_LEN	 8
#define VNET_CFG_LEN_MTU 12
#define VNET_S_LINK_UP	 1
/* A receive may take up to this many chains (mergeable buffers) and segments in all. */
#define VNET_RX_CHAINS	 64
#define VNET_RX_IOV	 512
#define VNET_TX_IOV	 VIRTIO_NET_QUEUE_SIZE
/* The largest frame the tap can hand over: 64 KiB of GSO payload and headers, or one MTU
 * with its Ethernet and VLAN headers. */
#define VNET_RX_BIG	 (VIRTIO_NET_HDR_LEN + 65536 + 14 + 4)
#define VNET_ETH_HDRS	 (14 + 4)
/* Packets a callback moves before it lets the I/O thread serve others. */
#define VNET_BATCH	 256

/*
 * One direction's rate limit (Firecracker's rx_rate_limiter / tx_rate_limiter): a frame goes
 * when both buckets have tokens, and is charged whole (a bucket may go into debt for the part
 * it lacked). Out of tokens, the direction stops (receive: the tap is not read; transmit: the
 * ring is not taken from, kicks off) until its timer fires.
 */
struct vnet_limit {
	struct rate_limiter rl;
	bool on;            /* a limit is set */
	bool waiting;       /* out of tokens: the timer is armed */
	int timer_fd;       /* -1 until a limit is set */
	unsigned int watch;
	uint64_t throttled; /* times it had to wait */
};

struct virtio_net {
	struct virtio_device vdev;
	struct ev_loop *loop;
	int fd;
	bool tap;
	uint8_t mac[6];
	int tx_efd;            /* the transmit queue's own kick, after a full batch */
	unsigned int tx_watch;

	/* vdev->lock */
	unsigned int tx_out_watch; /* the backend's writability, while it is full */

	unsigned int rx_watch; /* the tap's readability watch, 0 when taken away */
	bool tap_dead;         /* reading it failed for good (deleted): never watched again */
	unsigned int mtu;      /* link_mtu, or the tap's, read when the driver starts the device */
	unsigned int link_mtu; /* offered with VIRTIO_NET_F_MTU; 0: none */
	struct vq_elem rx_elem[VNET_RX_CHAINS];
	struct iovec rx_iov[VNET_RX_IOV];
	struct iovec tx_iov[VNET_TX_IOV];
	uint8_t drain[VNET_RX_BIG];
	uint64_t rx_packets, rx_bytes, rx_dropped, tx_packets, tx_bytes, tx_errors;
	struct vnet_limit rx_lim, tx_lim;
	struct dev_ratelimit rl;
};

static struct virtio_net *vnet_of(struct virtio_device *vdev)
{
	return vdev->opaque;
}

static bool vnet_running(const struct virtio_device *vdev)
{
	return (vdev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
	       VIRTIO_STATUS_DRIVER_OK;
}

/* Whether queue q is to be served now: not paused, the driver running it (lock held). The
 * callbacks that come back later (timers, writability, our own kick) ask this first. */
static bool vnet_serves(const struct virtio_device *vdev, unsigned int q)
{
	return !vdev->quiesced && vnet_running(vdev) && vdev->vq[q].enabled && !vdev->vq[q].broken;
}

static void vnet_config_read(struct virtio_device *vdev, uint32_t offset, uint8_t *data,
			     uint32_t len)
{
	struct virtio_net *n = vnet_of(vdev);
	uint8_t cfg[VNET_CFG_LEN_MTU] = {0};
	uint16_t status = VNET_S_LINK_UP, pairs = 1, mtu = (uint16_t)n->link_mtu;

	memcpy(cfg, n->mac, 6);
	memcpy(cfg + 6, &status, 2);
	memcpy(cfg + 8, &pairs, 2);
	memcpy(cfg + 10, &mtu, 2);
	memcpy(data, cfg + offset, len);
}

static void vnet_config_write(struct virtio_device *vdev, uint32_t offset, const uint8_t *data,
			      uint32_t len)
{
	/* The MAC is writable only for legacy drivers (§5.1.4.2): ignored. */
	(void)vdev, (void)offset, (void)data, (void)len;
}

/* §5.1.3.1: the offloads depend on the checksum features. */
static bool vnet_features_ok(struct virtio_device *vdev, uint64_t f)
{
	(void)vdev;
	if ((f & (VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6))) &&
	    !(f & VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM)))
		return false;
	if ((f & (VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6))) &&
	    !(f & VIRTIO_BIT(VIRTIO_NET_F_CSUM)))
		return false;
	return true;
}

/* ---- rate limits ---- */

static uint64_t vnet_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Whether the direction may move a frame now; if not, its timer is armed (lock held). */
static bool vnet_limit_ok(struct virtio_net *n, struct vnet_limit *l)
{
	uint64_t wait;

	if (!l->on)
		return true;
	if (l->waiting)
		return false;
	if (rate_limiter_allow(&l->rl, 1, vnet_now_ns(), &wait))
		return true;
	if (wait < 1000)
		wait = 1000;
	struct itimerspec it = {.it_value = {.tv_sec = (time_t)(wait / 1000000000ULL),
					     .tv_nsec = (long)(wait % 1000000000ULL)}};
	if (timerfd_settime(l->timer_fd, 0, &it, NULL) < 0) {
		dev_log_ratelimited(&n->rl, "virtio-net: rate limit timer: %s", strerror(errno));
		return true; /* better unlimited than stuck */
	}
	l->waiting = true;
	l->throttled++;
	return false;
}

static void vnet_limit_charge(struct vnet_limit *l, uint64_t bytes)
{
	if (l->on)
		rate_limiter_consume(&l->rl, bytes);
}

static void vnet_limit_disarm(struct vnet_limit *l)
{
	struct itimerspec off = {0};

	if (l->waiting)
		timerfd_settime(l->timer_fd, 0, &off, NULL);
	l->waiting = false;
}

/* ---- receive ---- */

static void vnet_tap_ready(void *opaque);

/* While the receive limit waits, the tap is not watched: its timer watches again. */
static void vnet_watch(struct virtio_net *n)
{
	if (n->loop && !n->rx_watch && !n->tap_dead && !n->rx_lim.waiting)
		n->rx_watch = ev_loop_add_fd(n->loop, n->fd, vnet_tap_ready, n);
}

/* Inside the watch's own callback (or on the loop thread): the tap is not read for now. */
static void vnet_unwatch(struct virtio_net *n)
{
	if (n->rx_watch)
		ev_loop_remove_fd(n->loop, n->rx_watch);
	n->rx_watch = 0;
}

/* A read error that is no "nothing now": the tap is gone, it would stay readable forever. */
static void vnet_tap_failed(struct virtio_net *n, int err)
{
	dev_log_ratelimited(&n->rl, "virtio-net: reading the tap: %s; it is not read any more",
			    strerror(err));
	n->tap_dead = true;
	vnet_unwatch(n);
}

/* What one receive must be able to hold: a GSO frame when the guest takes them. */
static size_t vnet_rx_need(const struct virtio_net *n)
{
	size_t one = VIRTIO_NET_HDR_LEN + n->mtu + VNET_ETH_HDRS;

	if (virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO4) ||
	    virtio_has_feature(&n->vdev, VIRTIO_NET_F_GUEST_TSO6))
		return one > VNET_RX_BIG ? one : VNET_RX_BIG;
	return one;
}

/*
 * Take receive chains until they can hold one frame (with MRG_RXBUF several, else one): their
 * writable segments are n->rx_iov[0 .. *cnt), *cap bytes. Returns how many chains were taken,
 * 0 when the ring has too few buffers (then none are kept), -1 when the ring is broken.
 */
static int vnet_rx_take(struct virtio_net *n, size_t *cap, unsigned int *cnt)
{
	struct virtio_device *vdev = &n->vdev;
	struct virtqueue *vq = &vdev->vq[VNET_RXQ];
	bool mrg = virtio_has_feature(vdev, VIRTIO_NET_F_MRG_RXBUF);
	size_t need = vnet_rx_need(n);
	unsigned int taken = 0;
	bool pushed = false;
	unsigned int bad = 0;

	*cap = 0;
	*cnt = 0;
	/* Room for one more chain's segments is kept: a chain that did not fit would look
	 * malformed. Linux posts one segment per mergeable buffer, 19 for a big one. */
	while (taken < VNET_RX_CHAINS && VNET_RX_IOV - *cnt >= 32 &&
	       (taken == 0 || (mrg && *cap < need))) {
		struct vq_elem *e = &n->rx_elem[taken];

		e->iov = n->rx_iov + *cnt;
		e->iov_cap = VNET_RX_IOV - *cnt;
		int r = vq_pop_or_arm(vq, e);

		if (r == 0)
			break;
		if (r == -EIO) {
			vq_unpop(vq, taken);
			virtio_device_fail(vdev, "malformed receiveq ring");
			return -1;
		}
		if (r < 0 || e->out_num || e->in_len < (taken ? 1 : VIRTIO_NET_HDR_LEN)) {
			/*
			 * Malformed, readable, or too short for the header: completed empty. Those
			 * taken before it cannot be given back past it: completed empty too (the
			 * driver drops them), and the frame starts again after it.
			 */
			vdev->malformed++;
			for (unsigned int i = 0; i < taken; i++)
				vq_push(vq, n->rx_elem[i].head, 0);
			vq_push(vq, e->head, 0);
			pushed = true;
			taken = 0;
			*cap = 0;
			*cnt = 0;
			/* A ring of nothing but bad chains, refilled as fast: not forever here. */
			if (++bad >= vq->size)
				break;
			continue;
		}
		*cnt += e->in_num;
		*cap += e->in_len;
		taken++;
	}
	if (pushed)
		virtio_queue_notify_driver(vdev, VNET_RXQ);
	if (taken && (!mrg || *cap >= need || taken == VNET_RX_CHAINS || VNET_RX_IOV - *cnt < 32))
		return (int)taken;
	vq_unpop(vq, taken);
	return 0;
}

/* Move frames from the tap to the guest until the tap is empty or the guest out of room. */
static void vnet_rx(struct virtio_net *n)
{
	struct virtio_device *vdev = &n->vdev;
	struct virtqueue *vq = &vdev->vq[VNET_RXQ];
	unsigned int moved = 0;
	bool pushed = false;

	while (moved < VNET_BATCH) {
		unsigned int cnt;
		size_t cap;

		if (!vnet_limit_ok(n, &n->rx_lim)) {
			vnet_unwatch(n);
			break;
		}
		int taken = vnet_rx_take(n, &cap, &cnt);

		if (taken <= 0) {
			/* No room (or a broken ring): the frames wait in the tap until the guest
			 * posts buffers. */
			vnet_unwatch(n);
			break;
		}
		ssize_t got = readv(n->fd, n->rx_iov, (int)cnt);

		if (got < 0 && errno == EINTR)
			got = readv(n->fd, n->rx_iov, (int)cnt);
		if (got < (ssize_t)VIRTIO_NET_HDR_LEN) {
			int e = errno;

			vq_unpop(vq, (unsigned int)taken);
			if (got < 0 && e != EAGAIN && e != EINTR) {
				vnet_tap_failed(n, e);
				break;
			}
			if (got < 0)
				break; /* the tap is empty for now */
			/* A frame shorter than its header: dropped, the next one is read. */
			dev_log_ratelimited(&n->rl, "virtio-net: a %zd-byte frame from the tap", got);
			n->rx_dropped++;
			moved++;
			continue;
		}
		/* The chains the frame filled, in order; the others go back. */
		size_t left = (size_t)got;
		uint16_t used = 0;
		while (used < taken && left) {
			size_t len = n->rx_elem[used].in_len < left ? n->rx_elem[used].in_len : left;

			left -= len;
			used++;
		}
		vq_unpop(vq, (unsigned int)(taken - used));
		/* num_buffers, the header's last field (§5.1.6.3.2). */
		iov_from_buf(n->rx_iov, cnt, 10, &used, sizeof(used));
		/* All of the frame's buffers appear to the driver at once: it reads num_buffers
		 * of them as soon as it sees the first. */
		left = (size_t)got;
		for (uint16_t i = 0; i < used; i++) {
			size_t len = n->rx_elem[i].in_len < left ? n->rx_elem[i].in_len : left;

			vq_fill(vq, n->rx_elem[i].head, (uint32_t)len);
			left -= len;
		}
		vq_flush(vq);
		pushed = true;
		n->rx_packets++;
		n->rx_bytes += (uint64_t)got - VIRTIO_NET_HDR_LEN;
		vnet_limit_charge(&n->rx_lim, (uint64_t)got - VIRTIO_NET_HDR_LEN);
		moved++;
	}
	if (pushed)
		virtio_queue_notify_driver(vdev, VNET_RXQ);
}

/* The tap has frames (I/O thread). */
static void vnet_tap_ready(void *opaque)
{
	struct virtio_net *n = opaque;
	struct virtio_device *vdev = &n->vdev;

	pthread_mutex_lock(&vdev->lock);
	if (vdev->quiesced) {
		/* Paused: frames wait in the tap; resume's kick of the receiveq watches again. */
		vnet_unwatch(n);
	} else if (!vnet_running(vdev) || !vdev->vq[VNET_RXQ].enabled ||
		   vdev->vq[VNET_RXQ].broken) {
		/* No driver: as a NIC whose link is down to the guest, frames are dropped. */
		ssize_t r = 1;

		for (int i = 0; i < VNET_BATCH && (r = read(n->fd, n->drain, sizeof(n->drain))) >= 0;
		     i++)
			n->rx_dropped++;
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			vnet_tap_failed(n, errno);
	} else {
		vnet_rx(n);
	}
	pthread_mutex_unlock(&vdev->lock);
}

/* ---- transmit ---- */

static void vnet_tx(struct virtio_net *n);

/* On the I/O thread (inside the watch's own callback, or synchronously), under vdev->lock. */
static void vnet_unwatch_out(struct virtio_net *n)
{
	if (n->tx_out_watch)
		ev_loop_remove_fd(n->loop, n->tx_out_watch);
	n->tx_out_watch = 0;
}

/* The backend takes frames again (I/O thread). */
static void vnet_tx_writable(void *opaque)
{
	struct virtio_net *n = opaque;
	struct virtio_device *vdev = &n->vdev;

	pthread_mutex_lock(&vdev->lock);
	vnet_unwatch_out(n);
	/* Paused or reset meanwhile: resume's kick (or the new driver's) sends again. */
	if (vnet_serves(vdev, VNET_TXQ))
		vnet_tx(n);
	pthread_mutex_unlock(&vdev->lock);
}

/*
 * The backend is full (the user-mode network's socket: its helper is behind). The frame goes
 * back to the ring and the queue waits until the backend is writable, so that the guest's own
 * queue fills and its TCP slows down, where dropping would make it back off for seconds.
 * false when no watch could be added: the frame is dropped then, as a wire would.
 */
static bool vnet_tx_wait(struct virtio_net *n)
{
	if (!n->loop)
		return false;
	if (!n->tx_out_watch)
		n->tx_out_watch = ev_loop_add_fd_events(n->loop, n->fd, true, vnet_tx_writable, n);
	if (!n->tx_out_watch)
		return false;
	/* No kicks meanwhile: the writability watch brings us back. */
	vq_set_notification(&n->vdev.vq[VNET_TXQ], false);
	return true;
}

static void vnet_tx(struct virtio_net *n)
{
	struct virtio_device *vdev = &n->vdev;
	struct virtqueue *vq = &vdev->vq[VNET_TXQ];
	bool pushed = false;

	if (n->tx_out_watch || n->tx_lim.waiting)
		return; /* waiting for the backend, or for the rate limit's tokens */
	for (unsigned int moved = 0;; moved++) {
		if (moved == VNET_BATCH * 4) {
			/* The guest keeps the ring full: let the I/O thread serve the others and
			 * come back through our own kick. */
			uint64_t one = 1;

			if (write(n->tx_efd, &one, sizeof(one)) < 0)
				vq_set_notification(vq, true);
			break;
		}
		if (!vnet_limit_ok(n, &n->tx_lim)) {
			/* No kicks meanwhile: the timer brings us back. */
			vq_set_notification(vq, false);
			break;
		}
		struct vq_elem e = {.iov = n->tx_iov, .iov_cap = VNET_TX_IOV};
		int r = vq_pop_or_arm(vq, &e);

		if (r == 0)
			break;
		if (r == -EIO) {
			virtio_device_fail(vdev, "malformed transmitq ring");
			break;
		}
		if (r < 0 || e.in_num || e.out_len < VIRTIO_NET_HDR_LEN) {
			vdev->malformed++;
		} else {
			/* Header and frame as they are: the tap reads the same header. */
			ssize_t w = writev(n->fd, e.iov, (int)e.out_num);

			if (w < 0 && errno == EINTR)
				w = writev(n->fd, e.iov, (int)e.out_num);
			int werr = w < 0 ? errno : 0;

			if (werr == EAGAIN && vnet_tx_wait(n)) {
				vq_unpop(vq, 1);
				break;
			}
			if (w < 0) {
				/* A full tap queue (or a frame it refuses) loses the frame, as a wire. */
				n->tx_errors++;
				if (werr != EAGAIN && werr != ENOBUFS)
					dev_log_ratelimited(&n->rl, "virtio-net: writing the tap: %s",
							    strerror(werr));
			} else {
				n->tx_packets++;
				n->tx_bytes += e.out_len - VIRTIO_NET_HDR_LEN;
				vnet_limit_charge(&n->tx_lim, e.out_len - VIRTIO_NET_HDR_LEN);
			}
		}
		vq_push(vq, e.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_queue_notify_driver(vdev, VNET_TXQ);
}

/* A direction's rate limit has tokens again (I/O thread). */
static void vnet_limit_fired(struct virtio_net *n, struct vnet_limit *l, bool rx)
{
	struct virtio_device *vdev = &n->vdev;
	uint64_t v;

	if (read(l->timer_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&vdev->lock);
	l->waiting = false;
	/* Paused or reset meanwhile: resume's kick (or the new driver's) goes on. */
	if (vnet_serves(vdev, rx ? VNET_RXQ : VNET_TXQ)) {
		if (rx) {
			vnet_watch(n);
			vnet_rx(n);
		} else {
			vnet_tx(n);
		}
	}
	pthread_mutex_unlock(&vdev->lock);
}

static void vnet_rx_limit_fired(void *opaque)
{
	struct virtio_net *n = opaque;

	vnet_limit_fired(n, &n->rx_lim, true);
}

static void vnet_tx_limit_fired(void *opaque)
{
	struct virtio_net *n = opaque;

	vnet_limit_fired(n, &n->tx_lim, false);
}

/* The transmit queue's own kick (I/O thread). */
static void vnet_tx_again(void *opaque)
{
	struct virtio_net *n = opaque;
	uint64_t v;

	if (read(n->tx_efd, &v, sizeof(v)) < 0)
		return;
	pthread_mutex_lock(&n->vdev.lock);
	if (vnet_serves(&n->vdev, VNET_TXQ))
		vnet_tx(n);
	pthread_mutex_unlock(&n->vdev.lock);
}

static void vnet_queue_notify(struct virtio_device *vdev, unsigned int qidx)
{
	struct virtio_net *n = vnet_of(vdev);

	if (vdev->quiesced || !vnet_running(vdev))
		return;
	if (qidx == VNET_TXQ && vdev->vq[VNET_TXQ].enabled && !vdev->vq[VNET_TXQ].broken) {
		vnet_tx(n);
	} else if (qidx == VNET_RXQ && vdev->vq[VNET_RXQ].enabled && !vdev->vq[VNET_RXQ].broken) {
		/* Buffers posted (or a resume): read the tap again. */
		vnet_watch(n);
		vnet_rx(n);
	}
}

static int vnet_activate(struct virtio_device *vdev)
{
	struct virtio_net *n = vnet_of(vdev);

	if (n->tap && tap_set_offload(n->fd, vdev->driver_features) < 0)
		dev_log_ratelimited(&n->rl, "virtio-net: TUNSETOFFLOAD: %s", strerror(errno));
	int mtu = n->link_mtu ? (int)n->link_mtu : n->tap ? tap_mtu(n->fd) : -1;
	n->mtu = mtu >= 68 && mtu <= 65535 ? (unsigned int)mtu : 1500;
	return 0;
}

static void vnet_reset(struct virtio_device *vdev)
{
	struct virtio_net *n = vnet_of(vdev);

	vnet_limit_disarm(&n->rx_lim);
	vnet_limit_disarm(&n->tx_lim);

	/* Frames that come meanwhile are dropped by the watch (no driver). ev_loop_add_fd is
	 * thread-safe and does not wait for the loop. */
	vnet_watch(n);
}

static void vnet_unwatch_tx(void *opaque)
{
	struct virtio_net *n = opaque;

	if (n->tx_watch)
		ev_loop_remove_fd(n->loop, n->tx_watch);
	n->tx_watch = 0;
}

static const struct virtio_dev_ops vnet_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.features_ok = vnet_features_ok,
	.config_read = vnet_config_read,
	.config_write = vnet_config_write,
	.activate = vnet_activate,
	.reset = vnet_reset,
	.queue_notify = vnet_queue_notify,
};

int virtio_net_create(struct virtio_net **out, const struct guest_mem *gm, struct ev_loop *loop,
		      int fd, bool tap, const uint8_t mac[6])
{
	struct virtio_net *n = calloc(1, sizeof(*n));

	if (!n)
		return -ENOMEM;
	n->loop = loop;
	n->fd = fd;
	n->tap = tap;
	n->mtu = 1500;
	n->rx_lim.timer_fd = n->tx_lim.timer_fd = -1;
	memcpy(n->mac, mac, 6);
	n->tx_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->tx_efd < 0 ||
	    (loop && !(n->tx_watch = ev_loop_add_fd(loop, n->tx_efd, vnet_tx_again, n)))) {
		int e = n->tx_efd < 0 ? -errno : -ENOMEM;

		if (n->tx_efd >= 0)
			close(n->tx_efd);
		free(n);
		return e;
	}
	virtio_device_init(&n->vdev, &vnet_ops, n, gm, 2, VIRTIO_NET_QUEUE_SIZE);
	n->vdev.device_features |=
		VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
		VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
		VIRTIO_BIT(VIRTIO_NET_F_STATUS) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |
		VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |
		VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |
		VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6);
	n->vdev.config_len = VNET_CFG_LEN;
	pthread_mutex_lock(&n->vdev.lock);
	vnet_watch(n);
	pthread_mutex_unlock(&n->vdev.lock);
	if (loop && !n->rx_watch) {
		ev_loop_call_sync(loop, vnet_unwatch_tx, n);
		close(n->tx_efd);
		virtio_device_fini(&n->vdev);
		free(n);
		return -ENOMEM;
	}
	*out = n;
	return 0;
}

void virtio_net_poll(struct virtio_net *n)
{
	struct virtio_device *vdev = &n->vdev;

	pthread_mutex_lock(&vdev->lock);
	if (!vdev->quiesced && vnet_running(vdev)) {
		if (vdev->vq[VNET_TXQ].enabled && !vdev->vq[VNET_TXQ].broken)
			vnet_tx(n);
		if (vdev->vq[VNET_RXQ].enabled && !vdev->vq[VNET_RXQ].broken)
			vnet_rx(n);
	}
	pthread_mutex_unlock(&vdev->lock);
}

struct virtio_device *virtio_net_device(struct virtio_net *n)
{
	return &n->vdev;
}

/* (Re)configure one direction's limit, lock held; the timer is made on first use. */
static int vnet_limit_set(struct virtio_net *n, struct vnet_limit *l,
			  const struct vmm_rate_limiter *cfg, void (*fired)(void *))
{
	bool on = cfg && (cfg->bandwidth.size || cfg->ops.size);

	if (on && l->timer_fd < 0) {
		if (!n->loop)
			return -EINVAL; /* no loop, no timer */
		l->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (l->timer_fd < 0)
			return -errno;
		if (!(l->watch = ev_loop_add_fd(n->loop, l->timer_fd, fired, n))) {
			close(l->timer_fd);
			l->timer_fd = -1;
			return -ENOMEM;
		}
	}
	vnet_limit_disarm(l);
	l->on = on;
	rate_limiter_init(&l->rl, on ? cfg : NULL, vnet_now_ns());
	return 0;
}

int virtio_net_set_rate_limits(struct virtio_net *n, const struct vmm_rate_limiter *rx,
			       const struct vmm_rate_limiter *tx)
{
	struct virtio_device *vdev = &n->vdev;
	int r;

	pthread_mutex_lock(&vdev->lock);
	r = vnet_limit_set(n, &n->rx_lim, rx, vnet_rx_limit_fired);
	if (r == 0)
		r = vnet_limit_set(n, &n->tx_lim, tx, vnet_tx_limit_fired);
	/* A direction that waited under the old limit goes on under the new one. */
	if (r == 0 && vnet_serves(vdev, VNET_TXQ))
		vnet_tx(n);
	if (r == 0 && vnet_serves(vdev, VNET_RXQ)) {
		vnet_watch(n);
		vnet_rx(n);
	}
	pthread_mutex_unlock(&vdev->lock);
	return r;
}

void virtio_net_set_mtu(struct virtio_net *n, unsigned int mtu)
{
	if (mtu < 68 || mtu > 65535)
		return;
	pthread_mutex_lock(&n->vdev.lock);
	n->link_mtu = mtu;
	n->mtu = mtu;
	n->vdev.device_features |= VIRTIO_BIT(VIRTIO_NET_F_MTU);
	n->vdev.config_len = VNET_CFG_LEN_MTU;
	pthread_mutex_unlock(&n->vdev.lock);
}

void virtio_net_stats(struct virtio_net *n, char *buf, size_t len)
{
	pthread_mutex_lock(&n->vdev.lock);
	snprintf(buf, len,
		 "rx_packets=%llu rx_bytes=%llu rx_dropped=%llu tx_packets=%llu tx_bytes=%llu "
		 "tx_errors=%llu malformed=%llu rx_throttled=%llu tx_throttled=%llu",
		 (unsigned long long)n->rx_packets, (unsigned long long)n->rx_bytes,
		 (unsigned long long)n->rx_dropped, (unsigned long long)n->tx_packets,
		 (unsigned long long)n->tx_bytes, (unsigned long long)n->tx_errors,
		 (unsigned long long)n->vdev.malformed, (unsigned long long)n->rx_lim.throttled,
		 (unsigned long long)n->tx_lim.throttled);
	pthread_mutex_unlock(&n->vdev.lock);
}

/* On the I/O thread, so that the watches' callbacks are not running meanwhile. */
static void vnet_unwatch_sync(void *opaque)
{
	struct virtio_net *n = opaque;

	pthread_mutex_lock(&n->vdev.lock);
	vnet_unwatch(n);
	vnet_unwatch_out(n);
	struct vnet_limit *lims[] = {&n->rx_lim, &n->tx_lim};
	for (unsigned int i = 0; i < 2; i++) {
		if (lims[i]->watch)
			ev_loop_remove_fd(n->loop, lims[i]->watch);
		lims[i]->watch = 0;
	}
	pthread_mutex_unlock(&n->vdev.lock);
	vnet_unwatch_tx(n);
}

void virtio_net_destroy(struct virtio_net *n)
{
	if (!n)
		return;
	if (n->loop)
		ev_loop_call_sync(n->loop, vnet_unwatch_sync, n);
	close(n->tx_efd);
	if (n->rx_lim.timer_fd >= 0)
		close(n->rx_lim.timer_fd);
	if (n->tx_lim.timer_fd >= 0)
		close(n->tx_lim.timer_fd);
	virtio_device_fini(&n->vdev);
	free(n);
}
