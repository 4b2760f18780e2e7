// SPDX-License-Identifier: Apache-2.0
/* virtio-net as a device of the machine: one per configured network interface, on its tap or
 * on its user-mode network (slirp.c). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/device.h"
#include "vmm/virtio_net.h"
#include "vmm/virtio_plug.h"

/* What user-mode networking cannot take: slirp wants whole frames with their checksums. */
#define VNET_OFFLOADS                                                                            \
	(VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |                   \
	 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO6) |               \
	 VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6))

struct vnet_dev {
	struct virtio_plug plug;
	struct virtio_net *net;
	int fd;
	bool user;
	bool spawned; /* the user network's helper was started by this process */
	char label[DEVICE_ID_MAX + 32];
};

/*
 * The tap: an adopted one dup'ed (the configuration keeps its own), else opened by name. A
 * user network: its helper's socket handed over by a live update, adopted the same way,
 * else a new helper.
 */
static int vnet_open(const struct config_net *cn, int *fd, const char *label, char *err,
		     size_t errlen)
{
	char sub[320];
	int r;

	if (cn->user && cn->fd < 0) {
		if ((r = slirp_start(cn, fd, sub, sizeof(sub))) < 0) {
			snprintf(err, errlen, "%s: %s", label, sub);
			return r;
		}
		return 0;
	}
	if (cn->fd >= 0) {
		if ((*fd = fcntl(cn->fd, F_DUPFD_CLOEXEC, 3)) < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", label, strerror(-r));
			return r;
		}
		if ((r = cn->user ? slirp_adopt(*fd, sub, sizeof(sub))
				  : tap_adopt(*fd, sub, sizeof(sub))) < 0) {
			close(*fd);
			snprintf(err, errlen, "%s: %s", label, sub);
			return r;
		}
		return 0;
	}
	if ((r = tap_open(cn->tap, fd, sub, sizeof(sub))) < 0) {
		snprintf(err, errlen, "%s: %s", label, sub);
		return r;
	}
	return 0;
}

static int vnet_dev_check(const struct vmm_config *cfg, unsigned int idx, char *err,
			  size_t errlen)
{
	const struct config_net *cn = &cfg->nets[idx];
	char label[DEVICE_ID_MAX + 32];
	int fd, r;

	snprintf(label, sizeof(label), "network interface '%s'", cn->id);
	if (cn->user) {
		/* Its ports are bound when it is realized: a helper started here would hold
		 * them until it noticed it is not needed. */
		char path[PATH_MAX];

		if (cn->fd < 0 && (r = slirp_helper_path(path, sizeof(path))) < 0) {
			snprintf(err, errlen, "%s: user-mode networking needs its helper %s: %s",
				 label, path, strerror(-r));
			return r;
		}
		return 0;
	}
	if ((r = vnet_open(cn, &fd, label, err, errlen)) < 0)
		return r;
	close(fd);
	return 0;
}

static int vnet_dev_realize(struct device *d, const struct device_host *h, unsigned int idx,
			    char *err, size_t errlen)
{
	const struct config_net *cn = &h->cfg->nets[idx];
	struct vnet_dev *v = calloc(1, sizeof(*v));
	struct ev_loop *loop;
	uint8_t none[6] = {0};
	int r;

	if (!v) {
		snprintf(err, errlen, "network interface '%s': out of memory", cn->id);
		return -ENOMEM;
	}
	v->fd = -1;
	d->priv = v;
	snprintf(d->id, sizeof(d->id), "%s", cn->id);
	snprintf(v->label, sizeof(v->label), "network interface '%s'", cn->id);
	if ((r = vnet_open(cn, &v->fd, v->label, err, errlen)) < 0)
		return r;
	v->user = cn->user;
	v->spawned = cn->user && cn->fd < 0;
	if (!(loop = virtio_plug_loop(h, err, errlen, v->label)))
		return -ENOMEM;
	if ((r = virtio_net_create(&v->net, h->gm, loop, v->fd, !cn->user,
				   cn->has_mac ? cn->mac : none)) < 0) {
		snprintf(err, errlen, "%s: %s", v->label, strerror(-r));
		return r;
	}
	/* No MAC given: the guest's driver makes one up (no VIRTIO_NET_F_MAC offered). */
	if (!cn->has_mac)
		virtio_net_device(v->net)->device_features &= ~VIRTIO_BIT(VIRTIO_NET_F_MAC);
	if (cn->user)
		virtio_net_device(v->net)->device_features &= ~VNET_OFFLOADS;
	if (cn->user && cn->mtu)
		virtio_net_set_mtu(v->net, cn->mtu);
	if ((r = virtio_net_set_rate_limits(v->net, &cn->rx_limit, &cn->tx_limit)) < 0) {
		snprintf(err, errlen, "%s: rate limiter: %s", v->label, strerror(-r));
		return r;
	}
	return virtio_plug(&v->plug, virtio_net_device(v->net), loop, h, v->label, err, errlen);
}

static struct vnet_dev *vnet_dev(struct device *d)
{
	return d->priv;
}

static void vnet_dev_unrealize(struct device *d)
{
	struct vnet_dev *v = vnet_dev(d);

	if (!v)
		return;
	virtio_unplug(&v->plug);
	virtio_net_destroy(v->net);
	if (v->fd >= 0 && v->user)
		slirp_stop(v->fd, v->spawned);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
	d->priv = NULL;
}

static int vnet_dev_quiesce(struct device *d)
{
	return virtio_plug_quiesce(&vnet_dev(d)->plug);
}

static void vnet_dev_resume(struct device *d)
{
	virtio_plug_resume(&vnet_dev(d)->plug);
}

static int vnet_dev_save(struct device *d, struct dev_state_writer *w)
{
	return virtio_plug_save(&vnet_dev(d)->plug, w);
}

static int vnet_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			 size_t errlen)
{
	return virtio_plug_load(&vnet_dev(d)->plug, r, err, errlen);
}

static bool vnet_dev_describe(struct device *d, struct acpi_dev_desc *out)
{
	return virtio_plug_describe(&vnet_dev(d)->plug, out);
}

static void vnet_dev_stats(struct device *d, char *buf, size_t len)
{
	virtio_net_stats(vnet_dev(d)->net, buf, len);
}

static int vnet_dev_host_fd(struct device *d)
{
	return vnet_dev(d)->fd;
}

const struct device_ops virtio_net_device_ops = {
	.kind = "virtio-net",
	.check = vnet_dev_check,
	.realize = vnet_dev_realize,
	.unrealize = vnet_dev_unrealize,
	.quiesce = vnet_dev_quiesce,
	.resume = vnet_dev_resume,
	.save = vnet_dev_save,
	.load = vnet_dev_load,
	.describe = vnet_dev_describe,
	.stats = vnet_dev_stats,
	.host_fd = vnet_dev_host_fd,
};
