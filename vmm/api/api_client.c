// SPDX-License-Identifier: Apache-2.0
/*
 * One request to a vmm's API socket and its response (include/vmm/api_client.h). The request
 * asks for "Connection: close", so the response ends where the stream does; libhttp-parser
 * checks it and hands over the status and the body.
 */
#include <errno.h>
#include <http_parser.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/api_client.h"

struct reply_ctx {
	char *body;
	size_t len;
	bool done;
	bool too_big;
};

static int on_body(http_parser *hp, const char *at, size_t len)
{
	struct reply_ctx *c = hp->data;
	char *nb;

	if (c->len + len > API_CLIENT_BODY_MAX) {
		c->too_big = true;
		return -1;
	}
	nb = realloc(c->body, c->len + len + 1);
	if (!nb)
		return -1;
	memcpy(nb + c->len, at, len);
	c->body = nb;
	c->len += len;
	c->body[c->len] = '\0';
	return 0;
}

static int on_message_complete(http_parser *hp)
{
	((struct reply_ctx *)hp->data)->done = true;
	return 0;
}

int api_reply_parse(const char *buf, size_t len, struct api_reply *out)
{
	http_parser_settings s = { .on_body = on_body,
				   .on_message_complete = on_message_complete };
	struct reply_ctx c = { 0 };
	http_parser hp;
	size_t n;

	memset(out, 0, sizeof(*out));
	http_parser_init(&hp, HTTP_RESPONSE);
	hp.data = &c;
	n = http_parser_execute(&hp, &s, buf, len);
	/* The end of the stream ends a response without a length. */
	if (n == len && !c.done && HTTP_PARSER_ERRNO(&hp) == HPE_OK)
		http_parser_execute(&hp, &s, NULL, 0);
	if (c.too_big || !c.done || HTTP_PARSER_ERRNO(&hp) != HPE_OK) {
		free(c.body);
		return c.too_big ? -E2BIG : -EINVAL;
	}
	out->status = (int)hp.status_code;
	out->body = c.body ? c.body : strdup("");
	if (!out->body)
		return -ENOMEM;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to be ready for events, until the deadline. */
static int wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		struct pollfd p = { .fd = fd, .events = events };
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int api_call(const char *sock, const char *method, const char *path, const char *body,
	     int timeout_ms, struct api_reply *out, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	long long deadline = now_ms() + timeout_ms;
	size_t blen = body ? strlen(body) : 0, cap = 4096, got = 0;
	char *req = NULL, *buf = NULL;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int fd = -1, r, n;

	memset(out, 0, sizeof(*out));
	if (strlen(sock) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", sock);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", sock, strerror(-r));
		goto out;
	}
	pid_t peer = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 ? cred.pid : 0;
	n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			   "%s%zu\r\n\r\n%s", method, path,
		     blen ? "Content-Type: application/json\r\nContent-Length: "
			  : "Content-Length: ", blen, blen ? body : "");
	if (n < 0) {
		req = NULL;
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (size_t off = 0; off < (size_t)n;) {
		ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);

		if (w < 0 && errno == EAGAIN) {
			if ((r = wait_fd(fd, POLLOUT, deadline)) < 0)
				goto io_fail;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = -errno;
			goto io_fail;
		}
		off += (size_t)w;
	}
	if (!(buf = malloc(cap))) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t k;

		if (got == cap) {
			char *nb;

			if (cap >= API_CLIENT_BODY_MAX + 64 * 1024) {
				r = -E2BIG;
				snprintf(err, errlen, "%s: %s %s: the answer is too large", sock,
					 method, path);
				goto out;
			}
			if (!(nb = realloc(buf, cap * 2))) {
				r = -ENOMEM;
				snprintf(err, errlen, "out of memory");
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		k = recv(fd, buf + got, cap - got, 0);
		if (k < 0 && errno == EAGAIN) {
			if ((r = wait_fd(fd, POLLIN, deadline)) < 0)
				goto io_fail;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			goto io_fail;
		}
		if (k == 0)
			break;
		got += (size_t)k;
	}
	if ((r = api_reply_parse(buf, got, out)) < 0) {
		snprintf(err, errlen, "%s: %s %s: %s", sock, method, path,
			 r == -E2BIG ? "the answer is too large" : "not an HTTP answer");
		goto out;
	}
	out->pid = peer;
	r = 0;
	goto out;
io_fail:
	snprintf(err, errlen, "%s: %s %s: %s", sock, method, path,
		 r == -ETIMEDOUT ? "no answer in time" : strerror(-r));
out:
	if (fd >= 0)
		close(fd);
	free(req);
	free(buf);
	return r;
}
