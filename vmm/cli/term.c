// SPDX-License-Identifier: Apache-2.0
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "vmm/term.h"

#define CTRL_A 0x01

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

/* Fatal signals: put the terminal back, then die of the same signal. */
static void fatal_handler(int sig)
{
	term_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

bool term_raw_enter(int fd)
{
	struct termios raw;

	if (!isatty(fd) || tcgetattr(fd, &saved) < 0)
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
	if (tcsetattr(fd, TCSANOW, &raw) < 0)
		return false;
	raw_active = 1;

	/* Once per process, however often the guest restarts. */
	static bool hooks_installed;
	if (hooks_installed)
		return true;
	hooks_installed = true;
	atexit(term_restore);

	static const int fatal[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGQUIT };
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fatal_handler;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
		sigaction(fatal[i], &sa, NULL);
	return true;
}

void term_escape_init(struct term_escape *e, bool enabled)
{
	memset(e, 0, sizeof(*e));
	e->enabled = enabled;
}

size_t term_escape_filter(struct term_escape *e, const uint8_t *in, size_t inlen, uint8_t *out,
			  size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; i < inlen && o < outlen; i++) {
		uint8_t c = in[i];
		if (!e->enabled) {
			out[o++] = c;
			continue;
		}
		if (e->armed) {
			e->armed = false;
			if (c == 'x' || c == 'X') {
				e->quit = true;
				return o;
			}
			if (c == CTRL_A) {
				out[o++] = c;
				continue;
			}
			/* Not an escape after all: pass both through. */
			out[o++] = CTRL_A;
			if (o < outlen)
				out[o++] = c;
			continue;
		}
		if (c == CTRL_A) {
			e->armed = true;
			continue;
		}
		out[o++] = c;
	}
	return o;
}
