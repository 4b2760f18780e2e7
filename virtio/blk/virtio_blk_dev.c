// SPDX-License-Identifier: Apache-2.0
/* virtio-blk as a device of the machine: one per configured disk, the root disk first. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vmm/device.h"
#include "vmm/virtio_blk.h"
#include "vmm/virtio_plug.h"

struct vblk_dev {
	struct virtio_plug plug;
	struct virtio_blk *blk;
	char label[DEVICE_ID_MAX + 16];
};

static bool same_image(const struct stat *a, const struct stat *b)
{
	if (S_ISBLK(a->st_mode) && S_ISBLK(b->st_mode))
		return a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* An image given twice under two names would be refused as "locked by another process". */
static int vblk_check_duplicate(const struct vmm_config *cfg, unsigned int idx,
				const struct config_disk *disk, const char *label, char *err,
				size_t errlen)
{
	struct stat me, other;

	if (disk->fd >= 0 ? fstat(disk->fd, &me) < 0 : stat(disk->path, &me) < 0)
		return 0; /* the open reports it */
	for (unsigned int j = 0; j < idx; j++) {
		const struct config_disk *o = config_disk_at(cfg, j);

		if ((o->fd >= 0 ? fstat(o->fd, &other) : stat(o->path, &other)) == 0 &&
		    same_image(&me, &other)) {
			snprintf(err, errlen, "%s: %s is the same image as disk '%s' (%s)", label,
				 disk->path ? disk->path : "the image", o->id,
				 o->path ? o->path : "adopted");
			return -EINVAL;
		}
	}
	return 0;
}

/* Before KVM: the image opens, is of the right kind and not locked, and is not given twice. */
static int vblk_dev_check(const struct vmm_config *cfg, unsigned int idx, char *err,
			  size_t errlen)
{
	const struct config_disk *disk = config_disk_at(cfg, idx);
	char label[DEVICE_ID_MAX + 16], sub[480];
	struct blk_image img;
	int r;

	snprintf(label, sizeof(label), "disk '%s'", disk->id);
	if ((r = vblk_check_duplicate(cfg, idx, disk, label, err, errlen)) < 0)
		return r;
	if (disk->fd >= 0)
		r = blk_image_adopt(&img, disk->fd, disk->path, disk->read_only,
				    disk->cache == VMM_CACHE_NONE ? BLK_CACHE_NONE
								  : BLK_CACHE_WRITEBACK,
				    sub, sizeof(sub));
	else
		r = blk_image_open(&img, disk->path, disk->read_only,
				   disk->cache == VMM_CACHE_NONE ? BLK_CACHE_NONE
								 : BLK_CACHE_WRITEBACK,
				   sub, sizeof(sub));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", label, sub);
		return r;
	}
	blk_image_close(&img);
	return 0;
}

static int vblk_dev_realize(struct device *d, const struct device_host *h, unsigned int idx,
			    char *err, size_t errlen)
{
	const struct config_disk *disk = config_disk_at(h->cfg, idx);
	struct vblk_dev *v = calloc(1, sizeof(*v));
	struct ev_loop *loop;
	int r;

	if (!v) {
		snprintf(err, errlen, "disk '%s': out of memory", disk->id);
		return -ENOMEM;
	}
	d->priv = v;
	snprintf(d->id, sizeof(d->id), "%s", disk->id);
	snprintf(v->label, sizeof(v->label), "disk '%s'", disk->id);
	if ((r = vblk_check_duplicate(h->cfg, idx, disk, v->label, err, errlen)) < 0)
		return r;
	if (!(loop = virtio_plug_loop(h, err, errlen, v->label)))
		return -ENOMEM;

	struct virtio_blk_config bc = {
		.label = v->label,
		.path = disk->path,
		.fd = disk->fd,
		.read_only = disk->read_only,
		.cache = disk->cache == VMM_CACHE_NONE ? BLK_CACHE_NONE : BLK_CACHE_WRITEBACK,
		.engine = disk->io == VMM_IO_AIO ? BLK_ENGINE_AIO
			  : disk->io == VMM_IO_SYNC ? BLK_ENGINE_SYNC : BLK_ENGINE_URING,
		.engine_fixed = disk->io != VMM_IO_AUTO,
		.serial = disk->serial,
		.poll_us = disk->poll_us,
		/* One queue per vCPU: each vCPU's blk-mq context submits on its own queue. */
		.nr_queues = MIN(h->cfg->nr_cpus, (unsigned int)VIRTIO_MAX_QUEUES),
	};
	if ((r = virtio_blk_create(&v->blk, &bc, h->gm, loop, err, errlen)) < 0)
		return r;
	return virtio_plug(&v->plug, virtio_blk_device(v->blk), loop, h, v->label, err, errlen);
}

static void vblk_dev_unrealize(struct device *d)
{
	struct vblk_dev *v = d->priv;

	if (!v)
		return;
	/* Transport first (its routes and watches), then the device, which drains its I/O. */
	virtio_unplug(&v->plug);
	virtio_blk_destroy(v->blk);
	free(v);
	d->priv = NULL;
}

static int vblk_dev_quiesce(struct device *d)
{
	return virtio_plug_quiesce(&((struct vblk_dev *)d->priv)->plug);
}

static void vblk_dev_resume(struct device *d)
{
	virtio_plug_resume(&((struct vblk_dev *)d->priv)->plug);
}

static int vblk_dev_save(struct device *d, struct dev_state_writer *w)
{
	return virtio_plug_save(&((struct vblk_dev *)d->priv)->plug, w);
}

static int vblk_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			  size_t errlen)
{
	return virtio_plug_load(&((struct vblk_dev *)d->priv)->plug, r, err, errlen);
}

static bool vblk_dev_describe(struct device *d, struct acpi_dev_desc *out)
{
	return virtio_plug_describe(&((struct vblk_dev *)d->priv)->plug, out);
}

static int vblk_dev_host_fd(struct device *d)
{
	return virtio_blk_image_fd(((struct vblk_dev *)d->priv)->blk);
}

static void vblk_dev_stats(struct device *d, char *buf, size_t len)
{
	struct vblk_dev *v = d->priv;
	struct virtio_blk_poll_stats ps;

	virtio_blk_get_poll_stats(v->blk, &ps);
	snprintf(buf, len, "engine=%s malformed=%llu poll_phases=%llu poll_found=%llu",
		 blk_engine_name(virtio_blk_engine(v->blk)),
		 (unsigned long long)virtio_blk_device(v->blk)->malformed,
		 (unsigned long long)ps.phases, (unsigned long long)ps.found);
}

const struct device_ops virtio_blk_device_ops = {
	.kind = "virtio-blk",
	.check = vblk_dev_check,
	.realize = vblk_dev_realize,
	.unrealize = vblk_dev_unrealize,
	.quiesce = vblk_dev_quiesce,
	.resume = vblk_dev_resume,
	.save = vblk_dev_save,
	.load = vblk_dev_load,
	.describe = vblk_dev_describe,
	.stats = vblk_dev_stats,
	.host_fd = vblk_dev_host_fd,
};
