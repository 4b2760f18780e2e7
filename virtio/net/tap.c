// SPDX-License-Identifier: Apache-2.0
/* Tap devices for virtio-net (vmm/virtio_net.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/virtio_net.h"

static int tap_setup(int fd, const char *what, char *err, size_t errlen)
{
	int hdr = VIRTIO_NET_HDR_LEN;
	unsigned int feat = 0;

	if (ioctl(fd, TUNGETFEATURES, &feat) < 0 || !(feat & IFF_VNET_HDR)) {
		snprintf(err, errlen, "%s: the tap driver has no IFF_VNET_HDR", what);
		return -ENOTSUP;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		int r = -errno;

		snprintf(err, errlen, "%s: TUNSETVNETHDRSZ: %s", what, strerror(-r));
		return r;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		int r = -errno;

		snprintf(err, errlen, "%s: %s", what, strerror(-r));
		return r;
	}
	return 0;
}

int tap_open(const char *name, int *out, char *err, size_t errlen)
{
	struct ifreq ifr = {0};
	int fd, r;

	if (!*name || strlen(name) >= IFNAMSIZ) {
		snprintf(err, errlen, "tap '%s': a name of 1 to %d characters is needed", name,
			 IFNAMSIZ - 1);
		return -EINVAL;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		if (r == -EACCES || r == -EPERM)
			snprintf(err, errlen, "tap '%s': not permitted to open /dev/net/tun (%s)",
				 name, strerror(-r));
		else
			snprintf(err, errlen, "tap '%s': /dev/net/tun: %s", name, strerror(-r));
		return r;
	}
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = -errno;
		if (r == -EPERM)
			snprintf(err, errlen, "tap '%s': not permitted (it does not exist and creating "
				 "one needs CAP_NET_ADMIN, or it belongs to another user)", name);
		else if (r == -EBUSY)
			snprintf(err, errlen, "tap '%s': in use by another process", name);
		else if (r == -EINVAL)
			snprintf(err, errlen, "tap '%s': exists but is no tap with a vnet header "
				 "(a tun, or made without vnet_hdr)", name);
		else
			snprintf(err, errlen, "tap '%s': %s", name, strerror(-r));
		close(fd);
		return r;
	}
	char what[IFNAMSIZ + 8];

	snprintf(what, sizeof(what), "tap '%s'", name);
	if ((r = tap_setup(fd, what, err, errlen)) < 0) {
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

int tap_adopt(int fd, char *err, size_t errlen)
{
	struct ifreq ifr = {0};

	if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
		snprintf(err, errlen, "network fd %d: not a tap (%s)", fd, strerror(errno));
		return -EINVAL;
	}
	if (!(ifr.ifr_flags & IFF_TAP) || !(ifr.ifr_flags & IFF_VNET_HDR) ||
	    !(ifr.ifr_flags & IFF_NO_PI)) {
		snprintf(err, errlen, "network fd %d (%s): a tap with IFF_VNET_HDR and IFF_NO_PI is "
			 "needed", fd, ifr.ifr_name);
		return -EINVAL;
	}
	return tap_setup(fd, ifr.ifr_name, err, errlen);
}

int tap_mtu(int fd)
{
	struct ifreq ifr = {0};
	int s, r;

	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return -errno;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	r = ioctl(s, SIOCGIFMTU, &ifr) < 0 ? -errno : ifr.ifr_mtu;
	close(s);
	return r;
}

int tap_set_offload(int fd, uint64_t features)
{
	unsigned int off = 0;

	if (features & VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (features & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (features & VIRTIO_BIT(VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
	}
	return ioctl(fd, TUNSETOFFLOAD, off) < 0 ? -errno : 0;
}
