// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-console (virtio 1.2 §5.3) with one port and no MULTIPORT: receiveq is queue 0,
 * transmitq queue 1 (§5.3.2). Guest output is written to out_fd on the I/O thread when the
 * guest kicks the transmitq; host input is copied into posted receive buffers by
 * virtio_console_receive() on the caller's thread (the main loop). Both under vdev->lock.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/devices.h"
#include "vmm/virtio_console.h"

#define VCON_RXQ       0
#define VCON_TXQ       1
#define VCON_NR_QUEUES 2

/* Segments per chain we accept; a longer chain is malformed (vq_pop says -EBADMSG). */
#define VCON_IOV_MAX VIRTIO_CONSOLE_QUEUE_SIZE

/*
 * How long one transmit chain may wait for out_fd to take bytes (a terminal stopped with ^S,
 * a slow pipe). It blocks the I/O thread and the device lock, so it is short; once it expired
 * the next chains do not wait until a write succeeds again, and the output is dropped.
 */
#define VCON_TX_WAIT_MS 100
/* Bytes per write() to a pollable fd: a tty reports POLLOUT with at least this much room. */
#define VCON_TX_PIECE 256

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
	bool out_poll; /* not a regular file: wait with poll() when it is full */

	/* vdev->lock */
	uint16_t cols, rows;
	bool rx_wanted; /* a receive came up short: tell rx_ready when the guest posts buffers */
	void (*rx_ready)(void *opaque);
	void *rx_opaque;
	bool tx_stalled;
	bool tx_broken;
	uint64_t tx_bytes, tx_dropped, rx_bytes;
	struct dev_ratelimit rl;
	struct iovec iov[VCON_IOV_MAX];
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

static int vcon_wait_writable(struct virtio_console *c, int timeout_ms)
{
	struct pollfd pfd = {.fd = c->out_fd, .events = POLLOUT};
	struct timespec deadline, now;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_nsec += (long)timeout_ms * 1000000L;
	deadline.tv_sec += deadline.tv_nsec / 1000000000L;
	deadline.tv_nsec %= 1000000000L;
	for (;;) {
		int r = poll(&pfd, 1, timeout_ms);

		if (r > 0)
			return 0; /* writable, or an error the next write() reports */
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t left_ms = (deadline.tv_sec - now.tv_sec) * 1000 +
				  (deadline.tv_nsec - now.tv_nsec) / 1000000;
		if (left_ms <= 0)
			return -ETIMEDOUT;
		timeout_ms = (int)left_ms;
	}
}

/*
 * Write all of buf to out_fd, or drop what cannot be written in time. out_fd may be a blocking
 * terminal or pipe shared with other processes (we cannot make it non-blocking): wait for
 * POLLOUT first and write small pieces, so that one write() cannot block for long.
 */
static void vcon_out(struct virtio_console *c, const uint8_t *buf, size_t len)
{
	unsigned int again = 0;

	if (c->out_fd < 0 || c->tx_broken) {
		c->tx_dropped += len;
		return;
	}
	while (len > 0) {
		if (c->out_poll &&
		    vcon_wait_writable(c, c->tx_stalled ? 0 : VCON_TX_WAIT_MS) == -ETIMEDOUT)
			goto stalled;
		size_t piece = c->out_poll ? MIN(len, (size_t)VCON_TX_PIECE) : len;
		ssize_t n = write(c->out_fd, buf, piece);

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			c->tx_bytes += (uint64_t)n;
			if (c->tx_stalled)
				dev_log_ratelimited(&c->rl, "virtio-console: output resumed");
			c->tx_stalled = false;
			again = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		/* poll() may call the fd writable and another writer fill it first: retry a bit. */
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (c->out_poll && ++again < 3)
				continue;
			goto stalled;
		}
		c->tx_broken = true;
		dev_log_ratelimited(&c->rl, "virtio-console: output failed (%s), discarding output",
				    n < 0 ? strerror(errno) : "wrote nothing");
		c->tx_dropped += len;
		return;
	}
	return;

stalled:
	if (!c->tx_stalled)
		dev_log_ratelimited(&c->rl, "virtio-console: output not draining, dropping");
	c->tx_stalled = true;
	c->tx_dropped += len;
}

/* One transmitq chain: its readable bytes go out, nothing is written back (§5.3.6.1). */
static void vcon_tx_chain(struct virtio_console *c, const struct vq_elem *elem)
{
	if (elem->in_num > 0) {
		/* A transmit buffer the device should write into is not a transmit buffer. */
		c->vdev.malformed++;
		return;
	}
	for (unsigned int i = 0; i < elem->out_num; i++)
		vcon_out(c, elem->iov[i].iov_base, elem->iov[i].iov_len);
}

static void vcon_tx(struct virtio_console *c)
{
	struct virtio_device *vdev = &c->vdev;
	struct virtqueue *vq = &vdev->vq[VCON_TXQ];
	bool pushed = false;

	/* §2.7.10: no kicks while we drain; re-enable and look again to close the race. */
	do {
		vq_set_notification(vq, false);
		for (;;) {
			struct vq_elem elem = {.iov = c->iov, .iov_cap = VCON_IOV_MAX};
			int r = vq_pop(vq, &elem);

			if (r == 0)
				break;
			if (r == -EIO) {
				virtio_device_fail(vdev, "malformed transmitq ring");
				goto out;
			}
			if (r < 0)
				vdev->malformed++; /* -EBADMSG: complete it, untouched */
			else
				vcon_tx_chain(c, &elem);
			vq_push(vq, elem.head, 0);
			pushed = true;
		}
		vq_set_notification(vq, true);
	} while (vq_has_avail(vq));
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
		vcon_out(c, data + (VCON_CFG_EMERG_WR - offset), 1);
}

static int vcon_activate(struct virtio_device *vdev)
{
	return 0; /* queues are looked at when kicked; the transport kicks each once now */
}

static void vcon_reset(struct virtio_device *vdev)
{
	/*
	 * No device state beyond the queues and the negotiation, which the transport resets.
	 * The terminal size and a pending host input (rx_wanted) are host-side facts: the next
	 * driver gets the same size, and its first receive buffers still wake the host input.
	 */
}

static const struct virtio_dev_ops vcon_ops = {
	.name = "virtio-console",
	.device_id = VIRTIO_ID_CONSOLE,
	.config_read = vcon_config_read,
	.config_write = vcon_config_write,
	.activate = vcon_activate,
	.reset = vcon_reset,
	.queue_notify = vcon_queue_notify,
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
	if (!vcon_running(vdev) || !vcon_queue_usable(vq))
		goto out;
	while (done < len) {
		struct vq_elem elem = {.iov = c->iov, .iov_cap = VCON_IOV_MAX};
		int r = vq_pop(vq, &elem);

		if (r == 0) {
			/* Ask for a kick on the next buffer, then look once more (§2.7.10). */
			vq_set_notification(vq, true);
			if (vq_has_avail(vq))
				continue;
			break;
		}
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
	c->out_poll = out_fd >= 0 && !(fstat(out_fd, &sb) == 0 && S_ISREG(sb.st_mode));
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

void virtio_console_destroy(struct virtio_console *c)
{
	if (!c)
		return;
	virtio_device_fini(&c->vdev);
	free(c);
}
