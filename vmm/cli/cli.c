// SPDX-License-Identifier: Apache-2.0
/* Command line: `vmm run ...`, `vmm --help`, `vmm --version`, parsed with GOption. */
#include <errno.h>
#include <glib.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cli.h"
#include "vmm/layout.h"

#define MAX_CPUS_SYNTAX 254 /* xAPIC IDs 0..254 with the IOAPIC taking one; KVM may allow fewer */

int cli_parse_size(const char *s, uint64_t *out)
{
	const char *p = s;
	uint64_t v = 0;

	if (!s || !*s)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
			return -ERANGE;
	}
	if (p == s)
		return -EINVAL;

	uint64_t mult;
	switch (*p) {
	case '\0':
		mult = MiB; /* as QEMU's -m */
		break;
	case 'k': case 'K': mult = KiB; p++; break;
	case 'm': case 'M': mult = MiB; p++; break;
	case 'g': case 'G': mult = GiB; p++; break;
	case 't': case 'T': mult = 1024 * GiB; p++; break;
	case 'b': case 'B': mult = 1; p++; break;
	default:
		return -EINVAL;
	}
	/* Allow "256MiB" and "256MB" (both binary here). */
	if (mult != 1 && (!strcmp(p, "iB") || !strcmp(p, "B")))
		p += strlen(p);
	if (*p)
		return -EINVAL;
	if (__builtin_mul_overflow(v, mult, &v))
		return -ERANGE;
	*out = v;
	return 0;
}

static void disk_free(struct vmm_disk *d)
{
	g_free(d->path);
	g_free(d->serial);
	memset(d, 0, sizeof(*d));
}

/* Next comma-separated field of a --disk value; ",," is a literal comma (as QEMU's -drive). */
static char *next_field(const char **p)
{
	GString *f = g_string_new(NULL);
	const char *s = *p;

	for (; *s; s++) {
		if (*s == ',') {
			if (s[1] != ',')
				break;
			s++;
		}
		g_string_append_c(f, *s);
	}
	*p = *s ? s + 1 : s;
	return g_string_free(f, FALSE);
}

int cli_parse_disk(const char *spec, struct vmm_disk *d, char **err)
{
	const char *p = spec;
	bool seen_cache = false, seen_io = false, seen_ro = false, seen_poll = false;
	char *f = NULL;

	memset(d, 0, sizeof(*d));
	d->cache = BLK_CACHE_WRITEBACK;
	d->engine = BLK_ENGINE_URING;
	d->poll_us = VMM_DISK_POLL_US;
	d->path = next_field(&p);
	if (!*d->path) {
		*err = g_strdup_printf("--disk: '%s' has no image path (--disk PATH[,ro][,...])",
				       spec);
		goto fail;
	}
	while (*p) {
		f = next_field(&p);
		char *val = strchr(f, '=');
		if (val)
			*val++ = '\0';
		if (!strcmp(f, "ro") || !strcmp(f, "readonly")) {
			if (seen_ro)
				goto dup;
			seen_ro = true;
			if (!val || !strcmp(val, "on") || !strcmp(val, "true"))
				d->read_only = true;
			else if (strcmp(val, "off") && strcmp(val, "false"))
				goto badval;
		} else if (!strcmp(f, "cache")) {
			if (seen_cache)
				goto dup;
			seen_cache = true;
			if (val && !strcmp(val, "none"))
				d->cache = BLK_CACHE_NONE;
			else if (!val || strcmp(val, "writeback"))
				goto badval;
		} else if (!strcmp(f, "io")) {
			if (seen_io)
				goto dup;
			seen_io = true;
			if (!val || blk_engine_parse(val, &d->engine) < 0)
				goto badval;
			d->engine_explicit = true;
		} else if (!strcmp(f, "serial")) {
			if (d->serial)
				goto dup;
			if (!val || strlen(val) > 20) {
				*err = g_strdup_printf("--disk %s: serial must be 1 to 20 characters",
						       d->path);
				goto fail;
			}
			for (const char *c = val; *c; c++) {
				if (*c < 0x20 || *c > 0x7e) {
					*err = g_strdup_printf(
						"--disk %s: serial must be printable ASCII", d->path);
					goto fail;
				}
			}
			if (!*val)
				goto badval;
			d->serial = g_strdup(val);
		} else if (!strcmp(f, "poll")) {
			char *end;
			unsigned long v;

			if (seen_poll)
				goto dup;
			seen_poll = true;
			if (!val || *val < '0' || *val > '9')
				goto badval;
			errno = 0;
			v = strtoul(val, &end, 10);
			if (*end || errno || v > VMM_DISK_POLL_MAX_US)
				goto badval;
			d->poll_us = (unsigned int)v;
		} else {
			*err = g_strdup_printf("--disk %s: unknown option '%s' (known: ro, cache=, io=, "
					       "serial=, poll=)", d->path, f);
			goto fail;
		}
		g_free(f);
		f = NULL;
	}
	return 0;
dup:
	*err = g_strdup_printf("--disk %s: '%s' given twice", d->path, f);
	goto fail;
badval:
	if (!strcmp(f, "cache"))
		*err = g_strdup_printf("--disk %s: cache must be none or writeback", d->path);
	else if (!strcmp(f, "io"))
		*err = g_strdup_printf("--disk %s: io must be uring, aio or sync", d->path);
	else if (!strcmp(f, "poll"))
		*err = g_strdup_printf("--disk %s: poll must be microseconds from 0 (off) to %u",
				       d->path, VMM_DISK_POLL_MAX_US);
	else
		*err = g_strdup_printf("--disk %s: bad value for '%s'", d->path, f);
fail:
	g_free(f);
	disk_free(d);
	return -EINVAL;
}

void cli_config_free(struct vmm_config *cfg)
{
	for (unsigned int i = 0; i < cfg->nr_disks; i++)
		disk_free(&cfg->disks[i]);
	g_free(cfg->kernel);
	g_free(cfg->initrd);
	g_free(cfg->cmdline);
	g_free(cfg->cpuid_mask);
	g_free(cfg->kvm_path);
	memset(cfg, 0, sizeof(*cfg));
}

static const char *top_help =
	"Usage:\n"
	"  vmm run --kernel PATH [OPTION...]   boot a Linux kernel (bzImage or vmlinux ELF)\n"
	"  vmm --help                          this text (vmm run --help lists the run options)\n"
	"  vmm --version                       print the version\n"
	"\n"
	"Exit status of `vmm run`: 0 guest powered off or rebooted; (v << 1) | 1 when the guest wrote v\n"
	"to the debug-exit port; 100 guest panic; 102 triple fault; 104 fatal KVM exit; 124 --timeout\n"
	"expired; 2 usage error; 1 any other error.\n";

static int fail(char **err, char *msg)
{
	*err = msg;
	return -EINVAL;
}

int cli_parse(int argc, char **argv, enum cli_command *cmd, struct vmm_config *cfg, char **err,
	      char **help_text)
{
	*err = NULL;
	*help_text = NULL;
	memset(cfg, 0, sizeof(*cfg));

	if (argc < 2)
		return fail(err, g_strdup("no command given (try: vmm run --kernel PATH, or vmm --help)"));
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		*cmd = CLI_HELP;
		*help_text = g_strdup(top_help);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		*cmd = CLI_VERSION;
		return 0;
	}
	if (strcmp(argv[1], "run"))
		return fail(err, g_strdup_printf("unknown command '%s' (try: vmm --help)", argv[1]));

	gchar *kernel = NULL, *initrd = NULL, *cmdline = NULL, *memory = NULL, *cpuid_mask = NULL;
	gchar *on_reboot = NULL, *kvm_path = NULL, *console = NULL;
	gchar **disks = NULL;
	gint cpus = 1, timeout = 0, debug_exit_port = PORT_DEBUG_EXIT;
	gboolean help = FALSE;
	GOptionEntry entries[] = {
		{ "kernel", 'k', 0, G_OPTION_ARG_FILENAME, &kernel,
		  "Linux kernel: bzImage or vmlinux ELF (required)", "PATH" },
		{ "initrd", 'i', 0, G_OPTION_ARG_FILENAME, &initrd, "initial ramdisk", "PATH" },
		{ "cmdline", 'c', 0, G_OPTION_ARG_STRING, &cmdline,
		  "kernel command line (default \"" VMM_DEFAULT_CMDLINE "\")", "STR" },
		{ "cpus", 'n', 0, G_OPTION_ARG_INT, &cpus, "number of vCPUs (default 1)", "N" },
		{ "memory", 'm', 0, G_OPTION_ARG_STRING, &memory,
		  "guest RAM: 256M, 4G... plain numbers are MiB (default 256M)", "SIZE" },
		{ "timeout", 't', 0, G_OPTION_ARG_INT, &timeout,
		  "stop the guest after SECONDS and exit with 124", "SECONDS" },
		{ "on-reboot", 0, 0, G_OPTION_ARG_STRING, &on_reboot,
		  "what a guest reboot does: exit (status 0, default) or restart", "exit|restart" },
		{ "debug-exit-port", 0, 0, G_OPTION_ARG_INT, &debug_exit_port,
		  "I/O port of the isa-debug-exit compatible device, 0 to disable (default 0xf4)",
		  "PORT" },
		{ "disk", 'd', 0, G_OPTION_ARG_FILENAME_ARRAY, &disks,
		  "virtio-blk disk backed by a raw image or block device (repeatable; /dev/vda, vdb... "
		  "in order). Options: ro, cache=writeback|none (O_DIRECT), io=uring|aio|sync, "
		  "serial=ID, poll=USEC (adaptive busy-polling of the I/O thread up to USEC after "
		  "each event, 0 = off, default 32) (a comma in PATH is written ,,)",
		  "PATH[,ro][,cache=][,io=][,serial=][,poll=]" },
		{ "console", 0, 0, G_OPTION_ARG_STRING, &console,
		  "the guest console: serial (ttyS0, default) or virtio (hvc0)", "serial|virtio" },
		{ "cpuid-mask", 0, 0, G_OPTION_ARG_STRING, &cpuid_mask,
		  "CPU features to hide from the guest, e.g. cx16,clflushopt,clwb,gfni", "LIST" },
		{ "kvm-device", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &kvm_path,
		  "KVM device (default /dev/kvm)", "PATH" },
		{ "help", 'h', 0, G_OPTION_ARG_NONE, &help, "show the run options", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL }
	};
	GOptionContext *ctx = g_option_context_new("- boot a Linux kernel in a KVM virtual machine");
	g_option_context_set_help_enabled(ctx, FALSE);
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_summary(ctx, top_help);

	/* GOption wants the program name first and removes what it parsed. */
	int sub_argc = argc - 1;
	char **sub_argv = g_new0(char *, argc + 1);
	sub_argv[0] = g_strdup("vmm run");
	for (int i = 2; i < argc; i++)
		sub_argv[i - 1] = argv[i];

	int ret = 0;
	GError *gerr = NULL;
	if (!g_option_context_parse(ctx, &sub_argc, &sub_argv, &gerr)) {
		ret = fail(err, g_strdup(gerr->message));
		g_error_free(gerr);
		goto out;
	}
	if (help) {
		*cmd = CLI_HELP;
		*help_text = g_option_context_get_help(ctx, TRUE, NULL);
		goto out;
	}
	*cmd = CLI_RUN;
	if (sub_argc > 1) {
		ret = fail(err, g_strdup_printf("unexpected argument '%s'", sub_argv[1]));
		goto out;
	}
	if (!kernel || !*kernel) {
		ret = fail(err, g_strdup("--kernel: missing (vmm run --kernel PATH)"));
		goto out;
	}
	if (cpus < 1 || cpus > MAX_CPUS_SYNTAX) {
		ret = fail(err, g_strdup_printf("--cpus: %d is out of range (1..%d)", cpus,
						MAX_CPUS_SYNTAX));
		goto out;
	}
	cfg->mem_size = VMM_DEFAULT_MEM;
	if (memory) {
		uint64_t sz;
		int r = cli_parse_size(memory, &sz);
		if (r == -ERANGE) {
			ret = fail(err, g_strdup_printf("--memory: '%s' is too large", memory));
			goto out;
		}
		if (r < 0) {
			ret = fail(err, g_strdup_printf(
				"--memory: '%s' is not a size (use e.g. 256M or 4G)", memory));
			goto out;
		}
		if (sz == 0) {
			ret = fail(err, g_strdup("--memory: 0 is not a usable amount of RAM"));
			goto out;
		}
		if (sz < 4 * MiB) {
			ret = fail(err, g_strdup_printf("--memory: '%s' is less than the 4M minimum",
							memory));
			goto out;
		}
		if (!IS_ALIGNED(sz, 4 * KiB)) {
			ret = fail(err, g_strdup_printf("--memory: '%s' is not a multiple of 4K",
							memory));
			goto out;
		}
		cfg->mem_size = sz;
	}
	if (timeout < 0) {
		ret = fail(err, g_strdup_printf("--timeout: %d is negative", timeout));
		goto out;
	}
	if (debug_exit_port < 0 || debug_exit_port > 0xffff) {
		ret = fail(err, g_strdup_printf("--debug-exit-port: %d is not an I/O port (0..65535)",
						debug_exit_port));
		goto out;
	}
	cfg->on_reboot = VMM_REBOOT_EXIT;
	if (on_reboot) {
		if (!strcmp(on_reboot, "restart")) {
			cfg->on_reboot = VMM_REBOOT_RESTART;
		} else if (strcmp(on_reboot, "exit")) {
			ret = fail(err, g_strdup_printf(
				"--on-reboot: '%s' is neither 'exit' nor 'restart'", on_reboot));
			goto out;
		}
	}
	cfg->console = VMM_CONSOLE_SERIAL;
	if (console) {
		if (!strcmp(console, "virtio")) {
			cfg->console = VMM_CONSOLE_VIRTIO;
		} else if (strcmp(console, "serial")) {
			ret = fail(err, g_strdup_printf(
				"--console: '%s' is neither 'serial' nor 'virtio'", console));
			goto out;
		}
	}
	for (unsigned int i = 0; disks && disks[i]; i++) {
		if (i >= VMM_MAX_DISKS) {
			ret = fail(err, g_strdup_printf("--disk: more than %u disks", VMM_MAX_DISKS));
			goto out;
		}
		char *derr = NULL;
		if (cli_parse_disk(disks[i], &cfg->disks[i], &derr) < 0) {
			ret = fail(err, derr);
			goto out;
		}
		cfg->nr_disks = i + 1;
		for (unsigned int j = 0; j < i; j++) {
			if (!strcmp(cfg->disks[j].path, cfg->disks[i].path)) {
				ret = fail(err, g_strdup_printf("--disk %s: given twice",
								cfg->disks[i].path));
				goto out;
			}
		}
	}
	cfg->kernel = g_steal_pointer(&kernel);
	cfg->initrd = g_steal_pointer(&initrd);
	cfg->cmdline = cmdline ? g_steal_pointer(&cmdline)
			       : g_strdup(cfg->console == VMM_CONSOLE_VIRTIO
						  ? VMM_DEFAULT_CMDLINE_VIRTIO_CONSOLE
						  : VMM_DEFAULT_CMDLINE);
	cfg->nr_cpus = (unsigned int)cpus;
	cfg->timeout_s = (unsigned int)timeout;
	cfg->debug_exit_port = (uint16_t)debug_exit_port;
	cfg->cpuid_mask = g_steal_pointer(&cpuid_mask);
	cfg->kvm_path = kvm_path ? g_steal_pointer(&kvm_path) : g_strdup("/dev/kvm");

out:
	g_free(kernel);
	g_free(initrd);
	g_free(cmdline);
	g_free(memory);
	g_free(cpuid_mask);
	g_free(on_reboot);
	g_free(kvm_path);
	g_free(console);
	g_strfreev(disks);
	g_free(sub_argv[0]);
	g_free(sub_argv);
	g_option_context_free(ctx);
	if (ret < 0)
		cli_config_free(cfg);
	return ret;
}
