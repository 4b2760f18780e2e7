/* SPDX-License-Identifier: Apache-2.0 */
/* The live-update channel: framed messages with fds over a unix socket (handover.c). */
#ifndef VMM_HANDOVER_H
#define VMM_HANDOVER_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/compiler.h"
#include "vmm/config.h"
#include "vmm/state.h"

enum ho_type { HO_PREPARE = 1, HO_READY, HO_STATE, HO_RESUMED, HO_FAILED, HO_RUNNING, HO_FDS };

/* Per message: guest RAM (and its snapshot file), the API socket, the devices' host files;
 * the state's files (open vsock connections...) go in as many FDS messages as they need. */
#define HO_MAX_FDS     64
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

#define HO_PROTOCOL    2
#define HO_FRONT_MAX   4096 /* the front end's bytes */
#define HO_PENDING_MAX 4096 /* console input not delivered yet */

/*
 * PREPARE, as the new process reads it: the configuration (/config, its fds taken from the
 * message: RAM, the snapshot file behind it, the disk images by id) and /handover's fields.
 * Pointers are into the state reader's buffer (the message's payload).
 */
struct ho_prepare {
	struct vmm_config cfg;      /* config_init'ed by the caller; console fds not set */
	uint64_t timeout_left_ms;   /* 0: none */
	const uint8_t *front;       /* NULL: none */
	size_t front_len;
	bool console_escape;
	const char *api_path;       /* NULL: no API socket */
	uint64_t api_dev, api_ino;
	int api_fd;                 /* -1 by the caller */
};
/* Every field checked; the fds it takes are set to -1 in msg. -EPROTO and err otherwise. */
int ho_parse_prepare(struct ho_msg *msg, struct state_reader *sr, struct ho_prepare *out,
		     char *err, size_t errlen) WUR;

/*
 * STATE's payload: this header, the console input not delivered yet, the pages dirtied since
 * the last snapshot (a bitmap, with dirty-page tracking), then the state blob.
 */
struct ho_state_hdr {
	uint64_t pause_ns;    /* CLOCK_MONOTONIC when the old process began to pause the guest */
	uint32_t resume;      /* 1: the guest was running; 0: it stays paused */
	uint32_t pending_len; /* <= HO_PENDING_MAX */
	uint32_t dirty_len;   /* bytes: 0, or one bit per page of RAM in 64-bit words */
	uint32_t diff_base;   /* 1: a snapshot is there for a Diff to build on */
	uint32_t nr_fds;      /* files sent before it in FDS messages (struct state_fds) */
	uint32_t pad;
};

struct ho_state {
	struct ho_state_hdr h;
	const uint8_t *pending, *dirty, *blob; /* into the message's payload */
	size_t blob_len;
};
/* The parts of a STATE message whose bitmap must be want_dirty bytes long and whose files
 * (nr_fds) must be the got_fds that came before it. */
int ho_parse_state(const struct ho_msg *msg, size_t want_dirty, unsigned int got_fds,
		   struct ho_state *out, char *err, size_t errlen) WUR;
/* The state's files, in FDS messages of up to HO_MAX_FDS each. */
int ho_send_fds(int sock, const int *fds, unsigned int n) WUR;
/*
 * The next message that is not FDS, within timeout_ms; the files of the FDS messages before
 * it are appended to fds (the caller's to close). -EPROTO when more than STATE_MAX_FDS came.
 */
int ho_recv_after_fds(int sock, struct ho_msg *msg, struct state_fds *fds, int timeout_ms) WUR;

/* The RESUMED payload (the commit, just before the resume) and RUNNING's (just after). */
struct ho_resumed {
	int32_t pid;
	uint32_t pad;
	uint64_t resumed_ns; /* CLOCK_MONOTONIC of the resume */
};

#endif
