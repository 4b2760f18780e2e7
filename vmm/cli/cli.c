// SPDX-License-Identifier: Apache-2.0
/*
 * Command line: `vmm run ...`, Firecracker's flags (`--api-sock`, `--config-file`, `--id`),
 * `vmm --help`, `vmm --version`; parsed with GOption into the configuration model, whose
 * setters do every check (their messages get the option's name).
 */
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "vmm/cli.h"
#include "vmm/config.h"
#include "vmm/layout.h"

/* Messages from the config setters start with the option's name already. */
static int fail_cfg(char **err, const struct vmm_error *e)
{
	*err = g_strdup(e->msg);
	return -EINVAL;
}

static int fail(char **err, char *msg)
{
	*err = msg;
	return -EINVAL;
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

static bool parse_bool(const char *val, bool *out)
{
	if (!val || !strcmp(val, "on") || !strcmp(val, "true")) {
		*out = true;
		return true;
	}
	if (!strcmp(val, "off") || !strcmp(val, "false")) {
		*out = false;
		return true;
	}
	return false;
}

int cli_parse_disk(const char *spec, unsigned int index, struct vmm_config *cfg, char **err)
{
	const char *p = spec;
	bool seen_cache = false, seen_io = false, seen_ro = false, seen_poll = false;
	bool seen_root = false;
	char *path, *f = NULL, *id = NULL, *serial = NULL, what[64];
	struct vmm_disk d;
	struct vmm_error e;
	int r = -EINVAL;

	vmm_disk_init(&d);
	path = next_field(&p);
	if (!*path) {
		*err = g_strdup_printf("--disk: '%s' has no image path (--disk PATH[,ro][,...])",
				       spec);
		goto out;
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
			if (!parse_bool(val, &d.read_only))
				goto badval;
		} else if (!strcmp(f, "root")) {
			if (seen_root)
				goto dup;
			seen_root = true;
			if (!parse_bool(val, &d.root))
				goto badval;
		} else if (!strcmp(f, "id")) {
			if (id)
				goto dup;
			if (!val || !config_id_valid(val)) {
				*err = g_strdup_printf("--disk %s: id must be 1 to %d letters, digits, "
						       "'_', '-' or '.'", path, CONFIG_ID_MAX);
				goto out;
			}
			id = g_strdup(val);
		} else if (!strcmp(f, "cache")) {
			if (seen_cache)
				goto dup;
			seen_cache = true;
			if (val && !strcmp(val, "none"))
				d.cache = VMM_CACHE_NONE;
			else if (!val || strcmp(val, "writeback"))
				goto badval;
		} else if (!strcmp(f, "io")) {
			if (seen_io)
				goto dup;
			seen_io = true;
			if (val && !strcmp(val, "uring"))
				d.io = VMM_IO_URING;
			else if (val && !strcmp(val, "aio"))
				d.io = VMM_IO_AIO;
			else if (val && !strcmp(val, "sync"))
				d.io = VMM_IO_SYNC;
			else
				goto badval;
		} else if (!strcmp(f, "serial")) {
			if (serial)
				goto dup;
			if (!val || !*val)
				goto badval;
			serial = g_strdup(val);
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
			if (*end || errno || v > VMM_DISK_POLL_US_MAX)
				goto badval;
			d.poll_us = (unsigned int)v;
		} else {
			*err = g_strdup_printf("--disk %s: unknown option '%s' (known: id=, ro, root, "
					       "cache=, io=, serial=, poll=)", path, f);
			goto out;
		}
		g_free(f);
		f = NULL;
	}
	if (!id)
		id = g_strdup_printf("disk%u", index);
	d.id = id;
	d.path = path;
	d.serial = serial;
	snprintf(what, sizeof(what), "--disk %.50s", path);
	if (config_put_disk(cfg, &d, what, &e) < 0) {
		*err = g_strdup(e.msg);
		goto out;
	}
	r = 0;
	goto out;
dup:
	*err = g_strdup_printf("--disk %s: '%s' given twice", path, f);
	goto out;
badval:
	if (!strcmp(f, "cache"))
		*err = g_strdup_printf("--disk %s: cache must be none or writeback", path);
	else if (!strcmp(f, "io"))
		*err = g_strdup_printf("--disk %s: io must be uring, aio or sync", path);
	else if (!strcmp(f, "poll"))
		*err = g_strdup_printf("--disk %s: poll must be microseconds from 0 (off) to %u",
				       path, VMM_DISK_POLL_US_MAX);
	else
		*err = g_strdup_printf("--disk %s: bad value for '%s'", path, f);
out:
	g_free(f);
	g_free(path);
	g_free(id);
	g_free(serial);
	return r;
}

static bool parse_rate(const char *s, bool bytes, struct vmm_token_bucket *b);

int cli_parse_net(const char *spec, unsigned int index, struct vmm_config *cfg, char **err)
{
	const char *p = spec;
	char *f = NULL, *tap = NULL, *mac = NULL, *id = NULL, what[64];
	GString *fwd = NULL;
	struct vmm_net n;
	struct vmm_error e;
	int r = -EINVAL, fd = -1;

	vmm_net_init(&n);
	/* user[,hostfwd=RULE]...[,mtu=N]: user-mode networking, the rules joined for config_put_net. */
	if (!strcmp(spec, "user") || !strncmp(spec, "user,", 5)) {
		n.user = true;
		fwd = g_string_new(NULL);
		p += 4 + (spec[4] == ',');
	}
	while (*p) {
		f = next_field(&p);
		char *val = strchr(f, '=');
		if (val)
			*val++ = '\0';
		if (!strcmp(f, "user")) {
			*err = g_strdup_printf("--net %s: 'user' comes first (--net user,...)", spec);
			goto out;
		}
		if (!val || !*val) {
			*err = g_strdup_printf("--net %s: '%s' needs a value", spec, f);
			goto out;
		}
		if (n.user && (!strcmp(f, "tap") || !strcmp(f, "fd"))) {
			*err = g_strdup_printf("--net %s: user-mode networking takes no %s= (it "
					       "needs no tap)", spec, f);
			goto out;
		}
		if (!n.user && (!strcmp(f, "hostfwd") || !strcmp(f, "mtu"))) {
			*err = g_strdup_printf("--net %s: %s= needs --net user", spec, f);
			goto out;
		}
		if (!strcmp(f, "hostfwd")) {
			if (strchr(val, ',')) /* next_field split at commas: one is never here */
				goto bad;
			g_string_append_printf(fwd, "%s%s", fwd->len ? "," : "", val);
		} else if (!strcmp(f, "tap")) {
			if (tap || fd >= 0)
				goto dup;
			tap = g_strdup(val);
		} else if (!strcmp(f, "fd")) {
			char *end;
			long v;

			if (tap || fd >= 0)
				goto dup;
			errno = 0;
			v = strtol(val, &end, 10);
			if (*end || errno || v < 0 || v > 1 << 20) {
				*err = g_strdup_printf("--net %s: fd must be an open file descriptor "
						       "number", spec);
				goto out;
			}
			fd = (int)v;
		} else if (!strcmp(f, "rx-bytes") || !strcmp(f, "tx-bytes") || !strcmp(f, "rx-ops") ||
			   !strcmp(f, "tx-ops")) {
			struct vmm_rate_limiter *rl = f[0] == 'r' ? &n.rx_rate_limiter
								   : &n.tx_rate_limiter;
			bool bytes = f[3] == 'b';
			struct vmm_token_bucket *b = bytes ? &rl->bandwidth : &rl->ops;

			if (b->size)
				goto dup;
			if (!parse_rate(val, bytes, b)) {
				*err = g_strdup_printf("--net %s: %s must be %s[/MS], e.g. %s, not '%s'",
						       spec, f, bytes ? "SIZE" : "N",
						       bytes ? "10M (a second) or 1M/100" : "1000",
						       val);
				goto out;
			}
		} else if (!strcmp(f, "mtu")) {
			char *end;
			unsigned long v;

			if (n.mtu)
				goto dup;
			errno = 0;
			v = strtoul(val, &end, 10);
			if (*end || errno || *val == '-' || v < CONFIG_NET_MTU_MIN ||
			    v > CONFIG_NET_MTU_MAX) {
				*err = g_strdup_printf("--net %s: mtu must be %d to %d", spec,
						       CONFIG_NET_MTU_MIN, CONFIG_NET_MTU_MAX);
				goto out;
			}
			n.mtu = (unsigned int)v;
		} else if (!strcmp(f, "mac")) {
			if (mac)
				goto dup;
			mac = g_strdup(val);
		} else if (!strcmp(f, "id")) {
			if (id)
				goto dup;
			id = g_strdup(val);
		} else {
			*err = g_strdup_printf("--net %s: unknown option '%s' (known: %s)", spec, f,
					       n.user ? "hostfwd=, mtu=, mac=, id=, rx-/tx-bytes=, "
						      "rx-/tx-ops="
						    : "tap=, fd=, mac=, id=, rx-/tx-bytes=, rx-/tx-ops=");
			goto out;
		}
		g_free(f);
		f = NULL;
	}
	if (!n.user && !tap && fd < 0) {
		*err = g_strdup_printf("--net '%s': tap=NAME or fd=N is needed (or user)", spec);
		goto out;
	}
	if (!id)
		id = g_strdup_printf("net%u", index);
	n.id = id;
	n.tap = tap;
	n.fd = fd;
	n.mac = mac;
	n.hostfwd = fwd ? fwd->str : NULL;
	snprintf(what, sizeof(what), "--net %.40s", spec);
	if (config_put_net(cfg, &n, what, &e) < 0) {
		*err = g_strdup(e.msg);
		goto out;
	}
	r = 0;
	goto out;
bad:
	*err = g_strdup_printf("--net %s: malformed hostfwd", spec);
	goto out;
dup:
	*err = g_strdup_printf("--net %s: '%s' given twice (or tap= with fd=)", spec, f);
out:
	g_free(f);
	g_free(tap);
	g_free(mac);
	g_free(id);
	if (fwd)
		g_string_free(fwd, TRUE);
	return r;
}

int cli_parse_pmem(const char *spec, unsigned int index, struct vmm_config *cfg, char **err)
{
	const char *p = spec;
	bool seen_ro = false, seen_root = false;
	char *path, *f = NULL, *id = NULL, what[80];
	struct vmm_pmem pm;
	struct vmm_error e;
	int r = -EINVAL;

	vmm_pmem_init(&pm);
	path = next_field(&p);
	if (!*path) {
		*err = g_strdup_printf("--pmem: '%s' has no file path (--pmem PATH[,ro][,...])",
				       spec);
		goto out;
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
			if (!parse_bool(val, &pm.read_only))
				goto badval;
		} else if (!strcmp(f, "root")) {
			if (seen_root)
				goto dup;
			seen_root = true;
			if (!parse_bool(val, &pm.root))
				goto badval;
		} else if (!strcmp(f, "id")) {
			if (id)
				goto dup;
			if (!val || !config_id_valid(val)) {
				*err = g_strdup_printf("--pmem %s: id must be 1 to %d letters, digits, "
						       "'_', '-' or '.'", path, CONFIG_ID_MAX);
				goto out;
			}
			id = g_strdup(val);
		} else {
			*err = g_strdup_printf("--pmem %s: unknown option '%s' (known: id=, ro, "
					       "root)", path, f);
			goto out;
		}
		g_free(f);
		f = NULL;
	}
	if (!id)
		id = g_strdup_printf("pmem%u", index);
	pm.id = id;
	pm.path = path;
	snprintf(what, sizeof(what), "--pmem %.50s", path);
	if (config_put_pmem(cfg, &pm, what, &e) < 0) {
		*err = g_strdup(e.msg);
		goto out;
	}
	r = 0;
	goto out;
dup:
	*err = g_strdup_printf("--pmem %s: '%s' given twice", path, f);
	goto out;
badval:
	*err = g_strdup_printf("--pmem %s: bad value for '%s'", path, f);
out:
	g_free(f);
	g_free(path);
	g_free(id);
	return r;
}

int cli_parse_vsock(const char *spec, struct vmm_config *cfg, char **err)
{
	const char *p = spec;
	char *f = NULL, *uds = NULL;
	bool seen_cid = false;
	struct vmm_vsock vs;
	struct vmm_error e;
	int r = -EINVAL;

	vmm_vsock_init(&vs);
	if (cfg->vsock.set) {
		*err = g_strdup("--vsock: given twice (a VM has one vsock device)");
		return r;
	}
	while (*p) {
		f = next_field(&p);
		char *val = strchr(f, '='), *end;

		if (val)
			*val++ = '\0';
		if (!strcmp(f, "cid") || !strcmp(f, "guest_cid")) {
			if (seen_cid)
				goto dup;
			seen_cid = true;
			errno = 0;
			unsigned long long v = val ? strtoull(val, &end, 0) : 0;
			if (!val || !*val || *end || errno || *val == '-') {
				*err = g_strdup_printf("--vsock: cid must be a number, e.g. cid=3 (not "
						       "'%s')", val ? val : "");
				goto out;
			}
			vs.cid = v;
		} else if (!strcmp(f, "uds") || !strcmp(f, "uds_path")) {
			if (uds)
				goto dup;
			if (!val || !*val) {
				*err = g_strdup("--vsock: uds= needs a path");
				goto out;
			}
			uds = g_strdup(val);
		} else {
			*err = g_strdup_printf("--vsock: unknown option '%s' (known: cid=, uds=)", f);
			goto out;
		}
		g_free(f);
		f = NULL;
	}
	if (!seen_cid || !uds) {
		*err = g_strdup_printf("--vsock: %s missing (--vsock cid=N,uds=PATH)",
				       !seen_cid ? "cid=" : "uds=");
		goto out;
	}
	vs.uds_path = uds;
	if (config_set_vsock(cfg, &vs, "--vsock", &e) < 0) {
		*err = g_strdup(e.msg);
		goto out;
	}
	r = 0;
	goto out;
dup:
	*err = g_strdup_printf("--vsock: '%s' given twice", f);
out:
	g_free(f);
	g_free(uds);
	return r;
}

/* A byte count: plain digits are bytes, 64K / 1M / 1G binary multiples. */
static bool parse_bytes(const char *s, uint64_t *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!*end && !errno) {
		*out = v;
		return true;
	}
	return config_parse_size(s, out) == 0;
}

/* AMOUNT[/MS]: amount per MS milliseconds, per second without /MS. */
static bool parse_rate(const char *s, bool bytes, struct vmm_token_bucket *b)
{
	char *amount = g_strdup(s), *slash = strchr(amount, '/'), *end;
	bool ok;

	b->refill_time_ms = 1000;
	if (slash) {
		*slash++ = '\0';
		errno = 0;
		unsigned long long ms = strtoull(slash, &end, 10);
		if (*slash < '0' || *slash > '9' || *end || errno || ms == 0) {
			g_free(amount);
			return false;
		}
		b->refill_time_ms = ms;
	}
	if (bytes) {
		ok = parse_bytes(amount, &b->size);
	} else {
		errno = 0;
		b->size = strtoull(amount, &end, 10);
		ok = *amount >= '0' && *amount <= '9' && !*end && !errno;
	}
	g_free(amount);
	return ok && b->size > 0;
}

int cli_parse_rng(const char *spec, struct vmm_config *cfg, char **err)
{
	struct vmm_rate_limiter rl = {0};
	const char *p = spec ? spec : "";
	bool seen_bytes = false, seen_ops = false, seen_burst = false;
	uint64_t burst = 0;
	struct vmm_error e;
	char *f = NULL;
	int r = -EINVAL;

	while (*p) {
		f = next_field(&p);
		char *val = strchr(f, '=');
		if (val)
			*val++ = '\0';
		if (!strcmp(f, "bytes")) {
			if (seen_bytes)
				goto dup;
			seen_bytes = true;
			if (!val || !parse_rate(val, true, &rl.bandwidth)) {
				*err = g_strdup_printf("--rng: bytes must be SIZE[/MS], e.g. 1M (a "
						       "second) or 64K/100, not '%s'", val ? val : "");
				goto out;
			}
		} else if (!strcmp(f, "ops")) {
			if (seen_ops)
				goto dup;
			seen_ops = true;
			if (!val || !parse_rate(val, false, &rl.ops)) {
				*err = g_strdup_printf("--rng: ops must be N[/MS], e.g. 100 (a second) "
						       "or 10/100, not '%s'", val ? val : "");
				goto out;
			}
		} else if (!strcmp(f, "burst")) {
			if (seen_burst)
				goto dup;
			seen_burst = true;
			if (!val || !parse_bytes(val, &burst)) {
				*err = g_strdup_printf("--rng: burst must be a size in bytes, e.g. 1M, "
						       "not '%s'", val ? val : "");
				goto out;
			}
		} else {
			*err = g_strdup_printf("--rng: unknown option '%s' (known: bytes=, ops=, "
					       "burst=)", f);
			goto out;
		}
		g_free(f);
		f = NULL;
	}
	if (seen_burst && !seen_bytes) {
		*err = g_strdup("--rng: burst= needs bytes= (the burst is in bytes)");
		goto out;
	}
	rl.bandwidth.one_time_burst = burst;
	if (config_set_entropy(cfg, true, &rl, "--rng", &e) < 0) {
		*err = g_strdup(e.msg);
		goto out;
	}
	r = 0;
	goto out;
dup:
	*err = g_strdup_printf("--rng: '%s' given twice", f);
out:
	g_free(f);
	return r;
}

void cli_opts_free(struct cli_opts *o)
{
	config_fini(&o->cfg);
	g_free(o->api_sock);
	g_free(o->config_file);
	g_free(o->restore_state);
	g_free(o->restore_mem);
	g_free(o->restore_luo);
	memset(o, 0, sizeof(*o));
}

static const char *top_help =
	"Usage:\n"
	"  vmm run --kernel PATH [OPTION...]   boot a Linux kernel (bzImage or vmlinux ELF)\n"
	"  vmm --api-sock PATH [--id NAME]     wait to be configured and started over the API\n"
	"                                      socket (Firecracker's REST API)\n"
	"  vmm --config-file FILE [--api-sock PATH] [--id NAME]\n"
	"                                      boot what a Firecracker JSON config file says\n"
	"  vmm restore STATE --mem MEM [--paused] [--api-sock PATH] [--id NAME]\n"
	"  vmm restore --luo-session NAME [--paused] [--api-sock PATH] [--id NAME]\n"
	"                                      bring a snapshot back (PUT /snapshot/create wrote it)\n"
	"  vmm hostupdate prepare|resume --state-dir DIR ...\n"
	"                                      carry VMs across a host kernel kexec (its --help)\n"
	"  vmm --help                          this text (vmm run --help lists the run options)\n"
	"  vmm --version                       print the version\n"
	"\n"
	"Exit status: 0 guest powered off or rebooted; (v << 1) | 1 when the guest wrote v to the\n"
	"debug-exit port; 100 guest panic; 102 triple fault; 104 fatal KVM exit; 124 --timeout\n"
	"expired; 128+n signal n; 2 usage error; 1 any other error.\n";

/* The API socket's path must fit a sockaddr_un. */
static int check_api_sock(const char *path, char **err)
{
	struct sockaddr_un sa;

	if (!*path)
		return fail(err, g_strdup("--api-sock: empty path"));
	if (strlen(path) >= sizeof(sa.sun_path))
		return fail(err, g_strdup_printf("--api-sock: %zu bytes, longer than the %zu a unix "
						 "socket path may have", strlen(path),
						 sizeof(sa.sun_path) - 1));
	return 0;
}

/*
 * GOption over entries: 1 when --help was asked (its text in *help_text, o->cmd CLI_HELP), 0
 * when parsed without a stray argument (o->cmd CLI_RUN), -EINVAL with *err otherwise.
 */
static int parse_entries(GOptionContext *ctx, GOptionEntry *entries, const gboolean *help,
			 int argc, char **argv, struct cli_opts *o, char **err, char **help_text)
{
	GError *gerr = NULL;
	int ret;

	g_option_context_set_help_enabled(ctx, FALSE);
	g_option_context_add_main_entries(ctx, entries, NULL);
	g_option_context_set_summary(ctx, top_help);
	if (!g_option_context_parse(ctx, &argc, &argv, &gerr)) {
		ret = fail(err, g_strdup(gerr->message));
		g_error_free(gerr);
		return ret;
	}
	if (*help) {
		o->cmd = CLI_HELP;
		*help_text = g_option_context_get_help(ctx, TRUE, NULL);
		return 1;
	}
	o->cmd = CLI_RUN;
	if (argc > 1)
		return fail(err, g_strdup_printf("unexpected argument '%s'", argv[1]));
	return 0;
}

/* Firecracker's flags, without `run`: what its launchers (Go SDK, Kata, containerd) pass. */
static int parse_fc(int argc, char **argv, struct cli_opts *o, char **err, char **help_text)
{
	gchar *api_sock = NULL, *config_file = NULL, *id = NULL;
	gboolean no_api = FALSE, no_seccomp = FALSE, help = FALSE;
	gint handover = -1;
	GOptionEntry entries[] = {
		{ "api-sock", 'a', 0, G_OPTION_ARG_FILENAME, &api_sock,
		  "serve Firecracker's REST API on this unix socket", "PATH" },
		{ "config-file", 'f', 0, G_OPTION_ARG_FILENAME, &config_file,
		  "boot what this Firecracker JSON configuration says", "FILE" },
		{ "id", 0, 0, G_OPTION_ARG_STRING, &id, "the instance id GET / reports", "NAME" },
		{ "no-api", 0, 0, G_OPTION_ARG_NONE, &no_api, "no API socket (with --config-file)",
		  NULL },
		{ "no-seccomp", 0, 0, G_OPTION_ARG_NONE, &no_seccomp,
		  "accepted for Firecracker's launchers (vmm installs no seccomp filter yet)", NULL },
		{ "handover", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_INT, &handover,
		  "take over a running VM from the vmm that started this one (live update)", "FD" },
		{ "help", 'h', 0, G_OPTION_ARG_NONE, &help, "show these options", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL }
	};
	GOptionContext *ctx = g_option_context_new("- a Firecracker-compatible microVM monitor");
	struct vmm_error e;
	int ret = parse_entries(ctx, entries, &help, argc, argv, o, err, help_text);

	if (ret != 0) {
		ret = ret < 0 ? ret : 0;
		goto out;
	}
	if (handover >= 0) {
		/* Everything comes over the socket: the configuration, the API socket. */
		if (api_sock || config_file || id || no_api) {
			ret = fail(err, g_strdup("--handover: takes no other option"));
			goto out;
		}
		if (handover < 3) {
			ret = fail(err, g_strdup_printf("--handover: %d is not a socket of ours",
							handover));
			goto out;
		}
		o->handover_fd = handover;
		goto out;
	}
	if (no_api && api_sock) {
		ret = fail(err, g_strdup("--no-api: cannot be given with --api-sock"));
		goto out;
	}
	if (no_api && !config_file) {
		ret = fail(err, g_strdup("--no-api: needs --config-file (nothing else could start "
					 "the VM)"));
		goto out;
	}
	if (!api_sock && !config_file) {
		ret = fail(err, g_strdup("nothing to do: give --api-sock PATH or --config-file FILE "
					 "(or vmm run --kernel PATH)"));
		goto out;
	}
	if (api_sock && (ret = check_api_sock(api_sock, err)) < 0)
		goto out;
	if (id && config_set_id(&o->cfg, id, "--id", &e) < 0) {
		ret = fail_cfg(err, &e);
		goto out;
	}
	o->api_sock = g_steal_pointer(&api_sock);
	o->config_file = g_steal_pointer(&config_file);
out:
	g_free(api_sock);
	g_free(config_file);
	g_free(id);
	g_option_context_free(ctx);
	return ret;
}

/* --rng takes an optional argument, which GOption gives only to a callback. */
static gboolean rng_given;
static gchar *rng_spec;

static gboolean rng_option(const gchar *name, const gchar *value, gpointer data, GError **error)
{
	(void)name;
	(void)data;
	(void)error;
	rng_given = TRUE;
	g_free(rng_spec);
	rng_spec = g_strdup(value ? value : "");
	return TRUE;
}

static int parse_run(int argc, char **argv, struct cli_opts *o, char **err, char **help_text)
{
	gchar *kernel = NULL, *initrd = NULL, *cmdline = NULL, *memory = NULL, *cpuid_mask = NULL;
	gchar *on_reboot = NULL, *kvm_path = NULL, *console = NULL, *api_sock = NULL, *id = NULL;
	gchar **vsock = NULL;
	gchar **disks = NULL, **pmems = NULL, **nets = NULL;
	gint cpus = 1, timeout = 0, debug_exit_port = CONFIG_DEFAULT_DEBUG_EXIT_PORT;
	gboolean help = FALSE, track = FALSE;
	GOptionEntry entries[] = {
		{ "kernel", 'k', 0, G_OPTION_ARG_FILENAME, &kernel,
		  "Linux kernel: bzImage or vmlinux ELF (required)", "PATH" },
		{ "initrd", 'i', 0, G_OPTION_ARG_FILENAME, &initrd, "initial ramdisk", "PATH" },
		{ "cmdline", 'c', 0, G_OPTION_ARG_STRING, &cmdline,
		  "kernel command line (default \"" CONFIG_DEFAULT_CMDLINE "\")", "STR" },
		{ "cpus", 'n', 0, G_OPTION_ARG_INT, &cpus, "number of vCPUs (default 1)", "N" },
		{ "memory", 'm', 0, G_OPTION_ARG_STRING, &memory,
		  "guest RAM: 256M, 4G... plain numbers are MiB (default 256M); ,file=PATH: "
		  "in that file, mapped shared (DAX, tmpfs, hugetlbfs)", "SIZE[,file=PATH]" },
		{ "timeout", 't', 0, G_OPTION_ARG_INT, &timeout,
		  "stop the guest after SECONDS (restarts included) and exit with 124", "SECONDS" },
		{ "on-reboot", 0, 0, G_OPTION_ARG_STRING, &on_reboot,
		  "what a guest reboot does: exit (status 0, default) or restart", "exit|restart" },
		{ "debug-exit-port", 0, 0, G_OPTION_ARG_INT, &debug_exit_port,
		  "I/O port of the isa-debug-exit compatible device, 0 to disable (default 0xf4)",
		  "PORT" },
		{ "disk", 'd', 0, G_OPTION_ARG_FILENAME_ARRAY, &disks,
		  "virtio-blk disk backed by a raw image or block device (repeatable; /dev/vda, vdb... "
		  "in order, a root disk first). Options: id=NAME (default diskN), ro, root (the "
		  "root device: root=/dev/vda on the command line), cache=writeback|none (O_DIRECT), "
		  "io=uring|aio|sync, serial=ID, poll=USEC (adaptive busy-polling of the I/O thread "
		  "up to USEC after each event, 0 = off, default 32) (a comma in PATH is written ,,)",
		  "PATH[,id=][,ro][,root][,cache=][,io=][,serial=][,poll=]" },
		{ "net", 0, 0, G_OPTION_ARG_STRING_ARRAY, &nets,
		  "virtio-net on a tap device (repeatable, up to 4): tap=NAME (created if absent, "
		  "which needs CAP_NET_ADMIN) or fd=N (an open tap with IFF_VNET_HDR, as runtimes "
		  "pass it), or user (user-mode networking by libslirp, no privilege: the guest is "
		  "10.0.2.15/24 by DHCP, the host 10.0.2.2) with hostfwd=tcp:[HOSTADDR]:PORT-"
		  "[GUESTADDR]:PORT (or udp:; host address default 127.0.0.1; repeatable) and "
		  "mtu=68..65520 (default 1500; 65520 is fastest); "
		  "mac=52:54:00:12:34:56 (default: the guest makes one up), id=NAME (default netN); "
		  "rate limits: rx-bytes=SIZE[/MS], tx-bytes=, rx-ops=N[/MS], tx-ops= (per MS "
		  "milliseconds, default a second; rx is what the guest receives)",
		  "tap=NAME|fd=N|user[,hostfwd=]...[,mtu=][,mac=][,id=][,rx-bytes=]..." },
		{ "pmem", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &pmems,
		  "virtio-pmem: this file (a non-zero multiple of 2 MiB) mapped into guest memory, "
		  "/dev/pmem0, pmem1... (repeatable, up to 2; mount -o dax to read it without a "
		  "guest page cache). Options: id=NAME (default pmemN), ro (read-only: VMs share "
		  "the host's one copy), root (root=/dev/pmem0 rootflags=dax)",
		  "PATH[,id=][,ro][,root]" },
		{ "rng", 0, G_OPTION_FLAG_OPTIONAL_ARG, G_OPTION_ARG_CALLBACK, (gpointer)rng_option,
		  "a virtio-rng device: the guest's /dev/hwrng, from the host's getrandom(2). "
		  "Optional rate limit: bytes=SIZE[/MS] (per MS milliseconds, default a second), "
		  "ops=N[/MS] requests, burst=SIZE extra bytes at first; e.g. --rng=bytes=1M",
		  "[bytes=][,ops=][,burst=]" },
		{ "vsock", 0, 0, G_OPTION_ARG_STRING_ARRAY, &vsock,
		  "virtio-vsock with Firecracker's host side: host programs connect to the unix "
		  "socket PATH and write \"CONNECT <port>\\n\" to reach a guest listener; the "
		  "guest's connections to host port P reach a listener at PATH_P. cid: the guest's "
		  "CID (3 or more, unique on the host)", "cid=N,uds=PATH" },
		{ "console", 0, 0, G_OPTION_ARG_STRING, &console,
		  "the guest console: serial (ttyS0, default) or virtio (hvc0)", "serial|virtio" },
		{ "cpuid-mask", 0, 0, G_OPTION_ARG_STRING, &cpuid_mask,
		  "CPU features to hide from the guest, e.g. cx16,clflushopt,clwb,gfni", "LIST" },
		{ "api-sock", 'a', 0, G_OPTION_ARG_FILENAME, &api_sock,
		  "also serve Firecracker's REST API on this unix socket", "PATH" },
		{ "id", 0, 0, G_OPTION_ARG_STRING, &id, "the instance id GET / reports", "NAME" },
		{ "track-dirty-pages", 0, 0, G_OPTION_ARG_NONE, &track,
		  "track the pages the guest writes, for Diff snapshots over --api-sock", NULL },
		{ "kvm-device", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_FILENAME, &kvm_path,
		  "KVM device (default /dev/kvm)", "PATH" },
		{ "help", 'h', 0, G_OPTION_ARG_NONE, &help, "show the run options", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL }
	};
	GOptionContext *ctx = g_option_context_new("- boot a Linux kernel in a KVM virtual machine");
	struct vmm_config *c = &o->cfg;
	struct vmm_error e;
	int ret;

	rng_given = FALSE;
	g_clear_pointer(&rng_spec, g_free);
	ret = parse_entries(ctx, entries, &help, argc, argv, o, err, help_text);

	if (ret != 0) {
		ret = ret < 0 ? ret : 0;
		goto out;
	}
	if (!kernel || !*kernel) {
		ret = fail(err, g_strdup("--kernel: missing (vmm run --kernel PATH)"));
		goto out;
	}
	if (config_set_path(&c->kernel, kernel, "--kernel", &e) < 0 ||
	    (initrd && config_set_path(&c->initrd, initrd, "--initrd", &e) < 0) ||
	    (cmdline && config_set_cmdline(c, cmdline, "--cmdline", &e) < 0) ||
	    config_set_cpus(c, cpus, "--cpus", &e) < 0 ||
	    config_set_timeout(c, timeout, "--timeout", &e) < 0 ||
	    config_set_debug_exit_port(c, debug_exit_port, "--debug-exit-port", &e) < 0 ||
	    (id && config_set_id(c, id, "--id", &e) < 0) ||
	    (kvm_path && config_set_path(&c->kvm_path, kvm_path, "--kvm-device", &e) < 0)) {
		ret = fail_cfg(err, &e);
		goto out;
	}
	if (memory) {
		uint64_t sz;
		char *opts = strchr(memory, ',');

		if (opts) {
			*opts++ = '\0';
			if (strncmp(opts, "file=", 5) || !opts[5]) {
				ret = fail(err, g_strdup_printf("--memory: '%s' is not file=PATH "
								"(the only option)", opts));
				goto out;
			}
			if (config_set_memory_file(c, opts + 5, "--memory file", &e) < 0) {
				ret = fail_cfg(err, &e);
				goto out;
			}
		}
		int r = config_parse_size(memory, &sz);

		if (r == -ERANGE) {
			ret = fail(err, g_strdup_printf("--memory: '%s' is too large", memory));
			goto out;
		}
		if (r < 0) {
			ret = fail(err, g_strdup_printf(
				"--memory: '%s' is not a size (use e.g. 256M or 4G)", memory));
			goto out;
		}
		if (config_set_memory(c, sz, "--memory", &e) < 0) {
			ret = fail_cfg(err, &e);
			goto out;
		}
	}
	if (on_reboot) {
		if (!strcmp(on_reboot, "restart")) {
			c->on_reboot = VMM_ON_REBOOT_RESTART;
		} else if (strcmp(on_reboot, "exit")) {
			ret = fail(err, g_strdup_printf(
				"--on-reboot: '%s' is neither 'exit' nor 'restart'", on_reboot));
			goto out;
		}
	}
	if (console) {
		if (!strcmp(console, "virtio")) {
			c->console = VMM_CONSOLE_VIRTIO;
		} else if (strcmp(console, "serial")) {
			ret = fail(err, g_strdup_printf(
				"--console: '%s' is neither 'serial' nor 'virtio'", console));
			goto out;
		}
	}
	if (cpuid_mask && config_set_cpuid_mask(c, cpuid_mask, "--cpuid-mask", &e) < 0) {
		ret = fail_cfg(err, &e);
		goto out;
	}
	for (unsigned int i = 0; disks && disks[i]; i++) {
		if (i >= VMM_MAX_DISKS) {
			ret = fail(err, g_strdup_printf("--disk: more than %u disks", VMM_MAX_DISKS));
			goto out;
		}
		if ((ret = cli_parse_disk(disks[i], i, c, err)) < 0)
			goto out;
	}
	for (unsigned int i = 0; nets && nets[i]; i++) {
		if (i >= VMM_MAX_NICS) {
			ret = fail(err, g_strdup_printf("--net: more than %u network interfaces",
							VMM_MAX_NICS));
			goto out;
		}
		if ((ret = cli_parse_net(nets[i], i, c, err)) < 0)
			goto out;
	}
	for (unsigned int i = 0; pmems && pmems[i]; i++) {
		if (i >= VMM_MAX_PMEM) {
			ret = fail(err, g_strdup_printf("--pmem: more than %u pmem devices",
							VMM_MAX_PMEM));
			goto out;
		}
		if ((ret = cli_parse_pmem(pmems[i], i, c, err)) < 0)
			goto out;
	}
	if (rng_given && (ret = cli_parse_rng(rng_spec, c, err)) < 0)
		goto out;
	for (unsigned int i = 0; vsock && vsock[i]; i++) {
		if ((ret = cli_parse_vsock(vsock[i], c, err)) < 0)
			goto out;
	}
	c->track_dirty = track;
	if (api_sock && (ret = check_api_sock(api_sock, err)) < 0)
		goto out;
	if (config_validate(c, &e) < 0) {
		ret = fail_cfg(err, &e);
		goto out;
	}
	o->api_sock = g_steal_pointer(&api_sock);
	o->boot_now = true;
out:
	g_free(kernel);
	g_free(initrd);
	g_free(cmdline);
	g_free(memory);
	g_free(cpuid_mask);
	g_free(on_reboot);
	g_free(kvm_path);
	g_free(console);
	g_free(api_sock);
	g_free(id);
	g_strfreev(vsock);
	g_strfreev(disks);
	g_strfreev(pmems);
	g_strfreev(nets);
	g_clear_pointer(&rng_spec, g_free);
	g_option_context_free(ctx);
	return ret;
}

/*
 * vmm restore STATE --mem MEM [--paused] [--api-sock PATH] [--id NAME]
 * vmm restore --luo-session NAME [--paused] [--api-sock PATH] [--id NAME]
 */
static int parse_restore(int argc, char **argv, struct cli_opts *o, char **err, char **help_text)
{
	gchar *mem = NULL, *api_sock = NULL, *id = NULL, *luo = NULL;
	gboolean paused = FALSE, track = FALSE, help = FALSE;
	GOptionEntry entries[] = {
		{ "mem", 'm', 0, G_OPTION_ARG_FILENAME, &mem,
		  "the snapshot's memory file (read as the guest touches its pages; never written)",
		  "MEM" },
		{ "luo-session", 0, 0, G_OPTION_ARG_STRING, &luo,
		  "instead of STATE and MEM: the VM a host update preserved in this LUO session "
		  "(/dev/liveupdate) before the kexec", "NAME" },
		{ "track-dirty-pages", 0, 0, G_OPTION_ARG_NONE, &track,
		  "track the pages the guest writes, for Diff snapshots over the API", NULL },
		{ "paused", 0, 0, G_OPTION_ARG_NONE, &paused,
		  "leave the VM paused (PATCH /vm over --api-sock resumes it)", NULL },
		{ "api-sock", 'a', 0, G_OPTION_ARG_FILENAME, &api_sock,
		  "also serve Firecracker's REST API on this unix socket", "PATH" },
		{ "id", 0, 0, G_OPTION_ARG_STRING, &id, "the instance id GET / reports", "NAME" },
		{ "help", 'h', 0, G_OPTION_ARG_NONE, &help, "show the restore options", NULL },
		{ NULL, 0, 0, 0, NULL, NULL, NULL }
	};
	GOptionContext *ctx = g_option_context_new("STATE - bring a snapshot back");
	struct vmm_error e;
	int ret;

	/* STATE is the one positional argument: take it out before GOption sees the rest. */
	if (argc >= 2 && argv[1][0] != '-') {
		o->restore_state = g_strdup(argv[1]);
		for (int i = 1; i < argc; i++)
			argv[i] = argv[i + 1];
		argc--;
	}
	ret = parse_entries(ctx, entries, &help, argc, argv, o, err, help_text);
	if (ret != 0) {
		ret = ret < 0 ? ret : 0;
		goto out;
	}
	if (luo && (o->restore_state || mem)) {
		ret = fail(err, g_strdup("--luo-session: the state and RAM come from the session, "
					 "give no STATE or --mem"));
		goto out;
	}
	if (luo && !*luo) {
		ret = fail(err, g_strdup("--luo-session: empty name"));
		goto out;
	}
	if (!luo && (!o->restore_state || !*o->restore_state)) {
		ret = fail(err, g_strdup("restore: no snapshot given (vmm restore STATE --mem MEM)"));
		goto out;
	}
	if (!luo && (!mem || !*mem)) {
		ret = fail(err, g_strdup("--mem: missing (vmm restore STATE --mem MEM)"));
		goto out;
	}
	if (paused && !api_sock) {
		ret = fail(err, g_strdup("--paused: needs --api-sock (nothing else could resume it)"));
		goto out;
	}
	if (api_sock && (ret = check_api_sock(api_sock, err)) < 0)
		goto out;
	if (id && config_set_id(&o->cfg, id, "--id", &e) < 0) {
		ret = fail_cfg(err, &e);
		goto out;
	}
	o->restore_mem = g_steal_pointer(&mem);
	o->restore_luo = g_steal_pointer(&luo);
	o->api_sock = g_steal_pointer(&api_sock);
	o->restore_paused = paused;
	o->restore_track_dirty = track;
out:
	g_free(mem);
	g_free(luo);
	g_free(api_sock);
	g_free(id);
	g_option_context_free(ctx);
	return ret;
}

int cli_parse(int argc, char **argv, struct cli_opts *o, char **err, char **help_text)
{
	int ret;

	*err = NULL;
	*help_text = NULL;
	memset(o, 0, sizeof(*o));
	o->handover_fd = -1;
	config_init(&o->cfg);

	if (argc < 2)
		return fail(err, g_strdup("no command given (try: vmm run --kernel PATH, or vmm --help)"));
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		o->cmd = CLI_HELP;
		*help_text = g_strdup(top_help);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		o->cmd = CLI_VERSION;
		return 0;
	}
	/* GOption wants the program name first and removes what it parsed. */
	bool run = !strcmp(argv[1], "run"), restore = !strcmp(argv[1], "restore");
	bool sub = run || restore;
	if (!sub && argv[1][0] != '-')
		return fail(err, g_strdup_printf("unknown command '%s' (try: vmm --help)", argv[1]));
	int sub_argc = sub ? argc - 1 : argc;
	char **sub_argv = g_new0(char *, argc + 1);
	sub_argv[0] = g_strdup(run ? "vmm run" : restore ? "vmm restore" : "vmm");
	for (int i = sub ? 2 : 1; i < argc; i++)
		sub_argv[sub ? i - 1 : i] = argv[i];
	char **keep = g_memdup2(sub_argv, sizeof(char *) * (size_t)(argc + 1));

	ret = run ? parse_run(sub_argc, sub_argv, o, err, help_text)
	      : restore ? parse_restore(sub_argc, sub_argv, o, err, help_text)
			: parse_fc(sub_argc, sub_argv, o, err, help_text);
	g_free(keep[0]);
	g_free(keep);
	g_free(sub_argv);
	if (ret < 0)
		cli_opts_free(o);
	return ret;
}
