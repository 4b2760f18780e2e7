// SPDX-License-Identifier: Apache-2.0
/*
 * Micro-guest virtio-console scenarios (virtio 1.2 §5.3, one port, no MULTIPORT): receiveq 0
 * and transmitq 1, driven with vblk.c's virtio-mmio helpers (one struct vdev per queue). The
 * VMM puts the console after the disks (device index t.ndisk). Its output and the UART's both
 * go to the VMM's stdout, which run-micro.py reads: the guest prints on the UART only while no
 * console output is in flight, so the two streams never interleave.
 *
 * t.vcon= selects the case (run-micro.py runs each in its own VM):
 *   flood        transmitq buffers kept full while the runner reads stdout slowly through a
 *                one-page pipe: every buffer completes with used len 0 after its bytes went
 *                out (the runner checks every line, in order), the device held buffers back
 *                (backpressure, not loss), and after a reset the console prints again.
 *   emerg        EMERG_WRITE (§5.3.4, config offset 8) floods with a reader that keeps up:
 *                every byte arrives in order.
 *   emerg-stall  the same while the runner stops reading for a second: the vCPU is not held
 *                (bytes beyond what the pipe takes are dropped at once, not after a wait each),
 *                what arrives is in order, and the console works again afterwards.
 *   widths       emerg_wr written with every width and offset that covers it, and accesses
 *                past the 12-byte config space: exactly the covered bytes come out.
 *   tx-malformed transmit chains with a device-writable part, outside RAM, zero-length, a bad
 *                indirect table: used len 0, nothing printed; a good chain after them prints.
 *   rx           receive buffers that cannot take data (readable only, outside RAM) between
 *                good ones: skipped with used len 0, the input goes on in the good ones.
 *   stall        with a transmit chain stuck on a full stdout: QueueReady 0 and 1 (no stale
 *                completion may appear in the re-enabled ring), then a reset (the old ring
 *                stays untouched); each time the console then prints correctly.
 *
 * Runner handshakes: "VCON-PAUSE n" on the UART makes run-micro.py stop reading stdout for a
 * while; it types "Pn" when it has stopped and "GOn" when it reads again (stdin is the
 * console's input with --console virtio).
 */
#include "vblk.h"

#define VCON_ID	      3
#define F_SIZE	      0
#define F_EMERG_WRITE 2
#define CFG_COLS      0
#define CFG_ROWS      2
#define CFG_PORTS     4
#define CFG_EMERG     8

#define LINE	  64 /* flood lines: "@xxxxxxxx " + 53 filler bytes + "\n" */
#define BUF_LINES 64
#define BUF_BYTES (LINE * BUF_LINES)
#define NBUF	  8

static const char filler[] = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQ";
_Static_assert(sizeof(filler) - 1 == LINE - 11, "flood line length");

static uint8_t vbuf[NBUF * BUF_BYTES] __attribute__((section(".bss.micro_noinit"), aligned(4096)));
static uint8_t rxbuf[256] __attribute__((aligned(16)));

struct vcon {
	struct vdev rx, tx;
	uint32_t index;
};

static struct vcon vc;

static void spin(uint64_t tsc)
{
	for (uint64_t t0 = rdtsc(); rdtsc() - t0 < tsc;)
		cpu_pause();
}

static void hex(uint8_t *p, uint32_t v, uint32_t digits)
{
	for (uint32_t i = 0; i < digits; i++)
		p[i] = (uint8_t) "0123456789abcdef"[(v >> (4 * (digits - 1 - i))) & 0xf];
}

static uint32_t slen(const char *s)
{
	uint32_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* ---- the driver ---- */

/* Both queues on rings[a] (rx) and rings[b] (tx), DRIVER_OK; NULL or why not. */
static const char *vcon_init(uint64_t want, uint32_t a, uint32_t b)
{
	const char *why;

	vc.rx.r = &rings[a];
	vc.tx.r = &rings[b];
	ring_place(&vc.rx, NULL, NULL, NULL);
	ring_place(&vc.tx, NULL, NULL, NULL);
	why = dev_init_features(&vc.tx, want);
	if (why)
		return why;
	vc.rx.features = vc.tx.features;
	vc.rx.event_idx = vc.tx.event_idx = false;
	vc.rx.want_irq = vc.tx.want_irq = true;
	why = queue_setup(&vc.rx);
	if (!why)
		why = queue_setup(&vc.tx);
	if (why)
		return why;
	wr(&vc.tx, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if (rd(&vc.tx, VM_STATUS) != (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
		return "status after DRIVER_OK";
	return NULL;
}

static uint64_t vcon_features(void)
{
	return BIT(F_SIZE) | BIT(F_EMERG_WRITE) | BIT(F_INDIRECT);
}

/* Find the console after the disks, check its identity, initialise it. */
static bool vcon_setup(void)
{
	uint64_t idx = param_or("t.ndisk", 0);
	const char *why;

	if (!check_discover())
		return false;
	if (idx >= ndevs)
		return fail("vcon-discover", "%u devices, the console should be number %u", ndevs,
			    (uint32_t)idx + 1);
	for (uint32_t i = 0; i < ndevs; i++) {
		uint32_t id = mmio_read32(devs[i].base + VM_DEVICE_ID);

		if (id != (i == idx ? VCON_ID : 2u))
			return fail("vcon-discover", "device %u at %x has id %u", i,
				    (uint32_t)devs[i].base, id);
	}
	vc.index = (uint32_t)idx;
	vc.rx = devs[idx];
	vc.tx = devs[idx];
	vc.rx.qidx = 0;
	vc.tx.qidx = 1;
	vc.rx.name[0] = vc.tx.name[0] = 'c';
	vc.rx.name[1] = vc.tx.name[1] = '0';
	why = vcon_init(vcon_features(), 5, 6);
	if (why)
		return fail("vcon-discover", "init: %s", why);
	if (!(vc.tx.offered & BIT(F_EMERG_WRITE)) || !(vc.tx.offered & BIT(F_SIZE)))
		return fail("vcon-discover", "features %llx lack SIZE or EMERG_WRITE",
			    (unsigned long long)vc.tx.offered);
	return pass("vcon-discover");
}

/* One transmit chain of one buffer; waits for it: used len must be 0 (§5.3.6.1). */
static bool tx_send(const char *c, const void *buf, uint32_t len)
{
	struct seg s = {gpa(buf), len, 0};
	uint16_t head = chain_put(&vc.tx, 0, &s, 1, NULL);
	uint32_t id, ulen;

	avail_add(&vc.tx, head);
	kick(&vc.tx);
	if (!used_wait(&vc.tx, &id, &ulen))
		return fail(c, "transmit of %u bytes never completed", len);
	if (id != head || ulen != 0)
		return fail(c, "transmit: used id %u len %u, expected %u and 0", id, ulen, head);
	return true;
}

static bool tx_str(const char *c, const char *s)
{
	uint32_t n = slen(s);

	memcpy(vbuf, s, n);
	return tx_send(c, vbuf, n);
}

/* Post a receive buffer and wait for the runner's "<word><n>\n" (run-micro.py Io.pause). */
static bool wait_input(const char *c, const char *word, uint32_t n)
{
	struct seg s = {gpa(rxbuf), 16, D_WRITE};
	uint32_t id, len, w = slen(word);
	uint16_t head;

	memset(rxbuf, 0, 16);
	head = chain_put(&vc.rx, 0, &s, 1, NULL);
	avail_add(&vc.rx, head);
	kick(&vc.rx);
	if (!used_wait(&vc.rx, &id, &len))
		return fail(c, "no %s%u from the runner", word, n);
	if (id != head || len != w + 2 || memcmp(rxbuf, word, w) || rxbuf[w] != '0' + n)
		return fail(c, "input id %u len %u \"%c%c%c\", expected %s%u", id, len, rxbuf[0],
			    rxbuf[1], rxbuf[2], word, n);
	wr(&vc.rx, VM_INT_ACK, rd(&vc.rx, VM_INT_STATUS));
	return true;
}

/* "VCON-PAUSE n": run-micro.py stops reading stdout; true once it says it has. */
static bool pause_begin(const char *c, uint32_t n)
{
	uart_printf("VCON-PAUSE %u\n", n);
	return wait_input(c, "P", n);
}

/* Wait for the end of pause n: stdout is read again. */
static bool wait_go(const char *c, uint32_t n)
{
	return wait_input(c, "GO", n);
}

static void emerg(uint8_t ch)
{
	mmio_write32(vc.tx.base + VM_CONFIG + CFG_EMERG, ch);
}

/* ---- flood ---- */

static void buf_template(uint8_t *b)
{
	for (uint32_t l = 0; l < BUF_LINES; l++) {
		uint8_t *p = b + l * LINE;

		p[0] = '@';
		p[9] = ' ';
		memcpy(p + 10, filler, LINE - 11);
		p[LINE - 1] = '\n';
	}
}

static bool case_flood(const char *c)
{
	uint64_t total = param_or("t.vcon_lines", 1536), slow = param_or("t.vcon_slow", 0);
	uint32_t next = 0, outstanding = 0, stalls = 0, bufs = 0;
	bool posted[NBUF] = {false};
	char line[48] = "VCON AFTER RESET ";
	uint64_t token = param_or("t.token", 0);

	for (uint32_t b = 0; b < NBUF; b++)
		buf_template(vbuf + b * BUF_BYTES);
	uart_printf("VCON FLOOD BEGIN\n");
	for (uint32_t b = 0; b < NBUF && next < total; b++) {
		uint32_t n = total - next < BUF_LINES ? (uint32_t)(total - next) : BUF_LINES;
		struct seg s = {gpa(vbuf + b * BUF_BYTES), n * LINE, 0};

		for (uint32_t l = 0; l < n; l++)
			hex(vbuf + b * BUF_BYTES + l * LINE + 1, next + l, 8);
		avail_add(&vc.tx, chain_put(&vc.tx, (uint16_t)b, &s, 1, NULL));
		posted[b] = true;
		outstanding++;
		next += n;
	}
	kick(&vc.tx);
	while (outstanding) {
		uint64_t t0 = rdtsc();
		uint32_t id, len;

		if (!used_wait(&vc.tx, &id, &len))
			return fail(c, "%u buffers never completed (%u lines sent)", outstanding,
				    next);
		if (rdtsc() - t0 > QUIET_TSC)
			stalls++;
		if (id >= NBUF || !posted[id] || len != 0)
			return fail(c, "used id %u len %u: not an outstanding buffer, or len not 0",
				    id, len);
		posted[id] = false;
		outstanding--;
		bufs++;
		if (next < total) {
			uint32_t n =
				total - next < BUF_LINES ? (uint32_t)(total - next) : BUF_LINES;
			struct seg s = {gpa(vbuf + id * BUF_BYTES), n * LINE, 0};

			for (uint32_t l = 0; l < n; l++)
				hex(vbuf + id * BUF_BYTES + l * LINE + 1, next + l, 8);
			avail_add(&vc.tx, chain_put(&vc.tx, (uint16_t)id, &s, 1, NULL));
			kick(&vc.tx);
			posted[id] = true;
			outstanding++;
			next += n;
		}
	}
	wr(&vc.tx, VM_INT_ACK, rd(&vc.tx, VM_INT_STATUS));
	uart_printf("VCON FLOOD END\n");
	uart_printf("MICRO INFO %s: %u lines in %u buffers, %u waits of more than ~8 ms\n", c, next,
		    bufs, stalls);
	if (slow && !stalls)
		return fail(c, "the device never held buffers back with a slow reader");
	/* After a reset, the console prints again. */
	if (!status_reset(&vc.tx))
		return fail(c, "reset");
	if (vcon_init(vcon_features(), 5, 6))
		return fail(c, "re-initialisation");
	hex((uint8_t *)line + 17, (uint32_t)token, 8);
	line[25] = '\n';
	line[26] = '\0';
	return tx_str(c, line);
}

/* ---- EMERG_WRITE ---- */

static void emerg_lines(uint32_t first, uint32_t n)
{
	uint8_t l[6] = {'E', 0, 0, 0, 0, '\n'};

	for (uint32_t i = first; i < first + n; i++) {
		hex(l + 1, i, 4);
		for (uint32_t k = 0; k < 6; k++)
			emerg(l[k]);
	}
}

static bool case_emerg(const char *c)
{
	uint64_t n = param_or("t.vcon_lines", 512);

	uart_printf("VCON EMERG BEGIN\n");
	emerg_lines(0, (uint32_t)n);
	uart_printf("VCON EMERG END\n");
	return tx_str(c, "VCON TX AFTER EMERG\n");
}

static bool case_emerg_stall(const char *c)
{
	uint64_t n = param_or("t.vcon_lines", 2048), t0, took;

	uart_printf("VCON EMERG BEGIN\n");
	if (!pause_begin(c, 1))
		return false;
	t0 = rdtsc();
	emerg_lines(0, (uint32_t)n);
	took = rdtsc() - t0;
	/* The transmitq waits for the reader (no loss); the UART must not speak before. */
	if (!wait_go(c, 1))
		return false;
	if (!tx_str(c, "VCON TX SYNC\n"))
		return false;
	for (const char *p = "EMERG AFTER STALL\n"; *p; p++)
		emerg((uint8_t)*p);
	uart_printf("VCON EMERG END\n");
	uart_printf("MICRO INFO %s: %u emergency bytes in %llx TSC ticks\n", c, (uint32_t)n * 6,
		    (unsigned long long)took);
	/* A wait of 100 ms per byte would be minutes; a few seconds means one wait, then drops. */
	if (took > WAIT_TSC)
		return fail(c, "the flood held the vCPU for %llx TSC ticks",
			    (unsigned long long)took);
	return tx_str(c, "VCON TX AFTER EMERG\n");
}

/*
 * emerg_wr (offset 8, 4 bytes) covered by writes of every width at every offset: the device
 * outputs the covered byte; writes that reach past the 12-byte config space are refused whole,
 * and the other fields are read-only. Output: "EMW:abcdef\n" and nothing else.
 */
static bool case_widths(const char *c)
{
	uintptr_t cfg = vc.tx.base + VM_CONFIG;
	uint32_t cols = mmio_read16(cfg + CFG_COLS), rows = mmio_read16(cfg + CFG_ROWS);
	uint32_t ports = mmio_read32(cfg + CFG_PORTS);

	for (const char *p = "EMW:"; *p; p++)
		emerg((uint8_t)*p);
	mmio_write32(cfg + 8, 'a');
	mmio_write8(cfg + 8, 'b');
	*(volatile uint16_t *)(cfg + 8) = (uint16_t)('c' | 'X' << 8);
	*(volatile uint16_t *)(cfg + 7) = (uint16_t)('Y' | 'd' << 8);
	mmio_write32(cfg + 6, 'Z' | 'Z' << 8 | 'e' << 16 | (uint32_t)'Z' << 24);
#ifdef __x86_64__
	*(volatile uint64_t *)(cfg + 4) = 0x5a5a5a66ULL << 32 | 0x5a5a5a5a; /* byte 8: 'f' */
	*(volatile uint64_t *)(cfg + 8) = 0x5a5a5a5a5a5a5a5aULL;	    /* past the end */
	*(volatile uint64_t *)(cfg + 0) = 0x5a5a5a5a5a5a5a5aULL;	    /* misses byte 8 */
#else
	mmio_write32(cfg + 8, 'f'); /* no 8-byte accesses in 32-bit code */
#endif
	mmio_write32(cfg + 10, 0x5a5a5a5a); /* 10..13: past the end */
	mmio_write8(cfg + 12, 'Z');
	mmio_write32(cfg + 0xefc, 0x5a5a5a5a);
	*(volatile uint16_t *)(cfg + CFG_COLS) = 1234;
	*(volatile uint16_t *)(cfg + CFG_ROWS) = 567;
	mmio_write32(cfg + CFG_PORTS, 9);
	mmio_write8(cfg + 9, 'Z'); /* emerg_wr's other bytes: not a character */
	emerg('\n');
	if (mmio_read16(cfg + CFG_COLS) != cols || mmio_read16(cfg + CFG_ROWS) != rows ||
	    mmio_read32(cfg + CFG_PORTS) != ports)
		return fail(c, "cols/rows/max_nr_ports changed by writes: %u %u %u (were %u %u %u)",
			    mmio_read16(cfg + CFG_COLS), mmio_read16(cfg + CFG_ROWS),
			    mmio_read32(cfg + CFG_PORTS), cols, rows, ports);
	if (mmio_read32(cfg + CFG_EMERG) != 0 || mmio_read32(cfg + 10) != 0 ||
	    mmio_read8(cfg + 12) != 0)
		return fail(c, "emerg_wr or past-the-end reads are not 0");
	return tx_str(c, "VCON WIDTHS DONE\n");
}

/* Transmit chains the device must not print from (used len 0), then a good one. */
static bool case_tx_malformed(const char *c)
{
	struct vdesc *t = (struct vdesc *)(vbuf + BUF_BYTES);
	static const char bad[] = "BADTX";

	memcpy(vbuf, bad, 5);
	for (uint32_t k = 0; k < 5; k++) {
		struct seg s[2];
		uint32_t n = 0, id, len;
		uint16_t head;

		if (k == 0) { /* a device-writable part on the transmitq */
			s[n++] = (struct seg){gpa(vbuf), 5, 0};
			s[n++] = (struct seg){gpa(vbuf + 64), 8, D_WRITE};
		} else if (k == 1) { /* outside RAM */
			s[n++] = (struct seg){FAR_AWAY, 5, 0};
		} else if (k == 2) { /* zero length after a good piece */
			s[n++] = (struct seg){gpa(vbuf), 5, 0};
			s[n++] = (struct seg){gpa(vbuf), 0, 0};
		} else if (k == 3) { /* an indirect table whose next leaves it */
			t[0] = (struct vdesc){gpa(vbuf), 5, D_NEXT, 7};
			vc.tx.qdesc[0] = (struct vdesc){gpa(t), 16, D_INDIRECT, 0};
		} else { /* a writable buffer only */
			s[n++] = (struct seg){gpa(vbuf + 64), 8, D_WRITE};
		}
		head = k == 3 ? 0 : chain_put(&vc.tx, 0, s, n, NULL);
		avail_add(&vc.tx, head);
		kick(&vc.tx);
		if (!used_wait(&vc.tx, &id, &len))
			return fail(c, "malformed transmit chain %u never completed", k);
		if (id != head || len != 0)
			return fail(c, "malformed transmit chain %u: used id %u len %u", k, id,
				    len);
	}
	if (rd(&vc.tx, VM_STATUS) & S_NEEDS_RESET)
		return fail(c, "NEEDS_RESET for malformed chains");
	return tx_str(c, "VCON TX OK\n");
}

/*
 * Receive buffers the device cannot write (readable only, outside RAM) between good ones:
 * each completed with used len 0 and skipped; "hello world\n" goes into the good ones in
 * order, split where they end.
 */
static bool case_rx(const char *c)
{
	struct vdev *d = &vc.rx;
	static const char want[] = "hello world\n";
	struct {
		uint64_t addr;
		uint32_t len, flags, want_len, want_off;
	} b[4] = {
		{gpa(rxbuf), 4, 0, 0, 0},	      /* readable only */
		{gpa(rxbuf + 16), 3, D_WRITE, 3, 0},  /* "hel" */
		{FAR_AWAY, 8, D_WRITE, 0, 0},	      /* outside RAM */
		{gpa(rxbuf + 32), 64, D_WRITE, 9, 3}, /* "lo world\n" */
	};

	memset(rxbuf, 0xee, 128);
	for (uint32_t i = 0; i < 4; i++) {
		struct seg s = {b[i].addr, b[i].len, (uint16_t)b[i].flags};

		avail_add(d, chain_put(d, (uint16_t)(4 * i), &s, 1, NULL));
	}
	kick(d);
	uart_printf("VCON-RX-READY\n");
	for (uint32_t i = 0; i < 4; i++) {
		uint32_t id, len;

		if (!used_wait(d, &id, &len))
			return fail(c, "receive buffer %u never completed", i);
		if (id != 4 * i || len != b[i].want_len)
			return fail(c, "receive buffer %u: used id %u len %u, expected %u and %u",
				    i, id, len, 4 * i, b[i].want_len);
		if (len && memcmp((void *)(uintptr_t)b[i].addr, want + b[i].want_off, len))
			return fail(c, "receive buffer %u: wrong bytes", i);
	}
	if (rxbuf[16 + 3] != 0xee || rxbuf[32 + 9] != 0xee || rxbuf[0] != 0xee)
		return fail(c, "the device wrote beyond what it reported");
	return tx_str(c, "VCON RX DONE\n");
}

/* ---- a stuck transmit chain, then QueueReady 0/1, then a reset ---- */

/* NBUF buffers of '#' lines into the transmitq; stdout is not being read: they get stuck. */
static void stuff(void)
{
	for (uint32_t b = 0; b < NBUF; b++) {
		uint8_t *p = vbuf + b * BUF_BYTES;
		struct seg s = {gpa(p), BUF_BYTES, 0};

		for (uint32_t l = 0; l < BUF_LINES; l++) {
			memset(p + l * LINE, '#', LINE - 1);
			p[l * LINE + LINE - 1] = '\n';
		}
		avail_add(&vc.tx, chain_put(&vc.tx, (uint16_t)b, &s, 1, NULL));
	}
	kick(&vc.tx);
}

static bool case_stall(const char *c)
{
	uint16_t u0;
	struct ring *old;

	/* QueueReady 0 and 1 while a chain waits for stdout. */
	if (!pause_begin(c, 1))
		return false;
	stuff();
	spin(QUIET_TSC * 6);
	u0 = used_idx(&vc.tx);
	wr(&vc.tx, VM_QUEUE_SEL, 1);
	wr(&vc.tx, VM_QUEUE_READY, 0);
	if (rd(&vc.tx, VM_QUEUE_READY) != 0)
		return fail(c, "QueueReady reads 1 after writing 0");
	*AVAIL_IDX(&vc.tx) = 0;
	*(volatile uint16_t *)(vc.tx.qused + 2) = 0;
	vc.tx.avail_idx = vc.tx.used_seen = 0;
	wr(&vc.tx, VM_QUEUE_READY, 1);
	if (!wait_go(c, 1))
		return false;
	/* Only now may the UART speak: stdout is read again. */
	uart_printf("MICRO INFO %s: %u of %u buffers out before the stall\n", c, u0, NBUF);
	if (u0 >= NBUF)
		return fail(c, "stdout never filled up (all %u buffers out)", NBUF);
	spin(QUIET_TSC * 3);
	if (used_idx(&vc.tx) != 0) {
		uint32_t id, len;

		used_elem(&vc.tx, 0, &id, &len);
		return fail(c,
			    "used idx %u in the re-enabled transmitq (id %u len %u): a chain from "
			    "before QueueReady 0",
			    used_idx(&vc.tx), id, len);
	}
	if (!tx_str(c, "VCON AFTER TOGGLE\n"))
		return false;
	/* A reset while a chain waits: the old ring stays as it is, the new driver prints. */
	if (!pause_begin(c, 2))
		return false;
	stuff();
	spin(QUIET_TSC * 6);
	old = vc.tx.r;
	u0 = used_idx(&vc.tx);
	if (!status_reset(&vc.tx))
		return fail(c, "reset");
	if (vcon_init(vcon_features(), 3, 4))
		return fail(c, "re-initialisation");
	if (!wait_go(c, 2))
		return false;
	spin(QUIET_TSC * 3);
	if (*(volatile uint16_t *)(old->used + 2) != u0)
		return fail(c, "old transmitq used idx %u -> %u after the reset", u0,
			    *(volatile uint16_t *)(old->used + 2));
	if (used_idx(&vc.tx) != 0)
		return fail(c, "used idx %u in the new transmitq before any request",
			    used_idx(&vc.tx));
	return tx_str(c, "VCON AFTER RESET\n");
}

void scenario_vcon(void)
{
	static const struct {
		const char *name;
		bool (*fn)(const char *c);
	} cases[] = {
		{"flood", case_flood},
		{"emerg", case_emerg},
		{"emerg-stall", case_emerg_stall},
		{"widths", case_widths},
		{"tx-malformed", case_tx_malformed},
		{"rx", case_rx},
		{"stall", case_stall},
	};
	bool found = false;

	if (!vcon_setup())
		micro_done();
	for (uint32_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char c[32] = "vcon-";
		uint32_t l = 5;

		if (!param_is(micro_cmdline(), "t.vcon", cases[i].name))
			continue;
		found = true;
		for (const char *p = cases[i].name; *p && l < 31; p++)
			c[l++] = *p;
		c[l] = '\0';
		if (cases[i].fn(c))
			pass(c);
	}
	if (!found)
		fail("vcon", "unknown t.vcon");
	micro_done();
}
