// SPDX-License-Identifier: Apache-2.0
/* Listening unix sockets at user-named paths (include/vmm/usock.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/usock.h"

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	size_t n = strlen(path);

	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n + 1);
	return 0;
}

static int probe_addr(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int r;

	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (r == 0 || errno == EAGAIN || errno == EINPROGRESS)
		r = 1; /* accepted, or a listener with a full backlog */
	else if (errno == ECONNREFUSED || errno == ENOENT)
		r = 0;
	else
		r = -errno;
	close(fd);
	return r;
}

int usock_probe(const char *path)
{
	struct sockaddr_un sa;

	if (fill_addr(&sa, path) < 0)
		return -ENAMETOOLONG;
	return probe_addr(&sa);
}

int usock_listen(const char *what, const char *path, int backlog, int *out, dev_t *dev,
		 ino_t *ino, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, r;

	if (fill_addr(&sa, path) < 0) {
		snprintf(err, errlen, "%s %s: longer than the %zu bytes a unix socket path can have",
			 what, path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s %s: socket: %s", what, path, strerror(-r));
		return r;
	}
	for (int tries = 0;; tries++) {
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		r = -errno;
		if (r == -ENOENT) {
			snprintf(err, errlen, "%s %s: no such directory", what, path);
			goto fail;
		}
		if (r != -EADDRINUSE) {
			snprintf(err, errlen, "%s %s: %s", what, path, strerror(-r));
			goto fail;
		}
		if (tries == 3) {
			snprintf(err, errlen, "%s %s: still in use after removing a stale socket "
				 "there", what, path);
			goto fail;
		}
		if (lstat(path, &st) < 0) {
			if (errno == ENOENT)
				continue; /* gone meanwhile */
			r = -errno;
			snprintf(err, errlen, "%s %s: %s", what, path, strerror(-r));
			goto fail;
		}
		if (!S_ISSOCK(st.st_mode)) {
			r = -EEXIST;
			snprintf(err, errlen, "%s %s: exists and is not a socket", what, path);
			goto fail;
		}
		r = probe_addr(&sa);
		if (r > 0) {
			r = -EADDRINUSE;
			snprintf(err, errlen, "%s %s: another process listens on it", what, path);
			goto fail;
		}
		if (r < 0) {
			snprintf(err, errlen, "%s %s: cannot tell whether it is in use: %s", what,
				 path, strerror(-r));
			goto fail;
		}
		/* A socket file nobody listens on: left by a process that died. Replace it. */
		if (unlink(path) < 0 && errno != ENOENT) {
			r = -errno;
			snprintf(err, errlen, "%s %s: cannot remove the stale socket: %s", what, path,
				 strerror(-r));
			goto fail;
		}
	}
	*dev = 0;
	*ino = 0;
	if (lstat(path, &st) == 0) {
		*dev = st.st_dev;
		*ino = st.st_ino;
	}
	if (listen(fd, backlog) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s %s: listen: %s", what, path, strerror(-r));
		usock_unlink_if_ours(path, *dev, *ino);
		goto fail;
	}
	*out = fd;
	return 0;
fail:
	close(fd);
	return r;
}

int usock_adopt(const char *what, const char *path, int fd, int backlog, char *err,
		size_t errlen)
{
	int v = 0, fl;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0 || !v) {
		snprintf(err, errlen, "%s %s: fd %d is not a listening socket", what, path, fd);
		return -EINVAL;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(err, errlen, "%s %s: fd %d: %s", what, path, fd, strerror(errno));
		return -errno;
	}
	if (listen(fd, backlog) < 0) {
		snprintf(err, errlen, "%s %s: listen: %s", what, path, strerror(errno));
		return -errno;
	}
	return 0;
}

void usock_unlink_if_ours(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	if (ino && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == dev &&
	    st.st_ino == ino)
		unlink(path);
}
