/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (virtio 1.2 §5.1) over a tap opened with IFF_VNET_HDR (virtio/net/tap.c): the
 * guest's 12-byte virtio_net_hdr_v1 is the tap's own vnet header, so a transmitted chain is
 * written to the tap as it is (writev straight from guest RAM) and a received packet is read
 * straight into the guest's receive buffers (readv over as many mergeable buffers as a packet
 * may need; those it did not fill are given back). One copy each way, the kernel's. The
 * checksum and segmentation offloads the guest accepts are set on the tap (TUNSETOFFLOAD).
 * While the receive queue has no room the tap is not read: packets wait in the tap's queue.
 */
#ifndef VMM_VIRTIO_NET_H
#define VMM_VIRTIO_NET_H

#include "vmm/event_loop.h"
#include "vmm/virtio.h"

#define VIRTIO_NET_F_CSUM       0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MTU        3
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_HOST_TSO4  11
#define VIRTIO_NET_F_HOST_TSO6  12
#define VIRTIO_NET_F_MRG_RXBUF  15
#define VIRTIO_NET_F_STATUS     16

#define VIRTIO_NET_HDR_LEN      12 /* struct virtio_net_hdr_v1 */
#define VIRTIO_NET_QUEUE_SIZE   256

struct virtio_net;

/*
 * fd: the tap (not owned), non-blocking, vnet header of VIRTIO_NET_HDR_LEN bytes set. tap:
 * whether TUNSETOFFLOAD applies (false for a packet socket standing in for one in tests).
 */
int virtio_net_create(struct virtio_net **out, const struct guest_mem *gm, struct ev_loop *loop,
		      int fd, bool tap, const uint8_t mac[6]) WUR;
struct virtio_device *virtio_net_device(struct virtio_net *n);
/*
 * Offer VIRTIO_NET_F_MTU with mtu (68 to 65535) in the config space, before the driver runs:
 * the guest's interface takes it, and a receive is sized for a frame of it. Without, the
 * device has no MTU to say and sizes receives for the tap's MTU (1500 without a tap).
 */
void virtio_net_set_mtu(struct virtio_net *n, unsigned int mtu);
/*
 * Rate limits per direction (Firecracker's rx_rate_limiter and tx_rate_limiter: bytes and
 * frames; NULL or all zero: none), at any time: the buckets start full. A frame goes when both
 * of its direction's buckets have tokens and is charged whole. Needs the loop (its timers):
 * -EINVAL without one; -errno when a timer cannot be made.
 */
struct vmm_rate_limiter;
int virtio_net_set_rate_limits(struct virtio_net *n, const struct vmm_rate_limiter *rx,
			       const struct vmm_rate_limiter *tx) WUR;
/*
 * loop NULL makes a device that watches nothing: its owner drives it with virtio_net_poll()
 * (transmit what the driver queued, receive what the tap has), on one thread (the fuzz target).
 */
void virtio_net_poll(struct virtio_net *n);
/* Before the ev_loop is destroyed: the tap's watch lives on it. */
void virtio_net_destroy(struct virtio_net *n);
void virtio_net_stats(struct virtio_net *n, char *buf, size_t len);

/* tap.c: open (creating it if absent) the tap NAME, non-blocking, with a 12-byte vnet header;
 * or check an fd handed over (a runtime's, a live update's). -errno and one line in err. */
int tap_open(const char *name, int *fd, char *err, size_t errlen) WUR;
int tap_adopt(int fd, char *err, size_t errlen) WUR;
/* The tap's MTU, or -errno. */
int tap_mtu(int fd);
/* The offloads the guest accepts (VIRTIO_NET_F_GUEST_* of features) onto the tap. */
int tap_set_offload(int fd, uint64_t features);

/*
 * slirp.c: user-mode networking. libslirp runs in a helper process, vmm-slirp, found beside
 * the executable ($VMM_SLIRP_HELPER overrides), at the other end of a SOCK_SEQPACKET socket
 * that the device uses as a tap without offloads (virtio_net_create with tap false): each
 * packet a frame after a zeroed 12-byte vnet header. slirp_start() starts it with cn's
 * hostfwd rules and waits until it runs (a port it cannot bind is the error, one line);
 * *fd, non-blocking, is the device's end. slirp_adopt() takes over an end a live update
 * handed over: the helper serves this process from now on. slirp_stop() tells the helper
 * that this process is done (it ends unless another process took over); with wait, until
 * it has released its ports (at most a second). The caller closes fd.
 */
struct config_net;
int slirp_start(const struct config_net *cn, int *fd, char *err, size_t errlen) WUR;
int slirp_adopt(int fd, char *err, size_t errlen) WUR;
void slirp_stop(int fd, bool wait);
/* Where the helper is: 0, or -errno when it is not there (buf says where it was looked for). */
int slirp_helper_path(char *buf, size_t len);

#endif
