// SPDX-License-Identifier: Apache-2.0
/* The fake VM of fake_api_target.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_api_target.h"

void fake_vm_init(struct fake_vm *f)
{
	*f = (struct fake_vm){ .state = VMM_STATE_CREATED, .id = "fake-vm" };
	pthread_mutex_init(&f->lock, NULL);
	config_init(&f->cfg);
}

void fake_vm_fini(struct fake_vm *f)
{
	config_fini(&f->cfg);
	pthread_mutex_destroy(&f->lock);
}

enum vmm_state fake_vm_state(struct fake_vm *f)
{
	enum vmm_state s;

	pthread_mutex_lock(&f->lock);
	s = f->state;
	pthread_mutex_unlock(&f->lock);
	return s;
}

static void info(void *opaque, struct api_info *out)
{
	struct fake_vm *f = opaque;

	pthread_mutex_lock(&f->lock);
	out->id = f->id;
	out->state = f->stale_info ? VMM_STATE_CREATED : f->state;
	f->infos++;
	pthread_mutex_unlock(&f->lock);
}

static int update_config(void *opaque, int (*fn)(struct vmm_config *c, void *arg,
						 struct vmm_error *e),
			 void *arg, struct vmm_error *e)
{
	struct fake_vm *f = opaque;
	int r;

	pthread_mutex_lock(&f->lock);
	if (f->state != VMM_STATE_CREATED) {
		r = config_fail(e, -EBUSY, "The requested operation is not supported after "
				"starting the microVM.");
	} else {
		r = fn(&f->cfg, arg, e);
		if (r == 0)
			f->updates++;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static struct vmm_config *get_config(void *opaque)
{
	struct fake_vm *f = opaque;
	struct vmm_config *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	pthread_mutex_lock(&f->lock);
	if (config_copy(c, &f->cfg) < 0) {
		free(c);
		c = NULL;
	}
	pthread_mutex_unlock(&f->lock);
	return c;
}

static int start(void *opaque, struct vmm_error *e)
{
	struct fake_vm *f = opaque;
	int r = 0;

	unsigned int delay;

	pthread_mutex_lock(&f->lock);
	delay = f->delay_ms;
	pthread_mutex_unlock(&f->lock);
	if (delay) {
		struct timespec ts = { delay / 1000, (delay % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&f->lock);
	if (f->state != VMM_STATE_CREATED)
		r = config_fail(e, -EBUSY, "the VM was already started");
	else if ((r = config_validate(&f->cfg, e)) < 0)
		;
	else if (f->start_err)
		r = config_fail(e, f->start_err, "fake start failure %d", f->start_err);
	else
		f->state = VMM_STATE_RUNNING;
	if (r == 0)
		f->starts++;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int pause_vm(void *opaque, struct vmm_error *e)
{
	struct fake_vm *f = opaque;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (f->state != VMM_STATE_RUNNING)
		r = config_fail(e, -EINVAL, "cannot pause a VM that is %s",
				vmm_state_name(f->state));
	else
		f->state = VMM_STATE_PAUSED, f->pauses++;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int resume_vm(void *opaque, struct vmm_error *e)
{
	struct fake_vm *f = opaque;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (f->state != VMM_STATE_PAUSED)
		r = config_fail(e, -EINVAL, "cannot resume a VM that is %s",
				vmm_state_name(f->state));
	else
		f->state = VMM_STATE_RUNNING, f->resumes++;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int ctrl_alt_del(void *opaque, struct vmm_error *e)
{
	struct fake_vm *f = opaque;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (f->state != VMM_STATE_RUNNING)
		r = config_fail(e, -EINVAL, "Ctrl-Alt-Del needs a running VM, not %s",
				vmm_state_name(f->state));
	else
		f->cads++;
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int snapshot_create(void *opaque, const char *state_path, const char *mem_path,
			   enum vmm_snapshot_type type, struct vmm_error *e)
{
	struct fake_vm *f = opaque;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (f->state != VMM_STATE_PAUSED) {
		r = config_fail(e, -EINVAL, "pause it first");
	} else {
		f->snapshots++;
		f->last_type = type;
		snprintf(f->last_state_path, sizeof(f->last_state_path), "%s", state_path);
		snprintf(f->last_mem_path, sizeof(f->last_mem_path), "%s", mem_path);
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int snapshot_load(void *opaque, const char *state_path, const char *mem_path,
			 unsigned int flags, const struct vmm_restore_overrides *ov,
			 struct vmm_error *e)
{
	struct fake_vm *f = opaque;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (f->state != VMM_STATE_CREATED) {
		r = config_fail(e, -EINVAL, "a snapshot loads only into a VM not started yet");
	} else {
		f->loads++;
		f->last_resume = flags & VMM_RESTORE_RESUME;
		f->last_track_dirty = flags & VMM_RESTORE_TRACK_DIRTY;
		snprintf(f->last_state_path, sizeof(f->last_state_path), "%s", state_path);
		snprintf(f->last_mem_path, sizeof(f->last_mem_path), "%s", mem_path);
		f->last_overrides_nets = ov ? ov->nr_nets : 0;
		snprintf(f->last_override_tap, sizeof(f->last_override_tap), "%s",
			 ov && ov->nr_nets ? ov->nets[0].tap : "");
		snprintf(f->last_override_uds, sizeof(f->last_override_uds), "%s",
			 ov && ov->vsock_uds ? ov->vsock_uds : "");
		f->state = (flags & VMM_RESTORE_RESUME) ? VMM_STATE_RUNNING : VMM_STATE_PAUSED;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int snapshot_luo(void *opaque, const char *session, struct vmm_error *e)
{
	struct fake_vm *f = opaque;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (!strcmp(session, "taken"))
		r = config_fail(e, -EEXIST, "LUO preserve: LUO session 'taken' exists already");
	else
		snprintf(f->last_luo, sizeof(f->last_luo), "%s", session);
	pthread_mutex_unlock(&f->lock);
	return r;
}

static int live_update(void *opaque, const char *binary, struct vmm_live_update *out,
		       struct vmm_error *e)
{
	struct fake_vm *f = opaque;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (binary && !strcmp(binary, "/bin/true")) {
		r = config_fail(e, -ENOEXEC, "live update: /bin/true stopped before it was ready");
	} else {
		f->updates_live++;
		snprintf(f->last_binary, sizeof(f->last_binary), "%s", binary ? binary : "");
		out->pid = 4242;
		out->blackout_us = 1234;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static const struct api_target_ops fake_ops = {
	.info = info,
	.update_config = update_config,
	.get_config = get_config,
	.start = start,
	.pause = pause_vm,
	.resume = resume_vm,
	.ctrl_alt_del = ctrl_alt_del,
	.snapshot_create = snapshot_create,
	.snapshot_load = snapshot_load,
	.snapshot_luo = snapshot_luo,
	.live_update = live_update,
};

void fake_vm_target(struct fake_vm *f, struct api_target *t)
{
	t->ops = &fake_ops;
	t->opaque = f;
}
