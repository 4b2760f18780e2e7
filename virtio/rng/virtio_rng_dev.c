// SPDX-License-Identifier: Apache-2.0
/* virtio-rng as a device of the machine: present when the configuration asks for entropy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/virtio_plug.h"
#include "vmm/virtio_rng.h"

struct vrng_dev {
	struct virtio_plug plug;
	struct virtio_rng *rng;
};

static struct vrng_dev *vrng_dev(struct device *d)
{
	return d->priv;
}

static int vrng_dev_realize(struct device *d, const struct device_host *h, unsigned int idx,
			    char *err, size_t errlen)
{
	struct vrng_dev *v = calloc(1, sizeof(*v));
	struct ev_loop *loop;
	int r;

	(void)idx;
	if (!v) {
		snprintf(err, errlen, "entropy device: out of memory");
		return -ENOMEM;
	}
	d->priv = v;
	snprintf(d->id, sizeof(d->id), "rng0");
	if (!(loop = virtio_plug_loop(h, err, errlen, "entropy device")))
		return -ENOMEM;
	if ((r = virtio_rng_create(&v->rng, h->gm, loop, &h->cfg->rng_limit)) < 0) {
		snprintf(err, errlen, "entropy device: %s", strerror(-r));
		return r;
	}
	return virtio_plug(&v->plug, virtio_rng_device(v->rng), loop, h, "entropy device", err,
			   errlen);
}

static void vrng_dev_unrealize(struct device *d)
{
	struct vrng_dev *v = vrng_dev(d);

	if (!v)
		return;
	virtio_unplug(&v->plug);
	virtio_rng_destroy(v->rng);
	free(v);
	d->priv = NULL;
}

static int vrng_dev_quiesce(struct device *d)
{
	return virtio_plug_quiesce(&vrng_dev(d)->plug);
}

static void vrng_dev_resume(struct device *d)
{
	virtio_plug_resume(&vrng_dev(d)->plug);
}

static int vrng_dev_save(struct device *d, struct dev_state_writer *w)
{
	return virtio_plug_save(&vrng_dev(d)->plug, w);
}

static int vrng_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			 size_t errlen)
{
	return virtio_plug_load(&vrng_dev(d)->plug, r, err, errlen);
}

static bool vrng_dev_describe(struct device *d, struct acpi_dev_desc *out)
{
	return virtio_plug_describe(&vrng_dev(d)->plug, out);
}

static void vrng_dev_stats(struct device *d, char *buf, size_t len)
{
	virtio_rng_stats(vrng_dev(d)->rng, buf, len);
}

const struct device_ops virtio_rng_device_ops = {
	.kind = "virtio-rng",
	.realize = vrng_dev_realize,
	.unrealize = vrng_dev_unrealize,
	.quiesce = vrng_dev_quiesce,
	.resume = vrng_dev_resume,
	.save = vrng_dev_save,
	.load = vrng_dev_load,
	.describe = vrng_dev_describe,
	.stats = vrng_dev_stats,
};
