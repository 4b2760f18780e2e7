// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/file.h"

const char *file_kind(const struct stat *st)
{
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	default:
		return "an unknown kind of file";
	}
}

int file_open_checked(const char *path, int flags, bool allow_blockdev, int *out, struct stat *st,
		      char *err, size_t errlen)
{
	struct stat sb;
	int fd, r;

	fd = open(path, flags | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		/* A FIFO opened for writing with no reader answers ENXIO: say what it is. */
		if (r == -ENXIO && stat(path, &sb) == 0 && S_ISFIFO(sb.st_mode))
			snprintf(err, errlen, "%s: not a regular file (a FIFO)", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto fail;
	}
	if (S_ISDIR(sb.st_mode)) {
		r = -EISDIR;
		snprintf(err, errlen, "%s: is a directory", path);
		goto fail;
	}
	if (!S_ISREG(sb.st_mode) && !(allow_blockdev && S_ISBLK(sb.st_mode))) {
		r = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file%s (%s)", path,
			 allow_blockdev ? " or block device" : "", file_kind(&sb));
		goto fail;
	}
	if (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto fail;
	}
	if (st)
		*st = sb;
	*out = fd;
	return 0;
fail:
	close(fd);
	return r;
}

int file_read_all(const char *what, const char *path, size_t max, uint8_t **data, size_t *len,
		  char *err, size_t errlen)
{
	char sub[512];
	struct stat st;
	uint8_t *buf;
	size_t size, got = 0;
	int fd, r;

	r = file_open_checked(path, O_RDONLY, false, &fd, &st, sub, sizeof(sub));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", what, sub);
		return r;
	}
	if (st.st_size == 0) {
		snprintf(err, errlen, "%s: %s: empty file", what, path);
		r = -ENOEXEC;
		goto out;
	}
	if ((uint64_t)st.st_size > max) {
		snprintf(err, errlen, "%s: %s: larger than %zu MiB", what, path, max >> 20);
		r = -EFBIG;
		goto out;
	}
	size = (size_t)st.st_size;
	buf = malloc(size);
	if (!buf) {
		snprintf(err, errlen, "%s: %s: out of memory for %zu bytes", what, path, size);
		r = -ENOMEM;
		goto out;
	}
	/* One byte more than fstat said: a file that grew meanwhile is caught too. */
	while (got <= size) {
		uint8_t extra;
		ssize_t n = got < size ? pread(fd, buf + got, size - got, (off_t)got)
				       : pread(fd, &extra, 1, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s: %s", what, path, strerror(-r));
			free(buf);
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got != size) {
		snprintf(err, errlen, "%s: %s: changed while it was read (%zu bytes, then %zu%s)",
			 what, path, size, got, got > size ? " or more" : "");
		r = -EIO;
		free(buf);
		goto out;
	}
	*data = buf;
	*len = size;
	r = 0;
out:
	close(fd);
	return r;
}
