// SPDX-License-Identifier: Apache-2.0
/*
 * Debug-exit port, compatible with QEMU's isa-debug-exit: a test guest writes a value v and the
 * VM stops with VMM_STOP_DEBUG_EXIT, code v; the VMM exits with status (v << 1) | 1, so a guest can
 * never fake a plain success (0). As in QEMU, the range is iosize bytes, any write inside it counts
 * and v is the little-endian value of the bytes written; reads return 0.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/devices.h"
#include "vmm/layout.h"

struct debug_exit {
	struct vm_stop_sink stop;
	uint16_t port;
	unsigned int iosize;
};

void debug_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct debug_exit *d = opaque;
	uint32_t v = 0;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	/* The bus keeps the access inside our range; still never read past 4 bytes. */
	for (uint32_t i = 0; i < len && i < sizeof(v); i++)
		v |= (uint32_t)data[i] << (8 * i);
	/* No state to protect: the stop sink serialises concurrent requests itself. */
	vm_stop_request(&d->stop, VMM_STOP_DEBUG_EXIT, (int)v);
}

int debug_exit_create(struct debug_exit **out, const struct vm_stop_sink *stop, uint16_t port,
		      unsigned int iosize)
{
	struct debug_exit *d;

	if ((iosize != 1 && iosize != 2 && iosize != 4) || (uint32_t)port + iosize > 0x10000)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	if (stop)
		d->stop = *stop;
	d->port = port;
	d->iosize = iosize;
	*out = d;
	return 0;
}

void debug_exit_destroy(struct debug_exit *d)
{
	free(d);
}

uint16_t debug_exit_port(const struct debug_exit *d)
{
	return d->port;
}

unsigned int debug_exit_len(const struct debug_exit *d)
{
	return d->iosize;
}

/* ---- the device interface ---- */

static int debug_exit_realize(struct device *d, const struct device_host *h, unsigned int idx,
		              char *err, size_t errlen)
{
	struct debug_exit *p;
	int r;

	snprintf(d->id, sizeof(d->id), "debug-exit");
	if ((r = debug_exit_create(&p, &h->stop, h->cfg->debug_exit_port, 1)) < 0)
		goto fail;
	d->priv = p;
	r = bus_register(h->pio, h->cfg->debug_exit_port, debug_exit_len(p), debug_exit_io, p,
			 "debug-exit");
	if (r == -EEXIST) {
		snprintf(err, errlen, "debug-exit port: 0x%x is taken by another device",
			 h->cfg->debug_exit_port);
		return r;
	}
	if (r < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "debug-exit: %s", strerror(-r));
	return r;
}

static void debug_exit_unrealize(struct device *d)
{
	debug_exit_destroy(d->priv);
	d->priv = NULL;
}

/* Nothing guest-visible to keep (its port is configuration): an empty node. */
static int debug_exit_dev_save(struct device *d, struct dev_state_writer *w)
{
	return 0;
}

static int debug_exit_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			       size_t errlen)
{
	return 0;
}

const struct device_ops debug_exit_device_ops = {
	.kind = "debug-exit",
	.realize = debug_exit_realize,
	.unrealize = debug_exit_unrealize,
	.save = debug_exit_dev_save,
	.load = debug_exit_dev_load,
};
