// SPDX-License-Identifier: Apache-2.0
/*
 * The API server: a unix stream socket served by one ev_loop thread named "api". The listening
 * socket and each connection are fd watches on that loop; a connection's bytes go through its
 * api_http (api_http.c), which routes complete requests with api_route() on this thread, in
 * order. Everything below runs on the api thread except start and stop, which run while the
 * thread does not (before ev_loop_start, after ev_loop_destroy), so nothing is locked.
 *
 * Per connection: reading stops while its api_http wants no input (responses over the output
 * cap because the client does not read them, or closing) and resumes when the output drains;
 * an output watch exists only while output waits. Errors on one connection close only it.
 * At most API_MAX_CONNS connections: another one gets a 503 and is closed at once.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "api_http.h"
#include "vmm/event_loop.h"
#include "vmm/usock.h"

#define API_MAX_CONNS 10
#define API_BACKLOG   64
#define API_READ_SIZE 4096
#define ACCEPT_RETRY_MS 100 /* after running out of fds */

struct api_conn {
	struct api_server *s;
	struct api_conn *prev, *next;
	int fd;
	unsigned int rwatch, wwatch; /* 0: not watched */
	struct api_http *http;
	char in[API_READ_SIZE];      /* read, not yet parsed (only while output is over the cap) */
	size_t in_off, in_len;
};

struct api_server {
	struct api_target t;
	struct ev_loop *loop;
	int fd;
	unsigned int lwatch;
	int timer_fd;
	unsigned int twatch;
	char *path;
	bool bound;                  /* path is ours: unlink it at stop if it is still ours */
	bool held;                   /* a live update holds accepting (api thread) */
	dev_t dev;
	ino_t ino;
	struct api_conn *conns;
	unsigned int nr_conns;
};

/* ---- connections ---- */

static void conn_close(struct api_conn *c)
{
	struct api_server *s = c->s;

	ev_loop_remove_fd(s->loop, c->rwatch);
	ev_loop_remove_fd(s->loop, c->wwatch);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nr_conns--;
	api_http_free(c->http);
	free(c);
}

static void on_conn_readable(void *opaque);
static void on_conn_writable(void *opaque);

/* Send what is queued; false when the connection is broken. */
static bool conn_flush(struct api_conn *c)
{
	for (;;) {
		size_t len;
		const char *p = api_http_output(c->http, &len);
		ssize_t n;

		if (!len)
			return true;
		n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK;
		}
		api_http_output_done(c->http, (size_t)n);
	}
}

/*
 * Parse what is buffered, send what is queued, then watch for what is wanted next, or close.
 * Returns false when c was closed.
 */
static bool conn_service(struct api_conn *c)
{
	size_t len;
	bool want_read, want_write;

	for (;;) {
		if (c->in_off < c->in_len)
			c->in_off += api_http_input(c->http, c->in + c->in_off,
						    c->in_len - c->in_off);
		if (!conn_flush(c)) {
			conn_close(c);
			return false;
		}
		/* Output drained under the cap with input left: parse on. */
		if (c->in_off < c->in_len && api_http_wants_input(c->http))
			continue;
		break;
	}
	if (api_http_done(c->http)) {
		conn_close(c);
		return false;
	}
	api_http_output(c->http, &len);
	want_read = c->in_off == c->in_len && api_http_wants_input(c->http);
	want_write = len > 0;
	if (want_read && !c->rwatch) {
		c->rwatch = ev_loop_add_fd(c->s->loop, c->fd, on_conn_readable, c);
		if (!c->rwatch)
			goto fail;
	} else if (!want_read && c->rwatch) {
		ev_loop_remove_fd(c->s->loop, c->rwatch);
		c->rwatch = 0;
	}
	if (want_write && !c->wwatch) {
		c->wwatch = ev_loop_add_fd_events(c->s->loop, c->fd, true, on_conn_writable, c);
		if (!c->wwatch)
			goto fail;
	} else if (!want_write && c->wwatch) {
		ev_loop_remove_fd(c->s->loop, c->wwatch);
		c->wwatch = 0;
	}
	/* Never neither: not wanting input means closing (done, or output left) or output. */
	return true;
fail:
	conn_close(c);
	return false;
}

static void on_conn_readable(void *opaque)
{
	struct api_conn *c = opaque;
	ssize_t n;

	if (c->in_off < c->in_len) {
		conn_service(c);
		return;
	}
	do {
		n = recv(c->fd, c->in, sizeof(c->in), 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			conn_close(c); /* ECONNRESET and the like: nobody to answer */
		return;
	}
	if (n == 0) {
		api_http_eof(c->http);
	} else {
		c->in_off = 0;
		c->in_len = (size_t)n;
	}
	conn_service(c);
}

static void on_conn_writable(void *opaque)
{
	conn_service(opaque);
}

/* ---- the listening socket ---- */

static void refuse_busy(int fd)
{
	static const char body[] =
		"{\"fault_message\":\"Too many open connections (at most 10).\"}";
	size_t len;
	char *s = api_http_format(503, body, true, &len);

	/* Best effort: a fresh socket's buffer takes it whole. */
	if (s && send(fd, s, len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* nothing to do: the client goes away either way */
	}
	free(s);
	close(fd);
}

static void on_accept(void *opaque);

static void pause_accept(struct api_server *s)
{
	struct itimerspec its = { .it_value = { 0, ACCEPT_RETRY_MS * 1000000L } };

	if (s->timer_fd < 0 || timerfd_settime(s->timer_fd, 0, &its, NULL) < 0)
		return; /* keep accepting: better a busy loop than a dead socket */
	ev_loop_remove_fd(s->loop, s->lwatch);
	s->lwatch = 0;
}

static void on_accept_timer(void *opaque)
{
	struct api_server *s = opaque;
	uint64_t ticks;

	if (read(s->timer_fd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
		return;
	if (!s->lwatch && !s->held)
		s->lwatch = ev_loop_add_fd(s->loop, s->fd, on_accept, s);
}

static void on_accept(void *opaque)
{
	struct api_server *s = opaque;

	for (;;) {
		struct api_conn *c;
		int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			/* Out of fds or memory: the socket stays readable, so wait a little. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				pause_accept(s);
			return;
		}
		if (s->nr_conns >= API_MAX_CONNS) {
			refuse_busy(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c)
			c->http = api_http_new(&s->t);
		if (!c || !c->http) {
			free(c);
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->nr_conns++;
		conn_service(c); /* adds the read watch */
	}
}

static int bind_path(struct api_server *s, const char *path, struct vmm_error *e)
{
	char err[VMM_ERROR_LEN];
	int r = usock_listen("api socket", path, API_BACKLOG, &s->fd, &s->dev, &s->ino, err,
			     sizeof(err));

	if (r < 0)
		return config_fail(e, r, "%s", err);
	s->bound = true;
	return 0;
}

static int adopt_fd(struct api_server *s, int fd, struct vmm_error *e)
{
	char err[VMM_ERROR_LEN];
	int r = usock_adopt("api socket", s->path, fd, API_BACKLOG, err, sizeof(err));

	if (r < 0)
		return config_fail(e, r, "%s", err);
	s->fd = fd;
	return 0;
}

/* Unlink the socket file if it is still the one bind_path() made. */
static void unlink_ours(struct api_server *s)
{
	if (s->bound)
		usock_unlink_if_ours(s->path, s->dev, s->ino);
}

static void server_free(struct api_server *s)
{
	while (s->conns) {
		struct api_conn *c = s->conns;

		s->conns = c->next;
		close(c->fd);
		api_http_free(c->http);
		free(c);
	}
	if (s->fd >= 0)
		close(s->fd);
	if (s->timer_fd >= 0)
		close(s->timer_fd);
	unlink_ours(s);
	free(s->path);
	free(s);
}

int api_server_start(const struct api_target *t, const char *path, int listen_fd,
		     struct api_server **out, struct vmm_error *e)
{
	struct api_server *s;
	int r;

	if ((!path || !*path) && listen_fd < 0)
		return config_fail(e, -EINVAL, "api socket: no path given");
	s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path ? path : ""))) {
		free(s);
		return config_fail(e, -ENOMEM, "api socket %s: out of memory", path ? path : "");
	}
	s->t = *t;
	s->fd = -1;
	s->timer_fd = -1;
	r = listen_fd >= 0 ? adopt_fd(s, listen_fd, e) : bind_path(s, path, e);
	if (r < 0)
		goto fail;
	/* Without it, running out of fds makes accept() spin instead of wait. */
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	r = ev_loop_create(&s->loop, THREAD_API);
	if (r < 0) {
		config_fail(e, r, "api socket %s: cannot create its thread's loop", s->path);
		goto fail;
	}
	s->lwatch = ev_loop_add_fd(s->loop, s->fd, on_accept, s);
	if (s->timer_fd >= 0)
		s->twatch = ev_loop_add_fd(s->loop, s->timer_fd, on_accept_timer, s);
	if (!s->lwatch || (s->timer_fd >= 0 && !s->twatch)) {
		r = config_fail(e, -ENOMEM, "api socket %s: out of memory", s->path);
		goto fail_loop;
	}
	/* thread.c: named "api", every asynchronous signal blocked (the program handles them). */
	r = ev_loop_start(s->loop);
	if (r < 0) {
		config_fail(e, r, "api socket %s: cannot start the api thread", s->path);
		goto fail_loop;
	}
	*out = s;
	return 0;

fail_loop:
	ev_loop_destroy(s->loop);
fail:
	if (listen_fd >= 0 && s->fd == listen_fd)
		s->fd = -1; /* not ours on failure: the caller still owns it */
	server_free(s);
	return r;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	/* Joins the api thread: no callback runs after it, and every watch is gone. */
	ev_loop_destroy(s->loop);
	server_free(s);
}

int api_server_listen_fd(const struct api_server *s)
{
	return s->fd;
}

const char *api_server_path(const struct api_server *s)
{
	return s->path;
}

void api_server_file_id(const struct api_server *s, uint64_t *dev, uint64_t *ino)
{
	*dev = s->bound ? (uint64_t)s->dev : 0;
	*ino = s->bound ? (uint64_t)s->ino : 0;
}

static void hold_on(void *opaque)
{
	struct api_server *s = opaque;

	s->held = true;
	ev_loop_remove_fd(s->loop, s->lwatch);
	s->lwatch = 0;
}

static void hold_off(void *opaque)
{
	struct api_server *s = opaque;

	s->held = false;
	if (!s->lwatch)
		s->lwatch = ev_loop_add_fd(s->loop, s->fd, on_accept, s);
}

void api_server_hold(struct api_server *s, bool hold)
{
	ev_loop_call_sync(s->loop, hold ? hold_on : hold_off, s);
}

void api_server_disown(struct api_server *s)
{
	s->bound = false; /* read at stop, after the api thread is joined */
}

void api_server_own_file(struct api_server *s, uint64_t dev, uint64_t ino)
{
	s->bound = dev || ino;
	s->dev = (dev_t)dev;
	s->ino = (ino_t)ino;
}
