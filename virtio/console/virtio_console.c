// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-console (virtio 1.2 §5.3) with one port and no MULTIPORT: receiveq is queue 0,
 * transmitq queue 1 (§5.3.2). Guest output is written to out_fd on the I/O thread when the
 * guest kicks the transmitq; host input is copied into posted receive buffers by
 * virtio_console_receive() on the caller's thread (the main loop). Both under vdev->lock.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/devices.h"
#include "vmm/virtio_console.h"

#define VCON_RXQ       0
#define VCON_TXQ       1
#define VCON_NR_QUEUES 2

/* Segments per chain we accept; a longer chain is malformed (vq_pop says -EBADMSG). */
#define VCON_IOV_MAX VIRTIO_CONSOLE_QUEUE_SIZE

/*
 * Output backpressure. out_fd may be a blocking terminal or pipe shared with other processes,
 * so it stays as it is (no O_NONBLOCK); instead we write only what a POLLOUT guarantees to
 * take without blocking: PIPE_BUF bytes to a pipe (a pipe reports POLLOUT with a free page,
 * PIPE_BUF <= a page), small pieces to a terminal or other character device (a tty reports
 * POLLOUT with some room), send(MSG_DONTWAIT) to a socket. When out_fd is full the chain being
 * written stays popped, the transmitq is not looked at, and a POLLOUT watch on the I/O thread
 * resumes it: the guest's buffers stay in the ring and its hvc driver waits, as on a slow line.
 */
#define VCON_TX_PIECE	   256
#define VCON_TX_SOCK_PIECE (64 * 1024)
/* How long an emergency write (a vCPU's config access) may wait for out_fd; best effort. */
#define VCON_EMERG_WAIT_MS 100

enum vcon_out_kind {
	VCON_OUT_FILE, /* regular file or block device: write() never waits for a reader */
	VCON_OUT_PIPE,
	VCON_OUT_SOCK,
	VCON_OUT_CHAR, /* tty, pty, other character devices */
};

/* §5.3.4 struct virtio_console_config, little endian. */
#define VCON_CFG_COLS	      0
#define VCON_CFG_ROWS	      2
#define VCON_CFG_MAX_NR_PORTS 4
#define VCON_CFG_EMERG_WR     8
#define VCON_CFG_LEN	      12

struct virtio_console {
	struct virtio_device vdev;
	struct ev_loop *loop;
	int out_fd;
	enum vcon_out_kind out_kind;

	/* vdev->lock */
	uint16_t cols, rows;
	bool rx_wanted; /* a receive came up short: tell rx_ready when the guest posts buffers */
	void (*rx_ready)(void *opaque);
	void *rx_opaque;
	bool tx_broken; /* a hard write error: output is discarded from then on */
	bool emerg_stalled;
	/*
	 * The transmit chain out_fd could not take in full: popped, not yet pushed, seg/off is
	 * where writing resumes. Its iovecs point into guest RAM (tx_iov), valid until reset.
	 */
	bool tx_pending;
	struct vq_elem tx_elem;
	unsigned int tx_seg;
	size_t tx_off;
	/* POLLOUT watch on out_fd (0: none): added and removed on the I/O thread (vcon_reset). */
	unsigned int tx_watch;
	uint64_t tx_bytes, tx_dropped, tx_stalls, rx_bytes;
	struct dev_ratelimit rl;
	struct iovec tx_iov[VCON_IOV_MAX];
	struct iovec rx_iov[VCON_IOV_MAX];
};

static struct virtio_console *vcon_of(struct virtio_device *vdev)
{
	return vdev->opaque;
}

static bool vcon_running(const struct virtio_device *vdev)
{
	return (vdev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
	       VIRTIO_STATUS_DRIVER_OK;
}

static bool vcon_queue_usable(const struct virtqueue *vq)
{
	return vq->enabled && !vq->broken;
}

/* ---- output ---- */

/* Whether out_fd takes bytes now, without waiting (timeout 0) or waiting up to timeout_ms. */
static bool vcon_writable(const struct virtio_console *c, int timeout_ms)
{
	struct pollfd pfd = {.fd = c->out_fd, .events = POLLOUT};
	int r;

	do
		r = poll(&pfd, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	/* An error or hang-up counts as writable: the write() that follows reports it. */
	return r > 0;
}

/* Most bytes one write may carry without blocking once out_fd polled writable. */
static size_t vcon_piece(const struct virtio_console *c, size_t len)
{
	switch (c->out_kind) {
	case VCON_OUT_FILE:
		return len;
	case VCON_OUT_PIPE:
		return MIN(len, (size_t)PIPE_BUF);
	case VCON_OUT_SOCK:
		return MIN(len, (size_t)VCON_TX_SOCK_PIECE);
	case VCON_OUT_CHAR:
		break;
	}
	return MIN(len, (size_t)VCON_TX_PIECE);
}

/*
 * One non-blocking write of the start of buf. Returns bytes written (> 0), 0 when out_fd is
 * full now, or -errno for a hard error.
 */
static ssize_t vcon_write_some(struct virtio_console *c, const uint8_t *buf, size_t len,
			       int wait_ms)
{
	for (;;) {
		ssize_t n;

		if (c->out_kind == VCON_OUT_SOCK) {
			n = send(c->out_fd, buf, vcon_piece(c, len), MSG_DONTWAIT | MSG_NOSIGNAL);
		} else {
			if (c->out_kind != VCON_OUT_FILE && !vcon_writable(c, wait_ms))
				return 0;
			n = write(c->out_fd, buf, vcon_piece(c, len));
		}
		if (n > 0)
			return n;
		if (n < 0 && errno == EINTR)
			continue;
		/* A non-blocking fd, or another writer filled it between poll() and write(). */
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return n < 0 ? -errno : -EIO;
	}
}

/* A hard write error (EPIPE, EIO, ...): output has nowhere to go, discard it from now on. */
static void vcon_out_broken(struct virtio_console *c, int err)
{
	c->tx_broken = true;
	dev_log_ratelimited(&c->rl, "virtio-console: output failed (%s), discarding output",
			    strerror(-err));
}

/*
 * Write buf[*off..len) to out_fd. Returns true when it is all out (or discarded after a hard
 * error), false when out_fd is full; *off then says how far it got.
 */
static bool vcon_out(struct virtio_console *c, const uint8_t *buf, size_t len, size_t *off)
{
	while (*off < len) {
		if (c->out_fd < 0 || c->tx_broken) {
			c->tx_dropped += len - *off;
			*off = len;
			break;
		}
		ssize_t n = vcon_write_some(c, buf + *off, len - *off, 0);

		if (n == 0)
			return false;
		if (n < 0) {
			vcon_out_broken(c, (int)n);
			continue;
		}
		*off += (size_t)n;
		c->tx_bytes += (uint64_t)n;
	}
	return true;
}

/* Continue the pending chain: true when all of it is out, false when out_fd is full again. */
static bool vcon_tx_resume(struct virtio_console *c)
{
	const struct vq_elem *elem = &c->tx_elem;

	for (; c->tx_seg < elem->out_num; c->tx_seg++, c->tx_off = 0) {
		if (!vcon_out(c, elem->iov[c->tx_seg].iov_base, elem->iov[c->tx_seg].iov_len,
			      &c->tx_off))
			return false;
	}
	c->tx_pending = false;
	return true;
}

static void vcon_tx(struct virtio_console *c);

/* POLLOUT (or an error) on out_fd while a chain waits: runs on the I/O thread. */
static void vcon_tx_writable(void *opaque)
{
	struct virtio_console *c = opaque;
	struct virtio_device *vdev = &c->vdev;

	pthread_mutex_lock(&vdev->lock);
	if (vdev->quiesced)
		; /* paused: the pending chain waits for virtio_device_resume() */
	else if (vcon_running(vdev) && vcon_queue_usable(&vdev->vq[VCON_TXQ]))
		vcon_tx(c);
	else
		c->tx_pending = false; /* the chain cannot be completed before a reset anyway */
	/* Not waiting (any more): a writability watch on a writable fd would fire forever. */
	if ((!c->tx_pending || vdev->quiesced) && c->tx_watch) {
		ev_loop_remove_fd(c->loop, c->tx_watch); /* our own thread: inline */
		c->tx_watch = 0;
	}
	pthread_mutex_unlock(&vdev->lock);
}

/* One transmitq chain: its readable bytes go out, nothing is written back (§5.3.6.1). */
static bool vcon_tx_chain(struct virtio_console *c, const struct vq_elem *elem)
{
	if (elem->in_num > 0) {
		/* A transmit buffer the device should write into is not a transmit buffer. */
		c->vdev.malformed++;
		return true;
	}
	c->tx_elem = *elem;
	c->tx_seg = 0;
	c->tx_off = 0;
	c->tx_pending = true;
	return vcon_tx_resume(c);
}

/* I/O thread (a kick or the POLLOUT watch), vdev->lock held. */
static void vcon_tx(struct virtio_console *c)
{
	struct virtio_device *vdev = &c->vdev;
	struct virtqueue *vq = &vdev->vq[VCON_TXQ];
	bool pushed = false;

	if (vdev->quiesced)
		return; /* a paused VM's console is silent */
	/* A chain of a ring taken down meanwhile (QueueReady 0, then 1): the driver forgot it. */
	if (c->tx_pending && !vq_elem_current(vq, &c->tx_elem))
		c->tx_pending = false;
	if (c->tx_pending) {
		if (!vcon_tx_resume(c))
			goto stalled;
		vq_push(vq, c->tx_elem.head, 0);
		pushed = true;
	}
	/* §2.7.10: no kicks while we drain; re-enable and look again to close the race. */
	do {
		vq_set_notification(vq, false);
		for (;;) {
			struct vq_elem elem = {.iov = c->tx_iov, .iov_cap = VCON_IOV_MAX};
			int r = vq_pop(vq, &elem);

			if (r == 0)
				break;
			if (r == -EIO) {
				virtio_device_fail(vdev, "malformed transmitq ring");
				goto out;
			}
			if (r < 0)
				vdev->malformed++; /* -EBADMSG: complete it, untouched */
			else if (!vcon_tx_chain(c, &elem))
				goto stalled;
			vq_push(vq, elem.head, 0);
			pushed = true;
		}
		vq_set_notification(vq, true);
	} while (vq_has_avail(vq));
	goto out;

stalled:
	/*
	 * out_fd is full: leave the rest of the ring to the guest and wait for POLLOUT. Kicks
	 * stay off meanwhile (they could not help); the watch resumes the queue. If adding the
	 * watch failed, the next kick retries, so output is late but not lost.
	 */
	c->tx_stalls++;
	if (!c->tx_watch) {
		c->tx_watch = ev_loop_add_fd_events(c->loop, c->out_fd, true, vcon_tx_writable, c);
		if (!c->tx_watch) {
			dev_log_ratelimited(&c->rl, "virtio-console: cannot watch the output");
			vq_set_notification(vq, true);
		}
	}
out:
	if (pushed)
		virtio_queue_notify_driver(vdev, VCON_TXQ);
}

/* ---- device ops (vdev->lock held) ---- */

static void vcon_queue_notify(struct virtio_device *vdev, unsigned int qidx)
{
	struct virtio_console *c = vcon_of(vdev);

	if (qidx == VCON_TXQ) {
		vcon_tx(c);
		return;
	}
	if (qidx != VCON_RXQ || !c->rx_wanted || !vq_has_avail(&vdev->vq[VCON_RXQ]))
		return;
	/* The guest posted receive buffers after a short receive: the host may send again. */
	c->rx_wanted = false;
	void (*cb)(void *) = c->rx_ready;
	void *opaque = c->rx_opaque;
	if (cb) {
		/*
		 * Without the lock, so that the callback may call virtio_console_receive() as
		 * the UART's may call serial_receive(); the transport assumes nothing after
		 * queue_notify returns.
		 */
		pthread_mutex_unlock(&vdev->lock);
		cb(opaque);
		pthread_mutex_lock(&vdev->lock);
	}
}

/*
 * An emergency write on a vCPU thread (§5.3.4): best effort. It waits a little for out_fd,
 * but not again while output is stuck, and drops the byte rather than stall the vCPU.
 */
static void vcon_emerg_out(struct virtio_console *c, uint8_t byte)
{
	if (c->out_fd < 0 || c->tx_broken) {
		c->tx_dropped++;
		return;
	}
	int wait_ms = c->emerg_stalled || c->tx_pending ? 0 : VCON_EMERG_WAIT_MS;
	ssize_t n = vcon_write_some(c, &byte, 1, wait_ms);

	if (n < 0) {
		vcon_out_broken(c, (int)n);
		c->tx_dropped++;
		return;
	}
	c->emerg_stalled = n == 0;
	if (n == 0)
		c->tx_dropped++;
	else
		c->tx_bytes++;
}

static void vcon_config_read(struct virtio_device *vdev, uint32_t offset, uint8_t *data,
			     uint32_t len)
{
	struct virtio_console *c = vcon_of(vdev);
	uint8_t cfg[VCON_CFG_LEN] = {0};
	uint32_t ports = 1; /* only meaningful with MULTIPORT, which we do not offer */

	memcpy(cfg + VCON_CFG_COLS, &c->cols, 2);
	memcpy(cfg + VCON_CFG_ROWS, &c->rows, 2);
	memcpy(cfg + VCON_CFG_MAX_NR_PORTS, &ports, 4);
	/* emerg_wr reads 0: it is a write-only doorbell (§5.3.4). */
	memcpy(data, cfg + offset, len);
}

static void vcon_config_write(struct virtio_device *vdev, uint32_t offset, const uint8_t *data,
			      uint32_t len)
{
	struct virtio_console *c = vcon_of(vdev);

	/*
	 * §5.3.4: a write to emerg_wr outputs its low byte, usable even before the driver
	 * negotiated anything (early console). Writes to cols/rows/max_nr_ports are ignored.
	 */
	if (offset <= VCON_CFG_EMERG_WR && offset + len > VCON_CFG_EMERG_WR)
		vcon_emerg_out(c, data[VCON_CFG_EMERG_WR - offset]);
}

static int vcon_activate(struct virtio_device *vdev)
{
	return 0; /* queues are looked at when kicked; the transport kicks each once now */
}

static void vcon_reset(struct virtio_device *vdev)
{
	struct virtio_console *c = vcon_of(vdev);

	/*
	 * A chain waiting for out_fd belongs to the old driver: forget it (its bytes not yet
	 * written are lost with the rings, as on a real device). The POLLOUT watch is not
	 * removed here: we may be on a vCPU thread with vdev->lock held while the watch's
	 * callback waits for that lock on the I/O thread, and ev_loop_remove_fd() would wait
	 * for it. It fires at the next POLLOUT, finds nothing pending and removes itself; until
	 * then a new stall reuses it. virtio_console_destroy() removes it for good.
	 * The terminal size and a pending host input (rx_wanted) are host-side facts: the next
	 * driver gets the same size, and its first receive buffers still wake the host input.
	 */
	c->tx_pending = false;
	c->tx_seg = 0;
	c->tx_off = 0;
	memset(&c->tx_elem, 0, sizeof(c->tx_elem));
	c->emerg_stalled = false;
}

/*
 * The VM pauses (quiesced already set, I/O thread, lock held): a transmit chain half written to
 * a full out_fd is in flight. Give out_fd up to a second to take the rest, then complete the
 * chain either way (what did not fit is counted as dropped), so that the state a snapshot or a
 * live update takes holds no chain the device still owns.
 */
static void vcon_quiesce(struct virtio_device *vdev)
{
	struct virtio_console *c = vcon_of(vdev);
	struct virtqueue *vq = &vdev->vq[VCON_TXQ];

	if (!c->tx_pending)
		return;
	for (int i = 0; i < 10 && c->tx_pending; i++) {
		if (vcon_tx_resume(c))
			break;
		vcon_writable(c, 100);
	}
	if (c->tx_pending) {
		for (; c->tx_seg < c->tx_elem.out_num; c->tx_seg++, c->tx_off = 0)
			c->tx_dropped += c->tx_elem.iov[c->tx_seg].iov_len - c->tx_off;
		c->tx_pending = false;
		dev_log_ratelimited(&c->rl, "virtio-console: output stuck at a pause, the rest of "
				    "one chain dropped");
	}
	if (vq_elem_current(vq, &c->tx_elem)) {
		vq_push(vq, c->tx_elem.head, 0);
		virtio_queue_notify_driver(vdev, VCON_TXQ);
	}
}

static const struct virtio_dev_ops vcon_ops = {
	.name = "virtio-console",
	.device_id = VIRTIO_ID_CONSOLE,
	.config_read = vcon_config_read,
	.config_write = vcon_config_write,
	.activate = vcon_activate,
	.reset = vcon_reset,
	.queue_notify = vcon_queue_notify,
	.quiesce = vcon_quiesce,
};

/* ---- host side ---- */

size_t virtio_console_receive(struct virtio_console *c, const uint8_t *buf, size_t len)
{
	struct virtio_device *vdev = &c->vdev;
	struct virtqueue *vq = &vdev->vq[VCON_RXQ];
	size_t done = 0;
	bool pushed = false;

	if (len == 0)
		return 0;
	pthread_mutex_lock(&vdev->lock);
	/* Paused: nothing reaches the guest; resume's look at the receiveq calls rx_ready. */
	if (!vcon_running(vdev) || !vcon_queue_usable(vq) || vdev->quiesced)
		goto out;
	while (done < len) {
		struct vq_elem elem = {.iov = c->rx_iov, .iov_cap = VCON_IOV_MAX};
		int r = vq_pop_or_arm(vq, &elem);

		if (r == 0)
			break;
		if (r == -EIO) {
			virtio_device_fail(vdev, "malformed receiveq ring");
			break;
		}
		size_t n = 0;
		if (r < 0 || elem.in_num == 0) {
			/* Malformed, or nothing the device may write: complete it empty. */
			vdev->malformed++;
		} else {
			n = iov_from_buf(elem.iov + elem.out_num, elem.in_num, 0, buf + done,
					 len - done);
			done += n;
		}
		vq_push(vq, elem.head, (uint32_t)n);
		pushed = true;
	}
	if (pushed)
		virtio_queue_notify_driver(vdev, VCON_RXQ);
out:
	/* Backpressure as the UART: what the guest cannot take now stays with the caller. */
	if (done < len)
		c->rx_wanted = true;
	c->rx_bytes += done;
	pthread_mutex_unlock(&vdev->lock);
	return done;
}

void virtio_console_set_rx_ready_cb(struct virtio_console *c, void (*cb)(void *opaque),
				    void *opaque)
{
	pthread_mutex_lock(&c->vdev.lock);
	c->rx_ready = cb;
	c->rx_opaque = opaque;
	pthread_mutex_unlock(&c->vdev.lock);
}

void virtio_console_resize(struct virtio_console *c, uint16_t cols, uint16_t rows)
{
	struct virtio_device *vdev = &c->vdev;

	pthread_mutex_lock(&vdev->lock);
	bool changed = c->cols != cols || c->rows != rows;
	c->cols = cols;
	c->rows = rows;
	/* §5.3.6: with F_SIZE the driver re-reads cols/rows on a config change notification. */
	if (changed && virtio_has_feature(vdev, VIRTIO_CONSOLE_F_SIZE) && vdev->transport)
		vdev->transport->notify_config(vdev);
	pthread_mutex_unlock(&vdev->lock);
}

int virtio_console_create(struct virtio_console **out, const struct guest_mem *gm,
			  struct ev_loop *loop, int out_fd)
{
	struct virtio_console *c = calloc(1, sizeof(*c));
	struct stat sb;

	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->out_fd = out_fd;
	c->out_kind = VCON_OUT_CHAR;
	if (out_fd >= 0 && fstat(out_fd, &sb) == 0) {
		if (S_ISREG(sb.st_mode) || S_ISBLK(sb.st_mode))
			c->out_kind = VCON_OUT_FILE;
		else if (S_ISFIFO(sb.st_mode))
			c->out_kind = VCON_OUT_PIPE;
		else if (S_ISSOCK(sb.st_mode))
			c->out_kind = VCON_OUT_SOCK;
	}
	virtio_device_init(&c->vdev, &vcon_ops, c, gm, VCON_NR_QUEUES, VIRTIO_CONSOLE_QUEUE_SIZE);
	c->vdev.device_features |= VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
				   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC) |
				   VIRTIO_BIT(VIRTIO_CONSOLE_F_SIZE) |
				   VIRTIO_BIT(VIRTIO_CONSOLE_F_EMERG_WRITE);
	c->vdev.config_len = VCON_CFG_LEN;
	*out = c;
	return 0;
}

struct virtio_device *virtio_console_device(struct virtio_console *c)
{
	return &c->vdev;
}

/* On the I/O thread, so that the watch's callback is not running meanwhile. */
static void vcon_unwatch(void *opaque)
{
	struct virtio_console *c = opaque;

	pthread_mutex_lock(&c->vdev.lock);
	c->tx_pending = false;
	if (c->tx_watch)
		ev_loop_remove_fd(c->loop, c->tx_watch);
	c->tx_watch = 0;
	pthread_mutex_unlock(&c->vdev.lock);
}

/* Before the ev_loop is destroyed (vm_virtio_destroy's order): the watch lives on it. */
void virtio_console_destroy(struct virtio_console *c)
{
	if (!c)
		return;
	if (c->loop)
		ev_loop_call_sync(c->loop, vcon_unwatch, c);
	virtio_device_fini(&c->vdev);
	free(c);
}
