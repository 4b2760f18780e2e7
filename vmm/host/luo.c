// SPDX-License-Identifier: Apache-2.0
/*
 * /dev/liveupdate (include/vmm/luo.h): the ioctls, their structures checked against the
 * kernel's layout at compile time, and what each errno means in words a user can act on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "vmm/luo.h"

/* include/uapi/linux/liveupdate.h: sizes and offsets are ABI. */
_Static_assert(sizeof(struct luo_session_req) == 72, "liveupdate_ioctl_create_session");
_Static_assert(offsetof(struct luo_session_req, fd) == 4, "session fd");
_Static_assert(offsetof(struct luo_session_req, name) == 8, "session name");
_Static_assert(sizeof(struct luo_fd_req) == 16, "liveupdate_session_preserve_fd");
_Static_assert(offsetof(struct luo_fd_req, token) == 8, "token");
_Static_assert(sizeof(struct luo_finish_req) == 8, "liveupdate_session_finish");
_Static_assert(LUO_CREATE_SESSION == 0xBA00 && LUO_FINISH == 0xBA42, "ioctl numbers");

int luo_sys_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg);
}

int luo_name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n >= LUO_NAME_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int luo_open(struct luo_dev *d, const char *path, int wait_ms, char *err, size_t errlen)
{
	struct timespec ten_ms = { 0, 10 * 1000 * 1000 };
	int e;

	d->ioctl = luo_sys_ioctl;
	for (int waited = 0;; waited += 10) {
		d->fd = open(path, O_RDWR | O_CLOEXEC);
		if (d->fd >= 0)
			return 0;
		e = errno;
		if (e != EBUSY || waited >= wait_ms)
			break;
		nanosleep(&ten_ms, NULL);
	}
	switch (e) {
	case ENOENT:
	case ENODEV:
	case ENXIO:
		snprintf(err, errlen, "%s: absent: this kernel has no Live Update Orchestrator "
			 "(Linux 6.19+, CONFIG_LIVEUPDATE, liveupdate=on)", path);
		break;
	case EBUSY:
		snprintf(err, errlen, "%s: another process has it open (it takes one at a time)",
			 path);
		break;
	case EIO:
		snprintf(err, errlen, "%s: the kernel could not read what the previous kernel "
			 "handed over (see dmesg)", path);
		break;
	default:
		snprintf(err, errlen, "%s: %s", path, strerror(e));
	}
	return -e;
}

void luo_close(struct luo_dev *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static int session(const struct luo_dev *d, unsigned long req, const char *what, const char *name,
		   int *sfd, char *err, size_t errlen)
{
	struct luo_session_req r = { .size = sizeof(r), .fd = -1 };
	int e;

	if (!luo_name_valid(name)) {
		snprintf(err, errlen, "LUO session name '%s': 1 to %d characters of A-Z a-z 0-9 . _ -",
			 name ? name : "", LUO_NAME_LEN - 1);
		return -EINVAL;
	}
	memcpy(r.name, name, strlen(name) + 1);
	if (d->ioctl(d->fd, req, &r) == 0) {
		if (r.fd < 0) {
			snprintf(err, errlen, "LUO session '%s': the kernel returned no fd", name);
			return -EIO;
		}
		*sfd = r.fd;
		return 0;
	}
	e = errno;
	if (req == LUO_CREATE_SESSION && e == EEXIST)
		snprintf(err, errlen, "LUO session '%s' exists already (another VM by that name?)",
			 name);
	else if (req == LUO_CREATE_SESSION && e == ENOMEM)
		snprintf(err, errlen, "LUO session '%s': no room (too many sessions)", name);
	else if (req == LUO_RETRIEVE_SESSION && e == ENOENT)
		snprintf(err, errlen, "LUO session '%s': the previous kernel handed over none by "
			 "that name (was it kept open until the kexec?)", name);
	else if (req == LUO_RETRIEVE_SESSION && e == EINVAL)
		snprintf(err, errlen, "LUO session '%s' was retrieved already", name);
	else
		snprintf(err, errlen, "LUO session '%s': %s: %s", name, what, strerror(e));
	return -e;
}

int luo_session_create(const struct luo_dev *d, const char *name, int *sfd, char *err,
		       size_t errlen)
{
	return session(d, LUO_CREATE_SESSION, "create", name, sfd, err, errlen);
}

int luo_session_retrieve(const struct luo_dev *d, const char *name, int *sfd, char *err,
			 size_t errlen)
{
	return session(d, LUO_RETRIEVE_SESSION, "retrieve", name, sfd, err, errlen);
}

int luo_preserve(const struct luo_dev *d, int sfd, int fd, uint64_t token, char *err,
		 size_t errlen)
{
	struct luo_fd_req r = { .size = sizeof(r), .fd = fd, .token = token };
	int e;

	if (d->ioctl(sfd, LUO_PRESERVE_FD, &r) == 0)
		return 0;
	e = errno;
	switch (e) {
	case EEXIST:
		snprintf(err, errlen, "LUO token %llu is taken in this session",
			 (unsigned long long)token);
		break;
	case ENOENT:
		snprintf(err, errlen, "LUO cannot preserve this kind of file (token %llu): only "
			 "memfds, not hugetlb ones", (unsigned long long)token);
		break;
	case ENOSPC:
		snprintf(err, errlen, "LUO session full (token %llu)", (unsigned long long)token);
		break;
	case ENOMEM:
		snprintf(err, errlen, "LUO token %llu: out of memory (a preserved memfd has every "
			 "page allocated and pinned)", (unsigned long long)token);
		break;
	default:
		snprintf(err, errlen, "LUO preserve of token %llu: %s", (unsigned long long)token,
			 strerror(e));
	}
	return -e;
}

int luo_retrieve(const struct luo_dev *d, int sfd, uint64_t token, int *fd, char *err,
		 size_t errlen)
{
	struct luo_fd_req r = { .size = sizeof(r), .fd = -1, .token = token };
	int e;

	if (d->ioctl(sfd, LUO_RETRIEVE_FD, &r) == 0) {
		if (r.fd < 0) {
			snprintf(err, errlen, "LUO token %llu: the kernel returned no fd",
				 (unsigned long long)token);
			return -EIO;
		}
		*fd = r.fd;
		return 0;
	}
	e = errno;
	if (e == ENOENT)
		snprintf(err, errlen, "LUO token %llu is not in this session",
			 (unsigned long long)token);
	else
		snprintf(err, errlen, "LUO retrieve of token %llu: %s", (unsigned long long)token,
			 strerror(e));
	return -e;
}

int luo_finish(const struct luo_dev *d, int sfd, char *err, size_t errlen)
{
	struct luo_finish_req r = { .size = sizeof(r) };
	int e;

	if (d->ioctl(sfd, LUO_FINISH, &r) == 0)
		return 0;
	e = errno;
	if (e == EBUSY)
		snprintf(err, errlen, "LUO session not finished: a file in it is still in use");
	else
		snprintf(err, errlen, "LUO finish: %s", strerror(e));
	return -e;
}
