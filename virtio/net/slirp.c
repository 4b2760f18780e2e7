// SPDX-License-Identifier: Apache-2.0
/*
 * User-mode networking for virtio-net (vmm/virtio_net.h): start the helper vmm-slirp
 * (slirp_helper.c) on one end of a SOCK_SEQPACKET socketpair, keep the other for the device.
 * The protocol is in slirp_proto.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "slirp_proto.h"
#include "vmm/config.h"
#include "vmm/virtio_net.h"

extern char **environ;

#ifndef VMM_LIBEXECDIR
#define VMM_LIBEXECDIR "/usr/local/libexec"
#endif

/* Room for a burst of frames each way (the guest's TCP window, slirp's): a full socket drops. */
#define SLIRP_SOCK_BUF (1 << 20)
#define SLIRP_START_MS 10000
#define SLIRP_STOP_MS  1000

int slirp_helper_path(char *buf, size_t len)
{
	const char *env = getenv("VMM_SLIRP_HELPER");
	char self[PATH_MAX];
	ssize_t n;

	if (!buf || !len)
		return -EINVAL;
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return access(buf, X_OK) ? -errno : 0;
	}
	/* Beside the executable (a build directory, or both in one bin/), else installed. */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');

		if (slash) {
			*slash = '\0';
			snprintf(buf, len, "%s/vmm-slirp", self);
			if (!access(buf, X_OK))
				return 0;
		}
	}
	snprintf(buf, len, "%s/vmm-slirp", VMM_LIBEXECDIR);
	return access(buf, X_OK) ? -errno : 0;
}

static int wait_in(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r == 0 ? -ETIMEDOUT : 0;
}

static int send_ctl(int fd, uint32_t op)
{
	struct slirp_ctl c = { .op = op, .pid = (uint32_t)getpid() };

	return send(fd, &c, sizeof(c), MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(c) ? 0 : -errno;
}

int slirp_start(const struct config_net *cn, int *out, char *err, size_t errlen)
{
	char path[PATH_MAX], owner[16], mtu[16], rules[CONFIG_MAX_HOSTFWD][48];
	char status[SLIRP_STATUS_MAX + 1];
	char *argv[CONFIG_MAX_HOSTFWD + 4];
	posix_spawn_file_actions_t fa;
	int sv[2] = { -1, -1 }, child = -1, buf = SLIRP_SOCK_BUF, r, st;
	pid_t pid;
	ssize_t n;

	if ((r = slirp_helper_path(path, sizeof(path))) < 0) {
		snprintf(err, errlen, "user-mode networking needs its helper %s: %s", path,
			 strerror(-r));
		return r;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(-r));
		return r;
	}
	/* The helper's end as fd 3: never 3 here, so that dup2 clears its close-on-exec. */
	if ((child = fcntl(sv[1], F_DUPFD_CLOEXEC, 10)) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s", strerror(-r));
		goto fail;
	}
	close(sv[1]);
	sv[1] = -1;
	for (int i = 0; i < 2; i++) {
		int fd = i ? child : sv[0];

		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	}
	snprintf(owner, sizeof(owner), "%d", (int)getpid());
	argv[0] = path;
	argv[1] = owner;
	for (unsigned int i = 0; i < cn->nr_fwd; i++) {
		const struct config_hostfwd *f = &cn->fwd[i];

		snprintf(rules[i], sizeof(rules[i]), "%c,%08x,%u,%08x,%u", f->udp ? 'u' : 't',
			 f->host_addr, f->host_port, f->guest_addr, f->guest_port);
		argv[2 + i] = rules[i];
	}
	if (cn->mtu)
		snprintf(mtu, sizeof(mtu), "mtu=%u", cn->mtu);
	argv[2 + cn->nr_fwd] = cn->mtu ? mtu : NULL;
	argv[3 + cn->nr_fwd] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, child, 3);
	r = -posix_spawn(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(child);
	child = -1;
	if (r < 0) {
		snprintf(err, errlen, "cannot start %s: %s", path, strerror(-r));
		goto fail;
	}
	/* Its first process exits once the helper proper is forked off. */
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if ((r = wait_in(sv[0], SLIRP_START_MS)) < 0) {
		snprintf(err, errlen, "%s did not start: %s", path, strerror(-r));
		goto fail;
	}
	n = recv(sv[0], status, SLIRP_STATUS_MAX, MSG_DONTWAIT);
	if (n <= 0) {
		r = -EIO;
		snprintf(err, errlen, "%s exited before it started", path);
		goto fail;
	}
	status[n] = '\0';
	if (strcmp(status, "OK")) {
		r = -EADDRINUSE;
		snprintf(err, errlen, "%s", strncmp(status, "ERR ", 4) ? status : status + 4);
		goto fail;
	}
	if (fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s", strerror(-r));
		goto fail;
	}
	*out = sv[0];
	return 0;
fail:
	if (child >= 0)
		close(child);
	if (sv[1] >= 0)
		close(sv[1]);
	close(sv[0]); /* a helper that did start sees the hang-up and ends */
	return r;
}

int slirp_adopt(int fd, char *err, size_t errlen)
{
	int type = 0, r;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
		snprintf(err, errlen, "fd %d is not a user-mode network's socket", fd);
		return -EINVAL;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = -errno;
		snprintf(err, errlen, "fd %d: %s", fd, strerror(-r));
		return r;
	}
	if ((r = send_ctl(fd, SLIRP_CTL_HELLO)) < 0) {
		snprintf(err, errlen, "its user-mode network helper is gone (%s)", strerror(-r));
		return r;
	}
	return 0;
}

void slirp_stop(int fd, bool wait)
{
	struct pollfd p = { .fd = fd }; /* no events: POLLHUP is reported anyway */
	struct timespec t0, t;

	if (send_ctl(fd, SLIRP_CTL_BYE) < 0 || !wait)
		return;
	/*
	 * The helper closes its listeners, then its end: once we see the hang-up, a new helper
	 * can bind the same ports (a restart). One that stays (another process said HELLO: a
	 * live update) is waited for no longer than this.
	 */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;

		if (ms >= SLIRP_STOP_MS)
			return;
		int r = poll(&p, 1, (int)(SLIRP_STOP_MS - ms));

		if (r > 0 || (r < 0 && errno != EINTR))
			return;
	}
}
