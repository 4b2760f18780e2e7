/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The terminal the guest console is on: raw mode while the guest runs, restored on every exit
 * path (normal return, exit(), fatal signals). Ctrl-A x quits, Ctrl-A Ctrl-A sends a Ctrl-A,
 * as with QEMU's -nographic.
 */
#ifndef VMM_TERM_H
#define VMM_TERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Put fd into raw mode if it is a terminal; returns true if it did. */
bool term_raw_enter(int fd);
/* Restore the saved mode (idempotent, async-signal-safe). */
void term_restore(void);

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
