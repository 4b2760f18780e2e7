// SPDX-License-Identifier: Apache-2.0
/* Option parsing: sizes, ranges, every usage error names the option. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "vmm/cli.h"

static int parse(struct vmm_config *cfg, enum cli_command *cmd, char **err, const char *first,
		 ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = "vmm";
	va_start(ap, first);
	for (const char *a = first; a; a = va_arg(ap, const char *))
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	char *help = NULL;
	int r = cli_parse(argc, argv, cmd, cfg, err, &help);
	g_free(help);
	return r;
}

static void test_size(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(cli_parse_size("256M", &v), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(cli_parse_size("4G", &v), 0);
	assert_int_equal(v, 4ULL << 30);
	assert_int_equal(cli_parse_size("4g", &v), 0);
	assert_int_equal(v, 4ULL << 30);
	assert_int_equal(cli_parse_size("1024K", &v), 0);
	assert_int_equal(v, 1ULL << 20);
	assert_int_equal(cli_parse_size("512", &v), 0); /* MiB, as QEMU */
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(cli_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(cli_parse_size("4096B", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(cli_parse_size("", &v), -EINVAL);
	assert_int_equal(cli_parse_size("abc", &v), -EINVAL);
	assert_int_equal(cli_parse_size("12X", &v), -EINVAL);
	assert_int_equal(cli_parse_size("-5M", &v), -EINVAL);
	assert_int_equal(cli_parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(cli_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(cli_parse_size("99999999999T", &v), -ERANGE);
}

static void test_run_defaults(void **state)
{
	struct vmm_config cfg;
	enum cli_command cmd;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&cfg, &cmd, &err, "run", "--kernel", "bz", NULL), 0);
	assert_int_equal(cmd, CLI_RUN);
	assert_string_equal(cfg.kernel, "bz");
	assert_null(cfg.initrd);
	assert_string_equal(cfg.cmdline, VMM_DEFAULT_CMDLINE);
	assert_int_equal(cfg.nr_cpus, 1);
	assert_int_equal(cfg.mem_size, VMM_DEFAULT_MEM);
	assert_int_equal(cfg.timeout_s, 0);
	assert_int_equal(cfg.debug_exit_port, 0xf4);
	assert_int_equal(cfg.on_reboot, VMM_REBOOT_EXIT);
	assert_string_equal(cfg.kvm_path, "/dev/kvm");
	cli_config_free(&cfg);
}

static void test_run_all(void **state)
{
	struct vmm_config cfg;
	enum cli_command cmd;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&cfg, &cmd, &err, "run", "--kernel=k", "--initrd", "i", "--cmdline",
			       "console=ttyS0 quiet", "--cpus", "2", "--memory", "4G", "--timeout",
			       "30", "--on-reboot", "restart", "--debug-exit-port", "0x501",
			       "--cpuid-mask", "cx16,clwb", NULL),
			 0);
	assert_string_equal(cfg.initrd, "i");
	assert_string_equal(cfg.cmdline, "console=ttyS0 quiet");
	assert_int_equal(cfg.nr_cpus, 2);
	assert_int_equal(cfg.mem_size, 4ULL << 30);
	assert_int_equal(cfg.timeout_s, 30);
	assert_int_equal(cfg.on_reboot, VMM_REBOOT_RESTART);
	assert_int_equal(cfg.debug_exit_port, 0x501);
	assert_string_equal(cfg.cpuid_mask, "cx16,clwb");
	cli_config_free(&cfg);
}

/* Each bad input fails with -EINVAL and a message that names the offending option. */
static void expect_error(const char *needle, const char *a1, const char *a2, const char *a3,
			 const char *a4, const char *a5)
{
	struct vmm_config cfg;
	enum cli_command cmd;
	char *err = NULL;

	assert_int_equal(parse(&cfg, &cmd, &err, a1, a2, a3, a4, a5, NULL), -EINVAL);
	assert_non_null(err);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not mention '%s'", err, needle);
	assert_null(strchr(err, '\n'));
	g_free(err);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("--kernel", "run", NULL, NULL, NULL, NULL);
	expect_error("--cpus", "run", "--kernel", "k", "--cpus", "0");
	expect_error("--cpus", "run", "--kernel", "k", "--cpus", "-3");
	expect_error("--cpus", "run", "--kernel", "k", "--cpus", "100000");
	expect_error("--cpus", "run", "--kernel", "k", "--cpus", "two");
	expect_error("--memory", "run", "--kernel", "k", "--memory", "0");
	expect_error("--memory", "run", "--kernel", "k", "--memory", "lots");
	expect_error("--memory", "run", "--kernel", "k", "--memory", "1K");
	expect_error("--memory", "run", "--kernel", "k", "--memory", "5001K");
	expect_error("--memory", "run", "--kernel", "k", "--memory", "99999999999999T");
	expect_error("--timeout", "run", "--kernel", "k", "--timeout", "-1");
	expect_error("--on-reboot", "run", "--kernel", "k", "--on-reboot", "maybe");
	expect_error("--debug-exit-port", "run", "--kernel", "k", "--debug-exit-port", "70000");
	expect_error("--frobnicate", "run", "--kernel", "k", "--frobnicate", NULL);
	expect_error("stray", "run", "--kernel", "k", "stray", NULL);
	expect_error("launch", "launch", NULL, NULL, NULL, NULL);
	expect_error("command", NULL, NULL, NULL, NULL, NULL);
}

static void test_disk(void **state)
{
	struct vmm_disk d;
	char *err = NULL;
	(void)state;

	assert_int_equal(cli_parse_disk("a.img", &d, &err), 0);
	assert_string_equal(d.path, "a.img");
	assert_false(d.read_only);
	assert_int_equal(d.cache, BLK_CACHE_WRITEBACK);
	assert_int_equal(d.engine, BLK_ENGINE_URING);
	assert_false(d.engine_explicit);
	assert_null(d.serial);
	assert_int_equal(d.poll_us, VMM_DISK_POLL_US);
	g_free(d.path);

	/* poll=: 0 turns polling off, the largest accepted value is one second */
	assert_int_equal(cli_parse_disk("a.img,poll=0", &d, &err), 0);
	assert_int_equal(d.poll_us, 0);
	g_free(d.path);
	assert_int_equal(cli_parse_disk("a.img,io=aio,poll=1000000", &d, &err), 0);
	assert_int_equal(d.poll_us, 1000000);
	assert_int_equal(d.engine, BLK_ENGINE_AIO);
	g_free(d.path);
	assert_int_equal(cli_parse_disk("a.img,poll=50,ro", &d, &err), 0);
	assert_int_equal(d.poll_us, 50);
	assert_true(d.read_only);
	g_free(d.path);

	assert_int_equal(cli_parse_disk("/x/b.img,ro,cache=none,io=aio,serial=SN-1", &d, &err), 0);
	assert_string_equal(d.path, "/x/b.img");
	assert_true(d.read_only);
	assert_int_equal(d.cache, BLK_CACHE_NONE);
	assert_int_equal(d.engine, BLK_ENGINE_AIO);
	assert_true(d.engine_explicit);
	assert_string_equal(d.serial, "SN-1");
	g_free(d.path);
	g_free(d.serial);

	/* ",," is a literal comma in the path; ro=off; a 20-character serial fits exactly. */
	assert_int_equal(cli_parse_disk("we,,ird.img,ro=off,io=sync,serial=01234567890123456789",
					&d, &err), 0);
	assert_string_equal(d.path, "we,ird.img");
	assert_false(d.read_only);
	assert_int_equal(d.engine, BLK_ENGINE_SYNC);
	assert_string_equal(d.serial, "01234567890123456789");
	g_free(d.path);
	g_free(d.serial);

	static const struct {
		const char *spec, *needle;
	} bad[] = {
		{ "", "no image path" },
		{ ",ro", "no image path" },
		{ "a.img,frob=1", "unknown option 'frob'" },
		{ "a.img,cache=sometimes", "cache must be" },
		{ "a.img,cache", "cache must be" },
		{ "a.img,io=threads", "io must be" },
		{ "a.img,io", "io must be" },
		{ "a.img,ro=maybe", "'ro'" },
		{ "a.img,ro,ro", "given twice" },
		{ "a.img,io=aio,io=sync", "given twice" },
		{ "a.img,serial=012345678901234567890", "serial" },
		{ "a.img,serial=", "serial" },
		{ "a.img,serial=a\tb", "printable" },
		{ "a.img,poll", "poll must be" },
		{ "a.img,poll=", "poll must be" },
		{ "a.img,poll=-1", "poll must be" },
		{ "a.img,poll=+5", "poll must be" },
		{ "a.img,poll= 5", "poll must be" },
		{ "a.img,poll=32us", "poll must be" },
		{ "a.img,poll=1000001", "poll must be" },
		{ "a.img,poll=99999999999999999999999", "poll must be" },
		{ "a.img,poll=1,poll=2", "given twice" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err = NULL;
		assert_int_equal(cli_parse_disk(bad[i].spec, &d, &err), -EINVAL);
		assert_non_null(err);
		if (!strstr(err, bad[i].needle))
			fail_msg("'%s': error '%s' does not mention '%s'", bad[i].spec, err,
				 bad[i].needle);
		assert_null(strchr(err, '\n'));
		assert_null(d.path);
		g_free(err);
	}
}

static void test_run_disks_console(void **state)
{
	struct vmm_config cfg;
	enum cli_command cmd;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&cfg, &cmd, &err, "run", "--kernel", "k", "--disk", "a.img",
			       "-d", "b.img,ro", "--console", "virtio", NULL), 0);
	assert_int_equal(cfg.nr_disks, 2);
	assert_string_equal(cfg.disks[0].path, "a.img");
	assert_string_equal(cfg.disks[1].path, "b.img");
	assert_true(cfg.disks[1].read_only);
	assert_int_equal(cfg.console, VMM_CONSOLE_VIRTIO);
	/* The default command line follows the console. */
	assert_string_equal(cfg.cmdline, VMM_DEFAULT_CMDLINE_VIRTIO_CONSOLE);
	cli_config_free(&cfg);

	assert_int_equal(parse(&cfg, &cmd, &err, "run", "--kernel", "k", NULL), 0);
	assert_int_equal(cfg.nr_disks, 0);
	assert_int_equal(cfg.console, VMM_CONSOLE_SERIAL);
	cli_config_free(&cfg);

	expect_error("--console", "run", "--kernel", "k", "--console", "vga");
	expect_error("unknown option 'bogus'", "run", "--kernel", "k", "--disk", "a.img,bogus");
	assert_int_equal(parse(&cfg, &cmd, &err, "run", "--kernel", "k", "--disk", "a.img", "--disk",
			       "a.img", NULL), -EINVAL);
	assert_non_null(strstr(err, "given twice"));
	g_free(err);

	/* More disks than virtio-mmio windows. */
	char *argv[4 + 2 * (VMM_MAX_DISKS + 1) + 1];
	char names[VMM_MAX_DISKS + 1][16];
	int argc = 0;
	argv[argc++] = "vmm";
	argv[argc++] = "run";
	argv[argc++] = "--kernel";
	argv[argc++] = "k";
	for (int i = 0; i <= VMM_MAX_DISKS; i++) {
		snprintf(names[i], sizeof(names[i]), "d%d.img", i);
		argv[argc++] = "--disk";
		argv[argc++] = names[i];
	}
	argv[argc] = NULL;
	char *help = NULL;
	assert_int_equal(cli_parse(argc, argv, &cmd, &cfg, &err, &help), -EINVAL);
	assert_non_null(strstr(err, "more than"));
	g_free(err);
}

static void test_help_version(void **state)
{
	struct vmm_config cfg;
	enum cli_command cmd;
	char *err = NULL, *help = NULL;
	char *argv_help[] = { "vmm", "--help", NULL };
	char *argv_run_help[] = { "vmm", "run", "--help", NULL };
	char *argv_version[] = { "vmm", "--version", NULL };
	(void)state;

	assert_int_equal(cli_parse(2, argv_help, &cmd, &cfg, &err, &help), 0);
	assert_int_equal(cmd, CLI_HELP);
	assert_non_null(strstr(help, "vmm run"));
	g_free(help);
	assert_int_equal(cli_parse(3, argv_run_help, &cmd, &cfg, &err, &help), 0);
	assert_int_equal(cmd, CLI_HELP);
	assert_non_null(strstr(help, "--memory"));
	g_free(help);
	assert_int_equal(cli_parse(2, argv_version, &cmd, &cfg, &err, &help), 0);
	assert_int_equal(cmd, CLI_VERSION);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_run_defaults),
		cmocka_unit_test(test_run_all),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_disk),
		cmocka_unit_test(test_run_disks_console),
		cmocka_unit_test(test_help_version),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
