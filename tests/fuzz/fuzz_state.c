// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the state parser: what a snapshot file or a live update hands us is
 * untrusted. The bytes go through state_open() (header, CRC, libfdt's full check), then the
 * configuration node and every legacy device's load. A CRC is in the way of most mutations: the
 * first input byte says whether to fix it up, so that the readers behind it are reached.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vmm/device.h"
#include "vmm/state.h"
#include "vmm/state_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void irq_nop(void *opaque, unsigned int gsi, int level)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct device_ops *const ops[] = {
		&serial_device_ops, &i8042_device_ops, &rtc_device_ops, &pvpanic_device_ops,
		&acpi_pm_device_ops, &debug_exit_device_ops,
	};
	struct state_reader r;
	struct vmm_config c;
	char err[256];
	uint8_t *buf;

	if (size < 1)
		return 0;
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	size--;
	if ((data[0] & 1) && size >= STATE_HEADER_LEN) {
		uint64_t blob;
		uint32_t crc;

		memcpy(&blob, buf + 16, 8);
		if (blob <= size - STATE_HEADER_LEN) {
			crc = (uint32_t)crc32(0, buf + STATE_HEADER_LEN, (uInt)blob);
			memcpy(buf + 24, &crc, 4);
		}
	}
	if (state_open(&r, buf, size, err, sizeof(err)) == 0) {
		struct bus pio, mmio;
		struct device_host h = { .cfg = &c, .pio = &pio, .mmio = &mmio,
					 .irq = { irq_nop, NULL } };

		config_init(&c);
		(void)config_state_load(&c, &r, err, sizeof(err));
		c.console_out = -1;
		c.debug_exit_port = 0xf4;
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			struct device d = { .ops = ops[i] };
			struct dev_state_reader dr = { &r, -1 };

			bus_init(&pio);
			bus_init(&mmio);
			if (ops[i]->realize(&d, &h, 0, err, sizeof(err)) == 0) {
				for (int n = state_first_child(&r, state_find(&r, "/devices")); n >= 0;
				     n = state_next_sibling(&r, n)) {
					dr.node = n;
					(void)ops[i]->load(&d, &dr, err, sizeof(err));
				}
			}
			ops[i]->unrealize(&d);
		}
		config_fini(&c);
	}
	free(buf);
	return 0;
}
