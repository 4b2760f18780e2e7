/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake VM behind struct api_target for the API tests and fuzzer: a real configuration, a
 * lifecycle state with the rules of vmm.h (start only from created, with a valid
 * configuration; pause only when running, resume only when paused; Ctrl-Alt-Del only when
 * running; no configuration change once started), counters, and injectable start errors.
 * Locked, so a test thread may look while the api thread serves.
 */
#ifndef FAKE_API_TARGET_H
#define FAKE_API_TARGET_H

#include <pthread.h>
#include <stdbool.h>

#include "vmm/api.h"

struct fake_vm {
	pthread_mutex_t lock;
	struct vmm_config cfg;
	enum vmm_state state;
	const char *id;
	int start_err;          /* != 0: start fails with it (after the state checks) */
	bool stale_info;        /* info() says created whatever the state (a racing start) */
	unsigned int delay_ms;  /* start takes this long */
	unsigned int starts, pauses, resumes, cads, updates, infos;
	unsigned int snapshots, loads, updates_live;
	char last_binary[256];  /* "" when none was given */
	char last_state_path[256], last_mem_path[256];
	unsigned int last_overrides_nets;
	char last_override_tap[64], last_override_uds[128];
	char last_luo[64];      /* the last PUT /snapshot/luo's session */
	bool last_resume, last_track_dirty;
	enum vmm_snapshot_type last_type;
};

void fake_vm_init(struct fake_vm *f);
void fake_vm_fini(struct fake_vm *f);
void fake_vm_target(struct fake_vm *f, struct api_target *t);
enum vmm_state fake_vm_state(struct fake_vm *f);

#endif
