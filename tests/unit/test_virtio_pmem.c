// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-pmem (virtio 1.2 §5.19) behind the virtio-mmio transport, driven as a guest would:
 * its config space says where the memory is, a flush request syncs the file (asynchronously,
 * through io_uring: flushes that come while one runs wait for the next, a pause and a reset
 * wait for the one in flight), and malformed requests are answered without touching anything
 * outside guest RAM.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_mmio_driver.h"
#include "fake_vring.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/virtio_mmio.h"
#include "vmm/virtio_plug.h"
#include "vmm/virtio_pmem.h"

#define RAM_SIZE (1 * MiB)
#define REQQ	 0
#define RING	 16
#define WAIT_MS	 2000
#define START	 (8ULL << 30)
#define SIZE	 (64ULL << 20)

struct fixture {
	struct guest_mem gm;
	struct ev_loop *loop;
	struct virtio_pmem *pmem;
	struct virtio_mmio *t;
	struct fake_vring q;
	FILE *file;
};

/* fd -1: the fixture's tmpfile; else that file (not owned). */
static struct fixture *fixture_fd(bool read_only, int fd)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_non_null(f->file = tmpfile());
	assert_int_equal(gm_create(&f->gm, RAM_SIZE), 0);
	assert_int_equal(ev_loop_create(&f->loop, THREAD_IO), 0);
	assert_int_equal(ev_loop_start(f->loop), 0);
	assert_int_equal(virtio_pmem_create(&f->pmem, &f->gm, f->loop,
					    fd < 0 ? fileno(f->file) : fd, START, SIZE, read_only),
			 0);
	struct virtio_mmio_config cfg = {.base = 0xd0000000ULL, .gsi = 16, .loop = f->loop};
	assert_int_equal(virtio_mmio_create(&f->t, virtio_pmem_device(f->pmem), &cfg), 0);
	fake_vring_init(&f->q, &f->gm, 0x10000, 0x10000, RING);
	return f;
}

static struct fixture *fixture_new(bool read_only)
{
	return fixture_fd(read_only, -1);
}

static int setup(void **state)
{
	*state = fixture_new(false);
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_mmio_destroy(f->t);
	virtio_pmem_destroy(f->pmem);
	ev_loop_destroy(f->loop);
	gm_destroy(&f->gm);
	fclose(f->file);
	free(f);
	return 0;
}

static void driver_init(struct fixture *f)
{
	assert_true(mmio_negotiate(f->t, VIRTIO_BIT(VIRTIO_F_VERSION_1)) &
		    VIRTIO_STATUS_FEATURES_OK);
	mmio_queue_setup_ring(f->t, REQQ, &f->q);
	mmio_driver_ok(f->t);
}

/* A request: type (readable), then a 4-byte answer (writable) prefilled with 0xff. */
static uint16_t request(struct fixture *f, uint32_t type, uint64_t *resp)
{
	uint64_t req = fake_vring_alloc(&f->q, 4), ans = fake_vring_alloc(&f->q, 4);

	memcpy(fake_vring_host(&f->q, req, 4), &type, 4);
	memset(fake_vring_host(&f->q, ans, 4), 0xff, 4);
	struct fake_seg segs[2] = {{.gpa = req, .len = 4}, {.gpa = ans, .len = 4, .write = true}};
	uint16_t head = fake_vring_add_chain(&f->q, segs, 2);

	fake_vring_publish(&f->q, head);
	*resp = ans;
	return head;
}

static uint32_t answer(struct fixture *f, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, fake_vring_host(&f->q, gpa, 4), 4);
	return v;
}

static void test_identity_and_config(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_PMEM);
	assert_int_equal(mmio_cfg_rd(f->t, 0, 8), START);
	assert_int_equal(mmio_cfg_rd(f->t, 8, 8), SIZE);
	assert_int_equal(mmio_cfg_rd(f->t, 8, 4), (uint32_t)SIZE);
	assert_int_equal(mmio_cfg_rd(f->t, 4, 4), (uint32_t)(START >> 32));
}

/* A flush syncs the file and answers 0; data written through a mapping is then on disk. */
static void test_flush(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;
	uint64_t ans;
	char stats[96];

	driver_init(f);
	fputs("data", f->file);
	fflush(f->file);
	uint16_t h = request(f, VIRTIO_PMEM_REQ_TYPE_FLUSH, &ans);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, REQQ);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h);
	assert_int_equal(len, 4);
	assert_int_equal(answer(f, ans), 0);
	virtio_pmem_stats(f->pmem, stats, sizeof(stats));
	assert_non_null(strstr(stats, "flushes=1 flush_errors=0 malformed=0"));
}

/* An unknown type is answered non-zero; a chain without room for the answer, or with no
 * request, completes empty; a buffer outside RAM too. The device goes on. */
static void test_malformed(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;
	uint64_t ans;
	char stats[96];

	driver_init(f);
	uint16_t h1 = request(f, 7, &ans);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, REQQ);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h1);
	assert_int_equal(len, 4);
	assert_int_not_equal(answer(f, ans), 0);

	uint64_t req = fake_vring_alloc(&f->q, 4);
	struct fake_seg only_req = {.gpa = req, .len = 4};
	uint16_t h2 = fake_vring_add_chain(&f->q, &only_req, 1);
	fake_vring_publish(&f->q, h2);
	struct fake_seg only_ans = {.gpa = req, .len = 4, .write = true};
	uint16_t h3 = fake_vring_add_chain(&f->q, &only_ans, 1);
	fake_vring_publish(&f->q, h3);
	struct fake_seg outside[2] = {{.gpa = RAM_SIZE - 2, .len = 4},
				      {.gpa = req, .len = 4, .write = true}};
	uint16_t h4 = fake_vring_add_chain(&f->q, outside, 2);
	fake_vring_publish(&f->q, h4);
	uint16_t h5 = request(f, VIRTIO_PMEM_REQ_TYPE_FLUSH, &ans);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, REQQ);
	for (uint16_t want = h2; want <= h4; want++) {
		assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
		assert_int_equal(len, 0);
	}
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h5);
	assert_int_equal(answer(f, ans), 0);
	virtio_pmem_stats(f->pmem, stats, sizeof(stats));
	assert_non_null(strstr(stats, "malformed=4"));
	assert_false(mmio_rd(f->t, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
}

/* Flushes kicked one after the other, some while another runs: each is answered 0, in order. */
static void test_flushes_in_a_row(void **state)
{
	struct fixture *f = *state;
	uint64_t ans[8];
	uint16_t head[8];
	uint32_t id, len;
	char stats[96];

	driver_init(f);
	for (int i = 0; i < 8; i++) {
		fputs("more data", f->file);
		fflush(f->file);
		head[i] = request(f, VIRTIO_PMEM_REQ_TYPE_FLUSH, &ans[i]);
		mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, REQQ);
	}
	for (int i = 0; i < 8; i++) {
		assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
		assert_int_equal(id, head[i]);
		assert_int_equal(answer(f, ans[i]), 0);
	}
	virtio_pmem_stats(f->pmem, stats, sizeof(stats));
	assert_non_null(strstr(stats, "flushes=8 flush_errors=0"));
}

/* A file that cannot be synced (a pipe: EINVAL): the flush is answered non-zero and counted. */
static void test_flush_error(void **state)
{
	(void)state;
	int pfd[2];

	assert_int_equal(pipe(pfd), 0);
	struct fixture *f = fixture_fd(false, pfd[0]);
	uint32_t id, len;
	uint64_t ans;
	char stats[96];

	driver_init(f);
	request(f, VIRTIO_PMEM_REQ_TYPE_FLUSH, &ans);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, REQQ);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(len, 4);
	assert_int_not_equal(answer(f, ans), 0);
	virtio_pmem_stats(f->pmem, stats, sizeof(stats));
	assert_non_null(strstr(stats, "flushes=1 flush_errors=1"));
	void *p = f;
	teardown(&p);
	close(pfd[0]);
	close(pfd[1]);
}

/* The queue's kick as the I/O thread delivers it, taken before this returns (a kick written
 * to the register only reaches the I/O thread some time later). */
static void kick_now_cb(void *opaque)
{
	struct virtio_device *vdev = opaque;

	pthread_mutex_lock(&vdev->lock);
	vdev->ops->queue_notify(vdev, REQQ);
	pthread_mutex_unlock(&vdev->lock);
}

static void kick_now(struct fixture *f)
{
	ev_loop_call_sync(f->loop, kick_now_cb, virtio_pmem_device(f->pmem));
}

/* A pause right after a flush was taken: when the quiesce returns, it has been answered (a
 * flush in flight is waited for); nothing is taken while paused, and the resume serves what
 * came meanwhile. */
static void test_quiesce_answers_the_flush(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;
	uint64_t ans, ans2;

	driver_init(f);
	uint16_t h = request(f, VIRTIO_PMEM_REQ_TYPE_FLUSH, &ans);
	kick_now(f);
	struct virtio_plug plug = {.vdev = virtio_pmem_device(f->pmem), .loop = f->loop};
	assert_int_equal(virtio_plug_quiesce(&plug), 0);
	assert_true(wait_used(&f->q, &id, &len, 0));
	assert_int_equal(id, h);
	assert_int_equal(answer(f, ans), 0);
	uint16_t h2 = request(f, VIRTIO_PMEM_REQ_TYPE_FLUSH, &ans2);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, REQQ);
	assert_false(wait_used(&f->q, &id, &len, 200));
	virtio_plug_resume(&plug);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h2);
	assert_int_equal(answer(f, ans2), 0);
}

/* A reset right after a flush was taken: the flush (in flight or not) ends, and the device
 * works again after a new setup. */
static void test_reset_with_flush(void **state)
{
	struct fixture *f = *state;
	uint32_t id, len;
	uint64_t ans;

	driver_init(f);
	request(f, VIRTIO_PMEM_REQ_TYPE_FLUSH, &ans);
	kick_now(f);
	mmio_wr(f->t, VIRTIO_MMIO_STATUS, 0);
	assert_int_equal(mmio_rd(f->t, VIRTIO_MMIO_STATUS), 0);
	fake_vring_init(&f->q, &f->gm, 0x10000, 0x10000, RING);
	driver_init(f);
	uint16_t h = request(f, VIRTIO_PMEM_REQ_TYPE_FLUSH, &ans);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, REQQ);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(id, h);
	assert_int_equal(answer(f, ans), 0);
}

/* Read-only: nothing to write back, the flush succeeds without touching the file. */
static void test_read_only_flush(void **state)
{
	(void)state;
	struct fixture *f = fixture_new(true);
	uint32_t id, len;
	uint64_t ans;

	driver_init(f);
	request(f, VIRTIO_PMEM_REQ_TYPE_FLUSH, &ans);
	mmio_wr(f->t, VIRTIO_MMIO_QUEUE_NOTIFY, REQQ);
	assert_true(wait_used(&f->q, &id, &len, WAIT_MS));
	assert_int_equal(answer(f, ans), 0);
	void *p = f;
	teardown(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_and_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flushes_in_a_row, setup, teardown),
		cmocka_unit_test(test_flush_error),
		cmocka_unit_test_setup_teardown(test_quiesce_answers_the_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_with_flush, setup, teardown),
		cmocka_unit_test(test_read_only_flush),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
