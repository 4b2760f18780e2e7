// SPDX-License-Identifier: Apache-2.0
/* Option parsing: sizes, ranges, every usage error names the option. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "vmm/cli.h"
#include <stdlib.h>

static int parse(struct cli_opts *o, char **err, const char *first, ...)
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
	int r = cli_parse(argc, argv, o, err, &help);
	g_free(help);
	return r;
}

static void test_size(void **state)
{
	uint64_t v;
	(void)state;
	assert_int_equal(config_parse_size("256M", &v), 0);
	assert_int_equal(v, 256ULL << 20);
	assert_int_equal(config_parse_size("4G", &v), 0);
	assert_int_equal(v, 4ULL << 30);
	assert_int_equal(config_parse_size("4g", &v), 0);
	assert_int_equal(v, 4ULL << 30);
	assert_int_equal(config_parse_size("1024K", &v), 0);
	assert_int_equal(v, 1ULL << 20);
	assert_int_equal(config_parse_size("512", &v), 0); /* MiB, as QEMU */
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(config_parse_size("2GiB", &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(config_parse_size("4096B", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(config_parse_size("", &v), -EINVAL);
	assert_int_equal(config_parse_size("abc", &v), -EINVAL);
	assert_int_equal(config_parse_size("12X", &v), -EINVAL);
	assert_int_equal(config_parse_size("-5M", &v), -EINVAL);
	assert_int_equal(config_parse_size("1.5G", &v), -EINVAL);
	assert_int_equal(config_parse_size("99999999999999999999", &v), -ERANGE);
	assert_int_equal(config_parse_size("99999999999T", &v), -ERANGE);
}

static void test_run_defaults(void **state)
{
	struct cli_opts o;
	char *err = NULL, *line;
	(void)state;

	assert_int_equal(parse(&o, &err, "run", "--kernel", "bz", NULL), 0);
	assert_int_equal(o.cmd, CLI_RUN);
	assert_true(o.boot_now);
	assert_null(o.api_sock);
	assert_string_equal(o.cfg.kernel, "bz");
	assert_null(o.cfg.initrd);
	assert_null(o.cfg.cmdline); /* the default, by console kind: */
	line = config_cmdline(&o.cfg);
	assert_string_equal(line, CONFIG_DEFAULT_CMDLINE);
	free(line);
	assert_int_equal(o.cfg.nr_cpus, 1);
	assert_int_equal(o.cfg.mem_size, CONFIG_DEFAULT_MEM);
	assert_int_equal(o.cfg.timeout_s, 0);
	assert_int_equal(o.cfg.debug_exit_port, 0xf4);
	assert_int_equal(o.cfg.on_reboot, VMM_ON_REBOOT_EXIT);
	assert_null(o.cfg.kvm_path); /* /dev/kvm */
	cli_opts_free(&o);
}

static void test_run_all(void **state)
{
	struct cli_opts o;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--initrd", "i", "--cmdline",
			       "console=ttyS0 quiet", "--cpus", "2", "--memory", "4G", "--timeout",
			       "30", "--on-reboot", "restart", "--debug-exit-port", "0x501",
			       "--cpuid-mask", "cx16,clwb", "--api-sock", "/tmp/v.sock", "--id",
			       "vm-1", NULL),
			 0);
	assert_string_equal(o.cfg.initrd, "i");
	assert_string_equal(o.cfg.cmdline, "console=ttyS0 quiet");
	assert_int_equal(o.cfg.nr_cpus, 2);
	assert_int_equal(o.cfg.mem_size, 4ULL << 30);
	assert_int_equal(o.cfg.timeout_s, 30);
	assert_int_equal(o.cfg.on_reboot, VMM_ON_REBOOT_RESTART);
	assert_int_equal(o.cfg.debug_exit_port, 0x501);
	assert_string_equal(o.cfg.cpuid_mask, "cx16,clwb");
	assert_string_equal(o.api_sock, "/tmp/v.sock");
	assert_string_equal(o.cfg.id, "vm-1");
	assert_null(o.cfg.mem_path);
	cli_opts_free(&o);
	/* RAM in a file: the path is everything after file= (commas included). */
	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--memory", "64M,file=/dev/shm/a,b",
			       NULL),
			 0);
	assert_int_equal(o.cfg.mem_size, 64ULL << 20);
	assert_string_equal(o.cfg.mem_path, "/dev/shm/a,b");
	cli_opts_free(&o);
}

/* Each bad input fails with -EINVAL and a message that names the offending option. */
static void expect_error(const char *needle, const char *a1, const char *a2, const char *a3,
			 const char *a4, const char *a5)
{
	struct cli_opts o;
	char *err = NULL;

	assert_int_equal(parse(&o, &err, a1, a2, a3, a4, a5, NULL), -EINVAL);
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
	expect_error("'size=3' is not file=PATH", "run", "--kernel", "k", "--memory", "64M,size=3");
	expect_error("is not file=PATH", "run", "--kernel", "k", "--memory", "64M,file=");
	expect_error("--timeout", "run", "--kernel", "k", "--timeout", "-1");
	expect_error("--on-reboot", "run", "--kernel", "k", "--on-reboot", "maybe");
	expect_error("--debug-exit-port", "run", "--kernel", "k", "--debug-exit-port", "70000");
	expect_error("--frobnicate", "run", "--kernel", "k", "--frobnicate", NULL);
	expect_error("stray", "run", "--kernel", "k", "stray", NULL);
	expect_error("launch", "launch", NULL, NULL, NULL, NULL);
	expect_error("command", NULL, NULL, NULL, NULL, NULL);
	/* Ports of the platform's own devices and of KVM's in-kernel ones are usage errors. */
	expect_error("COM1", "run", "--kernel", "k", "--debug-exit-port", "0x3f8");
	expect_error("COM1", "run", "--kernel", "k", "--debug-exit-port", "0x3ff");
	expect_error("PIT", "run", "--kernel", "k", "--debug-exit-port", "0x40");
	expect_error("PIC", "run", "--kernel", "k", "--debug-exit-port", "0x20");
	expect_error("i8042", "run", "--kernel", "k", "--debug-exit-port", "0x64");
	expect_error("--id", "run", "--kernel", "k", "--id", "a b");
	expect_error("--api-sock", "run", "--kernel", "k", "--api-sock",
		     "/tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock");
}

static void test_rng(void **state)
{
	struct cli_opts o;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--rng", NULL), 0);
	assert_true(o.cfg.rng);
	assert_int_equal(o.cfg.rng_limit.bandwidth.size, 0);
	assert_int_equal(o.cfg.rng_limit.ops.size, 0);
	cli_opts_free(&o);
	assert_int_equal(parse(&o, &err, "run", "--kernel=k", NULL), 0);
	assert_false(o.cfg.rng);
	cli_opts_free(&o);
	/* Plain numbers are bytes; per second unless /MS. */
	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--rng=bytes=64K/100,ops=10,burst=1M",
			       NULL), 0);
	assert_int_equal(o.cfg.rng_limit.bandwidth.size, 64 * 1024);
	assert_int_equal(o.cfg.rng_limit.bandwidth.refill_time_ms, 100);
	assert_int_equal(o.cfg.rng_limit.bandwidth.one_time_burst, 1024 * 1024);
	assert_int_equal(o.cfg.rng_limit.ops.size, 10);
	assert_int_equal(o.cfg.rng_limit.ops.refill_time_ms, 1000);
	cli_opts_free(&o);
	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--rng=bytes=500", NULL), 0);
	assert_int_equal(o.cfg.rng_limit.bandwidth.size, 500);
	cli_opts_free(&o);

	expect_error("bytes must be SIZE[/MS]", "run", "--kernel=k", "--rng=bytes=12x", NULL, NULL);
	expect_error("bytes must be", "run", "--kernel=k", "--rng=bytes=0", NULL, NULL);
	expect_error("bytes must be", "run", "--kernel=k", "--rng=bytes=1K/0", NULL, NULL);
	expect_error("ops must be N[/MS]", "run", "--kernel=k", "--rng=ops=1M", NULL, NULL);
	expect_error("burst= needs bytes=", "run", "--kernel=k", "--rng=burst=4K", NULL, NULL);
	expect_error("unknown option 'rate'", "run", "--kernel=k", "--rng=rate=1", NULL, NULL);
	expect_error("'ops' given twice", "run", "--kernel=k", "--rng=ops=1,ops=2", NULL, NULL);
}

static void test_net(void **state)
{
	struct cli_opts o;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--net", "tap=tap7",
			       "--net=tap=tap8,mac=52:54:00:aa:bb:0c,id=uplink", NULL), 0);
	assert_int_equal(o.cfg.nr_nets, 2);
	assert_string_equal(o.cfg.nets[0].id, "net0");
	assert_string_equal(o.cfg.nets[0].tap, "tap7");
	assert_false(o.cfg.nets[0].has_mac);
	assert_string_equal(o.cfg.nets[1].id, "uplink");
	assert_true(o.cfg.nets[1].has_mac);
	assert_int_equal(o.cfg.nets[1].mac[5], 0x0c);
	cli_opts_free(&o);

	expect_error("'tap' given twice", "run", "--kernel=k", "--net=tap=a,tap=b", NULL, NULL);
	expect_error("unknown option 'model'", "run", "--kernel=k", "--net=tap=a,model=e1000",
		     NULL, NULL);
	expect_error("multicast", "run", "--kernel=k", "--net=tap=a,mac=03:00:00:00:00:01", NULL,
		     NULL);
	expect_error("is also interface 'net0'", "run", "--kernel=k", "--net=tap=a", "--net=tap=a",
		     NULL);
}

static void test_net_user(void **state)
{
	struct cli_opts o;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--net", "user", NULL), 0);
	assert_int_equal(o.cfg.nr_nets, 1);
	assert_true(o.cfg.nets[0].user);
	assert_null(o.cfg.nets[0].tap);
	assert_int_equal(o.cfg.nets[0].fd, -1);
	assert_int_equal(o.cfg.nets[0].nr_fwd, 0);
	assert_string_equal(o.cfg.nets[0].id, "net0");
	cli_opts_free(&o);

	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--net",
			       "user,hostfwd=tcp::8080-:80,hostfwd=udp:0.0.0.0:5353-10.0.2.15:53,"
			       "hostfwd=tcp:127.0.0.1:2222-:22,mac=52:54:00:aa:bb:0d,id=slirp0",
			       "--net=tap=tap9", NULL), 0);
	assert_int_equal(o.cfg.nr_nets, 2);
	const struct config_net *n = &o.cfg.nets[0];
	assert_true(n->user);
	assert_string_equal(n->id, "slirp0");
	assert_true(n->has_mac);
	assert_int_equal(n->mac[5], 0x0d);
	assert_int_equal(n->nr_fwd, 3);
	assert_false(n->fwd[0].udp);
	assert_int_equal(n->fwd[0].host_addr, htonl(INADDR_LOOPBACK));
	assert_int_equal(n->fwd[0].host_port, 8080);
	assert_int_equal(n->fwd[0].guest_addr, 0);
	assert_int_equal(n->fwd[0].guest_port, 80);
	assert_true(n->fwd[1].udp);
	assert_int_equal(n->fwd[1].host_addr, 0);
	assert_int_equal(n->fwd[1].host_port, 5353);
	assert_int_equal(n->fwd[1].guest_addr, htonl(0x0a00020f));
	assert_int_equal(n->fwd[2].host_port, 2222);
	assert_int_equal(n->mtu, 0); /* 1500, not told to the guest */
	assert_false(o.cfg.nets[1].user);
	assert_string_equal(o.cfg.nets[1].tap, "tap9");
	cli_opts_free(&o);

	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--net", "user,mtu=65520", NULL), 0);
	assert_int_equal(o.cfg.nets[0].mtu, 65520);
	cli_opts_free(&o);
	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--net", "user,mtu=68", NULL), 0);
	assert_int_equal(o.cfg.nets[0].mtu, 68);
	cli_opts_free(&o);
	expect_error("mtu must be 68 to 65520", "run", "--kernel=k", "--net=user,mtu=65521", NULL,
		     NULL);
	expect_error("mtu must be 68 to 65520", "run", "--kernel=k", "--net=user,mtu=67", NULL,
		     NULL);
	expect_error("mtu must be 68 to 65520", "run", "--kernel=k", "--net=user,mtu=-9000", NULL,
		     NULL);
	expect_error("mtu must be 68 to 65520", "run", "--kernel=k", "--net=user,mtu=9k", NULL,
		     NULL);
	expect_error("'mtu' given twice", "run", "--kernel=k", "--net=user,mtu=9000,mtu=1500",
		     NULL, NULL);
	expect_error("mtu= needs --net user", "run", "--kernel=k", "--net=tap=t0,mtu=9000", NULL,
		     NULL);

	/* Rate limits, either kind of interface. */
	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--net",
			       "tap=t0,rx-bytes=10M,tx-bytes=64K/100,tx-ops=500/10", NULL), 0);
	n = &o.cfg.nets[0];
	assert_int_equal(n->rx_limit.bandwidth.size, 10 << 20);
	assert_int_equal(n->rx_limit.bandwidth.refill_time_ms, 1000);
	assert_int_equal(n->rx_limit.ops.size, 0);
	assert_int_equal(n->tx_limit.bandwidth.size, 64 << 10);
	assert_int_equal(n->tx_limit.bandwidth.refill_time_ms, 100);
	assert_int_equal(n->tx_limit.ops.size, 500);
	assert_int_equal(n->tx_limit.ops.refill_time_ms, 10);
	cli_opts_free(&o);
	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--net", "user,rx-ops=100", NULL), 0);
	assert_int_equal(o.cfg.nets[0].rx_limit.ops.size, 100);
	cli_opts_free(&o);
	expect_error("rx-bytes must be SIZE[/MS]", "run", "--kernel=k", "--net=tap=t0,rx-bytes=fast",
		     NULL, NULL);
	expect_error("tx-ops must be N[/MS]", "run", "--kernel=k", "--net=tap=t0,tx-ops=1K", NULL,
		     NULL);
	expect_error("tx-bytes must be SIZE[/MS]", "run", "--kernel=k", "--net=tap=t0,tx-bytes=1M/0",
		     NULL, NULL);
	expect_error("'rx-bytes' given twice", "run", "--kernel=k",
		     "--net=tap=t0,rx-bytes=1M,rx-bytes=2M", NULL, NULL);
	expect_error("takes no tap=", "run", "--kernel=k", "--net=user,tap=t0", NULL, NULL);
	expect_error("takes no fd=", "run", "--kernel=k", "--net=user,fd=3", NULL, NULL);
	expect_error("'user' comes first", "run", "--kernel=k", "--net=tap=t0,user", NULL, NULL);
	expect_error("hostfwd= needs --net user", "run", "--kernel=k",
		     "--net=tap=t0,hostfwd=tcp::1-:2", NULL, NULL);
	expect_error("hostfwd 'tcp::8080'", "run", "--kernel=k", "--net=user,hostfwd=tcp::8080",
		     NULL, NULL);
	expect_error("host port '70000' is not 1 to 65535", "run", "--kernel=k",
		     "--net=user,hostfwd=tcp::70000-:80", NULL, NULL);
	expect_error("protocol 'icmp'", "run", "--kernel=k", "--net=user,hostfwd=icmp::1-:2", NULL,
		     NULL);
	expect_error("not an IPv4 address in 10.0.2.0/24", "run", "--kernel=k",
		     "--net=user,hostfwd=tcp::8080-192.168.1.1:80", NULL, NULL);
	expect_error("'hostfwd' needs a value", "run", "--kernel=k", "--net=user,hostfwd=", NULL,
		     NULL);
	expect_error("tcp port 8080 is forwarded twice", "run", "--kernel=k",
		     "--net=user,hostfwd=tcp::8080-:80,hostfwd=tcp:127.0.0.1:8080-:81", NULL, NULL);
	expect_error("also forwarded by interface 'net0'", "run", "--kernel=k",
		     "--net=user,hostfwd=tcp::8080-:80", "--net=user,hostfwd=tcp:0.0.0.0:8080-:80",
		     NULL);
	expect_error("unknown option 'model' (known: hostfwd=, mtu=", "run", "--kernel=k",
		     "--net=user,model=e1000", NULL, NULL);
}

static void test_pmem(void **state)
{
	struct cli_opts o;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--pmem", "/a.img", "--pmem",
			       "/b,,c.img,id=base,ro,root", NULL), 0);
	assert_int_equal(o.cfg.nr_pmems, 2);
	assert_string_equal(o.cfg.pmems[0].id, "pmem0");
	assert_string_equal(o.cfg.pmems[0].path, "/a.img");
	assert_false(o.cfg.pmems[0].read_only);
	assert_string_equal(o.cfg.pmems[1].id, "base");
	assert_string_equal(o.cfg.pmems[1].path, "/b,c.img");
	assert_true(o.cfg.pmems[1].read_only && o.cfg.pmems[1].root);
	/* The root pmem is the guest's first: /dev/pmem0, mounted with DAX. */
	assert_string_equal(config_pmem_at(&o.cfg, 0)->id, "base");
	char *cmd = config_cmdline(&o.cfg);
	assert_non_null(strstr(cmd, "root=/dev/pmem0 rootflags=dax ro"));
	free(cmd);
	cli_opts_free(&o);

	expect_error("unknown option 'cache'", "run", "--kernel=k", "--pmem", "/a,cache=none", NULL);
	expect_error("no file path", "run", "--kernel=k", "--pmem", ",ro", NULL);
	expect_error("is also pmem 'pmem0'", "run", "--kernel=k", "--pmem=/a", "--pmem=/a", NULL);
	expect_error("id must be", "run", "--kernel=k", "--pmem", "/a,id=a b", NULL);
}

static void test_vsock(void **state)
{
	struct cli_opts o;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&o, &err, "run", "--kernel=k", "--vsock", "cid=52,uds=/run/a,,b",
			       NULL), 0);
	assert_true(o.cfg.vsock.set);
	assert_int_equal(o.cfg.vsock.cid, 52);
	assert_string_equal(o.cfg.vsock.uds, "/run/a,b");
	cli_opts_free(&o);

	expect_error("cid= missing", "run", "--kernel=k", "--vsock", "uds=/a", NULL);
	expect_error("uds= missing", "run", "--kernel=k", "--vsock", "cid=3", NULL);
	expect_error("cid must be a number", "run", "--kernel=k", "--vsock", "cid=x,uds=/a", NULL);
	expect_error("cid must be a number", "run", "--kernel=k", "--vsock", "cid=-3,uds=/a",
		     NULL);
	expect_error("guest CID 2 is reserved", "run", "--kernel=k", "--vsock", "cid=2,uds=/a",
		     NULL);
	expect_error("guest CID 4294967295 is reserved", "run", "--kernel=k", "--vsock",
		     "cid=4294967295,uds=/a", NULL);
	expect_error("unknown option 'port'", "run", "--kernel=k", "--vsock", "cid=3,uds=/a,port=1",
		     NULL);
	expect_error("'cid' given twice", "run", "--kernel=k", "--vsock", "cid=3,cid=4,uds=/a",
		     NULL);
	expect_error("given twice (a VM has one", "run", "--kernel=k", "--vsock=cid=3,uds=/a",
		     "--vsock=cid=4,uds=/b", NULL);
	expect_error("room for _PORT", "run", "--kernel=k", "--vsock",
		     "cid=3,uds=/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL);
}

/* One --disk value into a fresh configuration; the disk it made, or NULL. */
static const struct config_disk *disk1(struct vmm_config *c, const char *spec, char **err)
{
	config_fini(c);
	config_init(c);
	if (cli_parse_disk(spec, 0, c, err) < 0)
		return NULL;
	assert_int_equal(c->nr_disks, 1);
	return &c->disks[0];
}

static void test_disk(void **state)
{
	const struct config_disk *d;
	struct vmm_config c;
	char *err = NULL;
	(void)state;

	config_init(&c);
	assert_non_null(d = disk1(&c, "a.img", &err));
	assert_string_equal(d->path, "a.img");
	assert_string_equal(d->id, "disk0");
	assert_false(d->read_only);
	assert_false(d->root);
	assert_int_equal(d->cache, VMM_CACHE_WRITEBACK);
	assert_int_equal(d->io, VMM_IO_AUTO);
	assert_null(d->serial);
	assert_int_equal(d->poll_us, VMM_DISK_POLL_US_DEFAULT);

	/* poll=: 0 turns polling off, the largest accepted value is one second */
	assert_non_null(d = disk1(&c, "a.img,poll=0", &err));
	assert_int_equal(d->poll_us, 0);
	assert_non_null(d = disk1(&c, "a.img,io=aio,poll=1000000", &err));
	assert_int_equal(d->poll_us, 1000000);
	assert_int_equal(d->io, VMM_IO_AIO);
	assert_non_null(d = disk1(&c, "a.img,poll=50,ro", &err));
	assert_int_equal(d->poll_us, 50);
	assert_true(d->read_only);

	assert_non_null(d = disk1(&c, "/x/b.img,ro,cache=none,io=aio,serial=SN-1,id=data,root",
				  &err));
	assert_string_equal(d->path, "/x/b.img");
	assert_string_equal(d->id, "data");
	assert_true(d->read_only);
	assert_true(d->root);
	assert_int_equal(d->cache, VMM_CACHE_NONE);
	assert_int_equal(d->io, VMM_IO_AIO);
	assert_string_equal(d->serial, "SN-1");

	/* ",," is a literal comma in the path; ro=off; a 20-character serial fits exactly. */
	assert_non_null(d = disk1(&c, "we,,ird.img,ro=off,io=sync,serial=01234567890123456789",
				  &err));
	assert_string_equal(d->path, "we,ird.img");
	assert_false(d->read_only);
	assert_int_equal(d->io, VMM_IO_SYNC);
	assert_string_equal(d->serial, "01234567890123456789");

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
		{ "a.img,root=2", "'root'" },
		{ "a.img,io=aio,io=sync", "given twice" },
		{ "a.img,id=a/b", "id must be" },
		{ "a.img,id=", "id must be" },
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
		assert_null(disk1(&c, bad[i].spec, &err));
		assert_non_null(err);
		if (!strstr(err, bad[i].needle))
			fail_msg("'%s': error '%s' does not mention '%s'", bad[i].spec, err,
				 bad[i].needle);
		assert_null(strchr(err, '\n'));
		assert_int_equal(c.nr_disks, 0);
		g_free(err);
	}
	config_fini(&c);
}

static void test_run_disks_console(void **state)
{
	struct cli_opts o;
	char *err = NULL, *line;
	(void)state;

	assert_int_equal(parse(&o, &err, "run", "--kernel", "k", "--disk", "a.img", "-d",
			       "b.img,ro,root", "--console", "virtio", NULL), 0);
	assert_int_equal(o.cfg.nr_disks, 2);
	assert_string_equal(o.cfg.disks[0].path, "a.img");
	assert_string_equal(o.cfg.disks[1].path, "b.img");
	assert_string_equal(o.cfg.disks[1].id, "disk1");
	assert_true(o.cfg.disks[1].read_only);
	/* The guest's order puts the root disk first (/dev/vda). */
	assert_string_equal(config_disk_at(&o.cfg, 0)->path, "b.img");
	assert_string_equal(config_disk_at(&o.cfg, 1)->path, "a.img");
	assert_int_equal(o.cfg.console, VMM_CONSOLE_VIRTIO);
	/* The default command line follows the console; a root disk adds root=. */
	line = config_cmdline(&o.cfg);
	assert_string_equal(line, CONFIG_DEFAULT_CMDLINE_VIRTIO " root=/dev/vda ro");
	free(line);
	cli_opts_free(&o);

	assert_int_equal(parse(&o, &err, "run", "--kernel", "k", NULL), 0);
	assert_int_equal(o.cfg.nr_disks, 0);
	assert_int_equal(o.cfg.console, VMM_CONSOLE_SERIAL);
	cli_opts_free(&o);

	expect_error("--console", "run", "--kernel", "k", "--console", "vga");
	expect_error("unknown option 'bogus'", "run", "--kernel", "k", "--disk", "a.img,bogus");
	assert_int_equal(parse(&o, &err, "run", "--kernel", "k", "--disk", "a.img", "--disk",
			       "a.img", NULL), -EINVAL);
	assert_non_null(strstr(err, "also disk 'disk0'"));
	g_free(err);
	assert_int_equal(parse(&o, &err, "run", "--kernel", "k", "--disk", "a.img,root", "--disk",
			       "b.img,root", NULL), -EINVAL);
	assert_non_null(strstr(err, "already the root device"));
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
	assert_int_equal(cli_parse(argc, argv, &o, &err, &help), -EINVAL);
	assert_non_null(strstr(err, "more than"));
	g_free(err);
}

static void test_help_version(void **state)
{
	struct cli_opts o;
	char *err = NULL, *help = NULL;
	char *argv_help[] = { "vmm", "--help", NULL };
	char *argv_run_help[] = { "vmm", "run", "--help", NULL };
	char *argv_version[] = { "vmm", "--version", NULL };
	(void)state;

	assert_int_equal(cli_parse(2, argv_help, &o, &err, &help), 0);
	assert_int_equal(o.cmd, CLI_HELP);
	assert_non_null(strstr(help, "vmm run"));
	g_free(help);
	assert_int_equal(cli_parse(3, argv_run_help, &o, &err, &help), 0);
	assert_int_equal(o.cmd, CLI_HELP);
	assert_non_null(strstr(help, "--memory"));
	g_free(help);
	assert_int_equal(cli_parse(2, argv_version, &o, &err, &help), 0);
	assert_int_equal(o.cmd, CLI_VERSION);
}

/* Firecracker's flags, as its launchers pass them. */
static void test_firecracker_flags(void **state)
{
	struct cli_opts o;
	char *err = NULL;
	(void)state;

	assert_int_equal(parse(&o, &err, "--api-sock", "/run/fc.sock", "--id", "vm7", NULL), 0);
	assert_int_equal(o.cmd, CLI_RUN);
	assert_false(o.boot_now); /* waits for InstanceStart */
	assert_string_equal(o.api_sock, "/run/fc.sock");
	assert_string_equal(o.cfg.id, "vm7");
	assert_null(o.config_file);
	cli_opts_free(&o);

	assert_int_equal(parse(&o, &err, "--api-sock", "/run/fc.sock", "--config-file", "c.json",
			       "--no-seccomp", NULL), 0);
	assert_string_equal(o.config_file, "c.json");
	cli_opts_free(&o);
	assert_int_equal(parse(&o, &err, "--config-file", "c.json", "--no-api", NULL), 0);
	assert_null(o.api_sock);
	cli_opts_free(&o);

	expect_error("nothing to do", "--id", "x", NULL, NULL, NULL);
	expect_error("--no-api", "--no-api", "--api-sock", "s", NULL, NULL);
	expect_error("--no-api", "--no-api", NULL, NULL, NULL, NULL);
	expect_error("--seccomp-filter", "--api-sock", "s", "--seccomp-filter", "f", NULL);
	expect_error("--id", "--api-sock", "s", "--id", "no/slash", NULL);
	expect_error("unexpected argument", "--api-sock", "s", "stray", NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_run_defaults),
		cmocka_unit_test(test_run_all),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_disk),
		cmocka_unit_test(test_rng),
		cmocka_unit_test(test_pmem),
		cmocka_unit_test(test_vsock),
		cmocka_unit_test(test_net),
		cmocka_unit_test(test_net_user),
		cmocka_unit_test(test_run_disks_console),
		cmocka_unit_test(test_help_version),
		cmocka_unit_test(test_firecracker_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
