/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vmm executable's terminal and signals (vmm/cli/term.c): raw mode while the guest runs,
 * restored on every exit path (normal return, exit(), every signal whose default action ends
 * the process). Process-wide by nature: the front end's, never the library's.
 */
#ifndef VMM_TERM_H
#define VMM_TERM_H

#include <signal.h>
#include <stdbool.h>

/*
 * Call first in main(), before any thread exists: block the signals in handled (the main loop
 * reads them from a signalfd, so none is lost whenever it arrives), give every other signal
 * that would end the process a handler that restores the terminal first, ignore SIGPIPE.
 */
void term_signals_setup(const sigset_t *handled);
bool term_is_fatal_by_default(int sig);
/* Put fd into raw mode if it is a terminal; returns true if it did. */
bool term_raw_enter(int fd);
/* Restore the saved mode (idempotent, async-signal-safe). */
void term_restore(void);

/*
 * A live update passes the terminal on: the old process gives the mode from before it went
 * raw (term_saved) and leaves the terminal as it is at exit (term_forget); the new one, which
 * finds it raw already, restores that mode at its own exit (term_adopt).
 */
struct termios;
bool term_saved(struct termios *out);
void term_adopt(int fd, const struct termios *orig);
void term_forget(void);

#endif
