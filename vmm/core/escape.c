// SPDX-License-Identifier: Apache-2.0
#include <string.h>

#include "vmm/escape.h"

#define CTRL_A 0x01

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
