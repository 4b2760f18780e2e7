// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net (virtio 1.2 §5.1) behind the virtio-mmio transport, driven as a guest would, with
 * a SOCK_SEQPACKET socket pair standing in for the tap (one message per frame, as a tap): what
 * the guest transmits comes out of the peer header and all, what the peer sends lands in the
 * guest's receive buffers, merged over several with num_buffers, and waits while there are
 * none; what the guest sends waits in its ring while the peer has no room. Malformed chains
 * complete empty.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fake_mmio_driver.h"
#include "fake_vring.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/virtio_mmio.h"
#include "vmm/virtio_net.h"

#define RAM_SIZE (4 * MiB)
#define RXQ	 0
#define TXQ	 1
#define RING	 32
#define WAIT_MS	 2000
#define HDR	 VIRTIO_NET_HDR_LEN

struct fixture {
	struct guest_mem gm;
	struct ev_loop *loop;
	struct virtio_net *net;
	struct virtio_mmio *t;
	struct fake_vring rx, tx;
	int sv[2]; /* [0] the device's "tap", [1] the network */
};

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
				    f->sv), 0);
	assert_int_equal(gm_create(&f->gm, RAM_SIZE), 0);
	assert_int_equal(ev_loop_create(&f->loop, THREAD_IO), 0);
	assert_int_equal(ev_loop_start(f->loop), 0);
	assert_int_equal(virtio_net_create(&f->net, &f->gm, f->loop, f->sv[0], false, mac), 0);
	struct virtio_mmio_config cfg = {.base = 0xd0000000ULL, .gsi = 16, .loop = f->loop};
	assert_int_equal(virtio_mmio_create(&f->t, virtio_net_device(f->net), &cfg), 0);
	fake_vring_init(&f->rx, &f->gm, 0x10000, 0x100000, RING);
	fake_vring_init(&f->tx, &f->gm, 0x200000, 0x100000, RING);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_mmio_destroy(f->t);
	virtio_net_destroy(f->net);
	ev_loop_destroy(f->loop);
	gm_destroy(&f->gm);
	close(f->sv[0]);
	close(f->sv[1]);
	free(f);
	return 0;
}

static const uint64_t base =
	VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_NET_F_MAC) |
	VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_NET_F_CSUM) |
	VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM);

static void driver_init(struct fixture *f, uint64_t features)
{
	assert_true(mmio_negotiate(f->t, features) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, RXQ, &f->rx);
	mmio_queue_setup_ring(f->t, TXQ, &f->tx);
	mmio_driver_ok(f->t);
}

/* Post n receive buffers of len bytes each; their guest addresses in gpa[]. */
static void post_rx(struct fixture *f, unsigned int n, uint32_t len, uint64_t *gpa)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t a = fake_vring_alloc(&f->rx, len);

		assert_int_not_equal(a, 0);
		struct fake_seg s = {.gpa = a, .len = len, .write = true};
		fake_vring_publish(&f->rx, fake_vring_add_chain(&f->rx, &s, 1));
		if (gpa)
			gpa[i] = a;
	}
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
}

static void test_features_and_config(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_NET);
	for (int i = 0; i < 6; i++)
		assert_int_equal(mmio_cfg_rd(f->t, (uint32_t)i, 1), mac[i]);
	assert_int_equal(mmio_cfg_rd(f->t, 6, 2), 1); /* LINK_UP */
	/* §5.1.3.1: segmentation without checksum offload is refused. */
	assert_false(mmio_negotiate(f->t, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
					  VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4)) &
		     VIRTIO_STATUS_FEATURES_OK);
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_false(mmio_negotiate(f->t, VIRTIO_BIT(VIRTIO_F_VERSION_1) |
					  VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6)) &
		     VIRTIO_STATUS_FEATURES_OK);
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_true(mmio_negotiate(f->t, base | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) |
					 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4)) &
		    VIRTIO_STATUS_FEATURES_OK);
}

/* A frame the guest sends reaches the network as one message, its header first. */
static void test_transmit(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[HDR + 100], got[sizeof(frame) + 16];
	uint32_t id, len;

	driver_init(f, base);
	for (size_t i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)i;
	/* Header and frame in two segments, as Linux sends them. */
	uint64_t h = fake_vring_alloc(&f->tx, HDR), d = fake_vring_alloc(&f->tx, 100);
	memcpy(fake_vring_host(&f->tx, h, HDR), frame, HDR);
	memcpy(fake_vring_host(&f->tx, d, 100), frame + HDR, 100);
	struct fake_seg segs[2] = {{.gpa = h, .len = HDR}, {.gpa = d, .len = 100}};
	uint16_t head = fake_vring_add_chain(&f->tx, segs, 2);
	fake_vring_publish(&f->tx, head);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	assert_true(wait_used(&f->tx, &id, &len, WAIT_MS));
	assert_int_equal(id, head);
	struct pollfd p = {.fd = f->sv[1], .events = POLLIN};
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(read(f->sv[1], got, sizeof(got)), sizeof(frame));
	assert_memory_equal(got, frame, sizeof(frame));

	/* Too short for the header, or with a writable part: completed, nothing sent. */
	struct fake_seg shortseg = {.gpa = h, .len = HDR - 1};
	uint16_t h2 = fake_vring_add_chain(&f->tx, &shortseg, 1);
	fake_vring_publish(&f->tx, h2);
	struct fake_seg wr[2] = {{.gpa = h, .len = HDR}, {.gpa = d, .len = 100, .write = true}};
	uint16_t h3 = fake_vring_add_chain(&f->tx, wr, 2);
	fake_vring_publish(&f->tx, h3);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_int_equal(id, h2);
	assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_int_equal(id, h3);
	assert_int_equal(poll(&p, 1, 50), 0);
}

/*
 * A backend with no room (the user-mode network's helper behind): frames wait in the ring,
 * none is lost, and they go out in order once the backend reads.
 */
static void test_transmit_waits_for_backend(void **state)
{
	struct fixture *f = *state;
	enum { N = RING, LEN = 1000 };
	uint8_t got[HDR + LEN + 16];
	uint32_t id, len;
	unsigned int used = 0;
	int small = 1; /* the kernel's least */
	char stats[256];

	assert_int_equal(setsockopt(f->sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
	driver_init(f, base);
	for (unsigned int i = 0; i < N; i++) {
		uint64_t a = fake_vring_alloc(&f->tx, HDR + LEN);
		uint8_t *p = fake_vring_host(&f->tx, a, HDR + LEN);

		memset(p, 0, HDR + LEN);
		memcpy(p + HDR, &i, sizeof(i));
		struct fake_seg seg = {.gpa = a, .len = HDR + LEN};
		fake_vring_publish(&f->tx, fake_vring_add_chain(&f->tx, &seg, 1));
	}
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	/* Some fit; the rest wait, not completed. */
	usleep(100000);
	while (fake_vring_get_used(&f->tx, &id, &len))
		used++;
	assert_true(used > 0 && used < N);
	for (unsigned int i = 0; i < N; i++) {
		struct pollfd p = {.fd = f->sv[1], .events = POLLIN};
		unsigned int seq;

		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		assert_int_equal(read(f->sv[1], got, sizeof(got)), HDR + LEN);
		memcpy(&seq, got + HDR, sizeof(seq));
		assert_int_equal(seq, i);
	}
	for (; used < N; used++)
		assert_true(wait_used(&f->tx, &id, &len, WAIT_MS));
	virtio_net_stats(f->net, stats, sizeof(stats));
	assert_non_null(strstr(stats, "tx_packets=32 "));
	assert_non_null(strstr(stats, "tx_errors=0 "));
}

/*
 * A 1000-byte frame into 512-byte mergeable buffers: two are used, num_buffers says 2, the
 * third taken for room is given back and is the next frame's first.
 */
static void test_receive_merged(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[1000 + HDR];
	uint64_t gpa[4];
	uint32_t id, len;
	uint16_t nb;

	driver_init(f, base);
	post_rx(f, 4, 512, gpa);
	memset(frame, 0, HDR);
	for (size_t i = HDR; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	assert_int_equal(write(f->sv[1], frame, sizeof(frame)), sizeof(frame));
	assert_true(wait_used(&f->rx, &id, &len, WAIT_MS));
	assert_int_equal(len, 512);
	assert_true(wait_used(&f->rx, &id, &len, WAIT_MS));
	assert_int_equal(len, sizeof(frame) - 512);
	memcpy(&nb, fake_vring_host(&f->rx, gpa[0] + 10, 2), 2);
	assert_int_equal(nb, 2);
	assert_memory_equal(fake_vring_host(&f->rx, gpa[0] + HDR, 512 - HDR), frame + HDR,
			    512 - HDR);
	assert_memory_equal(fake_vring_host(&f->rx, gpa[1], sizeof(frame) - 512), frame + 512,
			    sizeof(frame) - 512);
	/* The next frame starts in the third buffer (given back, not lost). */
	uint8_t small[HDR + 20] = {0};
	small[HDR] = 0xab;
	post_rx(f, 2, 512, NULL);
	assert_int_equal(write(f->sv[1], small, sizeof(small)), sizeof(small));
	assert_true(wait_used(&f->rx, &id, &len, WAIT_MS));
	assert_int_equal(len, sizeof(small));
	assert_int_equal(*(uint8_t *)fake_vring_host(&f->rx, gpa[2] + HDR, 1), 0xab);
}

/*
 * VIRTIO_NET_F_MTU (a user-mode network's mtu=): offered only once set, the config space
 * says it, and a frame of that MTU is received whole, over as many buffers as it takes.
 */
static void test_mtu(void **state)
{
	struct fixture *f = *state;
	enum { MTU = 65520, FRAME = HDR + 14 + MTU, BUF = 4096, NBUF = FRAME / BUF + 1 };
	uint64_t gpa[NBUF];
	uint32_t id, len, total = 0;
	uint16_t nb;
	uint8_t *frame = malloc(FRAME);

	assert_non_null(frame);
	assert_false(mmio_negotiate(f->t, base | VIRTIO_BIT(VIRTIO_NET_F_MTU)) &
		     VIRTIO_STATUS_FEATURES_OK);
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0);
	virtio_net_set_mtu(f->net, MTU);
	assert_int_equal(mmio_cfg_rd(f->t, 8, 2), 1); /* max_virtqueue_pairs */
	assert_int_equal(mmio_cfg_rd(f->t, 10, 2), MTU);
	driver_init(f, base | VIRTIO_BIT(VIRTIO_NET_F_MTU));
	post_rx(f, NBUF, BUF, gpa);
	memset(frame, 0, HDR);
	for (size_t i = HDR; i < FRAME; i++)
		frame[i] = (uint8_t)(i * 13);
	assert_int_equal(write(f->sv[1], frame, FRAME), FRAME);
	for (unsigned int i = 0; i < NBUF && total < FRAME; i++) {
		assert_true(wait_used(&f->rx, &id, &len, WAIT_MS));
		uint32_t skip = i ? 0 : HDR; /* the header's num_buffers is the device's */

		assert_memory_equal(fake_vring_host(&f->rx, gpa[i] + skip, len - skip),
				    frame + total + skip, len - skip);
		total += len;
	}
	assert_int_equal(total, FRAME);
	memcpy(&nb, fake_vring_host(&f->rx, gpa[0] + 10, 2), 2);
	assert_int_equal(nb, NBUF);
	free(frame);
}

/* A transmitted frame of len payload bytes (one segment: header and frame). */
static uint16_t send_frame(struct fixture *f, uint32_t len, uint8_t tag)
{
	uint64_t a = fake_vring_alloc(&f->tx, HDR + len);
	uint8_t *p = fake_vring_host(&f->tx, a, HDR + len);

	memset(p, 0, HDR);
	memset(p + HDR, tag, len);
	struct fake_seg seg = {.gpa = a, .len = HDR + len};
	uint16_t head = fake_vring_add_chain(&f->tx, &seg, 1);

	fake_vring_publish(&f->tx, head);
	return head;
}

/*
 * Rate limits (Firecracker's tx_rate_limiter / rx_rate_limiter), 1000 bytes per 100 ms each
 * way: 5 frames of 1000 bytes take at least 300 ms either way (the 5th goes once 4000 bytes
 * were paid for, a bucketful of them at the start: nothing beats the limit), arrive whole and
 * in order, and the waits are counted. Lifted at run time, the rest goes at once.
 */
static void test_rate_limits(void **state)
{
	struct fixture *f = *state;
	struct vmm_rate_limiter lim = {.bandwidth = {.size = 1000, .refill_time_ms = 100}};
	uint8_t got[HDR + 1000 + 16];
	uint32_t id, len;
	char stats[256];

	assert_int_equal(virtio_net_set_rate_limits(f->net, &lim, &lim), 0);
	driver_init(f, base);
	int64_t t0 = test_now_ms();
	for (int i = 0; i < 5; i++)
		send_frame(f, 1000, (uint8_t)(0x10 + i));
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	for (int i = 0; i < 5; i++) {
		struct pollfd p = {.fd = f->sv[1], .events = POLLIN};

		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		assert_int_equal(read(f->sv[1], got, sizeof(got)), HDR + 1000);
		assert_int_equal(got[HDR], 0x10 + i);
		assert_int_equal(got[HDR + 999], 0x10 + i);
	}
	assert_true(test_now_ms() - t0 >= 290);
	for (int i = 0; i < 5; i++)
		assert_true(wait_used(&f->tx, &id, &len, WAIT_MS));

	uint64_t gpa[8];
	uint8_t frame[HDR + 1000];
	post_rx(f, 8, 2048, gpa);
	t0 = test_now_ms();
	memset(frame, 0, HDR);
	for (int i = 0; i < 5; i++) {
		memset(frame + HDR, 0x20 + i, 1000);
		assert_int_equal(write(f->sv[1], frame, sizeof(frame)), sizeof(frame));
	}
	for (int i = 0; i < 5; i++) {
		assert_true(wait_used(&f->rx, &id, &len, WAIT_MS));
		assert_int_equal(len, HDR + 1000);
		assert_int_equal(*(uint8_t *)fake_vring_host(&f->rx, gpa[i] + HDR + 500, 1), 0x20 + i);
	}
	assert_true(test_now_ms() - t0 >= 290);
	virtio_net_stats(f->net, stats, sizeof(stats));
	assert_null(strstr(stats, "rx_throttled=0 "));
	assert_null(strstr(stats, "tx_throttled=0"));

	/* Lifted while transmit waits: the rest goes without a refill's wait. */
	for (int i = 0; i < 3; i++)
		send_frame(f, 1000, 0x30);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	assert_int_equal(virtio_net_set_rate_limits(f->net, NULL, NULL), 0);
	t0 = test_now_ms();
	for (int i = 0; i < 3; i++)
		assert_true(wait_used(&f->tx, &id, &len, WAIT_MS));
	assert_true(test_now_ms() - t0 < 90);
}

/* No receive buffers: frames wait in the "tap" (nothing is lost), and come once posted. */
static void test_receive_waits_for_buffers(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[HDR + 64] = {0};
	uint32_t id, len;
	char stats[256];

	driver_init(f, base);
	for (int i = 0; i < 3; i++) {
		frame[HDR] = (uint8_t)i;
		assert_int_equal(write(f->sv[1], frame, sizeof(frame)), sizeof(frame));
	}
	usleep(50000);
	assert_false(fake_vring_get_used(&f->rx, &id, &len));
	post_rx(f, 8, 2048, NULL);
	for (int i = 0; i < 3; i++) {
		assert_true(wait_used(&f->rx, &id, &len, WAIT_MS));
		assert_int_equal(len, sizeof(frame));
	}
	virtio_net_stats(f->net, stats, sizeof(stats));
	assert_non_null(strstr(stats, "rx_packets=3 "));
	assert_non_null(strstr(stats, "rx_dropped=0 "));
}

/* A receive chain the device may not write into completes empty; the frame goes on into the
 * next good buffers. */
static void test_receive_malformed_chain(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[HDR + 64] = {0};
	uint32_t id, len;

	driver_init(f, base);
	uint64_t a = fake_vring_alloc(&f->rx, 2048);
	struct fake_seg ro = {.gpa = a, .len = 2048};
	uint16_t bad = fake_vring_add_chain(&f->rx, &ro, 1);
	fake_vring_publish(&f->rx, bad);
	post_rx(f, 2, 2048, NULL);
	assert_int_equal(write(f->sv[1], frame, sizeof(frame)), sizeof(frame));
	assert_true(wait_used(&f->rx, &id, &len, WAIT_MS));
	assert_int_equal(id, bad);
	assert_int_equal(len, 0);
	assert_true(wait_used(&f->rx, &id, &len, WAIT_MS));
	assert_int_equal(len, sizeof(frame));
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_features_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transmit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_transmit_waits_for_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_merged, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_waits_for_buffers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mtu, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rate_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receive_malformed_chain, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
