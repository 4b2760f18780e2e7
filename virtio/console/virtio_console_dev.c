// SPDX-License-Identifier: Apache-2.0
/* virtio-console as a device of the machine: present with the virtio console kind. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/virtio_console.h"
#include "vmm/virtio_plug.h"

struct vcon_dev {
	struct virtio_plug plug;
	struct virtio_console *con;
};

static int vcon_dev_realize(struct device *d, const struct device_host *h, unsigned int idx,
			    char *err, size_t errlen)
{
	struct vcon_dev *v = calloc(1, sizeof(*v));
	struct ev_loop *loop;
	int r;

	if (!v) {
		snprintf(err, errlen, "virtio console: out of memory");
		return -ENOMEM;
	}
	d->priv = v;
	snprintf(d->id, sizeof(d->id), "hvc0");
	if (!(loop = virtio_plug_loop(h, err, errlen, "virtio console")))
		return -ENOMEM;
	if ((r = virtio_console_create(&v->con, h->gm, loop, h->cfg->console_out)) < 0) {
		snprintf(err, errlen, "virtio console: %s", strerror(-r));
		return r;
	}
	return virtio_plug(&v->plug, virtio_console_device(v->con), loop, h, "virtio console",
			   err, errlen);
}

static void vcon_dev_unrealize(struct device *d)
{
	struct vcon_dev *v = d->priv;

	if (!v)
		return;
	virtio_unplug(&v->plug);
	virtio_console_destroy(v->con);
	free(v);
	d->priv = NULL;
}

static int vcon_dev_quiesce(struct device *d)
{
	return virtio_plug_quiesce(&((struct vcon_dev *)d->priv)->plug);
}

static void vcon_dev_resume(struct device *d)
{
	virtio_plug_resume(&((struct vcon_dev *)d->priv)->plug);
}

static int vcon_dev_save(struct device *d, struct dev_state_writer *w)
{
	return virtio_plug_save(&((struct vcon_dev *)d->priv)->plug, w);
}

static int vcon_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			  size_t errlen)
{
	return virtio_plug_load(&((struct vcon_dev *)d->priv)->plug, r, err, errlen);
}

static bool vcon_dev_describe(struct device *d, struct acpi_dev_desc *out)
{
	return virtio_plug_describe(&((struct vcon_dev *)d->priv)->plug, out);
}

struct virtio_console *virtio_console_of(struct device *d)
{
	return ((struct vcon_dev *)d->priv)->con;
}

const struct device_ops virtio_console_device_ops = {
	.kind = "virtio-console",
	.realize = vcon_dev_realize,
	.unrealize = vcon_dev_unrealize,
	.quiesce = vcon_dev_quiesce,
	.resume = vcon_dev_resume,
	.save = vcon_dev_save,
	.load = vcon_dev_load,
	.describe = vcon_dev_describe,
};
