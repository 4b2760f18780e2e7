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
