// SPDX-License-Identifier: Apache-2.0
/*
 * A VM and its lifecycle (libvmm's struct vmm_vm): the one place where its state changes.
 *
 *   created --start--> running <--pause/resume--> paused
 *      |                  \                          /
 *      +---------- stop request / the guest stops --+--> stopped
 *
 * A machine (machine.c) is the KVM instance behind a running or paused VM; with on_reboot
 * restart a guest reboot replaces it by a new one and the VM stays running. Each VM has a
 * control thread ("ctl", an ev_loop) that reacts to the machine's stop requests, feeds the
 * console's input and fires the timeout. Control operations (start, pause, resume, the
 * teardown after a stop, a restart) are serialised by op_lock; state and the stop request are
 * under lock, which is never held across anything slow.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "snapshot.h"
#include "vm_internal.h"
#include "vmm/file.h"
#include "vmm/state_config.h"
#include "vmm/api.h"
#include "vmm/escape.h"

/* ---- logging and events ---- */

static void vm_log_line(void *opaque, enum vmm_log_level level, const char *line)
{
	struct vmm_vm *vm = opaque;

	if (vm->cb.log)
		vm->cb.log(vm->cb.opaque, level, line);
	else
		fprintf(stderr, "vmm: %s\n", line);
}

void vm_event(struct vmm_vm *vm, enum vmm_event ev, const struct vmm_outcome *o)
{
	if (vm->cb.event)
		vm->cb.event(vm->cb.opaque, vm, ev, o);
}

int vmm_outcome_status(const struct vmm_outcome *o)
{
	switch (o->reason) {
	case VMM_STOP_POWEROFF:
	case VMM_STOP_REBOOT:
	case VMM_STOP_REQUEST:
	case VMM_STOP_UPDATED:
		return VMM_EXIT_OK;
	case VMM_STOP_DEBUG_EXIT:
		/* QEMU isa-debug-exit: the guest writes v, the process exits (v << 1) | 1. */
		return ((o->code << 1) | 1) & 0xff;
	case VMM_STOP_PANIC:
		return VMM_EXIT_PANIC;
	case VMM_STOP_TRIPLE_FAULT:
		return VMM_EXIT_TRIPLE;
	case VMM_STOP_TIMEOUT:
		return VMM_EXIT_TIMEOUT;
	case VMM_STOP_SIGNAL:
		return 128 + o->code;
	case VMM_STOP_ERROR:
		return VMM_EXIT_ERROR;
	case VMM_STOP_FATAL:
	case VMM_STOP_NONE:
	default:
		return VMM_EXIT_FATAL;
	}
}

/* ---- console input (ctl thread) ---- */

static void on_console_in(void *opaque);

static void console_watch_set(struct vmm_vm *vm, bool on)
{
	if (on && !vm->in_watch && !vm->in_eof && !vm->in_held && vm->cfg.console_in >= 0) {
		vm->in_watch = ev_loop_add_fd(vm->ctl, vm->cfg.console_in, on_console_in, vm);
	} else if (!on && vm->in_watch) {
		ev_loop_remove_fd(vm->ctl, vm->in_watch);
		vm->in_watch = 0;
	}
}

/* Push what is pending into the console; stop reading input while the guest does not keep up. */
static void console_feed(struct vmm_vm *vm)
{
	while (vm->m && !vm->in_held && !__atomic_load_n(&vm->in_paused, __ATOMIC_ACQUIRE) &&
	       vm->pending_off < vm->pending_len) {
		size_t n = machine_console_receive(vm->m, vm->pending + vm->pending_off,
						   vm->pending_len - vm->pending_off);
		if (n == 0)
			break;
		vm->pending_off += n;
	}
	if (vm->pending_off == vm->pending_len) {
		vm->pending_off = vm->pending_len = 0;
		console_watch_set(vm, true);
	} else if (!vm->esc.enabled) {
		/* A pipe: stop reading until the guest makes room; nothing is lost. */
		console_watch_set(vm, false);
	}
	/* A terminal is still read while the guest does not keep up, so that Ctrl-A x works
	 * whatever the guest does; keys typed into a full UART are dropped, as on hardware. */
}

static void on_console_in(void *opaque)
{
	struct vmm_vm *vm = opaque;
	uint8_t buf[CONSOLE_CHUNK];

	/* One byte short: a Ctrl-A held over from the last read may expand to two bytes. */
	ssize_t n = read(vm->cfg.console_in, buf, sizeof(buf) - 1);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF on a pipe: the guest keeps running, it just gets no more input. */
		vm->in_eof = true;
		console_watch_set(vm, false);
		return;
	}
	if (vm->pending_len) {
		/* Only a terminal gets here (a pipe is not read while input is pending). */
		uint8_t scratch[CONSOLE_CHUNK];
		term_escape_filter(&vm->esc, buf, (size_t)n, scratch, sizeof(scratch));
	} else {
		vm->pending_len = term_escape_filter(&vm->esc, buf, (size_t)n, vm->pending,
						     sizeof(vm->pending));
		vm->pending_off = 0;
	}
	if (vm->esc.quit) {
		vmm_vm_stop_with(vm, VMM_STOP_SIGNAL, SIGINT, "console escape: Ctrl-A x");
		vm->esc.quit = false;
		return;
	}
	console_feed(vm);
}

/* From any thread (a vCPU, the I/O thread, a resume): the console may take input again. */
static void on_rx_ready(void *opaque)
{
	struct vmm_vm *vm = opaque;
	uint64_t one = 1;

	if (write(vm->rx_efd, &one, sizeof(one)) < 0) {
		/* already signalled */
	}
}

static void console_hold_on(void *opaque)
{
	struct vmm_vm *vm = opaque;

	vm->in_held = true;
	console_watch_set(vm, false);
}

static void console_hold_off(void *opaque)
{
	struct vmm_vm *vm = opaque;

	vm->in_held = false;
	console_feed(vm);
}

void vm_console_start(struct vmm_vm *vm)
{
	if (vm->cfg.console_in >= 0)
		ev_loop_call_sync(vm->ctl, (void (*)(void *))console_feed, vm);
}

void vm_console_hold(struct vmm_vm *vm, bool hold)
{
	if (vm->ctl)
		ev_loop_call_sync(vm->ctl, hold ? console_hold_on : console_hold_off, vm);
}

static void on_rx_efd(void *opaque)
{
	struct vmm_vm *vm = opaque;
	uint64_t v;

	if (read(vm->rx_efd, &v, sizeof(v)) < 0) {
		/* spurious */
	}
	if (vm->pending_len)
		console_feed(vm);
}


/* ---- the timeout ---- */

static void on_timeout(void *opaque)
{
	struct vmm_vm *vm = opaque;
	char msg[96];
	uint64_t v;

	if (read(vm->timer_fd, &v, sizeof(v)) < 0)
		return;
	snprintf(msg, sizeof(msg), "timeout: guest still running after %u s, stopped it",
		 vm->cfg.timeout_s);
	vmm_vm_stop_with(vm, VMM_STOP_TIMEOUT, 0, msg);
}

static int timeout_arm(struct vmm_vm *vm, char *err, size_t errlen)
{
	struct itimerspec its = { 0 };

	if (!vm->cfg.timeout_s)
		return 0;
	vm->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (vm->timer_fd < 0) {
		snprintf(err, errlen, "timeout: timerfd: %s", strerror(errno));
		return -errno;
	}
	/* Armed once, when the VM starts: restarts do not move the deadline; a live update
	 * carries what is left of it. */
	if (vm->timeout_left_ms) {
		its.it_value.tv_sec = (time_t)(vm->timeout_left_ms / 1000);
		its.it_value.tv_nsec = (long)(vm->timeout_left_ms % 1000) * 1000000;
	} else {
		its.it_value.tv_sec = vm->cfg.timeout_s;
	}
	if (timerfd_settime(vm->timer_fd, 0, &its, NULL) < 0) {
		snprintf(err, errlen, "timeout: %s", strerror(errno));
		return -errno;
	}
	vm->timer_watch = ev_loop_add_fd(vm->ctl, vm->timer_fd, on_timeout, vm);
	return vm->timer_watch ? 0 : -ENOMEM;
}

/* ---- machines ---- */

static void on_machine_stop(void *opaque);

int vm_install_machine(struct vmm_vm *vm, struct machine *m, const struct state_reader *sr,
		       bool paused, char *err, size_t errlen)
{
	int r;

	if ((r = sr ? machine_state_load(m, sr, err, errlen) : machine_load_kernel(m, err, errlen)) <
	    0)
		return r;
	vm->stop_watch = ev_loop_add_fd(vm->ctl, m->stop_efd, on_machine_stop, vm);
	if (!vm->stop_watch) {
		snprintf(err, errlen, "cannot watch the VM's stop requests");
		return -ENOMEM;
	}
	machine_console_set_rx_ready(m, on_rx_ready, vm);
	pthread_mutex_lock(&vm->lock);
	vm->m = m;
	vm->m_halted = false;
	/* A stop asked for meanwhile (a signal during a restart) reaches this machine too. */
	if (vm->stop_requested)
		machine_request_stop(m, vm->stop_req.reason, vm->stop_req.code, vm->stop_req.msg);
	pthread_mutex_unlock(&vm->lock);
	/*
	 * A live update's machine was started, parked and quiesced before the blackout, and its
	 * state loaded since: quiesced again, so that the devices see what a restore gives them
	 * (state loaded, then quiesced; resume looks at every queue).
	 */
	if (m->started) {
		if ((r = devtable_quiesce(&m->devs)) < 0) {
			snprintf(err, errlen, "cannot quiesce the devices: %s", strerror(-r));
			return r;
		}
		return 0;
	}
	if ((r = paused ? machine_start_paused(m) : machine_start(m)) < 0) {
		snprintf(err, errlen, "cannot start a vCPU thread: %s", strerror(-r));
		machine_request_stop(m, VMM_STOP_ERROR, 0, err);
		return 0; /* the stop handler tears it down */
	}
	return 0;
}

/*
 * Build a machine for vm->cfg, fill it (its kernel booted, or a state loaded when sr is given)
 * and start it (running, or with every vCPU parked when paused) (op_lock held).
 */
static int vm_boot_machine_from(struct vmm_vm *vm, const struct state_reader *sr, bool paused,
				char *err, size_t errlen)
{
	struct machine *m;
	int r;

	if ((r = machine_create(&vm->cfg, &vm->log, sr ? MACHINE_NO_KERNEL : 0, &m, err,
				errlen)) < 0)
		return r;
	if ((r = vm_install_machine(vm, m, sr, paused, err, errlen)) < 0)
		machine_destroy(m);
	return r;
}

static int vm_boot_machine(struct vmm_vm *vm, char *err, size_t errlen)
{
	return vm_boot_machine_from(vm, NULL, false, err, errlen);
}

/*
 * Stop the machine's vCPUs and close its devices after its stop (op_lock held); *out: why it
 * stopped. The disk images are closed (their locks gone) as soon as the VM stops; the KVM VM
 * and RAM go with vmm_vm_destroy(), a restart, or the process.
 */
static void vm_halt_machine(struct vmm_vm *vm, struct vmm_outcome *out)
{
	struct machine *m = vm->m;

	pthread_mutex_lock(&vm->lock);
	vm->m_halted = true;
	pthread_mutex_unlock(&vm->lock);
	machine_halt(m, out);
	machine_console_set_rx_ready(m, NULL, NULL);
	ev_loop_remove_fd(vm->ctl, vm->stop_watch);
	vm->stop_watch = 0;
	machine_release_devices(m);
}

static void vm_enter_stopped(struct vmm_vm *vm, const struct vmm_outcome *o)
{
	console_watch_set(vm, false);
	pthread_mutex_lock(&vm->lock);
	vm->outcome = *o;
	vm->state = VMM_STATE_STOPPED;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	if (o->reason == VMM_STOP_PANIC)
		vm_event(vm, VMM_EVENT_PANICKED, o);
	vm_event(vm, VMM_EVENT_STOPPED, o);
}

/* ctl thread: the machine asked to stop (its guest, a device, a stop request). */
static void on_machine_stop(void *opaque)
{
	struct vmm_vm *vm = opaque;
	struct vmm_outcome o;
	uint64_t v;
	char err[VMM_ERROR_LEN];

	pthread_mutex_lock(&vm->op_lock);
	if (!vm->m || read(vm->m->stop_efd, &v, sizeof(v)) < 0) {
		pthread_mutex_unlock(&vm->op_lock);
		return;
	}
	for (;;) {
		pthread_mutex_lock(&vm->lock);
		bool restart = vm->cfg.on_reboot == VMM_ON_REBOOT_RESTART && !vm->stop_requested;
		pthread_mutex_unlock(&vm->lock);
		/* A reboot to restart needs the whole machine gone (images closed, relocked). */
		vm_halt_machine(vm, &o);
		pthread_mutex_lock(&vm->lock);
		if (vm->stop_requested)
			o = vm->stop_req; /* what the VM was asked wins over what the guest did */
		restart = restart && o.reason == VMM_STOP_REBOOT;
		pthread_mutex_unlock(&vm->lock);
		if (!restart)
			break;
		struct machine *old = vm->m;
		pthread_mutex_lock(&vm->lock);
		vm->m = NULL;
		pthread_mutex_unlock(&vm->lock);
		machine_destroy(old);
		if (vm_boot_machine(vm, err, sizeof(err)) < 0) {
			o = (struct vmm_outcome){ .reason = VMM_STOP_ERROR };
			if (snprintf(o.msg, sizeof(o.msg), "restart: %s", err) >= (int)sizeof(o.msg))
				o.msg[sizeof(o.msg) - 2] = '.';
			vm_enter_stopped(vm, &o);
			pthread_mutex_unlock(&vm->op_lock);
			return;
		}
		vm_event(vm, VMM_EVENT_RESTARTED, NULL);
		on_rx_ready(vm);
		pthread_mutex_unlock(&vm->op_lock);
		return;
	}
	vm_enter_stopped(vm, &o);
	pthread_mutex_unlock(&vm->op_lock);
}

/* ---- the public API ---- */

int vmm_vm_create(const struct vmm_config *c, const struct vmm_callbacks *cb, struct vmm_vm **out,
		  struct vmm_error *e)
{
	struct vmm_vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return config_fail(e, -ENOMEM, "out of memory");
	if (config_copy(&vm->cfg, c) < 0) {
		free(vm);
		return config_fail(e, -ENOMEM, "out of memory");
	}
	if (cb)
		vm->cb = *cb;
	vm->log = (struct log_sink){ vm_log_line, vm };
	vm->state = VMM_STATE_CREATED;
	vm->timer_fd = -1;
	vm->rx_efd = -1;
	vm->luo_sfd = -1;
	pthread_mutex_init(&vm->op_lock, NULL);
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	*out = vm;
	return 0;
}

int vm_ctl_setup(struct vmm_vm *vm, char *err, size_t errlen)
{
	int r;

	if ((r = ev_loop_create(&vm->ctl, THREAD_CTL)) < 0) {
		snprintf(err, errlen, "control thread: %s", strerror(-r));
		return r;
	}
	vm->rx_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->rx_efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		return -errno;
	}
	vm->rx_watch = ev_loop_add_fd(vm->ctl, vm->rx_efd, on_rx_efd, vm);
	if (!vm->rx_watch) {
		snprintf(err, errlen, "control thread: out of memory");
		return -ENOMEM;
	}
	term_escape_init(&vm->esc, vm->cfg.console_escape);
	return timeout_arm(vm, err, errlen);
}

int vmm_vm_start(struct vmm_vm *vm, struct vmm_error *e)
{
	const struct log_sink *prev = log_bind(&vm->log);
	char err[VMM_ERROR_LEN] = "";
	int r;

	pthread_mutex_lock(&vm->op_lock);
	if (vm->state != VMM_STATE_CREATED) {
		r = config_fail(e, -EINVAL, "the VM was already started (it is %s)",
			    vmm_state_name(vm->state));
		goto out;
	}
	if ((r = config_validate(&vm->cfg, e)) < 0)
		goto out;
	if (!vm->ctl && (r = vm_ctl_setup(vm, err, sizeof(err))) < 0)
		goto fail;
	if ((r = vm_boot_machine(vm, err, sizeof(err))) < 0)
		goto fail;
	vm_set_state(vm, VMM_STATE_RUNNING);
	/* Console input from now on; the control thread last, once everything is in place. */
	vm_console_start(vm);
	if ((r = ev_loop_start(vm->ctl)) < 0) {
		snprintf(err, sizeof(err), "control thread: %s", strerror(-r));
		machine_request_stop(vm->m, VMM_STOP_ERROR, 0, err);
		/* No thread to tear it down: do it here. */
		struct vmm_outcome o;
		vm_halt_machine(vm, &o);
		vm_enter_stopped(vm, &o);
		goto fail;
	}
	vm_event(vm, VMM_EVENT_STARTED, NULL);
	r = 0;
	goto out;
fail:
	config_fail(e, r, "%s", err);
out:
	pthread_mutex_unlock(&vm->op_lock);
	log_bind(prev);
	return r;
}

int vmm_vm_pause(struct vmm_vm *vm, struct vmm_error *e)
{
	const struct log_sink *prev = log_bind(&vm->log);
	int r = 0;

	pthread_mutex_lock(&vm->op_lock);
	switch (vm->state) {
	case VMM_STATE_PAUSED:
		break; /* already: as Firecracker, not an error */
	case VMM_STATE_RUNNING:
		if ((r = machine_pause(vm->m)) < 0) {
			r = config_fail(e, r == -ESHUTDOWN ? -EINVAL : r, "cannot pause: %s",
				    r == -ESHUTDOWN ? "the VM is stopping" : strerror(-r));
			break;
		}
		/* Not through the control thread: it may be waiting for op_lock. */
		__atomic_store_n(&vm->in_paused, true, __ATOMIC_RELEASE);
		vm_set_state(vm, VMM_STATE_PAUSED);
		vm_event(vm, VMM_EVENT_PAUSED, NULL);
		break;
	default:
		r = config_fail(e, -EINVAL, "cannot pause a VM that is %s",
			    vm->state == VMM_STATE_CREATED ? "not started" : "stopped");
	}
	pthread_mutex_unlock(&vm->op_lock);
	log_bind(prev);
	return r;
}

int vmm_vm_resume(struct vmm_vm *vm, struct vmm_error *e)
{
	const struct log_sink *prev = log_bind(&vm->log);
	int r = 0;

	pthread_mutex_lock(&vm->op_lock);
	switch (vm->state) {
	case VMM_STATE_RUNNING:
		break;
	case VMM_STATE_PAUSED:
		vm_luo_drop(vm); /* its preserved state would be stale */
		machine_resume(vm->m);
		vm_set_state(vm, VMM_STATE_RUNNING);
		__atomic_store_n(&vm->in_paused, false, __ATOMIC_RELEASE);
		on_rx_ready(vm); /* input held back while paused goes in now */
		vm_event(vm, VMM_EVENT_RESUMED, NULL);
		break;
	default:
		r = config_fail(e, -EINVAL, "cannot resume a VM that is %s",
			    vm->state == VMM_STATE_CREATED ? "not started" : "stopped");
	}
	pthread_mutex_unlock(&vm->op_lock);
	log_bind(prev);
	return r;
}

int vmm_vm_snapshot(struct vmm_vm *vm, const char *state_path, const char *mem_path,
		    enum vmm_snapshot_type type, struct vmm_error *e)
{
	const struct log_sink *prev = log_bind(&vm->log);
	char err[VMM_ERROR_LEN] = "";
	uint8_t *blob = NULL;
	uint64_t *dirty = NULL;
	size_t len;
	int r;

	pthread_mutex_lock(&vm->op_lock);
	if (vm->state != VMM_STATE_PAUSED) {
		r = config_fail(e, -EINVAL, "cannot snapshot a VM that is %s: pause it first",
				vm->state == VMM_STATE_CREATED ? "not started"
							       : vmm_state_name(vm->state));
		goto out;
	}
	if (type == VMM_SNAPSHOT_DIFF && !vm->cfg.track_dirty) {
		r = config_fail(e, -EINVAL, "snapshot type Diff: dirty pages are not tracked "
				"(machine-config track_dirty_pages, before the VM starts)");
		goto out;
	}
	if (type == VMM_SNAPSHOT_DIFF && !vm->diff_base) {
		r = config_fail(e, -EINVAL, "snapshot type Diff: there is no snapshot to build on "
				"yet (take a Full one first)");
		goto out;
	}
	/* What the guest and the devices wrote since the last snapshot: a Diff's pages, and
	 * after a Full one, nothing any more. */
	if (vm->cfg.track_dirty && (r = vm_dirty_take(vm, &dirty)) < 0) {
		config_fail(e, r, "snapshot: dirty pages: %s", strerror(-r));
		goto out;
	}
	/* RAM first: a state file names a complete snapshot only once both are in place. */
	if ((r = machine_state_save(vm->m, NULL, &blob, &len, err, sizeof(err))) < 0 ||
	    (r = type == VMM_SNAPSHOT_DIFF
			 ? snapshot_write_ram_diff(&vm->m->gm, dirty, mem_path, err, sizeof(err))
			 : snapshot_write_ram(&vm->m->gm, mem_path, err, sizeof(err))) < 0 ||
	    (r = snapshot_write_state(blob, len, state_path, err, sizeof(err))) < 0) {
		/* Not taken: those pages are still to go into the next diff. */
		vm->dirty_carry = dirty;
		dirty = NULL;
		config_fail(e, r, "snapshot: %s", err);
		goto out;
	}
	vm->diff_base = true;
	r = 0;
out:
	free(dirty);
	free(blob);
	pthread_mutex_unlock(&vm->op_lock);
	log_bind(prev);
	return r;
}

int vm_dirty_take(struct vmm_vm *vm, uint64_t **out)
{
	size_t words = gm_dirty_words(&vm->m->gm);
	uint64_t *d = vm->dirty_carry ? vm->dirty_carry : calloc(words, sizeof(uint64_t));
	int r;

	if (!d)
		return -ENOMEM;
	vm->dirty_carry = NULL;
	if ((r = machine_dirty_take(vm->m, d)) < 0) {
		vm->dirty_carry = d;
		return r;
	}
	*out = d;
	return 0;
}

/* A state file, checked whole; *buf to be freed. */
static int read_state(const char *path, uint8_t **buf, size_t *len, struct state_reader *sr,
		      struct vmm_error *e)
{
	char err[VMM_ERROR_LEN];
	int r = file_read_all("snapshot", path, STATE_MAX_LEN + STATE_HEADER_LEN, buf, len, err,
			      sizeof(err));

	if (r < 0)
		return config_fail(e, r, "%s", err);
	if ((r = state_open(sr, *buf, *len, err, sizeof(err))) < 0) {
		free(*buf);
		*buf = NULL;
		return config_fail(e, r, "snapshot %s: %s", path, err);
	}
	return 0;
}

/* The overrides into the snapshot's configuration nc (host side only). */
static int restore_overrides(struct vmm_config *nc, const struct vmm_restore_overrides *ov,
			     struct vmm_error *e)
{
	for (unsigned int i = 0; ov && i < ov->nr_nets && i < VMM_MAX_NICS; i++) {
		const struct config_net *n = config_net_find(nc, ov->nets[i].id ? ov->nets[i].id : "");
		char what[96], mac[18];
		struct vmm_net vn;

		snprintf(what, sizeof(what), "network_overrides: interface '%.64s'",
			 ov->nets[i].id ? ov->nets[i].id : "");
		if (!n)
			return config_fail(e, -EINVAL, "%s: the snapshot has no such interface", what);
		vmm_net_init(&vn);
		vn.id = n->id;
		vn.tap = ov->nets[i].tap;
		if (n->has_mac) {
			snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
				 n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
			vn.mac = mac;
		}
		int r = config_put_net(nc, &vn, what, e);
		if (r < 0)
			return r;
	}
	if (ov && ov->vsock_uds) {
		struct vmm_vsock v;

		if (!nc->vsock.set)
			return config_fail(e, -EINVAL, "vsock_override: the snapshot has no vsock "
					   "device");
		vmm_vsock_init(&v);
		v.cid = nc->vsock.cid;
		v.uds_path = ov->vsock_uds;
		return config_set_vsock(nc, &v, "vsock_override", e);
	}
	return 0;
}

int vmm_vm_restore(struct vmm_vm *vm, const char *state_path, const char *mem_path,
		   unsigned int flags, struct vmm_error *e)
{
	return vmm_vm_restore_with(vm, state_path, mem_path, flags, NULL, e);
}

int vmm_vm_restore_with(struct vmm_vm *vm, const char *state_path, const char *mem_path,
			unsigned int flags, const struct vmm_restore_overrides *ov,
			struct vmm_error *e)
{
	const struct log_sink *prev = log_bind(&vm->log);
	char err[VMM_ERROR_LEN] = "";
	struct vmm_config nc;
	struct state_reader sr;
	struct stat st;
	uint8_t *buf = NULL;
	size_t len;
	int r, fd = -1;

	config_init(&nc);
	pthread_mutex_lock(&vm->op_lock);
	if (vm->state != VMM_STATE_CREATED) {
		r = config_fail(e, -EINVAL, "a snapshot loads only into a VM not started yet");
		goto out;
	}
	if ((r = read_state(state_path, &buf, &len, &sr, e)) < 0)
		goto out;
	if ((r = config_state_load(&nc, &sr, err, sizeof(err))) < 0) {
		config_fail(e, r, "snapshot %s: %s", state_path, err);
		goto out;
	}
	if ((r = restore_overrides(&nc, ov, e)) < 0)
		goto out;
	/* The memory file: there, and of the guest's size (never created here). */
	if ((r = file_open_checked(mem_path, O_RDONLY, false, &fd, &st, err, sizeof(err))) < 0) {
		config_fail(e, r, "memory file %s", err);
		goto out;
	}
	if ((uint64_t)st.st_size != nc.mem_size) {
		r = config_fail(e, -EINVAL, "memory file %s: %llu bytes, the snapshot's guest has "
				"%llu", mem_path, (unsigned long long)st.st_size,
				(unsigned long long)nc.mem_size);
		goto out;
	}
	/*
	 * RAM that was a file of its own (--memory SIZE,file=PATH, snapshotted in place): that
	 * file is the guest's RAM again, mapped shared, the guest writing to it from now on.
	 * Otherwise the file is brought in as the guest touches it (the snapshot stays reusable).
	 */
	if (nc.mem_path) {
		if ((r = config_set_memory_file(&nc, mem_path, "memory file", e)) < 0)
			goto out;
	} else {
		nc.mem_source_fd = fd;
		fd = -1;
	}
	r = vm_restore_locked(vm, &nc, &sr, flags, state_path, e);
out:
	if (fd >= 0)
		close(fd);
	config_fini(&nc);
	free(buf);
	pthread_mutex_unlock(&vm->op_lock);
	r = vm_restore_finish(vm, r, flags, e);
	log_bind(prev);
	return r;
}

int vm_restore_locked(struct vmm_vm *vm, struct vmm_config *nc, const struct state_reader *sr,
		      unsigned int flags, const char *what, struct vmm_error *e)
{
	char err[VMM_ERROR_LEN] = "";
	int r;

	if (flags & VMM_RESTORE_TRACK_DIRTY)
		nc->track_dirty = true;
	/* What this process was given stays: its console, its name, its /dev/kvm. */
	nc->console_in = vm->cfg.console_in;
	nc->console_out = vm->cfg.console_out;
	nc->console_escape = vm->cfg.console_escape;
	if (vm->cfg.id && (r = config_set_id(nc, vm->cfg.id, "id", e)) < 0)
		return r;
	if (vm->cfg.kvm_path && (r = config_set_path(&nc->kvm_path, vm->cfg.kvm_path, "kvm", e)) < 0)
		return r;
	if (!vm->ctl && (r = vm_ctl_setup(vm, err, sizeof(err))) < 0)
		return config_fail(e, r, "%s", err);
	config_fini(&vm->cfg);
	vm->cfg = *nc;
	config_init(nc);
	if ((r = vm_boot_machine_from(vm, sr, true, err, sizeof(err))) < 0)
		return config_fail(e, r, "snapshot %s: %s", what, err);
	vm->diff_base = true; /* a Diff snapshot can follow the one it came from */
	vm_set_state(vm, VMM_STATE_PAUSED);
	__atomic_store_n(&vm->in_paused, true, __ATOMIC_RELEASE);
	if ((r = ev_loop_start(vm->ctl)) < 0)
		return config_fail(e, r, "control thread: %s", strerror(-r));
	vm_event(vm, VMM_EVENT_PAUSED, NULL);
	return 0;
}

int vm_restore_finish(struct vmm_vm *vm, int r, unsigned int flags, struct vmm_error *e)
{
	/* Console input from now on (held back while paused), as after a start. */
	if (r == 0)
		vm_console_start(vm);
	if (r == 0 && (flags & VMM_RESTORE_RESUME))
		r = vmm_vm_resume(vm, e);
	return r;
}

void vm_set_state(struct vmm_vm *vm, enum vmm_state st)
{
	pthread_mutex_lock(&vm->lock);
	vm->state = st;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

int vmm_vm_set_front_data(struct vmm_vm *vm, const void *data, size_t len)
{
	uint8_t *copy = NULL;

	if (len > FRONT_DATA_MAX)
		return -E2BIG;
	if (len && !(copy = malloc(len)))
		return -ENOMEM;
	if (len)
		memcpy(copy, data, len);
	pthread_mutex_lock(&vm->op_lock);
	free(vm->front);
	vm->front = copy;
	vm->front_len = len;
	pthread_mutex_unlock(&vm->op_lock);
	return 0;
}

int vmm_vm_stop_with(struct vmm_vm *vm, enum vmm_stop_reason reason, int code, const char *msg)
{
	int r = 0;

	pthread_mutex_lock(&vm->lock);
	if (vm->state == VMM_STATE_CREATED || vm->state == VMM_STATE_STOPPED) {
		r = -EINVAL;
	} else if (!vm->stop_requested) {
		vm->stop_requested = true;
		vm->stop_req = (struct vmm_outcome){ .reason = reason, .code = code };
		snprintf(vm->stop_req.msg, sizeof(vm->stop_req.msg), "%s", msg ? msg : "");
		/* No machine (a restart is building the next one): it is told when it exists. */
		if (vm->m)
			machine_request_stop(vm->m, reason, code, msg);
	}
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int vmm_vm_stop(struct vmm_vm *vm, struct vmm_error *e)
{
	if (vmm_vm_stop_with(vm, VMM_STOP_REQUEST, 0, "stopped on request") < 0)
		return config_fail(e, -EINVAL, "cannot stop a VM that is %s",
			       vmm_state_name(vmm_vm_state(vm)));
	return 0;
}

int vmm_vm_send_ctrl_alt_del(struct vmm_vm *vm, struct vmm_error *e)
{
	int r;

	pthread_mutex_lock(&vm->lock);
	if (vm->state != VMM_STATE_RUNNING || !vm->m || vm->m_halted)
		r = config_fail(e, -EINVAL, "cannot send Ctrl-Alt-Del to a VM that is %s",
			    vm->state == VMM_STATE_CREATED ? "not started"
							   : vmm_state_name(vm->state));
	else if ((r = machine_ctrl_alt_del(vm->m)) < 0)
		config_fail(e, r, "the VM has no keyboard");
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int vmm_vm_console_resize(struct vmm_vm *vm, unsigned int cols, unsigned int rows)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->m && !vm->m_halted)
		machine_console_resize(vm->m, cols, rows);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int vmm_vm_wait(struct vmm_vm *vm, struct vmm_outcome *out)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->state == VMM_STATE_CREATED) {
		pthread_mutex_unlock(&vm->lock);
		return -EINVAL;
	}
	while (vm->state != VMM_STATE_STOPPED)
		pthread_cond_wait(&vm->cond, &vm->lock);
	if (out)
		*out = vm->outcome;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

enum vmm_state vmm_vm_state(struct vmm_vm *vm)
{
	enum vmm_state s;

	pthread_mutex_lock(&vm->lock);
	s = vm->state;
	pthread_mutex_unlock(&vm->lock);
	return s;
}

struct vmm_config *vmm_vm_config(struct vmm_vm *vm)
{
	struct vmm_config *c;

	pthread_mutex_lock(&vm->op_lock);
	c = vmm_config_dup(&vm->cfg);
	pthread_mutex_unlock(&vm->op_lock);
	return c;
}

void vmm_vm_destroy(struct vmm_vm *vm)
{
	if (!vm)
		return;
	const struct log_sink *prev = log_bind(&vm->log);

	if (vmm_vm_stop_with(vm, VMM_STOP_REQUEST, 0, "stopped on request") == 0)
		vmm_vm_wait(vm, NULL);
	/* The control thread first: nothing reacts to the machine after this. */
	if (vm->ctl)
		ev_loop_destroy(vm->ctl);
	vm->ctl = NULL;
	if (vm->m)
		machine_destroy(vm->m);
	if (vm->timer_fd >= 0)
		close(vm->timer_fd);
	if (vm->rx_efd >= 0)
		close(vm->rx_efd);
	if (vm->luo_sfd >= 0)
		close(vm->luo_sfd);
	free(vm->front);
	free(vm->dirty_carry);
	config_fini(&vm->cfg);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	pthread_mutex_destroy(&vm->op_lock);
	free(vm);
	log_bind(prev);
}

/* ---- the API's view of a VM (api.h) ---- */

static void target_info(void *opaque, struct api_info *out)
{
	struct vmm_vm *vm = opaque;

	out->id = vm->cfg.id ? vm->cfg.id : CONFIG_DEFAULT_ID;
	out->state = vmm_vm_state(vm);
}

static int target_update_config(void *opaque,
				int (*fn)(struct vmm_config *c, void *arg, struct vmm_error *e),
				void *arg, struct vmm_error *e)
{
	struct vmm_vm *vm = opaque;
	int r;

	pthread_mutex_lock(&vm->op_lock);
	if (vm->state != VMM_STATE_CREATED)
		r = config_fail(e, -EBUSY, "The requested operation is not supported after starting "
			    "the microVM.");
	else
		r = fn(&vm->cfg, arg, e);
	pthread_mutex_unlock(&vm->op_lock);
	return r;
}

static struct vmm_config *target_get_config(void *opaque)
{
	return vmm_vm_config(opaque);
}

static int target_start(void *opaque, struct vmm_error *e)
{
	return vmm_vm_start(opaque, e);
}

static int target_pause(void *opaque, struct vmm_error *e)
{
	return vmm_vm_pause(opaque, e);
}

static int target_resume(void *opaque, struct vmm_error *e)
{
	return vmm_vm_resume(opaque, e);
}

static int target_ctrl_alt_del(void *opaque, struct vmm_error *e)
{
	return vmm_vm_send_ctrl_alt_del(opaque, e);
}

static int target_snapshot_create(void *opaque, const char *state_path, const char *mem_path,
				  enum vmm_snapshot_type type, struct vmm_error *e)
{
	return vmm_vm_snapshot(opaque, state_path, mem_path, type, e);
}

static int target_snapshot_load(void *opaque, const char *state_path, const char *mem_path,
				unsigned int flags, const struct vmm_restore_overrides *ov,
				struct vmm_error *e)
{
	return vmm_vm_restore_with(opaque, state_path, mem_path, flags, ov, e);
}

static int target_snapshot_luo(void *opaque, const char *session, struct vmm_error *e)
{
	return vmm_vm_luo_preserve(opaque, session, e);
}

static int target_live_update(void *opaque, const char *binary, struct vmm_live_update *out,
			      struct vmm_error *e)
{
	return vmm_vm_live_update(opaque, binary, out, e);
}

static const struct api_target_ops vm_target_ops = {
	.info = target_info,
	.update_config = target_update_config,
	.get_config = target_get_config,
	.start = target_start,
	.pause = target_pause,
	.resume = target_resume,
	.ctrl_alt_del = target_ctrl_alt_del,
	.snapshot_create = target_snapshot_create,
	.snapshot_load = target_snapshot_load,
	.snapshot_luo = target_snapshot_luo,
	.live_update = target_live_update,
};

void vm_api_target(struct vmm_vm *vm, struct api_target *out)
{
	out->ops = &vm_target_ops;
	out->opaque = vm;
}
