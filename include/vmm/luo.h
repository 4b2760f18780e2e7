/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client of Linux's Live Update Orchestrator, /dev/liveupdate (vmm/host/luo.c; Linux 6.19+
 * with CONFIG_LIVEUPDATE and liveupdate=on): files preserved in a named session across a
 * kexec_file_load kexec, retrieved by token in the next kernel. Our own declarations of the
 * kernel's ABI (include/uapi/linux/liveupdate.h): Debian 12's headers do not have it.
 *
 * What the kernel does with them, and what it means here:
 *   - /dev/liveupdate has one opener at a time (EBUSY); sessions outlive that fd.
 *   - An outgoing session lives as long as its fd: closing it before the kexec undoes the
 *     preservation. Whoever keeps it open until the kexec is the holder (for vmm hostupdate,
 *     the paused vmm itself).
 *   - A preserved memfd keeps its size and contents (every page: holes are filled and
 *     pinned); it cannot be resized until the kexec. Its seals and FD_CLOEXEC are not kept:
 *     the retrieved fd is a new memfd, O_CLOEXEC. hugetlb memfds are refused (ENOENT).
 *   - After the kexec, a retrieved session is finished (LUO_FINISH) once every file is back.
 */
#ifndef VMM_LUO_H
#define VMM_LUO_H

#include <linux/ioctl.h>
#include <stddef.h>
#include <stdint.h>

#define LUO_DEVICE        "/dev/liveupdate"
#define LUO_NAME_LEN      64 /* with its NUL */
#define LUO_IOCTL_TYPE    0xBA

struct luo_session_req { /* create and retrieve session */
	uint32_t size;
	int32_t fd; /* out: the session's fd */
	uint8_t name[LUO_NAME_LEN];
};

struct luo_fd_req { /* preserve (fd in) and retrieve (fd out) */
	uint32_t size;
	int32_t fd;
	uint64_t token __attribute__((aligned(8)));
};

struct luo_finish_req {
	uint32_t size;
	uint32_t reserved;
};

/* Plain _IO numbers: the size travels in each struct's first field. */
#define LUO_CREATE_SESSION   _IO(LUO_IOCTL_TYPE, 0x00)
#define LUO_RETRIEVE_SESSION _IO(LUO_IOCTL_TYPE, 0x01)
#define LUO_PRESERVE_FD      _IO(LUO_IOCTL_TYPE, 0x40)
#define LUO_RETRIEVE_FD      _IO(LUO_IOCTL_TYPE, 0x41)
#define LUO_FINISH           _IO(LUO_IOCTL_TYPE, 0x42)

/* The device and how its ioctls are made: ioctl(2), or a stand-in for tests. */
struct luo_dev {
	int fd;
	int (*ioctl)(int fd, unsigned long req, void *arg); /* -1 with errno, as ioctl(2) */
};

/* ioctl(2): what luo_open puts in a luo_dev; a session's ioctls need nothing else. */
int luo_sys_ioctl(int fd, unsigned long req, void *arg);

/*
 * Open path (LUO_DEVICE), retrying for up to wait_ms while another process has it (EBUSY).
 * 0, or -errno with one line in err (ENOENT: this kernel has no Live Update Orchestrator).
 */
int luo_open(struct luo_dev *d, const char *path, int wait_ms, char *err, size_t errlen);
void luo_close(struct luo_dev *d);

/*
 * Each returns 0 or -errno, and on failure writes one line in err that names the session or
 * token and says what the kernel's answer means. Session fds and retrieved fds are O_CLOEXEC.
 */
int luo_session_create(const struct luo_dev *d, const char *name, int *sfd, char *err,
		       size_t errlen);
int luo_session_retrieve(const struct luo_dev *d, const char *name, int *sfd, char *err,
			 size_t errlen);
int luo_preserve(const struct luo_dev *d, int sfd, int fd, uint64_t token, char *err,
		 size_t errlen);
int luo_retrieve(const struct luo_dev *d, int sfd, uint64_t token, int *fd, char *err,
		 size_t errlen);
int luo_finish(const struct luo_dev *d, int sfd, char *err, size_t errlen);

/* A session name LUO takes: 1 to 63 bytes of [A-Za-z0-9._-]. */
int luo_name_valid(const char *name);

#endif
