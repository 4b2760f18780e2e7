// SPDX-License-Identifier: Apache-2.0
/*
 * I/O threads: one GMainContext per thread. The fd watches are plain GSources with one poll
 * fd; glib does the polling, we do not reimplement an event loop.
 */
#include <errno.h>
#include <glib.h>
#include <glib-unix.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/event_loop.h"
#include "vmm/thread.h"

struct ev_loop {
	GMainContext *ctx;
	GMainLoop *loop;
	pthread_t thread;
	bool started;
	enum thread_kind kind;
	const struct log_sink *log;
};

struct fd_watch {
	ev_fd_cb cb;
	void *opaque;
};

static gboolean fd_watch_dispatch(gint fd, GIOCondition cond, gpointer data)
{
	struct fd_watch *w = data;

	w->cb(w->opaque);
	return G_SOURCE_CONTINUE;
}

int ev_loop_create(struct ev_loop **out, enum thread_kind kind)
{
	struct ev_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->ctx = g_main_context_new();
	l->loop = g_main_loop_new(l->ctx, FALSE);
	l->kind = kind;
	l->log = log_bound(); /* the thread logs where its creator does */
	*out = l;
	return 0;
}

static void *loop_thread(void *data)
{
	struct ev_loop *l = data;

	g_main_context_push_thread_default(l->ctx);
	g_main_loop_run(l->loop);
	g_main_context_pop_thread_default(l->ctx);
	return NULL;
}

int ev_loop_start(struct ev_loop *l)
{
	int r = thread_create(&l->thread, l->kind, 0, loop_thread, l, l->log);

	if (r < 0)
		return r;
	l->started = true;
	return 0;
}

static gboolean quit_cb(gpointer data)
{
	g_main_loop_quit(data);
	return G_SOURCE_REMOVE;
}

void ev_loop_destroy(struct ev_loop *l)
{
	if (!l)
		return;
	if (l->started) {
		/* Quit from inside the loop: g_main_loop_quit() before run() would be lost. */
		GSource *s = g_idle_source_new();
		g_source_set_callback(s, quit_cb, l->loop, NULL);
		g_source_attach(s, l->ctx);
		g_source_unref(s);
		pthread_join(l->thread, NULL);
		l->started = false;
	}
	g_main_loop_unref(l->loop);
	g_main_context_unref(l->ctx); /* destroys every source still attached */
	free(l);
}

unsigned int ev_loop_add_fd(struct ev_loop *l, int fd, ev_fd_cb cb, void *opaque)
{
	return ev_loop_add_fd_events(l, fd, false, cb, opaque);
}

/*
 * Removing the watch from inside its own callback (ev_loop_remove_fd on the loop thread runs
 * remove_now inline) is safe: g_main_dispatch holds a reference on the source and on its
 * callback data while dispatching, so w is freed (g_free) only after fd_watch_dispatch has
 * returned, and the return value of a destroyed source is ignored.
 */
unsigned int ev_loop_add_fd_events(struct ev_loop *l, int fd, bool out, ev_fd_cb cb, void *opaque)
{
	struct fd_watch *w = g_new0(struct fd_watch, 1);

	w->cb = cb;
	w->opaque = opaque;
	GSource *s = g_unix_fd_source_new(fd, (out ? G_IO_OUT : G_IO_IN) | G_IO_ERR | G_IO_HUP);
	g_source_set_callback(s, G_SOURCE_FUNC(fd_watch_dispatch), w, g_free);
	guint id = g_source_attach(s, l->ctx);
	g_source_unref(s);
	return id;
}

struct sync_call {
	void (*fn)(void *opaque);
	void *opaque;
	GMutex lock;
	GCond cond;
	bool done;
};

static gboolean sync_call_cb(gpointer data)
{
	struct sync_call *c = data;

	c->fn(c->opaque);
	g_mutex_lock(&c->lock);
	c->done = true;
	g_cond_signal(&c->cond);
	g_mutex_unlock(&c->lock);
	return G_SOURCE_REMOVE;
}

void ev_loop_call_sync(struct ev_loop *l, void (*fn)(void *opaque), void *opaque)
{
	if (!l->started || g_main_context_is_owner(l->ctx)) {
		fn(opaque);
		return;
	}
	struct sync_call c = { .fn = fn, .opaque = opaque };
	g_mutex_init(&c.lock);
	g_cond_init(&c.cond);
	GSource *s = g_idle_source_new();
	g_source_set_priority(s, G_PRIORITY_HIGH);
	g_source_set_callback(s, sync_call_cb, &c, NULL);
	g_source_attach(s, l->ctx);
	g_source_unref(s);
	g_mutex_lock(&c.lock);
	while (!c.done)
		g_cond_wait(&c.cond, &c.lock);
	g_mutex_unlock(&c.lock);
	g_mutex_clear(&c.lock);
	g_cond_clear(&c.cond);
}

struct remove_call {
	struct ev_loop *l;
	unsigned int id;
};

static void remove_now(void *opaque)
{
	struct remove_call *r = opaque;
	GSource *s = g_main_context_find_source_by_id(r->l->ctx, r->id);

	if (s)
		g_source_destroy(s);
}

void ev_loop_remove_fd(struct ev_loop *l, unsigned int id)
{
	struct remove_call r = { .l = l, .id = id };

	if (!id)
		return;
	/* On the loop's thread, so that the callback is not running when we return. */
	ev_loop_call_sync(l, remove_now, &r);
}
