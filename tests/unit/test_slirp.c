// SPDX-License-Identifier: Apache-2.0
/*
 * User-mode networking's backend without a guest: the helper vmm-slirp started as the device
 * starts it (slirp_start), and this test on the device's end of its socket, speaking as a
 * guest would: a DHCP discover answered with an offer of 10.0.2.15, an ARP request for the
 * gateway answered, malformed and short frames dropped with the helper still answering, a
 * host port forwarded (a connection to it reaches the guest's side), a port in use refused
 * with one line naming it, and the helper's lifetime: BYE of the process that said HELLO
 * last ends it and frees its ports, BYE of another process does not.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/config.h"
#include "vmm/virtio_net.h"

#define HDR	 VIRTIO_NET_HDR_LEN
#define WAIT_MS	 5000

static const uint8_t gmac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static uint16_t csum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* A frame after a zeroed vnet header, as the device writes what the guest sent. */
static void send_frame(int fd, const uint8_t *frame, size_t len)
{
	uint8_t buf[2048] = {0};

	memcpy(buf + HDR, frame, len);
	/* vmm's end is non-blocking: a helper behind makes us wait, as the device would. */
	ssize_t n;
	while ((n = send(fd, buf, HDR + len, 0)) < 0 && errno == EAGAIN) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };

		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
	}
	assert_int_equal(n, (ssize_t)(HDR + len));
}

/* The next frame for the guest that match() accepts, header stripped; others are skipped. */
static ssize_t recv_frame(int fd, uint8_t *frame, size_t cap,
			  bool (*match)(const uint8_t *f, size_t len))
{
	uint8_t buf[2048];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, WAIT_MS) != 1)
			return -1;
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0 && errno == EAGAIN)
			continue;
		assert_true(n >= HDR);
		/* The header slirp's frames come with: no offload, nothing to fix up. */
		for (int i = 0; i < HDR; i++)
			assert_int_equal(buf[i], 0);
		n -= HDR;
		if (match(buf + HDR, (size_t)n)) {
			memcpy(frame, buf + HDR, (size_t)n < cap ? (size_t)n : cap);
			return n;
		}
	}
}

static bool is_dhcp_offer(const uint8_t *f, size_t len)
{
	return len >= 14 + 20 + 8 + 240 && get16(f + 12) == 0x0800 && f[14 + 9] == 17 &&
	       get16(f + 34) == 67 && get16(f + 36) == 68 && f[42] == 2;
}

static bool is_arp_reply(const uint8_t *f, size_t len)
{
	return len >= 42 && get16(f + 12) == 0x0806 && get16(f + 20) == 2;
}

/* Toward 10.0.2.15: an ARP request for it, or an IPv4 packet to it. */
static bool is_for_guest(const uint8_t *f, size_t len)
{
	static const uint8_t ip[4] = { 10, 0, 2, 15 };

	if (len >= 42 && get16(f + 12) == 0x0806 && get16(f + 20) == 1)
		return !memcmp(f + 38, ip, 4);
	return len >= 34 && get16(f + 12) == 0x0800 && !memcmp(f + 30, ip, 4);
}

static void dhcp_discover(int fd)
{
	uint8_t f[14 + 20 + 8 + 240 + 4] = {0};
	uint8_t *ip = f + 14, *udp = ip + 20, *bootp = udp + 8;

	memset(f, 0xff, 6);
	memcpy(f + 6, gmac, 6);
	put16(f + 12, 0x0800);
	ip[0] = 0x45;
	put16(ip + 2, 20 + 8 + 240 + 4);
	ip[8] = 64;
	ip[9] = 17;
	memset(ip + 16, 0xff, 4);
	put16(ip + 10, csum(ip, 20));
	put16(udp, 68);
	put16(udp + 2, 67);
	put16(udp + 4, 8 + 240 + 4);
	bootp[0] = 1; /* BOOTREQUEST, Ethernet */
	bootp[1] = 1;
	bootp[2] = 6;
	memcpy(bootp + 4, "\x12\x34\x56\x78", 4);
	memcpy(bootp + 28, gmac, 6);
	memcpy(bootp + 236, "\x63\x82\x53\x63", 4);
	memcpy(bootp + 240, "\x35\x01\x01\xff", 4); /* DISCOVER, end */
	send_frame(fd, f, sizeof(f));
}

static void arp_request(int fd)
{
	uint8_t f[42] = {0};

	memset(f, 0xff, 6);
	memcpy(f + 6, gmac, 6);
	put16(f + 12, 0x0806);
	put16(f + 14, 1);
	put16(f + 16, 0x0800);
	f[18] = 6;
	f[19] = 4;
	put16(f + 20, 1);
	memcpy(f + 22, gmac, 6);
	memcpy(f + 28, "\x0a\x00\x02\x0f", 4);
	memcpy(f + 38, "\x0a\x00\x02\x02", 4);
	send_frame(fd, f, sizeof(f));
}

static void expect_arp_reply(int fd)
{
	uint8_t f[64];

	arp_request(fd);
	assert_true(recv_frame(fd, f, sizeof(f), is_arp_reply) >= 42);
	assert_memory_equal(f + 28, "\x0a\x00\x02\x02", 4); /* the gateway answers */
	assert_memory_equal(f + 32, gmac, 6);               /* to us */
}

static void user_net(struct config_net *cn)
{
	memset(cn, 0, sizeof(*cn));
	cn->fd = -1;
	cn->user = true;
}

static int start(const struct config_net *cn, char *err, size_t errlen)
{
	int fd = -1;

	if (slirp_start(cn, &fd, err, errlen) < 0)
		return -1;
	return fd;
}

/* A TCP port on 127.0.0.1 that nobody listens on right now. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
	close(s);
	return ntohs(a.sin_port);
}

static int listen_on(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(s >= 0);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* Whether the helper at fd's other end has ended (its end closed). */
static bool helper_gone(int fd, int ms)
{
	struct pollfd p = { .fd = fd };

	return poll(&p, 1, ms) == 1 && (p.revents & POLLHUP);
}

static void test_dhcp_arp(void **state)
{
	struct config_net cn;
	uint8_t f[1600];
	char err[320];
	int fd;

	(void)state;
	user_net(&cn);
	fd = start(&cn, err, sizeof(err));
	if (fd < 0)
		fail_msg("slirp_start: %s", err);
	dhcp_discover(fd);
	ssize_t n = recv_frame(fd, f, sizeof(f), is_dhcp_offer);
	assert_true(n > 0);
	assert_memory_equal(f + 42 + 28, gmac, 6);                /* to the guest's MAC */
	assert_memory_equal(f + 42 + 4, "\x12\x34\x56\x78", 4);   /* our transaction */
	assert_memory_equal(f + 42 + 16, "\x0a\x00\x02\x0f", 4);  /* yiaddr 10.0.2.15 */
	assert_int_equal(csum(f + 14, 20), 0);                    /* a whole IP checksum */
	expect_arp_reply(fd);
	slirp_stop(fd, true);
	assert_true(helper_gone(fd, 0));
	close(fd);
}

/*
 * vmm not reading for a while (the guest has no receive buffers): what slirp sends meanwhile
 * waits in the helper, in order, instead of being dropped when the socket is full.
 */
static void test_backlog(void **state)
{
	enum { N = 3000 };
	struct config_net cn;
	uint8_t f[64];
	char err[320];
	int fd, got = 0;

	(void)state;
	user_net(&cn);
	fd = start(&cn, err, sizeof(err));
	if (fd < 0)
		fail_msg("slirp_start: %s", err);
	/* N replies of ~900 bytes of socket memory each: well past the socket's ~400 KiB. */
	for (int i = 0; i < N; i++)
		arp_request(fd);
	usleep(200000);
	while (recv_frame(fd, f, sizeof(f), is_arp_reply) >= 42 && ++got < N)
		;
	assert_int_equal(got, N);
	slirp_stop(fd, true);
	close(fd);
}

/* Frames too short for their header or for Ethernet, truncated and garbage ones: dropped. */
static void test_malformed(void **state)
{
	struct config_net cn;
	uint8_t junk[1600];
	char err[320];
	int fd;

	(void)state;
	user_net(&cn);
	fd = start(&cn, err, sizeof(err));
	if (fd < 0)
		fail_msg("slirp_start: %s", err);
	for (size_t len = 0; len < 40; len++) {
		memset(junk, 0xa5, sizeof(junk));
		assert_int_equal(send(fd, junk, len, 0), (ssize_t)len);
	}
	/* Header-sized control messages that are no HELLO or BYE of ours. */
	uint32_t ctl[2] = { 2, 1 }; /* BYE from pid 1: not the owner */
	assert_int_equal(send(fd, ctl, sizeof(ctl), 0), (ssize_t)sizeof(ctl));
	ctl[0] = 77;
	assert_int_equal(send(fd, ctl, sizeof(ctl), 0), (ssize_t)sizeof(ctl));
	/* IPv4 and ARP headers that lie about their lengths. */
	for (int i = 0; i < 64; i++) {
		uint8_t f[60];

		for (size_t j = 0; j < sizeof(f); j++)
			f[j] = (uint8_t)(rand() >> 3);
		put16(f + 12, i & 1 ? 0x0800 : 0x0806);
		f[14] = (uint8_t)(0x40 | (i & 15));
		send_frame(fd, f, 14 + (size_t)i % 46);
	}
	uint8_t big[9000] = {0};
	assert_int_equal(send(fd, big, sizeof(big), 0), (ssize_t)sizeof(big));
	expect_arp_reply(fd);
	slirp_stop(fd, true);
	assert_true(helper_gone(fd, 0));
	close(fd);
}

/* A host port forwarded to the guest: a connection to it comes out as frames to 10.0.2.15. */
static void test_hostfwd(void **state)
{
	struct config_net cn;
	uint8_t f[1600];
	char err[320], rule[64];
	uint16_t port = free_port();
	int fd, c;

	(void)state;
	user_net(&cn);
	snprintf(rule, sizeof(rule), "tcp::%u-:80", port);
	assert_true(config_parse_hostfwd(rule, &cn.fwd[0], err, sizeof(err)));
	cn.nr_fwd = 1;
	fd = start(&cn, err, sizeof(err));
	if (fd < 0)
		fail_msg("slirp_start: %s", err);
	/* The port is taken now. */
	assert_true(listen_on(port) < 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_true(connect(c, (struct sockaddr *)&a, sizeof(a)) == 0 || errno == EINPROGRESS);
	assert_true(recv_frame(fd, f, sizeof(f), is_for_guest) > 0);
	close(c);
	/* BYE of the process that started it: ends it, and its port is free at once. */
	slirp_stop(fd, true);
	assert_true(helper_gone(fd, 0));
	c = listen_on(port);
	assert_true(c >= 0);
	close(c);
	close(fd);
}

/* A port somebody listens on: refused, one line naming it. */
static void test_port_in_use(void **state)
{
	struct config_net cn;
	char err[320], rule[64], want[32];
	uint16_t port = free_port();
	int l = listen_on(port), fd;

	(void)state;
	assert_true(l >= 0);
	user_net(&cn);
	snprintf(rule, sizeof(rule), "tcp:127.0.0.1:%u-:22", port);
	assert_true(config_parse_hostfwd(rule, &cn.fwd[0], err, sizeof(err)));
	cn.nr_fwd = 1;
	fd = start(&cn, err, sizeof(err));
	assert_int_equal(fd, -1);
	snprintf(want, sizeof(want), "127.0.0.1:%u", port);
	assert_non_null(strstr(err, want));
	assert_null(strchr(err, '\n'));
	close(l);
}

/* A live update's adoption: the process that said HELLO last owns the helper. */
static void test_handover(void **state)
{
	struct config_net cn;
	char err[320];
	int fd, up[2], down[2], st; /* child -> parent, parent -> child */
	pid_t pid;

	(void)state;
	user_net(&cn);
	fd = start(&cn, err, sizeof(err));
	if (fd < 0)
		fail_msg("slirp_start: %s", err);
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* The new process: adopts a copy of the end, then waits to be told to leave. */
		char e[320], b;
		int mine = dup(fd);

		close(fd);
		if (slirp_adopt(mine, e, sizeof(e)) < 0)
			_exit(1);
		if (write(up[1], "a", 1) != 1 || read(down[0], &b, 1) != 1)
			_exit(2);
		slirp_stop(mine, false);
		_exit(0);
	}
	char b;
	assert_int_equal(read(up[0], &b, 1), 1);
	/* The old process is done: the helper stays, for the new one. */
	slirp_stop(fd, false);
	assert_false(helper_gone(fd, 300));
	expect_arp_reply(fd);
	/* The new one is done too (its copy closes with it): now the helper ends. */
	assert_int_equal(write(down[1], "b", 1), 1);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_true(helper_gone(fd, WAIT_MS));
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	close(fd);
}

/* What the options accept and refuse (config_parse_hostfwd). */
static void test_parse(void **state)
{
	struct config_hostfwd f;
	char err[128], back[64];

	(void)state;
	assert_true(config_parse_hostfwd("tcp::8080-:80", &f, err, sizeof(err)));
	assert_false(f.udp);
	assert_int_equal(f.host_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(f.host_port, 8080);
	assert_int_equal(f.guest_addr, 0);
	assert_int_equal(f.guest_port, 80);
	config_hostfwd_format(&f, back, sizeof(back));
	assert_string_equal(back, "tcp:127.0.0.1:8080-:80");
	assert_true(config_parse_hostfwd("udp:0.0.0.0:5353-10.0.2.15:53", &f, err, sizeof(err)));
	assert_true(f.udp);
	assert_int_equal(f.host_addr, 0);
	config_hostfwd_format(&f, back, sizeof(back));
	assert_string_equal(back, "udp:0.0.0.0:5353-10.0.2.15:53");
	assert_true(config_parse_hostfwd("::2222-:22", &f, err, sizeof(err)));
	assert_false(f.udp);
	static const char *const bad[] = {
		"", "tcp", "tcp:", "tcp::8080", "tcp::8080-", "tcp::8080-:", "tcp::-:80",
		"tcp::0-:80", "tcp::65536-:80", "tcp::80x-:80", "tcp::8080-:80x", "sctp::1-:2",
		"tcp:localhost:8080-:80", "tcp:1.2.3:8080-:80", "tcp::8080-192.168.0.1:80",
		"tcp:8080-:80", "tcp::8080:80",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (config_parse_hostfwd(bad[i], &f, err, sizeof(err)))
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_dhcp_arp),
		cmocka_unit_test(test_backlog),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_hostfwd),
		cmocka_unit_test(test_port_in_use),
		cmocka_unit_test(test_handover),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
