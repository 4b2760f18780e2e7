// SPDX-License-Identifier: Apache-2.0
/*
 * Block backends: one table of I/O cases, run against the engine named by argv[1] ("uring",
 * "aio", "sync") on a temp file in /var/tmp (a real filesystem: tmpfs lacks O_DIRECT before
 * Linux 6.6), once buffered and once with O_DIRECT. Every result is checked against the file
 * as read through a second, independent buffered fd. Then the image tests: locking, errors
 * for missing, unreadable and wrong-kind paths, O_DIRECT refusal.
 *
 * io_uring is not optional here: this host supports it, so a failing setup fails the test.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/blk_backend.h"

#define IMG_SIZE (4 * MiB)
#define SEED_BG	 0 /* what every fresh image holds */
#define MAX_SEGS 16
#define DEPTH	 64
#define WAIT_MS	 10000

static enum blk_engine engine;

/* ---- data patterns: a byte is a function of its file offset and a seed ---- */

static uint8_t pat(uint64_t off, unsigned int seed)
{
	uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ULL + seed * 0xBF58476D1CE4E5B9ULL;

	x ^= x >> 29;
	x *= 0x94D049BB133111EBULL;
	return (uint8_t)(x >> 32);
}

static void pat_fill(uint8_t *buf, uint64_t off, uint64_t len, unsigned int seed)
{
	for (uint64_t i = 0; i < len; i++)
		buf[i] = pat(off + i, seed);
}

/* ---- the fixture: an image, a backend on it, and an independent reader ---- */

struct fx {
	bool direct;
	char path[80];
	struct blk_image img;
	struct blk_backend *b;
	int rfd;
};

struct mode {
	bool direct;
};
static struct mode mode_buffered = {false}, mode_direct = {true};

static void fx_backend(struct fx *f, unsigned int depth)
{
	struct blk_backend_config cfg = {
		.depth = depth,
		.direct = f->img.direct,
		.dio_align = f->img.dio_align,
	};
	int r = blk_backend_open(engine, f->img.fd, &cfg, &f->b);

	if (r)
		print_error("blk_backend_open(%s): %s\n", blk_engine_name(engine), strerror(-r));
	assert_int_equal(r, 0);
	assert_int_equal(blk_backend_engine(f->b), engine);
}

static void fx_free(struct fx *f)
{
	if (!f)
		return;
	blk_backend_close(f->b);
	blk_image_close(&f->img);
	if (f->rfd >= 0)
		close(f->rfd);
	unlink(f->path);
	free(f);
}

/*
 * A size-byte image in dir filled with the background pattern. -errno if dir cannot hold one
 * (O_DIRECT refused), so callers can skip.
 */
static int fx_make(const char *dir, bool direct, uint64_t size, struct fx **out)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];
	uint8_t *buf;
	int fd, r;

	assert_non_null(f);
	f->rfd = -1;
	f->direct = direct;
	snprintf(f->path, sizeof(f->path), "%s/vmm-test-blk-XXXXXX", dir);
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	buf = malloc(MiB);
	assert_non_null(buf);
	for (uint64_t off = 0; off < size; off += MiB) {
		uint64_t n = MIN(MiB, size - off);

		pat_fill(buf, off, n, SEED_BG);
		assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	}
	free(buf);
	close(fd);

	r = blk_image_open(&f->img, f->path, false, direct ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK,
			   err, sizeof(err));
	if (r) {
		unlink(f->path);
		free(f);
		return r;
	}
	f->rfd = open(f->path, O_RDONLY | O_CLOEXEC);
	assert_true(f->rfd >= 0);
	fx_backend(f, DEPTH);
	*out = f;
	return 0;
}

static int fx_setup(void **state)
{
	const struct mode *m = *state;
	struct fx *f = NULL;
	int r = fx_make("/var/tmp", m->direct, IMG_SIZE, &f);

	if (r)
		print_error("image in /var/tmp: %s\n", strerror(-r));
	assert_int_equal(r, 0);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	fx_free(*state);
	return 0;
}

/* ---- requests and completions ---- */

struct segs {
	struct iovec iov[MAX_SEGS];
	unsigned int cnt;
	uint64_t len;
	uint8_t *mem;
};

/* Segments of the given lengths, each in its own page, starting misalign bytes into it. */
static void segs_make(struct segs *s, const size_t *lens, unsigned int cnt, size_t misalign)
{
	size_t total = 4096, pos = 0;

	assert_true(cnt <= MAX_SEGS);
	for (unsigned int i = 0; i < cnt; i++)
		total += ALIGN_UP(lens[i] + misalign, (size_t)4096);
	assert_int_equal(posix_memalign((void **)&s->mem, 4096, total), 0);
	memset(s->mem, 0xEE, total);
	s->cnt = cnt;
	s->len = 0;
	for (unsigned int i = 0; i < cnt; i++) {
		s->iov[i].iov_base = s->mem + pos + misalign;
		s->iov[i].iov_len = lens[i];
		s->len += lens[i];
		pos += ALIGN_UP(lens[i] + misalign, (size_t)4096);
	}
}

static void segs_fill(struct segs *s, uint64_t off, unsigned int seed)
{
	for (unsigned int i = 0; i < s->cnt; i++) {
		pat_fill(s->iov[i].iov_base, off, s->iov[i].iov_len, seed);
		off += s->iov[i].iov_len;
	}
}

/* The first n bytes of s against what the file holds at off (read through the other fd). */
static void segs_check_file(struct fx *f, struct segs *s, uint64_t off, uint64_t n)
{
	uint8_t *want = malloc(n + 1);

	assert_non_null(want);
	assert_int_equal(pread(f->rfd, want, n, (off_t)off), (ssize_t)n);
	for (unsigned int i = 0; i < s->cnt && n; i++) {
		uint64_t l = MIN(s->iov[i].iov_len, n);

		assert_memory_equal(s->iov[i].iov_base, want, l);
		memmove(want, want + l, n - l);
		n -= l;
	}
	free(want);
}

static void segs_free(struct segs *s)
{
	free(s->mem);
	s->mem = NULL;
}

/* The file at off holds pattern seed (seed < 0: zeroes). */
static void check_file(struct fx *f, uint64_t off, uint64_t len, int seed)
{
	uint8_t *got = malloc(len), *want = malloc(len);

	assert_non_null(got);
	assert_non_null(want);
	assert_int_equal(pread(f->rfd, got, len, (off_t)off), (ssize_t)len);
	if (seed < 0)
		memset(want, 0, len);
	else
		pat_fill(want, off, len, (unsigned int)seed);
	assert_memory_equal(got, want, len);
	free(got);
	free(want);
}

static uint64_t file_size(struct fx *f)
{
	struct stat st;

	assert_int_equal(fstat(f->rfd, &st), 0);
	return (uint64_t)st.st_size;
}

struct treq {
	struct blk_req r;
	int done;	    /* times the callback saw it */
	unsigned int order; /* completion order */
};

struct tally {
	unsigned int n;
};

static void on_done(void *opaque, struct blk_req *req)
{
	struct tally *t = opaque;
	struct treq *tr = req->opaque;

	assert_ptr_equal(&tr->r, req);
	tr->done++;
	tr->order = t->n++;
}

static void treq_rw(struct treq *t, enum blk_op op, uint64_t off, struct segs *s)
{
	memset(t, 0, sizeof(*t));
	t->r.op = op;
	t->r.offset = off;
	t->r.iov = s->iov;
	t->r.iovcnt = s->cnt;
	t->r.len = s->len;
	t->r.opaque = t;
	t->r.result = INT64_MIN;
}

static void treq_range(struct treq *t, enum blk_op op, uint64_t off, uint64_t len, bool unmap)
{
	memset(t, 0, sizeof(*t));
	t->r.op = op;
	t->r.offset = off;
	t->r.len = len;
	t->r.unmap = unmap;
	t->r.opaque = t;
	t->r.result = INT64_MIN;
}

/* Reap until the tally reaches target, waiting on the eventfd (never spinning). */
static void wait_n(struct fx *f, struct tally *t, unsigned int target)
{
	while (t->n < target) {
		struct pollfd p = {.fd = blk_backend_event_fd(f->b), .events = POLLIN};
		int r = poll(&p, 1, WAIT_MS);

		if (r < 0 && errno == EINTR)
			continue;
		assert_int_equal(r, 1); /* 0: a completion never signalled the eventfd */
		blk_backend_reap(f->b, on_done, t);
	}
}

static int64_t run1(struct fx *f, struct treq *t)
{
	struct tally tl = {0};

	assert_int_equal(blk_backend_submit(f->b, &t->r), 0);
	blk_backend_kick(f->b);
	wait_n(f, &tl, 1);
	assert_int_equal(t->done, 1);
	assert_int_equal(blk_backend_inflight(f->b), 0);
	return t->r.result;
}

static int64_t rw1(struct fx *f, enum blk_op op, uint64_t off, struct segs *s)
{
	struct treq t;

	treq_rw(&t, op, off, s);
	return run1(f, &t);
}

static int64_t range1(struct fx *f, enum blk_op op, uint64_t off, uint64_t len, bool unmap)
{
	struct treq t;

	treq_range(&t, op, off, len, unmap);
	return run1(f, &t);
}

/* ---- the cases ---- */

/* Multi-segment writes read back through a different segmentation; neighbours untouched. */
static void test_rw_multiseg(void **state)
{
	struct fx *f = *state;
	const size_t wl[] = {4096, 8192, 4096}, rl[] = {8192, 4096, 512, 3584};
	const uint64_t off = 64 * KiB;
	struct segs w, r;

	segs_make(&w, wl, ARRAY_SIZE(wl), 0);
	segs_fill(&w, off, 1);
	assert_int_equal(rw1(f, BLK_OP_WRITE, off, &w), 16384);
	check_file(f, off, 16384, 1);
	check_file(f, off - 4096, 4096, SEED_BG);
	check_file(f, off + 16384, 4096, SEED_BG);

	segs_make(&r, rl, ARRAY_SIZE(rl), 0);
	assert_int_equal(rw1(f, BLK_OP_READ, off, &r), 16384);
	segs_check_file(f, &r, off, 16384);
	segs_free(&w);
	segs_free(&r);
}

/* Buffers and lengths that O_DIRECT cannot take as they are (bounced), and offsets too
 * (read-modify-write). Buffered mode must give the same bytes. */
static void test_misaligned(void **state)
{
	struct fx *f = *state;
	const size_t wl[] = {100, 3000, 996}, rl[] = {1, 4094, 1};
	const size_t ol[] = {10, 990}, rd[] = {7, 1993};
	const uint64_t off = 128 * KiB, moff = 256 * KiB + 100;
	const uint64_t size = file_size(f);
	struct segs w, r, mw, mr;

	segs_make(&w, wl, ARRAY_SIZE(wl), 1);
	segs_fill(&w, off, 2);
	assert_int_equal(rw1(f, BLK_OP_WRITE, off, &w), 4096);
	check_file(f, off, 4096, 2);
	segs_make(&r, rl, ARRAY_SIZE(rl), 3);
	assert_int_equal(rw1(f, BLK_OP_READ, off, &r), 4096);
	segs_check_file(f, &r, off, 4096);

	/* 1000 bytes at an offset 100 bytes into a block */
	segs_make(&mw, ol, ARRAY_SIZE(ol), 5);
	segs_fill(&mw, moff, 3);
	assert_int_equal(rw1(f, BLK_OP_WRITE, moff, &mw), 1000);
	check_file(f, 256 * KiB, 100, SEED_BG);
	check_file(f, moff, 1000, 3);
	check_file(f, moff + 1000, 8192, SEED_BG);
	assert_int_equal(file_size(f), size);

	/* 2000 bytes from 50 bytes into that block: old and new data */
	segs_make(&mr, rd, ARRAY_SIZE(rd), 9);
	assert_int_equal(rw1(f, BLK_OP_READ, 256 * KiB + 50, &mr), 2000);
	segs_check_file(f, &mr, 256 * KiB + 50, 2000);

	segs_free(&w);
	segs_free(&r);
	segs_free(&mw);
	segs_free(&mr);
}

/* A misaligned write near an unaligned end of file leaves the size where a plain write
 * would: unchanged inside the file, grown to the write's end across it. */
static void test_misaligned_eof(void **state)
{
	struct fx *f = *state;
	const uint64_t size = IMG_SIZE - 1000;
	const size_t l1[] = {50}, l2[] = {20};
	struct segs a, b;

	assert_int_equal(ftruncate(f->img.fd, (off_t)size), 0);
	segs_make(&a, l1, 1, 1);
	segs_fill(&a, size - 100, 4);
	assert_int_equal(rw1(f, BLK_OP_WRITE, size - 100, &a), 50);
	assert_int_equal(file_size(f), size);
	check_file(f, size - 100, 50, 4);
	check_file(f, size - 50, 50, SEED_BG);

	segs_make(&b, l2, 1, 0);
	segs_fill(&b, size - 10, 5);
	assert_int_equal(rw1(f, BLK_OP_WRITE, size - 10, &b), 20);
	assert_int_equal(file_size(f), size + 10);
	check_file(f, size - 10, 20, 5);
	segs_free(&a);
	segs_free(&b);
}

/* Reads across and beyond the end of the file come back short, with the bytes that exist. */
static void test_read_past_eof(void **state)
{
	struct fx *f = *state;
	const size_t l8k[] = {4096, 4096}, l1k[] = {1000};
	struct segs r, m;

	segs_make(&r, l8k, 2, 0);
	assert_int_equal(rw1(f, BLK_OP_READ, IMG_SIZE - 4096, &r), 4096);
	segs_check_file(f, &r, IMG_SIZE - 4096, 4096);
	assert_int_equal(rw1(f, BLK_OP_READ, IMG_SIZE + 4096, &r), 0);

	segs_make(&m, l1k, 1, 7);
	assert_int_equal(rw1(f, BLK_OP_READ, IMG_SIZE - 300, &m), 300);
	segs_check_file(f, &m, IMG_SIZE - 300, 300);

	/* an end of file inside a block */
	assert_int_equal(ftruncate(f->img.fd, IMG_SIZE - 100), 0);
	assert_int_equal(rw1(f, BLK_OP_READ, IMG_SIZE - 4096, &r), 3996);
	segs_check_file(f, &r, IMG_SIZE - 4096, 3996);
	segs_free(&r);
	segs_free(&m);
}

/* depth requests in flight, the next one is refused with -EAGAIN until a reap. */
static void test_depth_limit(void **state)
{
	struct fx *f = *state;
	const size_t l[] = {4096};
	struct segs s[5];
	struct treq t[5];
	struct tally tl = {0};

	blk_backend_close(f->b);
	fx_backend(f, 4);
	for (unsigned int i = 0; i < 5; i++) {
		segs_make(&s[i], l, 1, 0);
		treq_rw(&t[i], BLK_OP_READ, i * 8192, &s[i]);
	}
	for (unsigned int i = 0; i < 4; i++)
		assert_int_equal(blk_backend_submit(f->b, &t[i].r), 0);
	assert_int_equal(blk_backend_inflight(f->b), 4);
	assert_int_equal(blk_backend_submit(f->b, &t[4].r), -EAGAIN);
	assert_int_equal(blk_backend_inflight(f->b), 4);
	blk_backend_kick(f->b);
	wait_n(f, &tl, 1);
	assert_true(blk_backend_inflight(f->b) <= 3);
	assert_int_equal(blk_backend_submit(f->b, &t[4].r), 0);
	blk_backend_kick(f->b);
	blk_backend_drain(f->b, on_done, &tl);
	assert_int_equal(tl.n, 5);
	for (unsigned int i = 0; i < 5; i++) {
		assert_int_equal(t[i].done, 1);
		assert_int_equal(t[i].r.result, 4096);
		segs_check_file(f, &s[i], i * 8192, 4096);
		segs_free(&s[i]);
	}
}

/* DEPTH writes of mixed sizes at scattered offsets, all in flight at once, completing in
 * whatever order the kernel likes; then DEPTH reads of them, also at once. */
static void test_many_inflight(void **state)
{
	struct fx *f = *state;
	static struct segs s[DEPTH];
	static struct treq t[DEPTH];
	struct tally tl = {0};
	unsigned int out_of_order = 0;
	uint64_t off[DEPTH];

	for (unsigned int i = 0; i < DEPTH; i++) {
		/* 64 slots of 64 KiB over 4 MiB, visited in a scrambled order (37 is odd) */
		const size_t l[] = {i % 3 == 0 ? 65536 : 4096 * (1 + i % 4)};

		off[i] = (uint64_t)((i * 37) % DEPTH) * 65536;
		segs_make(&s[i], l, 1, 0);
		segs_fill(&s[i], off[i], 100 + i);
		treq_rw(&t[i], BLK_OP_WRITE, off[i], &s[i]);
		assert_int_equal(blk_backend_submit(f->b, &t[i].r), 0);
	}
	assert_int_equal(blk_backend_submit(f->b, &t[0].r), -EAGAIN);
	blk_backend_kick(f->b);
	wait_n(f, &tl, DEPTH);
	for (unsigned int i = 0; i < DEPTH; i++) {
		assert_int_equal(t[i].done, 1);
		assert_int_equal(t[i].r.result, (int64_t)s[i].len);
		check_file(f, off[i], s[i].len, 100 + (int)i);
		out_of_order += t[i].order != i;
	}

	tl.n = 0;
	for (unsigned int i = 0; i < DEPTH; i++) {
		memset(s[i].iov[0].iov_base, 0, s[i].len);
		treq_rw(&t[i], BLK_OP_READ, off[i], &s[i]);
		assert_int_equal(blk_backend_submit(f->b, &t[i].r), 0);
	}
	blk_backend_kick(f->b);
	wait_n(f, &tl, DEPTH);
	for (unsigned int i = 0; i < DEPTH; i++) {
		assert_int_equal(t[i].done, 1);
		assert_int_equal(t[i].r.result, (int64_t)s[i].len);
		segs_check_file(f, &s[i], off[i], s[i].len);
		segs_free(&s[i]);
	}
	print_message("      %u of %u writes completed out of submission order\n", out_of_order,
		      DEPTH);
}

static void test_flush(void **state)
{
	struct fx *f = *state;
	const size_t l[] = {8192};
	struct segs s;

	segs_make(&s, l, 1, 0);
	segs_fill(&s, MiB, 6);
	assert_int_equal(rw1(f, BLK_OP_WRITE, MiB, &s), 8192);
	assert_int_equal(range1(f, BLK_OP_FLUSH, 0, 0, false), 0);
	check_file(f, MiB, 8192, 6);
	/* a flush with nothing to flush, and one ignoring offset/len */
	assert_int_equal(range1(f, BLK_OP_FLUSH, 0, 0, false), 0);
	assert_int_equal(range1(f, BLK_OP_FLUSH, 12345, 678, false), 0);
	segs_free(&s);
}

static uint64_t file_blocks(struct fx *f)
{
	struct stat st;

	assert_int_equal(fstat(f->rfd, &st), 0);
	return (uint64_t)st.st_blocks;
}

/* A discarded range reads back as zeroes, gives its blocks back, and nothing else moves. */
static void test_discard(void **state)
{
	struct fx *f = *state;
	const uint64_t off = MiB + 256 * KiB, len = 512 * KiB;
	const size_t l[] = {4096};
	uint64_t before, after;
	struct segs s;

	assert_int_equal(fsync(f->rfd), 0);
	before = file_blocks(f);
	assert_true(before >= IMG_SIZE / 512); /* the background fill allocated everything */
	assert_int_equal(range1(f, BLK_OP_DISCARD, off, len, false), 0);
	after = file_blocks(f);
	assert_true(after + len / 512 <= before);
	assert_int_equal(file_size(f), IMG_SIZE);
	check_file(f, off, len, -1);
	check_file(f, off - 8192, 8192, SEED_BG);
	check_file(f, off + len, 8192, SEED_BG);

	/* and through the backend too */
	segs_make(&s, l, 1, 0);
	memset(s.iov[0].iov_base, 0xAA, 4096);
	assert_int_equal(rw1(f, BLK_OP_READ, off + 4096, &s), 4096);
	segs_check_file(f, &s, off + 4096, 4096);
	segs_free(&s);
}

/* Zeroing with and without deallocation, at block and at byte granularity. */
static void write_zeroes_cases(struct fx *f, uint64_t base)
{
	const uint64_t size = file_size(f);
	const struct {
		uint64_t off, len;
		bool unmap;
	} c[] = {
		{base, 64 * KiB, false},
		{base + 128 * KiB, 64 * KiB, true},
		{base + 256 * KiB + 512, 5 * 512, false},
		{base + 320 * KiB + 3, 1001, false},
		{base + 384 * KiB + 7, 9000, true},
	};

	for (size_t i = 0; i < ARRAY_SIZE(c); i++) {
		assert_int_equal(range1(f, BLK_OP_WRITE_ZEROES, c[i].off, c[i].len, c[i].unmap), 0);
		check_file(f, c[i].off - 4096, 4096, SEED_BG);
		check_file(f, c[i].off, c[i].len, -1);
		check_file(f, c[i].off + c[i].len, 4096, SEED_BG);
	}
	assert_int_equal(file_size(f), size);
}

static void test_write_zeroes(void **state)
{
	write_zeroes_cases(*state, 2 * MiB);
}

/*
 * tmpfs has no FALLOC_FL_ZERO_RANGE: zeroing there must fall back to writing zeroes (or,
 * with unmap, punch holes). O_DIRECT on tmpfs exists only since Linux 6.6: skipped before.
 */
static void test_write_zeroes_fallback(void **state)
{
	struct fx *f = *state, *shm = NULL;
	int r = fx_make("/dev/shm", f->direct, MiB, &shm);

	if (r == -EINVAL && f->direct) {
		print_message("      /dev/shm refuses O_DIRECT on this kernel\n");
		skip();
	}
	assert_int_equal(r, 0);
	assert_int_equal(fallocate(shm->img.fd, FALLOC_FL_ZERO_RANGE, 0, 4096), -1);
	assert_int_equal(errno, EOPNOTSUPP); /* the premise of this case */
	write_zeroes_cases(shm, 8192);
	fx_free(shm);
}

/* Malformed requests are refused up front and leave nothing in flight. */
static void test_invalid(void **state)
{
	struct fx *f = *state;
	const size_t l[] = {4096, 4096};
	struct iovec nulliov = {NULL, 512};
	struct segs s;
	struct treq t;
	struct pollfd p = {.fd = blk_backend_event_fd(f->b), .events = POLLIN};

	segs_make(&s, l, 2, 0);
	treq_rw(&t, BLK_OP_READ, 0, &s);
	t.r.iovcnt = 0;
	t.r.len = 0;
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_rw(&t, BLK_OP_WRITE, 0, &s);
	t.r.iovcnt = 0;
	t.r.len = 0;
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_rw(&t, BLK_OP_READ, 0, &s);
	t.r.iov = NULL;
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_rw(&t, BLK_OP_READ, 0, &s);
	t.r.len = 4096; /* not the sum of the iov */
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_rw(&t, BLK_OP_READ, 0, &s);
	t.r.iov = &nulliov;
	t.r.iovcnt = 1;
	t.r.len = 512;
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_rw(&t, BLK_OP_READ, 0, &s);
	t.r.iovcnt = IOV_MAX + 1;
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_rw(&t, BLK_OP_WRITE, UINT64_MAX - 100, &s); /* offset + len wraps */
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_rw(&t, BLK_OP_WRITE, (uint64_t)INT64_MAX - 4096, &s); /* beyond off_t */
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_range(&t, BLK_OP_DISCARD, 0, 0, false);
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_range(&t, BLK_OP_WRITE_ZEROES, 4096, 0, true);
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_range(&t, BLK_OP_DISCARD, UINT64_MAX - 10, 4096, false);
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_range(&t, BLK_OP_WRITE_ZEROES, 0, UINT64_MAX, false);
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	treq_range(&t, (enum blk_op)99, 0, 4096, false);
	assert_int_equal(blk_backend_submit(f->b, &t.r), -EINVAL);
	assert_int_equal(blk_backend_submit(f->b, NULL), -EINVAL);

	assert_int_equal(blk_backend_inflight(f->b), 0);
	blk_backend_kick(f->b);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(t.done, 0);
	check_file(f, 0, 8192, SEED_BG);
	segs_free(&s);
}

/* A zero-length read or write is valid and completes with 0. */
static void test_zero_length(void **state)
{
	struct fx *f = *state;
	const size_t l[] = {0};
	struct segs s;

	segs_make(&s, l, 1, 3);
	assert_int_equal(rw1(f, BLK_OP_READ, 4096 + 1, &s), 0);
	assert_int_equal(rw1(f, BLK_OP_WRITE, 4096 + 1, &s), 0);
	check_file(f, 0, 16384, SEED_BG);
	segs_free(&s);
}

/* drain returns only when every request, of every kind, has been delivered once. */
static void test_drain(void **state)
{
	struct fx *f = *state;
	static struct segs s[16];
	static struct treq t[20];
	struct tally tl = {0};

	for (unsigned int i = 0; i < 16; i++) {
		const size_t l[] = {128 * KiB};

		segs_make(&s[i], l, 1, 0);
		segs_fill(&s[i], (uint64_t)i * 128 * KiB, 200 + i);
		treq_rw(&t[i], BLK_OP_WRITE, (uint64_t)i * 128 * KiB, &s[i]);
		assert_int_equal(blk_backend_submit(f->b, &t[i].r), 0);
	}
	treq_range(&t[16], BLK_OP_FLUSH, 0, 0, false);
	treq_range(&t[17], BLK_OP_DISCARD, 3 * MiB, 64 * KiB, false);
	treq_range(&t[18], BLK_OP_WRITE_ZEROES, 3 * MiB + 128 * KiB, 64 * KiB, false);
	treq_range(&t[19], BLK_OP_WRITE_ZEROES, 3 * MiB + 256 * KiB, 64 * KiB, true);
	for (unsigned int i = 16; i < 20; i++)
		assert_int_equal(blk_backend_submit(f->b, &t[i].r), 0);
	assert_int_equal(blk_backend_inflight(f->b), 20);
	blk_backend_kick(f->b);
	blk_backend_drain(f->b, on_done, &tl);
	assert_int_equal(blk_backend_inflight(f->b), 0);
	assert_int_equal(tl.n, 20);
	for (unsigned int i = 0; i < 20; i++)
		assert_int_equal(t[i].done, 1);
	for (unsigned int i = 0; i < 16; i++) {
		assert_int_equal(t[i].r.result, 128 * KiB);
		check_file(f, (uint64_t)i * 128 * KiB, 128 * KiB, 200 + (int)i);
		segs_free(&s[i]);
	}
	for (unsigned int i = 16; i < 20; i++)
		assert_int_equal(t[i].r.result, 0);
	check_file(f, 3 * MiB, 64 * KiB, -1);
	check_file(f, 3 * MiB + 128 * KiB, 64 * KiB, -1);
	check_file(f, 3 * MiB + 256 * KiB, 64 * KiB, -1);
	check_file(f, 3 * MiB + 64 * KiB, 64 * KiB, SEED_BG);
	/* nothing left to deliver */
	assert_int_equal(blk_backend_reap(f->b, on_done, &tl), 0);
}

/* close waits for what is in flight: the data is in the file afterwards, and the buffers may
 * be freed (under ASan a write into them after close would be caught). */
static void test_close_inflight(void **state)
{
	struct fx *f = *state;
	static struct segs s[32];
	static struct treq t[32];

	for (unsigned int i = 0; i < 32; i++) {
		const size_t l[] = {64 * KiB};

		segs_make(&s[i], l, 1, i % 2); /* half of them bounced under O_DIRECT */
		segs_fill(&s[i], (uint64_t)i * 64 * KiB, 300 + i);
		treq_rw(&t[i], BLK_OP_WRITE, (uint64_t)i * 64 * KiB, &s[i]);
		assert_int_equal(blk_backend_submit(f->b, &t[i].r), 0);
	}
	blk_backend_kick(f->b);
	blk_backend_close(f->b);
	f->b = NULL;
	for (unsigned int i = 0; i < 32; i++) {
		segs_free(&s[i]);
		assert_int_equal(t[i].done, 0); /* nobody was called back */
		check_file(f, (uint64_t)i * 64 * KiB, 64 * KiB, 300 + (int)i);
	}
	/* closing with requests submitted but never kicked: still waits */
	fx_backend(f, DEPTH);
	for (unsigned int i = 0; i < 4; i++) {
		const size_t l[] = {4096};

		segs_make(&s[i], l, 1, 0);
		segs_fill(&s[i], 2 * MiB + i * 4096, 400 + i);
		treq_rw(&t[i], BLK_OP_WRITE, 2 * MiB + i * 4096, &s[i]);
		assert_int_equal(blk_backend_submit(f->b, &t[i].r), 0);
	}
	blk_backend_close(f->b);
	f->b = NULL;
	for (unsigned int i = 0; i < 4; i++) {
		segs_free(&s[i]);
		check_file(f, 2 * MiB + i * 4096, 4096, 400 + (int)i);
	}
}

/* The eventfd is how completions are seen: readable when one is ready, quiet after a reap. */
static void test_eventfd(void **state)
{
	struct fx *f = *state;
	const size_t l[] = {4096};
	struct pollfd p = {.fd = blk_backend_event_fd(f->b), .events = POLLIN};
	struct tally tl = {0};
	struct segs s;
	struct treq t;
	int fdflags = fcntl(p.fd, F_GETFD);

	assert_true(fdflags >= 0 && (fdflags & FD_CLOEXEC));
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(blk_backend_reap(f->b, on_done, &tl), 0);
	segs_make(&s, l, 1, 0);
	treq_rw(&t, BLK_OP_READ, 0, &s);
	assert_int_equal(blk_backend_submit(f->b, &t.r), 0);
	blk_backend_kick(f->b);
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	while (!tl.n) {
		blk_backend_reap(f->b, on_done, &tl);
		if (!tl.n)
			assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	}
	assert_int_equal(t.r.result, 4096);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(blk_backend_event_fd(f->b), p.fd);
	segs_free(&s);
}

/*
 * blk_backend_poll_ready(), the adaptive poller's look at the backend: false with nothing done,
 * turns true by itself once the kernel finished a request (found in the shared completion
 * ring, no reap in between), leaves the eventfd alone, and is false again after the reap
 * delivered everything.
 */
static void test_poll_ready(void **state)
{
	struct fx *f = *state;
	const size_t l[] = {4096};
	struct pollfd p = {.fd = blk_backend_event_fd(f->b), .events = POLLIN};
	struct segs s[8];
	struct treq t[8];
	struct tally tl = {0};

	assert_false(blk_backend_poll_ready(f->b));
	assert_false(blk_backend_poll_ready(NULL));
	for (unsigned int i = 0; i < ARRAY_SIZE(t); i++) {
		segs_make(&s[i], l, 1, 0);
		treq_rw(&t[i], BLK_OP_READ, i * 8192, &s[i]);
	}
	/* One request: ready without any reap, and the eventfd still signalled. */
	assert_int_equal(blk_backend_submit(f->b, &t[0].r), 0);
	blk_backend_kick(f->b);
	for (int spins = 0; !blk_backend_poll_ready(f->b); spins++) {
		assert_true(spins < WAIT_MS * 1000);
		usleep(1);
	}
	assert_int_equal(t[0].done, 0);
	assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	assert_int_equal(blk_backend_reap(f->b, on_done, &tl), 1);
	assert_int_equal(t[0].r.result, 4096);
	assert_false(blk_backend_poll_ready(f->b));

	/* Several: every ready answer leads to a reap that delivers at least one. */
	for (unsigned int i = 1; i < ARRAY_SIZE(t); i++)
		assert_int_equal(blk_backend_submit(f->b, &t[i].r), 0);
	blk_backend_kick(f->b);
	for (int spins = 0; tl.n < ARRAY_SIZE(t); spins++) {
		assert_true(spins < WAIT_MS * 1000);
		if (!blk_backend_poll_ready(f->b)) {
			usleep(1);
			continue;
		}
		assert_true(blk_backend_reap(f->b, on_done, &tl) >= 1);
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(t); i++) {
		assert_int_equal(t[i].done, 1);
		assert_int_equal(t[i].r.result, 4096);
		segs_check_file(f, &s[i], i * 8192, 4096);
		segs_free(&s[i]);
	}
	assert_false(blk_backend_poll_ready(f->b));
	assert_int_equal(blk_backend_inflight(f->b), 0);
}

/* A done callback may submit the next request (inflight already counts the finished one
 * out): a chain of 8 at depth 1. */
struct chain {
	struct fx *f;
	struct segs s;
	struct treq t[8];
	unsigned int next;
	struct tally tl;
};

static void chain_done(void *opaque, struct blk_req *req)
{
	struct chain *c = opaque;

	on_done(&c->tl, req);
	assert_int_equal(req->result, 4096);
	if (c->next < ARRAY_SIZE(c->t)) {
		assert_int_equal(blk_backend_submit(c->f->b, &c->t[c->next++].r), 0);
		blk_backend_kick(c->f->b);
	}
}

static void test_resubmit_from_callback(void **state)
{
	struct fx *f = *state;
	const size_t l[] = {4096};
	struct chain *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	blk_backend_close(f->b);
	fx_backend(f, 1);
	c->f = f;
	segs_make(&c->s, l, 1, 0);
	for (unsigned int i = 0; i < ARRAY_SIZE(c->t); i++)
		treq_rw(&c->t[i], BLK_OP_READ, i * 4096, &c->s);
	assert_int_equal(blk_backend_submit(f->b, &c->t[c->next++].r), 0);
	blk_backend_kick(f->b);
	blk_backend_drain(f->b, chain_done, c);
	assert_int_equal(c->tl.n, ARRAY_SIZE(c->t));
	for (unsigned int i = 0; i < ARRAY_SIZE(c->t); i++)
		assert_int_equal(c->t[i].done, 1);
	segs_free(&c->s);
	free(c);
}

/*
 * After blk_backend_close() the backend holds nothing of the image: closing the image then
 * releases its lock at once, so the image can be opened read-write again right away (by us
 * or by the process a live update hands it to). An io_uring ring tears down asynchronously;
 * a file still registered with it would keep the lock for a while.
 */
static void test_reopen_after_close(void **state)
{
	struct fx *f = *state;
	char err[256];
	bool direct = f->img.direct;

	for (int i = 0; i < 20; i++) {
		const size_t l[] = {4096};
		struct segs s;

		segs_make(&s, l, 1, 0);
		assert_int_equal(rw1(f, BLK_OP_READ, 0, &s), 4096);
		segs_free(&s);
		blk_backend_close(f->b);
		f->b = NULL;
		blk_image_close(&f->img);
		assert_int_equal(blk_image_open(&f->img, f->path, false,
						direct ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK, err,
						sizeof(err)),
				 0);
		fx_backend(f, DEPTH);
	}
}

/* ---- engine-independent: names and open arguments ---- */

static void test_engine_names(void **state)
{
	static const enum blk_engine all[] = {BLK_ENGINE_URING, BLK_ENGINE_AIO, BLK_ENGINE_SYNC};
	enum blk_engine e;

	for (size_t i = 0; i < ARRAY_SIZE(all); i++) {
		assert_int_equal(blk_engine_parse(blk_engine_name(all[i]), &e), 0);
		assert_int_equal(e, all[i]);
	}
	assert_string_equal(blk_engine_name(BLK_ENGINE_URING), "uring");
	assert_string_equal(blk_engine_name(BLK_ENGINE_AIO), "aio");
	assert_string_equal(blk_engine_name(BLK_ENGINE_SYNC), "sync");
	assert_int_equal(blk_engine_parse("io_uring", &e), -EINVAL);
	assert_int_equal(blk_engine_parse("URING", &e), -EINVAL);
	assert_int_equal(blk_engine_parse("", &e), -EINVAL);
	assert_int_equal(blk_engine_parse("sync ", &e), -EINVAL);
	assert_int_equal(blk_engine_parse(NULL, &e), -EINVAL);
}

static void test_open_args(void **state)
{
	struct blk_backend_config cfg = {.depth = 8};
	struct blk_backend *b = NULL;
	char path[] = "/var/tmp/vmm-test-blk-XXXXXX";
	int fd = mkstemp(path), closed;

	assert_true(fd >= 0);
	unlink(path);
	closed = dup(fd);
	close(closed);
	assert_int_equal(blk_backend_open(engine, -1, &cfg, &b), -EINVAL);
	assert_int_equal(blk_backend_open(engine, closed, &cfg, &b), -EBADF);
	assert_int_equal(blk_backend_open(engine, fd, NULL, &b), -EINVAL);
	assert_int_equal(blk_backend_open((enum blk_engine)7, fd, &cfg, &b), -EINVAL);
	cfg.depth = 0;
	assert_int_equal(blk_backend_open(engine, fd, &cfg, &b), -EINVAL);
	cfg.depth = 1U << 20;
	assert_int_equal(blk_backend_open(engine, fd, &cfg, &b), -EINVAL);
	cfg.depth = 4 * 256; /* what virtio-blk asks for with 4 queues */
	assert_int_equal(blk_backend_open(engine, fd, &cfg, &b), 0);
	blk_backend_close(b);
	b = NULL;
	cfg.depth = 8;
	cfg.direct = true;
	cfg.dio_align = 768; /* not a power of two */
	assert_int_equal(blk_backend_open(engine, fd, &cfg, &b), -EINVAL);
	assert_null(b);
	cfg.direct = false;
	assert_int_equal(blk_backend_open(engine, fd, &cfg, &b), 0);
	assert_int_equal(blk_backend_engine(b), engine);
	assert_int_equal(blk_backend_inflight(b), 0);
	blk_backend_close(b);
	blk_backend_close(NULL);
	close(fd);
}

/* ---- images ---- */

static void assert_err(const char *err, const char *path, const char *needle)
{
	if (!strstr(err, path) || !strstr(err, needle))
		print_error("message \"%s\" lacks \"%s\" or \"%s\"\n", err, path, needle);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, needle));
	assert_null(strchr(err, '\n'));
}

static void make_file(const char *path, uint64_t size, mode_t mode)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void test_image_props(void **state)
{
	char path[] = "/var/tmp/vmm-test-img-XXXXXX", err[256];
	struct blk_image img;
	int fd = mkstemp(path), fl;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 3 * MiB + 512), 0);
	close(fd);

	assert_int_equal(blk_image_open(&img, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 0);
	assert_true(img.fd >= 0);
	assert_true(fcntl(img.fd, F_GETFD) & FD_CLOEXEC);
	fl = fcntl(img.fd, F_GETFL);
	assert_int_equal(fl & O_ACCMODE, O_RDWR);
	assert_false(fl & O_DIRECT);
	assert_false(img.read_only);
	assert_false(img.direct);
	assert_false(img.is_blockdev);
	assert_int_equal(img.size, 3 * MiB + 512);
	assert_int_equal(img.dio_align, 1);
	assert_int_equal(img.logical_block, 512);
	assert_true(img.can_discard);
	blk_image_close(&img);
	assert_int_equal(img.fd, -1);
	blk_image_close(&img); /* twice is harmless */

	assert_int_equal(blk_image_open(&img, path, true, BLK_CACHE_NONE, err, sizeof(err)), 0);
	fl = fcntl(img.fd, F_GETFL);
	assert_int_equal(fl & O_ACCMODE, O_RDONLY);
	assert_true(fl & O_DIRECT);
	assert_true(img.read_only);
	assert_true(img.direct);
	assert_true(img.dio_align >= 512 && !(img.dio_align & (img.dio_align - 1)));
	blk_image_close(&img);
	unlink(path);
}

/* OFD locks: exclusive for read-write, shared for read-only; per open file description, so
 * two opens in one process conflict just as two VMMs would. */
static void test_image_lock(void **state)
{
	char path[] = "/var/tmp/vmm-test-img-XXXXXX", err[256];
	struct blk_image a, b, c;
	int fd = mkstemp(path), st;
	pid_t pid;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MiB), 0);
	close(fd);

	assert_int_equal(blk_image_open(&a, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)), 0);
	assert_int_equal(blk_image_open(&b, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 -EBUSY);
	assert_err(err, path, "is locked by another process");
	assert_int_equal(b.fd, -1);
	assert_int_equal(blk_image_open(&b, path, true, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 -EBUSY);
	assert_err(err, path, "is locked by another process");
	/* another process sees the same */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct blk_image x;
		char e[256];

		_exit(blk_image_open(&x, path, true, BLK_CACHE_WRITEBACK, e, sizeof(e)) == -EBUSY
			      ? 0
			      : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	blk_image_close(&a);

	/* read-only opens share */
	assert_int_equal(blk_image_open(&a, path, true, BLK_CACHE_WRITEBACK, err, sizeof(err)), 0);
	assert_int_equal(blk_image_open(&b, path, true, BLK_CACHE_NONE, err, sizeof(err)), 0);
	assert_int_equal(blk_image_open(&c, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 -EBUSY);
	assert_err(err, path, "is locked by another process");
	blk_image_close(&a);
	assert_int_equal(blk_image_open(&c, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 -EBUSY);
	blk_image_close(&b);
	/* the last close released it */
	assert_int_equal(blk_image_open(&c, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)), 0);
	blk_image_close(&c);
	unlink(path);
}

static void test_image_bad_paths(void **state)
{
	char dir[] = "/var/tmp/vmm-test-dir-XXXXXX", path[128], err[256];
	struct blk_image img;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing.img", dir);
	assert_int_equal(blk_image_open(&img, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 -ENOENT);
	assert_err(err, path, "No such file or directory");
	assert_int_equal(img.fd, -1);

	for (int ro = 0; ro < 2; ro++) {
		for (int cache = 0; cache < 2; cache++) {
			int r = blk_image_open(&img, dir, ro,
					       cache ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK, err,
					       sizeof(err));

			assert_int_equal(r, -EISDIR);
			assert_err(err, dir, "is a directory");
		}
	}
	assert_int_equal(
		blk_image_open(&img, "/dev/null", false, BLK_CACHE_WRITEBACK, err, sizeof(err)),
		-EINVAL);
	assert_err(err, "/dev/null", "not a regular file or block device");
	assert_int_equal(blk_image_open(&img, "", true, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 -EINVAL);
	assert_true(err[0] != '\0');
	assert_int_equal(blk_image_open(&img, dir, true, (enum blk_cache)5, err, sizeof(err)),
			 -EINVAL);
	/* a NULL err buffer is allowed */
	assert_int_equal(blk_image_open(&img, path, false, BLK_CACHE_WRITEBACK, NULL, 0), -ENOENT);
	rmdir(dir);
}

/*
 * Permission errors. Root bypasses file modes, so the checks run in a child that became
 * nobody; its exit status is the line of the first failed check.
 */
#define CHILD_CHECK(c)                                                                             \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "child check failed: %s (err \"%s\")\n", #c, err);         \
			_exit(__LINE__ & 0xff ? __LINE__ & 0xff : 1);                              \
		}                                                                                  \
	} while (0)

static void test_image_permissions(void **state)
{
	char dir[] = "/var/tmp/vmm-test-dir-XXXXXX", noacc[128], rdonly[128];
	int st;
	pid_t pid;

	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0755), 0);
	snprintf(noacc, sizeof(noacc), "%s/noaccess.img", dir);
	snprintf(rdonly, sizeof(rdonly), "%s/readonly.img", dir);
	make_file(noacc, MiB, 0000);
	make_file(rdonly, MiB, 0444);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct blk_image img;
		char err[256] = "";

		if (geteuid() == 0) {
			CHILD_CHECK(setgroups(0, NULL) == 0);
			CHILD_CHECK(setresgid(65534, 65534, 65534) == 0);
			CHILD_CHECK(setresuid(65534, 65534, 65534) == 0);
		}
		CHILD_CHECK(blk_image_open(&img, noacc, false, BLK_CACHE_WRITEBACK, err,
					   sizeof(err)) == -EACCES);
		CHILD_CHECK(strstr(err, noacc) && strstr(err, "Permission denied"));
		CHILD_CHECK(!strstr(err, ",ro")); /* read-only would not help */
		CHILD_CHECK(blk_image_open(&img, noacc, true, BLK_CACHE_WRITEBACK, err,
					   sizeof(err)) == -EACCES);
		CHILD_CHECK(strstr(err, noacc) && strstr(err, "Permission denied"));
		CHILD_CHECK(blk_image_open(&img, rdonly, false, BLK_CACHE_WRITEBACK, err,
					   sizeof(err)) == -EACCES);
		CHILD_CHECK(strstr(err, rdonly) && strstr(err, "Permission denied") &&
			    strstr(err, ",ro") && !strchr(err, '\n'));
		CHILD_CHECK(blk_image_open(&img, rdonly, true, BLK_CACHE_WRITEBACK, err,
					   sizeof(err)) == 0);
		CHILD_CHECK(img.read_only && img.size == MiB);
		blk_image_close(&img);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		print_error("child failed at line (mod 256) %d\n", WEXITSTATUS(st));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unlink(noacc);
	unlink(rdonly);
	rmdir(dir);
}

/*
 * cache=none where the filesystem refuses O_DIRECT. procfs always does. tmpfs did until
 * Linux 6.6: /dev/shm is checked against what the kernel says for a plain open.
 */
/* Less than a sector is refused, a FIFO is refused at once (never waited on). */
static void test_image_sizes_fifo(void **state)
{
	char dir[] = "/tmp/vmm-img-XXXXXX", path[128], err[256];
	struct blk_image img;
	int fd;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/small", dir);
	fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 511), 0);
	assert_int_equal(blk_image_open(&img, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 -EINVAL);
	assert_err(err, path, "511 bytes, smaller than one 512-byte sector");
	assert_int_equal(ftruncate(fd, 512 + 100), 0);
	assert_int_equal(blk_image_open(&img, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 0);
	assert_int_equal(img.size, 612);
	blk_image_close(&img);
	close(fd);
	unlink(path);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(blk_image_open(&img, path, true, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 -EINVAL);
	assert_err(err, path, "(a FIFO)");
	assert_int_equal(blk_image_open(&img, path, false, BLK_CACHE_WRITEBACK, err, sizeof(err)),
			 -EINVAL);
	assert_err(err, path, "(a FIFO)");
	unlink(path);
	rmdir(dir);
}

/* An image handed over as an open fd (a live update): checked, locked, sized like a path. */
static void test_image_adopt(void **state)
{
	char dir[] = "/tmp/vmm-img-XXXXXX", path[128], err[256];
	struct blk_image img, other;
	int rw, ro;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/disk", dir);
	rw = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(rw >= 0);
	assert_int_equal(ftruncate(rw, MiB), 0);
	ro = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(ro >= 0);
	/* A read-only fd cannot back a read-write disk. */
	assert_int_equal(blk_image_adopt(&img, ro, path, false, BLK_CACHE_WRITEBACK, err,
					 sizeof(err)), -EBADF);
	assert_err(err, path, "not open for reading and writing");
	assert_int_equal(blk_image_adopt(&img, rw, path, false, BLK_CACHE_WRITEBACK, err,
					 sizeof(err)), 0);
	assert_int_equal(img.size, MiB);
	assert_true(img.fd != rw); /* its own descriptor */
	/* Locked: a second open of the file conflicts, adopting the same fd again does not. */
	assert_int_equal(blk_image_open(&other, path, false, BLK_CACHE_WRITEBACK, err,
					sizeof(err)), -EBUSY);
	assert_int_equal(blk_image_adopt(&other, rw, path, false, BLK_CACHE_WRITEBACK, err,
					 sizeof(err)), 0);
	blk_image_close(&other);
	blk_image_close(&img);
	close(rw);
	close(ro);
	unlink(path);
	rmdir(dir);
}

static void test_image_odirect_refused(void **state)
{
	char path[] = "/dev/shm/vmm-test-img-XXXXXX", err[256];
	struct blk_image img;
	int fd, raw, raw_errno;

	assert_int_equal(
		blk_image_open(&img, "/proc/version", true, BLK_CACHE_NONE, err, sizeof(err)),
		-EINVAL);
	assert_err(err, "/proc/version", "cache=none: O_DIRECT not supported by this filesystem");
	/* without cache=none it opens (a regular file) but, 0 bytes long, is refused as a disk */
	assert_int_equal(
		blk_image_open(&img, "/proc/version", true, BLK_CACHE_WRITEBACK, err, sizeof(err)),
		-EINVAL);
	assert_err(err, "/proc/version", "smaller than one 512-byte sector");

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MiB), 0);
	close(fd);
	raw = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	raw_errno = errno;
	if (raw >= 0) {
		close(raw);
		print_message("      tmpfs takes O_DIRECT on this kernel (Linux >= 6.6)\n");
		assert_int_equal(
			blk_image_open(&img, path, false, BLK_CACHE_NONE, err, sizeof(err)), 0);
		assert_true(img.direct);
		blk_image_close(&img);
	} else {
		assert_int_equal(raw_errno, EINVAL);
		assert_int_equal(
			blk_image_open(&img, path, false, BLK_CACHE_NONE, err, sizeof(err)),
			-EINVAL);
		assert_err(err, path, "cache=none: O_DIRECT not supported by this filesystem");
	}
	unlink(path);
}

/* ---- the table ---- */

struct bcase {
	const char *name;
	CMUnitTestFunction fn;
};

static const struct bcase backend_cases[] = {
	{"rw_multiseg", test_rw_multiseg},
	{"misaligned", test_misaligned},
	{"misaligned_eof", test_misaligned_eof},
	{"read_past_eof", test_read_past_eof},
	{"depth_limit", test_depth_limit},
	{"many_inflight", test_many_inflight},
	{"flush", test_flush},
	{"discard", test_discard},
	{"write_zeroes", test_write_zeroes},
	{"write_zeroes_fallback", test_write_zeroes_fallback},
	{"invalid", test_invalid},
	{"zero_length", test_zero_length},
	{"drain", test_drain},
	{"close_inflight", test_close_inflight},
	{"eventfd", test_eventfd},
	{"poll_ready", test_poll_ready},
	{"resubmit_from_callback", test_resubmit_from_callback},
	{"reopen_after_close", test_reopen_after_close},
};

static const struct bcase other_cases[] = {
	{"engine_names", test_engine_names},
	{"open_args", test_open_args},
	{"image_props", test_image_props},
	{"image_lock", test_image_lock},
	{"image_bad_paths", test_image_bad_paths},
	{"image_permissions", test_image_permissions},
	{"image_odirect_refused", test_image_odirect_refused},
	{"image_sizes_fifo", test_image_sizes_fifo},
	{"image_adopt", test_image_adopt},
};

int main(int argc, char **argv)
{
	static struct CMUnitTest tests[2 * ARRAY_SIZE(backend_cases) + ARRAY_SIZE(other_cases)];
	static char names[ARRAY_SIZE(tests)][96];
	struct mode *modes[] = {&mode_buffered, &mode_direct};
	size_t n = 0;

	if (argc != 2 || blk_engine_parse(argv[1], &engine) < 0) {
		fprintf(stderr, "usage: %s uring|aio|sync\n", argv[0]);
		return 2;
	}
	for (size_t m = 0; m < ARRAY_SIZE(modes); m++) {
		for (size_t i = 0; i < ARRAY_SIZE(backend_cases); i++, n++) {
			snprintf(names[n], sizeof(names[n]), "%s/%s/%s", argv[1],
				 modes[m]->direct ? "direct" : "buffered", backend_cases[i].name);
			tests[n] = (struct CMUnitTest){names[n], backend_cases[i].fn, fx_setup,
						       fx_teardown, modes[m]};
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(other_cases); i++, n++) {
		snprintf(names[n], sizeof(names[n]), "%s/%s", argv[1], other_cases[i].name);
		tests[n] = (struct CMUnitTest){names[n], other_cases[i].fn, NULL, NULL, NULL};
	}
	return _cmocka_run_group_tests(argv[1], tests, n, NULL, NULL);
}
