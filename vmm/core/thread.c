// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "vmm/thread.h"

struct thread_start {
	void *(*fn)(void *arg);
	void *arg;
	const struct log_sink *log;
	enum thread_kind kind;
	char name[16];
};

static void *thread_main(void *p)
{
	struct thread_start st = *(struct thread_start *)p;

	free(p);
	/* Named from inside: once the name shows (ps, /proc), the thread is set up. */
	pthread_setname_np(pthread_self(), st.name);
	log_bind(st.log);
	/* Here each kind will install its seccomp filter before running untrusted work. */
	return st.fn(st.arg);
}

int thread_create(pthread_t *out, enum thread_kind kind, unsigned int index,
		  void *(*fn)(void *arg), void *arg, const struct log_sink *log)
{
	static const char *const names[] = {
		[THREAD_VCPU] = "vcpu", [THREAD_IO] = "io", [THREAD_CTL] = "ctl", [THREAD_API] = "api",
		[THREAD_UFFD] = "uffd",
	};
	struct thread_start *st = malloc(sizeof(*st));
	sigset_t all, old;
	int r;

	if (!st)
		return -ENOMEM;
	st->fn = fn;
	st->arg = arg;
	st->log = log ? log : log_bound();
	st->kind = kind;
	if (kind == THREAD_VCPU)
		snprintf(st->name, sizeof(st->name), "vcpu%u", index);
	else
		snprintf(st->name, sizeof(st->name), "%s", names[kind]);
	/*
	 * Born with every asynchronous signal blocked. The synchronous faults stay deliverable:
	 * a blocked SIGSEGV would kill the process without the handler that restores the
	 * terminal.
	 */
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGTRAP);
	/* Set, not added to: whatever the creating thread blocks, the new one is the same. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(out, NULL, thread_main, st);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		free(st);
		return -r;
	}
	return 0;
}
