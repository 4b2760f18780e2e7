/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock (virtio 1.2 §5.10), stream sockets only, with Firecracker's hybrid host side:
 * the host end of every connection is a unix stream socket.
 *
 *   host -> guest  a program connects to the device's socket PATH and writes "CONNECT <port>\n";
 *                  the device sends the guest a REQUEST from host port H (a port of its own, 2^30
 *                  and up) to <port>; on the guest's RESPONSE it writes "OK H\n" and the two are
 *                  joined; on RST the program's socket is closed.
 *   guest -> host  a REQUEST to CID 2 port P connects to the unix socket PATH_P; RESPONSE if a
 *                  program listens there, else RST.
 *
 * Flow control is the spec's credit scheme, both ways. Host to guest: bytes are read from the
 * host socket straight into the guest's receive buffers, never more than the guest's credit,
 * so a slow guest application leaves them in the host socket. Guest to host: bytes are
 * written to the host socket straight from the guest's buffers; what the socket does not take
 * now waits in a per-connection buffer of VSOCK_BUF_ALLOC bytes, the credit the device gives:
 * a guest that sends beyond it is reset. Memory stays bounded (VSOCK_MAX_CONNS connections)
 * and no connection stalls another.
 *
 * State: a snapshot cannot hold host sockets, so a restore resets the transport (the event
 * queue's TRANSPORT_RESET, §5.10.6.6.1): the guest closes its connections and reconnects. A
 * live update passes every connection's socket to the new process with the state
 * (dev_state_add_fd), so that open streams carry on.
 */
#ifndef VMM_VIRTIO_VSOCK_H
#define VMM_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/event_loop.h"
#include "vmm/virtio.h"

#define VSOCK_HOST_CID        2
#define VSOCK_MIN_GUEST_CID   3
#define VSOCK_QUEUE_SIZE      256
#define VSOCK_MAX_CONNS       1024
#define VSOCK_BUF_ALLOC       (256 * 1024) /* the credit each connection gives the guest */
#define VSOCK_MAX_PKT         (64 * 1024)  /* largest payload of one packet (Linux's) */
#define VSOCK_LOCAL_PORT_BASE (1U << 30)   /* host ports of host-initiated connections */
#define VSOCK_CONNECT_LINE_MAX 32          /* "CONNECT 4294967295\n" with room to spare */

/* §5.10.6 */
struct virtio_vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
} __attribute__((packed));

#define VSOCK_HDR_LEN 44

#define VSOCK_TYPE_STREAM 1

enum vsock_op {
	VSOCK_OP_INVALID,
	VSOCK_OP_REQUEST,
	VSOCK_OP_RESPONSE,
	VSOCK_OP_RST,
	VSOCK_OP_SHUTDOWN,
	VSOCK_OP_RW,
	VSOCK_OP_CREDIT_UPDATE,
	VSOCK_OP_CREDIT_REQUEST,
};

#define VSOCK_SHUTDOWN_RCV  1
#define VSOCK_SHUTDOWN_SEND 2

#define VSOCK_EVENT_TRANSPORT_RESET 0

struct virtio_vsock;

/*
 * cid: the guest's. listen_fd: the listening socket at uds_path (not owned; -1: none, a
 * device the host cannot connect to). uds_path: PATH (guest connections go to PATH_P).
 * loop NULL: nothing is watched, the owner drives the device with virtio_vsock_poll() (tests,
 * the fuzz target).
 */
int virtio_vsock_create(struct virtio_vsock **out, const struct guest_mem *gm,
			struct ev_loop *loop, uint64_t cid, int listen_fd, const char *uds_path) WUR;
struct virtio_device *virtio_vsock_device(struct virtio_vsock *v);
/* Everything the watches would do, once: accept, read the host sockets, serve the queues. */
void virtio_vsock_poll(struct virtio_vsock *v);
/* Before the ev_loop is destroyed. Closes every connection's host socket. */
void virtio_vsock_destroy(struct virtio_vsock *v);
void virtio_vsock_stats(struct virtio_vsock *v, char *buf, size_t len);
/* The number of open connections (tests). */
unsigned int virtio_vsock_conns(struct virtio_vsock *v);

/* vsock_host.c: the host side's pieces that need no device. */
/* "CONNECT <port>\n" (the newline included in len): 0 and *port, or -EINVAL. */
int vsock_parse_connect(const char *line, size_t len, uint32_t *port) WUR;
/* PATH_P, or -ENAMETOOLONG. */
int vsock_port_path(const char *uds_path, uint32_t port, char *out, size_t outlen) WUR;
/*
 * The guest CID for this host (the network namespace): an abstract unix socket bound to a
 * name of the CID, held open as long as the VM is (and passed on by a live update). -EADDRINUSE
 * when another VM holds it.
 */
int vsock_claim_cid(uint64_t cid, int *fd) WUR;

#endif
