// SPDX-License-Identifier: Apache-2.0
/*
 * Live update: another vmm process takes over a running guest (vmm.h, vmm_vm_live_update and
 * vmm_vm_receive). The old process (A) starts the new one (B) with "--handover FD" and talks
 * to it over a socketpair (handover.c):
 *
 *   A: hold the API's accept and the console's input; spawn B
 *   A -> B  PREPARE  /config + /handover; fds: RAM memfd, API listening socket, disk images
 *   B       builds its machine (KVM VM, RAM mapped from the same memfd, devices on the same
 *           open images, vCPUs): the guest still runs in A meanwhile
 *   B -> A  READY
 *   A       pause (vCPUs parked, I/O drained), save  ---- the blackout begins
 *   A -> B  STATE    pause time, console input not yet delivered, the machine's state
 *   B       load, vCPUs started parked
 *   B -> A  RESUMED  (B's commit: from here on the guest is B's) then B resumes  ---- ends
 *   B -> A  RUNNING  the vCPUs are unparked: its time ends the blackout A reports
 *   A       stops without touching the guest (VMM_STOP_UPDATED), leaves the socket file
 *
 * Anything else (B exits, hangs, says FAILED, sends garbage) before RESUMED: A kills B,
 * resumes the guest and reports the error. Nothing of the guest is touched by B before STATE,
 * and B resumes only once it has said RESUMED, so the guest runs in exactly one process.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handover.h"
#include "snapshot.h"
#include "vm_internal.h"
#include "vmm/file.h"
#include "vmm/state_config.h"

#define LU_READY_MS     10000 /* B builds its machine */
#define LU_RESUMED_MS   10000 /* B loads the state */
#define LU_PREPARE_MS   10000 /* B waits for A */
#define LU_STATE_MS     30000 /* B waits for A to pause the guest */
#define LU_CHILD_FD     3     /* the socket, in B */

extern char **environ;

_Static_assert(HO_PENDING_MAX == CONSOLE_CHUNK, "console input fits the new VM's buffer");
_Static_assert(HO_FRONT_MAX == FRONT_DATA_MAX, "front-end data fits");

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the old process ---- */

/* The executable to start: binary, or the running one's path (the file there now). */
static int lu_binary(const char *binary, char *path, size_t len, char *err, size_t errlen)
{
	struct stat st;

	if (binary) {
		if (snprintf(path, len, "%s", binary) >= (int)len) {
			snprintf(err, errlen, "binary: path too long");
			return -ENAMETOOLONG;
		}
	} else {
		ssize_t n = readlink("/proc/self/exe", path, len - 1);
		const char *del = " (deleted)";

		if (n < 0) {
			snprintf(err, errlen, "cannot tell the running executable: %s",
				 strerror(errno));
			return -errno;
		}
		path[n] = 0;
		/* Replaced on disk since it started: the new file at the same path is the one. */
		if ((size_t)n > strlen(del) && !strcmp(path + n - strlen(del), del))
			path[n - strlen(del)] = 0;
	}
	if (stat(path, &st) < 0) {
		snprintf(err, errlen, "binary %.200s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode) || access(path, X_OK) < 0) {
		snprintf(err, errlen, "binary %.200s: not an executable file", path);
		return -EINVAL;
	}
	return 0;
}

/* B, with the socket as its fd 3, nothing else of ours, default signals and mask. */
static int lu_spawn(const char *path, int sock, pid_t *pid, char *err, size_t errlen)
{
	char fdarg[] = "3";
	char *argv[] = { (char *)path, "--handover", fdarg, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int r;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_adddup2(&fa, sock, LU_CHILD_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, LU_CHILD_FD + 1);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	r = posix_spawn(pid, path, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (r) {
		snprintf(err, errlen, "cannot start %.200s: %s", path, strerror(r));
		return -r;
	}
	return 0;
}

/* Why B went away, for the message. */
static void lu_reap(pid_t pid, char *why, size_t len)
{
	int st;
	pid_t got = 0;

	/* It may be exiting on its own (it closed its end first): its status says more. */
	for (int i = 0; i < 20 && (got = waitpid(pid, &st, WNOHANG)) == 0; i++)
		usleep(10 * 1000);
	if (got == 0) {
		kill(pid, SIGKILL);
		got = waitpid(pid, &st, 0);
	}
	if (got != pid)
		snprintf(why, len, "it is gone");
	else if (WIFEXITED(st))
		snprintf(why, len, "it exited with status %d", WEXITSTATUS(st));
	else
		snprintf(why, len, "it was killed by signal %d", WTERMSIG(st));
}

/* One message of type want, or why not (FAILED: B's own line). */
static int lu_expect(int sock, uint32_t want, int timeout_ms, struct ho_msg *msg, const char *step,
		     char *err, size_t errlen)
{
	int r = ho_recv(sock, msg, timeout_ms);

	if (r == -ETIMEDOUT) {
		snprintf(err, errlen, "the new process did not answer within %d s (%s)",
			 timeout_ms / 1000, step);
		return r;
	}
	if (r == -ECONNRESET) {
		snprintf(err, errlen, "the new process went away (%s)", step);
		return r;
	}
	if (r < 0) {
		snprintf(err, errlen, "%s: %s", step, r == -EPROTO ? "malformed message" : strerror(-r));
		return r;
	}
	if (msg->type == HO_FAILED) {
		snprintf(err, errlen, "the new process failed: %.*s", (int)MIN(msg->len, 400),
			 msg->len && memchr(msg->payload, 0, msg->len) ? (char *)msg->payload
								       : "(no reason)");
		ho_msg_fini(msg);
		return -EIO;
	}
	if (msg->type != want || msg->nfds) {
		snprintf(err, errlen, "%s: unexpected message %u", step, msg->type);
		ho_msg_fini(msg);
		return -EPROTO;
	}
	return 0;
}

/* PREPARE: /config, /handover, and the fds it names. */
static int lu_prepare(struct vmm_vm *vm, struct vmm_api *api, uint8_t **blob, size_t *len,
		      int *fds, unsigned int *nfds, char *err, size_t errlen)
{
	struct machine *m = vm->m;
	struct state_writer w;
	char ids[HO_MAX_FDS * DEVICE_ID_MAX];
	size_t ids_len = 0;
	int r, node;

	if ((r = state_writer_init(&w)) < 0) {
		snprintf(err, errlen, "out of memory");
		return r;
	}
	config_state_save(&vm->cfg, &w);
	node = state_node(&w, 0, "handover");
	state_put_u32(&w, node, "protocol", HO_PROTOCOL);
	state_put_u32(&w, node, "console-escape", vm->cfg.console_escape);
	if (vm->front_len)
		state_put(&w, node, "front", vm->front, vm->front_len);
	if (vm->timer_fd >= 0) {
		struct itimerspec its;

		if (timerfd_gettime(vm->timer_fd, &its) == 0) {
			uint64_t ms = (uint64_t)its.it_value.tv_sec * 1000 +
				      (uint64_t)its.it_value.tv_nsec / 1000000;
			state_put_u64(&w, node, "timeout-left-ms", ms ? ms : 1);
		}
	}
	*nfds = 0;
	fds[(*nfds)++] = m->gm.fd;
	/* Restored RAM: the memfd's holes stand for this file's pages. */
	if (m->gm.src_fd >= 0) {
		state_put_u32(&w, node, "mem-source", 1);
		fds[(*nfds)++] = m->gm.src_fd;
	}
	if (api) {
		uint64_t dev, ino;

		vmm_api_file_id(api, &dev, &ino);
		state_put_str(&w, node, "api-path", vmm_api_path(api));
		state_put_u64(&w, node, "api-dev", dev);
		state_put_u64(&w, node, "api-ino", ino);
		fds[(*nfds)++] = vmm_api_listen_fd(api);
	}
	/* Each device's host file, named by the device's id, in fd order after those two. */
	for (unsigned int i = 0; i < m->devs.nr; i++) {
		struct device *d = &m->devs.dev[i];
		int fd = d->ops->host_fd ? d->ops->host_fd(d) : -1;

		if (fd < 0)
			continue;
		if (*nfds == HO_MAX_FDS) {
			state_writer_fini(&w);
			snprintf(err, errlen, "more host files than a handover carries (%d)",
				 HO_MAX_FDS);
			return -E2BIG;
		}
		fds[(*nfds)++] = fd;
		size_t n = strlen(d->id) + 1;
		memcpy(ids + ids_len, d->id, n);
		ids_len += n;
	}
	if (ids_len)
		state_put(&w, node, "host-files", ids, ids_len);
	if ((r = state_finish(&w, blob, len)) < 0)
		snprintf(err, errlen, "cannot build the handover: %s", strerror(-r));
	return r;
}

/*
 * Stop the VM here for good: the guest is the new process's. A stop asked for meanwhile (a
 * signal) is passed on to the new process.
 */
static void lu_handed_over(struct vmm_vm *vm, pid_t pid)
{
	struct vmm_outcome o = { .reason = VMM_STOP_UPDATED, .code = pid };
	struct vmm_outcome asked = { 0 };

	snprintf(o.msg, sizeof(o.msg), "handed over to process %d", (int)pid);
	pthread_mutex_lock(&vm->lock);
	if (vm->stop_requested)
		asked = vm->stop_req;
	vm->stop_requested = true;
	vm->stop_req = o;
	machine_request_stop(vm->m, o.reason, o.code, o.msg);
	pthread_mutex_unlock(&vm->lock);
	if (asked.reason == VMM_STOP_SIGNAL)
		kill(pid, asked.code);
	else if (asked.reason != VMM_STOP_NONE)
		kill(pid, SIGTERM);
}

/* The update itself (op_lock held; API accept and console input held). */
static int lu_run(struct vmm_vm *vm, const char *path, struct vmm_api *api,
		  struct vmm_live_update *out, char *err, size_t errlen)
{
	struct ho_msg msg = { 0 };
	int fds[HO_MAX_FDS], sv[2] = { -1, -1 }, sock = -1, r;
	unsigned int nfds;
	uint8_t *blob = NULL, *state = NULL;
	uint64_t *dirty = NULL;
	struct state_fds *sfds = NULL;
	size_t len, slen;
	pid_t pid = -1;
	bool paused = false;
	uint64_t t0 = 0;
	char why[48];

	pthread_mutex_lock(&vm->lock);
	enum vmm_state st = vm->state;
	bool stopping = vm->stop_requested || vm->m_halted || !vm->m;
	pthread_mutex_unlock(&vm->lock);
	if ((st != VMM_STATE_RUNNING && st != VMM_STATE_PAUSED) || stopping) {
		snprintf(err, errlen, "cannot update a VM that is %s",
			 stopping ? "stopping" : st == VMM_STATE_CREATED ? "not started"
									: vmm_state_name(st));
		return -EINVAL;
	}
	if (vm->m->gm.private_map || vm->m->gm.fd < 0) {
		snprintf(err, errlen, "the guest's RAM is a private copy of a snapshot's memory "
			 "file, which another process cannot map: this process may not use "
			 "userfaultfd (see README, live update)");
		return -EOPNOTSUPP;
	}
	if ((r = lu_prepare(vm, api, &blob, &len, fds, &nfds, err, errlen)) < 0)
		return r;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		r = -errno;
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		goto out;
	}
	sock = sv[0];
	/* A new process that stops reading must not hold the paused guest: sends time out. */
	struct timeval tv = { .tv_sec = LU_RESUMED_MS / 1000 };
	(void)setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	/* Not already fd 3 in this process, so that dup2 clears its close-on-exec. */
	int child_end = fcntl(sv[1], F_DUPFD_CLOEXEC, LU_CHILD_FD + 1);
	if (child_end < 0) {
		r = -errno;
		snprintf(err, errlen, "fcntl: %s", strerror(errno));
		goto out;
	}
	close(sv[1]);
	sv[1] = child_end;
	if ((r = lu_spawn(path, sv[1], &pid, err, errlen)) < 0)
		goto out;
	close(sv[1]);
	sv[1] = -1;

	/* B builds its machine while the guest runs on here. */
	if ((r = ho_send(sock, HO_PREPARE, blob, len, fds, nfds)) < 0) {
		lu_reap(pid, why, sizeof(why));
		pid = -1;
		snprintf(err, errlen, "%.150s did not take the handover (%s): is it vmm?", path, why);
		r = -ENOEXEC; /* the caller's binary: a 400 on the API */
		goto fail;
	}
	if ((r = lu_expect(sock, HO_READY, LU_READY_MS, &msg, "building its VM", err, errlen)) < 0) {
		if (r != -EIO && r != -ETIMEDOUT) {
			lu_reap(pid, why, sizeof(why));
			pid = -1;
			snprintf(err, errlen, "%.150s stopped before it was ready (%s): is it vmm?",
				 path, why);
			r = -ENOEXEC;
		}
		goto fail;
	}
	ho_msg_fini(&msg);

	/* The blackout. */
	t0 = now_ns();
	if (st == VMM_STATE_RUNNING) {
		if ((r = machine_pause(vm->m)) < 0) {
			snprintf(err, errlen, "cannot pause: %s",
				 r == -ESHUTDOWN ? "the VM is stopping" : strerror(-r));
			goto fail;
		}
		paused = true;
	}
	pthread_mutex_lock(&vm->lock);
	stopping = vm->stop_requested;
	pthread_mutex_unlock(&vm->lock);
	if (stopping) {
		snprintf(err, errlen, "the VM was asked to stop meanwhile");
		r = -ECANCELED;
		goto fail;
	}
	if (!(sfds = calloc(1, sizeof(*sfds)))) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	if ((r = machine_state_save(vm->m, sfds, &state, &slen, err, errlen)) < 0)
		goto fail;
	size_t dlen = 0;
	if (vm->cfg.track_dirty) {
		if ((r = vm_dirty_take(vm, &dirty)) < 0) {
			snprintf(err, errlen, "dirty pages: %s", strerror(-r));
			goto fail;
		}
		dlen = gm_dirty_words(&vm->m->gm) * sizeof(uint64_t);
	}
	size_t pend = vm->pending_len - vm->pending_off;
	struct ho_state_hdr h = { t0, st == VMM_STATE_RUNNING, (uint32_t)pend, (uint32_t)dlen,
				  vm->diff_base, sfds->nr, 0 };
	size_t plen = sizeof(h) + pend + dlen + slen;
	uint8_t *p = malloc(plen);
	if (!p) {
		snprintf(err, errlen, "out of memory");
		r = -ENOMEM;
		goto fail;
	}
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), vm->pending + vm->pending_off, pend);
	if (dlen)
		memcpy(p + sizeof(h) + pend, dirty, dlen);
	memcpy(p + sizeof(h) + pend + dlen, state, slen);
	/* The devices' open files (vsock connections) first, then the state naming them. */
	r = ho_send_fds(sock, sfds->fd, sfds->nr);
	if (r == 0)
		r = ho_send(sock, HO_STATE, p, plen, NULL, 0);
	free(p);
	if (r < 0) {
		snprintf(err, errlen, "the new process went away (sending the state)");
		goto fail;
	}
	if ((r = lu_expect(sock, HO_RESUMED, LU_RESUMED_MS, &msg, "loading the state", err,
			   errlen)) < 0)
		goto fail;
	struct ho_resumed res;
	if (msg.len != sizeof(res)) {
		snprintf(err, errlen, "loading the state: malformed answer");
		ho_msg_fini(&msg);
		r = -EPROTO;
		goto fail;
	}
	memcpy(&res, msg.payload, sizeof(res));
	ho_msg_fini(&msg);
	/* The time the vCPUs were let go, a moment later; without it, the commit's. */
	if (st == VMM_STATE_RUNNING && ho_recv(sock, &msg, 1000) == 0) {
		struct ho_resumed run;

		if (msg.type == HO_RUNNING && msg.len == sizeof(run)) {
			memcpy(&run, msg.payload, sizeof(run));
			if (run.resumed_ns >= res.resumed_ns)
				res.resumed_ns = run.resumed_ns;
		}
		ho_msg_fini(&msg);
	}

	/* The guest is B's now, and so are the devices' host resources. */
	for (unsigned int i = 0; i < vm->m->devs.nr; i++) {
		struct device *d = &vm->m->devs.dev[i];

		if (d->ops->disown)
			d->ops->disown(d);
	}
	out->pid = pid;
	out->blackout_us = st == VMM_STATE_RUNNING && res.resumed_ns > t0
				   ? (res.resumed_ns - t0) / 1000 : 0;
	lu_handed_over(vm, pid);
	r = 0;
	goto out;

fail:
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	if (dirty) {
		/* Still this process's to snapshot: what was taken goes back. */
		vm->dirty_carry = dirty;
		dirty = NULL;
	}
	if (paused)
		machine_resume(vm->m);
out:
	free(dirty);
	free(sfds); /* the files are the devices' */
	if (sock >= 0)
		close(sock);
	if (sv[1] >= 0)
		close(sv[1]);
	free(state);
	free(blob);
	return r;
}

int vmm_vm_live_update(struct vmm_vm *vm, const char *binary, struct vmm_live_update *out,
		       struct vmm_error *e)
{
	const struct log_sink *prev = log_bind(&vm->log);
	char err[VMM_ERROR_LEN] = "", path[PATH_MAX];
	struct vmm_api *api;
	int r;

	if ((r = lu_binary(binary, path, sizeof(path), err, sizeof(err))) < 0) {
		config_fail(e, r, "live update: %s", err);
		goto out;
	}
	pthread_mutex_lock(&vm->lock);
	api = vm->api;
	bool started = vm->state == VMM_STATE_RUNNING || vm->state == VMM_STATE_PAUSED;
	pthread_mutex_unlock(&vm->lock);
	if (!started) {
		r = config_fail(e, -EINVAL, "live update: cannot update a VM that is %s",
				vmm_state_name(vmm_vm_state(vm)));
		goto out;
	}
	/* No new API connection and no console byte is taken here from now on (they run on
	 * the api and control threads: before op_lock, which those may be waiting for). */
	if (api)
		vmm_api_hold(api, true);
	vm_console_hold(vm, true);
	pthread_mutex_lock(&vm->op_lock);
	r = lu_run(vm, path, api, out, err, sizeof(err));
	pthread_mutex_unlock(&vm->op_lock);
	if (r < 0) {
		vm_console_hold(vm, false);
		if (api)
			vmm_api_hold(api, false);
		config_fail(e, r, "live update: %s", err);
		log_warn("live update failed, the guest goes on here: %s", err);
		goto out;
	}
	if (api)
		vmm_api_disown(api);
out:
	log_bind(prev);
	return r;
}

/* ---- the new process ---- */

/* Tell A why, and the caller too. */
static int lu_refuse(int sock, int r, const char *err, struct vmm_error *e)
{
	if (ho_send_failed(sock, err) < 0) {
		/* A is gone: it will not resume the guest, but nothing here touched it. */
	}
	return config_fail(e, r, "live update (new process): %s", err);
}

int vmm_vm_receive(int sock, const struct vmm_callbacks *cb, struct vmm_receive *rv,
		   struct vmm_error *e)
{
	char err[VMM_ERROR_LEN] = "";
	struct ho_msg prep = { 0 }, smsg = { 0 };
	struct ho_prepare in = { .api_fd = -1 };
	struct state_fds *sfds = calloc(1, sizeof(*sfds));
	struct state_reader sr, ssr;
	struct machine *m = NULL;
	struct vmm_vm *vm = NULL;
	int r;

	rv->vm = NULL;
	rv->api = NULL;
	rv->front_data = NULL;
	rv->front_len = 0;
	config_init(&in.cfg);
	if (!sfds) {
		r = config_fail(e, -ENOMEM, "live update (new process): out of memory");
		goto out;
	}
	if ((r = ho_recv(sock, &prep, LU_PREPARE_MS)) < 0) {
		config_fail(e, r, "live update (new process): no handover: %s", strerror(-r));
		goto out;
	}
	if ((r = ho_parse_prepare(&prep, &sr, &in, err, sizeof(err))) < 0) {
		r = lu_refuse(sock, r, err, e);
		goto out;
	}
	/* This process's console: the same terminal or pipes, inherited. */
	in.cfg.console_in = rv->console_in;
	in.cfg.console_out = rv->console_out;
	in.cfg.console_escape = in.console_escape;
	if ((r = vmm_vm_create(&in.cfg, cb, &vm, NULL)) < 0) {
		r = lu_refuse(sock, r, "out of memory", e);
		goto out;
	}
	const struct log_sink *prev = log_bind(&vm->log);
	vm->timeout_left_ms = in.timeout_left_ms;
	if (in.front_len && vmm_vm_set_front_data(vm, in.front, in.front_len) < 0) {
		snprintf(err, sizeof(err), "out of memory");
		r = -ENOMEM;
		goto refuse;
	}
	pthread_mutex_lock(&vm->op_lock);
	/* Everything but the guest's state, while it still runs in A. */
	if ((r = vm_ctl_setup(vm, err, sizeof(err))) < 0 ||
	    (r = machine_create(&vm->cfg, &vm->log, MACHINE_NO_KERNEL, &m, err, sizeof(err))) < 0)
		goto refuse_locked;
	if ((r = ev_loop_start(vm->ctl)) < 0) {
		snprintf(err, sizeof(err), "control thread: %s", strerror(-r));
		goto refuse_locked;
	}
	/*
	 * Its threads too, the vCPUs parked before their first KVM_RUN (a KVM_RUN with
	 * immediate_exit, which enters no guest: KVM_SET_CPUID2 is still allowed) and the
	 * devices quiesced: the state is loaded into it as into a paused machine, and starting
	 * threads is out of the blackout (a quarter of it, some 200 us here).
	 */
	if ((r = machine_start_paused(m)) < 0 || __atomic_load_n(&m->stopping, __ATOMIC_ACQUIRE)) {
		snprintf(err, sizeof(err), "cannot start the vCPU threads: %s",
			 strerror(r < 0 ? -r : EAGAIN));
		r = r < 0 ? r : -EAGAIN;
		goto refuse_locked;
	}
	if ((r = ho_send(sock, HO_READY, NULL, 0, NULL, 0)) < 0) {
		snprintf(err, sizeof(err), "the old process went away");
		goto refuse_locked;
	}
	/* The blackout, on A's side already. */
	if ((r = ho_recv_after_fds(sock, &smsg, sfds, LU_STATE_MS)) < 0) {
		snprintf(err, sizeof(err), "no state from the old process: %s", strerror(-r));
		goto refuse_locked;
	}
	struct ho_state hs;
	size_t want_dirty = vm->cfg.track_dirty ? gm_dirty_words(&m->gm) * sizeof(uint64_t) : 0;
	if ((r = ho_parse_state(&smsg, want_dirty, sfds->nr, &hs, err, sizeof(err))) < 0 ||
	    (r = state_open(&ssr, hs.blob, hs.blob_len, err, sizeof(err))) < 0)
		goto refuse_locked;
	ssr.fds = sfds; /* the devices take theirs as they load */
	if ((r = vm_install_machine(vm, m, &ssr, true, err, sizeof(err))) < 0)
		goto refuse_locked;
	m = NULL; /* the VM's now */
	vm->diff_base = hs.h.diff_base != 0;
	if (hs.h.dirty_len && (vm->dirty_carry = malloc(hs.h.dirty_len)))
		memcpy(vm->dirty_carry, hs.dirty, hs.h.dirty_len);
	else if (hs.h.dirty_len)
		vm->diff_base = false; /* out of memory: the next snapshot must be a Full one */
	memcpy(vm->pending, hs.pending, hs.h.pending_len);
	vm->pending_len = hs.h.pending_len;
	vm->pending_off = 0;
	__atomic_store_n(&vm->in_paused, true, __ATOMIC_RELEASE);
	vm_set_state(vm, VMM_STATE_PAUSED);
	if (__atomic_load_n(&vm->m->stopping, __ATOMIC_ACQUIRE)) {
		/* Its vCPU threads did not start: the control thread tears it down. */
		snprintf(err, sizeof(err), "%s", "cannot start the vCPU threads");
		r = -EAGAIN;
		goto refuse_locked;
	}
	/* The commit: from here on the guest is ours, whatever A does. */
	struct ho_resumed res = { .pid = (int32_t)getpid(), .resumed_ns = now_ns() };
	if (ho_send(sock, HO_RESUMED, &res, sizeof(res), NULL, 0) < 0) {
		/* A died after sending the state: nobody else will run the guest. */
		log_warn("live update: the old process is gone; resuming the guest anyway");
	}
	if (hs.h.resume) {
		res.resumed_ns = machine_resume(vm->m);
		vm_set_state(vm, VMM_STATE_RUNNING);
		__atomic_store_n(&vm->in_paused, false, __ATOMIC_RELEASE);
		if (ho_send(sock, HO_RUNNING, &res, sizeof(res), NULL, 0) < 0) {
			/* A is gone: it only wanted the time */
		}
	}
	pthread_mutex_unlock(&vm->op_lock);
	vm_console_start(vm);
	vm_event(vm, hs.h.resume ? VMM_EVENT_RESUMED : VMM_EVENT_PAUSED, NULL);

	if (in.api_path) {
		struct vmm_error ae = { 0 };

		if (vmm_api_adopt(vm, in.api_path, in.api_fd, in.api_dev, in.api_ino, &rv->api,
				  &ae) < 0)
			log_err("live update: the API socket is not served: %s", ae.msg);
		else
			in.api_fd = -1;
	}
	if (vm->front_len && (rv->front_data = malloc(vm->front_len))) {
		memcpy(rv->front_data, vm->front, vm->front_len);
		rv->front_len = vm->front_len;
	}
	rv->vm = vm;
	vm = NULL;
	r = 0;
	log_bind(prev);
	goto out;

refuse_locked:
	pthread_mutex_unlock(&vm->op_lock);
refuse:
	log_bind(prev);
	r = lu_refuse(sock, r, err, e);
out:
	if (m && m->started) /* parked threads wait for this */
		machine_request_stop(m, VMM_STOP_ERROR, 0, "the live update was refused");
	if (m)
		machine_destroy(m);
	if (vm)
		vmm_vm_destroy(vm);
	if (in.api_fd >= 0)
		close(in.api_fd);
	config_fini(&in.cfg);
	ho_msg_fini(&smsg);
	ho_msg_fini(&prep);
	/* Files no device took (or all of them, refused). */
	for (unsigned int i = 0; sfds && i < sfds->nr; i++) {
		if (sfds->fd[i] >= 0)
			close(sfds->fd[i]);
	}
	free(sfds);
	return r;
}
