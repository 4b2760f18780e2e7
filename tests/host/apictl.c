// SPDX-License-Identifier: Apache-2.0
/*
 * apictl: a minimal client of vmm's API socket for the test host, which has no curl (static,
 * compiled by testhost.sh as kvmhold is).
 *
 *   apictl SOCK METHOD PATH [BODY]   one request; prints "STATUS BODY"; exit 0 for 2xx
 *   apictl SOCK wait STATE [SECS]    poll GET / until "state" is STATE (e.g. Running)
 *
 * The socket is waited for (up to 30 s) when it does not exist yet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int dial(const char *path, double secs)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double end = now() + secs;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		if (now() > end)
			return -1;
		usleep(10000);
	}
}

/* One request; *body gets the response body (static). Returns the status or -1. */
static int request(const char *sock, const char *method, const char *path, const char *body,
		   char **resp_body)
{
	static char buf[1 << 16];
	char head[512];
	size_t len = body ? strlen(body) : 0, got = 0;
	int fd = dial(sock, 30), status = -1;

	if (fd < 0)
		return -1;
	snprintf(head, sizeof(head),
		 "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
		 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 method, path, len);
	if (write(fd, head, strlen(head)) < 0 || (len && write(fd, body, len) < 0))
		goto out;
	for (;;) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		char *end, *cl;

		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = 0;
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(buf, "Content-Length:");
		size_t want = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
		if (got >= (size_t)(end + 4 - buf) + want) {
			end[4 + want] = 0;
			*resp_body = end + 4;
			if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
				status = -1;
			break;
		}
	}
out:
	close(fd);
	return status;
}

int main(int argc, char **argv)
{
	char *body = "";
	int st;

	if (argc >= 4 && !strcmp(argv[2], "wait")) {
		char want[64];
		double end = now() + (argc > 4 ? atof(argv[4]) : 60);

		snprintf(want, sizeof(want), "\"state\":\"%s\"", argv[3]);
		do {
			st = request(argv[1], "GET", "/", NULL, &body);
			if (st == 200 && strstr(body, want)) {
				printf("%s\n", body);
				return 0;
			}
			usleep(20000);
		} while (now() < end);
		fprintf(stderr, "apictl: %s never reached state %s (last: %d %s)\n", argv[1],
			argv[3], st, body);
		return 1;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: apictl SOCK METHOD PATH [BODY] | apictl SOCK wait STATE [SECS]\n");
		return 2;
	}
	st = request(argv[1], argv[2], argv[3], argc > 4 ? argv[4] : NULL, &body);
	printf("%d %s\n", st, body);
	return st >= 200 && st < 300 ? 0 : 1;
}
