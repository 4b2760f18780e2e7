// SPDX-License-Identifier: Apache-2.0
/*
 * i8042 keyboard controller, reduced to what a guest needs from it here: the CPU reset line
 * (the classic PC reboot path: Linux's reboot=k writes 0xfe to port 0x64 after waiting for
 * IBF clear), controller-level answers quick enough that a probing Linux never waits for a
 * timeout, and a keyboard that can press one thing: Ctrl-Alt-Del (Firecracker's
 * SendCtrlAltDel), through IRQ 1. The keyboard acknowledges every command byte (0xfa; reset
 * also reports a passed self-test, GET ID a standard MF2 keyboard) so that atkbd probes it.
 * No mouse: bytes for the AUX port are dropped and IRQ 12 is never raised.
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
#include <stdio.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/devices.h"
#include "vmm/layout.h"
#include "vmm/state.h"

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

/* Keyboard commands and answers (bytes written to port 0x60 with no controller command). */
#define KBD_CMD_ECHO	 0xee
#define KBD_CMD_GET_ID	 0xf2
#define KBD_CMD_RESET	 0xff
#define KBD_ACK		 0xfa
#define KBD_BAT_OK	 0xaa
#define KBD_ID_MF2_0	 0xab
#define KBD_ID_MF2_1	 0x83
#define KBD_QUEUE	 32
#define IRQ_KBD		 1

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
	/* Keyboard bytes waiting for the output buffer, which takes one at a time. */
	uint8_t kq[KBD_QUEUE];
	unsigned int kq_head, kq_len;
	struct irq_sink irq;
	struct dev_ratelimit rl;
};

/* Move the next keyboard byte into an empty output buffer; IRQ 1 is an ISA edge. */
static void i8042_kbd_fill(struct i8042 *k)
{
	if ((k->status & STR_OBF) || !k->kq_len)
		return;
	k->obuf = k->kq[k->kq_head];
	k->kq_head = (k->kq_head + 1) % KBD_QUEUE;
	k->kq_len--;
	k->status = (k->status | STR_OBF) & ~STR_AUXDATA;
	if (k->ram[0] & CTR_KBDINT) {
		irq_set_level(&k->irq, IRQ_KBD, 1);
		irq_set_level(&k->irq, IRQ_KBD, 0);
	}
}

static void i8042_kbd_put(struct i8042 *k, const uint8_t *b, unsigned int n)
{
	for (unsigned int i = 0; i < n && k->kq_len < KBD_QUEUE; i++)
		k->kq[(k->kq_head + k->kq_len++) % KBD_QUEUE] = b[i];
	i8042_kbd_fill(k);
}

/* A byte for the keyboard itself: acknowledge it, answer the commands atkbd probes with. */
static void i8042_kbd_command(struct i8042 *k, uint8_t v)
{
	static const uint8_t reset[] = { KBD_ACK, KBD_BAT_OK };
	static const uint8_t id[] = { KBD_ACK, KBD_ID_MF2_0, KBD_ID_MF2_1 };
	static const uint8_t ack = KBD_ACK, echo = KBD_CMD_ECHO;

	switch (v) {
	case KBD_CMD_RESET:
		k->kq_len = 0;
		i8042_kbd_put(k, reset, sizeof(reset));
		break;
	case KBD_CMD_GET_ID:
		i8042_kbd_put(k, id, sizeof(id));
		break;
	case KBD_CMD_ECHO:
		i8042_kbd_put(k, &echo, 1);
		break;
	default:
		i8042_kbd_put(k, &ack, 1);
		break;
	}
}

void i8042_send_ctrl_alt_del(struct i8042 *k)
{
	/* Make Ctrl, make Alt, make Del, then the breaks in reverse. Set 1 is what the guest
	 * reads with translation on (as firmware leaves it), set 2 without. */
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0, 0x71,
					0xf0, 0x11, 0xf0, 0x14 };

	pthread_mutex_lock(&k->lock);
	if (k->ram[0] & CTR_XLATE)
		i8042_kbd_put(k, set1, sizeof(set1));
	else
		i8042_kbd_put(k, set2, sizeof(set2));
	pthread_mutex_unlock(&k->lock);
}

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
		i8042_kbd_command(k, v);
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
		i8042_kbd_fill(k);
	}
	pthread_mutex_unlock(&k->lock);
	if (reset)
		vm_stop_request(&k->stop, VMM_STOP_REBOOT, 0);
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
		vm_stop_request(&k->stop, VMM_STOP_REBOOT, 0);
}

static void i8042_init_state(struct i8042 *k)
{
	memset(k->ram, 0, sizeof(k->ram));
	/* As a PC BIOS leaves it: self-test passed, keyboard interrupt and translation on. */
	k->ram[0] = CTR_KBDINT | CTR_SYSFLAG | CTR_XLATE;
	k->status = STR_SYSFLAG | STR_KEYLOCK;
	k->outport = OUTPORT_RESET | OUTPORT_A20;
	k->obuf = 0;
	k->pending_cmd = 0;
	k->kq_head = k->kq_len = 0;
}

void i8042_reset(struct i8042 *k)
{
	pthread_mutex_lock(&k->lock);
	i8042_init_state(k);
	pthread_mutex_unlock(&k->lock);
}

int i8042_create(struct i8042 **out, const struct vm_stop_sink *stop, const struct irq_sink *irq)
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
	if (irq)
		k->irq = *irq;
	i8042_init_state(k);
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

/* ---- the device interface ---- */

static int i8042_realize(struct device *d, const struct device_host *h, unsigned int idx,
			 char *err, size_t errlen)
{
	struct i8042 *k;
	int r;

	snprintf(d->id, sizeof(d->id), "i8042");
	if ((r = i8042_create(&k, &h->stop, &h->irq)) < 0)
		goto fail;
	d->priv = k;
	if ((r = bus_register(h->pio, PORT_I8042_DATA, I8042_PORT_LEN, i8042_data_io, k,
			      "i8042-data")) < 0 ||
	    (r = bus_register(h->pio, PORT_I8042_CMD, I8042_PORT_LEN, i8042_cmd_io, k,
			      "i8042-cmd")) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "i8042: %s", strerror(-r));
	return r;
}

static void i8042_unrealize(struct device *d)
{
	i8042_destroy(d->priv);
	d->priv = NULL;
}

static void i8042_dev_reset(struct device *d)
{
	i8042_reset(d->priv);
}

/* The controller's and the keyboard's state, as fixed-width fields. */
struct i8042_saved {
	uint8_t ram[32];
	uint8_t status, outport, obuf, pending_cmd;
	uint8_t kq[KBD_QUEUE];
	uint8_t kq_head, kq_len;
	uint8_t pad[2];
} PACKED;

static int i8042_dev_save(struct device *d, struct dev_state_writer *w)
{
	struct i8042 *k = d->priv;
	struct i8042_saved st;

	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&k->lock);
	memcpy(st.ram, k->ram, sizeof(st.ram));
	st.status = k->status;
	st.outport = k->outport;
	st.obuf = k->obuf;
	st.pending_cmd = k->pending_cmd;
	memcpy(st.kq, k->kq, sizeof(st.kq));
	st.kq_head = (uint8_t)k->kq_head;
	st.kq_len = (uint8_t)k->kq_len;
	pthread_mutex_unlock(&k->lock);
	dev_state_put(w, "i8042-state", &st, sizeof(st));
	return 0;
}

static int i8042_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			  size_t errlen)
{
	struct i8042 *k = d->priv;
	struct i8042_saved st;

	if (dev_state_get(r, "i8042-state", &st, sizeof(st)) < 0 || st.kq_head >= KBD_QUEUE ||
	    st.kq_len > KBD_QUEUE) {
		snprintf(err, errlen, "i8042: its state is missing or inconsistent");
		return -EINVAL;
	}
	pthread_mutex_lock(&k->lock);
	memcpy(k->ram, st.ram, sizeof(k->ram));
	k->status = st.status;
	k->outport = st.outport;
	k->obuf = st.obuf;
	k->pending_cmd = st.pending_cmd;
	memcpy(k->kq, st.kq, sizeof(k->kq));
	k->kq_head = st.kq_head;
	k->kq_len = st.kq_len;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

const struct device_ops i8042_device_ops = {
	.kind = "i8042",
	.realize = i8042_realize,
	.unrealize = i8042_unrealize,
	.reset = i8042_dev_reset,
	.save = i8042_dev_save,
	.load = i8042_dev_load,
};
