// SPDX-License-Identifier: Apache-2.0
/*
 * libvmm's VM lifecycle through its public header only (vmm.h). Without arguments: the
 * transitions that need no guest (everything before a start is refused with one line, a start
 * that fails leaves the VM startable). With a micro-guest kernel as argument (the guest
 * suite): pause/resume of a running guest (its output stops, the process uses no CPU, it goes
 * on without a gap), idempotent pause and resume, two VMs at once with their own outcomes and
 * log lines, a rebooting guest with restart whose timeout still fires, a stop during restarts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vmm.h"

static const char *kernel; /* the micro-guest, argv[1] */

struct events {
	pthread_mutex_t lock;
	enum vmm_event ev[64];
	unsigned int n;
	unsigned int restarts;
	char log[4096];
};

static void on_event(void *opaque, struct vmm_vm *vm, enum vmm_event ev,
		     const struct vmm_outcome *o)
{
	struct events *e = opaque;

	pthread_mutex_lock(&e->lock);
	if (ev == VMM_EVENT_RESTARTED)
		e->restarts++;
	else if (e->n < 64)
		e->ev[e->n++] = ev;
	pthread_mutex_unlock(&e->lock);
}

static void on_log(void *opaque, enum vmm_log_level level, const char *line)
{
	struct events *e = opaque;
	size_t n;

	pthread_mutex_lock(&e->lock);
	n = strlen(e->log);
	snprintf(e->log + n, sizeof(e->log) - n, "%s\n", line);
	pthread_mutex_unlock(&e->lock);
}

static void events_init(struct events *e)
{
	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- no guest needed ---- */

static void test_before_start(void **state)
{
	struct vmm_config *c = vmm_config_new();
	struct vmm_vm *vm;
	struct vmm_error e;
	struct vmm_outcome o;
	(void)state;

	assert_int_equal(vmm_vm_create(c, NULL, &vm, &e), 0);
	assert_int_equal(vmm_vm_state(vm), VMM_STATE_CREATED);
	assert_string_equal(vmm_state_name(VMM_STATE_CREATED), "Not started");
	assert_int_equal(vmm_vm_pause(vm, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not started"));
	assert_int_equal(vmm_vm_resume(vm, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "not started"));
	assert_int_equal(vmm_vm_stop(vm, &e), -EINVAL);
	assert_int_equal(vmm_vm_send_ctrl_alt_del(vm, &e), -EINVAL);
	assert_int_equal(vmm_vm_wait(vm, &o), -EINVAL);
	/* No kernel: refused, and the VM can still be configured and started. */
	assert_int_equal(vmm_vm_start(vm, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "kernel"));
	assert_int_equal(vmm_vm_state(vm), VMM_STATE_CREATED);
	vmm_vm_destroy(vm);

	/* A kernel file that is not there: named, state unchanged. */
	assert_int_equal(vmm_config_set_kernel(c, "/nonexistent/bzImage", &e), 0);
	assert_int_equal(vmm_vm_create(c, NULL, &vm, &e), 0);
	assert_true(vmm_vm_start(vm, &e) < 0);
	assert_non_null(strstr(e.msg, "/nonexistent/bzImage"));
	assert_int_equal(vmm_vm_state(vm), VMM_STATE_CREATED);
	vmm_vm_destroy(vm);
	vmm_config_free(c);
}

static void test_outcome_status(void **state)
{
	struct vmm_outcome o = { .reason = VMM_STOP_DEBUG_EXIT, .code = 5 };
	(void)state;

	assert_int_equal(vmm_outcome_status(&o), 11);
	o.reason = VMM_STOP_SIGNAL;
	o.code = 15;
	assert_int_equal(vmm_outcome_status(&o), 143);
	o.reason = VMM_STOP_TIMEOUT;
	assert_int_equal(vmm_outcome_status(&o), 124);
	o.reason = VMM_STOP_PANIC;
	assert_int_equal(vmm_outcome_status(&o), 100);
	o.reason = VMM_STOP_POWEROFF;
	assert_int_equal(vmm_outcome_status(&o), 0);
	o.reason = VMM_STOP_ERROR;
	assert_int_equal(vmm_outcome_status(&o), 1);
}

/* ---- with a guest ---- */

static struct vmm_config *guest_config(const char *cmdline, int out_fd)
{
	struct vmm_config *c = vmm_config_new();
	struct vmm_error e;

	assert_int_equal(vmm_config_set_kernel(c, kernel, &e), 0);
	assert_int_equal(vmm_config_set_cmdline(c, cmdline, &e), 0);
	assert_int_equal(vmm_config_set_memory(c, 64 << 20, &e), 0);
	assert_int_equal(vmm_config_set_console(c, VMM_CONSOLE_SERIAL, -1, out_fd, false, &e), 0);
	return c;
}

/* Everything the guest printed so far (appended to buf), waiting up to ms for more. */
static size_t drain(int fd, char *buf, size_t cap, size_t len, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (poll(&p, 1, ms) > 0) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		ms = 0;
	}
	return len;
}

static unsigned int last_tick(const char *buf)
{
	const char *p = buf, *q;
	unsigned int n = 0;

	while ((q = strstr(p, "TICK "))) {
		n = (unsigned int)strtoul(q + 5, NULL, 10);
		p = q + 5;
	}
	return n;
}

/* Every TICK from 1 to the last, each once, in order. */
static void check_ticks(const char *buf)
{
	const char *p = buf, *q;
	unsigned int want = 1;

	while ((q = strstr(p, "TICK "))) {
		unsigned int n = (unsigned int)strtoul(q + 5, NULL, 10);

		if (n != want)
			fail_msg("TICK %u where TICK %u was due", n, want);
		want++;
		p = q + 5;
	}
}

static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void test_pause_resume(void **state)
{
	static char buf[1 << 16];
	struct events ev;
	struct vmm_callbacks cb = { on_event, on_log, &ev };
	struct vmm_vm *vm;
	struct vmm_error e;
	struct vmm_outcome o;
	int pfd[2];
	size_t len = 0;
	(void)state;

	events_init(&ev);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	struct vmm_config *c = guest_config("t.scenario=tick t.cycles=20000000", pfd[1]);
	assert_int_equal(vmm_vm_create(c, &cb, &vm, &e), 0);
	assert_int_equal(vmm_vm_start(vm, &e), 0);
	assert_int_equal(vmm_vm_state(vm), VMM_STATE_RUNNING);
	assert_int_equal(vmm_vm_start(vm, &e), -EINVAL); /* once */

	/* Running: ticks come. */
	double t0 = now_s();
	while (last_tick(buf) < 5 && now_s() - t0 < 20)
		len = drain(pfd[0], buf, sizeof(buf), len, 100);
	assert_true(last_tick(buf) >= 5);

	/* Paused: no tick, and (the guest's vCPU parked) next to no CPU time. */
	assert_int_equal(vmm_vm_pause(vm, &e), 0);
	assert_int_equal(vmm_vm_state(vm), VMM_STATE_PAUSED);
	assert_int_equal(vmm_vm_pause(vm, &e), 0); /* idempotent, as Firecracker's */
	len = drain(pfd[0], buf, sizeof(buf), len, 50); /* a line already on its way */
	unsigned int at_pause = last_tick(buf);
	double cpu0 = cpu_seconds();
	len = drain(pfd[0], buf, sizeof(buf), len, 800);
	double cpu = cpu_seconds() - cpu0;
	assert_int_equal(last_tick(buf), at_pause);
	if (cpu > 0.08)
		fail_msg("paused for 0.8 s, the process used %.3f s of CPU", cpu);

	/* Resumed: it goes on where it stopped. */
	assert_int_equal(vmm_vm_resume(vm, &e), 0);
	assert_int_equal(vmm_vm_resume(vm, &e), 0);
	t0 = now_s();
	while (last_tick(buf) < at_pause + 5 && now_s() - t0 < 20)
		len = drain(pfd[0], buf, sizeof(buf), len, 100);
	assert_true(last_tick(buf) >= at_pause + 5);
	check_ticks(buf);

	/* Stopped on request while paused, too. */
	assert_int_equal(vmm_vm_pause(vm, &e), 0);
	assert_int_equal(vmm_vm_stop(vm, &e), 0);
	assert_int_equal(vmm_vm_wait(vm, &o), 0);
	assert_int_equal(o.reason, VMM_STOP_REQUEST);
	assert_int_equal(vmm_vm_state(vm), VMM_STATE_STOPPED);
	assert_int_equal(vmm_vm_resume(vm, &e), -EINVAL);
	assert_int_equal(vmm_vm_pause(vm, &e), -EINVAL);
	vmm_vm_destroy(vm);
	vmm_config_free(c);

	static const enum vmm_event want[] = {
		VMM_EVENT_STARTED, VMM_EVENT_PAUSED, VMM_EVENT_RESUMED, VMM_EVENT_PAUSED,
		VMM_EVENT_STOPPED,
	};
	assert_int_equal(ev.n, sizeof(want) / sizeof(want[0]));
	for (unsigned int i = 0; i < ev.n; i++)
		assert_int_equal(ev.ev[i], want[i]);
	close(pfd[0]);
	close(pfd[1]);
}

/* Two VMs in one process: each its own outcome and its own log lines. */
static void test_two_vms(void **state)
{
	char dir[] = "/tmp/vmm-two-XXXXXX", img[128];
	struct events ev_a, ev_b;
	struct vmm_callbacks cb_a = { on_event, on_log, &ev_a }, cb_b = { on_event, on_log, &ev_b };
	struct vmm_vm *a, *b;
	struct vmm_error e;
	struct vmm_outcome oa, ob;
	struct vmm_disk d;
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	(void)state;

	events_init(&ev_a);
	events_init(&ev_b);
	/* VM a gets a disk whose size is not whole sectors: a warning in its log only. */
	assert_non_null(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/odd.img", dir);
	int fd = open(img, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 4096 + 100), 0);
	close(fd);
	struct vmm_config *ca = guest_config("t.scenario=exit t.code=5", null);
	struct vmm_config *cb2 = guest_config("t.scenario=exit t.code=7", null);
	vmm_disk_init(&d);
	d.id = "odd";
	d.path = img;
	assert_int_equal(vmm_config_put_disk(ca, &d, &e), 0);
	assert_int_equal(vmm_vm_create(ca, &cb_a, &a, &e), 0);
	assert_int_equal(vmm_vm_create(cb2, &cb_b, &b, &e), 0);
	assert_int_equal(vmm_vm_start(a, &e), 0);
	assert_int_equal(vmm_vm_start(b, &e), 0);
	assert_int_equal(vmm_vm_wait(b, &ob), 0);
	assert_int_equal(vmm_vm_wait(a, &oa), 0);
	assert_int_equal(oa.reason, VMM_STOP_DEBUG_EXIT);
	assert_int_equal(oa.code, 5);
	assert_int_equal(vmm_outcome_status(&oa), 11);
	assert_int_equal(ob.reason, VMM_STOP_DEBUG_EXIT);
	assert_int_equal(ob.code, 7);
	assert_non_null(strstr(ev_a.log, "disk 'odd'"));
	assert_null(strstr(ev_b.log, "disk 'odd'"));
	vmm_vm_destroy(a);
	vmm_vm_destroy(b);
	vmm_config_free(ca);
	vmm_config_free(cb2);
	unlink(img);
	rmdir(dir);
	close(null);
}

/* A guest that reboots at once, with restart: the timeout covers the whole run. */
static void test_restart_timeout(void **state)
{
	struct events ev;
	struct vmm_callbacks cb = { on_event, on_log, &ev };
	struct vmm_vm *vm;
	struct vmm_error e;
	struct vmm_outcome o;
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	(void)state;

	events_init(&ev);
	struct vmm_config *c = guest_config("t.scenario=reset", null);
	assert_int_equal(vmm_config_set_on_reboot(c, VMM_ON_REBOOT_RESTART, &e), 0);
	assert_int_equal(vmm_config_set_timeout(c, 2, &e), 0);
	assert_int_equal(vmm_vm_create(c, &cb, &vm, &e), 0);
	double t0 = now_s();
	assert_int_equal(vmm_vm_start(vm, &e), 0);
	assert_int_equal(vmm_vm_wait(vm, &o), 0);
	double took = now_s() - t0;
	assert_int_equal(o.reason, VMM_STOP_TIMEOUT);
	if (took > 10)
		fail_msg("a 2 s timeout took %.1f s", took);
	if (ev.restarts < 2)
		fail_msg("only %u restarts in %.1f s", ev.restarts, took);
	vmm_vm_destroy(vm);

	/* A stop asked for while the guest keeps rebooting is never lost. */
	assert_int_equal(vmm_config_set_timeout(c, 0, &e), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(vmm_vm_create(c, &cb, &vm, &e), 0);
		assert_int_equal(vmm_vm_start(vm, &e), 0);
		usleep((useconds_t)(i * 3000));
		assert_int_equal(vmm_vm_stop_with(vm, VMM_STOP_SIGNAL, 15, "terminated"), 0);
		assert_int_equal(vmm_vm_wait(vm, &o), 0);
		assert_int_equal(o.reason, VMM_STOP_SIGNAL);
		assert_int_equal(vmm_outcome_status(&o), 143);
		vmm_vm_destroy(vm);
	}
	vmm_config_free(c);
	close(null);
}

/* Snapshot a ticking guest, destroy its VM, restore it in a new one: it goes on, no gap. */
static void test_snapshot_restore(void **state)
{
	static char buf[1 << 16];
	char dir[] = "/tmp/vmm-snap-XXXXXX", st_path[128], mem_path[128];
	struct vmm_vm *vm;
	struct vmm_error e;
	struct vmm_outcome o;
	int pfd[2];
	size_t len = 0;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(st_path, sizeof(st_path), "%s/vm.state", dir);
	snprintf(mem_path, sizeof(mem_path), "%s/vm.mem", dir);
	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	struct vmm_config *c = guest_config("t.scenario=tick t.cycles=20000000", pfd[1]);
	assert_int_equal(vmm_vm_create(c, NULL, &vm, &e), 0);
	assert_int_equal(vmm_vm_start(vm, &e), 0);
	/* Not while running. */
	assert_int_equal(vmm_vm_snapshot(vm, st_path, mem_path, VMM_SNAPSHOT_FULL, &e), -EINVAL);
	assert_non_null(strstr(e.msg, "pause it first"));
	double t0 = now_s();
	while (last_tick(buf) < 5 && now_s() - t0 < 20)
		len = drain(pfd[0], buf, sizeof(buf), len, 100);
	assert_int_equal(vmm_vm_pause(vm, &e), 0);
	len = drain(pfd[0], buf, sizeof(buf), len, 50);
	unsigned int at_snap = last_tick(buf);
	if (vmm_vm_snapshot(vm, st_path, mem_path, VMM_SNAPSHOT_FULL, &e) < 0)
		fail_msg("snapshot: %s", e.msg);
	vmm_vm_destroy(vm);

	/* A new VM from the files alone. */
	struct vmm_config *c2 = vmm_config_new();
	assert_int_equal(vmm_config_set_console(c2, VMM_CONSOLE_SERIAL, -1, pfd[1], false, &e), 0);
	assert_int_equal(vmm_vm_create(c2, NULL, &vm, &e), 0);
	if (vmm_vm_restore(vm, st_path, mem_path, VMM_RESTORE_RESUME, &e) < 0)
		fail_msg("restore: %s", e.msg);
	assert_int_equal(vmm_vm_state(vm), VMM_STATE_RUNNING);
	t0 = now_s();
	while (last_tick(buf) < at_snap + 5 && now_s() - t0 < 20)
		len = drain(pfd[0], buf, sizeof(buf), len, 100);
	assert_true(last_tick(buf) >= at_snap + 5);
	check_ticks(buf);
	assert_int_equal(vmm_vm_stop(vm, &e), 0);
	assert_int_equal(vmm_vm_wait(vm, &o), 0);
	vmm_vm_destroy(vm);
	vmm_config_free(c);
	vmm_config_free(c2);
	unlink(st_path);
	unlink(mem_path);
	rmdir(dir);
	close(pfd[0]);
	close(pfd[1]);
}

/* SendCtrlAltDel: the scan codes reach the guest's i8042. */
static void test_ctrl_alt_del(void **state)
{
	static char buf[4096];
	struct vmm_vm *vm;
	struct vmm_error e;
	struct vmm_outcome o;
	int pfd[2];
	size_t len = 0;
	(void)state;

	assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
	struct vmm_config *c = guest_config("t.scenario=cad", pfd[1]);
	assert_int_equal(vmm_vm_create(c, NULL, &vm, &e), 0);
	assert_int_equal(vmm_vm_start(vm, &e), 0);
	double t0 = now_s();
	while (!strstr(buf, "READY") && now_s() - t0 < 20)
		len = drain(pfd[0], buf, sizeof(buf), len, 100);
	assert_int_equal(vmm_vm_send_ctrl_alt_del(vm, &e), 0);
	assert_int_equal(vmm_vm_wait(vm, &o), 0);
	len = drain(pfd[0], buf, sizeof(buf), len, 100);
	assert_int_equal(o.reason, VMM_STOP_DEBUG_EXIT);
	if (o.code != 0x2a)
		fail_msg("guest said: %s", buf);
	vmm_vm_destroy(vm);
	vmm_config_free(c);
	close(pfd[0]);
	close(pfd[1]);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_before_start),
		cmocka_unit_test(test_outcome_status),
	};
	/* These need /dev/kvm and the micro-guest: only the guest suite passes its path. */
	const struct CMUnitTest with_guest[] = {
		cmocka_unit_test(test_pause_resume),
		cmocka_unit_test(test_two_vms),
		cmocka_unit_test(test_restart_timeout),
		cmocka_unit_test(test_ctrl_alt_del),
		cmocka_unit_test(test_snapshot_restore),
	};

	kernel = argc > 1 ? argv[1] : NULL;
	if (!kernel)
		return cmocka_run_group_tests(pure, NULL, NULL);
	return cmocka_run_group_tests(with_guest, NULL, NULL);
}
