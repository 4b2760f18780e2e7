/* SPDX-License-Identifier: Apache-2.0 */
/* A machine's state and RAM to files and back (snapshot.c). */
#ifndef VMM_SNAPSHOT_H
#define VMM_SNAPSHOT_H

#include "machine.h"
#include "vmm/state.h"

/* The whole state of a paused machine (config, host, VM, vCPUs, devices), malloc'd. */
int machine_state_save(struct machine *m, uint8_t **blob, size_t *len, char *err,
		       size_t errlen) WUR;
/* Into a machine created from the state's config, vCPUs not started: checks the host first. */
int machine_state_load(struct machine *m, const struct state_reader *r, char *err,
		       size_t errlen) WUR;
/* The files, each written beside its path and renamed into place once synced. */
int snapshot_write_state(const uint8_t *blob, size_t len, const char *path, char *err,
			 size_t errlen) WUR;
int snapshot_write_ram(const struct guest_mem *gm, const char *path, char *err,
		       size_t errlen) WUR;

#endif
