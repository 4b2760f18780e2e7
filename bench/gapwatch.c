// SPDX-License-Identifier: Apache-2.0
/*
 * gapwatch: watch the "beat" record of the micro-guest's gap scenario (tests/guest/micro/gap.c:
 * the magic "GAPBEAT1", then the TSC the guest read in its latest loop iteration) from the host,
 * and say when the guest stopped and started again, in the host's CLOCK_MONOTONIC. This is the
 * guest's stop as the world sees it, whatever the VMM does with the guest's TSC.
 *
 *   gapwatch watch FILE OFFSET [THRESHOLD_US]
 *       FILE is guest RAM, shared (a memfd, opened as /proc/PID/fd/N: it stays the same pages
 *       across a live update of vmm or a cpr-transfer of QEMU, whichever process has it);
 *       OFFSET the beat's offset in it. Prints "READY" and then, for every stop longer than
 *       THRESHOLD_US (default 300), "STALL <t_last_ns> <t_next_ns> <us> <drift>": the last
 *       sample that saw the beat move, the first that saw it move again, their distance, and
 *       how many ticks the guest's TSC gained on the host's across the stop (negative: it lost;
 *       0 give or take a loop iteration of the guest, ~20 us here, if the VMM carried the TSC
 *       forward by the real time that passed), printed AFTER_SAMPLES samples after the stop.
 *       Stops on EOF of its standard input.
 *
 *   gapwatch first MAPNAME OFFSET OLDVAL -- PROGRAM [ARG...]
 *       Starts PROGRAM (a VMM restoring a snapshot of the gap guest, the beat's TSC then being
 *       OLDVAL) and waits until the beat in its guest RAM holds a larger value: the restored
 *       guest has run (a TSC only goes forward; a migration stream can hold older copies of the
 *       beat's page, which a restore writes first and then overwrites). Guest RAM is the mapping of /proc/PID/maps whose name contains MAPNAME
 *       (the memory file, or "memfd:NAME"), read through /proc/PID/mem. Prints "mapped_us=N
 *       first_us=N" (from just before fork to the mapping showing up / to the beat moving),
 *       then kills PROGRAM. PROGRAM's standard output goes to our standard error. Exit 0 on
 *       success.
 *
 * Samples are about 100 us apart (nanosleep with a 1 ns timer slack, so that the sampler does not
 * take a CPU from the VMM), so a stop is seen between its length and its length plus two
 * sampling intervals; "watch" prints the sampling interval's median at EOF ("INTERVAL us=N").
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GAP_MAGIC   0x3154414542504147ULL /* "GAPBEAT1" */
#define SAMPLE_NS   100000
#define HIST_MAX    (1 << 16)
#define AFTER_SAMPLES 8
#define FIRST_LIMIT 60000000000ULL /* ns */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The host's TSC: the guest's, less KVM's offset (same rate: no TSC scaling here). */
static uint64_t host_tsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static void nap(void)
{
	struct timespec ts = { 0, SAMPLE_NS };

	nanosleep(&ts, NULL);
}

static void stall_print(uint64_t a, uint64_t b, int64_t drift)
{
	printf("STALL %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64 "\n", a, b, (b - a) / 1000, drift);
	fflush(stdout);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int watch(const char *file, uint64_t off, uint64_t thresh_us)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint64_t base = off & ~(uint64_t)(pg - 1);
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	static uint32_t hist[HIST_MAX];
	uint32_t nhist = 0;

	if (fd < 0) {
		fprintf(stderr, "gapwatch: %s: %s\n", file, strerror(errno));
		return 1;
	}
	const uint8_t *map = mmap(NULL, (size_t)pg * 2, PROT_READ, MAP_SHARED, fd, (off_t)base);
	close(fd);
	if (map == MAP_FAILED) {
		fprintf(stderr, "gapwatch: mmap %s: %s\n", file, strerror(errno));
		return 1;
	}
	const volatile uint64_t *beat = (const volatile uint64_t *)(map + (off - base));
	if (beat[0] != GAP_MAGIC) {
		fprintf(stderr, "gapwatch: no beat at offset 0x%" PRIx64 " of %s\n", off, file);
		return 1;
	}
	printf("READY\n");
	fflush(stdout);

	struct pollfd in = { .fd = 0, .events = POLLIN };
	uint64_t last_val = beat[1], last_seen = now_ns(), prev = last_seen;
	/*
	 * The guest's TSC less the host's is constant while the guest runs (same rate), and the
	 * same after a stop if the VMM carried the guest's TSC forward by the real time that
	 * passed. A sample sees the beat as the guest last stored it, a little stale, so the
	 * offset is taken as the largest over the samples since the last stop (before) and over
	 * the first AFTER_SAMPLES that saw the beat move after it (after).
	 */
	int64_t best = (int64_t)(last_val - host_tsc());
	struct { uint64_t a, b; int64_t before; int left; } pend = { 0, 0, 0, 0 };
	for (unsigned long n = 0;; n++) {
		nap();
		uint64_t t = now_ns(), v = beat[1], h = host_tsc();

		if (nhist < HIST_MAX)
			hist[nhist++] = (uint32_t)((t - prev) / 1000);
		prev = t;
		if (v != last_val) {
			int64_t skew = (int64_t)(v - h);

			if (t - last_seen > thresh_us * 1000) {
				if (pend.left)
					stall_print(pend.a, pend.b, best - pend.before);
				pend.a = last_seen;
				pend.b = t;
				pend.before = best;
				pend.left = AFTER_SAMPLES;
				best = skew;
			} else if (skew > best) {
				best = skew;
			}
			if (pend.left && !--pend.left)
				stall_print(pend.a, pend.b, best - pend.before);
			last_val = v;
			last_seen = t;
		}
		/* stdin: every 256 samples (~30 ms), it only says when to stop */
		if (!(n & 255) && poll(&in, 1, 0) > 0) {
			char buf[256];

			if (read(0, buf, sizeof(buf)) <= 0)
				break;
		}
	}
	qsort(hist, nhist, sizeof(hist[0]), cmp_u32);
	printf("INTERVAL us=%u\n", nhist ? hist[nhist / 2] : 0);
	return 0;
}

/* The start of the mapping of pid whose path contains name, 0 if none (yet). */
static uint64_t find_map(pid_t pid, const char *name, uint64_t need)
{
	char path[64], line[4352];
	uint64_t found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	if (!(f = fopen(path, "re")))
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		unsigned long long lo, hi;

		if (sscanf(line, "%llx-%llx", &lo, &hi) == 2 && strstr(line, name) &&
		    hi - lo >= need)
			found = lo;
	}
	fclose(f);
	return found;
}

/*
 * Whether pid has a vCPU thread yet (vmm's "vcpu0", QEMU's "CPU 0/KVM"). Guest RAM is read
 * only from then on: vmm restores RAM lazily (a memfd whose pages userfaultfd fills from the
 * snapshot on first touch), and a read through /proc/PID/mem before the filler is registered
 * would put a page of zeros into the memfd in place of the snapshot's page.
 */
static bool has_vcpu(pid_t pid)
{
	char path[96], comm[64];
	bool found = false;
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (!(d = opendir(path)))
		return false;
	while (!found && (e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/comm", pid, e->d_name);
		if ((f = fopen(path, "re"))) {
			found = fgets(comm, sizeof(comm), f) &&
				(!strncmp(comm, "vcpu0", 5) || !strncmp(comm, "CPU 0/KVM", 9));
			fclose(f);
		}
	}
	closedir(d);
	return found;
}

static int first(const char *name, uint64_t off, uint64_t oldval, char **argv)
{
	char path[64];
	int memfd = -1, st;
	uint64_t mapped = 0, at = 0;

	uint64_t t0 = now_ns();
	pid_t pid = fork();
	if (pid == 0) {
		/* Its console and messages to our stderr: stdout carries our answer only. */
		dup2(2, 1);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0) {
		perror("gapwatch: fork");
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	for (;;) {
		uint64_t t = now_ns();

		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "gapwatch: %s exited (status 0x%x) before its guest ran\n",
				argv[0], st);
			return 1;
		}
		if (t - t0 > FIRST_LIMIT) {
			fprintf(stderr, "gapwatch: the restored guest did not run in %llu s\n",
				FIRST_LIMIT / 1000000000ULL);
			break;
		}
		if (!at) {
			if ((at = find_map(pid, name, off + 16))) {
				if (!mapped)
					mapped = now_ns();
				at = has_vcpu(pid) ? at : 0;
			}
			if (at)
				memfd = open(path, O_RDONLY | O_CLOEXEC);
			if (!at) {
				usleep(200);
				continue;
			}
		}
		uint64_t b[2];
		if (memfd >= 0 && pread(memfd, b, sizeof(b), (off_t)(at + off)) == sizeof(b) &&
		    b[0] == GAP_MAGIC && b[1] > oldval) {
			printf("mapped_us=%" PRIu64 " first_us=%" PRIu64 "\n", (mapped - t0) / 1000,
			       (t - t0) / 1000);
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return 0;
		}
		nap();
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return 1;
}

static uint64_t num(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 0);

	if (errno || !*s || *end) {
		fprintf(stderr, "gapwatch: not a number: %s\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	if (argc >= 4 && argc <= 5 && !strcmp(argv[1], "watch"))
		return watch(argv[2], num(argv[3]), argc == 5 ? num(argv[4]) : 300);
	if (argc >= 7 && !strcmp(argv[1], "first") && !strcmp(argv[5], "--"))
		return first(argv[2], num(argv[3]), num(argv[4]), argv + 6);
	fprintf(stderr, "usage: gapwatch watch FILE OFFSET [THRESHOLD_US]\n"
			"       gapwatch first MAPNAME OFFSET OLDVAL -- PROGRAM [ARG...]\n");
	return 2;
}
