/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvmm's struct vmm_vm, shared by the lifecycle (vm.c) and the live update (live_update.c),
 * and what the one offers the other. Nothing outside vmm/vm and vmm/api includes it.
 */
#ifndef VMM_VM_INTERNAL_H
#define VMM_VM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "machine.h"
#include "vmm/escape.h"
#include "vmm/event_loop.h"
#include "vmm/state.h"
#include "vmm/vmm.h"

#define CONSOLE_CHUNK   4096
#define FRONT_DATA_MAX  4096

struct vmm_vm {
	pthread_mutex_t op_lock; /* one control operation at a time */
	pthread_mutex_t lock;    /* state, stop request, outcome */
	pthread_cond_t cond;     /* state changes */
	enum vmm_state state;
	struct vmm_config cfg;
	struct vmm_callbacks cb;
	struct log_sink log;

	struct machine *m;
	struct ev_loop *ctl;
	unsigned int stop_watch;

	/* A stop asked of the VM (not by its guest): wins over what the guest does after it. */
	bool stop_requested;
	struct vmm_outcome stop_req;
	struct vmm_outcome outcome;

	/* The timeout: a deadline for the whole run, restarts and live updates included. */
	int timer_fd;
	unsigned int timer_watch;
	uint64_t timeout_left_ms; /* a live update's remainder of it; 0: cfg.timeout_s whole */

	/* Console input (ctl thread only, but for paused, set under lock). */
	unsigned int in_watch;
	int rx_efd; /* the console has room again, or the VM resumed */
	unsigned int rx_watch;
	uint8_t pending[CONSOLE_CHUNK];
	size_t pending_len, pending_off;
	bool in_eof;
	bool in_paused; /* __atomic: set by pause/resume, read by the control thread */
	bool in_held;   /* a live update holds console input (ctl thread) */
	bool m_halted;  /* vm->m is being torn down: no more calls into it (under lock) */
	struct term_escape esc;

	/* The API serving this VM (vmm_api_start), for a live update to hand its socket on
	 * (under lock). */
	struct vmm_api *api;
	/* Diff snapshots (cfg.track_dirty): whether a snapshot (taken, restored from) is there to
	 * build on, and the pages dirtied since that a live update's old process passed on
	 * (gm_dirty_words() words, or NULL). op_lock. */
	bool diff_base;
	uint64_t *dirty_carry;
	/* The front end's bytes for its successor (vmm_vm_set_front_data). */
	uint8_t *front;
	size_t front_len;
	/* A host update by LUO (luo_update.c): the session this paused VM is preserved in, held
	 * open until the kexec (closed, it is undone), or -1. op_lock. */
	int luo_sfd;
	char luo_session[64];
	bool luo_state_done; /* the state too, not only the RAM */
};

/* The tokens of a VM's files in its LUO session. */
#define VMM_LUO_TOKEN_RAM   1
#define VMM_LUO_TOKEN_STATE 2

/*
 * A restore's second half, shared by every source of a state (op_lock held): the machine nc
 * and sr describe becomes the VM's, paused; nc is taken (left empty). what names the source
 * in messages. Then, without op_lock, vm_restore_finish(r): console input, and the resume
 * that flags ask for; returns r or the resume's error.
 */
int vm_restore_locked(struct vmm_vm *vm, struct vmm_config *nc, const struct state_reader *sr,
		      unsigned int flags, const char *what, struct vmm_error *e) WUR;
int vm_restore_finish(struct vmm_vm *vm, int r, unsigned int flags, struct vmm_error *e);
/* The VM runs again here: its LUO session, if any, is closed (op_lock held). */
void vm_luo_drop(struct vmm_vm *vm);

/* The control thread and what it watches for the life of the VM (op_lock held). */
int vm_ctl_setup(struct vmm_vm *vm, char *err, size_t errlen) WUR;
/*
 * Make m (created for vm->cfg) the VM's machine: fill it (the kernel booted, or the state
 * loaded when sr is given), watch its stop requests and start its vCPUs, running or parked
 * when paused (op_lock held). On error m is not the VM's and is the caller's to destroy.
 */
int vm_install_machine(struct vmm_vm *vm, struct machine *m, const struct state_reader *sr,
		       bool paused, char *err, size_t errlen) WUR;
/* The state changes (op_lock held), with their events. */
void vm_set_state(struct vmm_vm *vm, enum vmm_state s);
/* Hold console input (no more reads) or let it go on; runs on the control thread, so never
 * with op_lock held. */
void vm_console_hold(struct vmm_vm *vm, bool hold);
/* Start feeding console input (not with op_lock held once the control thread runs). */
void vm_console_start(struct vmm_vm *vm);
/* The pages dirtied since the last snapshot (the carried ones included), malloc'd (op_lock
 * held, machine paused, cfg.track_dirty). */
int vm_dirty_take(struct vmm_vm *vm, uint64_t **out) WUR;
/* The program's event callback. */
void vm_event(struct vmm_vm *vm, enum vmm_event ev, const struct vmm_outcome *o);

/* vmm/api/api.c: the API's part in a live update (its listening socket). */
int vmm_api_listen_fd(struct vmm_api *api);
const char *vmm_api_path(struct vmm_api *api);
/* The socket file's identity, so that its next owner removes it only if it is still that. */
void vmm_api_file_id(struct vmm_api *api, uint64_t *dev, uint64_t *ino);
/* Stop accepting connections (true) or accept again (false); runs on the api thread, so
 * never with op_lock held (a request there may wait for it). */
void vmm_api_hold(struct vmm_api *api, bool hold);
/* The socket was handed over: leave its file in place at stop. */
void vmm_api_disown(struct vmm_api *api);
/* Serve vm on an adopted listening socket whose file (dev, ino) this process now owns. */
int vmm_api_adopt(struct vmm_vm *vm, const char *path, int listen_fd, uint64_t dev, uint64_t ino,
		  struct vmm_api **out, struct vmm_error *e) WUR;

#endif
