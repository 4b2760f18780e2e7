// SPDX-License-Identifier: Apache-2.0
/*
 * lutool: the test host's helpers of the live-update case (cases/liveupdate.cases, lu-run.sh);
 * static, compiled by testhost.sh as apictl is.
 *
 *   lutool supervise EXITLOG CMD [ARG...]
 *        run CMD as a child subreaper: every vmm that a live update leaves behind (the new
 *        process is the old one's child, and the old one exits) is re-parented to us, and
 *        each process we reap is appended to EXITLOG as "exit PID STATUS UPTIME" (STATUS
 *        128+n for signal n; UPTIME in seconds, as /proc/uptime). Once CMD has ended, what
 *        is left gets 10 s, then SIGKILL. Exit: CMD's. SIGTERM or SIGINT (runcases.sh's
 *        watchdog): CMD gets SIGTERM, the others SIGKILL.
 *   lutool wait FILE OFFSET TEXT SECS
 *        wait until TEXT appears in FILE after byte OFFSET (exit 0), or SECS pass (exit 1)
 *   lutool skew CONSOLE COUNT SECS LABEL [REF]
 *        wait for COUNT heartbeats ("VMMTEST hb N SECS.USECS", the guest's CLOCK_REALTIME)
 *        written to CONSOLE from now on, and compare each with this host's CLOCK_REALTIME as
 *        the line is seen (polled every 2 ms). A line is seen late, never early, so each
 *        difference (host minus guest) is the clocks' offset plus a delay >= 0: the smallest
 *        is the estimate (an upper bound of the offset; a delay can only make a guest clock
 *        that is behind look further behind). Prints "LU LABEL=+S.SSSs n=COUNT
 *        spread=S.SSSs" with it; exit 0 if it is within 1 s either way. With REF (an
 *        earlier estimate, in seconds), also "LU LABEL-shift=+S.SSSs", the change since, which
 *        must be under 0.25 s either way: the guest's clock set at boot from the RTC is off by
 *        up to half a second (Linux's hctosys), but a restore or an update must keep it.
 *   lutool stamp LABEL
 *        print "STAMP LABEL tsc=N boot=S.SSSSSS": the CPU's time-stamp counter and this
 *        kernel's CLOCK_BOOTTIME. The counter goes on across a kexec of the test host (no
 *        reset happens), so stamps taken before and after one measure it (bench/hostupdate.sh).
 *   lutool kexec KERNEL INITRD CMDLINE
 *        load KERNEL and INITRD with kexec_file_load, sync, and jump into it (what vmm
 *        hostupdate does at its end; for a case that kexecs the test host under another VMM)
 *   lutool records IMAGE CONSOLE [BYTES]
 *        the check after the VM ended: every "VMMTEST ack N" of CONSOLE (N = 1.. without a
 *        gap or repeat) has its record in sector N of IMAGE, intact (init.sh's records():
 *        "LUREC CRC BODY\n", zeros to 512 bytes, the CRC-32 of BODY, BODY's sequence number
 *        N and work value right), the guest's own count of acks ("records acked=N") agrees,
 *        sectors past the last ack are zero, and the heartbeats are numbered without a gap
 *        with a guest clock that never goes back. "LU records-ok ..." and "LU heartbeats-ok
 *        ..." or "LU FAIL ..." lines; exit 0 if all is well.
 *        With BYTES: only the acks in the first BYTES of CONSOLE (what a vmm killed with
 *        SIGKILL had acknowledged, against a copy of the image made then), whose records
 *        must all be there; what follows them is not looked at ("LU records-at-kill-ok").
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <linux/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SECTOR 512

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- supervise ---- */

static int wstatus_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 255;
}

/* SIGKILL our children, naming those still running (once each: a second call is silent). */
static void kill_children(FILE *log, bool quiet)
{
	char path[64], buf[4096];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
	f = fopen(path, "r");
	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f)) {
		for (char *tok = strtok(buf, " \n"); tok; tok = strtok(NULL, " \n")) {
			int pid = atoi(tok);

			if (pid > 0 && kill(pid, SIGKILL) == 0 && !quiet) {
				printf("LU FAIL process %d still running after the driver: killed\n",
				       pid);
				fprintf(log, "leftover %d\n", pid);
			}
		}
	}
	fclose(f);
	fflush(stdout);
}

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

static int supervise(const char *logpath, char **cmd)
{
	struct sigaction sa = { .sa_handler = on_stop_signal }; /* no SA_RESTART: waitpid EINTR */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	FILE *log = fopen(logpath, "a");
	int cmd_status = 255, st, kills = 0;
	bool cmd_done = false;
	double deadline = 0;
	pid_t cmd_pid, w;

	if (!log) {
		fprintf(stderr, "lutool: %s: %s\n", logpath, strerror(errno));
		return 2;
	}
	setvbuf(log, NULL, _IOLBF, 0);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		fprintf(stderr, "lutool: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fflush(stdout);
	cmd_pid = fork();
	if (cmd_pid < 0)
		return 2;
	if (cmd_pid == 0) {
		fclose(log);
		sigaction(SIGTERM, &dfl, NULL);
		sigaction(SIGINT, &dfl, NULL);
		execvp(cmd[0], cmd);
		fprintf(stderr, "lutool: %s: %s\n", cmd[0], strerror(errno));
		_exit(127);
	}
	for (;;) {
		if (stop_signal > 0) {
			/* The runner's watchdog: nothing of ours may outlive it. */
			printf("LU FAIL lutool supervise: signal %d, the driver and every vmm "
			       "stopped\n", (int)stop_signal);
			if (!cmd_done)
				kill(cmd_pid, SIGTERM);
			kill_children(log, true);
			kills++;
			stop_signal = -1;
			cmd_status = 128 + SIGTERM;
			deadline = clock_s(CLOCK_MONOTONIC) + 1;
		}
		/* Blocking while the driver runs; polling once it ended or after a signal. */
		w = waitpid(-1, &st, cmd_done || stop_signal ? WNOHANG : 0);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			break; /* ECHILD: nobody left */
		}
		if (w > 0) {
			fprintf(log, "exit %d %d %.2f\n", (int)w, wstatus_code(st),
				clock_s(CLOCK_BOOTTIME));
			if (w == cmd_pid) {
				if (!stop_signal)
					cmd_status = wstatus_code(st);
				cmd_done = true;
				if (!kills)
					deadline = clock_s(CLOCK_MONOTONIC) + 10;
			}
			continue;
		}
		/* Some are left: 10 s after the driver, then every second (a vmm killed in a live
		 * update may leave the new one to us). */
		if (clock_s(CLOCK_MONOTONIC) > deadline) {
			kill_children(log, kills > 0);
			kills++;
			deadline = clock_s(CLOCK_MONOTONIC) + 1;
			cmd_status = cmd_status ? cmd_status : 1;
		}
		sleep_ms(50);
	}
	fclose(log);
	return cmd_status;
}

/* ---- wait ---- */

/* The bytes of path from offset on (NUL-terminated; NULL if there are none or on error). */
static char *read_from(const char *path, long offset, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	ssize_t n;

	*len = 0;
	if (fd < 0 || fstat(fd, &st) < 0 || st.st_size <= offset)
		goto out;
	buf = malloc((size_t)(st.st_size - offset) + 1);
	if (!buf)
		goto out;
	n = pread(fd, buf, (size_t)(st.st_size - offset), offset);
	if (n < 0)
		n = 0;
	buf[n] = 0;
	*len = (size_t)n;
out:
	if (fd >= 0)
		close(fd);
	return buf;
}

static int wait_text(const char *path, long offset, const char *text, double secs)
{
	double end = clock_s(CLOCK_MONOTONIC) + secs;

	do {
		size_t len;
		char *buf = read_from(path, offset, &len);
		bool found = buf && memmem(buf, len, text, strlen(text));

		free(buf);
		if (found)
			return 0;
		sleep_ms(50);
	} while (clock_s(CLOCK_MONOTONIC) < end);
	return 1;
}

/* ---- skew ---- */

static long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : 0;
}

static int skew(const char *path, int count, double secs, const char *label, const char *ref)
{
	double end = clock_s(CLOCK_MONOTONIC) + secs, best = 0, worst = 0;
	long offset = file_size(path);
	int seen = 0;

	while (seen < count && clock_s(CLOCK_MONOTONIC) < end) {
		size_t len;
		char *buf = read_from(path, offset, &len), *nl, *line;
		double host = clock_s(CLOCK_REALTIME);

		/* Whole lines only: a line being written is read again next time. */
		for (line = buf; buf && (nl = strchr(line, '\n')); line = nl + 1) {
			unsigned long n;
			double guest, d;
			char *hb;

			*nl = 0;
			offset += (long)(nl + 1 - line);
			hb = strstr(line, "VMMTEST hb ");
			if (!hb || sscanf(hb, "VMMTEST hb %lu %lf", &n, &guest) != 2)
				continue;
			d = host - guest;
			printf("LU %s heartbeat %lu: guest %.6f host %.6f (%+.3f s)\n", label, n,
			       guest, host, d);
			if (seen == 0 || d < best)
				best = d;
			if (seen == 0 || d > worst)
				worst = d;
			if (++seen == count)
				break;
		}
		free(buf);
		if (seen < count)
			sleep_ms(2);
	}
	if (seen < count) {
		printf("LU FAIL %s: %d of %d heartbeats in %.0f s\n", label, seen, count, secs);
		return 1;
	}
	printf("LU %s=%+.3fs n=%d spread=%.3fs\n", label, best, seen, worst - best);
	if (ref) {
		double shift = best - atof(ref);

		printf("LU %s-shift=%+.3fs\n", label, shift);
		if (shift <= -0.25 || shift >= 0.25)
			return 1;
	}
	return best > -1.0 && best < 1.0 ? 0 : 1;
}

/* ---- records ---- */

/* CRC-32 as zlib and busybox crc32 compute it (reflected, polynomial 0xEDB88320). */
static uint32_t crc32_of(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint32_t c = 0xffffffffu;

	while (len--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

static uint64_t work_step(uint64_t x)
{
	return (x * 1103515245u + 12345u) % 2147483648u;
}

/* One record: NULL if sector n of img holds record n with the work value x, else why not. */
static const char *check_record(const unsigned char *sec, unsigned long n, uint64_t x)
{
	static char why[160];
	const char *nl = memchr(sec, '\n', SECTOR), *body;
	unsigned long seq;
	unsigned long long got_x;
	unsigned int crc;
	int used;

	if (!nl)
		return "no record (no newline in the sector)";
	if (sscanf((const char *)sec, "LUREC %8x %n", &crc, &used) != 1 || used != 15)
		return "no LUREC header";
	body = (const char *)sec + used;
	if (crc32_of(body, (size_t)(nl - body)) != crc) {
		snprintf(why, sizeof(why), "CRC %08x, the body's is %08x", crc,
			 crc32_of(body, (size_t)(nl - body)));
		return why;
	}
	if (sscanf(body, "%lu %llu", &seq, &got_x) != 2)
		return "body without a sequence number and a work value";
	if (seq != n) {
		snprintf(why, sizeof(why), "it holds record %lu", seq);
		return why;
	}
	if (got_x != x) {
		snprintf(why, sizeof(why), "work value %llu, want %" PRIu64, got_x, x);
		return why;
	}
	for (const unsigned char *p = (const unsigned char *)nl + 1; p < sec + SECTOR; p++) {
		if (*p)
			return "bytes after the record";
	}
	return NULL;
}

static int records(const char *imgpath, const char *conpath, long upto)
{
	unsigned long acks = 0, hbs = 0, n, work = 0, final = 0, bad = 0, nonzero = 0;
	double last_t = 0, max_gap = 0, t, up, last_up = 0;
	unsigned char sec[SECTOR];
	char line[512];
	FILE *con = fopen(conpath, "r");
	int img = open(imgpath, O_RDONLY | O_CLOEXEC), ok = 1;
	uint64_t x = 1;
	struct stat st;

	if (!con || img < 0 || fstat(img, &st) < 0) {
		printf("LU FAIL records: cannot open %s or %s\n", imgpath, conpath);
		return 1;
	}
	while ((upto < 0 || ftell(con) < upto) && fgets(line, sizeof(line), con)) {
		char *m;

		if (upto >= 0 && ftell(con) > upto)
			break; /* a line cut at BYTES: not in */
		/* The last line, unfinished: the guest was paused or killed while printing it (a
		 * restore prints the rest). An ack not printed whole is not an ack yet. */
		if (line[0] && line[strlen(line) - 1] != '\n' && feof(con))
			break;
		m = strstr(line, "VMMTEST ");
		if (!m)
			continue;
		if (sscanf(m, "VMMTEST records work=%lu", &n) == 1) {
			work = n;
		} else if (sscanf(m, "VMMTEST records acked=%lu", &n) == 1) {
			final = n;
		} else if (sscanf(m, "VMMTEST ack %lu", &n) == 1) {
			if (n != acks + 1) {
				if (ok)
					printf("LU FAIL records: ack %lu after ack %lu\n", n, acks);
				ok = 0;
			}
			acks = n;
		} else if (sscanf(m, "VMMTEST hb %lu %lf", &n, &t) == 2) {
			if (n != hbs + 1) {
				printf("LU FAIL heartbeats: heartbeat %lu after %lu\n", n, hbs);
				ok = 0;
			}
			if (hbs && t < last_t) {
				printf("LU FAIL heartbeats: the guest's clock went back from %.6f to "
				       "%.6f\n", last_t, t);
				ok = 0;
			}
			if (hbs && t - last_t > max_gap)
				max_gap = t - last_t;
			/* The guest's uptime, where the heartbeat says it: never back. */
			if (sscanf(m, "VMMTEST hb %*u %*f up %lf", &up) == 1) {
				if (up < last_up) {
					printf("LU FAIL heartbeats: the guest's uptime went back from "
					       "%.2f to %.2f s (it rebooted)\n", last_up, up);
					ok = 0;
				}
				last_up = up;
			}
			hbs = n;
			last_t = t;
		}
	}
	fclose(con);
	if (!work || !acks) {
		printf("LU FAIL records: the console has no 'records work=' line or no ack\n");
		return 1;
	}
	if (upto < 0 && final != acks) {
		printf("LU FAIL records: the guest says acked=%lu, the console has %lu acks\n",
		       final, acks);
		ok = 0;
	}
	/* Every acknowledged record, then nothing but zeros up to the end of the image. */
	for (n = 1; n * SECTOR < (unsigned long)st.st_size; n++) {
		const char *why = NULL;

		if (pread(img, sec, SECTOR, (off_t)(n * SECTOR)) != SECTOR) {
			printf("LU FAIL records: cannot read sector %lu\n", n);
			ok = 0;
			break;
		}
		if (n <= acks) {
			for (unsigned long k = 0; k < work; k++)
				x = work_step(x);
			why = check_record(sec, n, x);
			if (why && bad++ < 10)
				printf("LU FAIL records: acknowledged record %lu: %s\n", n, why);
		} else if (upto < 0) {
			for (int i = 0; i < SECTOR && !why; i++)
				why = sec[i] ? "not zero" : NULL;
			if (why && nonzero++ < 3)
				printf("LU FAIL records: sector %lu, after the last ack, is not zero\n",
				       n);
		}
	}
	close(img);
	if (bad)
		printf("LU FAIL records: %lu of %lu acknowledged records missing or damaged\n", bad,
		       acks);
	if (bad || nonzero)
		ok = 0;
	if (ok && upto >= 0) {
		printf("LU records-at-kill-ok acked=%lu\n", acks);
	} else if (ok) {
		printf("LU records-ok acked=%lu verified=%lu work=%lu\n", acks, acks, work);
		printf("LU heartbeats-ok n=%lu max-gap=%.1fs uptime=%.1fs\n", hbs, max_gap, last_up);
	}
	return ok ? 0 : 1;
}

static int stamp(const char *label)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	printf("STAMP %s tsc=%llu boot=%.6f\n", label,
	       (unsigned long long)hi << 32 | lo, clock_s(CLOCK_BOOTTIME));
	return 0;
}

static int do_kexec(const char *kernel, const char *initrd, const char *cmdline)
{
	int k = open(kernel, O_RDONLY | O_CLOEXEC), i = open(initrd, O_RDONLY | O_CLOEXEC);

	if (k < 0 || i < 0 ||
	    syscall(SYS_kexec_file_load, k, i, strlen(cmdline) + 1, cmdline, 0UL) < 0) {
		perror("lutool kexec");
		return 1;
	}
	sync();
	syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_KEXEC, NULL);
	perror("lutool kexec: reboot");
	return 1;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[1], "kexec"))
		return do_kexec(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "stamp"))
		return stamp(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "supervise"))
		return supervise(argv[2], argv + 3);
	if (argc == 6 && !strcmp(argv[1], "wait"))
		return wait_text(argv[2], atol(argv[3]), argv[4], atof(argv[5]));
	if ((argc == 6 || argc == 7) && !strcmp(argv[1], "skew"))
		return skew(argv[2], atoi(argv[3]), atof(argv[4]), argv[5], argc == 7 ? argv[6] : NULL);
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "records"))
		return records(argv[2], argv[3], argc == 5 ? atol(argv[4]) : -1);
	fprintf(stderr, "usage: lutool supervise EXITLOG CMD [ARG...] | wait FILE OFFSET TEXT SECS"
			" | skew CONSOLE COUNT SECS LABEL [REF] | records IMAGE CONSOLE [BYTES]\n");
	return 2;
}
