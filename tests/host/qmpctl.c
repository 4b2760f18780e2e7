// SPDX-License-Identifier: Apache-2.0
/*
 * qmpctl: a QEMU QMP client for the test host (static, compiled by testhost.sh as apictl is),
 * so that a case can drive QEMU as the peer of vmm (bench/hostupdate.sh --kexec --route qemu).
 *
 *   qmpctl SOCKET [--wait SECS] COMMAND...
 *        connect (retrying for SECS, default 10), negotiate capabilities, then send each
 *        COMMAND (a JSON object, e.g. '{"execute": "stop"}') and print its answer; events in
 *        between are skipped. Two commands of its own:
 *          wait-migrate   poll query-migrate until completed (exit 1 if failed/cancelled)
 *          wait-running   poll query-status until running
 *        Exit 0 when every command returned, 1 at the first error (printed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static FILE *in;
static int fd = -1;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Send cmd; the answer's line in buf (0), or an error's (1). */
static int call(const char *cmd, char *buf, size_t len)
{
	if (write(fd, cmd, strlen(cmd)) < 0 || write(fd, "\n", 1) < 0)
		return perror("qmpctl: write"), 1;
	while (fgets(buf, (int)len, in)) {
		if (strstr(buf, "\"return\""))
			return 0;
		if (strstr(buf, "\"error\""))
			return 1;
	}
	fprintf(stderr, "qmpctl: connection closed\n");
	return 1;
}

static int poll_until(const char *cmd, const char *done, const char *bad)
{
	char buf[8192];

	for (double end = now_s() + 600; now_s() < end;) {
		if (call(cmd, buf, sizeof(buf)))
			return printf("%s", buf), 1;
		if (strstr(buf, done))
			return printf("%s", buf), 0;
		if (bad && strstr(buf, bad))
			return printf("%s", buf), 1;
		usleep(500);
	}
	fprintf(stderr, "qmpctl: %s: no '%s' in 600 s\n", cmd, done);
	return 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	double wait = 10;
	char buf[8192];
	int i = 2;

	if (argc < 2) {
		fprintf(stderr, "usage: qmpctl SOCKET [--wait SECS] COMMAND...\n");
		return 2;
	}
	if (argc > 3 && !strcmp(argv[2], "--wait")) {
		wait = atof(argv[3]);
		i = 4;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
	for (double end = now_s() + wait;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (fd >= 0)
			close(fd);
		if (now_s() > end)
			return fprintf(stderr, "qmpctl: %s: %s\n", argv[1], strerror(errno)), 1;
		usleep(1000);
	}
	in = fdopen(dup(fd), "r");
	if (!in || !fgets(buf, sizeof(buf), in) || call("{\"execute\": \"qmp_capabilities\"}", buf,
							 sizeof(buf)))
		return fprintf(stderr, "qmpctl: no QMP greeting on %s\n", argv[1]), 1;
	for (; i < argc; i++) {
		int r;

		if (!strcmp(argv[i], "wait-migrate"))
			r = poll_until("{\"execute\": \"query-migrate\"}", "\"completed\"", "\"failed\"");
		else if (!strcmp(argv[i], "wait-running"))
			r = poll_until("{\"execute\": \"query-status\"}", "\"running\"", NULL);
		else {
			r = call(argv[i], buf, sizeof(buf));
			printf("%s", buf);
		}
		if (r)
			return 1;
	}
	return 0;
}
