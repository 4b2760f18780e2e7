// SPDX-License-Identifier: Apache-2.0
/*
 * api_up: how long a VMM takes from execve() to answering on its control socket, in wall time
 * and in CPU time of all its threads at that moment (the schedstat of each /proc/PID/task).
 *
 *   api_up [-q] SOCKET -- PROGRAM [ARG...]
 *
 * Without -q the socket speaks Firecracker's API: "GET /" must come back 200. With -q it is
 * QEMU's QMP: its greeting line ({"QMP": ...}) counts as the answer. The VMM is then killed.
 * Prints "wall_us=N cpu_us=N". Exit 0 on success.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t cpu_ns(pid_t pid)
{
	char path[64];
	uint64_t sum = 0;
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	if (!(d = opendir(path)))
		return 0;
	while ((de = readdir(d))) {
		char p[300];
		unsigned long long ns;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", pid, de->d_name);
		if ((f = fopen(p, "re"))) {
			if (fscanf(f, "%llu", &ns) == 1)
				sum += ns;
			fclose(f);
		}
	}
	closedir(d);
	return sum;
}

/* One try: connect, ask (or wait for QMP's greeting), true once answered. */
static bool answered(const char *path, bool qmp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	char buf[512];
	bool ok = false;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	if (!qmp && write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
		goto out;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n > 0) {
		buf[n] = 0;
		ok = qmp ? strstr(buf, "\"QMP\"") != NULL : strncmp(buf, "HTTP/1.1 200", 12) == 0;
	}
out:
	if (fd >= 0)
		close(fd);
	return ok;
}

int main(int argc, char **argv)
{
	bool qmp = false;
	int i = 1;

	if (i < argc && !strcmp(argv[i], "-q")) {
		qmp = true;
		i++;
	}
	if (argc - i < 3 || strcmp(argv[i + 1], "--")) {
		fprintf(stderr, "usage: api_up [-q] SOCKET -- PROGRAM [ARG...]\n");
		return 2;
	}
	const char *sock = argv[i];
	unlink(sock);
	uint64_t t0 = now_us();
	pid_t pid = fork();
	if (pid == 0) {
		execvp(argv[i + 2], argv + i + 2);
		_exit(127);
	}
	while (!answered(sock, qmp)) {
		int st;

		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "api_up: %s exited before answering\n", argv[i + 2]);
			return 1;
		}
		if (now_us() - t0 > 20000000) {
			fprintf(stderr, "api_up: no answer on %s in 20 s\n", sock);
			kill(pid, SIGKILL);
			return 1;
		}
		usleep(200);
	}
	uint64_t wall = now_us() - t0, cpu = cpu_ns(pid);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(sock);
	printf("wall_us=%llu cpu_us=%llu\n", (unsigned long long)wall,
	       (unsigned long long)(cpu / 1000));
	return 0;
}
