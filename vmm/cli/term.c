// SPDX-License-Identifier: Apache-2.0
/*
 * The terminal the guest console is on, and the process's signals (the front end's: libvmm
 * leaves them to the program). The terminal is raw while the guest runs and restored on every
 * way out: a normal return, exit(), and every signal whose default action ends the process.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "vmm/term.h"

static struct termios saved;
static int saved_fd = -1;
static volatile sig_atomic_t raw_active;

void term_restore(void)
{
	if (raw_active) {
		tcsetattr(saved_fd, TCSANOW, &saved);
		raw_active = 0;
	}
}

/* A signal that ends the process: put the terminal back, then die of the same signal. */
static void fatal_handler(int sig)
{
	sigset_t set;

	term_restore();
	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}

bool term_is_fatal_by_default(int sig)
{
	switch (sig) {
	case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:       /* ignored */
	case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:       /* stop */
	case SIGKILL:                                                  /* no handler possible */
		return false;
	default:
		return sig > 0 && sig < NSIG;
	}
}

void term_signals_setup(const sigset_t *handled)
{
	struct sigaction sa;

	/* Blocked from the first instruction on: they wait for the signalfd, never lost. */
	sigprocmask(SIG_BLOCK, handled, NULL);
	atexit(term_restore);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fatal_handler;
	sigemptyset(&sa.sa_mask);
	for (int sig = 1; sig < NSIG; sig++) {
		/* SIGRTMIN is libvmm's vCPU kick; SIGPIPE is ignored (a closed console reader). */
		if (!term_is_fatal_by_default(sig) || sigismember(handled, sig) ||
		    sig == SIGRTMIN || sig == SIGPIPE || (sig > SIGSYS && sig < SIGRTMIN))
			continue;
		sigaction(sig, &sa, NULL);
	}
	signal(SIGPIPE, SIG_IGN);
}

bool term_saved(struct termios *out)
{
	if (!raw_active)
		return false;
	*out = saved;
	return true;
}

void term_adopt(int fd, const struct termios *orig)
{
	if (raw_active || !isatty(fd))
		return;
	saved = *orig;
	saved_fd = fd;
	raw_active = 1;
}

void term_forget(void)
{
	raw_active = 0;
}

bool term_raw_enter(int fd)
{
	struct termios raw;

	if (raw_active || !isatty(fd) || tcgetattr(fd, &saved) < 0)
		return false;
	saved_fd = fd;
	raw = saved;
	/* Input raw (the guest's line discipline does the editing), output untouched: the guest
	 * sends its own CR LF and our own messages on stderr still look right. */
	raw.c_iflag &= ~(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	raw.c_lflag &= ~(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	/* The flag first: a signal between the two lines restores what it may. */
	raw_active = 1;
	if (tcsetattr(fd, TCSANOW, &raw) < 0) {
		raw_active = 0;
		return false;
	}
	return true;
}
