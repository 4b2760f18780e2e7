// SPDX-License-Identifier: Apache-2.0
/* vmm: the only place that calls exit(). */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/cli.h"
#include "vmm/term.h"
#include "vmm/vm.h"

static int status_of(const struct vm_outcome *o)
{
	switch (o->reason) {
	case VM_STOP_POWEROFF:
	case VM_STOP_REBOOT:
		return VMM_EXIT_OK;
	case VM_STOP_DEBUG_EXIT:
		/* QEMU isa-debug-exit: the guest writes v, the process exits (v << 1) | 1. */
		return ((o->code << 1) | 1) & 0xff;
	case VM_STOP_PANIC:
		return VMM_EXIT_PANIC;
	case VM_STOP_TRIPLE_FAULT:
		return VMM_EXIT_TRIPLE;
	case VM_STOP_TIMEOUT:
		return VMM_EXIT_TIMEOUT;
	case VM_STOP_SIGNAL:
		return 128 + o->code;
	case VM_STOP_FATAL:
	default:
		return VMM_EXIT_FATAL;
	}
}

static void print_outcome(const struct vm_outcome *o)
{
	const char *what = NULL;

	switch (o->reason) {
	case VM_STOP_PANIC:
		what = "guest panic reported through pvpanic";
		break;
	case VM_STOP_TRIPLE_FAULT:
	case VM_STOP_FATAL:
	case VM_STOP_TIMEOUT:
	case VM_STOP_SIGNAL:
		what = o->msg[0] ? o->msg : "stopped";
		break;
	default:
		return; /* the guest chose to stop: nothing to say */
	}
	fprintf(stderr, "\r\nvmm: %s\n", what);
}

static int cmd_run(const struct vmm_config *cfg)
{
	char err[512] = "";
	struct vm *vm = NULL;
	struct vm_outcome outcome;

	for (;;) {
		int ret = vm_create(cfg, &vm, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "vmm: %s\n", err[0] ? err : strerror(-ret));
			return VMM_EXIT_ERROR;
		}
		term_raw_enter(STDIN_FILENO);
		ret = vm_run(vm, &outcome);
		term_restore();
		if (ret < 0) {
			vm_destroy(vm);
			fprintf(stderr, "vmm: cannot run the VM: %s\n", strerror(-ret));
			return VMM_EXIT_ERROR;
		}
		if (outcome.reason == VM_STOP_REBOOT && cfg->on_reboot == VMM_REBOOT_RESTART) {
			vm_destroy(vm);
			continue;
		}
		/*
		 * The vCPU threads are joined and the console is flushed; the VM itself is left to
		 * the kernel's process exit, which tears it down several times faster than closing
		 * the VM fd and unmapping RAM by hand (bench/boot.sh, teardown row).
		 */
		print_outcome(&outcome);
		return status_of(&outcome);
	}
}

int main(int argc, char **argv)
{
	struct vmm_config cfg;
	enum cli_command cmd;
	char *err = NULL, *help = NULL;
	int status;

	/* A closed pipe on the console must not kill us before the terminal is restored. */
	signal(SIGPIPE, SIG_IGN);
	/* Started with stdin, stdout or stderr closed: fill the hole so that no eventfd or memfd
	 * of ours becomes "the console". */
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			return VMM_EXIT_ERROR;
	}

	if (cli_parse(argc, argv, &cmd, &cfg, &err, &help) < 0) {
		fprintf(stderr, "vmm: %s\n", err);
		g_free(err);
		return VMM_EXIT_USAGE;
	}
	switch (cmd) {
	case CLI_HELP:
		fputs(help, stdout);
		g_free(help);
		return VMM_EXIT_OK;
	case CLI_VERSION:
		printf("vmm %s\n", VMM_VERSION);
		return VMM_EXIT_OK;
	case CLI_RUN:
	default:
		break;
	}
	status = cmd_run(&cfg);
	cli_config_free(&cfg);
	fflush(stdout);
	exit(status);
}
