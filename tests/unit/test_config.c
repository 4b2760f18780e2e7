// SPDX-License-Identifier: Apache-2.0
/*
 * The configuration model: every setter refuses its bad values with one line that names the
 * field as the caller spelled it, leaves the configuration unchanged, and config_validate()
 * checks what spans fields. Then Firecracker's configuration file layout (config_json.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/config.h"
#include "vmm/config_json.h"

#define expect_msg(r, e, n) expect_msg_at(r, e, n, __LINE__)
static void expect_msg_at(int r, const struct vmm_error *e, const char *needle, int line)
{
	if (r >= 0)
		fail_msg("line %d: accepted (expected '%s')", line, needle);
	assert_int_equal(e->code, r);
	if (!strstr(e->msg, needle))
		fail_msg("line %d: message '%s' does not mention '%s'", line, e->msg, needle);
	assert_null(strchr(e->msg, '\n'));
}

static void test_defaults(void **state)
{
	struct vmm_config c;
	char *line;
	(void)state;

	config_init(&c);
	assert_int_equal(c.nr_cpus, 1);
	assert_int_equal(c.mem_size, CONFIG_DEFAULT_MEM);
	assert_int_equal(c.console, VMM_CONSOLE_SERIAL);
	assert_int_equal(c.console_in, -1);
	assert_int_equal(c.console_out, -1);
	assert_int_equal(c.mem_fd, -1);
	assert_int_equal(c.debug_exit_port, 0xf4);
	line = config_cmdline(&c);
	assert_string_equal(line, "console=ttyS0");
	free(line);
	c.console = VMM_CONSOLE_VIRTIO;
	line = config_cmdline(&c);
	assert_string_equal(line, "console=hvc0");
	free(line);
	/* No kernel: the one thing validate always wants. */
	struct vmm_error e;
	expect_msg(config_validate(&c, &e), &e, "kernel");
	config_fini(&c);
}

static void test_setters(void **state)
{
	struct vmm_config c;
	struct vmm_error e;
	(void)state;

	config_init(&c);
	expect_msg(config_set_cpus(&c, 0, "--cpus", &e), &e, "--cpus: 0 is out of range");
	expect_msg(config_set_cpus(&c, 255, "vcpu_count", &e), &e, "vcpu_count");
	assert_int_equal(c.nr_cpus, 1); /* unchanged */
	assert_int_equal(config_set_cpus(&c, 254, "cpus", &e), 0);
	assert_string_equal(c.names.cpus, "cpus");

	expect_msg(config_set_memory(&c, 0, "mem_size_mib", &e), &e, "mem_size_mib: 0");
	expect_msg(config_set_memory(&c, 3 * MiB, "--memory", &e), &e, "4 MiB minimum");
	expect_msg(config_set_memory(&c, 5 * MiB + 1, "--memory", &e), &e, "multiple of 4 KiB");
	assert_int_equal(c.mem_size, CONFIG_DEFAULT_MEM);
	assert_int_equal(config_set_memory(&c, 4 * MiB, "--memory", &e), 0);
	assert_string_equal(c.names.memory, "--memory");

	expect_msg(config_set_debug_exit_port(&c, 70000, "port", &e), &e, "not an I/O port");
	expect_msg(config_set_debug_exit_port(&c, 0x3f8, "port", &e), &e, "COM1");
	expect_msg(config_set_debug_exit_port(&c, 0x41, "port", &e), &e, "PIT");
	expect_msg(config_set_debug_exit_port(&c, 0x61, "port", &e), &e, "speaker");
	expect_msg(config_set_debug_exit_port(&c, 0x70, "port", &e), &e, "RTC");
	expect_msg(config_set_debug_exit_port(&c, 0x505, "port", &e), &e, "pvpanic");
	expect_msg(config_set_debug_exit_port(&c, 0x601, "port", &e), &e, "ACPI");
	assert_int_equal(config_set_debug_exit_port(&c, 0x501, "port", &e), 0);
	assert_int_equal(config_set_debug_exit_port(&c, 0, "port", &e), 0);

	expect_msg(config_set_id(&c, "", "--id", &e), &e, "--id");
	expect_msg(config_set_id(&c, "a b", "--id", &e), &e, "--id");
	expect_msg(config_set_id(&c, "x/../y", "--id", &e), &e, "--id");
	assert_int_equal(config_set_id(&c, "vm_1-a.b", "--id", &e), 0);

	expect_msg(config_set_path(&c.kernel, "", "kernel_image_path", &e), &e,
		   "kernel_image_path: empty");
	expect_msg(config_set_timeout(&c, -1, "--timeout", &e), &e, "--timeout");
	expect_msg(config_set_cpuid_mask(&c, "cx16,nosuch", "--cpuid-mask", &e), &e,
		   "unknown CPU feature 'nosuch'");
	assert_null(c.cpuid_mask);
	assert_int_equal(config_set_cpuid_mask(&c, "cx16,clwb", "--cpuid-mask", &e), 0);
	assert_string_equal(c.cpuid_mask, "cx16,clwb");

	char big[70000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	expect_msg(config_set_cmdline(&c, big, "boot_args", &e), &e, "boot_args");
	assert_null(c.cmdline);
	config_fini(&c);
}

static void test_disks(void **state)
{
	struct vmm_config c, copy;
	struct vmm_disk d;
	struct vmm_error e;
	char *line;
	(void)state;

	config_init(&c);
	vmm_disk_init(&d);
	d.id = "rootfs";
	d.path = "/img/root.ext4";
	d.root = true;
	assert_int_equal(config_put_disk(&c, &d, "drive", &e), 0);
	d.id = "data";
	d.path = "/img/data";
	d.root = false;
	assert_int_equal(config_put_disk(&c, &d, "drive", &e), 0);
	/* Replaced by id, order kept. */
	d.path = "/img/data2";
	d.read_only = true;
	assert_int_equal(config_put_disk(&c, &d, "drive", &e), 0);
	assert_int_equal(c.nr_disks, 2);
	assert_string_equal(c.disks[1].path, "/img/data2");
	assert_true(c.disks[1].read_only);

	/* Each bad disk one line naming it; nothing changes. */
	d.id = "data";
	d.root = true;
	expect_msg(config_put_disk(&c, &d, "drive 'data'", &e), &e, "already the root device");
	d.root = false;
	d.path = "/img/root.ext4";
	expect_msg(config_put_disk(&c, &d, "drive 'data'", &e), &e, "also disk 'rootfs'");
	d.path = NULL;
	expect_msg(config_put_disk(&c, &d, "drive 'data'", &e), &e, "no image path");
	d.path = "/img/x";
	d.id = "bad id";
	expect_msg(config_put_disk(&c, &d, "drive", &e), &e, "id 'bad id'");
	d.id = "x";
	d.serial = "";
	expect_msg(config_put_disk(&c, &d, "drive 'x'", &e), &e, "serial");
	d.serial = "012345678901234567890";
	expect_msg(config_put_disk(&c, &d, "drive 'x'", &e), &e, "serial");
	d.serial = NULL;
	d.partuuid = "abc";
	expect_msg(config_put_disk(&c, &d, "drive 'x'", &e), &e, "only for the root device");
	d.partuuid = NULL;
	d.poll_us = VMM_DISK_POLL_US_MAX + 1;
	expect_msg(config_put_disk(&c, &d, "drive 'x'", &e), &e, "poll");
	assert_int_equal(c.nr_disks, 2);
	assert_string_equal(c.disks[1].path, "/img/data2");

	/* Root first in the guest's order, and on the command line. */
	assert_string_equal(config_disk_at(&c, 0)->id, "rootfs");
	line = config_cmdline(&c);
	assert_string_equal(line, "console=ttyS0 root=/dev/vda rw");
	free(line);

	/* A copy is deep. */
	assert_int_equal(config_copy(&copy, &c), 0);
	assert_ptr_not_equal(copy.disks[0].path, c.disks[0].path);
	assert_string_equal(copy.disks[0].path, c.disks[0].path);
	config_fini(&copy);

	/* At most VMM_MAX_DISKS: with the virtio console they fill the virtio-mmio slots. */
	config_clear_disks(&c);
	vmm_disk_init(&d);
	for (int i = 0; i < VMM_MAX_DISKS + 1; i++) {
		char id[8], path[16];

		snprintf(id, sizeof(id), "d%d", i);
		snprintf(path, sizeof(path), "/d%d", i);
		d.id = id;
		d.path = path;
		int r = config_put_disk(&c, &d, "drive", &e);
		if (i < VMM_MAX_DISKS)
			assert_int_equal(r, 0);
		else
			expect_msg(r, &e, "more than");
	}
	c.kernel = strdup("k");
	assert_int_equal(config_validate(&c, &e), 0);
	c.console = VMM_CONSOLE_VIRTIO;
	assert_int_equal(config_validate(&c, &e), 0);
	c.debug_exit_port = 0x3f8; /* set behind the setter's back: validate still catches it */
	expect_msg(config_validate(&c, &e), &e, "COM1");
	config_fini(&c);
}

/* ---- Firecracker's config file ---- */

static int load_text(struct vmm_config *c, const char *text, struct vmm_error *e)
{
	return vmm_config_from_json(c, text, e);
}

static void test_config_file(void **state)
{
	struct vmm_config c;
	struct vmm_error e;
	(void)state;

	config_init(&c);
	assert_int_equal(load_text(&c,
				   "{\"boot-source\": {\"kernel_image_path\": \"/k\", \"boot_args\": "
				   "\"console=ttyS0 quiet\"},"
				   " \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 512, "
				   "\"smt\": false, \"track_dirty_pages\": false},"
				   " \"drives\": [{\"drive_id\": \"rootfs\", \"path_on_host\": \"/r\", "
				   "\"is_root_device\": true, \"is_read_only\": false}],"
				   " \"network-interfaces\": [], \"vsock\": null}",
				   &e),
			 0);
	assert_string_equal(c.kernel, "/k");
	assert_string_equal(c.cmdline, "console=ttyS0 quiet");
	assert_int_equal(c.nr_cpus, 2);
	assert_int_equal(c.mem_size, 512 * MiB);
	assert_int_equal(c.nr_disks, 1);
	assert_true(c.disks[0].root);
	assert_string_equal(c.names.memory, "mem_size_mib");

	static const struct {
		const char *json, *needle;
	} bad[] = {
		{ "not json", "not valid JSON" },
		{ "[1, 2]", "must be a JSON object" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"colour\": 1}",
		  "unknown field 'colour'" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\", \"x\": 1}}", "unknown field 'x'" },
		{ "{\"machine-config\": {\"vcpu_count\": 1, \"mem_size_mib\": 64}}",
		  "missing 'boot-source'" },
		{ "{\"boot-source\": {}}", "kernel_image_path" },
		{ "{\"boot-source\": {\"kernel_image_path\": 7}}", "kernel_image_path: must be a string" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		  "{\"vcpu_count\": \"2\", \"mem_size_mib\": 64}}", "vcpu_count: must be an integer" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		  "{\"mem_size_mib\": 64}}", "vcpu_count" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		  "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"smt\": true}}", "smt" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"machine-config\": "
		  "{\"vcpu_count\": 1, \"mem_size_mib\": 64, \"cpu_template\": \"T2\"}}",
		  "cpu_template" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": {}}",
		  "drives: must be a list" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": [{\"drive_id\": "
		  "\"a\", \"path_on_host\": \"/a\", \"is_root_device\": false, \"rate_limiter\": "
		  "{\"ops\": {\"size\": 1, \"refill_time\": 1}}}]}", "rate_limiter" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": [{\"drive_id\": "
		  "\"a\", \"path_on_host\": \"/a\"}]}", "is_root_device" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"vsock\": "
		  "{\"guest_cid\": 1, \"uds_path\": \"/v\"}}", "vsock: guest CID 1 is reserved" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"vsock\": "
		  "{\"guest_cid\": 3}}", "vsock: missing required field 'uds_path'" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"network-interfaces\": "
		  "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"rx_rate_limiter\": "
		  "{\"bandwidth\": {\"size\": 1000}}}]}",
		  "rx_rate_limiter.bandwidth: missing required field 'refill_time'" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"network-interfaces\": "
		  "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"tx_rate_limiter\": "
		  "{\"ops\": {\"size\": 0, \"refill_time\": 100}}}]}",
		  "tx_rate_limiter: ops: size and refill_time must both be 0" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"network-interfaces\": "
		  "[{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": "
		  "\"01:00:00:00:00:01\"}]}", "multicast" },
		{ "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"boot-source\": "
		  "{\"kernel_image_path\": \"/j\"}}", "duplicate" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = load_text(&c, bad[i].json, &e);

		if (r == 0)
			fail_msg("accepted: %s", bad[i].json);
		expect_msg(r, &e, bad[i].needle);
		/* Unchanged by the failure. */
		assert_string_equal(c.kernel, "/k");
		assert_int_equal(c.nr_cpus, 2);
	}
	config_fini(&c);
}

/* The file itself: missing, a directory, a FIFO (refused without blocking), too large. */
static void test_config_file_kinds(void **state)
{
	char dir[] = "/tmp/vmm-cfg-XXXXXX", path[128];
	struct vmm_config c;
	struct vmm_error e;
	(void)state;

	assert_non_null(mkdtemp(dir));
	config_init(&c);
	snprintf(path, sizeof(path), "%s/none.json", dir);
	expect_msg(vmm_config_load_file(&c, path, &e), &e, "No such file");
	expect_msg(vmm_config_load_file(&c, dir, &e), &e, "is a directory");
	snprintf(path, sizeof(path), "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	expect_msg(vmm_config_load_file(&c, path, &e), &e, "a FIFO");
	unlink(path);
	snprintf(path, sizeof(path), "%s/good.json", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"drives\": []}", f);
	fclose(f);
	assert_int_equal(vmm_config_load_file(&c, path, &e), 0);
	assert_string_equal(c.kernel, "/k");
	f = fopen(path, "w");
	fputs("{\"boot-source\": {\"kernel_image_path\": \"/k\"}, \"bogus\": []}", f);
	fclose(f);
	expect_msg(vmm_config_load_file(&c, path, &e), &e, "unknown field 'bogus'");
	assert_non_null(strstr(e.msg, path));
	unlink(path);
	rmdir(dir);
	config_fini(&c);
}

/* GET /vm/config's document reads back as a config file (Firecracker allows the round trip). */
static void test_round_trip(void **state)
{
	struct vmm_config c, back;
	struct vmm_disk d;
	struct vmm_error e;
	char *text;
	(void)state;

	config_init(&c);
	c.kernel = strdup("/k");
	c.initrd = strdup("/i");
	c.cmdline = strdup("console=ttyS0");
	c.nr_cpus = 3;
	c.mem_size = 300 * MiB;
	vmm_disk_init(&d);
	d.id = "rootfs";
	d.path = "/r";
	d.root = true;
	d.read_only = true;
	assert_int_equal(config_put_disk(&c, &d, "d", &e), 0);
	text = vmm_config_to_json(&c);
	assert_non_null(text);
	config_init(&back);
	if (vmm_config_from_json(&back, text, &e) < 0)
		fail_msg("%s: %s", text, e.msg);
	assert_string_equal(back.kernel, "/k");
	assert_string_equal(back.initrd, "/i");
	assert_int_equal(back.nr_cpus, 3);
	assert_int_equal(back.mem_size, 300 * MiB);
	assert_int_equal(back.nr_disks, 1);
	assert_true(back.disks[0].read_only);
	free(text);
	config_fini(&back);
	config_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_setters),
		cmocka_unit_test(test_disks),
		cmocka_unit_test(test_config_file),
		cmocka_unit_test(test_config_file_kinds),
		cmocka_unit_test(test_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
