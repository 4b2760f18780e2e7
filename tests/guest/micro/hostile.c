// SPDX-License-Identifier: Apache-2.0
/*
 * More hostile virtio-blk cases for the micro-guest (scenario blk-hostile, after vblk.c's own
 * 23): register and status abuse, config and register access widths, adversarial EVENT_IDX
 * fields, rings that overlap each other or sit in the ACPI area, the boot area or at the end of
 * RAM, DMA aimed at the device's own rings, short GET_ID buffers, many discard segments, and
 * races driven from a second vCPU (an AP worker, tramp.S): kick and interrupt storms, a
 * descriptor rewritten while the device reads it, a reset while requests are in flight.
 *
 * Each case asserts what the device must do (a used length, a status byte, NEEDS_RESET, what
 * must stay untouched), then vblk.c's hostile_recover() resets the device and must read again.
 * What the VMM promises is in its README ("What the guest sees"): a malformed chain is
 * completed with used length 0, a malformed ring sets DEVICE_NEEDS_RESET, and a reset returns
 * the device to its initial state; the rest follows virtio 1.2 (section numbers below).
 */
#include "vblk.h"

#define QUIET_LONG (QUIET_TSC * 3) /* "nothing more happens": ~25 ms */
#define BIG_SECT   2048		   /* one 1 MiB read: long enough to still be in flight */

/* Room for rings and payloads placed by the cases; not zeroed at entry (vblk.c's rule). */
static uint8_t scratch[64 * 1024] __attribute__((section(".bss.micro_noinit"), aligned(4096)));
static uint8_t big[BIG_SECT * SECTOR] __attribute__((section(".bss.micro_noinit"), aligned(4096)));

/* ---- helpers ---- */

static void fill32(void *p, uint32_t v, uint32_t bytes)
{
	volatile uint32_t *q = p;

	for (uint32_t i = 0; i < bytes / 4; i++)
		q[i] = v;
}

static bool all32(const void *p, uint32_t v, uint32_t bytes)
{
	const volatile uint32_t *q = p;

	for (uint32_t i = 0; i < bytes / 4; i++)
		if (q[i] != v)
			return false;
	return true;
}

static void copy32(void *d, const void *s, uint32_t bytes)
{
	volatile uint32_t *p = d;
	const volatile uint32_t *q = s;

	for (uint32_t i = 0; i < bytes / 4; i++)
		p[i] = q[i];
}

static void spin_tsc(uint64_t tsc)
{
	for (uint64_t t0 = rdtsc(); rdtsc() - t0 < tsc;)
		cpu_pause();
}

/* True if buf holds sector's pattern (quietly). */
static bool pat_is(const struct vdev *d, const void *buf, uint64_t sector, uint32_t nsect)
{
	const volatile uint64_t *p = buf;

	for (uint32_t s = 0; s < nsect; s++)
		for (uint32_t w = 0; w < SECTOR / 8; w++)
			if (*p++ != pat_word(sector + s, w, d->salt))
				return false;
	return true;
}

/* The used index stays at `want` for `tsc` ticks. */
static bool used_stays(struct vdev *d, uint16_t want, uint64_t tsc)
{
	for (uint64_t t0 = rdtsc(); rdtsc() - t0 < tsc;)
		if (used_idx(d) != want)
			return false;
	return true;
}

static bool wait_bits(struct vdev *d, uint32_t reg, uint32_t bits, uint64_t tsc)
{
	for (uint64_t t0 = rdtsc(); rdtsc() - t0 < tsc;)
		if (rd(d, reg) & bits)
			return true;
	return (rd(d, reg) & bits) != 0;
}

static void int_ack_all(struct vdev *d)
{
	uint32_t st = rd(d, VM_INT_STATUS);

	if (st)
		wr(d, VM_INT_ACK, st);
}

static void mmio_write16(uintptr_t a, uint16_t v)
{
	*(volatile uint16_t *)a = v;
}

#ifdef __x86_64__
/* 64-bit accesses exist only in the 64-bit build: -m32 code has no 8-byte integer load/store
 * (cmpxchg8b on MMIO is emulated by KVM as a plain write). */
static uint64_t mmio_read64(uintptr_t a)
{
	return *(volatile uint64_t *)a;
}

static void mmio_write64(uintptr_t a, uint64_t v)
{
	*(volatile uint64_t *)a = v;
}
#endif

/* QueueNumMax and our queue size, for cases that start before any dev_init(). */
static void qsize_init(struct vdev *d)
{
	wr(d, VM_QUEUE_SEL, d->qidx);
	d->qmax = (uint16_t)rd(d, VM_QUEUE_NUM_MAX);
	d->qsize = d->qmax < QSZ ? d->qmax : QSZ;
}

static void features_write(struct vdev *d, uint64_t f)
{
	wr(d, VM_DRV_FEATURES_SEL, 0);
	wr(d, VM_DRV_FEATURES, (uint32_t)f);
	wr(d, VM_DRV_FEATURES_SEL, 1);
	wr(d, VM_DRV_FEATURES, (uint32_t)(f >> 32));
}

/* A read of one sector into r->data that must succeed; sector chosen by the case. */
static bool read_ok(struct vdev *d, const char *c, uint64_t sector)
{
	return blk_read(c, d, sector, 1, 1, false, false) &&
	       pat_check(c, d, d->r->data, sector, 1, d->salt);
}

/*
 * BATCH reads of 2 sectors in flight at once (heads 0, 4, 8, 12: a queue of 16 entries), into
 * r->data; with notify false the driver publishes them without a kick (someone else kicks).
 */
static bool batch_read(struct vdev *d, const char *c, uint64_t sector, bool notify)
{
	struct req q[BATCH];
	uint16_t head[BATCH];
	bool seen[BATCH] = {false};

	for (uint32_t k = 0; k < BATCH; k++) {
		q[k] = mkreq(T_IN, sector + 2 * k, d->r->data + k * 2 * SECTOR, 2 * SECTOR, true, 1,
			     false, false);
		head[k] = req_post(d, &q[k], k, (uint16_t)(k * 4));
		avail_add(d, head[k]);
	}
	if (notify) {
		kick(d);
	} else {
		*AVAIL_FLAGS(d) = d->want_irq ? 0 : AVAIL_NO_INTERRUPT;
		mfence();
		*AVAIL_IDX(d) = d->avail_idx;
		mfence();
	}
	for (uint32_t n = 0; n < BATCH; n++) {
		uint32_t id, len, k;

		if (!used_wait(d, &id, &len))
			return fail(c, "q%u: %u of %u batched requests completed", d->qidx, n,
				    BATCH);
		for (k = 0; k < BATCH && head[k] != id; k++)
			;
		if (k == BATCH || seen[k])
			return fail(c, "q%u: used id %u unknown or repeated", d->qidx, id);
		seen[k] = true;
		if (len != 2 * SECTOR + 1 || d->r->status[k] != ST_OK)
			return fail(c, "q%u: request %u used len %u status %u", d->qidx, k, len,
				    d->r->status[k]);
	}
	for (uint32_t k = 0; k < BATCH; k++)
		if (!pat_check(c, d, q[k].buf, q[k].sector, 2, d->salt))
			return false;
	return true;
}

/* One chain from segs in desc[0..], made available and kicked; its used element. */
static bool chain_run(struct vdev *d, const char *c, const struct seg *s, uint32_t n, uint32_t *len)
{
	uint32_t id;
	uint16_t head = chain_put(d, 0, s, n, NULL);

	avail_add(d, head);
	kick(d);
	if (!used_wait(d, &id, len))
		return fail(c, "no completion");
	irq_after(d);
	if (id != head)
		return fail(c, "used id %u, posted %u", id, head);
	return true;
}

/* A big read (BIG_SECT sectors from 0 into big) in slot k, descriptors 4k..: made available. */
static void big_post(struct vdev *d, uint32_t k)
{
	struct req q = mkreq(T_IN, 0, big, BIG_SECT * SECTOR, true, 1, false, false);

	avail_add(d, req_post(d, &q, k, (uint16_t)(k * 4)));
}

static bool ap_used;

static bool need_ap(const char *c)
{
	ap_used = true;
	if (micro_ap_workers() < 1)
		return fail(c, "no AP worker started (this case needs --cpus 2)");
	return true;
}

/* ---- queues ---- */

/*
 * QueueReady 0 with requests in flight, then at once 1 again: on the same rings (their
 * indexes put back to 0) or on other ones. After QueueReady reads back 0 the device completes
 * nothing more into the old ring, and the re-enabled queue starts empty: no completion of a
 * request made before it was taken down may appear in it (the driver forgot those heads; a
 * stale one would complete a later request that happens to use the same head). Several delays
 * between the kick and QueueReady 0, so that the 1 MiB reads are still in flight or not.
 */
static bool hc_queue_ready_inflight(struct vdev *d, const char *c)
{
	static const uint32_t delays[] = {0, 30, 300, 3000};
	struct ring *b = &rings[MAX_DEVS - 2];
	uint32_t stale = 0, inflight = 0;

	if (d->sectors < BIG_SECT)
		return fail(c, "disk smaller than %u sectors", BIG_SECT);
	for (uint32_t r = 0; r < 2 * sizeof(delays) / sizeof(delays[0]); r++) {
		bool other = r & 1;
		const char *why = dev_init(d);
		uint16_t u0;

		if (why)
			return fail(c, "round %u: init: %s", r, why);
		memset(b->desc, 0, sizeof(b->desc));
		memset(b->avail, 0, sizeof(b->avail));
		memset(b->used, 0, sizeof(b->used));
		for (uint32_t k = 0; k < BATCH; k++)
			big_post(d, k);
		kick(d);
		delay(delays[r / 2]);
		wr(d, VM_QUEUE_SEL, 0);
		wr(d, VM_QUEUE_READY, 0);
		if (rd(d, VM_QUEUE_READY) != 0)
			return fail(c, "round %u: QueueReady reads 1 after writing 0", r);
		u0 = used_idx(d);
		inflight += BATCH - u0;
		if (other) {
			queue_program(d, d->qsize, gpa(b->desc), gpa(b->avail), gpa(b->used));
		} else {
			*AVAIL_IDX(d) = 0;
			*(volatile uint16_t *)(d->qused + 2) = 0;
		}
		wr(d, VM_QUEUE_READY, 1);
		if (rd(d, VM_QUEUE_READY) != 1 || (rd(d, VM_STATUS) & S_NEEDS_RESET))
			return fail(c, "round %u: re-enabling: QueueReady %u status %x", r,
				    rd(d, VM_QUEUE_READY), rd(d, VM_STATUS));
		spin_tsc(QUIET_LONG);
		if (other && used_idx(d) != u0)
			return fail(c,
				    "round %u: used idx of the old ring moved from %u to %u after "
				    "QueueReady 0",
				    r, u0, used_idx(d));
		if (other)
			ring_place(d, b->desc, b->avail, b->used);
		if (used_idx(d) != 0) {
			uint32_t id, len;

			used_elem(d, 0, &id, &len);
			stale++;
			fail(c,
			     "round %u (%s ring, %u done before QueueReady 0): used idx %u in the "
			     "re-enabled queue, first id %u len %u: requests from before",
			     r, other ? "another" : "the same", u0, used_idx(d), id, len);
			ring_place(d, NULL, NULL, NULL);
			continue;
		}
		d->avail_idx = 0;
		d->used_seen = 0;
		int_ack_all(d);
		if (!read_ok(d, c, 13))
			return false;
		if (used_idx(d) != 1)
			return fail(c, "round %u: used idx %u after one new request", r,
				    used_idx(d));
		ring_place(d, NULL, NULL, NULL);
	}
	ring_place(d, NULL, NULL, NULL);
	uart_printf("MICRO INFO %s: %u requests not completed at QueueReady 0\n", c, inflight);
	return stale == 0;
}

/*
 * QueueNum and the ring addresses written while the queue is ready (§4.2.2: the driver
 * MUST NOT). They must change nothing: the queue goes on with its size and rings, nothing is
 * written where the ignored addresses point, and QueueReady 0 -> 1 afterwards brings back
 * the values programmed before the queue became ready, not the ignored ones.
 */
static bool hc_queue_regs_while_ready(struct vdev *d, const char *c)
{
	const char *why = dev_init(d);
	uint32_t qmax;

	if (why)
		return fail(c, "init: %s", why);
	fill32(scratch, 0x5a5a5a5a, 1024);
	qmax = rd(d, VM_QUEUE_NUM_MAX);
	wr(d, VM_QUEUE_SEL, 0);
	wr(d, VM_QUEUE_NUM, 2);
	wr(d, VM_QUEUE_DESC_LO, (uint32_t)gpa(scratch));
	wr(d, VM_QUEUE_DESC_HI, 0x10);
	wr(d, VM_QUEUE_DRIVER_LO, (uint32_t)gpa(scratch + 512));
	wr(d, VM_QUEUE_DEVICE_LO, (uint32_t)gpa(scratch + 768));
	wr(d, VM_QUEUE_DEVICE_HI, 0);
	if (rd(d, VM_QUEUE_NUM_MAX) != qmax || rd(d, VM_QUEUE_READY) != 1)
		return fail(c, "QueueNumMax %u (was %u), QueueReady %u", rd(d, VM_QUEUE_NUM_MAX),
			    qmax, rd(d, VM_QUEUE_READY));
	/* Heads 0..12 and four entries: both need the size of 16, not 2. */
	if (!batch_read(d, c, 30, true) || !read_ok(d, c, 3))
		return false;
	if (rd(d, VM_STATUS) & S_NEEDS_RESET)
		return fail(c, "NEEDS_RESET after writes the device should have ignored");
	wr(d, VM_QUEUE_READY, 0);
	ring_clear(d);
	wr(d, VM_QUEUE_READY, 1);
	if (rd(d, VM_STATUS) & S_NEEDS_RESET)
		return fail(c, "QueueReady 0 -> 1 took the values written while ready: status %x",
			    rd(d, VM_STATUS));
	if (!batch_read(d, c, 40, true))
		return false;
	if (used_idx(d) != BATCH)
		return fail(c, "used idx %u after re-enabling and %u requests", used_idx(d), BATCH);
	if (!all32(scratch, 0x5a5a5a5a, 1024))
		return fail(c, "the device wrote where the ignored ring addresses pointed");
	return true;
}

/*
 * DRIVER_OK first, then a queue (QueueReady after DRIVER_OK, §3.1.1 step 7 comes before 8).
 * The device may serve the queue or answer DEVICE_NEEDS_RESET; it must not take requests and
 * never complete them.
 */
static bool hc_queue_after_driver_ok(struct vdev *d, const char *c)
{
	const char *why = dev_init_features(d, blk_wanted());
	struct req q;
	uint32_t id, len;
	uint16_t head;

	if (why)
		return fail(c, "init: %s", why);
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if (rd(d, VM_STATUS) != (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
		return fail(c, "status %x after DRIVER_OK without queues", rd(d, VM_STATUS));
	why = queue_setup(d);
	if (why)
		return fail(c, "queue after DRIVER_OK: %s", why);
	q = mkreq(T_IN, 17, d->r->data, SECTOR, true, 1, false, false);
	head = req_post(d, &q, 0, 0);
	avail_add(d, head);
	kick(d);
	if (!used_wait(d, &id, &len)) {
		if (rd(d, VM_STATUS) & S_NEEDS_RESET)
			return true;
		return fail(c,
			    "the queue made ready after DRIVER_OK never completes a request "
			    "and the device does not ask for a reset (status %x)",
			    rd(d, VM_STATUS));
	}
	irq_after(d);
	if (id != head || len != SECTOR + 1 || d->r->status[0] != ST_OK)
		return fail(c, "used id %u len %u status %u", id, len, d->r->status[0]);
	return pat_check(c, d, d->r->data, 17, 1, d->salt);
}

/* ---- features and status ---- */

/*
 * Feature writes after FEATURES_OK (and after DRIVER_OK) are ignored (§3.1.1: the driver
 * MUST NOT accept new features after FEATURES_OK): negotiated without INDIRECT_DESC and
 * EVENT_IDX, later writes adding them (and dropping VERSION_1) change nothing. Proof: the
 * device never writes avail_event, and an indirect chain is a malformed chain (used len 0).
 */
static bool hc_features_after_ok(struct vdev *d, const char *c)
{
	uint64_t want =
		BIT(FB_FLUSH) | BIT(FB_BLK_SIZE) | BIT(FB_SEG_MAX) | BIT(FB_SIZE_MAX) | BIT(FB_RO);
	const char *why = dev_init_features(d, want);
	volatile uint16_t *avail_event;
	struct req q;

	if (why)
		return fail(c, "init: %s", why);
	if (!(d->offered & BIT(F_INDIRECT)) || !(d->offered & BIT(F_EVENT_IDX)))
		return fail(c, "INDIRECT_DESC and EVENT_IDX must be offered (%llx)",
			    (unsigned long long)d->offered);
	features_write(d, d->offered & ~BIT(F_VERSION_1));
	d->event_idx = false;
	why = queue_setup(d);
	if (why)
		return fail(c, "queue: %s", why);
	avail_event = (volatile uint16_t *)(d->qused + 4 + 8 * (uint32_t)d->qsize);
	*avail_event = 0xbeef;
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	features_write(d, d->offered);
	if (rd(d, VM_STATUS) != (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
		return fail(c, "status %x", rd(d, VM_STATUS));
	if (!read_ok(d, c, 3) || !read_ok(d, c, 4))
		return false;
	spin_tsc(QUIET_TSC);
	if (*avail_event != 0xbeef)
		return fail(c,
			    "the device wrote avail_event (%x): EVENT_IDX taken from a write "
			    "after FEATURES_OK",
			    *avail_event);
	q = mkreq(T_IN, 11, d->r->data, SECTOR, true, 1, false, true);
	if (!req_run(d, &q))
		return fail(c, "indirect chain: %s", q.err);
	if (q.used_len != 0 || q.status != CANARY)
		return fail(c,
			    "indirect chain without INDIRECT_DESC: used len %u status %x, "
			    "expected a malformed chain (0, untouched)",
			    q.used_len, q.status);
	return true;
}

/*
 * DRIVER_OK before FEATURES_OK: the device refuses it with DEVICE_NEEDS_RESET (nothing was
 * negotiated to run with). It stays so until a reset: FEATURES_OK, a queue and DRIVER_OK
 * written afterwards bring no request to completion.
 */
static bool hc_status_driver_ok_early(struct vdev *d, const char *c)
{
	uint32_t st;
	struct req q;

	qsize_init(d);
	if (!status_reset(d))
		return fail(c, "reset");
	wr(d, VM_STATUS, S_ACK);
	wr(d, VM_STATUS, S_ACK | S_DRIVER);
	features_write(d, BIT(F_VERSION_1));
	ring_clear(d);
	queue_program(d, d->qsize, gpa(d->qdesc), gpa(d->qavail), gpa(d->qused));
	wr(d, VM_QUEUE_READY, 1);
	if (rd(d, VM_QUEUE_READY) != 0)
		return fail(c, "QueueReady accepted before FEATURES_OK");
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_DRIVER_OK);
	st = rd(d, VM_STATUS);
	if (st != (S_ACK | S_DRIVER | S_NEEDS_RESET))
		return fail(c, "status %x after DRIVER_OK without FEATURES_OK, expected %x", st,
			    S_ACK | S_DRIVER | S_NEEDS_RESET);
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	wr(d, VM_QUEUE_READY, 1);
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	st = rd(d, VM_STATUS);
	if (!(st & S_NEEDS_RESET))
		return fail(c, "status %x: NEEDS_RESET went away without a reset", st);
	q = mkreq(T_IN, 17, d->r->data, SECTOR, true, 1, false, false);
	avail_add(d, req_post(d, &q, 0, 0));
	kick(d);
	if (!used_stays(d, 0, QUIET_LONG) || d->r->status[0] != CANARY)
		return fail(c, "a device needing a reset completed a request (status %x)", st);
	return true;
}

/*
 * Steps skipped or merged (§3.1.1 orders them for the driver; the device checks what it
 * needs): FEATURES_OK without DRIVER is not kept; DRIVER_OK alone is DEVICE_NEEDS_RESET;
 * FEATURES_OK with no features written (no VERSION_1) is refused; DRIVER and FEATURES_OK
 * without ACKNOWLEDGE, with VERSION_1, are accepted and the device then works.
 */
static bool hc_status_skipped_steps(struct vdev *d, const char *c)
{
	uint32_t st;
	const char *why;

	qsize_init(d);
	status_reset(d);
	wr(d, VM_STATUS, S_FEATURES_OK);
	if ((st = rd(d, VM_STATUS)) != 0)
		return fail(c, "FEATURES_OK alone: status %x, expected 0", st);
	wr(d, VM_STATUS, S_DRIVER_OK);
	st = rd(d, VM_STATUS);
	if (!(st & S_NEEDS_RESET) || (st & S_DRIVER_OK))
		return fail(c, "DRIVER_OK alone: status %x, expected NEEDS_RESET", st);
	status_reset(d);
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if ((st = rd(d, VM_STATUS)) != (S_ACK | S_DRIVER))
		return fail(c,
			    "FEATURES_OK with no features written (no VERSION_1): status %x, "
			    "expected %x",
			    st, S_ACK | S_DRIVER);
	status_reset(d);
	wr(d, VM_STATUS, S_DRIVER);
	features_write(d, BIT(F_VERSION_1) | (features_read(d) & BIT(F_INDIRECT)));
	wr(d, VM_STATUS, S_DRIVER | S_FEATURES_OK);
	if ((st = rd(d, VM_STATUS)) != (S_DRIVER | S_FEATURES_OK))
		return fail(c, "DRIVER | FEATURES_OK without ACKNOWLEDGE: status %x", st);
	d->event_idx = false;
	why = queue_setup(d);
	if (why)
		return fail(c, "queue: %s", why);
	wr(d, VM_STATUS, S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if ((st = rd(d, VM_STATUS)) != (S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
		return fail(c, "status %x after DRIVER_OK", st);
	return read_ok(d, c, 19);
}

/*
 * Clearing bits without a reset (§2.1.2: the driver MUST NOT) is ignored, NEEDS_RESET is the
 * device's and not taken from the driver, FAILED is recorded; the device keeps working.
 */
static bool hc_status_clear_bits(struct vdev *d, const char *c)
{
	const uint32_t full = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
	static const uint32_t writes[] = {S_ACK, S_ACK | S_DRIVER | S_FEATURES_OK, S_DRIVER_OK,
					  S_ACK | S_DRIVER | S_DRIVER_OK, full | S_NEEDS_RESET};
	const char *why = dev_init(d);
	uint32_t st;

	if (why)
		return fail(c, "init: %s", why);
	for (uint32_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		wr(d, VM_STATUS, writes[i]);
		if ((st = rd(d, VM_STATUS)) != full)
			return fail(c, "status %x after writing %x, expected %x unchanged", st,
				    writes[i], full);
		wr(d, VM_QUEUE_SEL, 0);
		if (rd(d, VM_QUEUE_READY) != 1)
			return fail(c, "queue taken down by status write %x", writes[i]);
	}
	if (!read_ok(d, c, 6))
		return false;
	wr(d, VM_STATUS, full | S_FAILED);
	if ((st = rd(d, VM_STATUS)) != (full | S_FAILED))
		return fail(c, "status %x after FAILED, expected %x", st, full | S_FAILED);
	return true;
}

/* ---- access widths ---- */

/*
 * The config space takes 1, 2, 4 and 8-byte accesses (§4.2.2.2); virtio-blk's is read-only
 * without CONFIG_WCE (§5.2.4), so every write is ignored, and an access that reaches past the
 * end of the config space (60 bytes) is refused whole: reads 0, writes ignored.
 */
static bool hc_config_widths(struct vdev *d, const char *c)
{
	const uintptr_t cfg = d->base + VM_CONFIG;
	const char *why = dev_init(d);
	uint64_t cap = 0, v;
	uint32_t blk_size, seg_max, gen;

	if (why)
		return fail(c, "init: %s", why);
	for (uint32_t i = 0; i < 8; i++)
		cap |= (uint64_t)mmio_read8(cfg + C_CAPACITY + i) << (8 * i);
	if (cap != d->sectors)
		return fail(c, "capacity by bytes %llx, expected %llx", (unsigned long long)cap,
			    (unsigned long long)d->sectors);
	for (v = 0, cap = 0; v < 4; v++)
		cap |= (uint64_t)mmio_read16(cfg + C_CAPACITY + 2 * v) << (16 * v);
	if (cap != d->sectors)
		return fail(c, "capacity by 16-bit reads %llx", (unsigned long long)cap);
#ifdef __x86_64__
	if ((v = mmio_read64(cfg + C_CAPACITY)) != d->sectors)
		return fail(c, "capacity by one 64-bit read %llx", (unsigned long long)v);
	/* 56..63 straddles the end: refused whole, even though 56 holds a 1 (may_unmap). */
	if ((v = mmio_read64(cfg + 56)) != 0)
		return fail(c, "64-bit read at 56 (past the end) gave %llx, not 0",
			    (unsigned long long)v);
#endif
	blk_size = cfg32(d, C_BLK_SIZE);
	seg_max = cfg32(d, C_SEG_MAX);
	gen = rd(d, VM_CONFIG_GEN);
	/* In range, every width. */
	mmio_write8(cfg + C_CAPACITY, 0xff);
	mmio_write16(cfg + C_BLK_SIZE, 0x1234);
	mmio_write32(cfg + C_SEG_MAX, 7);
	mmio_write8(cfg + 32, 1); /* writeback: only with CONFIG_WCE */
	/* Out of range and straddling the end. */
	mmio_write8(cfg + 60, 0xff);
	mmio_write8(d->base + VM_WINDOW - 1, 0xff);
	mmio_write16(cfg + 59, 0xffff);
	mmio_write32(cfg + 58, 0xffffffff);
	mmio_write32(d->base + VM_WINDOW - 4, 0xffffffff);
#ifdef __x86_64__
	mmio_write64(cfg + C_CAPACITY, 0x123456789abcdefULL);
	mmio_write64(cfg + 56, ~0ULL);
	mmio_write64(d->base + VM_WINDOW - 8, ~0ULL);
#endif
	if (mmio_read8(cfg + 60) || mmio_read16(cfg + 59) || mmio_read32(cfg + 58) ||
	    mmio_read32(d->base + VM_WINDOW - 4) || mmio_read8(d->base + VM_WINDOW - 1))
		return fail(c, "reads past the end of the config space are not 0");
	if ((cap = cfg64(d, C_CAPACITY, &(bool){false})) != d->sectors ||
	    cfg32(d, C_BLK_SIZE) != blk_size || cfg32(d, C_SEG_MAX) != seg_max ||
	    rd(d, VM_CONFIG_GEN) != gen)
		return fail(c,
			    "config changed by writes: capacity %llx blk_size %u seg_max %u "
			    "generation %u (were %llx %u %u %u)",
			    (unsigned long long)cap, cfg32(d, C_BLK_SIZE), cfg32(d, C_SEG_MAX),
			    rd(d, VM_CONFIG_GEN), (unsigned long long)d->sectors, blk_size, seg_max,
			    gen);
	return read_ok(d, c, 8);
}

/*
 * Registers take aligned 32-bit accesses only (§4.2.2.2): other widths and unaligned ones
 * read 0 and are ignored as writes. Proof for writes: a 0 written to Status any other way
 * does not reset the device, queue registers written so before QueueReady do not count.
 * An access crossing the end of the window is split by the CPU into two devices' windows.
 */
static bool hc_reg_widths(struct vdev *d, const char *c)
{
	const uint32_t full = S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK;
	const char *why = dev_init(d);
	uint32_t v;

	if (why)
		return fail(c, "init: %s", why);
	if (mmio_read16(d->base + VM_MAGIC) || mmio_read8(d->base + VM_VERSION) ||
	    mmio_read32(d->base + VM_MAGIC + 2) || mmio_read32(d->base + VM_STATUS + 1) ||
	    mmio_read16(d->base + VM_STATUS))
		return fail(c, "a 1-, 2- or unaligned 4-byte register read is not 0");
#ifdef __x86_64__
	if (mmio_read64(d->base + VM_MAGIC) || mmio_read64(d->base + VM_STATUS))
		return fail(c, "a 64-bit register read is not 0");
#endif
	mmio_write8(d->base + VM_STATUS, 0);
	mmio_write16(d->base + VM_STATUS, 0);
	mmio_write32(d->base + VM_STATUS + 2, 0);
	mmio_write32(d->base + VM_STATUS - 2, 0);
#ifdef __x86_64__
	mmio_write64(d->base + VM_STATUS, 0);
	mmio_write64(d->base + VM_QUEUE_NOTIFY, 0);
#endif
	mmio_write16(d->base + VM_QUEUE_SEL, 1);
	mmio_write8(d->base + VM_QUEUE_NOTIFY, 0);
	mmio_write16(d->base + VM_INT_ACK, 0xffff);
	if ((v = rd(d, VM_STATUS)) != full)
		return fail(c, "status %x after odd-width writes of 0, expected %x", v, full);
	if (rd(d, VM_QUEUE_READY) != 1)
		return fail(c,
			    "QueueReady %u: QueueSel changed by a 16-bit write or the queue "
			    "reset",
			    rd(d, VM_QUEUE_READY));
	/* Crossing into the next window (another device, or nothing). */
	(void)mmio_read32(d->base + VM_WINDOW - 2);
	mmio_write32(d->base + VM_WINDOW - 2, 0);
#ifdef __x86_64__
	mmio_write64(d->base + VM_WINDOW - 4, 0);
#endif
	if ((v = rd(d, VM_STATUS)) != full)
		return fail(c, "status %x after accesses across the window end", v);
	if (!read_ok(d, c, 10))
		return false;
	/* Queue registers before QueueReady: only the aligned 32-bit writes count. */
	why = dev_init_features(d, blk_wanted());
	if (why)
		return fail(c, "init: %s", why);
	ring_clear(d);
	queue_program(d, d->qsize, gpa(d->qdesc), gpa(d->qavail), gpa(d->qused));
#ifdef __x86_64__
	mmio_write64(d->base + VM_QUEUE_DESC_LO, FAR_AWAY);
	mmio_write64(d->base + VM_QUEUE_NUM, 3);
#endif
	mmio_write32(d->base + VM_QUEUE_DESC_LO + 2, 0x1234);
	mmio_write16(d->base + VM_QUEUE_NUM, 3);
	mmio_write16(d->base + VM_QUEUE_DEVICE_HI, 0xffff);
	mmio_write16(d->base + VM_QUEUE_READY, 1);
	if (rd(d, VM_QUEUE_READY) != 0)
		return fail(c, "a 16-bit QueueReady write made the queue ready");
	wr(d, VM_QUEUE_READY, 1);
	wr(d, VM_STATUS, full);
	if ((v = rd(d, VM_STATUS)) != full)
		return fail(c, "status %x: a queue register took an odd-width write", v);
	return read_ok(d, c, 12);
}

/* ---- EVENT_IDX ---- */

/* One read with used_event set to (the used index before it) + rel; interrupt expected? */
static bool ev_step(struct vdev *d, const char *c, uint16_t rel, bool want)
{
	struct req q = mkreq(T_IN, 5, d->r->data, SECTOR, true, 1, false, false);
	uint16_t head = req_post(d, &q, 0, 0);
	uint32_t id, len, st;

	int_ack_all(d);
	avail_add(d, head);
	*AVAIL_USED_EVENT(d) = (uint16_t)(d->used_seen + rel);
	barrier();
	*AVAIL_IDX(d) = d->avail_idx;
	mfence();
	wr(d, VM_QUEUE_NOTIFY, d->qidx);
	if (!used_wait(d, &id, &len))
		return fail(c, "used_event %+d: no completion", (int)(int16_t)rel);
	if (id != head || len != SECTOR + 1 || d->r->status[0] != ST_OK ||
	    !pat_is(d, d->r->data, 5, 1))
		return fail(c, "used_event %+d: id %u len %u status %u", (int)(int16_t)rel, id, len,
			    d->r->status[0]);
	spin_tsc(QUIET_TSC);
	st = rd(d, VM_INT_STATUS);
	/* §2.7.10: vring_need_event(used_event, new, old): only when the event index is crossed. */
	if (!!(st & INT_USED) != want)
		return fail(c, "used_event = used idx %+d: interrupt %s, expected %s",
			    (int)(int16_t)rel, st & INT_USED ? "sent" : "not sent",
			    want ? "one" : "none");
	return true;
}

/*
 * EVENT_IDX negotiated, used_event set to values around and far from the used index: the
 * device interrupts exactly when the used index crosses it (§2.7.10), and serves every
 * request whatever it says. avail_event is the device's: after it goes idle it asks for a
 * kick at the next entry (avail_event == avail idx), and a driver scribbling there changes
 * nothing.
 */
static bool hc_event_idx_used_event(struct vdev *d, const char *c)
{
	static const struct {
		uint16_t rel;
		bool irq;
	} steps[] = {{0, true},	      {1, false},      {0x8000, false}, {0xffff, false}, {0, true},
		     {0x7fff, false}, {0x8001, false}, {2, false},	{0xfffe, false}, {0, true}};
	const char *why = dev_init_features(d, blk_wanted() | BIT(F_EVENT_IDX));
	volatile uint16_t *avail_event;

	if (why)
		return fail(c, "init: %s", why);
	if (!d->event_idx)
		return fail(c, "EVENT_IDX not negotiated");
	why = dev_init_queue(d);
	if (why)
		return fail(c, "queue: %s", why);
	avail_event = (volatile uint16_t *)(d->qused + 4 + 8 * (uint32_t)d->qsize);
	if (!read_ok(d, c, 2)) /* the first completion after enabling always interrupts */
		return false;
	for (uint32_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		if (!ev_step(d, c, steps[i].rel, steps[i].irq))
			return false;
	spin_tsc(QUIET_TSC);
	if (*avail_event != d->avail_idx)
		return fail(c, "idle device: avail_event %u, avail idx %u (no kick asked for)",
			    *avail_event, d->avail_idx);
	*avail_event = (uint16_t)(d->avail_idx + 100);
	if (!read_ok(d, c, 3))
		return false;
	spin_tsc(QUIET_TSC);
	if (*avail_event != d->avail_idx)
		return fail(c, "avail_event %u after the driver scribbled on it, avail idx %u",
			    *avail_event, d->avail_idx);
	return true;
}

/* ---- ring placement ---- */

/* Features for the placement cases: no EVENT_IDX, so the rings' layouts stay simple. */
static const char *init_plain(struct vdev *d)
{
	const char *why = dev_init_features(d, blk_wanted() & ~BIT(F_EVENT_IDX));

	d->event_idx = false;
	return why;
}

static bool wait_u32(volatile uint32_t *p, uint32_t v)
{
	for (uint64_t t0 = rdtsc(); rdtsc() - t0 < WAIT_TSC;)
		if (*p == v)
			return true;
	return *p == v;
}

/*
 * The avail and the used ring at the same address. Their headers coincide (flags, idx) and
 * used element i covers avail entries 2i..2i+3. A driver that reads each completion before
 * posting the next request still works: the device serves what avail idx says, once, and does
 * not mistake its own used index for new buffers. Completion is seen in the used element
 * (used idx is also avail idx).
 */
static bool hc_ring_overlap_avail_used(struct vdev *d, const char *c)
{
	uint8_t *x = scratch;
	const char *why = init_plain(d);

	if (why)
		return fail(c, "init: %s", why);
	fill32(x, 0, 256);
	ring_place(d, NULL, x, x);
	why = queue_setup(d);
	if (why)
		return fail(c, "queue: %s", why);
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	for (uint32_t n = 0; n < 2; n++) {
		put_read(d, wdesc(gpa(d->r->data), SECTOR));
		d->r->hdr[0].sector = 21 + n;
		fill32(d->r->data, 0xeeeeeeee, SECTOR);
		*(volatile uint16_t *)(x + 4 + 2 * n) = 0;
		mfence();
		*(volatile uint16_t *)(x + 2) = (uint16_t)(n + 1);
		mfence();
		wr(d, VM_QUEUE_NOTIFY, 0);
		if (!wait_u32((volatile uint32_t *)(x + 4 + 8 * n + 4), SECTOR + 1))
			return fail(c, "request %u: used element len %u, expected %u (status %x)",
				    n, *(volatile uint32_t *)(x + 4 + 8 * n + 4), SECTOR + 1,
				    rd(d, VM_STATUS));
		if (d->r->status[0] != ST_OK || !pat_check(c, d, d->r->data, 21 + n, 1, d->salt))
			return fail(c, "request %u: status %u", n, d->r->status[0]);
	}
	spin_tsc(QUIET_LONG);
	if (*(volatile uint16_t *)(x + 2) != 2 || (rd(d, VM_STATUS) & S_NEEDS_RESET))
		return fail(c, "idx %u status %x: the device consumed its own used entries",
			    *(volatile uint16_t *)(x + 2), rd(d, VM_STATUS));
	return true;
}

/*
 * The descriptor table at the avail ring's address: descriptor 0 is then the avail header
 * and entries (flags 0, idx 1, ring[0] = 0: address 0x10000, length 0), a zero-length
 * descriptor: a malformed chain, completed with used len 0.
 */
static bool hc_ring_overlap_desc_avail(struct vdev *d, const char *c)
{
	uint8_t *x = scratch;
	const char *why = init_plain(d);
	uint32_t id, len;

	if (why)
		return fail(c, "init: %s", why);
	ring_place(d, (struct vdesc *)x, x, NULL);
	why = dev_init_queue(d);
	if (why)
		return fail(c, "queue: %s", why);
	avail_add(d, 0);
	kick(d);
	if (!used_wait(d, &id, &len))
		return fail(c, "never completed");
	if (id != 0 || len != 0)
		return fail(c, "used id %u len %u, expected the malformed chain 0 with len 0", id,
			    len);
	return true;
}

/*
 * The used ring on the descriptor table: the device's own writes (used flags, index,
 * elements) land in descriptor 0 while it works. Whatever it makes of that (a completed
 * request, a malformed chain, NEEDS_RESET), it must finish, stay within the rings and the
 * buffers it was given, and go idle.
 */
static bool hc_ring_overlap_desc_used(struct vdev *d, const char *c)
{
	uint8_t *x = scratch + 256;
	const char *why = init_plain(d);
	uint64_t t0;

	if (why)
		return fail(c, "init: %s", why);
	fill32(scratch, 0x5a5a5a5a, 1024);
	ring_place(d, (struct vdesc *)x, NULL, x);
	why = dev_init_queue(d);
	if (why)
		return fail(c, "queue: %s", why);
	d->r->hdr[1] = (struct blk_hdr){0, 0, 0};
	fill32(d->r->data, 0xeeeeeeee, 2 * SECTOR);
	put_read(d, wdesc(gpa(d->r->data), SECTOR));
	int_ack_all(d);
	avail_add(d, 0);
	kick(d);
	for (t0 = rdtsc(); rdtsc() - t0 < WAIT_TSC;)
		if (d->r->status[0] != CANARY || (rd(d, VM_INT_STATUS) & INT_USED) ||
		    (rd(d, VM_STATUS) & S_NEEDS_RESET))
			break;
	spin_tsc(QUIET_TSC);
	if (d->r->status[0] == CANARY && !(rd(d, VM_INT_STATUS) & INT_USED) &&
	    !(rd(d, VM_STATUS) & S_NEEDS_RESET))
		return fail(c, "no completion, no NEEDS_RESET");
	if (d->r->status[0] != CANARY && (d->r->status[0] != ST_OK || !pat_is(d, d->r->data, 0, 1)))
		return fail(c, "status %u, or data not sector 0's", d->r->status[0]);
	if (!all32(scratch, 0x5a5a5a5a, 256) || !all32(scratch + 512, 0x5a5a5a5a, 512) ||
	    !all32(d->r->data + SECTOR, 0xeeeeeeee, SECTOR))
		return fail(c, "the device wrote outside the rings and the buffer");
	return true;
}

/* One queue's parts placed, used for reads, then the device reset before they go. */
static bool placed_reads(struct vdev *d, const char *c, struct vdesc *desc, uint8_t *avail,
			 uint8_t *used)
{
	const char *why;

	ring_place(d, desc, avail, used);
	why = dev_init(d);
	if (why)
		return fail(c, "ring at %x/%x/%x: %s", (uint32_t)gpa(d->qdesc),
			    (uint32_t)gpa(d->qavail), (uint32_t)gpa(d->qused), why);
	if (!read_ok(d, c, 5) || !batch_read(d, c, 50, true) || !read_ok(d, c, 6))
		return false;
	if (used_idx(d) != BATCH + 2)
		return fail(c, "used idx %u", used_idx(d));
	status_reset(d);
	ring_place(d, NULL, NULL, NULL);
	return true;
}

/*
 * Rings in the ACPI area (0xe0000-0xfefff, e820 reserved): it is RAM, and after boot the
 * guest's to use; the device serves it like any RAM. What was there is put back.
 */
static bool hc_ring_in_acpi_area(struct vdev *d, const char *c)
{
	uint8_t *desc = (uint8_t *)0xfc000, *avail = (uint8_t *)0xfd000, *used = (uint8_t *)0xfef00;
	bool ok;

	copy32(scratch, desc, 256);
	copy32(scratch + 256, avail, 64);
	copy32(scratch + 512, used, 256);
	ok = placed_reads(d, c, (struct vdesc *)desc, avail, used);
	status_reset(d);
	copy32(desc, scratch, 256);
	copy32(avail, scratch + 256, 64);
	copy32(used, scratch + 512, 256);
	return ok;
}

#ifdef __x86_64__
static uint64_t pt_pages[6][512] __attribute__((section(".bss.micro_noinit"), aligned(4096)));

/* Move the live page tables (the VMM's, at 0x9000-0xefff) out of the boot area. */
static void pt_relocate(void)
{
	const uint64_t mask = 0x000ffffffffff000ULL;
	uint64_t cr3, *pml4, *pdpt;

	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	cr3 &= mask;
	if (cr3 >= 0x10000)
		return; /* not in the boot area (moved already) */
	pml4 = (uint64_t *)(uintptr_t)cr3;
	copy32(pt_pages[0], pml4, 4096);
	if (pml4[0] & 1) {
		pdpt = (uint64_t *)(uintptr_t)(pml4[0] & mask);
		copy32(pt_pages[1], pdpt, 4096);
		pt_pages[0][0] = gpa(pt_pages[1]) | (pml4[0] & ~mask);
		for (uint32_t i = 0; i < 4; i++) {
			if (!(pdpt[i] & 1) || (pdpt[i] & 0x80))
				continue;
			copy32(pt_pages[2 + i], (void *)(uintptr_t)(pdpt[i] & mask), 4096);
			pt_pages[1][i] = gpa(pt_pages[2 + i]) | (pdpt[i] & ~mask);
		}
	}
	__asm__ volatile("mov %0, %%cr3" : : "r"(gpa(pt_pages[0])) : "memory");
}
#endif

/*
 * Rings in the boot area: the zero page / hvm_start_info (0x1000) and the boot page tables
 * (0x9000-0xefff). The guest has read its boot information and (64-bit) moved its page
 * tables; the device serves the rings like any RAM.
 */
static bool hc_ring_in_boot_area(struct vdev *d, const char *c)
{
#ifdef __x86_64__
	pt_relocate();
#endif
	return placed_reads(d, c, (struct vdesc *)0x1000, (uint8_t *)0x9000, (uint8_t *)0xe000);
}

/*
 * The end of the highest RAM range below 4 GiB: 3 GiB when RAM goes on above 4 GiB (a
 * 3584M guest), or the end of RAM itself.
 */
static uint64_t ram_top(const char *c)
{
	uint64_t top = micro_ram_top_4g();

	if (top < 64 * 1024 * 1024)
		fail(c, "no RAM end below 4 GiB in the memory map (%llx)", (unsigned long long)top);
	return top < 64 * 1024 * 1024 ? 0 : top;
}

/* Each ring part ending at (desc, avail) or just before (used: 4-aligned) the RAM end. */
static bool hc_ring_at_ram_end(struct vdev *d, const char *c)
{
	uint64_t top = ram_top(c);

	if (!top)
		return false;
	uart_printf("MICRO INFO %s: RAM below 4 GiB ends at %llx\n", c, (unsigned long long)top);
	return placed_reads(d, c, (struct vdesc *)(uintptr_t)(top - 16 * QSZ), NULL, NULL) &&
	       placed_reads(d, c, NULL, (uint8_t *)(uintptr_t)(top - (6 + 2 * QSZ)), NULL) &&
	       placed_reads(d, c, NULL, NULL, (uint8_t *)(uintptr_t)(top - (8 + 8 * QSZ)));
}

/*
 * Each part straddling the RAM end by a few bytes (the rest of RAM may go on at 4 GiB, but a
 * ring is one range): refused with DEVICE_NEEDS_RESET (§2.1.2), before DRIVER_OK.
 */
static bool hc_ring_straddles_ram_end(struct vdev *d, const char *c)
{
	uint64_t top = ram_top(c);
	struct ring *r = d->r;

	if (!top)
		return false;
	for (uint32_t i = 0; i < 3; i++) {
		uint64_t desc = gpa(r->desc), avail = gpa(r->avail), used = gpa(r->used);
		const char *why = init_plain(d);

		if (why)
			return fail(c, "init: %s", why);
		if (i == 0)
			desc = top - 16 * QSZ + 16;
		else if (i == 1)
			avail = top - (6 + 2 * QSZ) + 2;
		else
			used = top - (6 + 8 * QSZ) + 2;
		qsize_init(d);
		queue_program(d, QSZ, desc, avail, used);
		wr(d, VM_QUEUE_READY, 1);
		if (!hostile_needs_reset(d, c, true))
			return fail(c, "%s straddling the end of RAM (%llx) was accepted",
				    i == 0   ? "desc"
				    : i == 1 ? "avail"
					     : "used",
				    (unsigned long long)top);
		wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
		if (!hostile_needs_reset(d, c, false))
			return false;
	}
	return true;
}

/*
 * A data buffer ending at the last RAM byte is served; one straddling the end, or wholly past
 * it, is a malformed chain (used len 0, status untouched).
 */
static bool hc_data_at_ram_end(struct vdev *d, const char *c)
{
	uint64_t top = ram_top(c);
	uint8_t *buf;
	const char *why;
	uint32_t id, len;
	uint16_t head;

	if (!top)
		return false;
	why = dev_init(d);
	if (why)
		return fail(c, "init: %s", why);
	buf = (uint8_t *)(uintptr_t)(top - SECTOR);
	head = put_read(d, wdesc(gpa(buf), SECTOR));
	d->r->hdr[0].sector = 24;
	avail_add(d, head);
	kick(d);
	if (!used_wait(d, &id, &len))
		return fail(c, "buffer at the RAM end: no completion");
	irq_after(d);
	if (id != head || len != SECTOR + 1 || d->r->status[0] != ST_OK ||
	    !pat_check(c, d, buf, 24, 1, d->salt))
		return fail(c, "buffer ending at the RAM end: used len %u status %u", len,
			    d->r->status[0]);
	head = put_read(d, wdesc(top - SECTOR / 2, SECTOR));
	avail_add(d, head);
	kick(d);
	if (!hostile_complete(d, c, head, EX_CHAIN))
		return false;
	head = put_read(d, wdesc(top, SECTOR));
	avail_add(d, head);
	kick(d);
	return hostile_complete(d, c, head, EX_CHAIN);
}

/* ---- DMA into the device's own structures ---- */

/*
 * A read whose destination is the descriptor table holding its own chain (16 descriptors,
 * then the indirect table: 512 bytes). The device copied the chain before; the data lands in
 * the table, the status byte where the chain said: used len 513, status OK.
 */
static bool hc_data_into_desc(struct vdev *d, const char *c)
{
	const char *why = dev_init(d);
	uint32_t id, len;
	uint16_t head;

	if (why)
		return fail(c, "init: %s", why);
	if ((uint8_t *)d->r->ind != (uint8_t *)d->r->desc + 16 * QSZ)
		return fail(c, "layout: the indirect table does not follow the descriptors");
	head = put_read(d, wdesc(gpa(d->qdesc), SECTOR));
	d->r->hdr[0].sector = 25;
	avail_add(d, head);
	kick(d);
	if (!used_wait(d, &id, &len))
		return fail(c, "no completion");
	irq_after(d);
	if (id != head || len != SECTOR + 1 || d->r->status[0] != ST_OK)
		return fail(c, "used id %u len %u status %u, expected %u %u 0", id, len,
			    d->r->status[0], head, SECTOR + 1);
	return pat_check(c, d, d->qdesc, 25, 1, d->salt);
}

/*
 * A read whose destination is the used ring itself (placed in a page of its own). The data
 * lands first, then the device writes the used element and index over it: the interrupt
 * (not the used index, which the data overwrites) says when; then used idx 1, element
 * {head, 513}, and the sector's bytes everywhere else in the 512 bytes.
 */
static bool hc_data_into_used(struct vdev *d, const char *c)
{
	uint8_t *u = scratch;
	const volatile uint64_t *w = (const volatile uint64_t *)u;
	const char *why = init_plain(d);
	uint32_t id, len;
	uint16_t head;

	if (why)
		return fail(c, "init: %s", why);
	fill32(u, 0x5a5a5a5a, 2 * SECTOR);
	ring_place(d, NULL, NULL, u);
	why = dev_init_queue(d);
	if (why)
		return fail(c, "queue: %s", why);
	int_ack_all(d);
	head = put_read(d, wdesc(gpa(u), SECTOR));
	d->r->hdr[0].sector = 26;
	avail_add(d, head);
	kick(d);
	if (!wait_bits(d, VM_INT_STATUS, INT_USED, WAIT_TSC))
		return fail(c, "no used-buffer interrupt");
	used_elem(d, 0, &id, &len);
	if (used_idx(d) != 1 || id != head || len != SECTOR + 1 || d->r->status[0] != ST_OK)
		return fail(c, "used idx %u element {%u, %u} status %u, expected 1 {%u, %u} 0",
			    used_idx(d), id, len, d->r->status[0], head, SECTOR + 1);
	for (uint32_t i = 2; i < SECTOR / 8; i++)
		if (w[i] != pat_word(26, i, d->salt))
			return fail(c, "used ring word %u: %llx, expected the sector's %llx", i,
				    (unsigned long long)w[i],
				    (unsigned long long)pat_word(26, i, d->salt));
	if (!all32(u + SECTOR, 0x5a5a5a5a, SECTOR))
		return fail(c, "written past the 512-byte buffer");
	return true;
}

/* The destination is the indirect table that describes the request. */
static bool hc_data_into_indirect(struct vdev *d, const char *c)
{
	struct vdesc *t = (struct vdesc *)scratch;
	const char *why = dev_init(d);
	uint32_t id, len;

	if (why)
		return fail(c, "init: %s", why);
	if (!(d->features & BIT(F_INDIRECT)))
		return fail(c, "INDIRECT_DESC not negotiated");
	d->r->hdr[0] = (struct blk_hdr){T_IN, 0, 27};
	d->r->status[0] = CANARY;
	t[0] = (struct vdesc){gpa(&d->r->hdr[0]), 16, D_NEXT, 1};
	t[1] = (struct vdesc){gpa(t), SECTOR, D_WRITE | D_NEXT, 2};
	t[2] = (struct vdesc){gpa(&d->r->status[0]), 1, D_WRITE, 0};
	d->qdesc[0] = (struct vdesc){gpa(t), 3 * 16, D_INDIRECT, 0};
	avail_add(d, 0);
	kick(d);
	if (!used_wait(d, &id, &len))
		return fail(c, "no completion");
	irq_after(d);
	if (id != 0 || len != SECTOR + 1 || d->r->status[0] != ST_OK)
		return fail(c, "used id %u len %u status %u", id, len, d->r->status[0]);
	return pat_check(c, d, t, 27, 1, d->salt);
}

/* ---- requests ---- */

/*
 * GET_ID (§5.2.6: 20 bytes, NUL-padded) into buffers shorter and longer than 20 bytes, split
 * over descriptors, or sharing its descriptor with the status byte: the device writes
 * min(buffer, 20) bytes of the ID and nothing more, used len = that + 1.
 */
static bool hc_get_id_short(struct vdev *d, const char *c)
{
	static const struct {
		uint8_t nseg, len[3];
		bool shared; /* status byte at the end of the last data descriptor */
	} cases[] = {
		{0, {0}, false},       {1, {1}, false},	 {1, {8}, false},
		{1, {19}, false},      {1, {20}, false}, {1, {64}, false},
		{3, {5, 5, 3}, false}, {1, {9}, true},	 {2, {4, 17}, true},
	};
	uint8_t want[ID_BYTES] = {0};
	uint32_t slen;
	const char *serial = dparam_str("t.serial", 0, &slen);
	const char *why = dev_init(d);
	uint8_t *buf = d->r->data;

	if (why)
		return fail(c, "init: %s", why);
	if (!serial || slen > ID_BYTES)
		return fail(c, "no usable t.serial0");
	memcpy(want, serial, slen);
	for (uint32_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seg s[5];
		uint32_t n = 0, total = 0, ulen, idn, stat_at;

		fill32(buf, 0xeeeeeeee, 128);
		d->r->hdr[0] = (struct blk_hdr){T_GET_ID, 0, 0};
		d->r->status[0] = CANARY;
		s[n++] = (struct seg){gpa(&d->r->hdr[0]), 16, 0};
		for (uint32_t k = 0; k < cases[i].nseg; k++) {
			s[n++] = (struct seg){gpa(buf + total), cases[i].len[k], D_WRITE};
			total += cases[i].len[k];
		}
		if (!cases[i].shared)
			s[n++] = (struct seg){gpa(&d->r->status[0]), 1, D_WRITE};
		if (!chain_run(d, c, s, n, &ulen))
			return false;
		/* The data is the writable bytes less the last one (the status). */
		idn = cases[i].shared ? total - 1 : total;
		idn = idn < ID_BYTES ? idn : ID_BYTES;
		stat_at = cases[i].shared ? total - 1 : 0;
		if ((cases[i].shared ? buf[stat_at] : d->r->status[0]) != ST_OK || ulen != idn + 1)
			return fail(c,
				    "buffer %u bytes in %u pieces%s: status %u used len %u, "
				    "expected 0 and %u",
				    total, cases[i].nseg, cases[i].shared ? " (status inside)" : "",
				    cases[i].shared ? buf[stat_at] : d->r->status[0], ulen,
				    idn + 1);
		if (memcmp(buf, want, idn))
			return fail(c, "buffer %u bytes: ID bytes wrong", total);
		for (uint32_t b = idn + (cases[i].shared ? 1 : 0); b < 128; b++)
			if (buf[b] != 0xee)
				return fail(c, "buffer %u bytes: byte %u written (%x)", total, b,
					    buf[b]);
	}
	return true;
}

/*
 * DISCARD and WRITE_ZEROES with more segments than max_discard_seg / max_write_zeroes_seg (1)
 * (§5.2.6.2: the device MUST set IOERR... for a request it cannot honour), many valid-looking
 * ones, and payloads that are not whole segments: IOERR with the status written (used len 1),
 * and nothing discarded or zeroed (the runner checks the whole image afterwards).
 */
static bool hc_discard_many_segs(struct vdev *d, const char *c)
{
	static const struct {
		uint32_t type, bytes, pieces;
	} cases[] = {
		{T_DISCARD, 2 * 16, 1},	     {T_DISCARD, 17 * 16, 1},
		{T_DISCARD, 300 * 16, 3},    {T_DISCARD, 4096 * 16, 1},
		{T_WRITE_ZEROES, 2 * 16, 1}, {T_WRITE_ZEROES, 4096 * 16, 2},
		{T_DISCARD, 24, 1},	     {T_DISCARD, 0, 0},
		{T_WRITE_ZEROES, 8, 1},
	};
	volatile uint32_t *seg = (volatile uint32_t *)scratch;
	const char *why = dev_init(d);

	if (why)
		return fail(c, "init: %s", why);
	if (!(d->features & BIT(FB_DISCARD)) || !(d->features & BIT(FB_WRITE_ZEROES)))
		return fail(c, "DISCARD and WRITE_ZEROES must be offered (a writable disk)");
	if (cfg32(d, C_MAX_DISC + 4) != 1)
		uart_printf("MICRO INFO %s: max_discard_seg %u\n", c, cfg32(d, C_MAX_DISC + 4));
	/* 4096 valid-looking segments: sectors 300..307, one each, flags 0. */
	for (uint32_t i = 0; i < 4096; i++) {
		seg[4 * i] = 300 + (i & 7);
		seg[4 * i + 1] = 0;
		seg[4 * i + 2] = 1;
		seg[4 * i + 3] = 0;
	}
	for (uint32_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct seg s[5];
		uint32_t n = 0, ulen, at = 0;

		d->r->hdr[0] = (struct blk_hdr){cases[i].type, 0, 0};
		d->r->status[0] = CANARY;
		s[n++] = (struct seg){gpa(&d->r->hdr[0]), 16, 0};
		for (uint32_t k = 0; k < cases[i].pieces; k++) {
			uint32_t piece = k + 1 == cases[i].pieces
						 ? cases[i].bytes - at
						 : (cases[i].bytes / cases[i].pieces) & ~15u;

			s[n++] = (struct seg){gpa(scratch + at), piece, 0};
			at += piece;
		}
		s[n++] = (struct seg){gpa(&d->r->status[0]), 1, D_WRITE};
		if (!chain_run(d, c, s, n, &ulen))
			return false;
		if (d->r->status[0] != ST_IOERR || ulen != 1)
			return fail(c,
				    "type %u with %u payload bytes in %u pieces: status %u used "
				    "len %u, expected IOERR and 1",
				    cases[i].type, cases[i].bytes, cases[i].pieces, d->r->status[0],
				    ulen);
	}
	for (uint64_t s = 300; s < 308; s += 4)
		if (!blk_read(c, d, s, 4, 1, false, false) ||
		    !pat_check(c, d, d->r->data, s, 4, d->salt))
			return fail(c, "sectors %u.. changed by a refused request", (uint32_t)s);
	return true;
}

/* ---- races with a second vCPU ---- */

/*
 * Kick storms: the AP writes QueueNotify as fast as it can (ioeventfd for the real queues,
 * a userspace exit for a queue that does not exist), alternating, while the BSP runs
 * requests; then with both queues (one per vCPU) ready the BSP only publishes requests and
 * the AP's kicks must get them served. Every request completes exactly once with its data.
 */
static bool hc_kick_storm(struct vdev *d, const char *c)
{
	const uint32_t kicks = 3000;
	struct vdev d1;
	const char *why;
	uint32_t total = 0;

	if (!need_ap(c))
		return false;
	why = dev_init(d);
	if (why)
		return fail(c, "init: %s", why);
	micro_ap_post(0, MICRO_AP_ALT, d->base + VM_QUEUE_NOTIFY, 0, 0, 7, kicks, 0);
	if (!batch_read(d, c, 60, false))
		return false;
	total += BATCH;
	for (uint32_t k = 0; k < 12; k++, total++)
		if (!read_ok(d, c, 100 + 7 * k))
			return false;
	if (!micro_ap_wait(0, WAIT_TSC) || micro_ap_iters(0) != kicks)
		return fail(c, "the AP did %u of %u kick pairs", micro_ap_iters(0), kicks);
	if (used_idx(d) != total || (rd(d, VM_STATUS) & S_NEEDS_RESET))
		return fail(c, "used idx %u after %u requests, status %x", used_idx(d), total,
			    rd(d, VM_STATUS));
	/* Both queues: the BSP never kicks. */
	if (mmio_read16(d->base + VM_CONFIG + C_NUM_QUEUE) < 2)
		return fail(c, "num_queues %u: run with --cpus 2",
			    mmio_read16(d->base + VM_CONFIG + C_NUM_QUEUE));
	d1 = *d;
	d1.qidx = 1;
	d1.r = &rings[MAX_DEVS - 1];
	ring_place(&d1, NULL, NULL, NULL);
	why = dev_init_features(d, blk_wanted() | BIT(FB_MQ));
	if (why)
		return fail(c, "init: %s", why);
	d1.features = d->features;
	d1.event_idx = d->event_idx;
	if ((why = queue_setup(d)) || (why = queue_setup(&d1)))
		return fail(c, "two queues: %s", why);
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	micro_ap_post(0, MICRO_AP_ALT, d->base + VM_QUEUE_NOTIFY, 0, 1, 0, 8 * kicks, 0);
	for (uint32_t k = 0; k < 4; k++) {
		if (!batch_read(d, c, 200 + 16 * k, false) ||
		    !batch_read(&d1, c, 300 + 16 * k, false))
			return false;
	}
	micro_ap_stop(0);
	if (!micro_ap_wait(0, WAIT_TSC))
		return fail(c, "the AP did not stop");
	if (used_idx(d) != 4 * BATCH || used_idx(&d1) != 4 * BATCH)
		return fail(c, "used idx %u and %u, expected %u each", used_idx(d), used_idx(&d1),
			    4 * BATCH);
	return true;
}

/*
 * Interrupt storm nobody acknowledges: the device's GSI goes to this CPU's local APIC (IF=0,
 * never an EOI), the driver never writes InterruptACK, and the AP reads InterruptStatus in a
 * loop meanwhile. 64 requests in batches all complete; InterruptStatus then still says USED
 * and the vector is pending; one ACK clears it and the next completion raises it again.
 */
static bool hc_irq_storm_no_ack(struct vdev *d, const char *c)
{
	const char *why;
	uint32_t vec = next_vector++, self, st;

	if (!need_ap(c))
		return false;
	why = dev_init(d);
	if (why)
		return fail(c, "init: %s", why);
	mmio_write32(0xfee00000 + 0xf0, mmio_read32(0xfee00000 + 0xf0) | 0x1ff);
	self = mmio_read32(0xfee00000 + 0x20) >> 24;
	ioapic_write(0x10 + 2 * d->gsi + 1, self << 24);
	ioapic_write(0x10 + 2 * d->gsi, vec);
	micro_ap_post(0, MICRO_AP_READ, d->base + VM_INT_STATUS, 0, 0, 0, 0xffffffff, 0);
	for (uint32_t k = 0; k < 16; k++) {
		struct req q[BATCH];

		for (uint32_t i = 0; i < BATCH; i++) {
			q[i] = mkreq(T_IN, 400 + 4 * k + i, d->r->data + i * SECTOR, SECTOR, true,
				     1, false, false);
			avail_add(d, req_post(d, &q[i], i, (uint16_t)(i * 4)));
		}
		kick(d);
		for (uint32_t i = 0; i < BATCH; i++) {
			uint32_t id, len;

			if (!used_wait(d, &id, &len))
				return fail(c, "batch %u: %u of %u completed", k, i, BATCH);
			if (len != SECTOR + 1)
				return fail(c, "batch %u: used len %u", k, len);
		}
		for (uint32_t i = 0; i < BATCH; i++)
			if (d->r->status[i] != ST_OK ||
			    !pat_check(c, d, q[i].buf, q[i].sector, 1, d->salt))
				return fail(c, "batch %u request %u: status %u", k, i,
					    d->r->status[i]);
	}
	micro_ap_stop(0);
	if (!micro_ap_wait(0, WAIT_TSC))
		return fail(c, "the AP did not stop");
	st = rd(d, VM_INT_STATUS);
	if (!(st & INT_USED))
		return fail(c, "InterruptStatus %x after 64 unacknowledged completions", st);
	/* KVM injects an irqfd routed to an IOAPIC pin from a kernel worker: allow it time. */
	for (uint64_t t0 = rdtsc(); !lapic_irr(vec) && rdtsc() - t0 < WAIT_TSC;)
		cpu_pause();
	if (!lapic_irr(vec))
		return fail(c, "vector %x not pending in the local APIC", vec);
	wr(d, VM_INT_ACK, INT_USED);
	if ((st = rd(d, VM_INT_STATUS)) != 0)
		return fail(c, "InterruptStatus %x after the ACK", st);
	if (!read_ok(d, c, 33))
		return false;
	ioapic_write(0x10 + 2 * d->gsi, 0x10000 | vec);
	if (d->irq_missing || d->irq_stale)
		return fail(c, "%u completions without USED, %u not cleared by ACK", d->irq_missing,
			    d->irq_stale);
	return true;
}

/*
 * A descriptor rewritten by the AP while the device processes the chain (the AP toggles one
 * field between two values as fast as it can). The device copies each descriptor once, so a
 * request sees one value or the other, never a mix: the header's sector (the data is wholly
 * one sector's or the other's), the data length (512 or 0: served, or a malformed chain), the
 * buffer's high address (in RAM or 64 GiB away), the data descriptor's next (2 or out of
 * range).
 */
static bool hc_desc_rewrite_race(struct vdev *d, const char *c)
{
	struct ring *r = d->r;
	const uint32_t rounds = 16;
	uint32_t ok[4] = {0}, bad[4] = {0}, other[4] = {0};
	const char *why;

	if (!need_ap(c))
		return false;
	why = dev_init(d);
	if (why)
		return fail(c, "init: %s", why);
	for (uint32_t v = 0; v < 4; v++) {
		for (uint32_t n = 0; n < rounds; n++) {
			uintptr_t at;
			uint32_t a, b, id, len;
			uint16_t head;

			fill32(r->data, 0xeeeeeeee, SECTOR);
			head = put_read(d, wdesc(gpa(r->data), SECTOR));
			r->hdr[0].sector = 40;
			if (v == 0) {
				at = (uintptr_t)&r->hdr[0].sector;
				a = 40, b = 50;
			} else if (v == 1) {
				at = (uintptr_t)&d->qdesc[1].len;
				a = SECTOR, b = 0;
			} else if (v == 2) {
				at = (uintptr_t)&d->qdesc[1].addr + 4;
				a = 0, b = (uint32_t)(FAR_AWAY >> 32);
			} else {
				at = (uintptr_t)&d->qdesc[1].flags;
				a = (D_WRITE | D_NEXT) | (2u << 16);
				b = (D_WRITE | D_NEXT) | ((uint32_t)d->qsize << 16);
			}
			micro_ap_post(0, MICRO_AP_ALT, at, 0, a, b, 0xffffffff, 0);
			delay(n * 5);
			avail_add(d, head);
			kick(d);
			if (!used_wait(d, &id, &len))
				return fail(c, "variant %u round %u: no completion", v, n);
			micro_ap_stop(0);
			if (!micro_ap_wait(0, WAIT_TSC))
				return fail(c, "the AP did not stop");
			int_ack_all(d);
			if (id != head)
				return fail(c, "variant %u: used id %u", v, id);
			if (len == SECTOR + 1 && r->status[0] == ST_OK &&
			    (pat_is(d, r->data, 40, 1) || (v == 0 && pat_is(d, r->data, 50, 1)))) {
				ok[v]++;
			} else if (len == 0 && r->status[0] == CANARY && v != 0) {
				bad[v]++;
			} else {
				other[v]++;
				fail(c, "variant %u round %u: used len %u status %x data %llx", v,
				     n, len, r->status[0], *(unsigned long long *)r->data);
			}
		}
	}
	uart_printf("MICRO INFO %s: served/malformed per variant %u/%u %u/%u %u/%u %u/%u\n", c,
		    ok[0], bad[0], ok[1], bad[1], ok[2], bad[2], ok[3], bad[3]);
	if (other[0] + other[1] + other[2] + other[3])
		return false;
	if (rd(d, VM_STATUS) & S_NEEDS_RESET)
		return fail(c, "NEEDS_RESET: a descriptor race is a malformed chain, not a ring");
	return true;
}

/*
 * A reset (Status 0) written by the AP while the BSP's requests (1 MiB reads) are in flight,
 * after delays from none to milliseconds. Once Status reads 0 the device has let go (§2.4):
 * nothing more changes in the old rings, status bytes or buffers, and no interrupt comes.
 */
static bool hc_reset_race(struct vdev *d, const char *c)
{
	static const uint32_t delays[] = {0, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000};
	uint32_t before[40], done_before = 0;

	if (!need_ap(c))
		return false;
	if (d->sectors < BIG_SECT)
		return fail(c, "disk smaller than %u sectors", BIG_SECT);
	for (uint32_t r = 0; r < sizeof(delays) / sizeof(delays[0]); r++) {
		const char *why = dev_init(d);
		uint32_t st, n = 0;

		if (why)
			return fail(c, "round %u: init: %s", r, why);
		for (uint32_t k = 0; k < BATCH; k++)
			big_post(d, k);
		micro_ap_post(0, MICRO_AP_WRITE, d->base + VM_STATUS, 0, 0, 0, 1, delays[r]);
		kick(d);
		if (!micro_ap_wait(0, WAIT_TSC))
			return fail(c, "round %u: the AP's reset did not return", r);
		if ((st = rd(d, VM_STATUS)) != 0)
			return fail(c, "round %u: status %x after the AP's reset", r, st);
		done_before += used_idx(d);
		before[n++] = used_idx(d);
		for (uint32_t k = 0; k < BATCH; k++)
			before[n++] = d->r->status[k];
		for (uint32_t k = 0; k < 32; k++)
			before[n++] = *(volatile uint32_t *)(big + k * (sizeof(big) / 32));
		spin_tsc(QUIET_LONG);
		n = 0;
		if (before[n++] != used_idx(d))
			return fail(c, "round %u: used idx %u -> %u after the reset", r, before[0],
				    used_idx(d));
		for (uint32_t k = 0; k < BATCH; k++)
			if (before[n++] != d->r->status[k])
				return fail(c, "round %u: status byte %u written after the reset",
					    r, k);
		for (uint32_t k = 0; k < 32; k++)
			if (before[n++] != *(volatile uint32_t *)(big + k * (sizeof(big) / 32)))
				return fail(c, "round %u: data written after the reset", r);
		if ((st = rd(d, VM_INT_STATUS)) != 0 || rd(d, VM_QUEUE_READY) != 0)
			return fail(c, "round %u: InterruptStatus %x QueueReady %u after reset", r,
				    st, rd(d, VM_QUEUE_READY));
	}
	uart_printf("MICRO INFO %s: %u of %u requests completed before their reset\n", c,
		    done_before, BATCH * (uint32_t)(sizeof(delays) / sizeof(delays[0])));
	return true;
}

/*
 * EVENT_IDX with the AP flipping used_event between far-apart values while requests
 * complete: whatever it says, every request is served (the device never waits for the
 * driver's permission to complete).
 */
static bool hc_used_event_race(struct vdev *d, const char *c)
{
	const char *why;

	if (!need_ap(c))
		return false;
	why = dev_init_features(d, blk_wanted() | BIT(F_EVENT_IDX));
	if (why || !d->event_idx)
		return fail(c, "init: %s", why ? why : "EVENT_IDX not negotiated");
	why = dev_init_queue(d);
	if (why)
		return fail(c, "queue: %s", why);
	/* used_event is the last 16 bits of the avail ring; the 32-bit store also covers two
	 * bytes of padding after it (struct ring). */
	micro_ap_post(0, MICRO_AP_ALT, (uintptr_t)AVAIL_USED_EVENT(d), 0, 0, 0x8000, 0xffffffff, 0);
	for (uint32_t k = 0; k < 24; k++) {
		struct req q = mkreq(T_IN, 500 + k, d->r->data, SECTOR, true, 1, false, false);
		uint16_t head = req_post(d, &q, 0, 0);
		uint32_t id, len;

		avail_add(d, head);
		barrier();
		*AVAIL_IDX(d) = d->avail_idx;
		mfence();
		wr(d, VM_QUEUE_NOTIFY, 0);
		if (!used_wait(d, &id, &len))
			return fail(c, "request %u never completed", k);
		if (id != head || len != SECTOR + 1 || d->r->status[0] != ST_OK ||
		    !pat_check(c, d, d->r->data, 500 + k, 1, d->salt))
			return fail(c, "request %u: id %u len %u status %u", k, id, len,
				    d->r->status[0]);
	}
	micro_ap_stop(0);
	if (!micro_ap_wait(0, WAIT_TSC))
		return fail(c, "the AP did not stop");
	int_ack_all(d);
	if (rd(d, VM_STATUS) & S_NEEDS_RESET)
		return fail(c, "NEEDS_RESET");
	return true;
}

/* ---- the table (run-micro.py keeps the same order after vblk.c's 23) ---- */

static bool (*const hcases[])(struct vdev *d, const char *c) = {
	hc_queue_ready_inflight,
	hc_queue_regs_while_ready,
	hc_queue_after_driver_ok,
	hc_features_after_ok,
	hc_status_driver_ok_early,
	hc_status_skipped_steps,
	hc_status_clear_bits,
	hc_config_widths,
	hc_reg_widths,
	hc_event_idx_used_event,
	hc_get_id_short,
	hc_discard_many_segs,
	hc_ring_overlap_avail_used,
	hc_ring_overlap_desc_avail,
	hc_ring_overlap_desc_used,
	hc_ring_in_acpi_area,
	hc_ring_in_boot_area,
	hc_data_into_desc,
	hc_data_into_used,
	hc_data_into_indirect,
	hc_ring_at_ram_end,
	hc_ring_straddles_ram_end,
	hc_data_at_ram_end,
	hc_kick_storm,
	hc_irq_storm_no_ack,
	hc_desc_rewrite_race,
	hc_reset_race,
	hc_used_event_race,
};

const char *const hostile2_names[] = {
	"queue-ready-inflight",
	"queue-regs-while-ready",
	"queue-after-driver-ok",
	"features-after-ok",
	"status-driver-ok-early",
	"status-skipped-steps",
	"status-clear-bits",
	"config-widths",
	"reg-widths",
	"event-idx-used-event",
	"get-id-short",
	"discard-many-segs",
	"ring-overlap-avail-used",
	"ring-overlap-desc-avail",
	"ring-overlap-desc-used",
	"ring-in-acpi-area",
	"ring-in-boot-area",
	"data-into-desc",
	"data-into-used",
	"data-into-indirect",
	"ring-at-ram-end",
	"ring-straddles-ram-end",
	"data-at-ram-end",
	"kick-storm",
	"irq-storm-no-ack",
	"desc-rewrite-race",
	"reset-race",
	"used-event-race",
};
_Static_assert(sizeof(hostile2_names) / sizeof(hostile2_names[0]) ==
		       sizeof(hcases) / sizeof(hcases[0]),
	       "one name per case");
const uint32_t hostile2_count = sizeof(hcases) / sizeof(hcases[0]);

void hostile2_case(struct vdev *d, uint32_t n, const char *c)
{
	bool ok;

	d->want_irq = true;
	ok = hcases[n](d, c);
	if (ap_used && micro_ap_workers() && !micro_ap_wait(0, 0)) {
		micro_ap_stop(0);
		micro_ap_wait(0, WAIT_TSC);
	}
	ioapic_write(0x10 + 2 * d->gsi, 0x10000); /* masked, as vblk.c leaves it */
	/* Whatever happened: the device must come back after a reset (vblk.c). */
	if (hostile_recover(d, c) && ok)
		pass(c);
}
