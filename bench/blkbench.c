// SPDX-License-Identifier: Apache-2.0
/*
 * blkbench: block I/O throughput and IOPS on a file or a block device, with O_DIRECT through
 * io_uring, so that the same static binary measures a host file and a guest's /dev/vda.
 *
 *   blkbench [-t SECONDS] [-s SIZE] [-q SEQ_QD] [-o TEST[,TEST...]] PATH
 *
 * Tests, each for SECONDS (default 5), in this order:
 *   seqread-1m, seqwrite-1m            1 MiB sequential at queue depth SEQ_QD (default 4), MB/s
 *   randread-4k-qd1, randread-4k-qd32  4 KiB random (aligned, uniform over the whole target)
 *   randwrite-4k-qd1, randwrite-4k-qd32                                            IOPS
 * Output: one "name value unit" line per test (MB is 10^6 bytes), plus "# ..." comments.
 * The target is overwritten by the write tests. A file must already have its size (and, to
 * measure reads of real blocks rather than holes, its data); -s limits the span used.
 *
 * Queue depth N means N requests are kept in flight: each completion is followed by one new
 * submission until the time is up; the requests still in flight then are drained and not
 * counted. Random offsets come from a fixed-seed xorshift, so every run asks for the same
 * sequence. Exit status 0, 1 on an I/O error (the failing test is named), 2 on usage errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BB_MAX_QD  32
#define BB_ALIGN   4096
#define BB_SEQ_BS  (1024 * 1024)
#define BB_RAND_BS 4096

struct bb_test {
	const char *name;
	bool write;
	bool random;
	unsigned int bs;
	unsigned int qd; /* 0: the sequential queue depth (-q) */
};

static const struct bb_test bb_tests[] = {
	{"seqread-1m", false, false, BB_SEQ_BS, 0},
	{"seqwrite-1m", true, false, BB_SEQ_BS, 0},
	{"randread-4k-qd1", false, true, BB_RAND_BS, 1},
	{"randread-4k-qd32", false, true, BB_RAND_BS, 32},
	{"randwrite-4k-qd1", true, true, BB_RAND_BS, 1},
	{"randwrite-4k-qd32", true, true, BB_RAND_BS, 32},
};

#define BB_NR_TESTS (sizeof(bb_tests) / sizeof(bb_tests[0]))

struct bb_ctx {
	struct io_uring ring;
	int fd;
	uint64_t span; /* bytes of the target in use, a BB_SEQ_BS multiple */
	void *buf[BB_MAX_QD];
	uint64_t rng;
	uint64_t next_seq;
};

struct bb_result {
	uint64_t ops;
	uint64_t bytes;
	double secs;
};

static double bb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64 (Marsaglia): cheap, and the same sequence on every run. */
static uint64_t bb_rand(struct bb_ctx *c)
{
	uint64_t x = c->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	c->rng = x;
	return x;
}

/* Data that no layer can mistake for zeroes or compress away. */
static void bb_fill(void *buf, size_t len, uint64_t seed)
{
	struct bb_ctx r = {.rng = seed * 0x9e3779b97f4a7c15ull};
	uint64_t *p = buf;
	size_t i;

	for (i = 0; i < len / sizeof(*p); i++)
		p[i] = bb_rand(&r);
}

static uint64_t bb_next_offset(struct bb_ctx *c, const struct bb_test *t)
{
	uint64_t off;

	if (t->random)
		return (bb_rand(c) % (c->span / t->bs)) * t->bs;
	off = c->next_seq;
	c->next_seq += t->bs;
	if (c->next_seq >= c->span)
		c->next_seq = 0;
	return off;
}

/* Queue one request on slot i (the slot is its buffer and its user_data). */
static int bb_queue(struct bb_ctx *c, const struct bb_test *t, unsigned int i)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);
	uint64_t off = bb_next_offset(c, t);

	if (!sqe)
		return -EBUSY;
	if (t->write)
		io_uring_prep_write(sqe, c->fd, c->buf[i], t->bs, off);
	else
		io_uring_prep_read(sqe, c->fd, c->buf[i], t->bs, off);
	io_uring_sqe_set_data64(sqe, i);
	return 0;
}

static int bb_run(struct bb_ctx *c, const struct bb_test *t, unsigned int qd, double secs,
		  struct bb_result *res)
{
	struct io_uring_cqe *cqe;
	unsigned int i, inflight = 0;
	double start, end;
	bool stopping = false;
	int ret, err = 0;

	memset(res, 0, sizeof(*res));
	c->next_seq = 0;
	c->rng = 0x9e3779b97f4a7c15ull;
	for (i = 0; i < qd; i++) {
		ret = bb_queue(c, t, i);
		if (ret)
			return ret;
	}
	start = bb_now();
	end = start + secs;
	ret = io_uring_submit(&c->ring);
	if (ret < 0)
		return ret;
	inflight = qd;
	while (inflight) {
		ret = io_uring_wait_cqe(&c->ring, &cqe);
		if (ret == -EINTR)
			continue;
		if (ret < 0)
			return ret;
		i = (unsigned int)io_uring_cqe_get_data64(cqe);
		ret = cqe->res;
		io_uring_cqe_seen(&c->ring, cqe);
		inflight--;
		if (ret != (int)t->bs) {
			/* A short transfer is an error too: every request is in bounds. */
			err = ret < 0 ? ret : -EIO;
			stopping = true;
			continue;
		}
		if (stopping)
			continue;
		res->ops++;
		res->bytes += t->bs;
		if (bb_now() >= end) {
			res->secs = bb_now() - start;
			stopping = true;
			continue;
		}
		ret = bb_queue(c, t, i);
		if (!ret)
			ret = io_uring_submit(&c->ring);
		if (ret < 0)
			return ret;
		inflight++;
	}
	return err;
}

static int bb_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	unsigned int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'K':
	case 'k':
		shift = 10;
		end++;
		break;
	case 'M':
	case 'm':
		shift = 20;
		end++;
		break;
	case 'G':
	case 'g':
		shift = 30;
		end++;
		break;
	case '\0':
		break;
	default:
		return -EINVAL;
	}
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

static int bb_target_size(int fd, uint64_t *size)
{
	struct stat st;

	if (fstat(fd, &st))
		return -errno;
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, size))
			return -errno;
		return 0;
	}
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	*size = (uint64_t)st.st_size;
	return 0;
}

static bool bb_selected(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	if (!list)
		return true;
	while (p && *p) {
		if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0'))
			return true;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return false;
}

static void bb_usage(FILE *f)
{
	unsigned int i;

	fprintf(f, "usage: blkbench [-t SECONDS] [-s SIZE] [-q SEQ_QD] [-o TEST[,TEST...]] PATH\n"
		   "tests:");
	for (i = 0; i < BB_NR_TESTS; i++)
		fprintf(f, " %s", bb_tests[i].name);
	fprintf(f, "\n");
}

int main(int argc, char **argv)
{
	struct bb_ctx c = {.fd = -1};
	const char *only = NULL, *path;
	double secs = 5;
	uint64_t size, limit = 0;
	unsigned int seq_qd = 4, i, j, nbuf = 0;
	int opt, ret, status = 0;
	bool ring = false;

	while ((opt = getopt(argc, argv, "t:s:q:o:h")) != -1) {
		switch (opt) {
		case 't':
			secs = strtod(optarg, NULL);
			if (!(secs > 0 && secs <= 3600)) {
				fprintf(stderr, "blkbench: -t: 0 < SECONDS <= 3600\n");
				return 2;
			}
			break;
		case 's':
			if (bb_parse_size(optarg, &limit) || limit < BB_SEQ_BS) {
				fprintf(stderr, "blkbench: -s: a size of at least 1M\n");
				return 2;
			}
			break;
		case 'q':
			seq_qd = (unsigned int)strtoul(optarg, NULL, 10);
			if (seq_qd < 1 || seq_qd > BB_MAX_QD) {
				fprintf(stderr, "blkbench: -q: 1..%d\n", BB_MAX_QD);
				return 2;
			}
			break;
		case 'o':
			only = optarg;
			break;
		case 'h':
			bb_usage(stdout);
			return 0;
		default:
			bb_usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		bb_usage(stderr);
		return 2;
	}
	path = argv[optind];

	c.fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (c.fd < 0) {
		fprintf(stderr, "blkbench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	ret = bb_target_size(c.fd, &size);
	if (ret) {
		fprintf(stderr, "blkbench: %s: size: %s\n", path, strerror(-ret));
		status = 1;
		goto out;
	}
	if (limit && limit < size)
		size = limit;
	c.span = size / BB_SEQ_BS * BB_SEQ_BS;
	if (!c.span) {
		fprintf(stderr, "blkbench: %s: smaller than 1 MiB\n", path);
		status = 1;
		goto out;
	}
	for (nbuf = 0; nbuf < BB_MAX_QD; nbuf++) {
		if (posix_memalign(&c.buf[nbuf], BB_ALIGN, BB_SEQ_BS)) {
			fprintf(stderr, "blkbench: out of memory\n");
			status = 1;
			goto out;
		}
		bb_fill(c.buf[nbuf], BB_SEQ_BS, nbuf + 1);
	}
	ret = io_uring_queue_init(BB_MAX_QD, &c.ring, 0);
	if (ret) {
		fprintf(stderr, "blkbench: io_uring_queue_init: %s\n", strerror(-ret));
		status = 1;
		goto out;
	}
	ring = true;

	printf("# blkbench %s span=%" PRIu64 " MiB secs=%g seq_qd=%u\n", path, c.span >> 20, secs,
	       seq_qd);
	for (i = 0; i < BB_NR_TESTS; i++) {
		const struct bb_test *t = &bb_tests[i];
		unsigned int qd = t->qd ? t->qd : seq_qd;
		struct bb_result r;

		if (!bb_selected(only, t->name))
			continue;
		ret = bb_run(&c, t, qd, secs, &r);
		if (ret) {
			fprintf(stderr, "blkbench: %s: %s\n", t->name, strerror(-ret));
			status = 1;
			break;
		}
		if (t->random)
			printf("%s %.0f IOPS\n", t->name, (double)r.ops / r.secs);
		else
			printf("%s %.1f MB/s\n", t->name, (double)r.bytes / r.secs / 1e6);
		fflush(stdout);
	}

out:
	if (ring)
		io_uring_queue_exit(&c.ring);
	for (j = 0; j < nbuf; j++)
		free(c.buf[j]);
	close(c.fd);
	return status;
}
