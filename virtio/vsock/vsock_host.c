// SPDX-License-Identifier: Apache-2.0
/* virtio-vsock's host side without a device: the CONNECT line, PATH_P, the CID claim. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/virtio_vsock.h"

int vsock_parse_connect(const char *line, size_t len, uint32_t *port)
{
	static const char verb[] = "CONNECT ";
	const size_t vlen = sizeof(verb) - 1;
	uint64_t v = 0;
	size_t i;

	/* The bytes come from whoever can connect to the socket: exact form, bounded. */
	if (len < vlen + 2 || len > VSOCK_CONNECT_LINE_MAX || memcmp(line, verb, vlen) ||
	    line[len - 1] != '\n')
		return -EINVAL;
	for (i = vlen; i < len - 1; i++) {
		if (line[i] < '0' || line[i] > '9' || i - vlen >= 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(line[i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*port = (uint32_t)v;
	return 0;
}

int vsock_port_path(const char *uds_path, uint32_t port, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s_%u", uds_path, port);

	if (n < 0 || (size_t)n >= outlen || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int vsock_claim_cid(uint64_t cid, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int n;

	if (fd < 0)
		return -errno;
	/* Abstract (leading NUL): no file, gone with the last process holding it. */
	n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "vmm/vsock-cid/%llu",
		     (unsigned long long)cid);
	if (bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
							 1 + (size_t)n)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}
