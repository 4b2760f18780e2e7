/* SPDX-License-Identifier: Apache-2.0 */
/*
 * I/O threads. Each ev_loop is one thread running its own GMainContext; devices hand it file
 * descriptors (ioeventfds, backend completion eventfds, tap fds) and a callback that runs on
 * that thread. Only vmm/event_loop.c includes glib for this: devices see this header only.
 * vCPU threads never run loop callbacks.
 */
#ifndef VMM_EVENT_LOOP_H
#define VMM_EVENT_LOOP_H

#include <stdbool.h>

#include "vmm/compiler.h"
#include "vmm/thread.h"

struct ev_loop;

/* Runs on the loop's thread when fd is readable (or has an error/hang-up). It must consume
 * what made the fd readable (read the eventfd), or it is called again at once. */
typedef void (*ev_fd_cb)(void *opaque);

/*
 * A loop with no thread yet: fds may be added before ev_loop_start(). Its thread is of kind
 * (thread.h: named after it, signals blocked) and logs through the creating thread's sink.
 */
int ev_loop_create(struct ev_loop **out, enum thread_kind kind) WUR;
int ev_loop_start(struct ev_loop *l) WUR;
/* Stops and joins the thread (no callback runs after it returns) and frees every watch. */
void ev_loop_destroy(struct ev_loop *l);

/*
 * Watch fd for input. Thread-safe (any thread, before or after start). Returns a watch id > 0,
 * or 0 on failure. Watches are removed only by ev_loop_remove_fd() or ev_loop_destroy().
 */
unsigned int ev_loop_add_fd(struct ev_loop *l, int fd, ev_fd_cb cb, void *opaque) WUR;
/*
 * Added for output backpressure (virtio-console): as ev_loop_add_fd(), but with out=true the
 * watch fires when fd is writable (POLLOUT) or has an error/hang-up, instead of readable. A
 * writability watch fires for as long as fd stays writable: remove it once it is not needed.
 * ev_loop_remove_fd() from inside the watch's own callback is allowed (it runs inline there).
 */
unsigned int ev_loop_add_fd_events(struct ev_loop *l, int fd, bool out, ev_fd_cb cb,
				   void *opaque) WUR;
/* Remove a watch. When called from another thread, waits until the callback is not running. */
void ev_loop_remove_fd(struct ev_loop *l, unsigned int id);

/* Run fn(opaque) on the loop's thread and wait for it (or inline when not started / same thread). */
void ev_loop_call_sync(struct ev_loop *l, void (*fn)(void *opaque), void *opaque);

#endif
