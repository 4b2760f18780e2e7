/* SPDX-License-Identifier: Apache-2.0 */
/* A machine's state and RAM to files and back (snapshot.c). */
#ifndef VMM_SNAPSHOT_H
#define VMM_SNAPSHOT_H

#include "machine.h"
#include "vmm/state.h"

/*
 * The whole state of a paused machine (config, host, VM, vCPUs, devices), malloc'd. fds: where
 * devices put the host files that go with the state (a live update), or NULL (a snapshot).
 */
int machine_state_save(struct machine *m, struct state_fds *fds, uint8_t **blob, size_t *len,
		       char *err, size_t errlen) WUR;
/* Into a machine created from the state's config, vCPUs not started: checks the host first. */
int machine_state_load(struct machine *m, const struct state_reader *r, char *err,
		       size_t errlen) WUR;
/* The files, each written beside its path and renamed into place once synced. */
int snapshot_write_state(const uint8_t *blob, size_t len, const char *path, char *err,
			 size_t errlen) WUR;
int snapshot_write_ram(const struct guest_mem *gm, const char *path, char *err,
		       size_t errlen) WUR;
/*
 * A diff: the pages set in dirty (one bit per page). Over path when it is a file of the RAM's
 * size (the memory file of the snapshot this one follows, which then is this one's: written
 * in place and synced); else a new sparse file with those pages only (written beside and
 * renamed, as a full one).
 */
int snapshot_write_ram_diff(const struct guest_mem *gm, const uint64_t *dirty, const char *path,
			    char *err, size_t errlen) WUR;

#endif
