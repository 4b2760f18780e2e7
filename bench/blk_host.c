// SPDX-License-Identifier: Apache-2.0
/*
 * bench-blk-host: what the block backends deliver on the host, with no guest in between. It is
 * the ceiling for the virtio-blk rows of the guest benchmarks: a guest number is read against
 * this one on the same file, and the engines against each other.
 *
 * Each engine named runs the same workload (sequential or random reads or writes of bs bytes,
 * depth requests kept in flight, for secs seconds after a one-second warm-up) through
 * blk_image_open() and blk_backend_*() exactly as virtio-blk uses them: submit, kick once,
 * wait on the eventfd, reap, refill. Prints one Markdown row per engine.
 *
 *   bench-blk-host [-e uring,aio,sync] [-p randread|randwrite|read|write] [-b 4096]
 *                  [-d 32] [-t 5] [-s 256M] [-n] FILE
 *
 * -n opens with cache=none (O_DIRECT); without it the page cache serves reads that fit in
 * memory, which measures the engine's overhead rather than the disk. FILE is created and
 * filled when it does not exist or is smaller than -s.
 *
 * Build (not a meson target yet): cc -O2 -D_GNU_SOURCE -Iinclude bench/blk_host.c
 *   BUILD/virtio/libvirtio.a -luring -laio -o bench-blk-host
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/blk_backend.h"

struct bench_opts {
	const char *path;
	const char *engines;
	const char *pattern;
	uint64_t bs, size;
	unsigned int depth;
	double secs;
	bool direct;
};

struct bench_slot {
	struct blk_req req;
	struct iovec iov;
	uint64_t start_ns;
};

struct bench_run {
	const struct bench_opts *o;
	struct blk_backend *b;
	bool write, random;
	uint64_t nblocks, next_seq, rng;
	uint64_t ios, bytes, lat_ns, errors;
	bool counting, stopping;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v *= KiB;
		end++;
		break;
	case 'm':
	case 'M':
		v *= MiB;
		end++;
		break;
	case 'g':
	case 'G':
		v *= GiB;
		end++;
		break;
	}
	if (*end || !v)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Make FILE at least size bytes of non-zero data, so reads hit real blocks, not holes. */
static int bench_prepare(const char *path, uint64_t size)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || (S_ISREG(st.st_mode) && (uint64_t)st.st_size >= size) ||
	    !S_ISREG(st.st_mode))
		goto out;
	buf = malloc(MiB);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	memset(buf, 0x5a, MiB);
	for (uint64_t off = 0; off < size && !r; off += MiB) {
		uint64_t n = MIN(MiB, size - off);

		if (pwrite(fd, buf, n, (off_t)off) != (ssize_t)n)
			r = -EIO;
	}
	free(buf);
	if (!r && fsync(fd) < 0)
		r = -errno;
out:
	close(fd);
	return r;
}

static void bench_issue(struct bench_run *run, struct bench_slot *s)
{
	uint64_t blk =
		run->random ? xorshift(&run->rng) % run->nblocks : run->next_seq++ % run->nblocks;

	s->req = (struct blk_req){
		.op = run->write ? BLK_OP_WRITE : BLK_OP_READ,
		.offset = blk * run->o->bs,
		.len = run->o->bs,
		.iov = &s->iov,
		.iovcnt = 1,
		.opaque = s,
	};
	s->start_ns = now_ns();
	if (blk_backend_submit(run->b, &s->req) < 0)
		run->errors++;
}

static void bench_done(void *opaque, struct blk_req *req)
{
	struct bench_run *run = opaque;
	struct bench_slot *s = req->opaque;

	if (req->result != (int64_t)req->len)
		run->errors++;
	if (run->counting) {
		run->ios++;
		run->bytes += req->len;
		run->lat_ns += now_ns() - s->start_ns;
	}
	if (!run->stopping)
		bench_issue(run, s);
}

static int bench_engine(const struct bench_opts *o, enum blk_engine e)
{
	struct bench_run run = {.o = o, .rng = 0x9E3779B97F4A7C15ULL};
	struct bench_slot *slots = NULL;
	struct blk_backend_config cfg;
	struct blk_image img;
	char err[256];
	uint64_t t0, t_end;
	int r;

	run.write = strstr(o->pattern, "write") != NULL;
	run.random = strncmp(o->pattern, "rand", 4) == 0;
	r = blk_image_open(&img, o->path, !run.write,
			   o->direct ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "bench-blk-host: %s\n", err);
		return r;
	}
	run.nblocks = MIN(img.size, o->size) / o->bs;
	if (!run.nblocks) {
		fprintf(stderr, "bench-blk-host: %s: smaller than one block\n", o->path);
		r = -EINVAL;
		goto out_img;
	}
	cfg.depth = o->depth;
	cfg.direct = img.direct;
	cfg.dio_align = img.dio_align;
	r = blk_backend_open(e, img.fd, &cfg, &run.b);
	if (r < 0) {
		fprintf(stderr, "bench-blk-host: %s: %s\n", blk_engine_name(e), strerror(-r));
		goto out_img;
	}
	slots = calloc(o->depth, sizeof(*slots));
	if (!slots) {
		r = -ENOMEM;
		goto out_be;
	}
	for (unsigned int i = 0; i < o->depth; i++) {
		if (posix_memalign(&slots[i].iov.iov_base, 4096, o->bs)) {
			r = -ENOMEM;
			goto out_slots;
		}
		memset(slots[i].iov.iov_base, 0xa5, o->bs);
		slots[i].iov.iov_len = o->bs;
		bench_issue(&run, &slots[i]);
	}
	blk_backend_kick(run.b);

	/* one second of warm-up, then the measured interval */
	t0 = now_ns();
	t_end = t0 + 1000000000ULL;
	for (int phase = 0; phase < 2; phase++) {
		while (now_ns() < t_end) {
			struct pollfd p = {.fd = blk_backend_event_fd(run.b), .events = POLLIN};

			if (poll(&p, 1, 100) > 0 && blk_backend_reap(run.b, bench_done, &run))
				blk_backend_kick(run.b);
		}
		if (phase == 0) {
			run.counting = true;
			t0 = now_ns();
			t_end = t0 + (uint64_t)(o->secs * 1e9);
		}
	}
	run.counting = false;
	run.stopping = true;
	blk_backend_drain(run.b, bench_done, &run);
	{
		double secs = (double)(now_ns() - t0) / 1e9;

		printf("| %s | %s | %llu | %u | %s | %.0f | %.1f | %.1f | %llu |\n",
		       blk_engine_name(e), o->pattern, (unsigned long long)o->bs, o->depth,
		       o->direct ? "none" : "writeback", (double)run.ios / secs,
		       (double)run.bytes / secs / (double)MiB,
		       run.ios ? (double)run.lat_ns / (double)run.ios / 1000.0 : 0.0,
		       (unsigned long long)run.errors);
		fflush(stdout);
	}
	r = 0;
out_slots:
	for (unsigned int i = 0; i < o->depth; i++)
		free(slots[i].iov.iov_base);
	free(slots);
out_be:
	blk_backend_close(run.b);
out_img:
	blk_image_close(&img);
	return r;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench-blk-host [-e uring,aio,sync] [-p randread|randwrite|read|write]"
		" [-b BS] [-d DEPTH] [-t SECS] [-s SIZE] [-n] FILE\n");
}

int main(int argc, char **argv)
{
	struct bench_opts o = {
		.engines = "uring,aio,sync",
		.pattern = "randread",
		.bs = 4096,
		.size = 256 * MiB,
		.depth = 32,
		.secs = 5,
	};
	char *list, *tok, *save = NULL;
	int c, status = 0, r;

	while ((c = getopt(argc, argv, "e:p:b:d:t:s:nh")) != -1) {
		switch (c) {
		case 'e':
			o.engines = optarg;
			break;
		case 'p':
			o.pattern = optarg;
			break;
		case 'b':
			if (parse_size(optarg, &o.bs) < 0 || o.bs % 512)
				goto bad;
			break;
		case 'd':
			o.depth = (unsigned int)atoi(optarg);
			if (!o.depth)
				goto bad;
			break;
		case 't':
			o.secs = atof(optarg);
			if (o.secs <= 0)
				goto bad;
			break;
		case 's':
			if (parse_size(optarg, &o.size) < 0)
				goto bad;
			break;
		case 'n':
			o.direct = true;
			break;
		default:
			goto bad;
		}
	}
	if (optind != argc - 1)
		goto bad;
	if (strcmp(o.pattern, "randread") && strcmp(o.pattern, "randwrite") &&
	    strcmp(o.pattern, "read") && strcmp(o.pattern, "write"))
		goto bad;
	o.path = argv[optind];
	r = bench_prepare(o.path, o.size);
	if (r < 0) {
		fprintf(stderr, "bench-blk-host: %s: %s\n", o.path, strerror(-r));
		return 1;
	}

	printf("| engine | pattern | bs | depth | cache | IOPS | MiB/s | mean latency µs | errors "
	       "|\n");
	printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
	list = strdup(o.engines);
	if (!list)
		return 1;
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		enum blk_engine e;

		if (blk_engine_parse(tok, &e) < 0) {
			fprintf(stderr, "bench-blk-host: unknown engine '%s'\n", tok);
			status = 1;
			continue;
		}
		if (bench_engine(&o, e) < 0)
			status = 1;
	}
	free(list);
	return status;
bad:
	usage();
	return 2;
}
