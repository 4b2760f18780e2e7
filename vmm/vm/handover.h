/* SPDX-License-Identifier: Apache-2.0 */
/* The live-update channel: framed messages with fds over a unix socket (handover.c). */
#ifndef VMM_HANDOVER_H
#define VMM_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/compiler.h"

enum ho_type { HO_PREPARE = 1, HO_READY, HO_STATE, HO_RESUMED, HO_FAILED };

#define HO_MAX_FDS     16 /* guest RAM (and its snapshot file), the API socket, the disks */
#define HO_MAX_PAYLOAD (64 * MiB)

struct ho_msg {
	uint32_t type;
	uint8_t *payload;
	size_t len;
	int fds[HO_MAX_FDS];
	unsigned int nfds;
};

int ho_send(int sock, uint32_t type, const void *payload, size_t len, const int *fds,
	    unsigned int nfds) WUR;
/* One message within timeout_ms; its fds are the receiver's (ho_msg_fini closes the rest). */
int ho_recv(int sock, struct ho_msg *msg, int timeout_ms) WUR;
void ho_msg_fini(struct ho_msg *msg);
int ho_send_failed(int sock, const char *why);

/* The RESUMED payload. */
struct ho_resumed {
	int32_t pid;
	uint32_t pad;
	uint64_t resumed_ns; /* CLOCK_MONOTONIC of the resume */
};

#endif
