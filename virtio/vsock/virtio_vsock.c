// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-vsock (include/vmm/virtio_vsock.h): rx 0, tx 1, event 2; config space the guest's CID.
 * Everything runs on the I/O thread under vdev->lock: guest kicks, the listening socket, and
 * each connection's host socket.
 *
 * A connection owes the guest packets (control ones in ctl, data while its host socket has
 * bytes and the guest credit): it then waits on the work list, served round robin whenever
 * the receive queue has buffers. What a connection watches follows from its state alone
 * (conn_arm): its socket's input while it may send data and is not on the work list, its
 * socket's output while guest bytes wait for it. Nothing is watched while the VM is paused.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/devices.h"
#include "vmm/state.h"
#include "vmm/virtio_vsock.h"

#define VS_RXQ	   0
#define VS_TXQ	   1
#define VS_EVQ	   2
#define VS_CFG_LEN 8
#define VS_BUCKETS 1024
#define VS_IOV	   VSOCK_QUEUE_SIZE
#define VS_ORPHANS 64  /* RSTs owed for packets of no connection */
#define VS_BATCH   256 /* packets one callback moves before it lets others run */

enum vc_state {
	VC_LINE = 1,    /* a host program connected: reading its "CONNECT <port>\n" */
	VC_REQUESTED,   /* REQUEST owed or sent to the guest, waiting for its answer */
	VC_ESTABLISHED,
	VC_CLOSING,     /* the guest shut both ways: its last bytes go out, then RST */
	VC_DEAD,        /* host socket closed: RST owed to the guest, then freed */
	VC_STALE,       /* the driver was reset: freed on the I/O thread (vs_reset) */
};

/* Control packets owed to the guest. */
#define CTL_REQUEST  1
#define CTL_RESPONSE 2
#define CTL_RST	     4
#define CTL_SHUTDOWN 8  /* host end-of-file: SHUTDOWN(SEND) */
#define CTL_CREDIT   16
#define CTL_ALL	     31

struct vconn {
	struct virtio_vsock *v;
	struct vconn *hnext;         /* hash bucket (once the ports are known) */
	struct vconn *wnext;         /* work list */
	struct vconn *anext, *aprev; /* every connection */
	int fd;
	uint32_t lport, pport;       /* host (local) and guest (peer) ports */
	uint8_t state, ctl;
	bool hashed, queued;
	bool host_eof;               /* read() gave 0 */
	bool peer_no_send, peer_no_rcv;
	bool wr_shut;                /* shutdown(SHUT_WR) done after the guest's SHUTDOWN(SEND) */
	unsigned int rd_watch, wr_watch;
	/* Host to guest: the guest's buffer space and what it consumed, our bytes sent. */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	/* Guest to host: bytes received, written to the host socket, last told to the guest. */
	uint32_t rx_cnt, fwd_cnt, fwd_told;
	uint8_t *buf;                /* VSOCK_BUF_ALLOC ring of bytes the socket did not take */
	uint32_t head, len;
	char line[VSOCK_CONNECT_LINE_MAX];
	uint8_t line_len;
};

struct vs_orphan {
	uint32_t lport, pport;
};

struct virtio_vsock {
	struct virtio_device vdev;
	struct ev_loop *loop;
	uint64_t cid;
	int listen_fd;
	char *uds_path;
	int again_efd;               /* our own kick after a full batch */
	unsigned int again_watch;

	/* vdev->lock */
	unsigned int listen_watch;
	bool armed;                  /* watches may be set (not paused, not torn down) */
	struct vconn *bucket[VS_BUCKETS];
	struct vconn *all;
	struct vconn *whead, *wtail;
	unsigned int nconns;
	uint32_t next_lport;
	struct vs_orphan orphan[VS_ORPHANS];
	unsigned int norphans;
	bool reset_pending;          /* TRANSPORT_RESET owed on the event queue */
	struct iovec iov[VS_IOV];
	struct iovec sub[VS_IOV];
	uint64_t rx_bytes, tx_bytes, accepted, connected, resets, malformed_pkts;
	struct dev_ratelimit rl;
};

static struct virtio_vsock *vs_of(struct virtio_device *vdev)
{
	return vdev->opaque;
}

static bool vs_running(const struct virtio_device *vdev)
{
	return (vdev->status & (VIRTIO_STATUS_DRIVER_OK | VIRTIO_STATUS_DEVICE_NEEDS_RESET)) ==
	       VIRTIO_STATUS_DRIVER_OK;
}

static bool vs_queue_ok(const struct virtio_device *vdev, unsigned int q)
{
	return vdev->vq[q].enabled && !vdev->vq[q].broken;
}

/* ---- connections ---- */

static unsigned int vs_hash(uint32_t lport, uint32_t pport)
{
	return (lport * 2654435761u ^ pport * 40503u) % VS_BUCKETS;
}

static struct vconn *conn_find(struct virtio_vsock *v, uint32_t lport, uint32_t pport)
{
	for (struct vconn *c = v->bucket[vs_hash(lport, pport)]; c; c = c->hnext)
		if (c->lport == lport && c->pport == pport)
			return c;
	return NULL;
}

static void conn_hash(struct vconn *c)
{
	unsigned int b = vs_hash(c->lport, c->pport);

	c->hnext = c->v->bucket[b];
	c->v->bucket[b] = c;
	c->hashed = true;
}

static void conn_unhash(struct vconn *c)
{
	struct vconn **p = &c->v->bucket[vs_hash(c->lport, c->pport)];

	if (!c->hashed)
		return;
	while (*p && *p != c)
		p = &(*p)->hnext;
	if (*p)
		*p = c->hnext;
	c->hashed = false;
}

static void conn_enqueue(struct vconn *c)
{
	struct virtio_vsock *v = c->v;

	if (c->queued)
		return;
	c->queued = true;
	c->wnext = NULL;
	if (v->wtail)
		v->wtail->wnext = c;
	else
		v->whead = c;
	v->wtail = c;
}

static void conn_dequeue(struct vconn *c)
{
	struct virtio_vsock *v = c->v;
	struct vconn *prev = NULL;

	if (!c->queued)
		return;
	for (struct vconn *i = v->whead; i; prev = i, i = i->wnext) {
		if (i != c)
			continue;
		if (prev)
			prev->wnext = c->wnext;
		else
			v->whead = c->wnext;
		if (v->wtail == c)
			v->wtail = prev;
		break;
	}
	c->queued = false;
	c->wnext = NULL;
}

static uint32_t conn_credit(const struct vconn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;

	return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

/* Whether the connection may send the guest data now (bytes permitting). */
static bool conn_may_send(const struct vconn *c)
{
	return c->state == VC_ESTABLISHED && !c->host_eof && !c->peer_no_rcv && conn_credit(c);
}

static void conn_readable(void *opaque);
static void conn_writable(void *opaque);

/* Make the watches match the state (see the top of the file). */
static void conn_arm(struct vconn *c)
{
	struct virtio_vsock *v = c->v;
	bool rd = v->armed && c->fd >= 0 &&
		  (c->state == VC_LINE || (conn_may_send(c) && !c->queued));
	bool wr = v->armed && c->fd >= 0 && c->len;

	/* Left as it is until the I/O thread frees it (vs_reset). */
	if (c->state == VC_STALE)
		return;

	if (!v->loop) {
		c->rd_watch = rd;
		c->wr_watch = wr;
		return;
	}
	if (rd && !c->rd_watch)
		c->rd_watch = ev_loop_add_fd(v->loop, c->fd, conn_readable, c);
	else if (!rd && c->rd_watch) {
		ev_loop_remove_fd(v->loop, c->rd_watch);
		c->rd_watch = 0;
	}
	if (wr && !c->wr_watch)
		c->wr_watch = ev_loop_add_fd_events(v->loop, c->fd, true, conn_writable, c);
	else if (!wr && c->wr_watch) {
		ev_loop_remove_fd(v->loop, c->wr_watch);
		c->wr_watch = 0;
	}
}

static void conn_unwatch(struct vconn *c)
{
	if (c->v->loop) {
		if (c->rd_watch)
			ev_loop_remove_fd(c->v->loop, c->rd_watch);
		if (c->wr_watch)
			ev_loop_remove_fd(c->v->loop, c->wr_watch);
	}
	c->rd_watch = c->wr_watch = 0;
}

static struct vconn *conn_new(struct virtio_vsock *v, int fd, enum vc_state st)
{
	struct vconn *c;

	if (v->nconns >= VSOCK_MAX_CONNS || !(c = calloc(1, sizeof(*c))))
		return NULL;
	c->v = v;
	c->fd = fd;
	c->state = (uint8_t)st;
	c->anext = v->all;
	if (v->all)
		v->all->aprev = c;
	v->all = c;
	v->nconns++;
	return c;
}

static void conn_close_fd(struct vconn *c)
{
	conn_unwatch(c);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void conn_free(struct vconn *c)
{
	struct virtio_vsock *v = c->v;

	conn_close_fd(c);
	conn_unhash(c);
	conn_dequeue(c);
	if (c->aprev)
		c->aprev->anext = c->anext;
	else
		v->all = c->anext;
	if (c->anext)
		c->anext->aprev = c->aprev;
	v->nconns--;
	free(c->buf);
	free(c);
}

static void conn_owe(struct vconn *c, uint8_t ctl)
{
	c->ctl |= ctl;
	conn_enqueue(c);
	conn_arm(c);
}

/* End the connection: the host socket now, the guest with an RST (then freed). */
static void conn_reset(struct vconn *c)
{
	c->v->resets++;
	conn_close_fd(c);
	c->len = 0;
	if (c->state == VC_LINE) {
		conn_free(c);
		return;
	}
	c->state = VC_DEAD;
	c->ctl = CTL_RST;
	conn_enqueue(c);
}

static void orphan_rst(struct virtio_vsock *v, uint32_t lport, uint32_t pport)
{
	/* A guest sending to ports nobody uses faster than it takes the RSTs loses some: it
	 * gets no answer, as from a lossy peer. */
	if (v->norphans < VS_ORPHANS)
		v->orphan[v->norphans++] = (struct vs_orphan){ lport, pport };
}

/* ---- guest to host bytes ---- */

/*
 * Tell the guest it may send again once a quarter of the buffer is free since we last told
 * it; or, when its view of our space is low (it may be waiting), once all it sent has gone
 * out. Never for a few bytes: a sender held to small credits sends small packets.
 */
static void conn_credit_maybe(struct vconn *c)
{
	uint32_t told_free = VSOCK_BUF_ALLOC - (c->rx_cnt - c->fwd_told);
	uint32_t gained = c->fwd_cnt - c->fwd_told;

	if (gained >= VSOCK_BUF_ALLOC / 4 ||
	    (gained && told_free < VSOCK_BUF_ALLOC / 4 && c->fwd_cnt == c->rx_cnt))
		conn_owe(c, CTL_CREDIT);
}

/* After the buffer emptied: the guest's half-close, or the end of a closing connection. */
static void conn_drained(struct vconn *c)
{
	if (c->state == VC_CLOSING) {
		conn_close_fd(c);
		c->state = VC_DEAD;
		conn_owe(c, CTL_RST);
		return;
	}
	if (c->peer_no_send && !c->wr_shut && c->fd >= 0) {
		shutdown(c->fd, SHUT_WR);
		c->wr_shut = true;
	}
}

/* Write what waits in the buffer. */
static void conn_flush(struct vconn *c)
{
	while (c->len) {
		uint32_t first = VSOCK_BUF_ALLOC - c->head < c->len ? VSOCK_BUF_ALLOC - c->head
								     : c->len;
		struct iovec io[2] = { { c->buf + c->head, first },
				       { c->buf, c->len - first } };
		ssize_t n = writev(c->fd, io, c->len > first ? 2 : 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			conn_reset(c);
			return;
		}
		c->head = (c->head + (uint32_t)n) % VSOCK_BUF_ALLOC;
		c->len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
		c->v->tx_bytes += (uint64_t)n;
	}
	conn_arm(c);
	if (!c->len)
		conn_drained(c);
	if (c->state != VC_DEAD)
		conn_credit_maybe(c);
}

/* [off, off + max) of iov as sub (at most cap entries): how many entries. */
static unsigned int iov_slice(const struct iovec *iov, unsigned int cnt, size_t off, size_t max,
			      struct iovec *sub, unsigned int cap)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < cnt && max && n < cap; i++) {
		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		size_t len = iov[i].iov_len - off;

		if (len > max)
			len = max;
		sub[n].iov_base = (uint8_t *)iov[i].iov_base + off;
		sub[n++].iov_len = len;
		max -= len;
		off = 0;
	}
	return n;
}

/* An RW packet's payload (len bytes at iov offset VSOCK_HDR_LEN) for the host socket. */
static void conn_rw(struct vconn *c, const struct iovec *iov, unsigned int cnt, uint32_t len)
{
	struct virtio_vsock *v = c->v;
	size_t done = 0;

	if (c->state != VC_ESTABLISHED || c->peer_no_send) {
		conn_reset(c);
		return;
	}
	/* Beyond the credit we gave: the guest breaks the protocol. */
	if (len > VSOCK_BUF_ALLOC - c->len) {
		dev_log_ratelimited(&v->rl, "virtio-vsock: the guest sent beyond its credit on "
				    "port %u: connection reset", c->lport);
		conn_reset(c);
		return;
	}
	c->rx_cnt += len;
	if (!c->len) {
		unsigned int n = iov_slice(iov, cnt, VSOCK_HDR_LEN, len, v->sub, VS_IOV);
		ssize_t w;

		do
			w = writev(c->fd, v->sub, (int)n);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno != EAGAIN) {
			conn_reset(c);
			return;
		}
		if (w > 0) {
			done = (size_t)w;
			c->fwd_cnt += (uint32_t)w;
			v->tx_bytes += (uint64_t)w;
		}
	}
	if (done < len) {
		if (!c->buf && !(c->buf = malloc(VSOCK_BUF_ALLOC))) {
			conn_reset(c);
			return;
		}
		/* Into the ring after what is there, in at most two pieces. */
		uint32_t rest = len - (uint32_t)done;
		uint32_t tail = (c->head + c->len) % VSOCK_BUF_ALLOC;
		uint32_t first = VSOCK_BUF_ALLOC - tail < rest ? VSOCK_BUF_ALLOC - tail : rest;

		iov_to_buf(iov, cnt, VSOCK_HDR_LEN + done, c->buf + tail, first);
		if (rest > first)
			iov_to_buf(iov, cnt, VSOCK_HDR_LEN + done + first, c->buf, rest - first);
		c->len += rest;
		conn_arm(c);
	}
	conn_credit_maybe(c);
}

/* ---- packets from the guest ---- */

/* The guest connects to host port h->dst_port: PATH_P. */
static void vs_guest_connect(struct virtio_vsock *v, const struct virtio_vsock_hdr *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vconn *c;
	int fd;

	if (!v->uds_path ||
	    vsock_port_path(v->uds_path, h->dst_port, sa.sun_path, sizeof(sa.sun_path)) < 0 ||
	    v->nconns >= VSOCK_MAX_CONNS) {
		orphan_rst(v, h->dst_port, h->src_port);
		return;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	/* A listener with a full backlog (EAGAIN) refuses too: the guest may try again. */
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    !(c = conn_new(v, fd, VC_ESTABLISHED))) {
		if (fd >= 0)
			close(fd);
		orphan_rst(v, h->dst_port, h->src_port);
		return;
	}
	v->connected++;
	c->lport = h->dst_port;
	c->pport = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	conn_hash(c);
	conn_owe(c, CTL_RESPONSE);
}

static void vs_packet(struct virtio_vsock *v, const struct virtio_vsock_hdr *h,
		      const struct iovec *iov, unsigned int cnt)
{
	struct vconn *c = conn_find(v, h->dst_port, h->src_port);

	if (h->type != VSOCK_TYPE_STREAM) {
		/* Seqpacket is not offered; anything else is refused the same way. */
		if (h->op != VSOCK_OP_RST)
			orphan_rst(v, h->dst_port, h->src_port);
		return;
	}
	if (!c || c->state == VC_DEAD) {
		if (h->op == VSOCK_OP_REQUEST && !c)
			vs_guest_connect(v, h);
		else if (h->op != VSOCK_OP_RST && !c)
			orphan_rst(v, h->dst_port, h->src_port);
		return;
	}
	/* Every packet carries the sender's credit; credit back means the host socket may be
	 * read again. */
	uint32_t before = conn_credit(c);
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (!before && conn_credit(c))
		conn_arm(c);

	switch (h->op) {
	case VSOCK_OP_RESPONSE: {
		char ok[24];
		int n = snprintf(ok, sizeof(ok), "OK %u\n", c->lport);

		/* A fresh socket's buffer takes these few bytes. */
		if (c->state != VC_REQUESTED || (c->ctl & CTL_REQUEST) ||
		    write(c->fd, ok, (size_t)n) != n) {
			conn_reset(c);
			break;
		}
		c->state = VC_ESTABLISHED;
		conn_arm(c);
		break;
	}
	case VSOCK_OP_RST:
		conn_free(c);
		break;
	case VSOCK_OP_SHUTDOWN:
		c->peer_no_rcv |= (h->flags & VSOCK_SHUTDOWN_RCV) != 0;
		c->peer_no_send |= (h->flags & VSOCK_SHUTDOWN_SEND) != 0;
		if (c->state == VC_REQUESTED) {
			conn_reset(c);
			break;
		}
		if (c->peer_no_rcv && c->peer_no_send)
			c->state = VC_CLOSING;
		if (c->fd >= 0 && c->peer_no_rcv)
			shutdown(c->fd, SHUT_RD);
		if (!c->len)
			conn_drained(c);
		if (c->state != VC_DEAD)
			conn_arm(c);
		break;
	case VSOCK_OP_RW:
		conn_rw(c, iov, cnt, h->len);
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		conn_owe(c, CTL_CREDIT);
		break;
	default: /* REQUEST on a connection, or an op of no meaning */
		conn_reset(c);
		break;
	}
}

static void vs_tx(struct virtio_vsock *v)
{
	struct virtio_device *vdev = &v->vdev;
	struct virtqueue *vq = &vdev->vq[VS_TXQ];
	bool pushed = false;

	for (unsigned int moved = 0;; moved++) {
		if (moved == VS_BATCH) {
			uint64_t one = 1;

			if (write(v->again_efd, &one, sizeof(one)) < 0)
				vq_set_notification(vq, true);
			break;
		}
		struct vq_elem e = { .iov = v->iov, .iov_cap = VS_IOV };
		struct virtio_vsock_hdr h;
		int r = vq_pop_or_arm(vq, &e);

		if (r == 0)
			break;
		if (r == -EIO) {
			virtio_device_fail(vdev, "malformed tx ring");
			break;
		}
		if (r < 0 || e.in_num || e.out_len < VSOCK_HDR_LEN) {
			vdev->malformed++;
		} else {
			iov_to_buf(e.iov, e.out_num, 0, &h, sizeof(h));
			/* Only the guest's own CID, to the host; a payload only on RW, as long as
			 * it says and no longer than a packet may be. */
			if (h.src_cid != v->cid || h.dst_cid != VSOCK_HOST_CID ||
			    (h.op == VSOCK_OP_RW ? h.len > VSOCK_MAX_PKT ||
							   h.len > e.out_len - VSOCK_HDR_LEN
						 : h.len != 0)) {
				v->malformed_pkts++;
				dev_log_ratelimited(&v->rl, "virtio-vsock: a malformed packet "
						    "(op %u, %u bytes, cid %llu to %llu): dropped",
						    h.op, h.len, (unsigned long long)h.src_cid,
						    (unsigned long long)h.dst_cid);
			} else {
				vs_packet(v, &h, e.iov, e.out_num);
			}
		}
		vq_push(vq, e.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_queue_notify_driver(vdev, VS_TXQ);
}

/* ---- packets to the guest ---- */

static void vs_hdr(struct virtio_vsock_hdr *h, const struct virtio_vsock *v, uint32_t lport,
		   uint32_t pport, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = VSOCK_HOST_CID;
	h->dst_cid = v->cid;
	h->src_port = lport;
	h->dst_port = pport;
	h->type = VSOCK_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = VSOCK_BUF_ALLOC;
}

/* The next receive buffer: 1, 0 when there is none, -1 when the ring is broken. */
static int vs_rx_pop(struct virtio_vsock *v, struct vq_elem *e)
{
	struct virtio_device *vdev = &v->vdev;
	struct virtqueue *vq = &vdev->vq[VS_RXQ];

	for (unsigned int bad = 0; bad < vq->size;) {
		e->iov = v->iov;
		e->iov_cap = VS_IOV;
		int r = vq_pop_or_arm(vq, e);

		if (r == 0)
			return 0;
		if (r == -EIO) {
			virtio_device_fail(vdev, "malformed rx ring");
			return -1;
		}
		if (r < 0 || e->out_num || e->in_len < VSOCK_HDR_LEN) {
			vdev->malformed++;
			vq_push(vq, e->head, 0);
			bad++;
			continue;
		}
		return 1;
	}
	return 0;
}

static void vs_rx_put(struct virtio_vsock *v, struct vq_elem *e, struct virtio_vsock_hdr *h)
{
	iov_from_buf(e->iov, e->in_num, 0, h, sizeof(*h));
	vq_push(&v->vdev.vq[VS_RXQ], e->head, VSOCK_HDR_LEN + h->len);
}

/*
 * One packet of c's into e. Returns 1 when e was used, 0 when c has nothing to send now (e
 * is still free), -1 when c is gone.
 */
static int conn_send(struct vconn *c, struct vq_elem *e)
{
	struct virtio_vsock *v = c->v;
	struct virtio_vsock_hdr h;
	uint16_t op;

	if (c->state == VC_LINE)
		return 0;
	if (c->ctl & CTL_RST) {
		vs_hdr(&h, v, c->lport, c->pport, VSOCK_OP_RST);
		vs_rx_put(v, e, &h);
		conn_free(c);
		return -1;
	}
	if (c->ctl & (CTL_REQUEST | CTL_RESPONSE)) {
		op = (c->ctl & CTL_REQUEST) ? VSOCK_OP_REQUEST : VSOCK_OP_RESPONSE;
		c->ctl &= (uint8_t)~(CTL_REQUEST | CTL_RESPONSE);
		goto control;
	}
	if (conn_may_send(c)) {
		uint32_t max = conn_credit(c);
		size_t room = e->in_len - VSOCK_HDR_LEN;

		if (max > room)
			max = (uint32_t)room;
		if (max > VSOCK_MAX_PKT)
			max = VSOCK_MAX_PKT;
		unsigned int n = iov_slice(e->iov, e->in_num, VSOCK_HDR_LEN, max, v->sub, VS_IOV);
		ssize_t got = 0;

		if (n) {
			do
				got = readv(c->fd, v->sub, (int)n);
			while (got < 0 && errno == EINTR);
		}
		if (got > 0) {
			vs_hdr(&h, v, c->lport, c->pport, VSOCK_OP_RW);
			h.len = (uint32_t)got;
			h.fwd_cnt = c->fwd_told = c->fwd_cnt;
			c->tx_cnt += (uint32_t)got;
			v->rx_bytes += (uint64_t)got;
			vs_rx_put(v, e, &h);
			return 1;
		}
		if (n && got == 0) {
			c->host_eof = true;
			c->ctl |= CTL_SHUTDOWN;
		} else if (n && errno != EAGAIN) {
			conn_reset(c);
			return 0;
		}
	}
	if (c->ctl & CTL_SHUTDOWN) {
		op = VSOCK_OP_SHUTDOWN;
		c->ctl &= (uint8_t)~CTL_SHUTDOWN;
		goto control;
	}
	if (c->ctl & CTL_CREDIT) {
		op = VSOCK_OP_CREDIT_UPDATE;
		c->ctl &= (uint8_t)~CTL_CREDIT;
		goto control;
	}
	return 0;
control:
	vs_hdr(&h, v, c->lport, c->pport, op);
	if (op == VSOCK_OP_SHUTDOWN)
		h.flags = VSOCK_SHUTDOWN_SEND;
	h.fwd_cnt = c->fwd_told = c->fwd_cnt;
	c->ctl &= (uint8_t)~CTL_CREDIT; /* this packet told the guest */
	vs_rx_put(v, e, &h);
	return 1;
}

/* A host program's "CONNECT <port>\n": read up to its newline, no further. */
static void conn_read_line(struct vconn *c)
{
	struct virtio_vsock *v = c->v;
	char peek[VSOCK_CONNECT_LINE_MAX];
	size_t want = sizeof(c->line) - c->line_len;
	ssize_t n;
	uint32_t port;

	do
		n = recv(c->fd, peek, want, MSG_PEEK);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		conn_free(c);
		return;
	}
	char *nl = memchr(peek, '\n', (size_t)n);
	size_t take = nl ? (size_t)(nl - peek) + 1 : (size_t)n;

	if (recv(c->fd, c->line + c->line_len, take, 0) != (ssize_t)take) {
		conn_free(c);
		return;
	}
	c->line_len = (uint8_t)(c->line_len + take);
	if (!nl) {
		if (c->line_len == sizeof(c->line))
			conn_free(c); /* no line of ours */
		return;
	}
	if (vsock_parse_connect(c->line, c->line_len, &port) < 0) {
		conn_free(c);
		return;
	}
	/* A host port of ours for it, not in use with this guest port. */
	do {
		c->lport = v->next_lport++;
		if (v->next_lport < VSOCK_LOCAL_PORT_BASE)
			v->next_lport = VSOCK_LOCAL_PORT_BASE;
	} while (conn_find(v, c->lport, port));
	c->pport = port;
	c->state = VC_REQUESTED;
	c->peer_buf_alloc = 0;
	conn_hash(c);
	conn_owe(c, CTL_REQUEST);
}

static void vs_event(struct virtio_vsock *v)
{
	struct virtio_device *vdev = &v->vdev;
	struct virtqueue *vq = &vdev->vq[VS_EVQ];

	while (v->reset_pending && vs_queue_ok(vdev, VS_EVQ)) {
		struct vq_elem e = { .iov = v->iov, .iov_cap = VS_IOV };
		uint32_t id = VSOCK_EVENT_TRANSPORT_RESET;
		int r = vq_pop(vq, &e);

		if (r == 0)
			return; /* delivered when the driver posts a buffer (its kick) */
		if (r == -EIO) {
			virtio_device_fail(vdev, "malformed event ring");
			return;
		}
		if (r < 0 || e.out_num || e.in_len < sizeof(id)) {
			vdev->malformed++;
			vq_push(vq, e.head, 0);
			continue;
		}
		iov_from_buf(e.iov, e.in_num, 0, &id, sizeof(id));
		vq_push(vq, e.head, sizeof(id));
		v->reset_pending = false;
		virtio_queue_notify_driver(vdev, VS_EVQ);
	}
}

/* Serve the work list while the guest has receive buffers. */
static void vs_rx(struct virtio_vsock *v)
{
	struct virtio_device *vdev = &v->vdev;
	bool pushed = false;
	unsigned int moved = 0;

	if (!vs_queue_ok(vdev, VS_RXQ))
		return;
	while ((v->norphans || v->whead) && moved < VS_BATCH) {
		struct vq_elem e;
		int r;

		/* A connection still reading its CONNECT line sends nothing. */
		if (!v->norphans && v->whead->state == VC_LINE) {
			struct vconn *c = v->whead;

			conn_dequeue(c);
			conn_arm(c);
			continue;
		}
		if ((r = vs_rx_pop(v, &e)) <= 0)
			break;
		if (v->norphans) {
			struct virtio_vsock_hdr h;
			struct vs_orphan o = v->orphan[--v->norphans];

			vs_hdr(&h, v, o.lport, o.pport, VSOCK_OP_RST);
			vs_rx_put(v, &e, &h);
			pushed = true;
			moved++;
			continue;
		}
		struct vconn *c = v->whead;

		conn_dequeue(c);
		r = conn_send(c, &e);
		if (r == 0) {
			vq_unpop(&vdev->vq[VS_RXQ], 1);
			/* Nothing now: a connection with no more to say watches its socket. */
			if (c->state == VC_DEAD)
				conn_enqueue(c); /* its RST, next round */
			else
				conn_arm(c);
			continue;
		}
		pushed = true;
		moved++;
		if (r > 0) {
			/* Round robin: to the back, if it has more to send. */
			if (c->ctl || conn_may_send(c))
				conn_enqueue(c);
			conn_arm(c);
		}
	}
	if (moved == VS_BATCH) {
		uint64_t one = 1;

		if (write(v->again_efd, &one, sizeof(one)) < 0)
			vq_set_notification(&vdev->vq[VS_RXQ], true);
	}
	if (pushed)
		virtio_queue_notify_driver(vdev, VS_RXQ);
}

static bool vs_active(const struct virtio_vsock *v)
{
	return !v->vdev.quiesced && vs_running(&v->vdev);
}

/* Everything that may have work: packets owed, the event. */
static void vs_service(struct virtio_vsock *v)
{
	if (!vs_active(v))
		return;
	vs_rx(v);
	vs_event(v);
}

/* ---- watches ---- */

static void conn_readable(void *opaque)
{
	struct vconn *c = opaque;
	struct virtio_vsock *v = c->v;

	pthread_mutex_lock(&v->vdev.lock);
	if (c->state == VC_STALE) {
		conn_free(c);
	} else {
		if (c->state == VC_LINE) {
			conn_read_line(c);
		} else {
			conn_enqueue(c); /* its watch goes: the work list reads it */
			conn_arm(c);
		}
		vs_service(v);
	}
	pthread_mutex_unlock(&v->vdev.lock);
}

static void conn_writable(void *opaque)
{
	struct vconn *c = opaque;
	struct virtio_vsock *v = c->v;

	pthread_mutex_lock(&v->vdev.lock);
	if (c->state == VC_STALE) {
		conn_free(c);
	} else {
		conn_flush(c);
		vs_service(v);
	}
	pthread_mutex_unlock(&v->vdev.lock);
}

static void vs_accept(struct virtio_vsock *v)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct vconn *c;

		if (fd < 0)
			return;
		if (!(c = conn_new(v, fd, VC_LINE))) {
			close(fd); /* too many: the program sees its connection closed */
			continue;
		}
		v->accepted++;
		conn_arm(c);
	}
}

static void vs_listen_ready(void *opaque)
{
	struct virtio_vsock *v = opaque;

	pthread_mutex_lock(&v->vdev.lock);
	vs_accept(v);
	pthread_mutex_unlock(&v->vdev.lock);
}

/* On the I/O thread (or without a loop): what a reset left behind. */
static void vs_free_stale(struct virtio_vsock *v)
{
	for (struct vconn *c = v->all, *next; c; c = next) {
		next = c->anext;
		if (c->state == VC_STALE)
			conn_free(c);
	}
}

static void vs_kick_self(struct virtio_vsock *v)
{
	uint64_t one = 1;

	if (v->loop && write(v->again_efd, &one, sizeof(one)) < 0)
		dev_log_ratelimited(&v->rl, "virtio-vsock: its own kick: %s", strerror(errno));
}

static void vs_again(void *opaque)
{
	struct virtio_vsock *v = opaque;
	uint64_t n;

	if (read(v->again_efd, &n, sizeof(n)) < 0)
		return;
	pthread_mutex_lock(&v->vdev.lock);
	vs_free_stale(v);
	if (vs_active(v)) {
		if (vs_queue_ok(&v->vdev, VS_TXQ))
			vs_tx(v);
		vs_service(v);
	}
	pthread_mutex_unlock(&v->vdev.lock);
}

/* Watches on (the device runs) or off (paused, torn down): the listener and every socket. */
static void vs_arm_all(struct virtio_vsock *v, bool on)
{
	v->armed = on;
	if (v->loop && v->listen_fd >= 0) {
		if (on && !v->listen_watch)
			v->listen_watch = ev_loop_add_fd(v->loop, v->listen_fd, vs_listen_ready, v);
		else if (!on && v->listen_watch) {
			ev_loop_remove_fd(v->loop, v->listen_watch);
			v->listen_watch = 0;
		}
	}
	/* Only adds watches when on (any thread); removes them when off (the I/O thread). */
	for (struct vconn *c = v->all; c; c = c->anext)
		conn_arm(c);
}

/* ---- virtio ---- */

static void vs_config_read(struct virtio_device *vdev, uint32_t offset, uint8_t *data,
			   uint32_t len)
{
	uint64_t cid = vs_of(vdev)->cid;

	memcpy(data, (uint8_t *)&cid + offset, len);
}

static void vs_config_write(struct virtio_device *vdev, uint32_t offset, const uint8_t *data,
			    uint32_t len)
{
	(void)vdev, (void)offset, (void)data, (void)len; /* read-only */
}

static void vs_queue_notify(struct virtio_device *vdev, unsigned int qidx)
{
	struct virtio_vsock *v = vs_of(vdev);

	if (!vs_active(v))
		return;
	if (!v->armed)
		vs_arm_all(v, true); /* resumed */
	if (qidx == VS_TXQ && vs_queue_ok(vdev, VS_TXQ))
		vs_tx(v);
	vs_service(v);
}

static void vs_quiesce(struct virtio_device *vdev)
{
	vs_arm_all(vs_of(vdev), false);
}

static void vs_drop_all(struct virtio_vsock *v)
{
	while (v->all)
		conn_free(v->all);
	v->norphans = 0;
	v->whead = v->wtail = NULL;
}

static void vs_reset(struct virtio_device *vdev)
{
	struct virtio_vsock *v = vs_of(vdev);

	/*
	 * The driver forgot its connections: the host programs see theirs closed. We may be on a
	 * vCPU thread with the lock held, where removing a watch could wait for its callback,
	 * which waits for the lock: the connections are cut off from the guest here and freed on
	 * the I/O thread. Programs still sending their CONNECT line are the next driver's.
	 */
	for (struct vconn *c = v->all; c; c = c->anext) {
		if (c->state == VC_LINE)
			continue;
		conn_unhash(c);
		conn_dequeue(c);
		c->state = VC_STALE;
		c->ctl = 0;
		c->len = 0;
	}
	v->norphans = 0;
	v->reset_pending = false;
	if (v->loop)
		vs_kick_self(v);
	else
		vs_free_stale(v);
}

static int vs_activate(struct virtio_device *vdev)
{
	struct virtio_vsock *v = vs_of(vdev);

	if (!vdev->quiesced && !v->armed)
		vs_arm_all(v, true);
	/* A loaded state may owe the guest packets (a restore's reset event) that no kick of
	 * the driver's would bring: the I/O thread looks. */
	vs_kick_self(v);
	return 0;
}

/* ---- state ---- */

struct vs_conn_rec {
	uint32_t fd_idx, lport, pport;
	uint8_t state, ctl, flags, line_len;
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt, rx_cnt, fwd_cnt, fwd_told, buf_len;
	char line[VSOCK_CONNECT_LINE_MAX];
} __attribute__((packed));

#define REC_HOST_EOF   1
#define REC_NO_SEND    2
#define REC_NO_RCV     4
#define REC_WR_SHUT    8
#define REC_QUEUED     16

static void vs_save(struct virtio_device *vdev, struct dev_state_writer *w)
{
	struct virtio_vsock *v = vs_of(vdev);
	struct vs_conn_rec *recs = NULL;
	uint8_t *data = NULL;
	size_t nrec = 0, dlen = 0;
	struct vs_orphan orph[VS_ORPHANS + VSOCK_MAX_CONNS];
	unsigned int norph = v->norphans;
	uint32_t u;

	dev_state_put(w, "vsock-cid", &v->cid, sizeof(v->cid));
	u = v->next_lport;
	dev_state_put(w, "vsock-next-port", &u, sizeof(u));
	memcpy(orph, v->orphan, sizeof(v->orphan[0]) * norph);
	/* Without a way to pass the sockets on (a snapshot file), the guest's connections end
	 * with the transport's reset when the state is loaded. */
	u = !dev_state_keeps_fds(w) || v->reset_pending;
	dev_state_put(w, "vsock-reset", &u, sizeof(u));
	if (!dev_state_keeps_fds(w))
		return;
	size_t held = 0;
	for (struct vconn *c = v->all; c; c = c->anext)
		held += c->len;
	if (v->nconns && (!(recs = calloc(v->nconns, sizeof(*recs))) ||
			  !(data = malloc(held ? held : 1)))) {
		dev_state_fail(w, -ENOMEM);
		goto out;
	}
	for (struct vconn *c = v->all; c; c = c->anext) {
		if (c->state == VC_STALE)
			continue;
		if (c->state == VC_DEAD) {
			orph[norph++] = (struct vs_orphan){ c->lport, c->pport };
			continue;
		}
		int idx = dev_state_add_fd(w, c->fd);

		if (idx < 0) {
			dev_state_fail(w, idx);
			goto out;
		}
		struct vs_conn_rec *r = &recs[nrec++];

		*r = (struct vs_conn_rec){
			.fd_idx = (uint32_t)idx, .lport = c->lport, .pport = c->pport,
			.state = c->state, .ctl = c->ctl, .line_len = c->line_len,
			.peer_buf_alloc = c->peer_buf_alloc, .peer_fwd_cnt = c->peer_fwd_cnt,
			.tx_cnt = c->tx_cnt, .rx_cnt = c->rx_cnt, .fwd_cnt = c->fwd_cnt,
			.fwd_told = c->fwd_told, .buf_len = c->len,
		};
		r->flags = (uint8_t)((c->host_eof ? REC_HOST_EOF : 0) |
				     (c->peer_no_send ? REC_NO_SEND : 0) |
				     (c->peer_no_rcv ? REC_NO_RCV : 0) |
				     (c->wr_shut ? REC_WR_SHUT : 0) | (c->queued ? REC_QUEUED : 0));
		memcpy(r->line, c->line, sizeof(r->line));
		for (uint32_t i = 0; i < c->len; i++)
			data[dlen + i] = c->buf[(c->head + i) % VSOCK_BUF_ALLOC];
		dlen += c->len;
	}
	dev_state_put(w, "vsock-conns", recs, nrec * sizeof(*recs));
	dev_state_put(w, "vsock-data", data, dlen);
	dev_state_put(w, "vsock-orphans", orph, norph * sizeof(orph[0]));
out:
	free(recs);
	free(data);
}

static int vs_load_conn(struct virtio_vsock *v, const struct dev_state_reader *r,
			const struct vs_conn_rec *rec, const uint8_t *data, char *err,
			size_t errlen)
{
	bool hashed = rec->state != VC_LINE;
	struct vconn *c;
	struct stat st;
	int fd;

	if (rec->state < VC_LINE || rec->state > VC_CLOSING || (rec->ctl & ~CTL_ALL) ||
	    (rec->ctl & CTL_RST) || rec->buf_len > VSOCK_BUF_ALLOC ||
	    rec->rx_cnt - rec->fwd_cnt != rec->buf_len || rec->line_len > sizeof(rec->line) ||
	    (hashed && conn_find(v, rec->lport, rec->pport))) {
		snprintf(err, errlen, "virtio-vsock: a malformed connection (ports %u and %u)",
			 rec->lport, rec->pport);
		return -EINVAL;
	}
	fd = dev_state_take_fd(r, rec->fd_idx);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "virtio-vsock: connection on port %u: no socket came with "
			 "the state", rec->lport);
		return -EINVAL;
	}
	if (!(c = conn_new(v, fd, rec->state))) {
		close(fd);
		snprintf(err, errlen, "virtio-vsock: out of memory");
		return -ENOMEM;
	}
	c->lport = rec->lport;
	c->pport = rec->pport;
	c->ctl = rec->ctl;
	c->host_eof = rec->flags & REC_HOST_EOF;
	c->peer_no_send = rec->flags & REC_NO_SEND;
	c->peer_no_rcv = rec->flags & REC_NO_RCV;
	c->wr_shut = rec->flags & REC_WR_SHUT;
	c->peer_buf_alloc = rec->peer_buf_alloc;
	c->peer_fwd_cnt = rec->peer_fwd_cnt;
	c->tx_cnt = rec->tx_cnt;
	c->rx_cnt = rec->rx_cnt;
	c->fwd_cnt = rec->fwd_cnt;
	c->fwd_told = rec->fwd_told;
	c->line_len = rec->line_len;
	memcpy(c->line, rec->line, sizeof(c->line));
	if (rec->buf_len) {
		if (!(c->buf = malloc(VSOCK_BUF_ALLOC))) {
			conn_free(c);
			snprintf(err, errlen, "virtio-vsock: out of memory");
			return -ENOMEM;
		}
		memcpy(c->buf, data, rec->buf_len);
		c->len = rec->buf_len;
	}
	if (hashed)
		conn_hash(c);
	if ((rec->flags & REC_QUEUED) || c->ctl)
		conn_enqueue(c);
	return 0;
}

static int vs_load(struct virtio_device *vdev, const struct dev_state_reader *r, char *err,
		   size_t errlen)
{
	struct virtio_vsock *v = vs_of(vdev);
	uint64_t cid;
	uint32_t next, reset;
	size_t nrec = 0, dlen = 0, norph = 0, used = 0;
	const struct vs_conn_rec *recs = NULL;
	const uint8_t *data = NULL;
	const struct vs_orphan *orph = NULL;

	if (dev_state_get(r, "vsock-cid", &cid, sizeof(cid)) < 0 ||
	    dev_state_get(r, "vsock-next-port", &next, sizeof(next)) < 0 ||
	    dev_state_get(r, "vsock-reset", &reset, sizeof(reset)) < 0) {
		snprintf(err, errlen, "virtio-vsock: state incomplete");
		return -EINVAL;
	}
	if (cid != v->cid) {
		snprintf(err, errlen, "virtio-vsock: the state's guest CID is %llu, this VM's %llu",
			 (unsigned long long)cid, (unsigned long long)v->cid);
		return -EINVAL;
	}
	v->next_lport = next < VSOCK_LOCAL_PORT_BASE ? VSOCK_LOCAL_PORT_BASE : next;
	v->reset_pending = reset != 0;
	if (dev_state_has_fds(r)) {
		recs = dev_state_get_ptr(r, "vsock-conns", &nrec);
		data = dev_state_get_ptr(r, "vsock-data", &dlen);
		orph = dev_state_get_ptr(r, "vsock-orphans", &norph);
		if (nrec % sizeof(*recs) || norph % sizeof(*orph) ||
		    nrec / sizeof(*recs) > VSOCK_MAX_CONNS ||
		    norph / sizeof(*orph) > VS_ORPHANS + VSOCK_MAX_CONNS) {
			snprintf(err, errlen, "virtio-vsock: malformed connection table");
			return -EINVAL;
		}
		nrec /= sizeof(*recs);
		norph /= sizeof(*orph);
	}
	for (size_t i = 0; i < nrec; i++) {
		struct vs_conn_rec rec;
		int e;

		memcpy(&rec, &recs[i], sizeof(rec));
		if (rec.buf_len > dlen - used) {
			snprintf(err, errlen, "virtio-vsock: connection data truncated");
			vs_drop_all(v);
			return -EINVAL;
		}
		if ((e = vs_load_conn(v, r, &rec, data + used, err, errlen)) < 0) {
			vs_drop_all(v);
			return e;
		}
		used += rec.buf_len;
	}
	/* RSTs owed: those beyond the table's room are dropped, as when they happen. */
	for (size_t i = 0; i < norph; i++) {
		struct vs_orphan o;

		memcpy(&o, &orph[i], sizeof(o));
		orphan_rst(v, o.lport, o.pport);
	}
	/* Watches are set when the device runs (activate, or the resume's kicks). */
	return 0;
}

static const struct virtio_dev_ops vs_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.config_read = vs_config_read,
	.config_write = vs_config_write,
	.activate = vs_activate,
	.reset = vs_reset,
	.queue_notify = vs_queue_notify,
	.quiesce = vs_quiesce,
	.save = vs_save,
	.load = vs_load,
};

int virtio_vsock_create(struct virtio_vsock **out, const struct guest_mem *gm,
			struct ev_loop *loop, uint64_t cid, int listen_fd, const char *uds_path)
{
	struct virtio_vsock *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->loop = loop;
	v->cid = cid;
	v->listen_fd = listen_fd;
	v->next_lport = VSOCK_LOCAL_PORT_BASE;
	if (uds_path && !(v->uds_path = strdup(uds_path))) {
		free(v);
		return -ENOMEM;
	}
	v->again_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->again_efd < 0 ||
	    (loop && !(v->again_watch = ev_loop_add_fd(loop, v->again_efd, vs_again, v)))) {
		int e = v->again_efd < 0 ? -errno : -ENOMEM;

		if (v->again_efd >= 0)
			close(v->again_efd);
		free(v->uds_path);
		free(v);
		return e;
	}
	virtio_device_init(&v->vdev, &vs_ops, v, gm, 3, VSOCK_QUEUE_SIZE);
	v->vdev.device_features |= VIRTIO_BIT(VIRTIO_F_VERSION_1) |
				   VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |
				   VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	v->vdev.config_len = VS_CFG_LEN;
	*out = v;
	return 0;
}

struct virtio_device *virtio_vsock_device(struct virtio_vsock *v)
{
	return &v->vdev;
}

void virtio_vsock_poll(struct virtio_vsock *v)
{
	struct virtio_device *vdev = &v->vdev;

	pthread_mutex_lock(&vdev->lock);
	if (!vs_active(v))
		goto out;
	if (!v->armed)
		vs_arm_all(v, true);
	if (v->listen_fd >= 0)
		vs_accept(v);
	/* What the watches would report: every socket that is watched. */
	for (struct vconn *c = v->all, *next; c; c = next) {
		next = c->anext;
		if (c->wr_watch)
			conn_flush(c);
	}
	for (struct vconn *c = v->all, *next; c; c = next) {
		next = c->anext;
		if (!c->rd_watch)
			continue;
		if (c->state == VC_LINE) {
			conn_read_line(c);
		} else {
			conn_enqueue(c);
			conn_arm(c);
		}
	}
	if (vs_queue_ok(vdev, VS_TXQ))
		vs_tx(v);
	vs_service(v);
out:
	pthread_mutex_unlock(&vdev->lock);
}

unsigned int virtio_vsock_conns(struct virtio_vsock *v)
{
	unsigned int n;

	pthread_mutex_lock(&v->vdev.lock);
	n = v->nconns;
	pthread_mutex_unlock(&v->vdev.lock);
	return n;
}

void virtio_vsock_stats(struct virtio_vsock *v, char *buf, size_t len)
{
	pthread_mutex_lock(&v->vdev.lock);
	snprintf(buf, len,
		 "conns=%u accepted=%llu connected=%llu rx_bytes=%llu tx_bytes=%llu resets=%llu "
		 "malformed=%llu",
		 v->nconns, (unsigned long long)v->accepted, (unsigned long long)v->connected,
		 (unsigned long long)v->rx_bytes, (unsigned long long)v->tx_bytes,
		 (unsigned long long)v->resets,
		 (unsigned long long)(v->vdev.malformed + v->malformed_pkts));
	pthread_mutex_unlock(&v->vdev.lock);
}

/* On the I/O thread, so that no watch's callback runs meanwhile. */
static void vs_teardown(void *opaque)
{
	struct virtio_vsock *v = opaque;

	pthread_mutex_lock(&v->vdev.lock);
	vs_arm_all(v, false);
	vs_drop_all(v);
	pthread_mutex_unlock(&v->vdev.lock);
	if (v->again_watch)
		ev_loop_remove_fd(v->loop, v->again_watch);
	v->again_watch = 0;
}

void virtio_vsock_destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	if (v->loop)
		ev_loop_call_sync(v->loop, vs_teardown, v);
	else
		vs_teardown(v);
	close(v->again_efd);
	virtio_device_fini(&v->vdev);
	free(v->uds_path);
	free(v);
}
