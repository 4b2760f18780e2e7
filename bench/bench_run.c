// SPDX-License-Identifier: Apache-2.0
/*
 * bench-run: run one VMM process and report how long it lived and how much memory it used
 * besides guest RAM, without racing a short-lived process.
 *
 *   bench-run [-o OUT] [-e ERR] [-s SMAPS] [-t SECONDS] -- PROGRAM [ARG...]
 *
 * Prints one line of key=value pairs on stdout (times from the child's execve(), in µs, minus
 * the time we held it stopped to read /proc):
 *   status        exit status, or sigN if the process was killed by signal N
 *   wall_us       exec -> process reaped (the kernel's teardown included)
 *   first_exit_us exec -> the first thread of the process enters do_exit(); first_exit_comm is
 *                 its name. For a VMM whose vCPU thread ends when the guest asks to stop (vmm,
 *                 QEMU's isa-debug-exit), this is "guest exit handled", before most teardown.
 *   last_exit_us  exec -> the last exit stop: the thread that ends the process (exit_group)
 *   exits         number of exit stops seen; 0 means no memory numbers (killed by a signal)
 *   hwm_kb        VmHWM at the last exit stop: peak RSS of the process, shared memory included
 *   rss_anon_kb rss_file_kb
 *                 RssAnon and RssFile (proc(5)) at the exit stop where their sum was largest
 *   rss_shmem_kb  the largest RssShmem seen at an exit stop (guest RAM in a memfd)
 *   maxrss_kb     wait4()'s ru_maxrss (the same peak as VmHWM)
 *
 * -s SMAPS saves /proc/PID/smaps at the exit stop, to see which mappings make up the RSS.
 *
 * Why ptrace: a VMM that runs a trivial guest lives a few milliseconds, far too short to sample
 * /proc reliably. PTRACE_O_TRACEEXIT stops a thread at the start of do_exit(), while the mm is
 * intact (ptrace(2), "PTRACE_EVENT_EXIT stops"). Threads killed by exit_group() do not stop (they
 * have SIGKILL pending), so every thread is traced (PTRACE_O_TRACECLONE): each thread that ends
 * on its own and the one that calls exit_group() are caught, whichever they are (QEMU ends from
 * its vCPU thread, vmm joins its vCPU threads and ends from the main thread). Memory is read at
 * every such stop, so a VMM that unmaps things in user space before exit_group() is still seen
 * at its largest. PTRACE_SEIZE is used instead of PTRACE_TRACEME so that execve() does not stop.
 *
 * The start time is taken in the child right before execve() and passed back through a shared
 * page, so fork() and our own scheduling are not counted.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vmm/compiler.h"

struct run_shared {
	struct timespec t_exec; /* child: right before execve */
	int exec_errno;		/* child: execve failed with this */
};

struct mem_sample {
	long hwm_kb, anon_kb, file_kb, shmem_kb;
};

struct run_result {
	int wstatus;
	uint64_t wall_ns, first_exit_ns, last_exit_ns; /* already minus stopped_ns */
	uint64_t stopped_ns;
	unsigned int exits;
	char first_comm[32];
	struct mem_sample mem; /* anon/file of the largest sample, hwm last, shmem max */
	long maxrss_kb;
};

static volatile sig_atomic_t run_timed_out;
static volatile pid_t run_child;

static void run_on_alarm(int sig)
{
	(void)sig;
	run_timed_out = 1;
	if (run_child > 0)
		kill(run_child, SIGKILL);
}

static uint64_t ts_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * 1000000000ULL + (uint64_t)ts->tv_nsec;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts_ns(&ts);
}

/* Reads the "Key:   123 kB" fields we need from /proc/PID/task/TID/status. */
static WUR int status_read(pid_t pid, pid_t tid, struct mem_sample *m)
{
	char path[64], buf[8192];
	ssize_t n;
	size_t len = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	buf[len] = '\0';

	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{"VmHWM:", offsetof(struct mem_sample, hwm_kb)},
		{"RssAnon:", offsetof(struct mem_sample, anon_kb)},
		{"RssFile:", offsetof(struct mem_sample, file_kb)},
		{"RssShmem:", offsetof(struct mem_sample, shmem_kb)},
	};
	unsigned int found = 0;
	for (char *line = buf, *nl; line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
			size_t kl = strlen(keys[i].key);
			if (strncmp(line, keys[i].key, kl) == 0) {
				*(long *)((char *)m + keys[i].off) = strtol(line + kl, NULL, 10);
				found++;
			}
		}
	}
	/* A task without an mm (already past exit_mm) has no Vm/Rss lines. */
	return found == ARRAY_SIZE(keys) ? 0 : -ENODATA;
}

static void child_run(int gate, struct run_shared *sh, const char *out, const char *err,
		      char **argv)
{
	char c;
	int fd;

	fd = open("/dev/null", O_RDONLY);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		_exit(126);
	fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
		_exit(126);
	fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
		_exit(126);
	/* Wait until the parent has seized us, so that no event is missed. */
	if (read(gate, &c, 1) != 1)
		_exit(126);
	close(gate);
	clock_gettime(CLOCK_MONOTONIC, &sh->t_exec);
	execvp(argv[0], argv);
	sh->exec_errno = errno;
	_exit(127);
}

/* The task's name, for the report ("CPU 0/KVM", "vcpu0", ...). */
static void comm_read(pid_t pid, pid_t tid, char *buf, size_t size)
{
	char path[64];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, size - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	/* One token in a key=value line: no newline, no blanks. */
	for (char *c = buf; *c; c++)
		if (*c == '\n' || *c == ' ' || *c == '=')
			*c = *c == '\n' ? '\0' : '_';
	if (!buf[0])
		snprintf(buf, size, "?");
}

/* At an exit stop: keep the largest anon+file, the largest shmem and the latest peak. */
static void run_sample(pid_t pid, pid_t tid, struct run_result *r)
{
	struct mem_sample m;

	if (status_read(pid, tid, &m) < 0)
		return;
	if (m.anon_kb + m.file_kb > r->mem.anon_kb + r->mem.file_kb) {
		r->mem.anon_kb = m.anon_kb;
		r->mem.file_kb = m.file_kb;
	}
	r->mem.shmem_kb = MAX(r->mem.shmem_kb, m.shmem_kb);
	r->mem.hwm_kb = MAX(r->mem.hwm_kb, m.hwm_kb);
}

/* Copies /proc/PID/task/TID/smaps to PATH (best effort: a diagnostic, not a measurement). */
static void smaps_save(pid_t pid, pid_t tid, const char *path)
{
	char src[64], buf[65536];
	int in, out;
	ssize_t n;

	snprintf(src, sizeof(src), "/proc/%d/task/%d/smaps", (int)pid, (int)tid);
	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return;
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out >= 0) {
		while ((n = read(in, buf, sizeof(buf))) > 0)
			if (write(out, buf, (size_t)n) != n)
				break;
		close(out);
	}
	close(in);
}

/* Runs the traced process to its end; returns 0 or -errno for a failure of our own. */
static WUR int run_trace(pid_t pid, struct run_result *r, const char *smaps)
{
	for (;;) {
		struct rusage ru;
		int st;
		pid_t tid = wait4(-1, &st, __WALL, &ru);
		uint64_t t = now_ns();

		if (tid < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			/* The leader is reported only once every other thread is gone. */
			if (tid == pid) {
				r->wstatus = st;
				r->wall_ns = t - r->stopped_ns;
				r->maxrss_kb = ru.ru_maxrss;
				return 0;
			}
			continue;
		}
		if (!WIFSTOPPED(st))
			continue;

		int event = st >> 16, sig = WSTOPSIG(st), inject = 0;
		if (event == PTRACE_EVENT_EXIT) {
			r->last_exit_ns = t - r->stopped_ns;
			if (r->exits++ == 0) {
				r->first_exit_ns = r->last_exit_ns;
				comm_read(pid, tid, r->first_comm, sizeof(r->first_comm));
			}
			run_sample(pid, tid, r);
			/* The latest one wins: the exit_group() caller, unless killed. */
			if (smaps)
				smaps_save(pid, tid, smaps);
			r->stopped_ns += now_ns() - t;
		} else if (event == PTRACE_EVENT_STOP) {
			/* A new thread's first stop, or a group stop: let a group stop be one. */
			if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU) {
				if (ptrace(PTRACE_LISTEN, tid, 0, 0) < 0 && errno != ESRCH)
					return -errno;
				continue;
			}
		} else if (event == 0) {
			inject = sig; /* a signal-delivery stop: deliver it unchanged */
		}
		if (ptrace(PTRACE_CONT, tid, 0, (void *)(intptr_t)inject) < 0 && errno != ESRCH)
			return -errno;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench-run [-o OUT] [-e ERR] [-s SMAPS] [-t SECONDS] -- PROGRAM [ARG...]\n"
		"Runs PROGRAM (stdin /dev/null, stdout OUT, stderr ERR; default /dev/null) and\n"
		"prints: status wall_us first_exit_us first_exit_comm last_exit_us exits hwm_kb\n"
		"rss_anon_kb rss_file_kb rss_shmem_kb maxrss_kb; -s saves /proc/PID/smaps at "
		"exit\n");
}

int main(int argc, char **argv)
{
	const char *out = "/dev/null", *err = "/dev/null", *smaps = NULL;
	unsigned int timeout = 60;
	struct run_result r = {0};
	struct run_shared *sh;
	int opt, gate[2], ret;
	pid_t pid;

	while ((opt = getopt(argc, argv, "+o:e:s:t:h")) != -1) {
		switch (opt) {
		case 'o':
			out = optarg;
			break;
		case 'e':
			err = optarg;
			break;
		case 's':
			smaps = optarg;
			break;
		case 't':
			timeout = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("bench-run: mmap");
		return 1;
	}
	if (pipe2(gate, O_CLOEXEC) < 0) {
		perror("bench-run: pipe2");
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		perror("bench-run: fork");
		return 1;
	}
	if (pid == 0) {
		close(gate[1]);
		child_run(gate[0], sh, out, err, argv + optind);
	}
	close(gate[0]);
	run_child = pid;

	/* EXITKILL: if we die, the VMM does not linger as an orphan. */
	if (ptrace(PTRACE_SEIZE, pid, 0,
		   (void *)(PTRACE_O_TRACEEXIT | PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL)) < 0) {
		perror("bench-run: PTRACE_SEIZE");
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}
	struct sigaction sa = {.sa_handler = run_on_alarm};
	sigaction(SIGALRM, &sa, NULL);
	alarm(timeout);
	if (write(gate[1], "g", 1) != 1) {
		perror("bench-run: write");
		kill(pid, SIGKILL);
	}
	close(gate[1]);

	ret = run_trace(pid, &r, smaps);
	alarm(0);
	if (ret < 0) {
		fprintf(stderr, "bench-run: tracing failed: %s\n", strerror(-ret));
		kill(pid, SIGKILL);
		return 1;
	}
	if (sh->exec_errno) {
		fprintf(stderr, "bench-run: %s: %s\n", argv[optind], strerror(sh->exec_errno));
		return 1;
	}
	if (run_timed_out)
		fprintf(stderr, "bench-run: killed after %u s\n", timeout);

	uint64_t t0 = ts_ns(&sh->t_exec);
	if (WIFEXITED(r.wstatus))
		printf("status=%d", WEXITSTATUS(r.wstatus));
	else
		printf("status=sig%d", WTERMSIG(r.wstatus));
	printf(" wall_us=%" PRIu64 " first_exit_us=%" PRIu64
	       " first_exit_comm=%s last_exit_us=%" PRIu64
	       " exits=%u hwm_kb=%ld rss_anon_kb=%ld rss_file_kb=%ld rss_shmem_kb=%ld "
	       "maxrss_kb=%ld\n",
	       (r.wall_ns - t0) / 1000, r.exits ? (r.first_exit_ns - t0) / 1000 : 0,
	       r.exits ? r.first_comm : "-", r.exits ? (r.last_exit_ns - t0) / 1000 : 0, r.exits,
	       r.mem.hwm_kb, r.mem.anon_kb, r.mem.file_kb, r.mem.shmem_kb, r.maxrss_kb);
	return 0;
}
