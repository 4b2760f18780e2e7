/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Files the user names (kernel, initrd, disk images, config files): opened without blocking,
 * checked for their kind before use, and read so that a file changing underneath gives an
 * error instead of a SIGBUS (vmm/core/file.c).
 */
#ifndef VMM_FILE_H
#define VMM_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "vmm/compiler.h"

/*
 * open(path, flags | O_CLOEXEC | O_NOCTTY) with O_NONBLOCK for the open itself, so that a FIFO
 * or a device cannot block us, then refuse anything but a regular file (or a block device when
 * allow_blockdev). O_NONBLOCK is cleared again on success. On error -errno and one line in err:
 * "PATH: not a regular file (a FIFO)", "PATH: No such file or directory". st may be NULL.
 */
int file_open_checked(const char *path, int flags, bool allow_blockdev, int *fd, struct stat *st,
		      char *err, size_t errlen) WUR;

/*
 * Read all of a regular file of at most max bytes into a malloc'd buffer (*len bytes; empty
 * files refused). A file that shrinks or grows while it is read is refused ("changed while it
 * was read"), never a SIGBUS. what names the file's role in messages ("kernel").
 */
int file_read_all(const char *what, const char *path, size_t max, uint8_t **data, size_t *len,
		  char *err, size_t errlen) WUR;

/* What st is, for messages: "a directory", "a FIFO", "a socket", "a character device"... */
const char *file_kind(const struct stat *st);

#endif
