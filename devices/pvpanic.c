// SPDX-License-Identifier: Apache-2.0
/*
 * pvpanic, QEMU's ISA variant (one I/O port, ACPI _HID QEMU0001; the DSDT must describe it for
 * Linux's drivers/misc/pvpanic/pvpanic-mmio.c to bind). The driver reads the port once to learn
 * the supported events and masks what it will send with it; at panic time it writes PANICKED,
 * or CRASH_LOADED when a kdump kernel is about to take over. PANICKED stops the VM; CRASH_LOADED
 * is only remembered, because the crash kernel still has to run and write its dump.
 * Bits we do not advertise (e.g. the newer SHUTDOWN event) are ignored.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/devices.h"
#include "vmm/layout.h"
#include "vmm/state.h"

#define PVPANIC_SUPPORTED (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED)

struct pvpanic {
	pthread_mutex_t lock;
	struct vm_stop_sink stop;
	bool crash_loaded;
	struct dev_ratelimit rl;
};

void pvpanic_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pvpanic *p = opaque;
	uint8_t v;

	if (!is_write) {
		memset(data, 0, len);
		data[0] = PVPANIC_SUPPORTED;
		return;
	}
	v = data[0];
	if (v & PVPANIC_PANICKED) {
		vm_stop_request(&p->stop, VMM_STOP_PANIC, 0);
		return;
	}
	pthread_mutex_lock(&p->lock);
	if (v & PVPANIC_CRASH_LOADED) {
		p->crash_loaded = true;
		dev_log_ratelimited(&p->rl,
				    "pvpanic: guest panicked, crash kernel loaded: continuing");
	} else if (v) {
		dev_log_ratelimited(&p->rl, "pvpanic: ignoring event 0x%02x", v);
	}
	pthread_mutex_unlock(&p->lock);
}

bool pvpanic_crash_loaded(struct pvpanic *p)
{
	bool v;

	pthread_mutex_lock(&p->lock);
	v = p->crash_loaded;
	pthread_mutex_unlock(&p->lock);
	return v;
}

int pvpanic_create(struct pvpanic **out, const struct vm_stop_sink *stop)
{
	struct pvpanic *p;
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	r = -pthread_mutex_init(&p->lock, NULL);
	if (r) {
		free(p);
		return r;
	}
	if (stop)
		p->stop = *stop;
	*out = p;
	return 0;
}

void pvpanic_destroy(struct pvpanic *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- the device interface ---- */

static int pvpanic_realize(struct device *d, const struct device_host *h, unsigned int idx,
		           char *err, size_t errlen)
{
	struct pvpanic *p;
	int r;

	snprintf(d->id, sizeof(d->id), "pvpanic");
	if ((r = pvpanic_create(&p, &h->stop)) < 0)
		goto fail;
	d->priv = p;
	if ((r = bus_register(h->pio, PORT_PVPANIC, PVPANIC_PORT_LEN, pvpanic_io, p, "pvpanic")) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "pvpanic: %s", strerror(-r));
	return r;
}

static void pvpanic_unrealize(struct device *d)
{
	pvpanic_destroy(d->priv);
	d->priv = NULL;
}

static int pvpanic_dev_save(struct device *d, struct dev_state_writer *w)
{
	struct pvpanic *p = d->priv;
	uint8_t loaded;

	pthread_mutex_lock(&p->lock);
	loaded = p->crash_loaded;
	pthread_mutex_unlock(&p->lock);
	dev_state_put(w, "crash-loaded", &loaded, 1);
	return 0;
}

static int pvpanic_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			    size_t errlen)
{
	struct pvpanic *p = d->priv;
	uint8_t loaded;

	if (dev_state_get(r, "crash-loaded", &loaded, 1) < 0 || loaded > 1) {
		snprintf(err, errlen, "pvpanic: its state is missing or inconsistent");
		return -EINVAL;
	}
	pthread_mutex_lock(&p->lock);
	p->crash_loaded = loaded;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

static bool pvpanic_describe(struct device *d, struct acpi_dev_desc *out)
{
	acpi_desc_pvpanic(out, PORT_PVPANIC);
	return true;
}

const struct device_ops pvpanic_device_ops = {
	.kind = "pvpanic",
	.realize = pvpanic_realize,
	.unrealize = pvpanic_unrealize,
	.save = pvpanic_dev_save,
	.load = pvpanic_dev_load,
	.describe = pvpanic_describe,
};
