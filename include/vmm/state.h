/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VM state blob (vmm/state/state.c): what a snapshot or a live update carries besides guest
 * RAM. A flattened device tree (libfdt), as the kernel's KHO does, behind a fixed header:
 *
 *   offset 0   "VMMSTATE"               magic
 *          8   le32 format version      STATE_FORMAT_VERSION; a newer one is refused
 *         12   le32 header length       32
 *         16   le64 blob length         the FDT's totalsize
 *         24   le32 CRC-32 of the blob  (zlib's crc32)
 *         28   le32 reserved, 0
 *         32   the FDT
 *
 * Tree: / (compatible "vmm-state-v1", vmm-version), /host (what the state is bound to: CPUID,
 * kernel), /config (what rebuilds the machine), /vm (KVM VM state: clock, irqchips, PIT),
 * /vcpus/cpu@N (one per vCPU, properties named after their KVM ioctl), /devices/<id> (each
 * device's own, compatible "vmm,<kind>-vN").
 *
 * Compatibility: within a format version properties are only ever added; readers skip what they
 * do not know and refuse what they need and do not find, naming it. Everything read from a
 * state is untrusted: the blob is checked whole (fdt_check_full) before any node is looked at,
 * and every property is read with its exact expected length.
 */
#ifndef VMM_STATE_H
#define VMM_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/compiler.h"

#define STATE_MAGIC          "VMMSTATE"
#define STATE_FORMAT_VERSION 1
#define STATE_HEADER_LEN     32
#define STATE_COMPATIBLE     "vmm-state-v1"
#define STATE_MAX_LEN        (64 * MiB)

/*
 * Open files that go with a state: a live update passes them to the new process beside its
 * STATE message (SCM_RIGHTS); a snapshot file cannot hold them. Properties name them by index.
 */
#define STATE_MAX_FDS 1100
struct state_fds {
	int fd[STATE_MAX_FDS]; /* the writer's: not owned; the reader's: owned until taken (-1) */
	unsigned int nr;
};

struct state_writer {
	void *fdt;
	size_t cap;
	int err;               /* the first error; every later call does nothing */
	struct state_fds *fds; /* NULL: a snapshot (set by the caller after init) */
};

int state_writer_init(struct state_writer *w) WUR;
void state_writer_fini(struct state_writer *w);
/* A child node of parent (0: the root); its offset, or < 0 (and w->err set). */
int state_node(struct state_writer *w, int parent, const char *name);
void state_put(struct state_writer *w, int node, const char *prop, const void *data, size_t len);
void state_put_u32(struct state_writer *w, int node, const char *prop, uint32_t v);
void state_put_u64(struct state_writer *w, int node, const char *prop, uint64_t v);
void state_put_str(struct state_writer *w, int node, const char *prop, const char *s);
/* Header + blob, malloc'd, in *out; w is finished either way. 0 or the first error. */
int state_finish(struct state_writer *w, uint8_t **out, size_t *len) WUR;

struct state_reader {
	const void *fdt;
	size_t len;
	uint32_t version;
	struct state_fds *fds; /* what came with it (a live update), or NULL (set by the caller) */
};

/*
 * Check a whole state (header, length, CRC, version, the FDT's structure, the root's
 * compatible) and point r into buf (which must outlive r). -EINVAL/-EPROTO with one line in err
 * naming what is wrong: "truncated", "CRC mismatch", "format version 2 is newer than...".
 */
int state_open(struct state_reader *r, const uint8_t *buf, size_t len, char *err,
	       size_t errlen) WUR;
/* A node by path ("/vcpus/cpu@0"), or < 0. */
int state_find(const struct state_reader *r, const char *path);
/* The first child of node, and the next sibling; < 0 when there is none. */
int state_first_child(const struct state_reader *r, int node);
int state_next_sibling(const struct state_reader *r, int node);
const char *state_node_name(const struct state_reader *r, int node);
/* The property's bytes and length, or NULL. */
const void *state_get_ptr(const struct state_reader *r, int node, const char *prop, size_t *len);
/* Exactly len bytes: -ENOENT if absent, -EINVAL if of another length. */
int state_get(const struct state_reader *r, int node, const char *prop, void *out,
	      size_t len) WUR;
int state_get_u32(const struct state_reader *r, int node, const char *prop, uint32_t *v) WUR;
int state_get_u64(const struct state_reader *r, int node, const char *prop, uint64_t *v) WUR;
/* A NUL-terminated string property of at most max bytes (NUL included), or NULL. */
const char *state_get_str(const struct state_reader *r, int node, const char *prop, size_t max);

/* What a device's save() and load() get (include/vmm/device.h): its own node. */
struct dev_state_writer {
	struct state_writer *w;
	int node;
};

struct dev_state_reader {
	const struct state_reader *r;
	int node;
};

void dev_state_put(struct dev_state_writer *w, const char *prop, const void *data, size_t len);
int dev_state_get(const struct dev_state_reader *r, const char *prop, void *out,
		  size_t len) WUR;
/* A property of any length (checked by the caller), or NULL. */
const void *dev_state_get_ptr(const struct dev_state_reader *r, const char *prop, size_t *len);
/* The save fails with err (a negative errno), whatever else it writes. */
void dev_state_fail(struct dev_state_writer *w, int err);
/* Whether open files can go with this state (a live update, not a snapshot file). */
bool dev_state_keeps_fds(const struct dev_state_writer *w);
/* Pass fd on (it must stay open until the state is sent): its index, or -EOPNOTSUPP (a
 * snapshot), -ENOSPC (STATE_MAX_FDS reached). */
int dev_state_add_fd(struct dev_state_writer *w, int fd);
/* Whether files came with the state. */
bool dev_state_has_fds(const struct dev_state_reader *r);
/* The file at idx, now the caller's; -EBADF if there is none there (or it was taken). */
int dev_state_take_fd(const struct dev_state_reader *r, uint32_t idx);

#endif
