// SPDX-License-Identifier: Apache-2.0
/*
 * The live-update channel between the running vmm (old) and its replacement (new): a unix
 * stream socketpair, framed messages, file descriptors passed with SCM_RIGHTS.
 *
 *   old -> new  PREPARE  a state blob with /config and /handover; fds: guest RAM, the API's
 *                        listening socket (or none), each disk image in configuration order
 *   new -> old  READY    the new machine is built (VM, vCPUs, devices, backends)
 *   old -> new  STATE    the paused machine's whole state (the blackout has begun)
 *   new -> old  RESUMED  the guest runs under the new process; payload: its pid and the
 *                        CLOCK_MONOTONIC nanoseconds of the resume
 *   either way  FAILED   one line saying why; the old process resumes the guest
 *
 * Every message is a fixed header (type, number of fds, payload length) sent with its fds,
 * then the payload. The payloads are untrusted on both sides: lengths are bounded, the state
 * goes through state_open().
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "handover.h"
#include "vmm/state.h"
#include "vmm/state_config.h"

struct ho_hdr {
	uint32_t type;
	uint32_t nfds;
	uint64_t len;
};

static int wait_fd(int fd, short ev, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	return 0;
}

int ho_send(int sock, uint32_t type, const void *payload, size_t len, const int *fds,
	    unsigned int nfds)
{
	struct ho_hdr h = { type, nfds, len };
	char cbuf[CMSG_SPACE(sizeof(int) * HO_MAX_FDS)];
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	const uint8_t *p = payload;
	ssize_t n;

	if (nfds > HO_MAX_FDS || len > HO_MAX_PAYLOAD)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n != sizeof(h))
		return n < 0 ? -errno : -EIO;
	while (len) {
		do
			n = send(sock, p, len, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Exactly len bytes, within the time left until deadline (monotonic ms). */
static int read_full(int sock, void *buf, size_t len, uint64_t deadline_ms)
{
	uint8_t *p = buf;

	while (len) {
		struct timespec ts;
		int r;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
		if ((r = wait_fd(sock, POLLIN, now >= deadline_ms ? 0 : (int)(deadline_ms - now))) < 0)
			return r;
		ssize_t n = recv(sock, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int ho_recv(int sock, struct ho_msg *msg, int timeout_ms)
{
	char cbuf[CMSG_SPACE(sizeof(int) * HO_MAX_FDS)];
	struct ho_hdr h;
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf) };
	struct timespec ts;
	ssize_t n;
	int r;

	memset(msg, 0, sizeof(*msg));
	for (unsigned int i = 0; i < HO_MAX_FDS; i++)
		msg->fds[i] = -1;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t deadline = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 +
			    (uint64_t)timeout_ms;
	if ((r = wait_fd(sock, POLLIN, timeout_ms)) < 0)
		return r;
	do
		n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	/* Whatever came with it is ours to close, even when the message is refused. */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned int k = (unsigned int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

		for (unsigned int i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (msg->nfds < HO_MAX_FDS)
				msg->fds[msg->nfds++] = fd;
			else
				close(fd);
		}
	}
	if (n != sizeof(h) || (m.msg_flags & MSG_CTRUNC)) {
		ho_msg_fini(msg);
		return n == 0 ? -ECONNRESET : n < 0 ? -errno : -EPROTO;
	}
	if (h.nfds != msg->nfds || h.len > HO_MAX_PAYLOAD) {
		ho_msg_fini(msg);
		return -EPROTO;
	}
	msg->type = h.type;
	msg->len = (size_t)h.len;
	if (msg->len) {
		msg->payload = malloc(msg->len);
		if (!msg->payload) {
			ho_msg_fini(msg);
			return -ENOMEM;
		}
		if ((r = read_full(sock, msg->payload, msg->len, deadline)) < 0) {
			ho_msg_fini(msg);
			return r;
		}
	}
	return 0;
}

void ho_msg_fini(struct ho_msg *msg)
{
	for (unsigned int i = 0; i < msg->nfds; i++) {
		if (msg->fds[i] >= 0)
			close(msg->fds[i]);
	}
	free(msg->payload);
	memset(msg, 0, sizeof(*msg));
}

int ho_send_failed(int sock, const char *why)
{
	return ho_send(sock, HO_FAILED, why, strlen(why) + 1, NULL, 0);
}

/* ---- the payloads ---- */

int ho_parse_prepare(struct ho_msg *msg, struct state_reader *sr, struct ho_prepare *in,
		     char *err, size_t errlen)
{
	unsigned int next = 0;
	uint32_t proto, esc = 0;
	size_t n;
	int node, r;

	if (msg->type != HO_PREPARE) {
		snprintf(err, errlen, "expected the handover, got message %u", msg->type);
		return -EPROTO;
	}
	if ((r = state_open(sr, msg->payload, msg->len, err, errlen)) < 0)
		return r;
	if ((node = state_find(sr, "/handover")) < 0 ||
	    state_get_u32(sr, node, "protocol", &proto) < 0) {
		snprintf(err, errlen, "the handover has no /handover node");
		return -EPROTO;
	}
	if (proto != HO_PROTOCOL) {
		snprintf(err, errlen, "handover protocol %u, this vmm speaks %u", proto,
			 HO_PROTOCOL);
		return -EPROTO;
	}
	if ((r = config_state_load(&in->cfg, sr, err, errlen)) < 0)
		return r;
	if (state_get_u32(sr, node, "console-escape", &esc) < 0)
		esc = 0;
	if (state_get_u64(sr, node, "timeout-left-ms", &in->timeout_left_ms) < 0)
		in->timeout_left_ms = 0;
	in->front = state_get_ptr(sr, node, "front", &in->front_len);
	if (in->front_len > HO_FRONT_MAX) {
		snprintf(err, errlen, "front-end data of %zu bytes", in->front_len);
		return -EPROTO;
	}
	if (msg->nfds < 1) {
		snprintf(err, errlen, "no guest RAM came with the handover");
		return -EPROTO;
	}
	in->cfg.mem_fd = msg->fds[next];
	msg->fds[next++] = -1;
	uint32_t src = 0;
	if (state_get_u32(sr, node, "mem-source", &src) == 0 && src) {
		if (next >= msg->nfds) {
			snprintf(err, errlen, "the snapshot memory file is named but not handed over");
			return -EPROTO;
		}
		in->cfg.mem_source_fd = msg->fds[next];
		msg->fds[next++] = -1;
	}
	in->api_path = state_get_str(sr, node, "api-path", 108);
	if (in->api_path) {
		if (next >= msg->nfds || state_get_u64(sr, node, "api-dev", &in->api_dev) < 0 ||
		    state_get_u64(sr, node, "api-ino", &in->api_ino) < 0) {
			snprintf(err, errlen, "the API socket is named but not handed over");
			return -EPROTO;
		}
		in->api_fd = msg->fds[next];
		msg->fds[next++] = -1;
	}
	const char *ids = state_get_ptr(sr, node, "host-files", &n);
	for (size_t off = 0; ids && off < n;) {
		const char *id = ids + off;
		const char *end = memchr(id, 0, n - off);
		struct config_disk *d;
		struct config_pmem *p = NULL;
		struct config_net *nc = NULL;
		int *slot = NULL;

		if (!end || next >= msg->nfds) {
			snprintf(err, errlen, "malformed host-files list");
			return -EPROTO;
		}
		if ((d = config_disk_find(&in->cfg, id)))
			slot = &d->fd;
		else if ((p = config_pmem_find(&in->cfg, id)))
			slot = &p->fd;
		else if ((nc = config_net_find(&in->cfg, id)))
			slot = &nc->fd;
		else if (in->cfg.vsock.set && !strcmp(id, CONFIG_VSOCK_ID))
			slot = &in->cfg.vsock.fd;
		if (!slot || *slot >= 0) {
			snprintf(err, errlen, "host file for '%.64s', which is no disk, pmem, network "
				 "interface or vsock of the VM", id);
			return -EPROTO;
		}
		*slot = msg->fds[next];
		msg->fds[next++] = -1;
		off += (size_t)(end - id) + 1;
	}
	if (next != msg->nfds) {
		snprintf(err, errlen, "%u files came with the handover, %u are named", msg->nfds,
			 next);
		return -EPROTO;
	}
	for (unsigned int i = 0; i < in->cfg.nr_disks; i++) {
		if (in->cfg.disks[i].fd < 0) {
			snprintf(err, errlen, "disk '%s' was not handed over", in->cfg.disks[i].id);
			return -EPROTO;
		}
	}
	for (unsigned int i = 0; i < in->cfg.nr_nets; i++) {
		if (in->cfg.nets[i].fd < 0) {
			snprintf(err, errlen, "network interface '%s' was not handed over",
				 in->cfg.nets[i].id);
			return -EPROTO;
		}
	}
	if (in->cfg.vsock.set && in->cfg.vsock.fd < 0) {
		snprintf(err, errlen, "the vsock's socket was not handed over");
		return -EPROTO;
	}
	for (unsigned int i = 0; i < in->cfg.nr_pmems; i++) {
		if (in->cfg.pmems[i].fd < 0) {
			snprintf(err, errlen, "pmem '%s' was not handed over", in->cfg.pmems[i].id);
			return -EPROTO;
		}
	}
	in->console_escape = esc != 0;
	return 0;
}

int ho_send_fds(int sock, const int *fds, unsigned int n)
{
	for (unsigned int i = 0; i < n; i += HO_MAX_FDS) {
		unsigned int k = n - i < HO_MAX_FDS ? n - i : HO_MAX_FDS;
		int r = ho_send(sock, HO_FDS, NULL, 0, fds + i, k);

		if (r < 0)
			return r;
	}
	return 0;
}

int ho_recv_after_fds(int sock, struct ho_msg *msg, struct state_fds *fds, int timeout_ms)
{
	for (;;) {
		int r = ho_recv(sock, msg, timeout_ms);

		if (r < 0 || msg->type != HO_FDS)
			return r;
		if (msg->len || fds->nr + msg->nfds > STATE_MAX_FDS) {
			ho_msg_fini(msg);
			return -EPROTO;
		}
		for (unsigned int i = 0; i < msg->nfds; i++) {
			fds->fd[fds->nr++] = msg->fds[i];
			msg->fds[i] = -1;
		}
		ho_msg_fini(msg);
	}
}

int ho_parse_state(const struct ho_msg *msg, size_t want_dirty, unsigned int got_fds,
		   struct ho_state *out, char *err, size_t errlen)
{
	if (msg->type != HO_STATE || msg->nfds || msg->len < sizeof(out->h)) {
		snprintf(err, errlen, "expected the state, got message %u", msg->type);
		return -EPROTO;
	}
	memcpy(&out->h, msg->payload, sizeof(out->h));
	if (out->h.nr_fds != got_fds) {
		snprintf(err, errlen, "state message: %u files announced, %u came", out->h.nr_fds,
			 got_fds);
		return -EPROTO;
	}
	if (out->h.pending_len > HO_PENDING_MAX || out->h.dirty_len != want_dirty ||
	    (uint64_t)out->h.pending_len + out->h.dirty_len > msg->len - sizeof(out->h)) {
		snprintf(err, errlen, "state message: %u bytes of console input, %u of dirty pages "
			 "(expected %zu)", out->h.pending_len, out->h.dirty_len, want_dirty);
		return -EPROTO;
	}
	out->pending = msg->payload + sizeof(out->h);
	out->dirty = out->pending + out->h.pending_len;
	out->blob = out->dirty + out->h.dirty_len;
	out->blob_len = msg->len - sizeof(out->h) - out->h.pending_len - out->h.dirty_len;
	return 0;
}
