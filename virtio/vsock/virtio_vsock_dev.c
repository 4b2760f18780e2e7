// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-vsock as a device of the machine: present when the configuration has one. Owns the
 * host side's listening socket (bound at uds_path, or adopted from a live update) and the
 * claim on the guest CID (vsock_claim_cid), which a live update passes on with the state.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/device.h"
#include "vmm/state.h"
#include "vmm/usock.h"
#include "vmm/virtio_plug.h"
#include "vmm/virtio_vsock.h"

#define VSOCK_BACKLOG 128

struct vsock_dev {
	struct virtio_plug plug;
	struct virtio_vsock *vs;
	int listen_fd;
	int cid_fd;
	bool bound;    /* we made the socket file: unlink it at the end (unless disowned) */
	dev_t dev;
	ino_t ino;
	char *path;
};

static int claim_cid(const struct config_vsock *cv, int *fd, char *err, size_t errlen)
{
	int r = vsock_claim_cid(cv->cid, fd);

	if (r == -EADDRINUSE)
		snprintf(err, errlen, "vsock: guest CID %llu is taken by another VM on this host",
			 (unsigned long long)cv->cid);
	else if (r < 0)
		snprintf(err, errlen, "vsock: cannot claim guest CID %llu: %s",
			 (unsigned long long)cv->cid, strerror(-r));
	return r;
}

/* The socket's directory must exist, and no live process listen there. */
static int check_uds(const struct config_vsock *cv, char *err, size_t errlen)
{
	char *copy = strdup(cv->uds);
	struct stat st;
	int r = 0;

	if (!copy) {
		snprintf(err, errlen, "vsock: out of memory");
		return -ENOMEM;
	}
	const char *dir = dirname(copy);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "vsock: uds_path %s: no such directory %s", cv->uds, dir);
		r = -ENOENT;
	} else if (lstat(cv->uds, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "vsock: uds_path %s: exists and is not a socket", cv->uds);
		r = -EEXIST;
	} else if (usock_probe(cv->uds) > 0) {
		snprintf(err, errlen, "vsock: uds_path %s: another process listens on it", cv->uds);
		r = -EADDRINUSE;
	}
	free(copy);
	return r;
}

static int vsock_dev_check(const struct vmm_config *cfg, unsigned int idx, char *err,
			   size_t errlen)
{
	const struct config_vsock *cv = &cfg->vsock;
	int fd, r;

	(void)idx;
	if (cv->fd >= 0)
		return 0; /* a live update's: the old process holds the CID until it ends */
	if ((r = check_uds(cv, err, errlen)) < 0 || (r = claim_cid(cv, &fd, err, errlen)) < 0)
		return r;
	close(fd);
	return 0;
}

static struct vsock_dev *vsock_dev(struct device *d)
{
	return d->priv;
}

static int vsock_dev_realize(struct device *d, const struct device_host *h, unsigned int idx,
			     char *err, size_t errlen)
{
	const struct config_vsock *cv = &h->cfg->vsock;
	struct vsock_dev *v = calloc(1, sizeof(*v));
	struct ev_loop *loop;
	int r;

	(void)idx;
	if (!v || !(v->path = strdup(cv->uds))) {
		free(v);
		snprintf(err, errlen, "vsock: out of memory");
		return -ENOMEM;
	}
	v->listen_fd = v->cid_fd = -1;
	d->priv = v;
	snprintf(d->id, sizeof(d->id), "%s", CONFIG_VSOCK_ID);
	if (cv->fd >= 0) {
		/* A live update's socket; the CID comes with the state (vsock_dev_load). */
		if ((v->listen_fd = fcntl(cv->fd, F_DUPFD_CLOEXEC, 3)) < 0) {
			r = -errno;
			snprintf(err, errlen, "vsock: %s", strerror(-r));
			return r;
		}
		if ((r = usock_adopt("vsock: uds_path", cv->uds, v->listen_fd, VSOCK_BACKLOG, err,
				     errlen)) < 0)
			return r;
	} else {
		if ((r = claim_cid(cv, &v->cid_fd, err, errlen)) < 0 ||
		    (r = check_uds(cv, err, errlen)) < 0 ||
		    (r = usock_listen("vsock: uds_path", cv->uds, VSOCK_BACKLOG, &v->listen_fd,
				      &v->dev, &v->ino, err, errlen)) < 0)
			return r;
		v->bound = true;
	}
	if (!(loop = virtio_plug_loop(h, err, errlen, "vsock")))
		return -ENOMEM;
	if ((r = virtio_vsock_create(&v->vs, h->gm, loop, cv->cid, v->listen_fd, cv->uds)) < 0) {
		snprintf(err, errlen, "vsock: %s", strerror(-r));
		return r;
	}
	return virtio_plug(&v->plug, virtio_vsock_device(v->vs), loop, h, "vsock", err, errlen);
}

static void vsock_dev_unrealize(struct device *d)
{
	struct vsock_dev *v = vsock_dev(d);

	if (!v)
		return;
	virtio_unplug(&v->plug);
	virtio_vsock_destroy(v->vs);
	if (v->listen_fd >= 0)
		close(v->listen_fd);
	if (v->bound)
		usock_unlink_if_ours(v->path, v->dev, v->ino);
	if (v->cid_fd >= 0)
		close(v->cid_fd);
	free(v->path);
	free(v);
	d->priv = NULL;
}

static int vsock_dev_quiesce(struct device *d)
{
	return virtio_plug_quiesce(&vsock_dev(d)->plug);
}

static void vsock_dev_resume(struct device *d)
{
	virtio_plug_resume(&vsock_dev(d)->plug);
}

static int vsock_dev_save(struct device *d, struct dev_state_writer *w)
{
	struct vsock_dev *v = vsock_dev(d);
	int r = virtio_plug_save(&v->plug, w);

	/* A live update: the CID's claim goes with the connections. */
	if (r == 0 && dev_state_keeps_fds(w) && v->cid_fd >= 0) {
		int idx = dev_state_add_fd(w, v->cid_fd);
		uint32_t u = (uint32_t)idx;

		if (idx < 0)
			return idx;
		dev_state_put(w, "vsock-cid-claim", &u, sizeof(u));
	}
	return r;
}

static int vsock_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			  size_t errlen)
{
	struct vsock_dev *v = vsock_dev(d);
	uint32_t idx;
	int e = virtio_plug_load(&v->plug, r, err, errlen);

	if (e == 0 && dev_state_has_fds(r) &&
	    dev_state_get(r, "vsock-cid-claim", &idx, sizeof(idx)) == 0) {
		int fd = dev_state_take_fd(r, idx);

		if (fd < 0) {
			snprintf(err, errlen, "vsock: the CID's claim did not come with the state");
			return -EINVAL;
		}
		if (v->cid_fd >= 0)
			close(v->cid_fd);
		v->cid_fd = fd;
	}
	return e;
}

static bool vsock_dev_describe(struct device *d, struct acpi_dev_desc *out)
{
	return virtio_plug_describe(&vsock_dev(d)->plug, out);
}

static void vsock_dev_stats(struct device *d, char *buf, size_t len)
{
	virtio_vsock_stats(vsock_dev(d)->vs, buf, len);
}

static int vsock_dev_host_fd(struct device *d)
{
	return vsock_dev(d)->listen_fd;
}

static void vsock_dev_disown(struct device *d)
{
	vsock_dev(d)->bound = false;
}

const struct device_ops virtio_vsock_device_ops = {
	.kind = "virtio-vsock",
	.check = vsock_dev_check,
	.realize = vsock_dev_realize,
	.unrealize = vsock_dev_unrealize,
	.quiesce = vsock_dev_quiesce,
	.resume = vsock_dev_resume,
	.save = vsock_dev_save,
	.load = vsock_dev_load,
	.describe = vsock_dev_describe,
	.stats = vsock_dev_stats,
	.host_fd = vsock_dev_host_fd,
	.disown = vsock_dev_disown,
};
