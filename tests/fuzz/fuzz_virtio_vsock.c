// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: virtio-vsock's packet parser and connection state machine
 * (virtio/vsock/virtio_vsock.c) over rings and packets whose every byte the fuzzer chooses,
 * with host programs writing the fuzzer's bytes to the device's socket (the CONNECT line and
 * what follows) and a host listener at PATH_5 for the guest's connections. The device is
 * driven in its polled mode (no I/O thread). On top of ASan/UBSan: the device completes no
 * more chains than it took, and holds no more connections than VSOCK_MAX_CONNS.
 *
 * Input: [0] features (bit 0 EVENT_IDX, 1 INDIRECT_DESC), [1] [2] [3] log2 of the rx, tx and
 * event rings' sizes, [4] host programs (0-3), then per program one length byte and its bytes;
 * the rest is copied over guest RAM from 0: the rings (avail, descriptors, used, in that
 * order, rx, tx, event), then packets and buffers.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/virtio_vsock.h"

#define FUZZ_RAM (256 * 1024)
#define GUEST_CID 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static struct guest_mem gm;
static char path[108];
static int listen_fd = -1, port_fd = -1;

static int listener(const char *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", p);
	unlink(p);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0)
		abort();
	return fd;
}

static void once(void)
{
	char dir[] = "/tmp/fuzz-vsock-XXXXXX", p5[120];

	if (gm_create(&gm, FUZZ_RAM) != 0 || !mkdtemp(dir))
		abort();
	snprintf(path, sizeof(path), "%s/v.sock", dir);
	snprintf(p5, sizeof(p5), "%s_5", path);
	listen_fd = listener(path);
	port_fd = listener(p5);
}

static void place(struct virtqueue *vq, unsigned int order, uint64_t *at)
{
	vq->size = (uint16_t)(1u << order);
	vq->avail_gpa = ALIGN_UP(*at, 16ULL);
	vq->desc_gpa = ALIGN_UP(vq->avail_gpa + vring_avail_bytes(vq->size), 16ULL);
	vq->used_gpa = ALIGN_UP(vq->desc_gpa + vring_desc_bytes(vq->size), 16ULL);
	*at = vq->used_gpa + vring_used_bytes(vq->size);
	vq->ready = true;
}

static void check_ring(const struct virtqueue *vq, uint16_t used_from, uint16_t avail_from)
{
	CHECK((uint16_t)(vq->used_idx - used_from) <= (uint16_t)(vq->last_avail - avail_from));
}

/* Whatever the device sent the host side: read and dropped, so that it never blocks. */
static void drain(int fd)
{
	static uint8_t buf[65536];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int clients[3] = { -1, -1, -1 }, accepted[16], nacc = 0;
	struct virtio_vsock *v;

	if (size < 5)
		return 0;
	if (!gm.base)
		once();
	unsigned int progs = data[4] % 4;
	size_t off = 5;
	for (unsigned int i = 0; i < progs; i++) {
		if (off >= size)
			return 0;
		off += 1 + data[off];
	}
	if (off > size)
		return 0;
	memset(gm.base, 0, FUZZ_RAM);
	memcpy(gm.base, data + off, MIN(size - off, (size_t)FUZZ_RAM));

	if (virtio_vsock_create(&v, &gm, NULL, GUEST_CID, listen_fd, path) != 0)
		abort();
	struct virtio_device *vdev = virtio_vsock_device(v);
	uint64_t feat = VIRTIO_BIT(VIRTIO_F_VERSION_1);

	if (data[0] & 1)
		feat |= VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	if (data[0] & 2)
		feat |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	vdev->driver_features = feat;
	uint64_t at = 0;
	for (unsigned int q = 0; q < 3; q++) {
		place(&vdev->vq[q], data[1 + q] % 9, &at);
		if (vq_enable(&vdev->vq[q], &gm, VSOCK_QUEUE_SIZE,
			      feat & VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
			      feat & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) != 0)
			abort();
	}
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;

	/* The host programs: connect and write their bytes (a CONNECT line, or not). */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	off = 5;
	for (unsigned int i = 0; i < progs; i++) {
		size_t len = data[off];

		clients[i] = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (clients[i] < 0 ||
		    connect(clients[i], (struct sockaddr *)&sa, sizeof(sa)) < 0)
			abort();
		if (len)
			(void)write(clients[i], data + off + 1, len);
		off += 1 + len;
	}
	for (int round = 0; round < 4; round++) {
		uint16_t used[3], avail[3];

		for (unsigned int q = 0; q < 3; q++) {
			used[q] = vdev->vq[q].used_idx;
			avail[q] = vdev->vq[q].last_avail;
		}
		virtio_vsock_poll(v);
		for (unsigned int q = 0; q < 3; q++)
			check_ring(&vdev->vq[q], used[q], avail[q]);
		CHECK(virtio_vsock_conns(v) <= VSOCK_MAX_CONNS);
		/* The host side reads what it got; the guest's connections are accepted. */
		for (unsigned int i = 0; i < progs; i++)
			drain(clients[i]);
		int c;
		while (nacc < 16 && (c = accept4(port_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0)
			accepted[nacc++] = c;
		for (int i = 0; i < nacc; i++) {
			drain(accepted[i]);
			if (round == 1)
				(void)write(accepted[i], "from-host", 9);
		}
	}
	virtio_vsock_destroy(v);
	for (unsigned int i = 0; i < progs; i++)
		close(clients[i]);
	for (int i = 0; i < nacc; i++)
		close(accepted[i]);
	/* Programs the device never accepted wait in the backlog: take them away. */
	int c;
	while ((c = accept4(listen_fd, NULL, NULL, 0)) >= 0)
		close(c);
	return 0;
}
