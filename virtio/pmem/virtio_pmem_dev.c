// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-pmem as a device of the machine: one per configured pmem, the root one first. The file
 * is opened and locked as a disk image is (blk_image: an OFD lock, shared for read-only, so
 * that many VMs can map one base image), mapped shared on a 2 MiB boundary, and put into the
 * guest's physical memory above RAM by the machine.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "vmm/blk_backend.h"
#include "vmm/device.h"
#include "vmm/virtio_plug.h"
#include "vmm/virtio_pmem.h"

struct vpmem_dev {
	struct virtio_plug plug;
	struct virtio_pmem *pmem;
	struct blk_image img;
	bool img_open;
	uint8_t *map;         /* the file's mapping, VIRTIO_PMEM_ALIGN-aligned */
	uint64_t size;
	uint64_t gpa;
	bool mapped;          /* in the guest (map_memory) */
	void (*unmap)(void *opaque, uint64_t gpa);
	void *opaque;
	char label[DEVICE_ID_MAX + 16];
};

static int vpmem_bad_size(const struct config_pmem *p, uint64_t size, const char *label,
			  char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: %s is %llu bytes; a pmem file must be a non-zero multiple of "
		 "2 MiB (truncate -s to the next one, e.g. %lluM)", label,
		 p->path ? p->path : "the file", (unsigned long long)size,
		 (unsigned long long)(size ? (size + VIRTIO_PMEM_ALIGN - 1) / VIRTIO_PMEM_ALIGN * 2
					  : 2));
	return -EINVAL;
}

/* Open, lock and size-check the file: the checks a user gets before anything is started. */
static int vpmem_open(const struct config_pmem *p, struct blk_image *img, const char *label,
		      char *err, size_t errlen)
{
	struct stat st;
	char sub[480];
	int r;

	/* An empty regular file is a pmem file of the wrong size, not a short disk image. */
	if ((p->fd >= 0 ? fstat(p->fd, &st) : stat(p->path, &st)) == 0 && S_ISREG(st.st_mode) &&
	    st.st_size == 0)
		return vpmem_bad_size(p, 0, label, err, errlen);
	if (p->fd >= 0)
		r = blk_image_adopt(img, p->fd, p->path, p->read_only, BLK_CACHE_WRITEBACK, sub,
				    sizeof(sub));
	else
		r = blk_image_open(img, p->path, p->read_only, BLK_CACHE_WRITEBACK, sub,
				   sizeof(sub));
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", label, sub);
		return r;
	}
	if (img->size == 0 || img->size % VIRTIO_PMEM_ALIGN) {
		vpmem_bad_size(p, img->size, label, err, errlen);
		blk_image_close(img);
		return -EINVAL;
	}
	return 0;
}

static int vpmem_dev_check(const struct vmm_config *cfg, unsigned int idx, char *err,
			   size_t errlen)
{
	const struct config_pmem *p = config_pmem_at(cfg, idx);
	char label[DEVICE_ID_MAX + 16];
	struct blk_image img;
	int r;

	snprintf(label, sizeof(label), "pmem '%s'", p->id);
	if ((r = vpmem_open(p, &img, label, err, errlen)) < 0)
		return r;
	blk_image_close(&img);
	return 0;
}

/* The file mapped shared at a VIRTIO_PMEM_ALIGN boundary (so the guest can use huge pages). */
static uint8_t *vpmem_map(int fd, uint64_t size, bool read_only)
{
	uint8_t *res = mmap(NULL, size + VIRTIO_PMEM_ALIGN, PROT_NONE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (res == MAP_FAILED)
		return NULL;
	uint8_t *at = (uint8_t *)(((uintptr_t)res + VIRTIO_PMEM_ALIGN - 1) &
				  ~(uintptr_t)(VIRTIO_PMEM_ALIGN - 1));
	size_t head = (size_t)(at - res);

	if (head)
		munmap(res, head);
	munmap(at + size, VIRTIO_PMEM_ALIGN - head);
	void *m = mmap(at, size, PROT_READ | (read_only ? 0 : PROT_WRITE), MAP_SHARED | MAP_FIXED,
		       fd, 0);
	if (m == MAP_FAILED) {
		munmap(at, size);
		return NULL;
	}
	madvise(at, size, MADV_HUGEPAGE);
	return at;
}

static int vpmem_dev_realize(struct device *d, const struct device_host *h, unsigned int idx,
			     char *err, size_t errlen)
{
	const struct config_pmem *p = config_pmem_at(h->cfg, idx);
	struct vpmem_dev *v = calloc(1, sizeof(*v));
	struct ev_loop *loop;
	int r;

	if (!v) {
		snprintf(err, errlen, "pmem '%s': out of memory", p->id);
		return -ENOMEM;
	}
	d->priv = v;
	snprintf(d->id, sizeof(d->id), "%s", p->id);
	snprintf(v->label, sizeof(v->label), "pmem '%s'", p->id);
	if ((r = vpmem_open(p, &v->img, v->label, err, errlen)) < 0)
		return r;
	v->img_open = true;
	v->size = v->img.size;
	if (!(v->map = vpmem_map(v->img.fd, v->size, p->read_only))) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot map %s: %s", v->label, p->path ? p->path : "it",
			 strerror(-r));
		return r;
	}
	if (!h->map_memory) {
		snprintf(err, errlen, "%s: this machine has no device memory", v->label);
		return -ENOTSUP;
	}
	if ((r = h->map_memory(h->opaque, v->map, v->size, p->read_only, &v->gpa)) < 0) {
		snprintf(err, errlen, "%s: cannot map it into the guest: %s", v->label,
			 strerror(-r));
		return r;
	}
	v->mapped = true;
	v->unmap = h->unmap_memory;
	v->opaque = h->opaque;
	if (!(loop = virtio_plug_loop(h, err, errlen, v->label)))
		return -ENOMEM;
	if ((r = virtio_pmem_create(&v->pmem, h->gm, loop, v->img.fd, v->gpa, v->size,
				    p->read_only)) < 0) {
		snprintf(err, errlen, "%s: %s", v->label, strerror(-r));
		return r;
	}
	return virtio_plug(&v->plug, virtio_pmem_device(v->pmem), loop, h, v->label, err, errlen);
}

static struct vpmem_dev *vpmem_dev(struct device *d)
{
	return d->priv;
}

static void vpmem_dev_unrealize(struct device *d)
{
	struct vpmem_dev *v = vpmem_dev(d);

	if (!v)
		return;
	virtio_unplug(&v->plug);
	virtio_pmem_destroy(v->pmem);
	if (v->mapped && v->unmap)
		v->unmap(v->opaque, v->gpa);
	if (v->map)
		munmap(v->map, v->size);
	if (v->img_open)
		blk_image_close(&v->img);
	free(v);
	d->priv = NULL;
}

static int vpmem_dev_quiesce(struct device *d)
{
	return virtio_plug_quiesce(&vpmem_dev(d)->plug);
}

static void vpmem_dev_resume(struct device *d)
{
	virtio_plug_resume(&vpmem_dev(d)->plug);
}

static int vpmem_dev_save(struct device *d, struct dev_state_writer *w)
{
	return virtio_plug_save(&vpmem_dev(d)->plug, w);
}

static int vpmem_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			  size_t errlen)
{
	return virtio_plug_load(&vpmem_dev(d)->plug, r, err, errlen);
}

static bool vpmem_dev_describe(struct device *d, struct acpi_dev_desc *out)
{
	return virtio_plug_describe(&vpmem_dev(d)->plug, out);
}

static void vpmem_dev_stats(struct device *d, char *buf, size_t len)
{
	virtio_pmem_stats(vpmem_dev(d)->pmem, buf, len);
}

static int vpmem_dev_host_fd(struct device *d)
{
	return vpmem_dev(d)->img.fd;
}

const struct device_ops virtio_pmem_device_ops = {
	.kind = "virtio-pmem",
	.check = vpmem_dev_check,
	.realize = vpmem_dev_realize,
	.unrealize = vpmem_dev_unrealize,
	.quiesce = vpmem_dev_quiesce,
	.resume = vpmem_dev_resume,
	.save = vpmem_dev_save,
	.load = vpmem_dev_load,
	.describe = vpmem_dev_describe,
	.stats = vpmem_dev_stats,
	.host_fd = vpmem_dev_host_fd,
};
