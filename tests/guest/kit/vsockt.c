// SPDX-License-Identifier: Apache-2.0
/*
 * vsockt: both ends of the vsock tests. In the guest over AF_VSOCK, in the test host over
 * vmm's unix sockets (Firecracker's hybrid scheme: "CONNECT <port>\n", "OK <port>\n"; a
 * guest connection to host port P arrives at PATH_P); and the same over TCP (virtio-net
 * across live updates). Static; built by mkkit.sh for the guest and by testhost.sh for the
 * test host.
 *
 *   vsockt serve-vsock PORT      serve connections on vsock PORT (the guest)
 *   vsockt serve-unix PATH       serve connections on the unix socket PATH (the host's PATH_P)
 *   vsockt serve-tcp PORT        serve connections on TCP PORT (any address)
 *   vsockt client-vsock CID PORT [-n N] [-m MIB] [-r MIBPS]
 *   vsockt client-unix PATH PORT [-n N] [-m MIB] [-r MIBPS]
 *   vsockt client-tcp IPV4 PORT [-n N] [-m MIB] [-r MIBPS]
 *        N short connections (default 1000), each echoing 64 bytes; then MIB MiB (default
 *        64) up and MIB MiB down, each a deterministic byte stream checked end to end by its
 *        FNV-1a hash; -r paces the streams to about MIBPS MiB/s (so that a live update
 *        lands in the middle of them). Prints "VSOCK short ok=K of N S.SSs", "VSOCK up bytes=B
 *        fnv=H ok|BAD S.SSs", "VSOCK down bytes=B fnv=H ok|BAD S.SSs" (the seconds each
 *        part took); exit 0 when all are good.
 *   vsockt probe-vsock CID PORT
 *        one connection attempt: "VSOCK probe connected" or "VSOCK probe refused: ERROR"
 *   vsockt hold-unix PATH PORT SECS
 *        one echo connection held open: a line of 64 bytes echoed every 100 ms until the
 *        connection ends or SECS pass. "VSOCK hold ended after=N" (N echoes); exit 0.
 *
 * A connection's first byte says what it is: 'e' echo until the end; 'u' LEN(8): the server
 * reads LEN bytes and answers their hash (8 bytes); 'd' LEN(8) SEED(8): the server sends
 * LEN bytes of the stream SEED. The server prints "VMMTEST vsock conn reset" when a
 * connection ends with ECONNRESET (a transport reset after a restore), and "VMMTEST vsock
 * listening" once it listens.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
struct sockaddr_vm_ {
	unsigned short svm_family;
	unsigned short svm_reserved1;
	unsigned int svm_port;
	unsigned int svm_cid;
	unsigned char svm_zero[4];
};

#define CHUNK (64 * 1024)

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}
#define FNV0 0xcbf29ce484222325ULL

/* The stream SEED: xorshift64, 8 bytes at a time. */
static void stream(uint64_t *state, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t x = *state;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		*state = x;
		memcpy(out + i, &x, n - i < 8 ? n - i : 8);
	}
}

static int full_write(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Exactly n bytes; -1 on error or early end. */
static int full_read(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t r = read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Sleep as needed to keep done bytes at about rate MiB/s since t0. */
static void pace(double t0, uint64_t done, double rate)
{
	if (rate <= 0)
		return;
	double ahead = (double)done / (rate * 1048576.0) - (now() - t0);
	if (ahead > 0)
		usleep((useconds_t)(ahead * 1e6));
}

/* ---- server ---- */

static void serve_one(int c)
{
	static uint8_t buf[CHUNK];
	uint8_t cmd;
	uint64_t len, seed, h = FNV0;
	ssize_t r;

	if (full_read(c, &cmd, 1) < 0)
		goto out;
	switch (cmd) {
	case 'e':
		while ((r = read(c, buf, sizeof(buf))) > 0)
			if (full_write(c, buf, (size_t)r) < 0)
				break;
		if (r < 0 && errno == ECONNRESET)
			printf("VMMTEST vsock conn reset\n");
		break;
	case 'u':
		if (full_read(c, &len, 8) < 0)
			break;
		while (len) {
			size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);

			if ((r = read(c, buf, n)) <= 0)
				break;
			h = fnv(h, buf, (size_t)r);
			len -= (uint64_t)r;
		}
		if (!len)
			(void)full_write(c, &h, 8);
		break;
	case 'd':
		if (full_read(c, &len, 8) < 0 || full_read(c, &seed, 8) < 0)
			break;
		while (len) {
			size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);

			stream(&seed, buf, n);
			if (full_write(c, buf, n) < 0)
				break;
			len -= n;
		}
		break;
	}
out:
	fflush(stdout);
	close(c);
}

static int serve(int l)
{
	signal(SIGCHLD, SIG_IGN); /* children reaped by the kernel */
	if (listen(l, 64) < 0) {
		perror("listen");
		return 1;
	}
	/* From here on connections are taken: a host waits for this line, not for the start. */
	printf("VMMTEST vsock listening\n");
	fflush(stdout);
	for (;;) {
		int c = accept(l, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("accept");
			return 1;
		}
		/* Each connection its own process: a long stream does not hold up short ones. */
		pid_t p = fork();
		if (p == 0) {
			close(l);
			serve_one(c);
			_exit(0);
		}
		close(c);
	}
}

/* ---- client ---- */

struct target {
	const char *path; /* unix (hybrid), or NULL: vsock */
	const char *ip;   /* TCP, or NULL */
	unsigned int cid, port;
};

static int dial(const struct target *t)
{
	int fd;

	if (t->path) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		char line[32], ok[32];
		size_t i = 0;

		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", t->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			goto fail;
		int n = snprintf(line, sizeof(line), "CONNECT %u\n", t->port);
		if (full_write(fd, line, (size_t)n) < 0)
			goto fail;
		/* "OK <port>\n", byte by byte: what follows is the stream's. */
		while (i < sizeof(ok) - 1 && read(fd, ok + i, 1) == 1 && ok[i] != '\n')
			i++;
		if (i < 3 || memcmp(ok, "OK ", 3) || ok[i] != '\n')
			goto fail;
		return fd;
	}
	if (t->ip) {
		struct sockaddr_in si = { .sin_family = AF_INET, .sin_port = htons((uint16_t)t->port) };

		if (inet_pton(AF_INET, t->ip, &si.sin_addr) != 1)
			return -1;
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&si, sizeof(si)) < 0)
			goto fail;
		return fd;
	}
	struct sockaddr_vm_ sv = { .svm_family = AF_VSOCK, .svm_port = t->port, .svm_cid = t->cid };
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sv, sizeof(sv)) < 0)
		goto fail;
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

static int short_conns(const struct target *t, unsigned int n)
{
	unsigned int ok = 0;
	double t0 = now();

	for (unsigned int i = 0; i < n; i++) {
		uint8_t msg[65], back[64];
		int fd = dial(t);

		if (fd < 0) {
			/* The first few failures say which step (the case's console shows them). */
			if (i - ok < 5)
				printf("VSOCK short %u: no connection (%s)\n", i, strerror(errno));
			continue;
		}
		msg[0] = 'e';
		for (int k = 0; k < 64; k++)
			msg[k + 1] = (uint8_t)(i + k);
		int w = full_write(fd, msg, sizeof(msg)) == 0 && shutdown(fd, SHUT_WR) == 0;
		int r = w && full_read(fd, back, sizeof(back)) == 0;
		if (r && !memcmp(back, msg + 1, 64))
			ok++;
		else if (i - ok < 5)
			printf("VSOCK short %u: %s (%s)\n", i, !w ? "cannot send" : !r ? "no echo" :
			       "another echo", strerror(errno));
		close(fd);
	}
	printf("VSOCK short ok=%u of %u %.2fs\n", ok, n, now() - t0);
	return ok == n ? 0 : 1;
}

static int up(const struct target *t, uint64_t len, double rate)
{
	static uint8_t buf[CHUNK];
	uint64_t seed = 0x1234567 + len, h = FNV0, got = 0, left = len;
	uint8_t hdr[9] = { 'u' };
	double t0 = now();
	int fd = dial(t);

	memcpy(hdr + 1, &len, 8);
	if (fd < 0 || full_write(fd, hdr, sizeof(hdr)) < 0) {
		printf("VSOCK up bytes=0 fnv=0 BAD (cannot connect)\n");
		return 1;
	}
	while (left) {
		size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);

		stream(&seed, buf, n);
		h = fnv(h, buf, n);
		if (full_write(fd, buf, n) < 0)
			break;
		left -= n;
		pace(t0, len - left, rate);
	}
	int bad = left || full_read(fd, &got, 8) < 0 || got != h;
	printf("VSOCK up bytes=%llu fnv=%016llx %s %.2fs\n", (unsigned long long)(len - left),
	       (unsigned long long)h, bad ? "BAD" : "ok", now() - t0);
	close(fd);
	return bad;
}

static int down(const struct target *t, uint64_t len, double rate)
{
	static uint8_t buf[CHUNK], want[CHUNK];
	uint64_t seed = 0x7654321 + len, mine = seed, h = FNV0, got = 0;
	uint8_t hdr[17] = { 'd' };
	double t0 = now();
	int fd = dial(t), same = 1;

	memcpy(hdr + 1, &len, 8);
	memcpy(hdr + 9, &seed, 8);
	if (fd < 0 || full_write(fd, hdr, sizeof(hdr)) < 0) {
		printf("VSOCK down bytes=0 fnv=0 BAD (cannot connect)\n");
		return 1;
	}
	while (got < len) {
		size_t n = len - got < sizeof(buf) ? (size_t)(len - got) : sizeof(buf);

		if (full_read(fd, buf, n) < 0)
			break;
		stream(&mine, want, n);
		same &= !memcmp(buf, want, n);
		h = fnv(h, buf, n);
		got += n;
		pace(t0, got, rate);
	}
	int bad = got != len || !same;
	printf("VSOCK down bytes=%llu fnv=%016llx %s %.2fs\n", (unsigned long long)got,
	       (unsigned long long)h, bad ? "BAD" : "ok", now() - t0);
	close(fd);
	return bad;
}

static int hold(const struct target *t, int secs)
{
	uint8_t msg[64], back[64];
	int n = 0, fd = dial(t);

	if (fd < 0 || full_write(fd, "e", 1) < 0) {
		printf("VSOCK hold cannot connect\n");
		return 1;
	}
	/* "connected" once an echo came back: the guest's end is then accepted and served, so
	 * a transport reset reaches a reader (a connection still in the accept queue has none). */
	memset(msg, 'a', sizeof(msg));
	if (full_write(fd, msg, sizeof(msg)) < 0 || full_read(fd, back, sizeof(back)) < 0) {
		printf("VSOCK hold cannot connect\n");
		return 1;
	}
	printf("VSOCK hold connected\n");
	fflush(stdout);
	for (double end = now() + secs; now() < end; n++) {
		memset(msg, 'a' + n % 26, sizeof(msg));
		if (full_write(fd, msg, sizeof(msg)) < 0 || full_read(fd, back, sizeof(back)) < 0 ||
		    memcmp(msg, back, sizeof(msg)))
			break;
		usleep(100000);
	}
	printf("VSOCK hold ended after=%d\n", n);
	close(fd);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: vsockt serve-vsock PORT | serve-unix PATH | serve-tcp PORT | "
		"client-vsock CID PORT [-n N] [-m MIB] [-r MIBPS] | client-unix PATH PORT [...] | "
		"client-tcp IPV4 PORT [...] | probe-vsock CID PORT | hold-unix PATH PORT SECS\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct target t = { 0 };
	unsigned int n = 1000;
	uint64_t mib = 64;
	double rate = 0;
	int i, l;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "serve-vsock")) {
		struct sockaddr_vm_ sv = { .svm_family = AF_VSOCK, .svm_port = (unsigned)atoi(argv[2]),
					   .svm_cid = -1U };
		l = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l < 0 || bind(l, (struct sockaddr *)&sv, sizeof(sv)) < 0) {
			perror("vsock bind");
			return 1;
		}
		return serve(l);
	}
	if (argc == 3 && !strcmp(argv[1], "serve-unix")) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[2]);
		unlink(argv[2]);
		l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("unix bind");
			return 1;
		}
		return serve(l);
	}
	if (argc == 3 && !strcmp(argv[1], "serve-tcp")) {
		struct sockaddr_in si = { .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)atoi(argv[2])) };
		int one = 1;
		l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l >= 0)
			setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (l < 0 || bind(l, (struct sockaddr *)&si, sizeof(si)) < 0) {
			perror("tcp bind");
			return 1;
		}
		return serve(l);
	}
	if (argc == 4 && !strcmp(argv[1], "probe-vsock")) {
		struct sockaddr_vm_ sv = { .svm_family = AF_VSOCK, .svm_port = (unsigned)atoi(argv[3]),
					   .svm_cid = (unsigned)atoi(argv[2]) };
		l = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (l >= 0 && connect(l, (struct sockaddr *)&sv, sizeof(sv)) == 0)
			printf("VSOCK probe connected\n");
		else
			printf("VSOCK probe refused: %s\n", strerror(errno));
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "hold-unix")) {
		t.path = argv[2];
		t.port = (unsigned)atoi(argv[3]);
		return hold(&t, atoi(argv[4]));
	}
	if (argc >= 4 && !strcmp(argv[1], "client-vsock")) {
		t.cid = (unsigned)atoi(argv[2]);
	} else if (argc >= 4 && !strcmp(argv[1], "client-unix")) {
		t.path = argv[2];
	} else if (argc >= 4 && !strcmp(argv[1], "client-tcp")) {
		t.ip = argv[2];
	} else {
		return usage();
	}
	t.port = (unsigned)atoi(argv[3]);
	for (i = 4; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "-n"))
			n = (unsigned)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-m"))
			mib = (uint64_t)atoll(argv[i + 1]);
		else if (!strcmp(argv[i], "-r"))
			rate = atof(argv[i + 1]);
		else
			return usage();
	}
	if (i != argc)
		return usage();
	int bad = short_conns(&t, n);
	bad |= up(&t, mib << 20, rate);
	bad |= down(&t, mib << 20, rate);
	return bad;
}
