/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Between vmm and its user-mode network helper, vmm-slirp (slirp_helper.c), over one
 * SOCK_SEQPACKET socketpair: vmm's end is what virtio-net reads and writes as it would a tap
 * without offloads, each packet one Ethernet frame after a 12-byte virtio_net_hdr_v1.
 *
 *   helper -> vmm  first packet: "OK", or "ERR " and one line saying why it cannot run
 *   vmm -> helper  a struct slirp_ctl: shorter than a vnet header, so never a guest frame
 *                  (the device sends none shorter than its header)
 *
 * A live update hands vmm's end to the new process, which says HELLO: the helper, with its
 * ports and its guest's connections, goes on serving it. The helper ends on the BYE of the
 * process that said HELLO last, or when no process holds vmm's end any more: it closes its
 * listening ports, then its end of the socket, then writes out for a few seconds what the
 * guest sent and slirp acknowledged but had not yet passed on to the host.
 */
#ifndef VMM_SLIRP_PROTO_H
#define VMM_SLIRP_PROTO_H

#include <stdint.h>

#define SLIRP_CTL_HELLO 1 /* pid: the process that serves the guest from now on */
#define SLIRP_CTL_BYE   2 /* pid: that process is done: the helper ends if it said HELLO last */

struct slirp_ctl {
	uint32_t op;
	uint32_t pid;
};

/* The status packet's size, and a hostfwd rule on the helper's command line:
 * "t,HOSTADDR,HOSTPORT,GUESTADDR,GUESTPORT" (t or u; addresses as 8 hex digits, network
 * byte order read as a host integer; guest 0 for the DHCP address). */
#define SLIRP_STATUS_MAX 256

#endif
