// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: virtio-net's receive and transmit paths (virtio/net/virtio_net.c) over
 * rings whose every byte the fuzzer chooses, with frames of the fuzzer's lengths and bytes
 * arriving from a SOCK_SEQPACKET pair standing in for the tap. The device is driven in its
 * polled mode (no I/O thread). On top of ASan/UBSan (nothing outside guest RAM is read or
 * written): the device completes no more chains than it took, whatever it gave back.
 *
 * Input: [0] features (bit 0 MRG_RXBUF, 1 GUEST_TSO4 with GUEST_CSUM, 2 EVENT_IDX,
 * 3 INDIRECT_DESC, 4 MTU at 65520: receives sized for 64 KiB frames), [1] log2 of the receive ring's size, [2] the transmit ring's, [3] frames
 * to send (0-7), then per frame two bytes of length; the rest is copied over guest RAM from 0:
 * the receive ring's avail ring, its descriptors, the transmit ring's avail ring and
 * descriptors, then buffers (most of RAM is zero).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/virtio_net.h"

#define FUZZ_RAM (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static struct guest_mem gm;

/* Place a ring of 2^order entries at *at: avail, descriptors, used (aligned). */
static void place(struct virtqueue *vq, unsigned int order, uint64_t *at)
{
	vq->size = (uint16_t)(1u << order);
	vq->avail_gpa = ALIGN_UP(*at, 16ULL);
	vq->desc_gpa = ALIGN_UP(vq->avail_gpa + vring_avail_bytes(vq->size), 16ULL);
	vq->used_gpa = ALIGN_UP(vq->desc_gpa + vring_desc_bytes(vq->size), 16ULL);
	*at = vq->used_gpa + vring_used_bytes(vq->size);
	vq->ready = true;
}

/*
 * The device completed no more chains than it took from the ring. (Not the used ring's
 * contents: a guest may point its own buffers at it, and the device then writes frames there.)
 */
static void check_ring(const struct virtqueue *vq, uint16_t used_from, uint16_t avail_from)
{
	CHECK((uint16_t)(vq->used_idx - used_from) <= (uint16_t)(vq->last_avail - avail_from));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[70000];
	const uint8_t mac[6] = { 0x52, 0x54, 0, 1, 2, 3 };
	struct virtio_net *n;
	int sv[2];

	if (size < 4)
		return 0;
	if (!gm.base && gm_create(&gm, FUZZ_RAM) != 0)
		abort();
	unsigned int frames = data[3] % 8;
	size_t off = 4 + 2u * frames;
	if (size < off)
		return 0;
	memset(gm.base, 0, FUZZ_RAM);
	memcpy(gm.base, data + off, MIN(size - off, (size_t)FUZZ_RAM));

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	int sndbuf = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (virtio_net_create(&n, &gm, NULL, sv[0], false, mac) != 0)
		abort();
	struct virtio_device *vdev = virtio_net_device(n);
	uint64_t feat = VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_CSUM);

	if (data[0] & 1)
		feat |= VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (data[0] & 2)
		feat |= VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4);
	if (data[0] & 4)
		feat |= VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	if (data[0] & 8)
		feat |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	if (data[0] & 16) {
		virtio_net_set_mtu(n, 65520);
		feat |= VIRTIO_BIT(VIRTIO_NET_F_MTU);
	}
	vdev->driver_features = feat;

	uint64_t at = 0;
	struct virtqueue *rx = &vdev->vq[0], *tx = &vdev->vq[1];
	place(rx, data[1] % 9, &at);
	place(tx, data[2] % 9, &at);
	if (vq_enable(rx, &gm, VIRTIO_NET_QUEUE_SIZE, feat & VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
		      feat & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) != 0 ||
	    vq_enable(tx, &gm, VIRTIO_NET_QUEUE_SIZE, feat & VIRTIO_BIT(VIRTIO_F_EVENT_IDX),
		      feat & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC)) != 0)
		abort(); /* the layout above always fits */
	vdev->status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
		       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK;

	for (unsigned int i = 0; i < frames; i++) {
		size_t len = (size_t)(data[4 + 2 * i] | data[5 + 2 * i] << 8) % sizeof(frame);

		memset(frame, (int)i, len);
		if (len)
			(void)write(sv[1], frame, len);
	}
	for (int round = 0; round < 3; round++) {
		uint16_t rx_used = rx->used_idx, tx_used = tx->used_idx;
		uint16_t rx_avail = rx->last_avail, tx_avail = tx->last_avail;

		virtio_net_poll(n);
		check_ring(rx, rx_used, rx_avail);
		check_ring(tx, tx_used, tx_avail);
		/* What the device sent reaches the "network" whole or not at all. */
		while (read(sv[1], frame, sizeof(frame)) > 0)
			;
	}
	virtio_net_destroy(n);
	close(sv[0]);
	close(sv[1]);
	return 0;
}
