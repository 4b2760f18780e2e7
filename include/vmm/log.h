/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log lines from anywhere in the VMM (vmm/core/log.c). Each thread libvmm runs is bound to the
 * sink of the VM it works for (thread.c binds it at creation; the library's entry points bind
 * the caller's thread for the length of the call), so that two VMs in one process log through
 * their own callbacks and no device needs a logger handed down. Unbound threads log to stderr.
 */
#ifndef VMM_LOG_H
#define VMM_LOG_H

#include <stdarg.h>

#include "vmm/compiler.h"
#include "vmm/vmm.h"

struct log_sink {
	void (*fn)(void *opaque, enum vmm_log_level level, const char *line);
	void *opaque;
};

/* The calling thread's sink from now on (NULL: stderr); returns the previous one. */
const struct log_sink *log_bind(const struct log_sink *s);
const struct log_sink *log_bound(void);

void vlog(enum vmm_log_level level, const char *fmt, ...) PRINTF(2, 3);
void vlogv(enum vmm_log_level level, const char *fmt, va_list ap) PRINTF(2, 0);

#define log_err(...)  vlog(VMM_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) vlog(VMM_LOG_WARN, __VA_ARGS__)
#define log_info(...) vlog(VMM_LOG_INFO, __VA_ARGS__)

#endif
