// SPDX-License-Identifier: Apache-2.0
/*
 * i8042 keyboard controller, reduced to what a guest needs from it here: the CPU reset line
 * (the classic PC reboot path: Linux's reboot=k writes 0xfe to port 0x64 after waiting for
 * IBF clear) and controller-level answers quick enough that a probing Linux never waits for a
 * timeout. No keyboard or mouse is attached: bytes sent to devices behind the controller are
 * dropped, and no IRQ 1/12 is ever raised.
 *
 * Linux probes nothing at all here when the firmware tables describe no PS/2 controller (no
 * PNP0303 in the DSDT, FADT IAPC_BOOT_ARCH without the 8042 flag); if it is forced to probe
 * (i8042.nopnp), the answers below make i8042_controller_check/selftest pass and
 * i8042_check_aux fail at once: the AUX loopback byte comes back without STR_AUXDATA (which the
 * driver reads as "no AUX"), and the AUX interface test reports "clock line stuck low".
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "vmm/devices.h"

/* Status register (port 0x64 read). */
#define STR_OBF	    0x01 /* output buffer full: data at 0x60 */
#define STR_IBF	    0x02 /* input buffer full: never, writes complete at once */
#define STR_SYSFLAG 0x04 /* set after a successful self-test */
#define STR_CMDDAT  0x08 /* last write went to the command port */
#define STR_KEYLOCK 0x10 /* 1: keyboard not inhibited */
#define STR_AUXDATA 0x20 /* byte in the output buffer comes from the AUX port */

/* Controller commands (port 0x64 write). */
#define CMD_READ_RAM_FIRST  0x20 /* 0x20: CTR, 0x21..0x3f: internal RAM */
#define CMD_READ_RAM_LAST   0x3f
#define CMD_WRITE_RAM_FIRST 0x60
#define CMD_WRITE_RAM_LAST  0x7f
#define CMD_AUX_DISABLE	    0xa7
#define CMD_AUX_ENABLE	    0xa8
#define CMD_AUX_TEST	    0xa9
#define CMD_SELF_TEST	    0xaa
#define CMD_KBD_TEST	    0xab
#define CMD_KBD_DISABLE	    0xad
#define CMD_KBD_ENABLE	    0xae
#define CMD_READ_INPUT	    0xc0
#define CMD_READ_OUTPUT	    0xd0
#define CMD_WRITE_OUTPUT    0xd1
#define CMD_WRITE_KBD_OBUF  0xd2
#define CMD_WRITE_AUX_OBUF  0xd3
#define CMD_WRITE_AUX	    0xd4
#define CMD_PULSE_FIRST	    0xf0 /* 0xf0..0xff: pulse output port bits 3:0 where the bit is 0 */

#define CTR_KBDINT  0x01
#define CTR_SYSFLAG 0x04
#define CTR_KBDDIS  0x10
#define CTR_AUXDIS  0x20
#define CTR_XLATE   0x40

#define OUTPORT_RESET 0x01 /* active low: 0 holds the CPU in reset */
#define OUTPORT_A20   0x02

#define SELF_TEST_OK	 0x55
#define KBD_TEST_OK	 0x00
#define AUX_TEST_CLK_LOW 0x01

struct i8042 {
	pthread_mutex_t lock;
	struct vm_stop_sink stop;
	uint8_t ram[32]; /* ram[0] is the controller configuration byte (CTR) */
	uint8_t status;
	uint8_t outport;
	uint8_t obuf;
	uint8_t pending_cmd; /* command waiting for its data byte at port 0x60, 0 if none */
	struct dev_ratelimit rl;
};

/* lock held */
static void i8042_reply(struct i8042 *k, uint8_t v, bool aux)
{
	k->obuf = v;
	k->status |= STR_OBF;
	k->status = aux ? (k->status | STR_AUXDATA) : (k->status & ~STR_AUXDATA);
}

/* lock held; returns true when the reset line was pulled */
static bool i8042_command(struct i8042 *k, uint8_t cmd)
{
	k->pending_cmd = 0;
	if (cmd >= CMD_READ_RAM_FIRST && cmd <= CMD_READ_RAM_LAST) {
		i8042_reply(k, k->ram[cmd - CMD_READ_RAM_FIRST], false);
		return false;
	}
	if (cmd >= CMD_WRITE_RAM_FIRST && cmd <= CMD_WRITE_RAM_LAST) {
		k->pending_cmd = cmd;
		return false;
	}
	if (cmd >= CMD_PULSE_FIRST) {
		/* A 0 in bits 3:0 pulses that output line; bit 0 is the CPU reset (0xfe). */
		return !(cmd & OUTPORT_RESET);
	}
	switch (cmd) {
	case CMD_AUX_DISABLE:
		k->ram[0] |= CTR_AUXDIS;
		break;
	case CMD_AUX_ENABLE:
		k->ram[0] &= ~CTR_AUXDIS;
		break;
	case CMD_AUX_TEST:
		i8042_reply(k, AUX_TEST_CLK_LOW, false);
		break;
	case CMD_SELF_TEST:
		k->status |= STR_SYSFLAG;
		i8042_reply(k, SELF_TEST_OK, false);
		break;
	case CMD_KBD_TEST:
		i8042_reply(k, KBD_TEST_OK, false);
		break;
	case CMD_KBD_DISABLE:
		k->ram[0] |= CTR_KBDDIS;
		break;
	case CMD_KBD_ENABLE:
		k->ram[0] &= ~CTR_KBDDIS;
		break;
	case CMD_READ_INPUT:
		i8042_reply(k, 0x80, false); /* bit 7: keyboard not inhibited */
		break;
	case CMD_READ_OUTPUT:
		i8042_reply(k, k->outport, false);
		break;
	case CMD_WRITE_OUTPUT:
	case CMD_WRITE_KBD_OBUF:
	case CMD_WRITE_AUX_OBUF:
	case CMD_WRITE_AUX:
		k->pending_cmd = cmd;
		break;
	default:
		dev_log_ratelimited(&k->rl, "i8042: ignoring command 0x%02x", cmd);
		break;
	}
	return false;
}

/* lock held; a data byte written to port 0x60. Returns true when the reset line was pulled. */
static bool i8042_data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;

	k->pending_cmd = 0;
	if (cmd >= CMD_WRITE_RAM_FIRST && cmd <= CMD_WRITE_RAM_LAST) {
		k->ram[cmd - CMD_WRITE_RAM_FIRST] = v;
		return false;
	}
	switch (cmd) {
	case CMD_WRITE_OUTPUT:
		k->outport = v;
		/* Writing 0 to the reset bit of the output port resets the CPU, like 0xfe. */
		return !(v & OUTPORT_RESET);
	case CMD_WRITE_KBD_OBUF:
		i8042_reply(k, v, false);
		break;
	case CMD_WRITE_AUX_OBUF:
		/* No AUX port: echo it as keyboard data (see the top of the file). */
		i8042_reply(k, v, false);
		break;
	case CMD_WRITE_AUX:
		break; /* no mouse */
	default:
		/* A byte for the keyboard itself: none is attached. */
		break;
	}
	return false;
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false;

	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->status &= ~STR_CMDDAT;
		reset = i8042_data_write(k, data[0]);
	} else {
		/* Reading the output buffer empties it; an empty one reads the last byte again. */
		data[0] = k->obuf;
		k->status &= ~(STR_OBF | STR_AUXDATA);
		for (uint32_t i = 1; i < len; i++)
			data[i] = 0xff;
	}
	pthread_mutex_unlock(&k->lock);
	if (reset)
		vm_stop_request(&k->stop, VM_STOP_REBOOT, 0);
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false;

	pthread_mutex_lock(&k->lock);
	if (is_write) {
		k->status |= STR_CMDDAT;
		reset = i8042_command(k, data[0]);
	} else {
		data[0] = k->status;
		for (uint32_t i = 1; i < len; i++)
			data[i] = 0xff;
	}
	pthread_mutex_unlock(&k->lock);
	/* Outside the lock: the sink may stop vCPUs, including one waiting for this lock. */
	if (reset)
		vm_stop_request(&k->stop, VM_STOP_REBOOT, 0);
}

int i8042_create(struct i8042 **out, const struct vm_stop_sink *stop)
{
	struct i8042 *k;
	int r;

	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	r = -pthread_mutex_init(&k->lock, NULL);
	if (r) {
		free(k);
		return r;
	}
	if (stop)
		k->stop = *stop;
	/* As a PC BIOS leaves it: self-test passed, keyboard interrupt and translation on. */
	k->ram[0] = CTR_KBDINT | CTR_SYSFLAG | CTR_XLATE;
	k->status = STR_SYSFLAG | STR_KEYLOCK;
	k->outport = OUTPORT_RESET | OUTPORT_A20;
	*out = k;
	return 0;
}

void i8042_destroy(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}
