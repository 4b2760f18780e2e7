// SPDX-License-Identifier: Apache-2.0
/*
 * vmm: the command-line front end of libvmm, and the only place that calls exit(). It turns
 * argv (or a Firecracker config file) into a configuration, owns the terminal and the
 * process's signals, serves the API socket when asked, and exits with the status the outcome
 * calls for (README). Everything else is the library's.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "hostupdate.h"
#include "vmm/cli.h"
#include "vmm/term.h"
#include "vmm/vmm.h"

struct front {
	int stopped_efd; /* the VM stopped (written from a libvmm thread) */
	bool tty_out;
};

static void on_event(void *opaque, struct vmm_vm *vm, enum vmm_event ev,
		     const struct vmm_outcome *o)
{
	struct front *f = opaque;
	uint64_t one = 1;

	if (ev == VMM_EVENT_STOPPED && write(f->stopped_efd, &one, sizeof(one)) < 0) {
		/* cannot overflow with one write */
	}
}

static void on_log(void *opaque, enum vmm_log_level level, const char *line)
{
	struct front *f = opaque;

	/* The terminal's output side stays cooked, but the guest may have left the cursor
	 * mid-line: on a terminal start our line at its beginning. */
	fprintf(stderr, "%svmm: %s\n", f->tty_out ? "\r" : "", line);
}

static void print_outcome(const struct vmm_outcome *o)
{
	const char *what = NULL;

	switch (o->reason) {
	case VMM_STOP_PANIC:
		what = "guest panic reported through pvpanic";
		break;
	case VMM_STOP_TRIPLE_FAULT:
	case VMM_STOP_FATAL:
	case VMM_STOP_TIMEOUT:
	case VMM_STOP_SIGNAL:
	case VMM_STOP_ERROR:
		what = o->msg[0] ? o->msg : "stopped";
		break;
	default:
		return; /* the guest chose to stop: nothing to say */
	}
	/* After guest output that may not end its line: a fresh line on a terminal only, so that
	 * a log file gets no empty line. */
	fprintf(stderr, "%svmm: %s\n", isatty(STDERR_FILENO) ? "\r\n" : "", what);
}

static const char *signal_text(int sig)
{
	switch (sig) {
	case SIGINT:
		return "interrupted (SIGINT)";
	case SIGTERM:
		return "terminated (SIGTERM)";
	case SIGHUP:
		return "hangup (SIGHUP)";
	default:
		return "stopped by a signal";
	}
}

/* What this front end passes to its successor in a live update (vmm_vm_set_front_data). */
struct front_data {
	uint32_t version; /* 1 */
	uint32_t has_termios;
	struct termios tio; /* the terminal's mode from before it went raw */
};

static void front_data_give(struct vmm_vm *vm)
{
	struct front_data fd = { .version = 1 };

	fd.has_termios = term_saved(&fd.tio);
	if (vmm_vm_set_front_data(vm, &fd, sizeof(fd)) < 0) {
		/* Out of memory: the successor then leaves the terminal raw at its exit. */
	}
}

static void front_data_take(const void *data, size_t len)
{
	struct front_data fd;

	if (len != sizeof(fd))
		return;
	memcpy(&fd, data, sizeof(fd));
	if (fd.version == 1 && fd.has_termios)
		term_adopt(STDIN_FILENO, &fd.tio);
}

/*
 * Tell a supervisor (systemd's NOTIFY_SOCKET protocol, sd_notify(3): one datagram; its
 * documentation invites reimplementing it rather than linking libsystemd) msg: "READY=1" once
 * the VM runs (or is restored, or the API is up for a VM configured over it), "MAINPID=pid"
 * when a live update made another process the service's main one. vmm hostupdate resume
 * waits for a restore's READY=1 this way.
 */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n;
	int s;

	if (!path || (path[0] != '/' && path[0] != '@') || (n = strlen(path)) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (path[0] == '@')
		sa.sun_path[0] = 0; /* abstract namespace */
	s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	if (sendto(s, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0) {
		/* nobody listens: nothing to tell */
	}
	close(s);
}

/*
 * Wait for the VM to stop, serving signals meanwhile: SIGINT/SIGTERM/SIGHUP stop it (status
 * 128 + n), SIGWINCH resizes a virtio console. With no VM started yet (waiting for the API),
 * a stop signal ends the process at once.
 */
static int main_loop(struct front *f, struct vmm_vm *vm, int sfd, int *status)
{
	struct pollfd pfd[2] = { { .fd = sfd, .events = POLLIN },
				 { .fd = f->stopped_efd, .events = POLLIN } };
	struct vmm_outcome o;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			int sig = (int)si.ssi_signo;
			if (sig == SIGWINCH) {
				struct winsize ws;

				if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
					vmm_vm_console_resize(vm, ws.ws_col, ws.ws_row);
				continue;
			}
			if (vmm_vm_stop_with(vm, VMM_STOP_SIGNAL, sig, signal_text(sig)) < 0 &&
			    vmm_vm_state(vm) == VMM_STATE_CREATED) {
				fprintf(stderr, "vmm: %s\n", signal_text(sig));
				*status = 128 + sig;
				return 0;
			}
		}
		if (pfd[1].revents & POLLIN) {
			if (vmm_vm_wait(vm, &o) == 0) {
				if (o.reason == VMM_STOP_UPDATED) {
					/* The terminal, the socket file and the guest are the new
					 * process's: leave them as they are. */
					term_forget();
					char msg[32];

					snprintf(msg, sizeof(msg), "MAINPID=%d\n", o.code);
					notify(msg);
				}
				print_outcome(&o);
				*status = vmm_outcome_status(&o);
				return 0;
			}
		}
	}
}

static int run(struct cli_opts *o)
{
	struct front f = { .stopped_efd = -1, .tty_out = isatty(STDERR_FILENO) };
	struct vmm_callbacks cb = { .event = on_event, .log = on_log, .opaque = &f };
	struct vmm_api *api = NULL;
	struct vmm_vm *vm = NULL;
	struct vmm_error e = { 0 };
	sigset_t handled;
	int status = VMM_EXIT_ERROR, sfd = -1;

	sigemptyset(&handled);
	sigaddset(&handled, SIGINT);
	sigaddset(&handled, SIGTERM);
	sigaddset(&handled, SIGHUP);
	sigaddset(&handled, SIGWINCH);
	sfd = signalfd(-1, &handled, SFD_CLOEXEC | SFD_NONBLOCK);
	f.stopped_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sfd < 0 || f.stopped_efd < 0) {
		fprintf(stderr, "vmm: %s\n", strerror(errno));
		goto out;
	}
	if (o->handover_fd >= 0) {
		/* A live update's new process: the VM, its console and its API come over fd. */
		struct vmm_receive rv = { .console_in = STDIN_FILENO, .console_out = STDOUT_FILENO };
		int r = vmm_vm_receive(o->handover_fd, &cb, &rv, &e);

		close(o->handover_fd);
		if (r < 0) {
			fprintf(stderr, "vmm: %s\n", e.msg);
			goto out;
		}
		vm = rv.vm;
		api = rv.api;
		front_data_take(rv.front_data, rv.front_len);
		free(rv.front_data);
		front_data_give(vm); /* for the next update */
		goto serve;
	}
	if (o->config_file) {
		if (vmm_config_load_file(&o->cfg, o->config_file, &e) < 0) {
			fprintf(stderr, "vmm: %s\n", e.msg);
			goto out;
		}
		o->boot_now = true;
	}
	bool tty_in = isatty(STDIN_FILENO);
	if (vmm_config_set_console(&o->cfg, o->cfg.console, STDIN_FILENO, STDOUT_FILENO, tty_in,
				   &e) < 0 ||
	    vmm_vm_create(&o->cfg, &cb, &vm, &e) < 0) {
		fprintf(stderr, "vmm: %s\n", e.msg);
		goto out;
	}
	if (o->api_sock && vmm_api_start(vm, o->api_sock, -1, &api, &e) < 0) {
		fprintf(stderr, "vmm: %s\n", e.msg);
		goto out;
	}
	/* Raw before the guest can read a byte; every signal is already taken care of. */
	term_raw_enter(STDIN_FILENO);
	front_data_give(vm);
	unsigned int rflags = (o->restore_paused ? 0 : VMM_RESTORE_RESUME) |
			      (o->restore_track_dirty ? VMM_RESTORE_TRACK_DIRTY : 0);
	if ((o->restore_state &&
	     vmm_vm_restore(vm, o->restore_state, o->restore_mem, rflags, &e) < 0) ||
	    (o->restore_luo && vmm_vm_restore_luo(vm, o->restore_luo, rflags, &e) < 0)) {
		term_restore();
		fprintf(stderr, "vmm: %s\n", e.msg);
		goto out;
	}
	if (o->boot_now && vmm_vm_start(vm, &e) < 0) {
		term_restore();
		fprintf(stderr, "vmm: %s\n", e.msg);
		goto out;
	}
	notify("READY=1\n");
serve:
	if (isatty(STDOUT_FILENO)) {
		struct winsize ws;

		if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
			vmm_vm_console_resize(vm, ws.ws_col, ws.ws_row);
	}
	if (main_loop(&f, vm, sfd, &status) < 0) {
		term_restore();
		fprintf(stderr, "vmm: %s\n", strerror(errno));
		status = VMM_EXIT_ERROR;
	}
out:
	term_restore();
	/* The socket file goes; the VM's disks were closed when it stopped. The KVM VM and its
	 * RAM are left to the process's exit, which tears them down faster than by hand
	 * (bench/boot.sh, teardown row). */
	vmm_api_stop(api);
	if (vm && vmm_vm_state(vm) == VMM_STATE_CREATED)
		vmm_vm_destroy(vm);
	return status;
}

int main(int argc, char **argv)
{
	struct cli_opts o;
	char *err = NULL, *help = NULL;
	sigset_t handled;
	int status;

	/* A tool of its own, which runs no VM and keeps the default signals (Ctrl-C stops it). */
	if (argc >= 2 && !strcmp(argv[1], "hostupdate"))
		return hostupdate_main(argc - 1, argv + 1);
	/* Before anything else, so that no signal finds the terminal raw and unguarded. */
	sigemptyset(&handled);
	sigaddset(&handled, SIGINT);
	sigaddset(&handled, SIGTERM);
	sigaddset(&handled, SIGHUP);
	sigaddset(&handled, SIGWINCH);
	term_signals_setup(&handled);
	/* Started with stdin, stdout or stderr closed: fill the hole so that no eventfd or memfd
	 * of ours becomes "the console". */
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return VMM_EXIT_ERROR;
	}

	if (cli_parse(argc, argv, &o, &err, &help) < 0) {
		fprintf(stderr, "vmm: %s\n", err);
		free(err);
		return VMM_EXIT_USAGE;
	}
	switch (o.cmd) {
	case CLI_HELP:
		fputs(help, stdout);
		free(help);
		cli_opts_free(&o);
		return VMM_EXIT_OK;
	case CLI_VERSION:
		printf("vmm %s\n", vmm_version());
		cli_opts_free(&o);
		return VMM_EXIT_OK;
	case CLI_RUN:
	default:
		break;
	}
	status = run(&o);
	cli_opts_free(&o);
	fflush(stdout);
	exit(status);
}
