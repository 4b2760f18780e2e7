// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-console (virtio 1.2 §5.3) behind the virtio-mmio transport, driven as a guest would:
 * registers for setup, a fake split ring for buffers, kicks served by a real I/O thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fake_mmio_driver.h"
#include "fake_vring.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/virtio_console.h"
#include "vmm/virtio_mmio.h"

#define RAM_SIZE (1 * MiB)
#define RXQ	 0
#define TXQ	 1
#define RING	 16
#define WAIT_MS	 2000

#define CFG_COLS     0
#define CFG_ROWS     2
#define CFG_EMERG_WR 8

struct fixture {
	struct guest_mem gm;
	struct ev_loop *loop;
	struct virtio_console *con;
	struct virtio_device *vdev;
	struct virtio_mmio *t;
	int pipe_fd[2]; /* the console's output goes into [1] */
	struct fake_vring rx, tx;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned int rx_ready_calls;
	size_t cb_received; /* bytes the callback itself managed to hand over */
	const uint8_t *cb_data;
	size_t cb_len;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gm_create(&f->gm, RAM_SIZE), 0);
	assert_int_equal(ev_loop_create(&f->loop, THREAD_IO), 0);
	assert_int_equal(ev_loop_start(f->loop), 0);
	assert_int_equal(pipe2(f->pipe_fd, O_CLOEXEC | O_NONBLOCK), 0);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	assert_int_equal(virtio_console_create(&f->con, &f->gm, f->loop, f->pipe_fd[1]), 0);
	f->vdev = virtio_console_device(f->con);
	struct virtio_mmio_config cfg = {.base = 0xd0000000ULL, .gsi = 16, .loop = f->loop};
	assert_int_equal(virtio_mmio_create(&f->t, f->vdev, &cfg), 0);
	fake_vring_init(&f->rx, &f->gm, 0x10000, 0x10000, RING);
	fake_vring_init(&f->tx, &f->gm, 0x20000, 0x10000, RING);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	/* vm_virtio_destroy's order: the console's output watch lives on the loop. */
	virtio_mmio_destroy(f->t);
	virtio_console_destroy(f->con);
	ev_loop_destroy(f->loop);
	if (f->pipe_fd[0] >= 0)
		close(f->pipe_fd[0]);
	close(f->pipe_fd[1]);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	gm_destroy(&f->gm);
	free(f);
	return 0;
}

static const uint64_t base_features =
	VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_CONSOLE_F_SIZE);

/* The driver side of §3.1.1 with both queues. */
static void driver_init(struct fixture *f, uint64_t features)
{
	assert_true(mmio_negotiate(f->t, features) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, RXQ, &f->rx);
	mmio_queue_setup_ring(f->t, TXQ, &f->tx);
	mmio_driver_ok(f->t);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & 0xff,
			 VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				 VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
}

/* Bytes from the console's output pipe, waiting up to WAIT_MS for `want` of them. */
static size_t read_out(struct fixture *f, char *buf, size_t want)
{
	size_t got = 0;
	int64_t end = test_now_ms() + WAIT_MS;

	while (got < want && test_now_ms() < end) {
		struct pollfd pfd = {.fd = f->pipe_fd[0], .events = POLLIN};
		if (poll(&pfd, 1, 20) <= 0)
			continue;
		ssize_t n = read(f->pipe_fd[0], buf + got, want - got);
		if (n > 0)
			got += (size_t)n;
	}
	return got;
}

static bool out_is_empty(struct fixture *f, int wait_ms)
{
	struct pollfd pfd = {.fd = f->pipe_fd[0], .events = POLLIN};

	return poll(&pfd, 1, wait_ms) == 0;
}

/* A readable (guest to device) buffer holding s. */
static struct fake_seg tx_seg(struct fixture *f, const char *s)
{
	size_t len = strlen(s);
	uint64_t gpa = fake_vring_alloc(&f->tx, len);

	assert_true(gpa != 0);
	memcpy(fake_vring_host(&f->tx, gpa, len), s, len);
	return (struct fake_seg){.gpa = gpa, .len = (uint32_t)len, .write = false};
}

/* A writable (device to guest) buffer of len bytes, filled with '.'. */
static struct fake_seg rx_seg(struct fixture *f, uint32_t len)
{
	uint64_t gpa = fake_vring_alloc(&f->rx, len);

	assert_true(gpa != 0);
	memset(fake_vring_host(&f->rx, gpa, len), '.', len);
	return (struct fake_seg){.gpa = gpa, .len = len, .write = true};
}

static void post_rx(struct fixture *f, const struct fake_seg *seg)
{
	fake_vring_publish(&f->rx, fake_vring_add_chain(&f->rx, seg, 1));
}

static void rx_ready_cb(void *opaque)
{
	struct fixture *f = opaque;

	/* Called without the device lock: handing more input over from here must work. */
	size_t n = 0;
	if (f->cb_data)
		n = virtio_console_receive(f->con, f->cb_data, f->cb_len);
	pthread_mutex_lock(&f->mu);
	f->cb_received += n;
	f->cb_data = NULL;
	f->rx_ready_calls++;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

static bool wait_rx_ready(struct fixture *f, unsigned int n)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&f->mu);
	while (f->rx_ready_calls < n) {
		if (pthread_cond_timedwait(&f->cv, &f->mu, &ts) == ETIMEDOUT)
			break;
	}
	ok = f->rx_ready_calls >= n;
	pthread_mutex_unlock(&f->mu);
	return ok;
}

static unsigned int rx_ready_calls(struct fixture *f)
{
	pthread_mutex_lock(&f->mu);
	unsigned int n = f->rx_ready_calls;
	pthread_mutex_unlock(&f->mu);
	return n;
}

/* ---- identity and config ---- */

static void test_identity_and_features(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_CONSOLE);
	mmio_wr(f->t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	uint32_t lo = mmio_rd(f->t, VIRTIO_MMIO_DEVICE_FEATURES);
	assert_true(lo & (1u << VIRTIO_CONSOLE_F_SIZE));
	assert_true(lo & (1u << VIRTIO_CONSOLE_F_EMERG_WRITE));
	assert_false(lo & (1u << VIRTIO_CONSOLE_F_MULTIPORT)); /* one port only */
	/* §5.3.2: receiveq and transmitq, nothing else. */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, RXQ);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_CONSOLE_QUEUE_SIZE);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, TXQ);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX), VIRTIO_CONSOLE_QUEUE_SIZE);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, 2);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0);
	/* MULTIPORT is not negotiable. */
	assert_false(mmio_negotiate(f->t, base_features | VIRTIO_BIT(VIRTIO_CONSOLE_F_MULTIPORT)) &
		     VIRTIO_STATUS_FEATURES_OK);
}

static void test_resize(void **state)
{
	struct fixture *f = *state;

	driver_init(f, base_features);
	mmio_irq_take(f->t, 0);
	uint32_t gen = mmio_rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION);

	virtio_console_resize(f->con, 132, 43);
	assert_true(mmio_irq_take(f->t, WAIT_MS) >= 1);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_CONFIG_GENERATION) != gen);
	assert_int_equal(mmio_cfg_rd(f->t, CFG_COLS, 2), 132);
	assert_int_equal(mmio_cfg_rd(f->t, CFG_ROWS, 2), 43);
	assert_int_equal(mmio_cfg_rd(f->t, CFG_COLS, 4), 132 | (43u << 16));
	/* emerg_wr is a doorbell: it reads 0. */
	assert_int_equal(mmio_cfg_rd(f->t, CFG_EMERG_WR, 4), 0);
	mmio_wr(f->t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_CONFIG);

	/* The same size again is no change. */
	virtio_console_resize(f->con, 132, 43);
	assert_int_equal(mmio_irq_take(f->t, 50), 0);

	/* The size survives a reset; a driver without F_SIZE gets no interrupt for it. */
	driver_init(f, VIRTIO_BIT(VIRTIO_F_VERSION_1));
	mmio_irq_take(f->t, 0);
	assert_int_equal(mmio_cfg_rd(f->t, CFG_COLS, 2), 132);
	virtio_console_resize(f->con, 80, 25);
	assert_int_equal(mmio_irq_take(f->t, 50), 0);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	assert_int_equal(mmio_cfg_rd(f->t, CFG_ROWS, 2), 25);
}

static void test_emergency_write(void **state)
{
	struct fixture *f = *state;
	char out[4];

	/* §5.3.4: usable before any negotiation (an early console). */
	uint8_t b[4] = {'E', 0, 0, 0};
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + CFG_EMERG_WR, b, 4, true);
	b[0] = '!';
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + CFG_EMERG_WR, b, 1, true);
	assert_int_equal(read_out(f, out, 2), 2);
	assert_memory_equal(out, "E!", 2);
	/* A write to cols does not output anything. */
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + CFG_COLS, b, 2, true);
	assert_true(out_is_empty(f, 50));
}

/* ---- transmit ---- */

static void test_tx(void **state)
{
	struct fixture *f = *state;
	char out[64];
	uint32_t id, len;

	driver_init(f, base_features | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	mmio_irq_take(f->t, 0);

	struct fake_seg segs[2] = {tx_seg(f, "hello, "), tx_seg(f, "world\n")};
	uint16_t head = fake_vring_add_chain(&f->tx, segs, 2);
	fake_vring_publish(&f->tx, head);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);

	assert_int_equal(read_out(f, out, 13), 13);
	assert_memory_equal(out, "hello, world\n", 13);
	assert_true(wait_used(&f->tx, &id, &len, WAIT_MS));
	assert_int_equal(id, head);
	assert_int_equal(len, 0); /* nothing written into a transmit buffer */
	assert_true(mmio_irq_take(f->t, WAIT_MS) >= 1);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_USED);

	/* Several chains in one kick, one of them indirect, come out in order. */
	struct fake_seg a = tx_seg(f, "one ");
	struct fake_seg b[2] = {tx_seg(f, "two"), tx_seg(f, " three")};
	uint16_t h1 = fake_vring_add_chain(&f->tx, &a, 1);
	uint16_t h2 = fake_vring_add_indirect(&f->tx, b, 2);
	fake_vring_publish(&f->tx, h1);
	fake_vring_publish(&f->tx, h2);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	assert_int_equal(read_out(f, out, 13), 13);
	assert_memory_equal(out, "one two three", 13);
	assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_int_equal(id, h1);
	assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_int_equal(id, h2);
}

static void test_tx_large_through_slow_pipe(void **state)
{
	struct fixture *f = *state;
	/* More than a pipe holds: the device waits for the reader instead of dropping. */
	size_t big = 200 * 1024;
	char *src = malloc(big), *dst = malloc(big);

	assert_non_null(src);
	assert_non_null(dst);
	for (size_t i = 0; i < big; i++)
		src[i] = (char)('a' + i % 26);
	assert_int_equal(fcntl(f->pipe_fd[1], F_SETPIPE_SZ, 4096) >= 0, 1);

	/* The fixture's heap is 64 KiB minus the rings: use a bigger ring region for this. */
	fake_vring_init(&f->tx, &f->gm, 0x40000, 0x80000, RING);
	driver_init(f, base_features);
	uint64_t gpa = fake_vring_alloc(&f->tx, big);
	assert_true(gpa != 0);
	memcpy(fake_vring_host(&f->tx, gpa, big), src, big);
	struct fake_seg seg = {.gpa = gpa, .len = (uint32_t)big};
	fake_vring_publish(&f->tx, fake_vring_add_chain(&f->tx, &seg, 1));
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);

	/* Read slowly but steadily. */
	assert_int_equal(read_out(f, dst, big), big);
	assert_memory_equal(dst, src, big);
	assert_true(wait_used(&f->tx, NULL, NULL, WAIT_MS));
	free(src);
	free(dst);
}

/*
 * The backpressure tests: CHAINS chains of CHAIN bytes (300 KiB), far more than the 4 KiB
 * pipe, whose reader reads nothing for a while. Every other chain is an indirect table of two
 * segments, so that all of them fit the RING descriptors at once.
 */
#define CHAINS 12
#define CHAIN  (25 * 1024)

static char *bp_pattern(size_t len)
{
	char *p = malloc(len);

	assert_non_null(p);
	/* Pseudo-random bytes: a lost, doubled or reordered piece shows in the comparison. */
	uint32_t x = 0x9e3779b9u;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (char)(x >> 24);
	}
	return p;
}

/* Publish CHAINS chains carrying src, return their heads. */
static void bp_post(struct fixture *f, const char *src, uint16_t *heads)
{
	for (unsigned int i = 0; i < CHAINS; i++) {
		uint64_t gpa = fake_vring_alloc(&f->tx, CHAIN);

		assert_true(gpa != 0);
		memcpy(fake_vring_host(&f->tx, gpa, CHAIN), src + (size_t)i * CHAIN, CHAIN);
		struct fake_seg segs[2] = {
			{.gpa = gpa, .len = CHAIN / 3},
			{.gpa = gpa + CHAIN / 3, .len = CHAIN - CHAIN / 3},
		};
		if (i % 2)
			segs[0].len = CHAIN;
		heads[i] = i % 2 ? fake_vring_add_chain(&f->tx, segs, 1)
				 : fake_vring_add_indirect(&f->tx, segs, 2);
		fake_vring_publish(&f->tx, heads[i]);
	}
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
}

/* Bytes waiting in the pipe. */
static int pipe_queued(struct fixture *f)
{
	int n = -1;

	assert_int_equal(ioctl(f->pipe_fd[0], FIONREAD, &n), 0);
	return n;
}

/*
 * Wait until the device stopped writing: the pipe holds something and no more comes for
 * 150 ms (the old code gave up after 100 ms). It need not be byte-full: a pipe stops polling
 * writable once its pages are in use, however much they hold. Returns the bytes queued.
 */
static size_t bp_wait_stalled(struct fixture *f)
{
	int64_t end = test_now_ms() + WAIT_MS;
	int last = -1, n;

	for (;;) {
		n = pipe_queued(f);
		if (n > 0 && n == last)
			break;
		assert_true(test_now_ms() < end);
		last = n;
		usleep(150 * 1000);
	}
	return (size_t)n;
}

static void bp_setup(struct fixture *f)
{
	int pipe_size = fcntl(f->pipe_fd[1], F_SETPIPE_SZ, 4096);

	assert_true(pipe_size >= 4096 && pipe_size < CHAIN / 4);
	/* A large buffer region for 300 KiB of chains (RAM is 1 MiB). */
	fake_vring_init(&f->tx, &f->gm, 0x40000, 0x80000, RING);
	driver_init(f, base_features | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	mmio_irq_take(f->t, 0);
}

static void test_tx_backpressure(void **state)
{
	struct fixture *f = *state;
	size_t total = (size_t)CHAINS * CHAIN;
	char *src = bp_pattern(total), *dst = malloc(total);
	uint16_t heads[CHAINS];
	uint32_t id, len;

	assert_non_null(dst);
	virtio_console_set_rx_ready_cb(f->con, rx_ready_cb, f);
	bp_setup(f);
	bp_post(f, src, heads);

	/* The device fills the pipe and stops; nothing is dropped well past 100 ms either. */
	size_t queued = bp_wait_stalled(f);
	usleep(400 * 1000);
	assert_int_equal(pipe_queued(f), queued);
	/* No chain completed (the first alone is larger than the pipe): all stay with the guest. */
	assert_false(fake_vring_get_used(&f->tx, NULL, NULL));

	/* Stalled output holds neither the I/O thread nor the device lock. */
	unsigned int calls = rx_ready_calls(f);
	assert_int_equal(virtio_console_receive(f->con, (const uint8_t *)"k", 1), 0);
	struct fake_seg rb = rx_seg(f, 8);
	post_rx(f, &rb);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
	assert_true(wait_rx_ready(f, calls + 1));
	assert_int_equal(virtio_console_receive(f->con, (const uint8_t *)"k", 1), 1);
	/* Nor does a guest kick on the transmitq do any harm meanwhile. */
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);

	/* Drain a part: the device goes on from where it stopped, and stalls again. */
	size_t got = read_out(f, dst, queued);
	assert_int_equal(got, queued);
	queued = bp_wait_stalled(f);
	assert_true(got + queued < CHAIN);
	assert_false(fake_vring_get_used(&f->tx, NULL, NULL));

	/* Now read everything: every byte arrives, in order, nothing doubled. */
	got += read_out(f, dst + got, total - got);
	assert_int_equal(got, total);
	assert_memory_equal(dst, src, total);
	assert_true(out_is_empty(f, 50));
	for (unsigned int i = 0; i < CHAINS; i++) {
		assert_true(wait_used(&f->tx, &id, &len, WAIT_MS));
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, 0);
	}
	assert_true(mmio_irq_take(f->t, WAIT_MS) >= 1);

	/* Back to normal: a new chain goes straight out. */
	struct fake_seg s = tx_seg(f, "after\n");
	uint16_t h = fake_vring_add_chain(&f->tx, &s, 1);
	fake_vring_publish(&f->tx, h);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	char out[6];
	assert_int_equal(read_out(f, out, 6), 6);
	assert_memory_equal(out, "after\n", 6);
	assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_int_equal(id, h);
	free(src);
	free(dst);
}

static void test_tx_reset_while_stalled(void **state)
{
	struct fixture *f = *state;
	size_t total = (size_t)CHAINS * CHAIN;
	char *src = bp_pattern(total), *dst = malloc(total);
	uint16_t heads[CHAINS];

	assert_non_null(dst);
	bp_setup(f);
	bp_post(f, src, heads);
	size_t queued = bp_wait_stalled(f);

	/* The driver resets the device (a reboot, a module reload) while output is stuck. */
	fake_vring_init(&f->tx, &f->gm, 0x20000, 0x10000, RING);
	fake_vring_init(&f->rx, &f->gm, 0x10000, 0x10000, RING);
	driver_init(f, base_features);
	assert_false(fake_vring_get_used(&f->tx, NULL, NULL));

	/* What was written before the reset is there, and is the start of the old output. */
	size_t got = read_out(f, dst, queued);
	assert_int_equal(got, queued);
	assert_memory_equal(dst, src, got);
	/* The rest of the old chain is forgotten: with the pipe writable, nothing more comes. */
	assert_true(out_is_empty(f, 200));

	/* The new driver's output flows, stalls and resumes like any other. */
	struct fake_seg s = tx_seg(f, "new driver\n");
	uint16_t h = fake_vring_add_chain(&f->tx, &s, 1);
	fake_vring_publish(&f->tx, h);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	char out[11];
	assert_int_equal(read_out(f, out, 11), 11);
	assert_memory_equal(out, "new driver\n", 11);
	uint32_t id;
	assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_int_equal(id, h);

	/* A reset while stalled, then the device is torn down while still stalled (teardown). */
	fake_vring_init(&f->tx, &f->gm, 0x40000, 0x80000, RING);
	driver_init(f, base_features | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	bp_post(f, src, heads);
	bp_wait_stalled(f);
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0);
	fake_vring_init(&f->tx, &f->gm, 0x40000, 0x80000, RING);
	driver_init(f, base_features | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC));
	bp_post(f, src, heads);
	free(src);
	free(dst);
}

/*
 * The transmitq taken down and set up again (QueueReady 0, then 1 on the same, cleared ring)
 * while a chain waits for the output: that chain belongs to the old ring, so once the output
 * drains nothing of it may complete into the new one (its head would complete a buffer the
 * driver posts later), and the rest of it is not written. Found by the micro-guest's
 * vcon-stall case: the stuck chain came back as used element 0 of the re-enabled queue.
 */
static void test_tx_queue_ready_toggle_while_stalled(void **state)
{
	struct fixture *f = *state;
	size_t total = (size_t)CHAINS * CHAIN;
	char *src = bp_pattern(total), *dst = malloc(total);
	uint16_t heads[CHAINS];
	uint32_t id;

	assert_non_null(dst);
	bp_setup(f);
	bp_post(f, src, heads);
	size_t queued = bp_wait_stalled(f);

	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_SEL, TXQ);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_READY, 0);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 0);
	fake_vring_init(&f->tx, &f->gm, 0x40000, 0x80000, RING);
	mmio_queue_setup_ring(f->t, TXQ, &f->tx);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_QUEUE_READY), 1);

	/* The reader drains what was written: the output is writable again. */
	assert_int_equal(read_out(f, dst, queued), queued);
	assert_memory_equal(dst, src, queued);
	assert_true(out_is_empty(f, 200));
	assert_false(fake_vring_get_used(&f->tx, NULL, NULL));
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);

	/* The re-enabled queue works from its own first buffer on. */
	struct fake_seg s = tx_seg(f, "toggled\n");
	uint16_t h = fake_vring_add_chain(&f->tx, &s, 1);
	fake_vring_publish(&f->tx, h);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	char out[8];
	assert_int_equal(read_out(f, out, 8), 8);
	assert_memory_equal(out, "toggled\n", 8);
	assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_int_equal(id, h);
	assert_false(fake_vring_get_used(&f->tx, NULL, NULL));
	free(src);
	free(dst);
}

static void test_tx_reader_gone(void **state)
{
	struct fixture *f = *state;
	size_t total = (size_t)CHAINS * CHAIN;
	char *src = bp_pattern(total), *dst = malloc(total);
	uint16_t heads[CHAINS];
	uint32_t id, len;

	assert_non_null(dst);
	bp_setup(f);
	bp_post(f, src, heads);
	size_t queued = bp_wait_stalled(f);
	assert_int_equal(read_out(f, dst, queued), queued);
	assert_memory_equal(dst, src, queued);
	bp_wait_stalled(f);

	/* The reader goes away while output waits: EPIPE, the output is discarded from now on. */
	close(f->pipe_fd[0]);
	f->pipe_fd[0] = -1;
	for (unsigned int i = 0; i < CHAINS; i++) {
		assert_true(wait_used(&f->tx, &id, &len, WAIT_MS));
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, 0);
	}
	assert_true(mmio_irq_take(f->t, WAIT_MS) >= 1);
	/* Later output completes too, and the device stays healthy. */
	struct fake_seg s = tx_seg(f, "lost");
	uint16_t h = fake_vring_add_chain(&f->tx, &s, 1);
	fake_vring_publish(&f->tx, h);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	assert_true(wait_used(&f->tx, &id, NULL, WAIT_MS));
	assert_int_equal(id, h);
	uint8_t b[4] = {'E', 0, 0, 0};
	virtio_mmio_io(f->t, VIRTIO_MMIO_CONFIG + CFG_EMERG_WR, b, 4, true);
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	free(src);
	free(dst);
}

static void test_tx_malformed(void **state)
{
	struct fixture *f = *state;
	char out[16];
	uint32_t id, len;

	driver_init(f, base_features);

	/* A writable segment in a transmit chain: completed, not printed. */
	struct fake_seg bad[2] = {
		tx_seg(f, "secret"),
		{.gpa = fake_vring_alloc(&f->tx, 8), .len = 8, .write = true},
	};
	uint16_t h1 = fake_vring_add_chain(&f->tx, bad, 2);
	/* A descriptor pointing outside guest RAM. */
	uint16_t h2 = f->tx.next_desc;
	fake_vring_set_desc(&f->tx, h2, RAM_SIZE - 4, 64, 0, 0);
	f->tx.next_desc = (uint16_t)(h2 + 1);
	/* A chain whose next points back at itself (a cycle). */
	uint16_t h3 = f->tx.next_desc;
	struct fake_seg loop_seg = tx_seg(f, "loop");
	fake_vring_set_desc(&f->tx, h3, loop_seg.gpa, loop_seg.len, VRING_DESC_F_NEXT, h3);
	f->tx.next_desc = (uint16_t)(h3 + 1);
	/* And a good one after them. */
	struct fake_seg good = tx_seg(f, "ok\n");
	uint16_t h4 = fake_vring_add_chain(&f->tx, &good, 1);

	fake_vring_publish(&f->tx, h1);
	fake_vring_publish(&f->tx, h2);
	fake_vring_publish(&f->tx, h3);
	fake_vring_publish(&f->tx, h4);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);

	const uint16_t heads[] = {h1, h2, h3, h4};
	for (size_t i = 0; i < ARRAY_SIZE(heads); i++) {
		assert_true(wait_used(&f->tx, &id, &len, WAIT_MS));
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, 0);
	}
	assert_int_equal(read_out(f, out, 3), 3);
	assert_memory_equal(out, "ok\n", 3);
	assert_true(out_is_empty(f, 50));
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(f->vdev->malformed >= 3);
}

static void test_tx_ring_error(void **state)
{
	struct fixture *f = *state;

	driver_init(f, base_features);
	mmio_irq_take(f->t, 0);
	/* The avail index jumps by more than the ring size: the ring is broken (§2.7). */
	fake_vring_set_avail_idx(&f->tx, RING + 5);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	int64_t end = test_now_ms() + WAIT_MS;
	while (!(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET) &&
	       test_now_ms() < end)
		usleep(1000);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	assert_true(mmio_irq_take(f->t, WAIT_MS) >= 1);
	assert_true(out_is_empty(f, 0));
	/* The receive side is stopped too. */
	struct fake_seg rb = rx_seg(f, 8);
	post_rx(f, &rb);
	assert_int_equal(virtio_console_receive(f->con, (const uint8_t *)"x", 1), 0);

	/* A reset brings it back. */
	fake_vring_init(&f->tx, &f->gm, 0x20000, 0x10000, RING);
	fake_vring_init(&f->rx, &f->gm, 0x10000, 0x10000, RING);
	driver_init(f, base_features);
	struct fake_seg s = tx_seg(f, "back");
	fake_vring_publish(&f->tx, fake_vring_add_chain(&f->tx, &s, 1));
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, TXQ);
	char out[4];
	assert_int_equal(read_out(f, out, 4), 4);
	assert_memory_equal(out, "back", 4);
}

/* ---- receive ---- */

static void test_rx(void **state)
{
	struct fixture *f = *state;
	const uint8_t msg[] = "abcdefghijklmno"; /* 15 bytes */
	uint32_t id, len;

	virtio_console_set_rx_ready_cb(f->con, rx_ready_cb, f);
	/* Before the driver is up nothing is taken. */
	assert_int_equal(virtio_console_receive(f->con, msg, 15), 0);
	driver_init(f, base_features);
	/* Up, but no buffers posted: still nothing, and no spurious wake-up. */
	assert_int_equal(virtio_console_receive(f->con, msg, 15), 0);
	usleep(50 * 1000);
	unsigned int calls = rx_ready_calls(f);

	/* The guest posts two buffers and kicks: the host hears it may send again. */
	struct fake_seg b1 = rx_seg(f, 4), b2 = rx_seg(f, 8);
	uint16_t h1 = fake_vring_add_chain(&f->rx, &b1, 1);
	uint16_t h2 = fake_vring_add_chain(&f->rx, &b2, 1);
	fake_vring_publish(&f->rx, h1);
	fake_vring_publish(&f->rx, h2);
	mmio_irq_take(f->t, 0);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
	assert_true(wait_rx_ready(f, calls + 1));

	/* 12 of the 15 bytes fit. */
	assert_int_equal(virtio_console_receive(f->con, msg, 15), 12);
	assert_true(fake_vring_get_used(&f->rx, &id, &len));
	assert_int_equal(id, h1);
	assert_int_equal(len, 4);
	assert_true(fake_vring_get_used(&f->rx, &id, &len));
	assert_int_equal(id, h2);
	assert_int_equal(len, 8);
	assert_false(fake_vring_get_used(&f->rx, NULL, NULL));
	assert_memory_equal(fake_vring_host(&f->rx, b1.gpa, 4), "abcd", 4);
	assert_memory_equal(fake_vring_host(&f->rx, b2.gpa, 8), "efghijkl", 8);
	assert_true(mmio_irq_take(f->t, WAIT_MS) >= 1);
	assert_true(mmio_rd(f->t, VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_USED);

	/*
	 * Short receive: the next buffer wakes the host again, and the callback may hand the
	 * rest over right away (it runs without the device lock).
	 */
	pthread_mutex_lock(&f->mu);
	f->cb_data = msg + 12;
	f->cb_len = 3;
	pthread_mutex_unlock(&f->mu);
	struct fake_seg b3 = rx_seg(f, 16);
	uint16_t h3 = fake_vring_add_chain(&f->rx, &b3, 1);
	fake_vring_publish(&f->rx, h3);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
	assert_true(wait_rx_ready(f, calls + 2));
	assert_int_equal(f->cb_received, 3);
	assert_true(fake_vring_get_used(&f->rx, &id, &len));
	assert_int_equal(id, h3);
	assert_int_equal(len, 3);
	assert_memory_equal(fake_vring_host(&f->rx, b3.gpa, 4), "mno.", 4);

	/* Everything was taken: a further kick does not call back. */
	struct fake_seg b4 = rx_seg(f, 16);
	fake_vring_publish(&f->rx, fake_vring_add_chain(&f->rx, &b4, 1));
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
	usleep(100 * 1000);
	assert_int_equal(rx_ready_calls(f), calls + 2);
}

static void test_rx_buffers_posted_before_driver_ok(void **state)
{
	struct fixture *f = *state;

	virtio_console_set_rx_ready_cb(f->con, rx_ready_cb, f);
	/* Host input waits while the guest boots. */
	assert_int_equal(virtio_console_receive(f->con, (const uint8_t *)"hi", 2), 0);

	/* A driver that posts and kicks before DRIVER_OK (the kick is dropped)... */
	assert_true(mmio_negotiate(f->t, base_features) & VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, RXQ, &f->rx);
	mmio_queue_setup_ring(f->t, TXQ, &f->tx);
	struct fake_seg b = rx_seg(f, 8);
	post_rx(f, &b);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, RXQ);
	/* ...still wakes the host input once it is live. */
	mmio_driver_ok(f->t);
	assert_true(wait_rx_ready(f, 1));
	assert_int_equal(virtio_console_receive(f->con, (const uint8_t *)"hi", 2), 2);
	assert_memory_equal(fake_vring_host(&f->rx, b.gpa, 2), "hi", 2);
}

static void test_rx_malformed(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;

	driver_init(f, base_features);
	/* A receive buffer the device may only read: completed empty, skipped. */
	struct fake_seg ro = {.gpa = fake_vring_alloc(&f->rx, 8), .len = 8, .write = false};
	uint16_t h1 = fake_vring_add_chain(&f->rx, &ro, 1);
	/* A writable buffer that runs past the end of RAM. */
	uint16_t h2 = f->rx.next_desc;
	fake_vring_set_desc(&f->rx, h2, RAM_SIZE - 2, 8, VRING_DESC_F_WRITE, 0);
	f->rx.next_desc = (uint16_t)(h2 + 1);
	struct fake_seg ok = rx_seg(f, 8);
	uint16_t h3 = fake_vring_add_chain(&f->rx, &ok, 1);
	fake_vring_publish(&f->rx, h1);
	fake_vring_publish(&f->rx, h2);
	fake_vring_publish(&f->rx, h3);

	assert_int_equal(virtio_console_receive(f->con, (const uint8_t *)"data", 4), 4);
	assert_true(fake_vring_get_used(&f->rx, &id, &len));
	assert_int_equal(id, h1);
	assert_int_equal(len, 0);
	assert_true(fake_vring_get_used(&f->rx, &id, &len));
	assert_int_equal(id, h2);
	assert_int_equal(len, 0);
	assert_true(fake_vring_get_used(&f->rx, &id, &len));
	assert_int_equal(id, h3);
	assert_int_equal(len, 4);
	assert_memory_equal(fake_vring_host(&f->rx, ok.gpa, 5), "data.", 5);
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_and_features, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_emergency_write, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_large_through_slow_pipe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_reset_while_stalled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_queue_ready_toggle_while_stalled, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tx_reader_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tx_ring_error, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rx_buffers_posted_before_driver_ok, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rx_malformed, setup, teardown),
	};

	/* As vmm/main.c: a vanished reader is an EPIPE, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
