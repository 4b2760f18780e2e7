/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Listening unix stream sockets at a path the user names (vmm/core/usock.c): the API socket
 * and virtio-vsock's host side. A socket file left by a process that died is replaced; one a
 * live process listens on, or a file that is no socket, is refused. The file is unlinked at
 * the end only if it is still the one we made (another process may have replaced it).
 */
#ifndef VMM_USOCK_H
#define VMM_USOCK_H

#include <stddef.h>
#include <sys/types.h>

#include "vmm/compiler.h"

/*
 * Bind and listen at path (non-blocking, close-on-exec): *fd, and the file's *dev and *ino.
 * On error -errno and one line in err, starting with what and the path ("api socket PATH:
 * no such directory").
 */
int usock_listen(const char *what, const char *path, int backlog, int *fd, dev_t *dev,
		 ino_t *ino, char *err, size_t errlen) WUR;
/* A listening socket handed over (a live update, systemd): checked, made non-blocking, and
 * listen()ed again (so that SO_PEERCRED names this process). */
int usock_adopt(const char *what, const char *path, int fd, int backlog, char *err,
		size_t errlen) WUR;
/* Unlink path if it is still the socket file (dev, ino). */
void usock_unlink_if_ours(const char *path, dev_t dev, ino_t ino);
/* Whether a process listens at path: 1 yes, 0 no (stale, or nothing there), negative errno. */
int usock_probe(const char *path);

#endif
