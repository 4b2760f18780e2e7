// SPDX-License-Identifier: Apache-2.0
#include <stdio.h>

#include "vmm/log.h"

static __thread const struct log_sink *bound;

const struct log_sink *log_bind(const struct log_sink *s)
{
	const struct log_sink *old = bound;

	bound = s;
	return old;
}

const struct log_sink *log_bound(void)
{
	return bound;
}

PRINTF(2, 0)
void vlogv(enum vmm_log_level level, const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (bound && bound->fn)
		bound->fn(bound->opaque, level, line);
	else
		fprintf(stderr, "vmm: %s\n", line);
}

void vlog(enum vmm_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlogv(level, fmt, ap);
	va_end(ap);
}
