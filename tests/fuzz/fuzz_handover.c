// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for what a live update's new process reads from the old one (and the old
 * one from the new): the framing (vmm/vm/handover.c, ho_recv over a socketpair) and the PREPARE
 * and STATE payloads (ho_parse_prepare, ho_parse_state). The input is the byte stream: a message
 * header and its payload, possibly more than one. The first input byte picks which parser the
 * payload goes to, and whether a PREPARE's state CRC is fixed first (else most mutations stop
 * there). A few fds (/dev/null) come with each message, as RAM and disks would.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "handover.h"
#include "vmm/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The stream as one message header (with nfds fds) and the rest. */
static void send_stream(int sock, const uint8_t *p, size_t n, unsigned int nfds)
{
	int fds[HO_MAX_FDS];
	char cbuf[CMSG_SPACE(sizeof(fds))];
	struct iovec iov = { (void *)p, n < 16 ? n : 16 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	for (unsigned int i = 0; i < nfds; i++)
		fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (nfds) {
		memset(cbuf, 0, sizeof(cbuf));
		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (n && sendmsg(sock, &m, MSG_NOSIGNAL | MSG_DONTWAIT) > 0 && n > 16) {
		if (send(sock, p + 16, n - 16, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* more than the socket buffer: the reader sees it cut short */
		}
	}
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
}

/* Make the state blob in the payload pass its CRC, so that the tree is reached. */
static void fix_crc(uint8_t *payload, size_t len)
{
	uint64_t blob;

	if (len < STATE_HEADER_LEN)
		return;
	memcpy(&blob, payload + 16, sizeof(blob));
	if (blob > len - STATE_HEADER_LEN)
		return;
	uint32_t crc = (uint32_t)crc32(0, payload + STATE_HEADER_LEN, (uInt)blob);
	memcpy(payload + 24, &crc, sizeof(crc));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];

	if (size < 1 || size > 256 * 1024)
		return 0;
	uint8_t mode = data[0];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 0;
	send_stream(sv[0], data + 1, size - 1, mode & 3);
	shutdown(sv[0], SHUT_WR);
	for (int i = 0; i < 2; i++) {
		struct ho_msg msg;

		if (ho_recv(sv[1], &msg, 0) < 0)
			break;
		char err[256];
		if (mode & 4) {
			struct ho_state st;

			(void)ho_parse_state(&msg, (mode & 8) ? 64 : 0, mode & 16, &st, err,
					     sizeof(err));
		} else {
			struct state_reader sr;
			struct ho_prepare p = { .api_fd = -1 };

			if (mode & 16)
				fix_crc(msg.payload, msg.len);
			config_init(&p.cfg);
			(void)ho_parse_prepare(&msg, &sr, &p, err, sizeof(err));
			if (p.api_fd >= 0)
				close(p.api_fd);
			config_fini(&p.cfg);
		}
		ho_msg_fini(&msg);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}
