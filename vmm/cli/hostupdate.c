// SPDX-License-Identifier: Apache-2.0
/*
 * vmm hostupdate: the host-side procedure for replacing the host kernel under running guests
 * (README, "Host kernel update"), whose RAM outlives the kernel: a file on a DAX filesystem on
 * a persistent-memory region the kexec leaves alone (--memory SIZE,file=PATH), or a memfd
 * handed to the next kernel by the Live Update Orchestrator (/dev/liveupdate).
 *
 *   vmm hostupdate prepare --state-dir DIR [--kexec-kernel K [--kexec-initrd I]
 *                          [--kexec-append STR]] SOCKET...
 *       1. loads K with kexec_file_load (what kexec -s -l does; the running command line
 *          unless --kexec-append): a kernel that cannot be loaded stops everything before
 *          any VM is touched;
 *       2. asks every VM (its API socket) how its RAM is kept: in a file (the DAX route),
 *          or a memfd where this kernel has /dev/liveupdate (the LUO route); a VM whose RAM
 *          would be lost stops everything;
 *       3. writes DIR/manifest.json (nothing in it depends on the pause); LUO VMs: their
 *          RAM preserved in a LUO session each while they run (PUT /snapshot/luo); then
 *          every VM paused, and each snapshotted in place (the state to DIR/ID.state, the
 *          RAM file only synced) or its state preserved in its session;
 *       4. syncs and jumps into K (reboot(LINUX_REBOOT_CMD_KEXEC), what kexec -e does); the
 *          paused vmm processes go with the kernel.
 *       Any failure from step 3 on, the jump included, removes the manifest, resumes every
 *       VM (which drops their sessions) and unloads K.
 *   vmm hostupdate resume --state-dir DIR [--vmm PATH]
 *       on the new kernel: restores every VM of the manifest (vmm restore, from its state
 *       file or --luo-session; its API socket as before, its console to DIR/ID.console),
 *       running again if it was running; each is waited for on NOTIFY_SOCKET (READY=1).
 *
 * Without --kexec-kernel, prepare stops the vmm processes and syncs: the VMs are saved, and
 * whoever runs it reboots the host as it likes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hostupdate.h"
#include "vmm/api_client.h"
#include "vmm/config.h"
#include "vmm/kexec.h"
#include "vmm/luo.h"

extern char **environ;

#define API_TIMEOUT_MS 30000

struct hu_vm {
	char *sock;
	char *id;
	char *mem;   /* its RAM file (the DAX route), or NULL */
	char *luo;   /* its LUO session (the LUO route: RAM is a memfd), or NULL */
	char *state;
	bool running; /* it ran before the update, and runs after */
	bool paused;  /* paused by us */
	bool luo_ram; /* running, its RAM preserved in its LUO session (undone by pause + resume) */
	pid_t pid;
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double t_start; /* hostupdate_main's start, for the reports */

static int say(const char *fmt, ...) PRINTF(1, 2);
static int say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("vmm hostupdate: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return VMM_EXIT_ERROR;
}

/* One API call whose status must be want; a line naming the VM otherwise. */
static int call(const struct hu_vm *v, const char *method, const char *path, const char *body,
		int want, json_t **json)
{
	struct api_reply rep;
	char err[512];
	int r = api_call(v->sock, method, path, body, API_TIMEOUT_MS, &rep, err, sizeof(err));

	if (r < 0)
		return say("%s", err), -1;
	if (rep.status != want) {
		json_t *j = json_loads(rep.body, 0, NULL);
		const char *fm = j ? json_string_value(json_object_get(j, "fault_message")) : NULL;

		say("%s: %s %s: %d %s", v->sock, method, path, rep.status, fm ? fm : rep.body);
		json_decref(j);
		free(rep.body);
		return -1;
	}
	if (json && !(*json = json_loads(rep.body, 0, NULL))) {
		say("%s: %s %s: the answer is not JSON", v->sock, method, path);
		free(rep.body);
		return -1;
	}
	free(rep.body);
	return 0;
}

static void vm_free(struct hu_vm *v)
{
	g_free(v->sock);
	g_free(v->id);
	g_free(v->mem);
	g_free(v->luo);
	g_free(v->state);
}

/*
 * Its id, state, RAM and process, and its route: RAM in a file is snapshotted in place; RAM in
 * a memfd is preserved by LUO where the host has it and a kexec follows (the session lives
 * only as long as the paused vmm that holds it).
 */
static int vm_inspect(struct hu_vm *v, const char *dir, bool kexec)
{
	struct api_reply rep;
	json_t *info = NULL, *mc = NULL;
	const char *id, *st, *mem;
	char err[512];
	int r = -1;

	if (api_call(v->sock, "GET", "/", NULL, API_TIMEOUT_MS, &rep, err, sizeof(err)) < 0)
		return say("%s", err), -1;
	v->pid = rep.pid;
	info = rep.status == 200 ? json_loads(rep.body, 0, NULL) : NULL;
	free(rep.body);
	if (!info || call(v, "GET", "/machine-config", NULL, 200, &mc) < 0) {
		if (!info)
			say("%s: GET / did not answer with the instance's state", v->sock);
		goto out;
	}
	id = json_string_value(json_object_get(info, "id"));
	st = json_string_value(json_object_get(info, "state"));
	mem = json_string_value(json_object_get(mc, "mem_backing_path"));
	if (!id || !st || (strcmp(st, "Running") && strcmp(st, "Paused"))) {
		say("%s: the VM is %s: only a running or paused VM can be carried over", v->sock,
		    st ? st : "in an unknown state");
		goto out;
	}
	if (!mem && access(LUO_DEVICE, F_OK) < 0) {
		say("%s (%s): its RAM is not in a file (--memory SIZE,file=PATH on memory that "
		    "survives the kexec) and this kernel has no %s (LUO) to carry a memfd: it "
		    "would be lost", v->sock, id, LUO_DEVICE);
		goto out;
	}
	if (!mem && !kexec) {
		say("%s (%s): its RAM is a memfd, which only LUO carries, across a kexec: give "
		    "--kexec-kernel", v->sock, id);
		goto out;
	}
	if (!mem) {
		v->luo = g_strdup_printf("vmm-%s", id);
		if (!luo_name_valid(v->luo)) {
			say("%s (%s): its id makes no LUO session name (%d characters at most)",
			    v->sock, id, LUO_NAME_LEN - 5);
			goto out;
		}
	}
	if (mem && mem[0] != '/') {
		say("%s (%s): its RAM file '%s' is a relative path: the restore could not find it",
		    v->sock, id, mem);
		goto out;
	}
	if (!v->pid) {
		say("%s: cannot tell which process serves it", v->sock);
		goto out;
	}
	v->id = g_strdup(id);
	v->mem = g_strdup(mem);
	v->state = mem ? g_strdup_printf("%s/%s.state", dir, id) : NULL;
	v->running = !strcmp(st, "Running");
	r = 0;
out:
	json_decref(info);
	json_decref(mc);
	return r;
}

/* Every VM as it was: resumed if we paused it; a resume also drops its LUO session. */
static void resume_paused(struct hu_vm *vms, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (vms[i].luo_ram && !vms[i].paused &&
		    call(&vms[i], "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL) == 0)
			vms[i].paused = true;
		if (vms[i].paused &&
		    call(&vms[i], "PATCH", "/vm", "{\"state\": \"Resumed\"}", 204, NULL) == 0)
			vms[i].paused = false;
	}
}

static int write_manifest(const char *dir, const struct hu_vm *vms, size_t n)
{
	json_t *a = json_array();
	char *tmp = g_strdup_printf("%s/manifest.json.tmp", dir);
	char *path = g_strdup_printf("%s/manifest.json", dir);
	int r = -1, fd, dfd;

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, vms[i].luo
			? json_pack("{s:s, s:s, s:s, s:b}", "id", vms[i].id, "socket", vms[i].sock,
				    "luo", vms[i].luo, "running", vms[i].running)
			: json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", vms[i].id, "socket",
				    vms[i].sock, "state", vms[i].state, "mem", vms[i].mem,
				    "running", vms[i].running));
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !a || json_dumpfd(a, fd, JSON_INDENT(1)) < 0 || fsync(fd) < 0 ||
	    rename(tmp, path) < 0) {
		say("%s: %s", path, strerror(errno));
		unlink(tmp);
	} else {
		r = 0;
	}
	if (fd >= 0)
		close(fd);
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	json_decref(a);
	g_free(tmp);
	g_free(path);
	return r;
}

/* Exited (a zombie counts: its files, and so its RAM file's lock, are closed). */
static bool task_dead(const char *path)
{
	char buf[256], *p;
	FILE *f = fopen(path, "re");
	bool dead = true;

	if (!f)
		return true;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')) && p[1] == ' ')
		dead = p[2] == 'Z' || p[2] == 'X';
	fclose(f);
	return dead;
}

/*
 * Every thread of pid has exited: only then are its files closed (they are shared by its
 * threads) and the locks on its RAM file and disks released. A zombie thread-group leader
 * alone says nothing: the other threads may still be on their way out.
 */
static bool process_gone(pid_t pid)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	bool gone = true;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(dir = opendir(path)))
		return true;
	while (gone && (d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat", (int)pid, d->d_name);
		gone = task_dead(path);
	}
	closedir(dir);
	return gone;
}

/* SIGTERM, then SIGKILL after 5 s; false if it outlived 10 s. */
static bool stop_process(pid_t pid)
{
	kill(pid, SIGTERM);
	for (int i = 0; i < 5000; i++) {
		if (process_gone(pid))
			return true;
		if (i == 2500)
			kill(pid, SIGKILL);
		usleep(2000);
	}
	return false;
}

static int prepare(const char *dir, const char *kernel, const char *initrd, const char *append,
		   char **socks, size_t n)
{
	struct hu_vm *vms = g_new0(struct hu_vm, n ? n : 1);
	bool loaded = false;
	double t0, t1, t2, t2b, t3, t4, tm0, tm1;
	bool manifest = false;
	int ret = VMM_EXIT_ERROR;

	if (!n) {
		g_free(vms);
		return say("prepare: no VM named (give their API sockets)");
	}
	if (g_mkdir_with_parents(dir, 0700) < 0) {
		g_free(vms);
		return say("--state-dir %s: %s", dir, strerror(errno));
	}
	/* Absolute: each vmm writes its state there, whatever its working directory. */
	char *abs_dir = realpath(dir, NULL);
	if (!abs_dir) {
		g_free(vms);
		return say("--state-dir %s: %s", dir, strerror(errno));
	}
	dir = abs_dir;
	/* 1. The next kernel first: if it cannot be loaded, nothing is touched. */
	if (kernel) {
		char err[512], *cmd = append ? g_strdup(append) : NULL;
		int r;

		if (!cmd) {
			gchar *proc = NULL;

			if (!g_file_get_contents("/proc/cmdline", &proc, NULL, NULL) ||
			    !(cmd = kexec_cmdline_reuse(proc, NULL))) {
				g_free(proc);
				g_free(vms);
				free(abs_dir);
				return say("cannot read /proc/cmdline: give --kexec-append; no VM was "
					   "touched");
			}
			g_free(proc);
		}
		r = kexec_load_file(kernel, initrd, cmd, err, sizeof(err));
		free(cmd);
		if (r < 0) {
			g_free(vms);
			free(abs_dir);
			return say("%s; no VM was touched", err);
		}
		loaded = true;
	}
	/* 2. Every VM must be one that can be carried over. */
	for (size_t i = 0; i < n; i++) {
		vms[i].sock = g_strdup(socks[i]);
		if (vm_inspect(&vms[i], dir, loaded) < 0)
			goto fail;
		/* Each state file is named by its VM's id (--id). */
		for (size_t j = 0; j < i; j++) {
			if (!strcmp(vms[i].id, vms[j].id)) {
				say("%s and %s are both '%s': give the VMs ids of their own (--id)",
				    vms[j].sock, vms[i].sock, vms[i].id);
				goto fail;
			}
		}
	}
	/* What the new kernel's resume needs, before any pause (it says nothing the pause
	 * changes); removed if anything fails from here on. */
	tm0 = now_ms();
	if (write_manifest(dir, vms, n) < 0)
		goto fail;
	manifest = true;
	tm1 = now_ms();
	/* 3. LUO's first stage while the guests run: RAM preserved (pinned, every page). */
	for (size_t i = 0; i < n; i++) {
		json_t *b = vms[i].luo ? json_pack("{s:s}", "session", vms[i].luo) : NULL;
		char *body = b ? json_dumps(b, 0) : NULL;
		int r = body ? call(&vms[i], "PUT", "/snapshot/luo", body, 204, NULL) : 0;

		free(body);
		json_decref(b);
		if (r < 0)
			goto fail;
		vms[i].luo_ram = vms[i].luo && vms[i].running;
	}
	/* All paused, then each snapshotted in place or its state preserved by LUO (a VM that
	 * was paused already had both preserved just now). */
	t0 = now_ms();
	for (size_t i = 0; i < n; i++) {
		if (!vms[i].running)
			continue;
		if (call(&vms[i], "PATCH", "/vm", "{\"state\": \"Paused\"}", 204, NULL) < 0)
			goto fail;
		vms[i].paused = true;
	}
	t1 = now_ms();
	for (size_t i = 0; i < n; i++) {
		bool luo = vms[i].luo;

		if (luo && !vms[i].running)
			continue;
		json_t *b = luo ? json_pack("{s:s}", "session", vms[i].luo)
				: json_pack("{s:s, s:s, s:s}", "snapshot_type", "Full",
					    "snapshot_path", vms[i].state, "mem_file_path",
					    vms[i].mem);
		char *body = b ? json_dumps(b, 0) : NULL;
		int r = body ? call(&vms[i], "PUT", luo ? "/snapshot/luo" : "/snapshot/create", body,
				    204, NULL)
			     : -1;

		free(body);
		json_decref(b);
		if (r < 0)
			goto fail;
	}
	t2 = now_ms();
	t2b = now_ms();
	/*
	 * Without a kexec the processes go: the host is rebooted by other means. With one they
	 * stay, paused, until the kernel goes (their exit took 130 ms in the test host), and if
	 * the kexec fails they simply run on.
	 */
	if (!loaded) {
		for (size_t i = 0; i < n; i++) {
			if (!stop_process(vms[i].pid))
				say("vm %s: its vmm (pid %d) outlived SIGKILL", vms[i].id,
				    (int)vms[i].pid);
		}
	}
	t3 = now_ms();
	sync(); /* the disk images' writes, and anything else, before the kernel goes */
	t4 = now_ms();
	for (size_t i = 0; i < n; i++) {
		if (vms[i].luo)
			printf("vm %s: RAM and state preserved in LUO session %s\n", vms[i].id,
			       vms[i].luo);
		else
			printf("vm %s: saved to %s, RAM in %s\n", vms[i].id, vms[i].state,
			       vms[i].mem);
	}
	printf("hostupdate: %zu VM(s): pause %.1f ms, states saved %.1f ms, sync %.1f ms (before "
	       "the pause: manifest %.1f ms)", n, t1 - t0, t2 - t1, t4 - t3, tm1 - tm0);
	if (!loaded)
		printf(", processes stopped %.1f ms", t3 - t2b);
	printf("\n");
	fflush(stdout);
	ret = VMM_EXIT_OK;
	if (loaded) {
		int r;

		printf("hostupdate: kexec now, %.1f ms after the start, %.1f ms after the pause "
		       "began\n", now_ms() - t_start, now_ms() - t0);
		fflush(stdout);
		/* Our own report too, when it goes to a file: the page cache does not survive. */
		(void)fsync(STDOUT_FILENO);
		r = kexec_reboot();
		/* Back here: the kexec did not happen. The VMs run on, and no resume may start
		 * them a second time. */
		say("the kexec failed: %s", strerror(-r));
		ret = VMM_EXIT_ERROR;
		goto fail;
	}
	goto out;
fail:
	/* No resume may start them a second time. */
	if (manifest) {
		char *path = g_strdup_printf("%s/manifest.json", dir);

		if (unlink(path) < 0)
			say("%s: %s (remove it before any 'vmm hostupdate resume')", path,
			    strerror(errno));
		g_free(path);
	}
	resume_paused(vms, n);
	if (loaded)
		(void)kexec_unload();
	say("nothing was carried over: every VM goes on as it was");
out:
	for (size_t i = 0; i < n; i++)
		vm_free(&vms[i]);
	g_free(vms);
	free(abs_dir);
	return ret;
}

/*
 * A datagram socket in the abstract namespace on which a restoring vmm says READY=1
 * (sd_notify's protocol, NOTIFY_SOCKET): the moment its VM is back, with no polling.
 */
static int notify_socket(char *env, size_t envlen, size_t i)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int n = snprintf(sa.sun_path + 1, sizeof(sa.sun_path) - 1, "vmm-hostupdate-%d-%zu",
			 (int)getpid(), i);

	if (s < 0)
		return -1;
	if (bind(s, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
							   1 + (size_t)n)) < 0) {
		close(s);
		return -1;
	}
	snprintf(env, envlen, "NOTIFY_SOCKET=@%s", sa.sun_path + 1);
	return s;
}

/* READY=1 from the child pid on s within secs: 0; -1 if it exited or did not say it. */
static int wait_ready(int s, pid_t pid, int secs)
{
	for (double end = now_ms() + secs * 1000.0; now_ms() < end;) {
		struct pollfd p = { .fd = s, .events = POLLIN };
		char buf[256];
		ssize_t n;

		if (poll(&p, 1, 100) > 0 && (n = recv(s, buf, sizeof(buf) - 1, 0)) > 0) {
			buf[n] = '\0';
			if (strstr(buf, "READY=1"))
				return 0;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
	}
	return -1;
}

/* The environment for a child: ours, with NOTIFY_SOCKET replaced by env. */
static char **child_env(char *env)
{
	size_t n = 0, k = 0;
	char **out;

	while (environ[n])
		n++;
	out = g_new0(char *, n + 2);
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "NOTIFY_SOCKET=", 14))
			out[k++] = environ[i];
	}
	out[k] = env;
	return out;
}

/* The socket answers GET / with the wanted state. */
static bool in_state(const char *sock, const char *want)
{
	struct api_reply rep;
	char err[256];
	bool ok = false;

	if (api_call(sock, "GET", "/", NULL, 5000, &rep, err, sizeof(err)) == 0) {
		json_t *j = json_loads(rep.body, 0, NULL);
		const char *st = j ? json_string_value(json_object_get(j, "state")) : NULL;

		ok = st && !strcmp(st, want);
		json_decref(j);
		free(rep.body);
	}
	return ok;
}

static int resume(const char *dir, const char *vmm)
{
	char *path = g_strdup_printf("%s/manifest.json", dir);
	char *done = g_strdup_printf("%s/manifest.json.done", dir);
	json_error_t je;
	json_t *a = json_load_file(path, 0, &je), *e;
	size_t i, bad = 0;
	double t0 = now_ms();
	int ret;

	if (!a || !json_is_array(a)) {
		ret = say("%s: %s", path, a ? "not a list of VMs" : je.text);
		goto out;
	}
	json_array_foreach(a, i, e) {
		const char *id = json_string_value(json_object_get(e, "id"));
		const char *sock = json_string_value(json_object_get(e, "socket"));
		const char *state = json_string_value(json_object_get(e, "state"));
		const char *mem = json_string_value(json_object_get(e, "mem"));
		const char *luo = json_string_value(json_object_get(e, "luo"));
		json_t *run = json_object_get(e, "running");
		posix_spawn_file_actions_t fa;
		posix_spawnattr_t at;
		char *log, env[128], **envp;
		pid_t pid;
		int r, ns;

		if (!id || !config_id_valid(id) || !sock || !json_is_boolean(run) ||
		    !(luo ? luo_name_valid(luo) && !state && !mem : state && mem)) {
			say("%s: entry %zu is malformed", path, i);
			bad++;
			continue;
		}
		char *argv_file[] = { (char *)vmm, "restore", (char *)state, "--mem", (char *)mem,
				      "--api-sock", (char *)sock, "--id", (char *)id,
				      json_is_true(run) ? NULL : "--paused", NULL };
		char *argv_luo[] = { (char *)vmm, "restore", "--luo-session", (char *)luo,
				     "--api-sock", (char *)sock, "--id", (char *)id,
				     json_is_true(run) ? NULL : "--paused", NULL };
		char **argv = luo ? argv_luo : argv_file;
		log = g_strdup_printf("%s/%s.console", dir, id);
		ns = notify_socket(env, sizeof(env), i);
		envp = ns >= 0 ? child_env(env) : NULL;
		posix_spawn_file_actions_init(&fa);
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
		posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		posix_spawn_file_actions_adddup2(&fa, 1, 2);
		posix_spawnattr_init(&at);
		posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
		r = ns < 0 ? errno : posix_spawn(&pid, vmm, &fa, &at, argv, envp);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
		g_free(envp);
		if (r) {
			say("vm %s: cannot start %s: %s", id, vmm, strerror(r));
			bad++;
		} else if (wait_ready(ns, pid, 30) < 0 ||
			   !in_state(sock, json_is_true(run) ? "Running" : "Paused")) {
			say("vm %s: not back within 30 s (see %s)", id, log);
			bad++;
		} else {
			printf("vm %s: restored, pid %d, console in %s\n", id, (int)pid, log);
		}
		if (ns >= 0)
			close(ns);
		g_free(log);
	}
	printf("hostupdate: %zu VM(s) restored in %.1f ms, %zu failed\n", json_array_size(a) - bad,
	       now_ms() - t0, bad);
	/* Done: a second resume does not start them twice. */
	if (!bad && rename(path, done) < 0)
		say("%s: %s", path, strerror(errno));
	ret = bad ? VMM_EXIT_ERROR : VMM_EXIT_OK;
out:
	json_decref(a);
	g_free(path);
	g_free(done);
	return ret;
}

int hostupdate_main(int argc, char **argv)
{
	gchar *dir = NULL, *kernel = NULL, *initrd = NULL, *append = NULL, *vmm = NULL;
	gchar **rest = NULL;
	GOptionEntry entries[] = {
		{ "state-dir", 'd', 0, G_OPTION_ARG_FILENAME, &dir,
		  "where the VMs' states and the manifest go (required)", "DIR" },
		{ "kexec-kernel", 0, 0, G_OPTION_ARG_FILENAME, &kernel,
		  "prepare: load this kernel with kexec first, and kexec into it at the end",
		  "PATH" },
		{ "kexec-initrd", 0, 0, G_OPTION_ARG_FILENAME, &initrd, "its initrd", "PATH" },
		{ "kexec-append", 0, 0, G_OPTION_ARG_STRING, &append,
		  "its command line (default: the running kernel's)", "STR" },
		{ "vmm", 0, 0, G_OPTION_ARG_FILENAME, &vmm,
		  "resume: the vmm to restore with (default: this one)", "PATH" },
		{ G_OPTION_REMAINING, 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &rest, NULL, NULL },
		{ NULL },
	};
	GOptionContext *ctx;

	t_start = now_ms();
	g_set_prgname("vmm hostupdate");
	ctx = g_option_context_new("prepare SOCKET... | resume");
	GError *gerr = NULL;
	int ret;

	g_option_context_set_summary(ctx, "Carry running VMs across a host kernel update (kexec): "
				     "their RAM stays in its files, their state is saved beside "
				     "them and restored on the new kernel.");
	g_option_context_add_main_entries(ctx, entries, NULL);
	if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
		fprintf(stderr, "vmm hostupdate: %s\n", gerr->message);
		g_error_free(gerr);
		ret = VMM_EXIT_USAGE;
		goto out;
	}
	if (!rest || !rest[0] || (strcmp(rest[0], "prepare") && strcmp(rest[0], "resume"))) {
		fprintf(stderr, "vmm hostupdate: say prepare or resume (try: vmm hostupdate --help)\n");
		ret = VMM_EXIT_USAGE;
		goto out;
	}
	if (!dir) {
		fprintf(stderr, "vmm hostupdate: --state-dir is required\n");
		ret = VMM_EXIT_USAGE;
		goto out;
	}
	if (!strcmp(rest[0], "prepare")) {
		if (vmm || (!kernel && (initrd || append))) {
			fprintf(stderr, "vmm hostupdate: %s\n", vmm ? "--vmm is for resume"
						: "--kexec-initrd and --kexec-append need --kexec-kernel");
			ret = VMM_EXIT_USAGE;
			goto out;
		}
		ret = prepare(dir, kernel, initrd, append, rest + 1, g_strv_length(rest + 1));
	} else {
		char self[4096];
		ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);

		if (kernel || initrd || append || rest[1]) {
			fprintf(stderr, "vmm hostupdate: resume takes only --state-dir and --vmm\n");
			ret = VMM_EXIT_USAGE;
			goto out;
		}
		if (!vmm && k <= 0) {
			ret = say("cannot tell where this vmm is: give --vmm");
			goto out;
		}
		if (k > 0)
			self[k] = '\0';
		ret = resume(dir, vmm ? vmm : self);
	}
out:
	g_option_context_free(ctx);
	g_free(dir);
	g_free(kernel);
	g_free(initrd);
	g_free(append);
	g_free(vmm);
	g_strfreev(rest);
	return ret;
}
