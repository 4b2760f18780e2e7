/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every thread the VMM creates starts here (vmm/core/thread.c): it is named after its kind
 * ("vcpu0", "io", "api", "ctl"), starts with every asynchronous signal blocked (the program,
 * not the VMM, handles signals; a vCPU unblocks its kick signal itself), is bound to its VM's
 * log sink, and is where a per-kind seccomp filter will be installed.
 */
#ifndef VMM_THREAD_H
#define VMM_THREAD_H

#include <pthread.h>

#include "vmm/compiler.h"
#include "vmm/log.h"

enum thread_kind {
	THREAD_VCPU, /* KVM_RUN loop, index = vCPU number */
	THREAD_IO,   /* a virtio I/O loop */
	THREAD_CTL,  /* a VM's control loop: lifecycle, console input, timeout */
	THREAD_API,  /* the API socket server */
	THREAD_UFFD, /* fills restored guest RAM on first touch (guest_mem_lazy.c) */
};

/*
 * Start fn(arg) on a new thread of that kind (name "vcpu<index>", "io", "ctl", "api"); the
 * thread logs through log (NULL: the creating thread's sink). 0 or -errno.
 */
int thread_create(pthread_t *out, enum thread_kind kind, unsigned int index,
		  void *(*fn)(void *arg), void *arg, const struct log_sink *log) WUR;

#endif
