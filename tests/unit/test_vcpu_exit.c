// SPDX-License-Identifier: Apache-2.0
/* Exit dispatch with synthetic struct kvm_run exits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vcpu_exit.h"

#define RUN_SIZE 4096

struct rec {
	uint64_t off[16];
	uint32_t val[16];
	bool write[16];
	int n;
};

static void rec_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rec *r = opaque;
	uint32_t v = 0;
	if (is_write) {
		memcpy(&v, data, len);
	} else {
		v = 0xa5a5a5a5u;
		memcpy(data, &v, len);
	}
	if (r->n < 16) {
		r->off[r->n] = offset;
		r->val[r->n] = v;
		r->write[r->n] = is_write;
		r->n++;
	}
}

struct fixture {
	struct kvm_run *run;
	struct bus pio, mmio;
	struct rec pio_rec, mmio_rec;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	f->run = calloc(1, RUN_SIZE);
	bus_init(&f->pio);
	bus_init(&f->mmio);
	assert_int_equal(bus_register(&f->pio, 0x3f8, 8, rec_io, &f->pio_rec, "com1"), 0);
	assert_int_equal(bus_register(&f->mmio, 0xd0000000, 0x1000, rec_io, &f->mmio_rec, "m"), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	free(f->run);
	free(f);
	return 0;
}

static void test_pio_out_string(void **state)
{
	struct fixture *f = *state;
	struct vcpu_exit ex;

	f->run->exit_reason = KVM_EXIT_IO;
	f->run->io.direction = KVM_EXIT_IO_OUT;
	f->run->io.size = 1;
	f->run->io.port = 0x3f8;
	f->run->io.count = 3; /* rep outsb */
	f->run->io.data_offset = 1024;
	memcpy((uint8_t *)f->run + 1024, "abc", 3);
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_int_equal(ex.action, VCPU_CONTINUE);
	assert_int_equal(f->pio_rec.n, 3);
	assert_int_equal(f->pio_rec.val[0], 'a');
	assert_int_equal(f->pio_rec.val[2], 'c');
	assert_true(f->pio_rec.write[0]);
}

static void test_pio_in_and_unmapped(void **state)
{
	struct fixture *f = *state;
	struct vcpu_exit ex;

	f->run->exit_reason = KVM_EXIT_IO;
	f->run->io.direction = KVM_EXIT_IO_IN;
	f->run->io.size = 2;
	f->run->io.port = 0x3fd;
	f->run->io.count = 1;
	f->run->io.data_offset = 512;
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_int_equal(ex.action, VCPU_CONTINUE);
	assert_int_equal(f->pio_rec.off[0], 5);
	assert_int_equal(*(uint16_t *)((uint8_t *)f->run + 512), 0xa5a5);

	/* Nothing at 0x80: reads float to all-ones and are counted, never fatal. */
	f->run->io.port = 0x80;
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_int_equal(ex.action, VCPU_CONTINUE);
	assert_int_equal(*(uint16_t *)((uint8_t *)f->run + 512), 0xffff);
	assert_int_equal(f->pio.unmapped_reads, 1);
}

static void test_pio_malformed(void **state)
{
	struct fixture *f = *state;
	struct vcpu_exit ex;

	f->run->exit_reason = KVM_EXIT_IO;
	f->run->io.direction = KVM_EXIT_IO_OUT;
	f->run->io.size = 4;
	f->run->io.port = 0x3f8;
	f->run->io.count = 2000; /* 8000 bytes: beyond the mapping */
	f->run->io.data_offset = 1024;
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_int_equal(ex.action, VCPU_STOP);
	assert_int_equal(ex.reason, VMM_STOP_FATAL);
	assert_int_equal(f->pio_rec.n, 0);

	f->run->io.count = 1;
	f->run->io.size = 3;
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_int_equal(ex.reason, VMM_STOP_FATAL);
}

static void test_mmio(void **state)
{
	struct fixture *f = *state;
	struct vcpu_exit ex;

	f->run->exit_reason = KVM_EXIT_MMIO;
	f->run->mmio.phys_addr = 0xd0000070;
	f->run->mmio.len = 4;
	f->run->mmio.is_write = 1;
	uint32_t v = 0x12345678;
	memcpy(f->run->mmio.data, &v, 4);
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_int_equal(ex.action, VCPU_CONTINUE);
	assert_int_equal(f->mmio_rec.off[0], 0x70);
	assert_int_equal(f->mmio_rec.val[0], 0x12345678);

	f->run->mmio.len = 9;
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_int_equal(ex.action, VCPU_STOP);
	assert_int_equal(ex.reason, VMM_STOP_FATAL);
}

static void expect_stop(struct fixture *f, enum vmm_stop_reason reason, bool dump)
{
	struct vcpu_exit ex;
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_int_equal(ex.action, VCPU_STOP);
	assert_int_equal(ex.reason, reason);
	assert_int_equal(ex.dump_regs, dump);
	assert_true(ex.msg[0] != '\0');
}

static void test_stops(void **state)
{
	struct fixture *f = *state;
	struct vcpu_exit ex;

	f->run->exit_reason = KVM_EXIT_SHUTDOWN;
	expect_stop(f, VMM_STOP_TRIPLE_FAULT, true);

	f->run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	f->run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	f->run->internal.ndata = 1;
	f->run->internal.data[0] = 0xcc;
	expect_stop(f, VMM_STOP_FATAL, true);
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_non_null(strstr(ex.msg, "emulation failure"));

	f->run->exit_reason = KVM_EXIT_FAIL_ENTRY;
	f->run->fail_entry.hardware_entry_failure_reason = 0x21;
	expect_stop(f, VMM_STOP_FATAL, true);
	vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
	assert_non_null(strstr(ex.msg, "0x21"));

	f->run->exit_reason = KVM_EXIT_SYSTEM_EVENT;
	f->run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	expect_stop(f, VMM_STOP_POWEROFF, false);
	f->run->system_event.type = KVM_SYSTEM_EVENT_RESET;
	expect_stop(f, VMM_STOP_REBOOT, false);
	f->run->system_event.type = KVM_SYSTEM_EVENT_CRASH;
	expect_stop(f, VMM_STOP_PANIC, false);
	f->run->system_event.type = 77;
	expect_stop(f, VMM_STOP_FATAL, true);

	f->run->exit_reason = KVM_EXIT_HYPERCALL;
	expect_stop(f, VMM_STOP_FATAL, true);
	f->run->exit_reason = 9999;
	expect_stop(f, VMM_STOP_FATAL, true);
}

static void test_continue(void **state)
{
	struct fixture *f = *state;
	struct vcpu_exit ex;
	static const uint32_t reasons[] = { KVM_EXIT_INTR, KVM_EXIT_HLT, KVM_EXIT_IRQ_WINDOW_OPEN };

	for (size_t i = 0; i < 3; i++) {
		f->run->exit_reason = reasons[i];
		vcpu_handle_exit(f->run, RUN_SIZE, &f->pio, &f->mmio, &ex);
		assert_int_equal(ex.action, VCPU_CONTINUE);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pio_out_string, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pio_in_and_unmapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pio_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mmio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_continue, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
