/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The console's escape sequence on a terminal (vmm/core/escape.c): Ctrl-A x quits, Ctrl-A
 * Ctrl-A sends one Ctrl-A, as with QEMU's -nographic. Pure: bytes in, bytes out.
 */
#ifndef VMM_ESCAPE_H
#define VMM_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct term_escape {
	bool enabled;   /* only on a tty: a pipe passes every byte through */
	bool armed;     /* the previous byte was Ctrl-A */
	bool quit;
};

void term_escape_init(struct term_escape *e, bool enabled);
/* Copy in to out (at most outlen bytes; out must be >= inlen), acting on escapes. */
size_t term_escape_filter(struct term_escape *e, const uint8_t *in, size_t inlen, uint8_t *out,
			  size_t outlen);

#endif
