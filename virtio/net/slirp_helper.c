// SPDX-License-Identifier: Apache-2.0
/*
 * vmm-slirp: the user-mode network of one virtio-net interface (vmm --net user). libslirp
 * (Debian ships it only as a shared library, so this small program links it, and vmm stays
 * static) runs here on one thread, with its sockets and timers in one poll loop; the guest's
 * frames come and go over fd 3, vmm's socketpair (slirp_proto.h).
 *
 *   vmm-slirp OWNER-PID [RULE]... [mtu=N]   started by vmm (virtio/net/slirp.c), never by hand
 *
 * The program forks at once and its first process exits, so that vmm reaps it and the
 * helper, outliving the process that started it when a live update hands the guest on, is
 * nobody's child. It closes every other descriptor, reads nothing from the terminal and
 * leaves the terminal's process group.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <slirp/libslirp.h>

#include "slirp_proto.h"

#define HDR_LEN   12   /* virtio_net_hdr_v1, as the device has it */
#define ETH_HLEN  14
#define FRAME_MAX (HDR_LEN + 65536)
#define POLL_MAX  1024 /* slirp's sockets: its connections and listeners */
#define BATCH     256  /* frames from the guest per turn of the loop */
#define LINGER_MS 5000 /* at most this long for what the guest sent to reach the host */
#define RULES_MAX 16
/* Frames for the guest that vmm's socket had no room for wait here, in order, up to this
 * much: enough for the guest's TCP windows, so that slirp's own TCP, which backs off for
 * seconds and gives a connection up after a dozen losses, seldom sees one. */
#define PENDING_MAX (8u << 20)
#define FLUSH_BATCH 64

struct timer {
	SlirpTimerCb cb;
	void *cb_opaque;
	int64_t expire_ms; /* -1: not armed */
	struct timer *next;
};

static int sock = 3;
static bool peer_gone;
static struct timer *timers;
static struct pollfd pfd[POLL_MAX + 1];
static unsigned int npfd;
static unsigned int guest_errors;
static uint64_t dropped;
static bool want_out; /* a socket of slirp's has data for the host that waits to be written */

/* Frames for the guest not yet taken by vmm's socket (each with its vnet header). */
struct frame {
	struct frame *next;
	size_t len;
	uint8_t data[];
};
static struct frame *pending, **pending_tail = &pending;
static size_t pending_bytes;

static struct rule {
	bool udp;
	struct in_addr host;
	int port;
} rules[RULES_MAX];
static unsigned int nr_rules;

static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("vmm-slirp: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Before the OK: one line for vmm to show, then out. */
static void __attribute__((noreturn)) refuse(const char *fmt, ...)
{
	char msg[SLIRP_STATUS_MAX];
	va_list ap;
	int n;

	n = snprintf(msg, sizeof(msg), "ERR ");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	if (send(sock, msg, strlen(msg), MSG_NOSIGNAL) < 0)
		say("%s", msg + 4);
	/* _exit: no leak report of a sanitizer build on vmm's stderr, where only vmm's one line
	 * may go. */
	_exit(1);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- libslirp's callbacks ---- */

/*
 * What waits, in order, while vmm's socket takes it: up to FLUSH_BATCH frames a system call,
 * so that vmm, woken by the first, finds the others already there and the guest gets one
 * interrupt for them all.
 */
static void flush_pending(void)
{
	struct mmsghdr mm[FLUSH_BATCH];
	struct iovec iov[FLUSH_BATCH];

	while (pending) {
		struct frame *f = pending;
		unsigned int n = 0;
		int sent;

		for (; f && n < FLUSH_BATCH; f = f->next, n++) {
			iov[n] = (struct iovec){ f->data, f->len };
			mm[n] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[n], .msg_iovlen = 1 } };
		}
		do
			sent = sendmmsg(sock, mm, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		while (sent < 0 && errno == EINTR);
		if (sent < 0 && errno == EAGAIN)
			return;
		if (sent < 0) {
			if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)
				peer_gone = true;
			sent = 1; /* this one is lost; the next call tells about the others */
			dropped++;
		}
		for (int i = 0; i < sent; i++) {
			f = pending;
			pending = f->next;
			pending_bytes -= f->len;
			free(f);
		}
		if (peer_gone)
			break;
	}
	if (!pending)
		pending_tail = &pending;
}

/*
 * A frame for the guest: after a zeroed vnet header (no offload, complete checksums). It waits
 * until the end of this turn of the loop, with the others slirp makes meanwhile, and goes out
 * with them (flush_pending). When vmm's socket is full (the guest reads slower than slirp
 * writes) they wait longer; past PENDING_MAX (a guest that does not read: paused, or no
 * driver) a frame is dropped, as a wire would.
 */
static ssize_t cb_send_packet(const void *buf, size_t len, void *opaque)
{
	struct frame *f;

	(void)opaque;
	if (pending_bytes + HDR_LEN + len > PENDING_MAX ||
	    !(f = malloc(sizeof(*f) + HDR_LEN + len))) {
		dropped++;
		return (ssize_t)len;
	}
	f->next = NULL;
	f->len = HDR_LEN + len;
	memset(f->data, 0, HDR_LEN);
	memcpy(f->data + HDR_LEN, buf, len);
	*pending_tail = f;
	pending_tail = &f->next;
	pending_bytes += f->len;
	return (ssize_t)len;
}

static void cb_guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	/* The guest is not ours to trust: a few lines, not a flood. */
	if (guest_errors++ < 10)
		say("guest error: %s", msg);
}

static int64_t cb_clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *cb_timer_new(SlirpTimerCb cb, void *cb_opaque, void *opaque)
{
	struct timer *t = calloc(1, sizeof(*t));

	(void)opaque;
	if (!t) {
		say("out of memory");
		_exit(1);
	}
	t->cb = cb;
	t->cb_opaque = cb_opaque;
	t->expire_ms = -1;
	t->next = timers;
	timers = t;
	return t;
}

static void cb_timer_free(void *timer, void *opaque)
{
	(void)opaque;
	for (struct timer **p = &timers; *p; p = &(*p)->next) {
		if (*p == timer) {
			*p = ((struct timer *)timer)->next;
			free(timer);
			return;
		}
	}
}

static void cb_timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	((struct timer *)timer)->expire_ms = expire_ms;
}

static void cb_register_poll_fd(int fd, void *opaque)
{
	(void)fd, (void)opaque; /* every fd is handed to us again by slirp_pollfds_fill */
}

static void cb_notify(void *opaque)
{
	(void)opaque; /* the loop asks slirp for its fds on every turn anyway */
}

static const SlirpCb callbacks = {
	.send_packet = cb_send_packet,
	.guest_error = cb_guest_error,
	.clock_get_ns = cb_clock_get_ns,
	.timer_new = cb_timer_new,
	.timer_free = cb_timer_free,
	.timer_mod = cb_timer_mod,
	.register_poll_fd = cb_register_poll_fd,
	.unregister_poll_fd = cb_register_poll_fd,
	.notify = cb_notify,
};

static int add_poll(int fd, int events, void *opaque)
{
	short ev = 0;

	(void)opaque;
	if (npfd > POLL_MAX) {
		/* More sockets than we poll: this one waits for a later turn. */
		return -1;
	}
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT) {
		ev |= POLLOUT;
		want_out = true;
	}
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	pfd[npfd] = (struct pollfd){ .fd = fd, .events = ev };
	return (int)npfd++;
}

static int get_revents(int idx, void *opaque)
{
	short re;
	int ev = 0;

	(void)opaque;
	if (idx < 1 || (unsigned int)idx >= npfd)
		return 0;
	re = pfd[idx].revents;
	if (re & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (re & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (re & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (re & (POLLERR | POLLNVAL))
		ev |= SLIRP_POLL_ERR;
	if (re & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

/* ---- the loop ---- */

/* "t,0100007f,8080,00000000,80" into slirp. */
static void add_rule(Slirp *s, const char *rule)
{
	unsigned int haddr, hport, gaddr, gport;
	struct in_addr h, g;
	char proto, tail;

	if (sscanf(rule, "%c,%x,%u,%x,%u%c", &proto, &haddr, &hport, &gaddr, &gport, &tail) != 5 ||
	    (proto != 't' && proto != 'u') || hport < 1 || hport > 65535 || gport < 1 ||
	    gport > 65535 || nr_rules == RULES_MAX)
		refuse("malformed hostfwd rule '%s'", rule);
	h.s_addr = haddr;
	g.s_addr = gaddr;
	errno = 0;
	if (slirp_add_hostfwd(s, proto == 'u', h, (int)hport, g, (int)gport) < 0) {
		char ha[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &h, ha, sizeof(ha));
		refuse("hostfwd %s %s:%u: cannot listen there (%s)", proto == 'u' ? "udp" : "tcp",
		       ha, hport, errno ? strerror(errno) : "in use, or not an address of this host");
	}
	rules[nr_rules++] = (struct rule){ proto == 'u', h, (int)hport };
}

/* What vmm says to us: HELLO moves ownership, BYE of the owner ends us. */
static bool control(const uint8_t *buf, ssize_t len, uint32_t *owner)
{
	struct slirp_ctl c;

	if (len != (ssize_t)sizeof(c))
		return true;
	memcpy(&c, buf, sizeof(c));
	if (c.op == SLIRP_CTL_HELLO)
		*owner = c.pid;
	else if (c.op == SLIRP_CTL_BYE && c.pid == *owner)
		return false;
	return true;
}

/* The guest's frames: header off, the rest to slirp. false when vmm is done with us. */
static bool from_guest(Slirp *s, uint32_t *owner)
{
	static uint8_t buf[FRAME_MAX];

	for (int i = 0; i < BATCH; i++) {
		ssize_t n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (n == 0) {
			/* Every vmm end closed, or an empty packet (the device sends none). */
			struct pollfd p = { .fd = sock };

			if (poll(&p, 1, 0) == 1 && (p.revents & POLLHUP))
				return false;
			continue;
		}
		if (n < HDR_LEN) {
			if (!control(buf, n, owner))
				return false;
			continue;
		}
		/* Truncated (larger than any frame slirp takes) or too short for Ethernet:
		 * dropped, never parsed. */
		if (n > (ssize_t)sizeof(buf) || n < HDR_LEN + ETH_HLEN)
			continue;
		slirp_input(s, buf + HDR_LEN, (int)(n - HDR_LEN));
	}
	return true;
}

static void run_timers(void)
{
	int64_t now = now_ns() / 1000000;
	bool again = true;

	/* A callback may free or re-arm timers: start over after each. */
	while (again) {
		again = false;
		for (struct timer *t = timers; t; t = t->next) {
			if (t->expire_ms >= 0 && t->expire_ms <= now) {
				t->expire_ms = -1;
				t->cb(t->cb_opaque);
				again = true;
				break;
			}
		}
	}
}

static uint32_t next_timeout(uint32_t max)
{
	int64_t now = now_ns() / 1000000;

	for (struct timer *t = timers; t; t = t->next) {
		if (t->expire_ms < 0)
			continue;
		int64_t d = t->expire_ms - now;

		if (d < 0)
			d = 0;
		if (d < max)
			max = (uint32_t)d;
	}
	return max;
}

/*
 * vmm is done with us. First the ports go, then our end of the socket: the hang-up tells vmm
 * that a new helper can bind them (a restart). Then what the guest sent and slirp already
 * acknowledged, but has not yet written to its host sockets, is written out (a guest that
 * sends a file and powers off at once), for at most LINGER_MS.
 */
static void finish(Slirp *s)
{
	int64_t end = now_ns() / 1000000 + LINGER_MS;

	for (unsigned int i = 0; i < nr_rules; i++)
		slirp_remove_hostfwd(s, rules[i].udp, rules[i].host, rules[i].port);
	close(sock);
	for (;;) {
		int64_t left = end - now_ns() / 1000000;
		uint32_t timeout = next_timeout(left > 100 ? 100 : left < 0 ? 0 : (uint32_t)left);
		int n;

		want_out = false;
		npfd = 1;
		pfd[0] = (struct pollfd){ .fd = -1 }; /* the guest's socket, gone */
		slirp_pollfds_fill(s, &timeout, add_poll, NULL);
		if (!want_out || left <= 0)
			break;
		do
			n = poll(pfd, npfd, (int)timeout);
		while (n < 0 && errno == EINTR);
		run_timers();
		slirp_pollfds_poll(s, n < 0, get_revents, NULL);
	}
	slirp_cleanup(s);
}

int main(int argc, char **argv)
{
	SlirpConfig cfg = { .version = 1 };
	uint32_t owner;
	pid_t pid;
	Slirp *s;
	int st;

	if (argc < 2 || fcntl(sock, F_GETFD) < 0) {
		fprintf(stderr, "vmm-slirp: vmm's user-mode network helper, started by vmm only\n");
		return 2;
	}
	owner = (uint32_t)strtoul(argv[1], NULL, 10);
	/* Nothing of vmm's but the socket: not its images, not its terminal input. */
	close_range(4, ~0U, 0);
	if ((st = open("/dev/null", O_RDWR)) >= 0) {
		dup2(st, 0);
		dup2(st, 1);
		if (st > 3)
			close(st);
	}
	fcntl(sock, F_SETFD, FD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	pid = fork();
	if (pid < 0)
		refuse("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	/* Out of the terminal's process group: its Ctrl-C and hang-up are vmm's to handle. */
	setsid();

	cfg.in_enabled = true;
	inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
	inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
	inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
	inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
	inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
	cfg.vhostname = "vmm";
	cfg.if_mtu = 1500;
	/* The link's MTU (vmm checked it: 68 to 65520), last: slirp's segments for the guest and
	 * the largest frame it takes from it. */
	if (argc > 2 && !strncmp(argv[argc - 1], "mtu=", 4)) {
		char *end;
		unsigned long mtu = strtoul(argv[argc - 1] + 4, &end, 10);

		if (*end || mtu < 68 || mtu > 65520)
			refuse("malformed '%s'", argv[argc - 1]);
		cfg.if_mtu = (unsigned int)mtu;
		argc--;
	}
	cfg.if_mru = cfg.if_mtu;
	s = slirp_new(&cfg, &callbacks, NULL);
	if (!s)
		refuse("libslirp %s refused its configuration", slirp_version_string());
	for (int i = 2; i < argc; i++)
		add_rule(s, argv[i]);
	if (send(sock, "OK", 2, MSG_NOSIGNAL) < 0)
		return 1;

	for (;;) {
		uint32_t timeout = next_timeout(1000);
		int n;

		npfd = 1;
		pfd[0] = (struct pollfd){ .fd = sock,
					  .events = (short)(POLLIN | (pending ? POLLOUT : 0)) };
		slirp_pollfds_fill(s, &timeout, add_poll, NULL);
		do
			n = poll(pfd, npfd, (int)timeout);
		while (n < 0 && errno == EINTR);
		if (n < 0) {
			say("poll: %s", strerror(errno));
			break;
		}
		if ((pfd[0].revents & POLLIN) && !from_guest(s, &owner))
			break;
		if (pfd[0].revents & (POLLHUP | POLLERR | POLLNVAL) && !(pfd[0].revents & POLLIN))
			break;
		run_timers();
		slirp_pollfds_poll(s, n < 0, get_revents, NULL);
		/* What this turn made for the guest (and what waited for room). */
		flush_pending();
		if (peer_gone)
			break;
	}
	finish(s);
	fflush(stderr);
	_exit(0);
}
