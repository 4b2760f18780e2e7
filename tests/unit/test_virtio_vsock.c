// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-vsock behind the virtio-mmio transport. The test is the guest's driver (a fake peer
 * speaking the packet protocol through the rings) and the host programs (unix sockets in a
 * temporary directory): the hybrid CONNECT handshake, guest connections to PATH_P, data both
 * ways, credit accounting in both directions, shutdown and reset, malformed packets, and the
 * state a live update carries (sockets passed on) or a snapshot holds (a transport reset).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake_mmio_driver.h"
#include "fake_vring.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/state.h"
#include "vmm/virtio_mmio.h"
#include "vmm/virtio_vsock.h"

#define RAM_SIZE (16 * MiB)
#define RXQ	 0
#define TXQ	 1
#define EVQ	 2
#define RING	 64
#define WAIT_MS	 2000
#define CID	 42
#define RXBUF	 4096

struct fixture {
	struct guest_mem gm;
	struct ev_loop *loop;
	struct virtio_vsock *vs;
	struct virtio_mmio *t;
	struct fake_vring rx, tx, ev;
	uint64_t rx_gpa[RING]; /* by descriptor head: the buffer's address */
	uint64_t rx_heap, tx_heap; /* where the rings' buffer space starts (reused when used up) */
	char dir[64], path[100];
	int lfd;               /* the device's listening socket */
};

static void make_device(struct fixture *f, struct virtio_vsock **vs, struct virtio_mmio **t)
{
	assert_int_equal(virtio_vsock_create(vs, &f->gm, f->loop, CID, f->lfd, f->path), 0);
	struct virtio_mmio_config cfg = { .base = 0xd0000000ULL, .gsi = 16, .loop = f->loop };
	assert_int_equal(virtio_mmio_create(t, virtio_vsock_device(*vs), &cfg), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vsock-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/v.sock", f->dir);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 16), 0);
	assert_int_equal(gm_create(&f->gm, RAM_SIZE), 0);
	assert_int_equal(ev_loop_create(&f->loop, THREAD_IO), 0);
	assert_int_equal(ev_loop_start(f->loop), 0);
	make_device(f, &f->vs, &f->t);
	fake_vring_init(&f->rx, &f->gm, 0x10000, 0x400000, RING);
	fake_vring_init(&f->tx, &f->gm, 0x500000, 0x600000, RING);
	fake_vring_init(&f->ev, &f->gm, 0xc00000, 0x10000, 8);
	f->rx_heap = f->rx.heap_next;
	f->tx_heap = f->tx.heap_next;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	virtio_mmio_destroy(f->t);
	virtio_vsock_destroy(f->vs);
	ev_loop_destroy(f->loop);
	gm_destroy(&f->gm);
	close(f->lfd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void post_rx(struct fixture *f, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		uint64_t a = fake_vring_alloc(&f->rx, VSOCK_HDR_LEN + RXBUF);
		uint16_t head;

		if (!a) { /* the span is used up: start it again (the buffers are consumed) */
			f->rx.heap_next = f->rx_heap;
			a = fake_vring_alloc(&f->rx, VSOCK_HDR_LEN + RXBUF);
		}
		assert_int_not_equal(a, 0);
		/* Linux 6.1 posts header and data as two segments, later kernels as one. */
		if (i % 2) {
			struct fake_seg s[2] = { { a, VSOCK_HDR_LEN, true },
						 { a + VSOCK_HDR_LEN, RXBUF, true } };
			head = fake_vring_add_chain(&f->rx, s, 2);
		} else {
			struct fake_seg s = { a, VSOCK_HDR_LEN + RXBUF, true };
			head = fake_vring_add_chain(&f->rx, &s, 1);
		}
		f->rx_gpa[head] = a;
		fake_vring_publish(&f->rx, head);
	}
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
}

static void driver_init(struct fixture *f)
{
	assert_true(mmio_negotiate(f->t, VIRTIO_BIT(VIRTIO_F_VERSION_1)) &
		    VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, RXQ, &f->rx);
	mmio_queue_setup_ring(f->t, TXQ, &f->tx);
	mmio_queue_setup_ring(f->t, EVQ, &f->ev);
	mmio_driver_ok(f->t);
	post_rx(f, RING / 2);
}

/* The guest sends one packet: header and payload in two segments. */
static void guest_send(struct fixture *f, uint64_t src_cid, uint32_t sport, uint32_t dport,
		       uint16_t op, uint32_t flags, uint32_t buf_alloc, uint32_t fwd_cnt,
		       const void *data, uint32_t len)
{
	struct virtio_vsock_hdr h = { .src_cid = src_cid, .dst_cid = VSOCK_HOST_CID,
				      .src_port = sport, .dst_port = dport, .len = len,
				      .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
				      .buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt };
	uint64_t a = fake_vring_alloc(&f->tx, VSOCK_HDR_LEN + len + 1);
	uint32_t id;

	if (!a) {
		f->tx.heap_next = f->tx_heap;
		a = fake_vring_alloc(&f->tx, VSOCK_HDR_LEN + len + 1);
	}
	assert_int_not_equal(a, 0);
	memcpy(fake_vring_host(&f->tx, a, VSOCK_HDR_LEN), &h, VSOCK_HDR_LEN);
	if (len)
		memcpy(fake_vring_host(&f->tx, a + VSOCK_HDR_LEN, len), data, len);
	struct fake_seg s[2] = { { a, VSOCK_HDR_LEN, false }, { a + VSOCK_HDR_LEN, len, false } };
	uint16_t head = fake_vring_add_chain(&f->tx, s, len ? 2 : 1);
	fake_vring_publish(&f->tx, head);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_int_equal(id, head);
}

/* The next packet the device sends the guest (false: none within ms). */
static bool guest_recv_ms(struct fixture *f, struct virtio_vsock_hdr *h, void *data, size_t cap,
			  int ms)
{
	uint32_t id, len;

	if (!wait_used(&f->rx, &id, &len, ms))
		return false;
	assert_true(len >= VSOCK_HDR_LEN);
	memcpy(h, fake_vring_host(&f->rx, f->rx_gpa[id], VSOCK_HDR_LEN), VSOCK_HDR_LEN);
	assert_int_equal(len, VSOCK_HDR_LEN + h->len);
	assert_true(h->len <= cap);
	if (h->len)
		memcpy(data, fake_vring_host(&f->rx, f->rx_gpa[id] + VSOCK_HDR_LEN, h->len),
		       h->len);
	assert_int_equal(h->src_cid, VSOCK_HOST_CID);
	assert_int_equal(h->dst_cid, CID);
	assert_int_equal(h->type, VSOCK_TYPE_STREAM);
	post_rx(f, 1); /* the driver refills */
	return true;
}

static void guest_recv(struct fixture *f, struct virtio_vsock_hdr *h, void *data, size_t cap)
{
	assert_true(guest_recv_ms(f, h, data, cap, WAIT_MS));
}

static int host_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Up to len bytes from fd within the wait; how many. */
static size_t read_some(int fd, void *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	while (got < len && poll(&p, 1, ms) == 1) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

/* A host program connects to guest port gport; the guest accepts. Returns the program's
 * socket; *hport is the device's port for it. */
static int connect_from_host(struct fixture *f, uint32_t gport, uint32_t *hport)
{
	struct virtio_vsock_hdr h;
	char line[32];
	int fd = host_connect(f->path);

	snprintf(line, sizeof(line), "CONNECT %u\n", gport);
	assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
	guest_recv(f, &h, NULL, 0);
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, gport);
	assert_true(h.src_port >= VSOCK_LOCAL_PORT_BASE);
	assert_int_equal(h.buf_alloc, VSOCK_BUF_ALLOC);
	*hport = h.src_port;
	guest_send(f, CID, gport, h.src_port, VSOCK_OP_RESPONSE, 0, 65536, 0, NULL, 0);
	snprintf(line, sizeof(line), "OK %u\n", *hport);
	char got[32] = { 0 };
	assert_int_equal(read_some(fd, got, strlen(line), WAIT_MS), strlen(line));
	assert_string_equal(got, line);
	return fd;
}

static void test_config(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_VSOCK);
	assert_int_equal(mmio_cfg_rd(f->t, 0, 4), CID);
	assert_int_equal(mmio_cfg_rd(f->t, 4, 4), 0);
}

static void test_connect_line_parser(void **state)
{
	uint32_t port;

	(void)state;
	assert_int_equal(vsock_parse_connect("CONNECT 52\n", 11, &port), 0);
	assert_int_equal(port, 52);
	assert_int_equal(vsock_parse_connect("CONNECT 4294967295\n", 19, &port), 0);
	assert_int_equal(port, 4294967295u);
	assert_int_equal(vsock_parse_connect("CONNECT 4294967296\n", 19, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT \n", 9, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT 1x\n", 11, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("connect 1\n", 10, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT -1\n", 11, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT 1", 9, &port), -EINVAL);
	assert_int_equal(vsock_parse_connect("CONNECT 00000000001\n", 20, &port), -EINVAL);
}

/* The hybrid handshake, data both ways, and the guest's close. */
static void test_host_connects(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	uint8_t buf[RXBUF];
	uint32_t hport;

	driver_init(f);
	int fd = connect_from_host(f, 1024, &hport);

	/* Host to guest. */
	assert_int_equal(write(fd, "hello guest", 11), 11);
	guest_recv(f, &h, buf, sizeof(buf));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 11);
	assert_memory_equal(buf, "hello guest", 11);
	/* Guest to host; the guest's credit in the packet is kept. */
	guest_send(f, CID, 1024, hport, VSOCK_OP_RW, 0, 65536, 11, "hello host", 10);
	char got[16] = { 0 };
	assert_int_equal(read_some(fd, got, 10, WAIT_MS), 10);
	assert_string_equal(got, "hello host");
	/* The guest closes: the program sees the end, the guest gets its RST. */
	guest_send(f, CID, 1024, hport, VSOCK_OP_SHUTDOWN,
		   VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND, 65536, 11, NULL, 0);
	guest_recv(f, &h, NULL, 0);
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_port, hport);
	assert_int_equal(read_some(fd, got, 1, WAIT_MS), 0);
	assert_int_equal(virtio_vsock_conns(f->vs), 0);
	close(fd);
}

/* A guest with no listener on the port answers RST: the program's socket is closed, and
 * nothing was written to it. Bad CONNECT lines are closed without a word. */
static void test_host_connect_refused(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	char got[8];

	driver_init(f);
	int fd = host_connect(f->path);
	assert_int_equal(write(fd, "CONNECT 7\n", 10), 10);
	guest_recv(f, &h, NULL, 0);
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	guest_send(f, CID, 7, h.src_port, VSOCK_OP_RST, 0, 0, 0, NULL, 0);
	assert_int_equal(read_some(fd, got, sizeof(got), WAIT_MS), 0);
	close(fd);

	const char *bad[] = { "CONNECT x\n", "HELLO\n", "CONNECT 1 2\n",
			      "CONNECT 99999999999999999999999999999999999\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = host_connect(f->path);
		assert_int_equal(write(fd, bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		assert_int_equal(read_some(fd, got, sizeof(got), WAIT_MS), 0);
		close(fd);
	}
	/* The line may come in pieces; what follows it is the stream's. */
	fd = host_connect(f->path);
	assert_int_equal(write(fd, "CONN", 4), 4);
	usleep(20000);
	assert_int_equal(write(fd, "ECT 9\nearly", 11), 11);
	guest_recv(f, &h, NULL, 0);
	assert_int_equal(h.op, VSOCK_OP_REQUEST);
	assert_int_equal(h.dst_port, 9);
	guest_send(f, CID, 9, h.src_port, VSOCK_OP_RESPONSE, 0, 65536, 0, NULL, 0);
	uint8_t buf[RXBUF];
	guest_recv(f, &h, buf, sizeof(buf));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 5);
	assert_memory_equal(buf, "early", 5);
	assert_false(guest_recv_ms(f, &h, buf, sizeof(buf), 50));
	close(fd);
}

/* The guest connects to host port P: PATH_P. */
static void test_guest_connects(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t buf[RXBUF];

	driver_init(f);
	int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%.90s_5000", f->path);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 4), 0);

	guest_send(f, CID, 3333, 5000, VSOCK_OP_REQUEST, 0, 65536, 0, NULL, 0);
	guest_recv(f, &h, NULL, 0);
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	assert_int_equal(h.src_port, 5000);
	assert_int_equal(h.dst_port, 3333);
	int fd = accept(l, NULL, NULL);
	assert_true(fd >= 0);
	guest_send(f, CID, 3333, 5000, VSOCK_OP_RW, 0, 65536, 0, "ping", 4);
	char got[8] = { 0 };
	assert_int_equal(read_some(fd, got, 4, WAIT_MS), 4);
	assert_string_equal(got, "ping");
	assert_int_equal(write(fd, "pong", 4), 4);
	guest_recv(f, &h, buf, sizeof(buf));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_memory_equal(buf, "pong", 4);
	/* The program half-closes: the guest hears SHUTDOWN(SEND), and can still send. */
	shutdown(fd, SHUT_WR);
	guest_recv(f, &h, NULL, 0);
	assert_int_equal(h.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_SEND);
	guest_send(f, CID, 3333, 5000, VSOCK_OP_RW, 0, 65536, 4, "late", 4);
	assert_int_equal(read_some(fd, got, 4, WAIT_MS), 4);
	close(fd);

	/* Nobody at PATH_5001: RST. */
	guest_send(f, CID, 3334, 5001, VSOCK_OP_REQUEST, 0, 65536, 0, NULL, 0);
	guest_recv(f, &h, NULL, 0);
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_port, 5001);
	assert_int_equal(h.dst_port, 3334);
	close(l);
}

/* Host to guest never beyond the guest's credit; a credit update lets more through. */
static void test_credit_to_guest(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	uint8_t buf[RXBUF], data[5000];
	uint32_t hport;

	driver_init(f);
	int fd = host_connect(f->path);
	assert_int_equal(write(fd, "CONNECT 80\n", 11), 11);
	guest_recv(f, &h, NULL, 0);
	hport = h.src_port;
	/* The guest has room for 1000 bytes. */
	guest_send(f, CID, 80, hport, VSOCK_OP_RESPONSE, 0, 1000, 0, NULL, 0);
	assert_int_equal(read_some(fd, buf, 3 + 11, WAIT_MS), 3 + 11); /* "OK 1073741824\n" */
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 13);
	assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));
	size_t got = 0;
	while (got < 1000) {
		guest_recv(f, &h, buf, sizeof(buf));
		assert_int_equal(h.op, VSOCK_OP_RW);
		assert_memory_equal(buf, data + got, h.len);
		got += h.len;
	}
	assert_int_equal(got, 1000);
	assert_false(guest_recv_ms(f, &h, buf, sizeof(buf), 100));
	/* The guest's application read it all. */
	guest_send(f, CID, 80, hport, VSOCK_OP_CREDIT_UPDATE, 0, 1000, 1000, NULL, 0);
	while (got < 2000) {
		guest_recv(f, &h, buf, sizeof(buf));
		assert_int_equal(h.op, VSOCK_OP_RW);
		assert_memory_equal(buf, data + got, h.len);
		got += h.len;
	}
	assert_false(guest_recv_ms(f, &h, buf, sizeof(buf), 100));
	/* A credit request is answered with our counters. */
	guest_send(f, CID, 80, hport, VSOCK_OP_CREDIT_REQUEST, 0, 1000, 1000, NULL, 0);
	guest_recv(f, &h, NULL, 0);
	assert_int_equal(h.op, VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(h.buf_alloc, VSOCK_BUF_ALLOC);
	close(fd);
}

/* Guest to host: a program that does not read makes the device buffer up to the credit it
 * gave, and tell the guest as it drains; a guest that sends beyond it is reset. */
static void test_credit_from_guest(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	static uint8_t chunk[VSOCK_MAX_PKT], sink[1 << 20];
	uint32_t hport;
	int sz = 4096;

	driver_init(f);
	int fd = connect_from_host(f, 90, &hport);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	memset(chunk, 0x5a, sizeof(chunk));
	/* Well past what the socket holds: the rest waits in the device, within the credit. */
	uint32_t sent = 0;
	while (sent + sizeof(chunk) <= VSOCK_BUF_ALLOC) {
		guest_send(f, CID, 90, hport, VSOCK_OP_RW, 0, 65536, 0, chunk, sizeof(chunk));
		sent += sizeof(chunk);
	}
	assert_int_equal(virtio_vsock_conns(f->vs), 1);
	/* Reading it all makes the device write the rest and send a credit update. */
	assert_int_equal(read_some(fd, sink, sent, WAIT_MS), sent);
	bool update = false;
	while (guest_recv_ms(f, &h, NULL, 0, 200)) {
		if (h.op == VSOCK_OP_CREDIT_UPDATE && h.fwd_cnt == sent)
			update = true;
	}
	assert_true(update);

	/* Now beyond: the socket is not read, the buffer fills, one more packet is too much. */
	uint32_t more = 0;
	bool reset = false;
	for (int i = 0; i < 64 && !reset; i++) {
		guest_send(f, CID, 90, hport, VSOCK_OP_RW, 0, 65536, 0, chunk, sizeof(chunk));
		more += sizeof(chunk);
		while (guest_recv_ms(f, &h, NULL, 0, 20)) {
			if (h.op == VSOCK_OP_RST)
				reset = true;
		}
	}
	assert_true(reset);
	assert_true(more > VSOCK_BUF_ALLOC);
	assert_int_equal(virtio_vsock_conns(f->vs), 0);
	close(fd);
}

/* Packets the device must not act on. */
static void test_malformed(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	uint8_t buf[RXBUF];
	char stats[256];

	driver_init(f);
	/* Another CID than the guest's: dropped without an answer. */
	guest_send(f, CID + 1, 1, 2, VSOCK_OP_REQUEST, 0, 0, 0, NULL, 0);
	assert_false(guest_recv_ms(f, &h, buf, sizeof(buf), 50));
	/* Data on no connection: RST. */
	guest_send(f, CID, 11, 12, VSOCK_OP_RW, 0, 0, 0, "x", 1);
	guest_recv(f, &h, buf, sizeof(buf));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_int_equal(h.src_port, 12);
	/* An RST of no connection is not answered. */
	guest_send(f, CID, 11, 12, VSOCK_OP_RST, 0, 0, 0, NULL, 0);
	assert_false(guest_recv_ms(f, &h, buf, sizeof(buf), 50));

	/* A header that claims more payload than the chain has. */
	struct virtio_vsock_hdr bad = { .src_cid = CID, .dst_cid = 2, .src_port = 1,
					.dst_port = 2, .len = 1000, .type = 1, .op = VSOCK_OP_RW };
	uint64_t a = fake_vring_alloc(&f->tx, 64);
	uint32_t id;
	memcpy(fake_vring_host(&f->tx, a, VSOCK_HDR_LEN), &bad, VSOCK_HDR_LEN);
	struct fake_seg s = { a, 64, false };
	fake_vring_publish(&f->tx, fake_vring_add_chain(&f->tx, &s, 1));
	/* A chain shorter than a header, and one the device could write into. */
	struct fake_seg shrt = { a, 10, false };
	fake_vring_publish(&f->tx, fake_vring_add_chain(&f->tx, &shrt, 1));
	struct fake_seg wr = { a, 64, true };
	fake_vring_publish(&f->tx, fake_vring_add_chain(&f->tx, &wr, 1));
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	for (int i = 0; i < 3; i++)
		assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_false(guest_recv_ms(f, &h, buf, sizeof(buf), 50));
	/* A seqpacket request: refused. */
	struct virtio_vsock_hdr sp = { .src_cid = CID, .dst_cid = 2, .src_port = 5,
				       .dst_port = 6, .type = 2, .op = VSOCK_OP_REQUEST };
	memcpy(fake_vring_host(&f->tx, a, VSOCK_HDR_LEN), &sp, VSOCK_HDR_LEN);
	struct fake_seg one = { a, VSOCK_HDR_LEN, false };
	fake_vring_publish(&f->tx, fake_vring_add_chain(&f->tx, &one, 1));
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	guest_recv(f, &h, buf, sizeof(buf));
	assert_int_equal(h.op, VSOCK_OP_RST);
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	virtio_vsock_stats(f->vs, stats, sizeof(stats));
	assert_non_null(strstr(stats, "malformed=4"));
}

/* Quiesce, save into a state (with or without the sockets), load into a new device. */
static void move_device(struct fixture *f, bool with_fds)
{
	struct virtio_vsock *vs2;
	struct virtio_mmio *t2;
	struct state_writer w;
	struct state_reader r;
	struct state_fds *fds = calloc(1, sizeof(*fds));
	uint8_t *blob;
	size_t len;
	char err[256];
	struct virtio_device *vd = virtio_vsock_device(f->vs);

	assert_non_null(fds);
	ev_loop_call_sync(f->loop, (void (*)(void *))virtio_device_quiesce, vd);
	assert_int_equal(state_writer_init(&w), 0);
	w.fds = with_fds ? fds : NULL;
	struct dev_state_writer dw = { &w, state_node(&w, 0, "dev") };
	pthread_mutex_lock(&vd->lock);
	virtio_device_save(vd, &dw);
	virtio_mmio_save(f->t, &dw);
	pthread_mutex_unlock(&vd->lock);
	assert_int_equal(state_finish(&w, &blob, &len), 0);
	/* What SCM_RIGHTS would do: the new process has its own copies. */
	for (unsigned int i = 0; i < fds->nr; i++)
		fds->fd[i] = fcntl(fds->fd[i], F_DUPFD_CLOEXEC, 3);
	/* The old device goes (its copies of the sockets with it). */
	virtio_mmio_destroy(f->t);
	virtio_vsock_destroy(f->vs);

	make_device(f, &vs2, &t2);
	assert_int_equal(state_open(&r, blob, len, err, sizeof(err)), 0);
	r.fds = with_fds ? fds : NULL;
	struct dev_state_reader dr = { &r, state_find(&r, "/dev") };
	struct virtio_device *vd2 = virtio_vsock_device(vs2);
	pthread_mutex_lock(&vd2->lock);
	assert_int_equal(virtio_device_load(vd2, &dr, err, sizeof(err)), 0);
	assert_int_equal(virtio_mmio_load(t2, &dr, err, sizeof(err)), 0);
	pthread_mutex_unlock(&vd2->lock);
	ev_loop_call_sync(f->loop, (void (*)(void *))virtio_device_resume, vd2);
	for (unsigned int i = 0; i < fds->nr; i++)
		if (fds->fd[i] >= 0)
			close(fds->fd[i]);
	free(fds);
	free(blob);
	f->vs = vs2;
	f->t = t2;
}

/* A live update: the connection carries on, bytes waiting in the device included. */
static void test_state_keeps_connections(void **state)
{
	struct fixture *f = *state;
	struct virtio_vsock_hdr h;
	uint8_t buf[RXBUF];
	uint32_t hport;

	driver_init(f);
	int fd = connect_from_host(f, 1024, &hport);
	move_device(f, true);
	assert_int_equal(virtio_vsock_conns(f->vs), 1);
	assert_int_equal(write(fd, "after", 5), 5);
	guest_recv(f, &h, buf, sizeof(buf));
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.src_port, hport);
	assert_memory_equal(buf, "after", 5);
	guest_send(f, CID, 1024, hport, VSOCK_OP_RW, 0, 65536, 5, "back", 4);
	char got[8] = { 0 };
	assert_int_equal(read_some(fd, got, 4, WAIT_MS), 4);
	assert_string_equal(got, "back");
	/* New connections still come in through the same listening socket. */
	uint32_t hport2;
	int fd2 = connect_from_host(f, 1025, &hport2);
	assert_int_not_equal(hport2, hport);
	close(fd2);
	close(fd);
}

/* A snapshot: the guest hears TRANSPORT_RESET; the program sees its connection end. */
static void test_state_snapshot_resets(void **state)
{
	struct fixture *f = *state;
	uint32_t hport, id, len, ev;
	char got[8];

	driver_init(f);
	uint64_t a = fake_vring_alloc(&f->ev, 4);
	struct fake_seg s = { a, 4, true };
	fake_vring_publish(&f->ev, fake_vring_add_chain(&f->ev, &s, 1));
	int fd = connect_from_host(f, 1024, &hport);
	move_device(f, false);
	assert_int_equal(virtio_vsock_conns(f->vs), 0);
	assert_true(wait_used(&f->ev, &id, &len, WAIT_MS));
	assert_int_equal(len, 4);
	memcpy(&ev, fake_vring_host(&f->ev, a, 4), 4);
	assert_int_equal(ev, VSOCK_EVENT_TRANSPORT_RESET);
	assert_int_equal(read_some(fd, got, sizeof(got), WAIT_MS), 0);
	close(fd);
	/* And the guest can be reached again. */
	fd = connect_from_host(f, 1024, &hport);
	close(fd);
}

/* A driver reset ends every connection; the programs see theirs closed. */
static void test_driver_reset(void **state)
{
	struct fixture *f = *state;
	uint32_t hport;
	char got[8];

	driver_init(f);
	int fd = connect_from_host(f, 1024, &hport);
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(read_some(fd, got, sizeof(got), WAIT_MS), 0);
	close(fd);
	int64_t end = test_now_ms() + WAIT_MS;
	while (virtio_vsock_conns(f->vs) && test_now_ms() < end)
		usleep(1000);
	assert_int_equal(virtio_vsock_conns(f->vs), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test(test_connect_line_parser),
		cmocka_unit_test_setup_teardown(test_host_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_connect_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guest_connects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_to_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_from_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_keeps_connections, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_snapshot_resets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_driver_reset, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
