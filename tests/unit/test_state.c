// SPDX-License-Identifier: Apache-2.0
/*
 * The state blob (vmm/state): a round trip of every kind of node (the container itself, the
 * configuration, each legacy device, a virtio device with its queues), the refusals (truncated,
 * bit-flipped, newer format, not a state, a tree that is not one, wrong property lengths), and
 * the golden state file of format version 1 (tests/unit/data/state-v1.bin, a snapshot of the
 * micro-guest's count scenario with a 1 MiB disk) that every later version must still read;
 * and a vCPU whose CR3 lies outside guest RAM, refused on save and load.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "vmm/device.h"
#include "vmm/devices.h"
#include "vmm/file.h"
#include "vmm/layout.h"
#include "vmm/serial.h"
#include "vmm/state.h"
#include "vmm/state_config.h"
#include "vmm/virtio_blk.h"
#include "../../vmm/vm/x86_state.h"

static const char *golden_path;

/* A finished state with one node and a few properties. */
static uint8_t *make_state(size_t *len)
{
	struct state_writer w;
	uint8_t *out;
	int n;

	assert_int_equal(state_writer_init(&w), 0);
	n = state_node(&w, 0, "thing");
	state_put_u32(&w, n, "u32", 0xdeadbeef);
	state_put_u64(&w, n, "u64", 0x0123456789abcdefULL);
	state_put_str(&w, n, "str", "hello");
	state_put(&w, n, "bytes", "\x01\x02\x03", 3);
	/* Big enough to make the buffer grow several times. */
	static uint8_t big[300000];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	state_put(&w, state_node(&w, n, "child@1"), "big", big, sizeof(big));
	assert_int_equal(state_finish(&w, &out, len), 0);
	return out;
}

static void test_round_trip(void **state)
{
	struct state_reader r;
	size_t len, l;
	uint8_t *buf = make_state(&len);
	char err[256];
	uint32_t u32;
	uint64_t u64;
	uint8_t three[3];
	(void)state;

	assert_int_equal(state_open(&r, buf, len, err, sizeof(err)), 0);
	assert_int_equal(r.version, STATE_FORMAT_VERSION);
	int n = state_find(&r, "/thing");
	assert_true(n >= 0);
	assert_int_equal(state_get_u32(&r, n, "u32", &u32), 0);
	assert_int_equal(u32, 0xdeadbeef);
	assert_int_equal(state_get_u64(&r, n, "u64", &u64), 0);
	assert_int_equal(u64, 0x0123456789abcdefULL);
	assert_string_equal(state_get_str(&r, n, "str", 16), "hello");
	assert_null(state_get_str(&r, n, "str", 3)); /* longer than allowed */
	assert_null(state_get_str(&r, n, "bytes", 16)); /* not a string */
	assert_int_equal(state_get(&r, n, "bytes", three, 3), 0);
	assert_memory_equal(three, "\x01\x02\x03", 3);
	/* Exact lengths only. */
	assert_int_equal(state_get(&r, n, "bytes", three, 2), -EINVAL);
	assert_int_equal(state_get_u32(&r, n, "u64", &u32), -EINVAL);
	assert_int_equal(state_get_u32(&r, n, "absent", &u32), -ENOENT);
	const uint8_t *big = state_get_ptr(&r, state_find(&r, "/thing/child@1"), "big", &l);
	assert_non_null(big);
	assert_int_equal(l, 300000);
	assert_int_equal(big[12345], (uint8_t)(12345 * 7));
	assert_int_equal(state_first_child(&r, n), state_find(&r, "/thing/child@1"));
	assert_string_equal(state_node_name(&r, state_first_child(&r, n)), "child@1");
	assert_true(state_find(&r, "/nothing") < 0);
	free(buf);
}

static void expect_refused(const uint8_t *buf, size_t len, const char *needle)
{
	struct state_reader r;
	char err[256] = "";

	assert_true(state_open(&r, buf, len, err, sizeof(err)) < 0);
	if (!strstr(err, needle))
		fail_msg("'%s' does not mention '%s'", err, needle);
}

static void fix_crc(uint8_t *buf)
{
	uint64_t blob;
	uint32_t crc;

	memcpy(&blob, buf + 16, 8);
	crc = (uint32_t)crc32(0, buf + STATE_HEADER_LEN, (uInt)blob);
	memcpy(buf + 24, &crc, 4);
}

static void test_refusals(void **state)
{
	size_t len;
	uint8_t *buf = make_state(&len), *bad = malloc(len);
	(void)state;

	/* Every truncation is refused, never read past. */
	for (size_t l = 0; l < len; l += (l < 64 ? 1 : 997))
		expect_refused(buf, l, l < 8 ? "not a vmm state" : "truncated");
	/* Every single-bit flip in the blob is caught by the CRC. */
	for (size_t i = STATE_HEADER_LEN; i < len; i += 131) {
		memcpy(bad, buf, len);
		bad[i] ^= 0x04;
		expect_refused(bad, len, "CRC mismatch");
	}
	memcpy(bad, buf, len);
	bad[8] = 2; /* format version 2 */
	expect_refused(bad, len, "format version 2 is newer than this vmm's 1");
	memcpy(bad, buf, len);
	bad[0] = 'X';
	expect_refused(bad, len, "not a vmm state");
	memcpy(bad, buf, len);
	bad[12] = 40; /* header length */
	expect_refused(bad, len, "bad header");
	/* A tree that is not one, with a CRC that matches it. */
	memcpy(bad, buf, len);
	memset(bad + STATE_HEADER_LEN + 8, 0xff, 8); /* off_dt_struct, off_dt_strings */
	fix_crc(bad);
	expect_refused(bad, len, "malformed state tree");
	/* An old FDT version (no struct size: libfdt 1.6 would read past the buffer), and a tree
	 * whose own size is not the blob's (found by fuzz_handover). */
	memcpy(bad, buf, len);
	bad[STATE_HEADER_LEN + 23] = 11; /* version, big-endian */
	bad[STATE_HEADER_LEN + 27] = 1;  /* last_comp_version */
	fix_crc(bad);
	expect_refused(bad, len, "not a version 17 tree");
	memcpy(bad, buf, len);
	bad[STATE_HEADER_LEN + 7] ^= 0x04; /* totalsize */
	fix_crc(bad);
	expect_refused(bad, len, "not a version 17 tree");
	/* A tree of another kind. */
	memcpy(bad, buf, len);
	uint8_t *c = memmem(bad, len, STATE_COMPATIBLE, strlen(STATE_COMPATIBLE));
	assert_non_null(c);
	c[strlen(STATE_COMPATIBLE) - 1] = '9';
	fix_crc(bad);
	expect_refused(bad, len, "not a vmm-state-v1 state");
	free(bad);
	free(buf);
}

/* The configuration through the state and back. */
static void test_config_node(void **state)
{
	struct vmm_config c, back;
	struct state_writer w;
	struct state_reader r;
	struct vmm_disk d;
	struct vmm_error e;
	uint8_t *buf;
	size_t len;
	char err[256];
	(void)state;

	config_init(&c);
	assert_int_equal(config_set_cpus(&c, 3, "cpus", &e), 0);
	assert_int_equal(config_set_memory(&c, 300 * MiB, "memory", &e), 0);
	assert_int_equal(config_set_id(&c, "vm-7", "id", &e), 0);
	assert_int_equal(config_set_cpuid_mask(&c, "cx16", "m", &e), 0);
	c.console = VMM_CONSOLE_VIRTIO;
	c.on_reboot = VMM_ON_REBOOT_RESTART;
	c.kernel = strdup("/k");
	assert_int_equal(config_set_memory_file(&c, "/dev/shm/ram", "m", &e), 0);
	vmm_disk_init(&d);
	d.id = "b";
	d.path = "/b.img";
	d.io = VMM_IO_AIO;
	d.serial = "SER";
	assert_int_equal(config_put_disk(&c, &d, "d", &e), 0);
	d.id = "a";
	d.path = "/a.img";
	d.root = true;
	d.read_only = true;
	d.serial = NULL;
	assert_int_equal(config_put_disk(&c, &d, "d", &e), 0);
	struct vmm_rate_limiter rl = {.bandwidth = {.size = 4096, .one_time_burst = 1,
						    .refill_time_ms = 10},
				      .ops = {.size = 7, .refill_time_ms = 1000}};
	assert_int_equal(config_set_entropy(&c, true, &rl, "entropy", &e), 0);
	struct vmm_pmem pm;
	vmm_pmem_init(&pm);
	pm.id = "pa";
	pm.path = "/pa.img";
	assert_int_equal(config_put_pmem(&c, &pm, "p", &e), 0);
	pm.id = "pb";
	pm.path = "/pb.img";
	pm.read_only = true;
	pm.root = true;
	assert_int_equal(config_put_pmem(&c, &pm, "p", &e), 0);
	struct vmm_vsock vs;
	vmm_vsock_init(&vs);
	vs.cid = 77;
	vs.uds_path = "/run/vm.vsock";
	assert_int_equal(config_set_vsock(&c, &vs, "vsock", &e), 0);
	struct vmm_net nu;
	vmm_net_init(&nu);
	nu.id = "u0";
	nu.user = true;
	nu.hostfwd = "tcp::8080-:80";
	nu.mtu = 65520;
	nu.tx_rate_limiter.bandwidth =
		(struct vmm_token_bucket){.size = 1 << 20, .one_time_burst = 9, .refill_time_ms = 50};
	assert_int_equal(config_put_net(&c, &nu, "n", &e), 0);

	assert_int_equal(state_writer_init(&w), 0);
	config_state_save(&c, &w);
	assert_int_equal(state_finish(&w, &buf, &len), 0);
	assert_int_equal(state_open(&r, buf, len, err, sizeof(err)), 0);
	config_init(&back);
	if (config_state_load(&back, &r, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(back.nr_cpus, 3);
	assert_int_equal(back.mem_size, 300 * MiB);
	assert_string_equal(back.id, "vm-7");
	assert_string_equal(back.cpuid_mask, "cx16");
	assert_string_equal(back.kernel, "/k");
	assert_string_equal(back.mem_path, "/dev/shm/ram");
	assert_int_equal(back.console, VMM_CONSOLE_VIRTIO);
	assert_int_equal(back.on_reboot, VMM_ON_REBOOT_RESTART);
	assert_int_equal(back.nr_disks, 2);
	/* Configuration order kept (b then a), the root still first for the guest. */
	assert_string_equal(back.disks[0].id, "b");
	assert_string_equal(back.disks[0].serial, "SER");
	assert_int_equal(back.disks[0].io, VMM_IO_AIO);
	assert_string_equal(back.disks[1].id, "a");
	assert_true(back.disks[1].root && back.disks[1].read_only);
	assert_string_equal(config_disk_at(&back, 0)->id, "a");
	assert_true(back.rng);
	assert_memory_equal(&back.rng_limit, &rl, sizeof(rl));
	assert_int_equal(back.nr_pmems, 2);
	assert_string_equal(back.pmems[0].id, "pa");
	assert_string_equal(back.pmems[1].path, "/pb.img");
	assert_true(back.pmems[1].read_only && back.pmems[1].root);
	assert_false(back.pmems[0].read_only);
	assert_true(back.vsock.set);
	assert_int_equal(back.vsock.cid, 77);
	assert_string_equal(back.vsock.uds, "/run/vm.vsock");
	assert_int_equal(back.vsock.fd, -1);
	assert_int_equal(back.nr_nets, 1);
	assert_true(back.nets[0].user);
	assert_int_equal(back.nets[0].nr_fwd, 1);
	assert_int_equal(back.nets[0].fwd[0].host_port, 8080);
	assert_int_equal(back.nets[0].mtu, 65520);
	assert_memory_equal(&back.nets[0].tx_limit, &nu.tx_rate_limiter, sizeof(nu.tx_rate_limiter));
	assert_int_equal(back.nets[0].rx_limit.bandwidth.size, 0);
	config_fini(&back);
	free(buf);

	/* Without the device, none comes back. */
	assert_int_equal(config_set_entropy(&c, false, NULL, "entropy", &e), 0);
	assert_int_equal(config_set_vsock(&c, NULL, "vsock", &e), 0);
	assert_int_equal(state_writer_init(&w), 0);
	config_state_save(&c, &w);
	assert_int_equal(state_finish(&w, &buf, &len), 0);
	assert_int_equal(state_open(&r, buf, len, err, sizeof(err)), 0);
	config_init(&back);
	back.rng = true;
	assert_int_equal(config_state_load(&back, &r, err, sizeof(err)), 0);
	assert_false(back.rng);
	assert_false(back.vsock.set);
	config_fini(&back);
	config_fini(&c);
	free(buf);
}

/* Each legacy device's state through its save and load. */
static void irq_nop(void *opaque, unsigned int gsi, int level)
{
}

static void test_legacy_devices(void **state)
{
	static const struct device_row legacy[] = {
		{ &serial_device_ops, NULL }, { &i8042_device_ops, NULL },
		{ &rtc_device_ops, NULL },    { &pvpanic_device_ops, NULL },
		{ &acpi_pm_device_ops, NULL }, { &debug_exit_device_ops, NULL },
	};
	struct vmm_config cfg;
	struct bus pio, mmio;
	struct device_host h = { .cfg = &cfg, .pio = &pio, .mmio = &mmio,
				 .irq = { irq_nop, NULL } };
	struct device_table a = { 0 }, b = { 0 };
	struct state_writer w;
	struct state_reader r;
	uint8_t *buf, v;
	size_t len;
	char err[256];
	(void)state;

	config_init(&cfg);
	cfg.console_out = -1;
	bus_init(&pio);
	bus_init(&mmio);
	assert_int_equal(devtable_realize(&a, legacy, 6, &h, err, sizeof(err)), 0);
	/* Give every device some state: UART scratch and divisor, CMOS RAM, an i8042 CTR. */
	v = 0x5a;
	bus_access(&pio, PORT_COM1 + 7, &v, 1, true);
	v = 0x80;
	bus_access(&pio, PORT_COM1 + 3, &v, 1, true);
	v = 0x03;
	bus_access(&pio, PORT_COM1, &v, 1, true);
	v = 0x40;
	bus_access(&pio, PORT_CMOS, &v, 1, true);
	v = 0x99;
	bus_access(&pio, PORT_CMOS + 1, &v, 1, true);
	v = 0x60;
	bus_access(&pio, PORT_I8042_CMD, &v, 1, true);
	v = 0x45;
	bus_access(&pio, PORT_I8042_DATA, &v, 1, true);
	i8042_send_ctrl_alt_del(devtable_find(&a, "i8042")->priv);

	assert_int_equal(state_writer_init(&w), 0);
	assert_int_equal(devtable_save(&a, &w, err, sizeof(err)), 0);
	assert_int_equal(state_finish(&w, &buf, &len), 0);
	assert_int_equal(state_open(&r, buf, len, err, sizeof(err)), 0);

	/* Into fresh devices on fresh buses: they read back what the first ones had. */
	bus_init(&pio);
	assert_int_equal(devtable_realize(&b, legacy, 6, &h, err, sizeof(err)), 0);
	if (devtable_load(&b, &r, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	bus_access(&pio, PORT_COM1 + 7, &v, 1, false);
	assert_int_equal(v, 0x5a);
	bus_access(&pio, PORT_COM1, &v, 1, false); /* DLAB still set: the divisor */
	assert_int_equal(v, 0x03);
	v = 0x40;
	bus_access(&pio, PORT_CMOS, &v, 1, true);
	bus_access(&pio, PORT_CMOS + 1, &v, 1, false);
	assert_int_equal(v, 0x99);
	v = 0x20;
	bus_access(&pio, PORT_I8042_CMD, &v, 1, true);
	bus_access(&pio, PORT_I8042_DATA, &v, 1, false);
	/* The CTR read drops the pending scan code from the buffer; the queue follows. */
	assert_int_equal(v, 0x45);
	devtable_unrealize(&b);

	/* A set of devices that differs, and a device of another kind, are refused by name. */
	static const struct device_row fewer[] = { { &serial_device_ops, NULL } };
	bus_init(&pio);
	assert_int_equal(devtable_realize(&b, fewer, 1, &h, err, sizeof(err)), 0);
	assert_true(devtable_load(&b, &r, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "the state has a device"));
	devtable_unrealize(&b);
	devtable_unrealize(&a);
	config_fini(&cfg);
	free(buf);
}

/* A virtio-blk device (no transport) with an enabled queue, through its save and load. */
static void test_virtio_device(void **state)
{
	char img[] = "/tmp/vmm-state-img-XXXXXX", err[256];
	struct guest_mem gm;
	struct ev_loop *loop;
	struct virtio_blk *x, *y;
	struct state_writer w;
	struct state_reader r;
	uint8_t *buf;
	size_t len;
	int fd = mkstemp(img);
	(void)state;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MiB), 0);
	close(fd);
	assert_int_equal(gm_create(&gm, 4 * MiB), 0);
	assert_int_equal(ev_loop_create(&loop, THREAD_IO), 0);
	struct virtio_blk_config bc = { .label = "disk 'x'", .path = img, .fd = -1,
					.engine = BLK_ENGINE_SYNC, .engine_fixed = true,
					.nr_queues = 2 };
	assert_int_equal(virtio_blk_create(&x, &bc, &gm, loop, err, sizeof(err)), 0);
	struct virtio_device *vx = virtio_blk_device(x);
	pthread_mutex_lock(&vx->lock);
	vx->driver_features = vx->device_features;
	vx->status = 1 | 2 | 8; /* ACK, DRIVER, FEATURES_OK */
	vx->vq[1].size = 16;
	vx->vq[1].desc_gpa = 0x10000;
	vx->vq[1].avail_gpa = 0x11000;
	vx->vq[1].used_gpa = 0x12000;
	vx->vq[1].ready = true;
	assert_int_equal(vq_enable(&vx->vq[1], &gm, vx->queue_max_size, true, true), 0);
	vx->vq[1].last_avail = 7;
	vx->vq[1].used_idx = 5;
	assert_int_equal(state_writer_init(&w), 0);
	struct dev_state_writer dw = { &w, state_node(&w, 0, "x") };
	virtio_device_save(vx, &dw);
	pthread_mutex_unlock(&vx->lock);
	assert_int_equal(state_finish(&w, &buf, &len), 0);
	assert_int_equal(state_open(&r, buf, len, err, sizeof(err)), 0);

	virtio_blk_destroy(x); /* its lock goes: y can have the image */
	assert_int_equal(virtio_blk_create(&y, &bc, &gm, loop, err, sizeof(err)), 0);
	struct virtio_device *vy = virtio_blk_device(y);
	struct dev_state_reader dr = { &r, state_find(&r, "/x") };
	pthread_mutex_lock(&vy->lock);
	if (virtio_device_load(vy, &dr, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(vy->status, 1 | 2 | 8);
	assert_true(vy->vq[1].enabled);
	assert_int_equal(vy->vq[1].size, 16);
	assert_int_equal(vy->vq[1].last_avail, 7);
	assert_int_equal(vy->vq[1].used_idx, 5);
	assert_false(vy->vq[0].enabled);
	pthread_mutex_unlock(&vy->lock);
	virtio_blk_destroy(y);

	/* The image grew since: another capacity, refused by name. */
	assert_int_equal(truncate(img, 2 * MiB), 0);
	assert_int_equal(virtio_blk_create(&y, &bc, &gm, loop, err, sizeof(err)), 0);
	vy = virtio_blk_device(y);
	pthread_mutex_lock(&vy->lock);
	assert_int_equal(virtio_device_load(vy, &dr, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "configuration differs"));
	pthread_mutex_unlock(&vy->lock);
	virtio_blk_destroy(y);
	ev_loop_destroy(loop);
	gm_destroy(&gm);
	unlink(img);
	free(buf);
}

/*
 * The golden state file of format version 1: whatever later versions change, they read it.
 * Every node is looked at: the configuration loads, each vCPU has every KVM struct at its
 * size, the VM node its chips and clock, each device loads into a fresh device of its kind.
 */
static void test_golden_v1(void **state)
{
	struct state_reader r;
	struct vmm_config c;
	uint8_t *buf;
	size_t len;
	char err[256];
	(void)state;

	assert_int_equal(file_read_all("golden", golden_path, 1 << 20, &buf, &len, err, sizeof(err)),
			 0);
	if (state_open(&r, buf, len, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(r.version, 1);
	config_init(&c);
	if (config_state_load(&c, &r, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_int_equal(c.nr_cpus, 1);
	assert_int_equal(c.mem_size, 16 * MiB);
	assert_int_equal(c.nr_disks, 1);
	assert_string_equal(c.disks[0].id, "disk0");

	static const struct {
		const char *prop;
		size_t len;
	} vcpu_props[] = {
		{ "KVM_GET_MP_STATE", sizeof(struct kvm_mp_state) },
		{ "KVM_GET_REGS", sizeof(struct kvm_regs) },
		{ "KVM_GET_SREGS", sizeof(struct kvm_sregs) },
		{ "KVM_GET_XSAVE", 4096 },
		{ "KVM_GET_DEBUGREGS", sizeof(struct kvm_debugregs) },
		{ "KVM_GET_LAPIC", sizeof(struct kvm_lapic_state) },
		{ "KVM_GET_VCPU_EVENTS", sizeof(struct kvm_vcpu_events) },
	};
	int cpu = state_find(&r, "/vcpus/cpu@0");
	size_t l;
	assert_true(cpu >= 0);
	for (size_t i = 0; i < ARRAY_SIZE(vcpu_props); i++) {
		assert_non_null(state_get_ptr(&r, cpu, vcpu_props[i].prop, &l));
		assert_int_equal(l, vcpu_props[i].len);
	}
	assert_non_null(state_get_ptr(&r, cpu, "KVM_SET_CPUID2", &l));
	assert_int_equal(l % sizeof(struct kvm_cpuid_entry2), 0);
	assert_non_null(state_get_ptr(&r, cpu, "KVM_GET_MSRS", &l));
	int vm = state_find(&r, "/vm");
	assert_non_null(state_get_ptr(&r, vm, "KVM_GET_CLOCK", &l));
	assert_int_equal(l, sizeof(struct kvm_clock_data));
	assert_non_null(state_get_ptr(&r, vm, "KVM_GET_PIT2", &l));
	assert_int_equal(l, sizeof(struct kvm_pit_state2));
	assert_non_null(state_get_ptr(&r, vm, "KVM_GET_IRQCHIP-ioapic", &l));
	assert_int_equal(l, sizeof(struct kvm_irqchip));
	assert_non_null(state_get_str(&r, state_find(&r, "/host"), "cpu-vendor", 13));

	/* The legacy devices load into fresh ones. */
	static const struct device_ops *const ops[] = {
		&serial_device_ops, &i8042_device_ops, &rtc_device_ops, &pvpanic_device_ops,
		&acpi_pm_device_ops, &debug_exit_device_ops,
	};
	static const char *const ids[] = { "com1", "i8042", "rtc", "pvpanic", "acpi-pm",
					   "debug-exit" };
	struct bus pio, mmio;
	struct device_host h = { .cfg = &c, .pio = &pio, .mmio = &mmio, .irq = { irq_nop, NULL } };
	bus_init(&pio);
	bus_init(&mmio);
	c.console_out = -1;
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		struct device d = { .ops = ops[i] };
		char path[64];

		assert_int_equal(ops[i]->realize(&d, &h, 0, err, sizeof(err)), 0);
		snprintf(path, sizeof(path), "/devices/%s", ids[i]);
		struct dev_state_reader dr = { &r, state_find(&r, path) };
		assert_true(dr.node >= 0);
		if (ops[i]->load(&d, &dr, err, sizeof(err)) < 0)
			fail_msg("%s: %s", ids[i], err);
		ops[i]->unrealize(&d);
		bus_init(&pio);
	}
	/* The disk: a virtio-blk of the same size takes its state. */
	char img[] = "/tmp/vmm-golden-img-XXXXXX";
	int fd = mkstemp(img);
	struct guest_mem gm;
	struct ev_loop *loop;
	struct virtio_blk *b;
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MiB), 0);
	close(fd);
	assert_int_equal(gm_create(&gm, c.mem_size), 0);
	assert_int_equal(ev_loop_create(&loop, THREAD_IO), 0);
	struct virtio_blk_config bc = { .label = "disk 'disk0'", .path = img, .fd = -1,
					.engine = BLK_ENGINE_SYNC, .engine_fixed = true,
					.nr_queues = 1, .poll_us = c.disks[0].poll_us };
	assert_int_equal(virtio_blk_create(&b, &bc, &gm, loop, err, sizeof(err)), 0);
	struct dev_state_reader dr = { &r, state_find(&r, "/devices/disk0") };
	struct virtio_device *vd = virtio_blk_device(b);
	pthread_mutex_lock(&vd->lock);
	if (virtio_device_load(vd, &dr, err, sizeof(err)) < 0)
		fail_msg("disk0: %s", err);
	assert_true(vd->vq[0].enabled);
	pthread_mutex_unlock(&vd->lock);
	virtio_blk_destroy(b);
	ev_loop_destroy(loop);
	gm_destroy(&gm);
	unlink(img);
	config_fini(&c);
	free(buf);
}

/* A paging guest's CR3 must name a table in its RAM; without paging it means nothing. */
static void test_cr3_outside_ram(void **state)
{
	struct guest_mem gm;
	struct kvm_sregs s;
	char err[160];

	(void)state;
	assert_int_equal(gm_create(&gm, 64 << 20), 0);
	memset(&s, 0, sizeof(s));
	s.cr3 = 0x121e1e000ULL; /* as a test host's emulator left one (README) */
	assert_int_equal(x86_cr3_check(&gm, &s, "cpu 0", err, sizeof(err)), 0); /* paging off */
	s.cr0 = 0x80050033; /* PG PE ... */
	s.cr4 = 0x20;       /* PAE */
	s.efer = 0xd01;     /* LMA LME SCE NX: 4-level */
	assert_int_equal(x86_cr3_check(&gm, &s, "cpu 0", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "cpu 0: CR3 0x121e1e000 lies outside guest RAM"));
	s.cr3 = 0x1000;
	assert_int_equal(x86_cr3_check(&gm, &s, "cpu 0", err, sizeof(err)), 0);
	s.cr3 = 0x1000 | 0x5; /* a PCID in the low bits */
	assert_int_equal(x86_cr3_check(&gm, &s, "cpu 0", err, sizeof(err)), 0);
	s.cr3 = (64 << 20) - 4096; /* the last page */
	assert_int_equal(x86_cr3_check(&gm, &s, "cpu 0", err, sizeof(err)), 0);
	s.cr3 = 64 << 20;
	assert_int_equal(x86_cr3_check(&gm, &s, "cpu 0", err, sizeof(err)), -EINVAL);
	/* 32-bit PAE: a 32-byte table, bits 31:5. */
	s.efer = 0;
	s.cr3 = (64 << 20) - 32;
	assert_int_equal(x86_cr3_check(&gm, &s, "cpu 0", err, sizeof(err)), 0);
	s.cr3 = (64 << 20) - 16; /* bits 4:0 are ignored: the same table */
	assert_int_equal(x86_cr3_check(&gm, &s, "cpu 0", err, sizeof(err)), 0);
	s.cr3 = 64 << 20;
	assert_int_equal(x86_cr3_check(&gm, &s, "cpu 0", err, sizeof(err)), -EINVAL);
	gm_destroy(&gm);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_cr3_outside_ram),
		cmocka_unit_test(test_config_node),
		cmocka_unit_test(test_legacy_devices),
		cmocka_unit_test(test_virtio_device),
		cmocka_unit_test(test_golden_v1),
	};

	golden_path = argc > 1 ? argv[1] : "tests/unit/data/state-v1.bin";
	return cmocka_run_group_tests(tests, NULL, NULL);
}
