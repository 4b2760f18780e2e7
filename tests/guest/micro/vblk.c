// SPDX-License-Identifier: Apache-2.0
/*
 * Micro-guest virtio-blk scenarios: a minimal virtio-mmio (virtio 1.2 §4.2, version 2 only)
 * driver for virtio-blk (§5.2) that polls the used ring instead of taking interrupts.
 *
 * The register offsets, feature bits and layouts below are written from the specification, not
 * taken from the VMM's headers: the guest checks the VMM against the spec, so a shared mistake
 * must not cancel out. Expected values (disk sizes, data patterns, serials, the device layout)
 * come from the kernel command line, set by tests/guest/run-micro.py.
 *
 * Costs: CPL0 code is emulated at about 1 us per instruction on our test machines and every
 * register access is an MMIO exit (~9 us), so requests are small (at most BUF_SECTORS sectors)
 * and data is checked one 8-byte word at a time.
 *
 * Scenarios:
 *   blk          every device: probe, features, config, queue, reads (one, multi-segment,
 *                indirect, batched), writes, FLUSH, GET_ID, WRITE_ZEROES, DISCARD, interrupt
 *                status and delivery (IOAPIC -> LAPIC IRR), suppression; with two or more
 *                devices, requests in flight on all of them at once.
 *   blk-errors   out of range, unknown type, partial sectors, bad discard/write-zeroes.
 *   blk-hostile  malformed chains (completed with used len 0, status untouched) and rings
 *                (DEVICE_NEEDS_RESET); after each, reset, re-initialise, and read. Cases 0-22
 *                are here, the later ones (registers, widths, ring placement, races with a
 *                second vCPU) in hostile.c; t.mask or t.case picks them.
 *
 * The driver's helpers are shared through vblk.h with hostile.c and vcon.c (virtio-console).
 *
 * Data pattern: word w (0..63) of sector s is (s * 0x100000001) ^ salt ^ (w << 56).
 */
#include "vblk.h"

/* Not zeroed at entry (rep stosb over it would cost milliseconds): each user clears its part. */
struct ring rings[MAX_DEVS] __attribute__((section(".bss.micro_noinit")));
struct vdesc ind_huge[IND_HUGE] __attribute__((section(".bss.micro_noinit"), aligned(16)));
struct vdev devs[MAX_DEVS];
uint32_t ndevs;
uint32_t next_vector = 0x40;

/* ---- small helpers ---- */

uint64_t pat_word(uint64_t sector, uint32_t w, uint64_t salt)
{
	return ((sector << 32) | (sector & 0xffffffffULL)) ^ salt ^ ((uint64_t)w << 56);
}

void pat_fill(void *buf, uint64_t sector, uint32_t nsect, uint64_t salt)
{
	uint64_t *p = buf;

	for (uint32_t s = 0; s < nsect; s++)
		for (uint32_t w = 0; w < SECTOR / 8; w++)
			*p++ = pat_word(sector + s, w, salt);
}

/* True if buf holds the pattern; otherwise a FAIL line names the first wrong word. */
bool pat_check(const char *check, const struct vdev *d, const void *buf, uint64_t sector,
	       uint32_t nsect, uint64_t salt)
{
	const uint64_t *p = buf;

	for (uint32_t s = 0; s < nsect; s++)
		for (uint32_t w = 0; w < SECTOR / 8; w++, p++)
			if (*p != pat_word(sector + s, w, salt))
				return fail(check, "%s sector %llx word %u: %llx, expected %llx",
					    d->name, (unsigned long long)(sector + s), w,
					    (unsigned long long)*p,
					    (unsigned long long)pat_word(sector + s, w, salt));
	return true;
}

bool zero_check(const char *check, const struct vdev *d, const void *buf, uint64_t sector,
		uint32_t nsect)
{
	const uint64_t *p = buf;

	for (uint32_t i = 0; i < nsect * (SECTOR / 8); i++)
		if (p[i])
			return fail(check, "%s sector %llx word %u: %llx, expected 0", d->name,
				    (unsigned long long)(sector + i / (SECTOR / 8)),
				    i % (SECTOR / 8), (unsigned long long)p[i]);
	return true;
}

/* Check names carry the device: "blk-read d0". */
static const char *cname(const char *check, const struct vdev *d)
{
	static char buf[8][48];
	static uint32_t slot;
	char *s = buf[slot++ & 7];
	uint32_t n = 0;

	while (*check && n < 40)
		s[n++] = *check++;
	s[n++] = ' ';
	s[n++] = d->name[0];
	s[n++] = d->name[1];
	s[n] = '\0';
	return s;
}

/* "t.<key><i>" from the command line. */
bool dparam(const char *key, uint32_t i, uint64_t *v)
{
	char k[40];
	uint32_t n = 0;

	while (*key && n < 36)
		k[n++] = *key++;
	k[n++] = (char)('0' + i);
	k[n] = '\0';
	return param_u64(micro_cmdline(), k, v);
}

const char *dparam_str(const char *key, uint32_t i, uint32_t *len)
{
	char k[40];
	uint32_t n = 0;
	const char *p;

	while (*key && n < 36)
		k[n++] = *key++;
	k[n++] = (char)('0' + i);
	k[n] = '\0';
	p = param_find(micro_cmdline(), k);
	*len = 0;
	while (p && p[*len] && !is_space(p[*len]))
		(*len)++;
	return p;
}

uint64_t param_or(const char *key, uint64_t dflt)
{
	uint64_t v;

	return param_u64(micro_cmdline(), key, &v) ? v : dflt;
}

/* ---- discovery: the ACPI DSDT (LNRO0005) and virtio_mmio.device= on the command line ---- */

struct found {
	uint32_t base, len, gsi;
};

/*
 * Each LNRO0005 device of the DSDT (a _HID string, AML StringPrefix 0x0d) is followed by its
 * _CRS with a Memory32Fixed (ACPI 6.5 §6.4.3.4: 0x86, length 9) and an Extended Interrupt
 * descriptor (§6.4.3.6: 0x89, length 6 for one interrupt). A scan, not an AML interpreter: it
 * relies on the resource template following the _HID within a few dozen bytes.
 */
static uint32_t acpi_find(struct found *out, uint32_t max)
{
	static const char hid[] = "\x0dLNRO0005";
	uint32_t len = 0, n = 0;
	const uint8_t *d = micro_dsdt(&len);

	if (!d)
		return 0;
	for (uint32_t i = 36; i + sizeof(hid) <= len && n < max; i++) {
		bool mem = false, irq = false;

		if (d[i] != 0x0d || memcmp(d + i, hid, sizeof(hid)))
			continue; /* sizeof includes the string's NUL: exactly "LNRO0005" */
		/* 9 bytes: the Extended Interrupt descriptor, the shorter of the two */
		for (uint32_t j = i + sizeof(hid); j + 9 <= len && j < i + 96; j++) {
			if (j + sizeof(hid) <= len && d[j] == 0x0d &&
			    !memcmp(d + j, hid, sizeof(hid)))
				break;
			if (!mem && j + 12 <= len && d[j] == 0x86 && d[j + 1] == 9 &&
			    d[j + 2] == 0) {
				memcpy(&out[n].base, d + j + 4, 4);
				memcpy(&out[n].len, d + j + 8, 4);
				mem = true;
			} else if (!irq && d[j] == 0x89 && d[j + 1] == 6 && d[j + 2] == 0 &&
				   d[j + 4] == 1) {
				memcpy(&out[n].gsi, d + j + 5, 4);
				irq = true;
			}
		}
		if (mem && irq)
			n++;
	}
	return n;
}

static bool parse_num(const char **pp, uint64_t *v)
{
	const char *p = *pp;
	uint64_t x = 0;
	uint32_t base = 10, digits = 0;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	for (;; p++, digits++) {
		uint32_t c = (uint32_t)*p, dv;

		if (c >= '0' && c <= '9')
			dv = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			dv = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			dv = c - 'A' + 10;
		else
			break;
		x = x * base + dv;
	}
	*pp = p;
	*v = x;
	return digits > 0;
}

/* Linux Documentation/admin-guide/kernel-parameters.txt: virtio_mmio.device=<size>@<base>:<irq> */
static uint32_t cmdline_find(struct found *out, uint32_t max, bool *bad)
{
	static const char key[] = "virtio_mmio.device=";
	const char *p = micro_cmdline();
	uint32_t n = 0;

	*bad = false;
	while (p && *p) {
		uint64_t size, base, irq;

		while (is_space(*p))
			p++;
		if (!memcmp(p, key, sizeof(key) - 1)) {
			p += sizeof(key) - 1;
			if (!parse_num(&p, &size)) {
				*bad = true;
			} else {
				if (*p == 'K' || *p == 'k') {
					size <<= 10;
					p++;
				} else if (*p == 'M' || *p == 'm') {
					size <<= 20;
					p++;
				}
				if (*p++ != '@' || !parse_num(&p, &base) || *p++ != ':' ||
				    !parse_num(&p, &irq))
					*bad = true;
				else if (n < max)
					out[n++] = (struct found){(uint32_t)base, (uint32_t)size,
								  (uint32_t)irq};
			}
		}
		while (*p && !is_space(*p))
			p++;
	}
	return n;
}

bool check_discover(void)
{
	struct found a[MAX_DEVS], c[MAX_DEVS];
	uint64_t want = param_or("t.ndev", 0), base0 = param_or("t.mmio_base", 0xd0000000);
	uint64_t gsi0 = param_or("t.gsi_base", 16);
	bool bad, want_cmdline = param_or("t.cmdline_devs", 0) != 0;
	uint32_t na = acpi_find(a, MAX_DEVS), nc = cmdline_find(c, MAX_DEVS, &bad);

	if (na != want)
		return fail("blk-discover", "DSDT describes %u LNRO0005 devices, expected %u", na,
			    (uint32_t)want);
	for (uint32_t i = 0; i < na; i++) {
		if (a[i].base != base0 + i * VM_WINDOW || a[i].len != VM_WINDOW ||
		    a[i].gsi != gsi0 + i)
			return fail("blk-discover",
				    "device %u: %x+%x GSI %u, expected %x+%x GSI %u", i, a[i].base,
				    a[i].len, a[i].gsi, (uint32_t)(base0 + i * VM_WINDOW),
				    VM_WINDOW, (uint32_t)(gsi0 + i));
		devs[i].base = a[i].base;
		devs[i].gsi = a[i].gsi;
	}
	ndevs = na;
	if (bad)
		return fail("blk-discover", "unparsable virtio_mmio.device= in \"%s\"",
			    micro_cmdline());
	if (want_cmdline && nc != na)
		return fail("blk-discover", "%u virtio_mmio.device= entries, DSDT has %u", nc, na);
	if (nc && nc != na)
		return fail("blk-discover", "%u virtio_mmio.device= entries, DSDT has %u", nc, na);
	for (uint32_t i = 0; i < nc; i++)
		if (c[i].base != a[i].base || c[i].len != a[i].len || c[i].gsi != a[i].gsi)
			return fail("blk-discover",
				    "virtio_mmio.device= %u is %x+%x:%u, DSDT %x+%x:%u", i,
				    c[i].base, c[i].len, c[i].gsi, a[i].base, a[i].len, a[i].gsi);
	return pass("blk-discover");
}

/* ---- transport ---- */

uint16_t used_idx(const struct vdev *d)
{
	return *(volatile uint16_t *)(d->qused + 2);
}

/* used: flags 0, idx 2, ring[i] {id, len} at 4 + 8i (§2.7.8) */
void used_elem(const struct vdev *d, uint16_t i, uint32_t *id, uint32_t *len)
{
	const volatile uint8_t *e = d->qused + 4 + 8 * (uint32_t)(i & (d->qsize - 1));

	*id = *(const volatile uint32_t *)e;
	*len = *(const volatile uint32_t *)(e + 4);
}

bool status_reset(struct vdev *d)
{
	/* §4.2.2.1: after writing 0 the driver waits for Status to read back 0. */
	wr(d, VM_STATUS, 0);
	for (uint32_t n = 0; n < 1000; n++)
		if (rd(d, VM_STATUS) == 0)
			return true;
	return false;
}

uint64_t features_read(const struct vdev *d)
{
	uint64_t f;

	wr(d, VM_DEV_FEATURES_SEL, 1);
	f = (uint64_t)rd(d, VM_DEV_FEATURES) << 32;
	wr(d, VM_DEV_FEATURES_SEL, 0);
	return f | rd(d, VM_DEV_FEATURES);
}

uint32_t cfg32(const struct vdev *d, uint32_t off)
{
	return rd(d, VM_CONFIG + off);
}

/* §4.2.2.2: a 64-bit field is read as two halves, consistent when ConfigGeneration is. */
uint64_t cfg64(const struct vdev *d, uint32_t off, bool *stable)
{
	for (uint32_t tries = 0; tries < 4; tries++) {
		uint32_t g = rd(d, VM_CONFIG_GEN), lo = cfg32(d, off), hi = cfg32(d, off + 4);

		if (rd(d, VM_CONFIG_GEN) == g) {
			*stable = true;
			return ((uint64_t)hi << 32) | lo;
		}
	}
	*stable = false;
	return 0;
}

void ring_place(struct vdev *d, struct vdesc *desc, uint8_t *avail, uint8_t *used)
{
	d->qdesc = desc ? desc : d->r->desc;
	d->qavail = avail ? avail : d->r->avail;
	d->qused = used ? used : d->r->used;
}

void ring_clear(struct vdev *d)
{
	memset(d->qdesc, 0, sizeof(d->r->desc));
	memset(d->qavail, 0, sizeof(d->r->avail));
	memset(d->qused, 0, sizeof(d->r->used));
	d->avail_idx = 0;
	d->used_seen = 0;
}

/* The queue registers for queue 0 with the given size and ring addresses. */
void queue_program(struct vdev *d, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	wr(d, VM_QUEUE_SEL, d->qidx);
	wr(d, VM_QUEUE_NUM, size);
	wr(d, VM_QUEUE_DESC_LO, (uint32_t)desc);
	wr(d, VM_QUEUE_DESC_HI, (uint32_t)(desc >> 32));
	wr(d, VM_QUEUE_DRIVER_LO, (uint32_t)avail);
	wr(d, VM_QUEUE_DRIVER_HI, (uint32_t)(avail >> 32));
	wr(d, VM_QUEUE_DEVICE_LO, (uint32_t)used);
	wr(d, VM_QUEUE_DEVICE_HI, (uint32_t)(used >> 32));
}

/*
 * §3.1.1 driver initialisation up to (not including) DRIVER_OK for queue 0, or a reason for
 * failing. `want` are the features we would like; VERSION_1 must be offered.
 */
const char *dev_init_features(struct vdev *d, uint64_t want)
{
	if (!status_reset(d))
		return "Status does not read 0 after writing 0";
	wr(d, VM_STATUS, S_ACK);
	wr(d, VM_STATUS, S_ACK | S_DRIVER);
	d->offered = features_read(d);
	if (!(d->offered & BIT(F_VERSION_1)))
		return "VERSION_1 not offered";
	d->features = d->offered & (want | BIT(F_VERSION_1));
	wr(d, VM_DRV_FEATURES_SEL, 0);
	wr(d, VM_DRV_FEATURES, (uint32_t)d->features);
	wr(d, VM_DRV_FEATURES_SEL, 1);
	wr(d, VM_DRV_FEATURES, (uint32_t)(d->features >> 32));
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(rd(d, VM_STATUS) & S_FEATURES_OK))
		return "FEATURES_OK did not stick";
	d->event_idx = (d->features & BIT(F_EVENT_IDX)) != 0;
	return NULL;
}

/* Queue d->qidx programmed and ready, DRIVER_OK not yet written. */
const char *queue_setup(struct vdev *d)
{
	wr(d, VM_QUEUE_SEL, d->qidx);
	if (rd(d, VM_QUEUE_READY) != 0)
		return "QueueReady is not 0 before setup";
	d->qmax = (uint16_t)rd(d, VM_QUEUE_NUM_MAX);
	if (d->qmax == 0 || (d->qmax & (d->qmax - 1)))
		return "QueueNumMax is 0 or not a power of 2";
	d->qsize = d->qmax < QSZ ? d->qmax : QSZ;
	ring_clear(d);
	queue_program(d, d->qsize, gpa(d->qdesc), gpa(d->qavail), gpa(d->qused));
	wr(d, VM_QUEUE_READY, 1);
	if (rd(d, VM_QUEUE_READY) != 1)
		return "QueueReady does not read back 1";
	return NULL;
}

const char *dev_init_queue(struct vdev *d)
{
	const char *why = queue_setup(d);

	if (why)
		return why;
	wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if (rd(d, VM_STATUS) & (S_NEEDS_RESET | S_FAILED))
		return "DEVICE_NEEDS_RESET or FAILED after DRIVER_OK";
	return NULL;
}

uint64_t blk_wanted(void)
{
	uint64_t w = BIT(F_INDIRECT) | BIT(FB_FLUSH) | BIT(FB_BLK_SIZE) | BIT(FB_SEG_MAX) |
		     BIT(FB_SIZE_MAX) | BIT(FB_RO) | BIT(FB_DISCARD) | BIT(FB_WRITE_ZEROES);

	if (param_or("t.event_idx", 0))
		w |= BIT(F_EVENT_IDX);
	return w;
}

const char *dev_init(struct vdev *d)
{
	const char *why = dev_init_features(d, blk_wanted());

	return why ? why : dev_init_queue(d);
}

/* ---- requests ---- */

/* Chain segs into desc[first..] (or into `table` as an indirect table) and return its head. */
uint16_t chain_put(struct vdev *d, uint16_t first, const struct seg *s, uint32_t n,
		   struct vdesc *table)
{
	struct vdesc *t = table ? table : d->qdesc;
	uint32_t base = table ? 0 : first;

	for (uint32_t i = 0; i < n; i++) {
		t[base + i].addr = s[i].addr;
		t[base + i].len = s[i].len;
		t[base + i].flags = (uint16_t)(s[i].flags | (i + 1 < n ? D_NEXT : 0));
		t[base + i].next = (uint16_t)(i + 1 < n ? base + i + 1 : 0);
	}
	if (table) {
		d->qdesc[first] = (struct vdesc){gpa(table), n * 16, D_INDIRECT, 0};
	}
	return first;
}

void avail_add(struct vdev *d, uint16_t head)
{
	*AVAIL_RING(d, d->avail_idx & (d->qsize - 1)) = head;
	d->avail_idx++;
}

/* Publish the avail index and notify (§2.7.13: the ring entries before the index). */
void kick(struct vdev *d)
{
	if (d->event_idx)
		/* §2.7.10: interrupt us when the device passes the used index we have seen
		 * (or, with want_irq clear, one we passed long ago: no interrupt). */
		*AVAIL_USED_EVENT(d) = (uint16_t)(d->want_irq ? d->used_seen : d->used_seen - 1);
	else
		*AVAIL_FLAGS(d) = d->want_irq ? 0 : AVAIL_NO_INTERRUPT;
	barrier();
	*AVAIL_IDX(d) = d->avail_idx;
	mfence();
	wr(d, VM_QUEUE_NOTIFY, d->qidx);
}

/* Wait for the next used element; false after WAIT_TSC. */
bool used_wait(struct vdev *d, uint32_t *id, uint32_t *len)
{
	uint64_t t0 = rdtsc();

	while (used_idx(d) == d->used_seen) {
		if (rdtsc() - t0 > WAIT_TSC)
			return false;
		cpu_pause();
	}
	barrier();
	used_elem(d, d->used_seen, id, len);
	d->used_seen++;
	return true;
}

/*
 * After completions: InterruptStatus must show USED (when wanted) and ACK must clear it
 * (§4.2.2 InterruptStatus / InterruptACK). Counted, reported by check_irq().
 */
void irq_after(struct vdev *d)
{
	uint64_t t0 = rdtsc();
	uint32_t st;

	if (!d->want_irq) {
		while (rdtsc() - t0 < QUIET_TSC)
			cpu_pause();
		st = rd(d, VM_INT_STATUS);
		if (st & INT_USED)
			d->irq_unwanted++;
		if (st)
			wr(d, VM_INT_ACK, st);
		return;
	}
	while (!((st = rd(d, VM_INT_STATUS)) & INT_USED) && rdtsc() - t0 < IRQ_WAIT_TSC)
		cpu_pause();
	if (!(st & INT_USED)) {
		d->irq_missing++;
		return;
	}
	wr(d, VM_INT_ACK, st);
	if (rd(d, VM_INT_STATUS) & INT_USED)
		d->irq_stale++;
	else
		d->irq_ok++;
}

struct req mkreq(uint32_t type, uint64_t sector, uint8_t *buf, uint32_t len, bool dev_writes,
		 uint32_t nseg, bool split_hdr, bool indirect)
{
	struct req q;

	memset(&q, 0, sizeof(q));
	q.type = type;
	q.sector = sector;
	q.buf = buf;
	q.len = len;
	q.dev_writes = dev_writes;
	q.nseg = nseg;
	q.split_hdr = split_hdr;
	q.indirect = indirect;
	return q;
}

/* Lay out request q in slot k (header, status byte, descriptors k * 4...) and make it available. */
uint16_t req_post(struct vdev *d, struct req *q, uint32_t k, uint16_t first)
{
	struct seg s[12];
	uint32_t n = 0, left = q->len, nseg = q->nseg ? q->nseg : 1;
	struct blk_hdr *h = &d->r->hdr[k];
	uint64_t at = gpa(q->buf);

	h->type = q->type;
	h->reserved = 0;
	h->sector = q->sector;
	d->r->status[k] = CANARY;
	if (q->split_hdr) {
		s[n++] = (struct seg){gpa(h), 8, 0};
		s[n++] = (struct seg){gpa(h) + 8, 8, 0};
	} else {
		s[n++] = (struct seg){gpa(h), 16, 0};
	}
	/* Uneven pieces on purpose: segment boundaries need not fall on sectors. */
	for (uint32_t i = 0; q->buf && q->len && i < nseg && n < 11; i++) {
		uint32_t piece = i + 1 == nseg ? left : (i == 0 ? 100 : left / (nseg - i));

		if (piece > left)
			piece = left;
		s[n++] = (struct seg){at, piece, q->dev_writes ? D_WRITE : 0};
		at += piece;
		left -= piece;
	}
	s[n++] = (struct seg){gpa(&d->r->status[k]), 1, D_WRITE};
	q->err = NULL;
	return chain_put(d, first, s, n, q->indirect ? d->r->ind : NULL);
}

/* One request, start to finish; q->err says what went wrong at the transport level. */
bool req_run(struct vdev *d, struct req *q)
{
	uint32_t id, len;
	uint16_t head = req_post(d, q, 0, 0);

	avail_add(d, head);
	kick(d);
	if (!used_wait(d, &id, &len)) {
		q->err = "no completion within the time limit";
		return false;
	}
	irq_after(d);
	q->used_len = len;
	q->status = d->r->status[0];
	if (id != head) {
		q->err = "used id is not the head we posted";
		return false;
	}
	return true;
}

/* A read of nsect sectors into the ring's data buffer; prints FAIL on any problem. */
bool blk_read(const char *check, struct vdev *d, uint64_t sector, uint32_t nsect, uint32_t nseg,
	      bool split_hdr, bool indirect)
{
	struct req q =
		mkreq(T_IN, sector, d->r->data, nsect * SECTOR, true, nseg, split_hdr, indirect);

	memset(d->r->data, 0xee, nsect * SECTOR);
	if (!req_run(d, &q))
		return fail(check, "%s read %llx+%u: %s", d->name, (unsigned long long)sector,
			    nsect, q.err);
	if (q.status != ST_OK)
		return fail(check, "%s read %llx+%u: status %u", d->name,
			    (unsigned long long)sector, nsect, q.status);
	/* §2.7.8.2: len is the number of bytes written: the data and the status byte. */
	if (q.used_len != nsect * SECTOR + 1)
		return fail(check, "%s read %llx+%u: used len %u, expected %u", d->name,
			    (unsigned long long)sector, nsect, q.used_len, nsect * SECTOR + 1);
	return true;
}

static bool blk_write(const char *check, struct vdev *d, uint64_t sector, uint32_t nsect,
		      uint64_t salt, uint32_t nseg, bool split_hdr, bool indirect, uint8_t want)
{
	struct req q =
		mkreq(T_OUT, sector, d->r->data, nsect * SECTOR, false, nseg, split_hdr, indirect);

	pat_fill(d->r->data, sector, nsect, salt);
	if (!req_run(d, &q))
		return fail(check, "%s write %llx+%u: %s", d->name, (unsigned long long)sector,
			    nsect, q.err);
	if (q.status != want)
		return fail(check, "%s write %llx+%u: status %u, expected %u", d->name,
			    (unsigned long long)sector, nsect, q.status, want);
	if (q.used_len != 1)
		return fail(check, "%s write %llx+%u: used len %u, expected 1 (the status)",
			    d->name, (unsigned long long)sector, nsect, q.used_len);
	return true;
}

/* A request without data (FLUSH, unknown types) or with a small readable payload. */
bool blk_simple(const char *check, struct vdev *d, uint32_t type, uint64_t sector, uint8_t *buf,
		uint32_t len, uint8_t want)
{
	struct req q = mkreq(type, sector, buf, len, false, 1, false, false);

	if (!req_run(d, &q))
		return fail(check, "%s type %u: %s", d->name, type, q.err);
	if (q.status != want)
		return fail(check, "%s type %u sector %llx: status %u, expected %u", d->name, type,
			    (unsigned long long)sector, q.status, want);
	if (q.used_len < 1)
		return fail(check, "%s type %u: used len 0 with a status written", d->name, type);
	return true;
}

/* ---- scenario blk ---- */

static bool check_probe(struct vdev *d)
{
	const char *c = cname("blk-probe", d);
	uint32_t v;

	if ((v = rd(d, VM_MAGIC)) != VIRT_MAGIC)
		return fail(c, "%s magic %x", d->name, v);
	if ((v = rd(d, VM_VERSION)) != 2)
		return fail(c, "%s version %u, expected 2 (no legacy)", d->name, v);
	if ((v = rd(d, VM_DEVICE_ID)) != 2)
		return fail(c, "%s device id %u, expected 2 (block)", d->name, v);
	if (rd(d, VM_VENDOR_ID) == 0)
		return fail(c, "%s vendor id 0", d->name);
	if ((v = rd(d, VM_STATUS)) != 0)
		return fail(c, "%s status %x at first sight", d->name, v);
	return pass(c);
}

static bool check_features(struct vdev *d)
{
	const char *c = cname("blk-features", d);
	const char *why = dev_init_features(d, blk_wanted());
	uint64_t must = BIT(F_VERSION_1) | BIT(F_INDIRECT) | BIT(F_EVENT_IDX) | BIT(FB_FLUSH) |
			BIT(FB_BLK_SIZE) | BIT(FB_SEG_MAX);

	if (why)
		return fail(c, "%s %s (offered %llx)", d->name, why,
			    (unsigned long long)d->offered);
	if ((d->offered & must) != must)
		return fail(c, "%s offered %llx lacks %llx", d->name,
			    (unsigned long long)d->offered,
			    (unsigned long long)(must & ~d->offered));
	/* The device implements split rings only; these would change the protocol. */
	if (d->offered & (BIT(F_RING_PACKED) | BIT(F_NOTIF_DATA)))
		return fail(c, "%s offers RING_PACKED or NOTIFICATION_DATA (%llx)", d->name,
			    (unsigned long long)d->offered);
	if (!!(d->offered & BIT(FB_RO)) != d->ro)
		return fail(c, "%s RO %s offered, the disk is %s", d->name,
			    d->offered & BIT(FB_RO) ? "is" : "not",
			    d->ro ? "read-only" : "writable");
	return pass(c);
}

static bool check_config(struct vdev *d)
{
	const char *c = cname("blk-config", d);
	bool stable;
	uint64_t queues;

	d->capacity = cfg64(d, C_CAPACITY, &stable);
	if (!stable)
		return fail(c, "%s ConfigGeneration keeps changing", d->name);
	if (!d->have_sectors || d->capacity != d->sectors)
		return fail(c, "%s capacity %llx sectors, expected %llx", d->name,
			    (unsigned long long)d->capacity, (unsigned long long)d->sectors);
	if (cfg32(d, C_BLK_SIZE) != SECTOR)
		return fail(c, "%s blk_size %u", d->name, cfg32(d, C_BLK_SIZE));
	d->seg_max = cfg32(d, C_SEG_MAX);
	if (d->seg_max < 1)
		return fail(c, "%s seg_max 0", d->name);
	if ((d->offered & BIT(FB_SIZE_MAX)) && cfg32(d, C_SIZE_MAX) < SECTOR)
		return fail(c, "%s size_max %u", d->name, cfg32(d, C_SIZE_MAX));
	/* Byte access to the config space (§4.2.2.2 allows any width) must agree. */
	if (mmio_read8(d->base + VM_CONFIG + C_CAPACITY) != (uint8_t)d->capacity ||
	    mmio_read16(d->base + VM_CONFIG + C_BLK_SIZE) != SECTOR)
		return fail(c, "%s 1- and 2-byte config reads disagree", d->name);
	if ((d->offered & BIT(FB_MQ)) && dparam("t.queues", d->index, &queues) &&
	    mmio_read16(d->base + VM_CONFIG + C_NUM_QUEUE) != queues)
		return fail(c, "%s num_queues %u, expected %u", d->name,
			    mmio_read16(d->base + VM_CONFIG + C_NUM_QUEUE), (uint32_t)queues);
	if ((d->features & BIT(FB_DISCARD)) && cfg32(d, C_MAX_DISC) == 0)
		return fail(c, "%s DISCARD with max_discard_sectors 0", d->name);
	if ((d->features & BIT(FB_WRITE_ZEROES)) && cfg32(d, C_MAX_WZ) == 0)
		return fail(c, "%s WRITE_ZEROES with max_write_zeroes_sectors 0", d->name);
	return pass(c);
}

static bool check_queue(struct vdev *d)
{
	const char *c = cname("blk-queue", d);
	const char *why = dev_init_queue(d);

	if (why)
		return fail(c, "%s %s", d->name, why);
	if (d->qsize < BATCH)
		return fail(c, "%s QueueNumMax %u too small for these tests", d->name, d->qmax);
	return pass(c);
}

static bool check_read(struct vdev *d)
{
	const char *c = cname("blk-read", d);
	uint64_t at[3] = {0, d->capacity / 2, d->capacity - BUF_SECTORS};

	if (d->capacity < 64)
		return fail(c, "%s capacity %llx too small for the test", d->name,
			    (unsigned long long)d->capacity);
	for (uint32_t i = 0; i < 3; i++) {
		if (!blk_read(c, d, at[i], BUF_SECTORS, 1, false, false))
			return false;
		if (!pat_check(c, d, d->r->data, at[i], BUF_SECTORS, d->salt))
			return false;
	}
	return pass(c);
}

static bool check_read_multiseg(struct vdev *d)
{
	const char *c = cname("blk-read-multiseg", d);

	/* Header in two pieces, 4 sectors in 4 pieces (100, ...), then the status. */
	if (!blk_read(c, d, 5, 4, 4, true, false) || !pat_check(c, d, d->r->data, 5, 4, d->salt))
		return false;
	return pass(c);
}

static bool check_read_indirect(struct vdev *d)
{
	const char *c = cname("blk-read-indirect", d);

	if (!(d->features & BIT(F_INDIRECT)))
		return fail(c, "%s INDIRECT_DESC not negotiated", d->name);
	if (!blk_read(c, d, 11, 6, 3, true, true) || !pat_check(c, d, d->r->data, 11, 6, d->salt))
		return false;
	if (!blk_read(c, d, 40, 1, 1, false, true) || !pat_check(c, d, d->r->data, 40, 1, d->salt))
		return false;
	return pass(c);
}

/* BATCH requests in flight on one queue, one kick; completions may come in any order. */
static bool check_batch(struct vdev *d)
{
	const char *c = cname("blk-batch", d);
	struct req q[BATCH];
	uint16_t head[BATCH];
	bool seen[BATCH] = {false};
	uint32_t per = BUF_SECTORS / BATCH;

	memset(d->r->data, 0xee, sizeof(d->r->data));
	for (uint32_t k = 0; k < BATCH; k++) {
		/* Spread over the disk, each into its own part of the buffer. */
		uint64_t sector = (d->capacity / BATCH) * k + 3;

		/* At most 4 descriptors each: slot k owns desc[4k .. 4k+3]. */
		q[k] = mkreq(T_IN, sector, d->r->data + k * per * SECTOR, per * SECTOR, true,
			     1 + (k & 1), k == 2, false);
		head[k] = req_post(d, &q[k], k, (uint16_t)(k * 4));
		avail_add(d, head[k]);
	}
	kick(d);
	for (uint32_t n = 0; n < BATCH; n++) {
		uint32_t id, len, k;

		if (!used_wait(d, &id, &len))
			return fail(c, "%s only %u of %u completions", d->name, n, BATCH);
		for (k = 0; k < BATCH && head[k] != id; k++)
			;
		if (k == BATCH || seen[k])
			return fail(c, "%s used id %u unknown or repeated", d->name, id);
		seen[k] = true;
		if (len != per * SECTOR + 1 || d->r->status[k] != ST_OK)
			return fail(c, "%s request %u: used len %u status %u", d->name, k, len,
				    d->r->status[k]);
	}
	/* One interrupt may cover several completions. */
	irq_after(d);
	for (uint32_t k = 0; k < BATCH; k++)
		if (!pat_check(c, d, q[k].buf, q[k].sector, per, d->salt))
			return false;
	return pass(c);
}

static bool check_write(struct vdev *d)
{
	const char *c = cname("blk-write", d);
	uint64_t start, count, wsalt;

	if (!dparam("t.wstart", d->index, &start) || !dparam("t.wcount", d->index, &count) ||
	    !dparam("t.wsalt", d->index, &wsalt))
		return fail(c, "%s t.wstart/t.wcount/t.wsalt missing", d->name);
	if (d->ro) {
		/* §5.2.6.2: with VIRTIO_BLK_F_RO a write fails (IOERR) and changes nothing. */
		if (!blk_write(c, d, start, 1, wsalt, 1, false, false, ST_IOERR) ||
		    !blk_write(c, d, start + 1, 2, wsalt, 2, true, true, ST_IOERR))
			return false;
		if (!blk_read(c, d, start, 3, 1, false, false) ||
		    !pat_check(c, d, d->r->data, start, 3, d->salt))
			return false;
		return pass(c);
	}
	/* Plain, multi-segment and indirect writes in turn, then read everything back. */
	for (uint64_t s = start, i = 0; s < start + count; i++) {
		uint32_t n = start + count - s > BUF_SECTORS ? BUF_SECTORS
							     : (uint32_t)(start + count - s);
		uint32_t how = (uint32_t)i % 3;

		if (!blk_write(c, d, s, n, wsalt, how == 1 ? 3 : 1, how == 1, how == 2, ST_OK))
			return false;
		s += n;
	}
	for (uint64_t s = start; s < start + count;) {
		uint32_t n = start + count - s > BUF_SECTORS ? BUF_SECTORS
							     : (uint32_t)(start + count - s);

		if (!blk_read(c, d, s, n, 1, false, false) ||
		    !pat_check(c, d, d->r->data, s, n, wsalt))
			return false;
		s += n;
	}
	/* The sectors either side are untouched. */
	if (start && (!blk_read(c, d, start - 1, 1, 1, false, false) ||
		      !pat_check(c, d, d->r->data, start - 1, 1, d->salt)))
		return false;
	if (!blk_read(c, d, start + count, 1, 1, false, false) ||
	    !pat_check(c, d, d->r->data, start + count, 1, d->salt))
		return false;
	return pass(c);
}

static bool check_flush(struct vdev *d)
{
	const char *c = cname("blk-flush", d);

	if (!(d->features & BIT(FB_FLUSH)))
		return fail(c, "%s FLUSH not negotiated", d->name);
	if (!blk_simple(c, d, T_FLUSH, 0, NULL, 0, ST_OK))
		return false;
	return pass(c);
}

static bool check_id(struct vdev *d)
{
	const char *c = cname("blk-id", d);
	uint32_t slen;
	const char *serial = dparam_str("t.serial", d->index, &slen);
	struct req q = mkreq(T_GET_ID, 0, d->r->id, ID_BYTES, true, 1, false, false);

	if (!serial)
		return fail(c, "%s no t.serial", d->name);
	memset(d->r->id, 0xee, sizeof(d->r->id));
	if (!req_run(d, &q))
		return fail(c, "%s GET_ID: %s", d->name, q.err);
	if (q.status != ST_OK)
		return fail(c, "%s GET_ID status %u", d->name, q.status);
	/* §5.2.6: 20 bytes, NUL-terminated only when shorter. */
	if (memcmp(d->r->id, serial, slen) || (slen < ID_BYTES && d->r->id[slen] != 0))
		return fail(c, "%s GET_ID %c%c%c%c..., expected t.serial%u", d->name, d->r->id[0],
			    d->r->id[1], d->r->id[2], d->r->id[3], d->index);
	if (d->r->id[ID_BYTES] != 0xee)
		return fail(c, "%s GET_ID wrote beyond its 20 bytes", d->name);
	if (q.used_len < 2 || q.used_len > ID_BYTES + 1)
		return fail(c, "%s GET_ID used len %u", d->name, q.used_len);
	return pass(c);
}

bool dwz_run(const char *c, struct vdev *d, uint32_t type, uint64_t sector, uint32_t n,
	     uint32_t flags, uint8_t want)
{
	d->r->dwz = (struct dwz_seg){sector, n, flags};
	return blk_simple(c, d, type, 0, (uint8_t *)&d->r->dwz, sizeof(d->r->dwz), want);
}

static bool check_write_zeroes(struct vdev *d)
{
	const char *c = cname("blk-write-zeroes", d);
	uint64_t start, count;

	if (!dparam("t.zstart", d->index, &start) || !dparam("t.zcount", d->index, &count))
		return fail(c, "%s t.zstart/t.zcount missing", d->name);
	if (!(d->features & BIT(FB_WRITE_ZEROES)))
		return fail(c, "%s WRITE_ZEROES not offered", d->name);
	if (!dwz_run(c, d, T_WRITE_ZEROES, start, (uint32_t)count, 0, ST_OK))
		return false;
	for (uint64_t s = start; s < start + count; s += BUF_SECTORS) {
		uint32_t n = start + count - s > BUF_SECTORS ? BUF_SECTORS
							     : (uint32_t)(start + count - s);

		if (!blk_read(c, d, s, n, 1, false, false) || !zero_check(c, d, d->r->data, s, n))
			return false;
	}
	if (!blk_read(c, d, start + count, 1, 1, false, false) ||
	    !pat_check(c, d, d->r->data, start + count, 1, d->salt))
		return false;
	return pass(c);
}

static bool check_discard(struct vdev *d)
{
	const char *c = cname("blk-discard", d);
	uint64_t start, count;

	if (!dparam("t.dstart", d->index, &start) || !dparam("t.dcount", d->index, &count))
		return fail(c, "%s t.dstart/t.dcount missing", d->name);
	if (!(d->features & BIT(FB_DISCARD)))
		return fail(c, "%s DISCARD not offered", d->name);
	/* §5.2.6: after a discard the data is unspecified; the host checks old-or-zero. */
	if (!dwz_run(c, d, T_DISCARD, start, (uint32_t)count, 0, ST_OK))
		return false;
	return pass(c);
}

/* IOAPIC (82093AA datasheet §3.2): IOREGSEL at +0, IOWIN at +0x10, redirection entries 0x10+2n. */
#define IOAPIC_BASE  0xfec00000u
#define LAPIC_BASE   0xfee00000u
#define LAPIC_ID_REG 0x020
#define LAPIC_SVR    0x0f0
#define LAPIC_IRR    0x200

void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE, reg);
	mmio_write32(IOAPIC_BASE + 0x10, v);
}

bool lapic_irr(uint32_t vector)
{
	return (mmio_read32(LAPIC_BASE + LAPIC_IRR + 0x10 * (vector / 32)) >> (vector % 32)) & 1;
}

/*
 * The interrupt path end to end: route the device's GSI through the IOAPIC to a fresh vector
 * on this CPU, interrupts stay disabled (IF=0), so the vector just waits in the local APIC's
 * IRR (Intel SDM Vol. 3A §11.8.4) where we can see it arrive.
 */
static bool check_irq(struct vdev *d)
{
	const char *c = cname("blk-irq", d);
	uint32_t vec = next_vector++, self, st;
	uint64_t t0;
	bool got = false;

	mmio_write32(LAPIC_BASE + LAPIC_SVR, mmio_read32(LAPIC_BASE + LAPIC_SVR) | 0x1ff);
	self = mmio_read32(LAPIC_BASE + LAPIC_ID_REG) >> 24;
	/* Edge, active high, fixed delivery, physical destination: this CPU; unmasked. An
	 * edge latched while the pin was masked may be delivered on unmasking: then start over
	 * with a fresh vector, which must stay clear until our request. */
	ioapic_write(0x10 + 2 * d->gsi + 1, self << 24);
	ioapic_write(0x10 + 2 * d->gsi, vec);
	delay(1000);
	if (lapic_irr(vec)) {
		vec = next_vector++;
		ioapic_write(0x10 + 2 * d->gsi, vec);
		delay(1000);
	}
	if (lapic_irr(vec))
		return fail(c, "%s vector %x pending before any request", d->name, vec);
	if (!blk_read(c, d, 1, 1, 1, false, false))
		return false;
	for (t0 = rdtsc(); !(got = lapic_irr(vec)) && rdtsc() - t0 < IRQ_WAIT_TSC;)
		cpu_pause();
	ioapic_write(0x10 + 2 * d->gsi, 0x10000 | vec); /* masked again */
	if (!got)
		return fail(c, "%s GSI %u never reached the local APIC (vector %x)", d->name,
			    d->gsi, vec);
	if (d->irq_missing || d->irq_stale)
		return fail(c,
			    "%s InterruptStatus: %u completions without USED, %u not cleared "
			    "by InterruptACK (%u fine)",
			    d->name, d->irq_missing, d->irq_stale, d->irq_ok);
	if ((st = rd(d, VM_INT_STATUS)) != 0)
		return fail(c, "%s InterruptStatus %x while idle", d->name, st);
	return pass(c);
}

/* Used-buffer notification suppression: §2.7.7 (flags) or §2.7.10 (used_event). */
static bool check_suppress(struct vdev *d)
{
	const char *c = cname("blk-suppress", d);
	uint32_t before = d->irq_unwanted, missing = d->irq_missing;
	bool ok;

	d->want_irq = false;
	ok = blk_read(c, d, 2, 1, 1, false, false);
	d->want_irq = true;
	if (!ok)
		return false;
	if (d->irq_unwanted != before)
		return fail(c, "%s interrupt with %s", d->name,
			    d->event_idx ? "used_event behind" : "VRING_AVAIL_F_NO_INTERRUPT");
	/* And the next request interrupts again. */
	if (!blk_read(c, d, 3, 1, 1, false, false))
		return false;
	if (d->irq_missing != missing)
		return fail(c, "%s no interrupt after re-enabling", d->name);
	return pass(c);
}

static bool check_final(struct vdev *d)
{
	const char *c = cname("blk-final", d);
	uint32_t st = rd(d, VM_STATUS);

	if (st != (S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK))
		return fail(c, "%s status %x at the end", d->name, st);
	return pass(c);
}

void dev_setup(struct vdev *d, uint32_t i)
{
	uint64_t ro = 0;

	d->index = i;
	d->name[0] = 'd';
	d->name[1] = (char)('0' + i);
	d->name[2] = '\0';
	d->r = &rings[i];
	ring_place(d, NULL, NULL, NULL);
	d->want_irq = true;
	d->have_sectors = dparam("t.sectors", i, &d->sectors);
	d->have_salt = dparam("t.salt", i, &d->salt);
	dparam("t.ro", i, &ro);
	d->ro = ro != 0;
}

/* Reads on every device in flight at the same time: each must get its own disk's data. */
static bool check_concurrent(void)
{
	uint16_t head[MAX_DEVS];
	struct req q[MAX_DEVS];

	for (uint32_t i = 0; i < ndevs; i++) {
		struct vdev *d = &devs[i];

		memset(d->r->data, 0xee, BUF_SECTORS * SECTOR);
		q[i] = mkreq(T_IN, 17, d->r->data, BUF_SECTORS * SECTOR, true, 2, false, false);
		head[i] = req_post(d, &q[i], 0, 0);
		avail_add(d, head[i]);
	}
	for (uint32_t i = 0; i < ndevs; i++)
		kick(&devs[i]);
	for (uint32_t i = 0; i < ndevs; i++) {
		struct vdev *d = &devs[i];
		uint32_t id, len;

		if (!used_wait(d, &id, &len))
			return fail("blk-concurrent", "%s: no completion", d->name);
		irq_after(d);
		if (id != head[i] || len != BUF_SECTORS * SECTOR + 1 || d->r->status[0] != ST_OK)
			return fail("blk-concurrent", "%s: id %u len %u status %u", d->name, id,
				    len, d->r->status[0]);
		if (!pat_check("blk-concurrent", d, d->r->data, 17, BUF_SECTORS, d->salt))
			return false;
	}
	return pass("blk-concurrent");
}

void scenario_blk(void)
{
	bool ok = check_discover();

	for (uint32_t i = 0; ok && i < ndevs; i++) {
		struct vdev *d = &devs[i];
		uint64_t v;

		dev_setup(d, i);
		/* Each check needs the ones before it: stop this device at the first failure. */
		if (!check_probe(d) || !check_features(d) || !check_config(d) || !check_queue(d))
			continue;
		d->live = true;
		check_read(d);
		check_read_multiseg(d);
		check_read_indirect(d);
		check_batch(d);
		check_write(d);
		check_flush(d);
		check_id(d);
		if (!d->ro && dparam("t.zcount", i, &v) && v)
			check_write_zeroes(d);
		if (!d->ro && dparam("t.dcount", i, &v) && v)
			check_discard(d);
		check_irq(d);
		check_suppress(d);
	}
	bool all = ok;

	for (uint32_t i = 0; i < ndevs; i++)
		all = all && devs[i].live;
	if (all && ndevs > 1)
		check_concurrent();
	for (uint32_t i = 0; i < ndevs; i++)
		if (devs[i].live)
			check_final(&devs[i]);
	micro_done();
}

/* ---- scenario blk-errors ---- */

static bool err_case(struct vdev *d, const char *check, uint32_t type, uint64_t sector,
		     uint32_t len, bool dev_writes, uint8_t want)
{
	struct req q =
		mkreq(type, sector, len ? d->r->data : NULL, len, dev_writes, 1, false, false);

	if (!dev_writes)
		pat_fill(d->r->data, sector & 0xffff, BUF_SECTORS, 0xbadbadbadULL);
	if (!req_run(d, &q))
		return fail(check, "%s", q.err);
	if (q.status != want)
		return fail(check, "status %u, expected %u", q.status, want);
	if (q.used_len < 1)
		return fail(check, "used len 0, but the status byte was written");
	return pass(check);
}

void scenario_blk_errors(void)
{
	struct vdev *d = &devs[0];
	const char *why;

	if (!check_discover() || ndevs < 1)
		micro_done();
	dev_setup(d, 0);
	why = dev_init(d);
	if (why) {
		fail("blk-err-init", "%s", why);
		micro_done();
	}
	if (!d->have_sectors)
		fail("blk-err-init", "no t.sectors0");
	{
		bool stable;

		d->capacity = cfg64(d, C_CAPACITY, &stable);
	}
	uint64_t cap = d->capacity;

	/* §5.2.6.2: a request beyond the end fails with IOERR and transfers nothing. */
	err_case(d, "blk-err-read-past-end", T_IN, cap, SECTOR, true, ST_IOERR);
	err_case(d, "blk-err-read-straddle", T_IN, cap - 1, 2 * SECTOR, true, ST_IOERR);
	err_case(d, "blk-err-read-huge-sector", T_IN, 0xfffffffffffffff0ULL, SECTOR, true,
		 ST_IOERR);
	err_case(d, "blk-err-write-past-end", T_OUT, cap, SECTOR, false, ST_IOERR);
	err_case(d, "blk-err-write-straddle", T_OUT, cap - 1, 2 * SECTOR, false, ST_IOERR);
	err_case(d, "blk-err-unknown-type", 0x55, 0, 0, false, ST_UNSUPP);
	err_case(d, "blk-err-get-lifetime", T_GET_LIFETIME, 0, 0, false, ST_UNSUPP);
	err_case(d, "blk-err-secure-erase", T_SECURE_ERASE, 0, 0, false, ST_UNSUPP);
	/* Data lengths that are not whole sectors (§5.2.6: a multiple of 512). */
	err_case(d, "blk-err-read-partial", T_IN, 0, 100, true, ST_IOERR);
	err_case(d, "blk-err-write-partial", T_OUT, 2, 700, false, ST_IOERR);
	if (d->features & BIT(FB_WRITE_ZEROES)) {
		if (dwz_run("blk-err-write-zeroes-past-end", d, T_WRITE_ZEROES, cap - 1, 2, 0,
			    ST_IOERR))
			pass("blk-err-write-zeroes-past-end");
		/* §5.2.6.2: unknown flags in a segment: UNSUPP. */
		if (dwz_run("blk-err-write-zeroes-flags", d, T_WRITE_ZEROES, 4, 1, 0x80, ST_UNSUPP))
			pass("blk-err-write-zeroes-flags");
	} else {
		fail("blk-err-write-zeroes-past-end", "WRITE_ZEROES not offered");
	}
	if (d->features & BIT(FB_DISCARD)) {
		if (dwz_run("blk-err-discard-past-end", d, T_DISCARD, cap, 1, 0, ST_IOERR))
			pass("blk-err-discard-past-end");
	} else {
		fail("blk-err-discard-past-end", "DISCARD not offered");
	}
	/* Still working, the data where the failed writes pointed unchanged. */
	if (blk_read("blk-err-alive", d, 0, 4, 1, false, false) &&
	    pat_check("blk-err-alive", d, d->r->data, 0, 4, d->salt) &&
	    blk_read("blk-err-alive", d, cap - 2, 2, 1, false, false) &&
	    pat_check("blk-err-alive", d, d->r->data, cap - 2, 2, d->salt)) {
		uint32_t st = rd(d, VM_STATUS);

		if (st & (S_NEEDS_RESET | S_FAILED))
			fail("blk-err-alive", "status %x", st);
		else
			pass("blk-err-alive");
	}
	micro_done();
}

/* ---- scenario blk-hostile ---- */

/*
 * Each case breaks one rule of §2.7 on a freshly initialised queue, then checks what the
 * device did, then proves it is still usable: reset (Status 0), initialise again, read.
 */

bool hostile_recover(struct vdev *d, const char *c)
{
	const char *why;

	if (!status_reset(d))
		return fail(c, "Status does not read 0 after reset");
	/* Back to the device's own ring and the default driver behaviour. */
	ring_place(d, NULL, NULL, NULL);
	d->want_irq = true;
	wr(d, VM_QUEUE_SEL, 0);
	if (rd(d, VM_QUEUE_READY) != 0)
		return fail(c, "QueueReady still 1 after reset");
	if (rd(d, VM_INT_STATUS) != 0)
		return fail(c, "InterruptStatus %x after reset", rd(d, VM_INT_STATUS));
	why = dev_init(d);
	if (why)
		return fail(c, "re-initialisation: %s", why);
	/* A stale last_avail or used index in the device would make this hang or misplace. */
	if (!blk_read(c, d, 7, 2, 1, false, false) || !pat_check(c, d, d->r->data, 7, 2, d->salt))
		return false;
	if (used_idx(d) != 1)
		return fail(c, "used idx %u after one request on a fresh queue", used_idx(d));
	return true;
}

/* Wait for the completion of head; check it against ex. */
bool hostile_complete(struct vdev *d, const char *c, uint16_t head, enum expect ex)
{
	uint32_t id, len;
	uint8_t st;

	if (!used_wait(d, &id, &len))
		return fail(c, "the malformed chain was never completed");
	irq_after(d);
	st = d->r->status[0];
	if (id != head)
		return fail(c, "used id %u, posted head %u", id, head);
	if (ex == EX_CHAIN && (len != 0 || st != CANARY))
		return fail(c, "used len %u status byte %x, expected len 0 and %x untouched", len,
			    st, CANARY);
	if (ex == EX_HEADER && !(len == 0 && st == CANARY) && !(len >= 1 && st == ST_IOERR))
		return fail(c, "used len %u status %x: neither IOERR nor len 0", len, st);
	if (ex == EX_ANY && !(len == 0 && st == CANARY) && !(len >= 1 && st <= ST_UNSUPP))
		return fail(c, "used len %u status %x", len, st);
	/* The queue goes on after a bad chain: a valid read on the same queue. */
	if (!blk_read(c, d, 9, 1, 1, false, false) || !pat_check(c, d, d->r->data, 9, 1, d->salt))
		return false;
	return true;
}

/* early: NEEDS_RESET was already set before the driver wrote DRIVER_OK. */
bool hostile_needs_reset(struct vdev *d, const char *c, bool early)
{
	uint64_t t0 = rdtsc();
	uint32_t st;

	while (!((st = rd(d, VM_STATUS)) & S_NEEDS_RESET) && rdtsc() - t0 < WAIT_TSC)
		cpu_pause();
	if (!(st & S_NEEDS_RESET))
		return fail(c, "status %x: no DEVICE_NEEDS_RESET", st);
	/* §2.1.2: if DRIVER_OK is set when the device sets DEVICE_NEEDS_RESET, it MUST send a
	 * configuration change notification; set before DRIVER_OK, there is nobody to tell. */
	if (!(st & S_DRIVER_OK) || early)
		return true;
	for (t0 = rdtsc(); !(rd(d, VM_INT_STATUS) & INT_CONFIG) && rdtsc() - t0 < IRQ_WAIT_TSC;)
		cpu_pause();
	if (!(rd(d, VM_INT_STATUS) & INT_CONFIG))
		return fail(c,
			    "status %x: DEVICE_NEEDS_RESET with DRIVER_OK but no "
			    "configuration-change interrupt",
			    st);
	return true;
}

/* A normal read request in desc[0..2] with data segment `data` replaced. */
uint16_t put_read(struct vdev *d, struct vdesc data)
{
	struct blk_hdr *h = &d->r->hdr[0];

	*h = (struct blk_hdr){T_IN, 0, 0};
	d->r->status[0] = CANARY;
	d->qdesc[0] = (struct vdesc){gpa(h), 16, D_NEXT, 1};
	d->qdesc[1] = data;
	d->qdesc[1].flags |= D_NEXT;
	d->qdesc[1].next = 2;
	d->qdesc[2] = (struct vdesc){gpa(&d->r->status[0]), 1, D_WRITE, 0};
	return 0;
}

struct vdesc wdesc(uint64_t addr, uint32_t len)
{
	return (struct vdesc){addr, len, D_WRITE, 0};
}

static void hostile_case(struct vdev *d, uint32_t n)
{
	static const char *const names[] = {
		"addr-outside-ram",  "addr-mmio-hole",	 "addr-len-overflow", "len-beyond-ram",
		"zero-len",	     "next-loop",	 "next-out-of-range", "write-then-read",
		"indirect-and-next", "indirect-outside", "indirect-nested",   "indirect-bad-len",
		"indirect-next-oob", "indirect-huge",	 "header-only",	      "short-header",
		"head-out-of-range", "avail-idx-jump",	 "ring-outside-ram",  "queue-size-bad",
		"queue-size-big",    "bogus-registers",	 "reset-inflight",
	};
	char c[48] = "blk-hostile-";
	const char *why;
	struct ring *r = d->r;
	enum expect ex = EX_CHAIN;
	uint16_t head = 0;
	uint32_t l = 12;
	bool ok = true;

	for (const char *p = names[n]; *p && l < sizeof(c) - 1; p++)
		c[l++] = *p;
	c[l] = '\0';
	why = dev_init(d);
	if (why) {
		fail(c, "initialisation: %s", why);
		return;
	}
	switch (n) {
	case 0: /* a buffer wholly outside guest RAM */
		head = put_read(d, wdesc(FAR_AWAY, SECTOR));
		break;
	case 1: /* DMA into the device's own registers: MMIO, not RAM */
		head = put_read(d, wdesc(d->base, SECTOR));
		break;
	case 2: /* addr + len wraps around 2^64 */
		head = put_read(d, wdesc(0xfffffffffffff000ULL, 0x2000));
		break;
	case 3: /* starts in RAM, runs 4 GiB past its end */
		head = put_read(d, wdesc(gpa(r->data), 0xfffffe00u));
		break;
	case 4: /* a zero-length data descriptor */
		head = put_read(d, wdesc(gpa(r->data), 0));
		break;
	case 5: /* header, then data -> status -> data -> ...: a cycle of writable ones */
		head = put_read(d, wdesc(gpa(r->data), SECTOR));
		r->desc[2].flags |= D_NEXT;
		r->desc[2].next = 1;
		break;
	case 6: /* next == queue size: one past the table */
		head = put_read(d, wdesc(gpa(r->data), SECTOR));
		r->desc[1].next = d->qsize;
		break;
	case 7: /* a device-readable descriptor after a writable one (§2.7.4.2) */
		head = put_read(d, wdesc(gpa(r->data), SECTOR));
		r->desc[2].flags |= D_NEXT;
		r->desc[2].next = 3;
		r->desc[3] = (struct vdesc){gpa(&r->hdr[1]), 16, 0, 0};
		break;
	case 8: /* INDIRECT together with NEXT (§2.7.5.3.1 forbids it) */
	case 9:
	case 10:
	case 11:
	case 12: {
		struct vdesc *t = r->ind;

		t[0] = (struct vdesc){gpa(&r->hdr[0]), 16, D_NEXT, 1};
		t[1] = (struct vdesc){gpa(r->data), SECTOR, D_WRITE | D_NEXT, 2};
		t[2] = (struct vdesc){gpa(&r->status[0]), 1, D_WRITE, 0};
		r->hdr[0] = (struct blk_hdr){T_IN, 0, 0};
		r->status[0] = CANARY;
		r->desc[0] = (struct vdesc){gpa(t), 3 * 16, D_INDIRECT, 0};
		if (n == 8) {
			r->desc[0].flags |= D_NEXT;
			r->desc[0].next = 1;
			r->desc[1] = (struct vdesc){gpa(&r->status[1]), 1, D_WRITE, 0};
		} else if (n == 9) { /* the table outside RAM */
			r->desc[0].addr = FAR_AWAY;
		} else if (n == 10) { /* an indirect descriptor inside the table */
			t[1] = (struct vdesc){gpa(&r->ind[8]), 16, D_INDIRECT | D_NEXT, 2};
			r->ind[8] = (struct vdesc){gpa(r->data), SECTOR, D_WRITE, 0};
		} else if (n == 11) { /* a table length that is not a multiple of 16 */
			r->desc[0].len = 40;
		} else { /* next beyond the table's 3 entries */
			t[1].next = 3;
		}
		break;
	}
	case 13: { /* more descriptors than any queue size, all into one sector buffer */
		for (uint32_t i = 0; i < IND_HUGE; i++)
			ind_huge[i] = (struct vdesc){gpa(r->data), SECTOR, D_WRITE | D_NEXT,
						     (uint16_t)(i + 1)};
		ind_huge[0] = (struct vdesc){gpa(&r->hdr[0]), 16, D_NEXT, 1};
		ind_huge[IND_HUGE - 1] = (struct vdesc){gpa(&r->status[0]), 1, D_WRITE, 0};
		r->hdr[0] = (struct blk_hdr){T_IN, 0, 0};
		r->status[0] = CANARY;
		r->desc[0] = (struct vdesc){gpa(ind_huge), IND_HUGE * 16, D_INDIRECT, 0};
		ex = EX_ANY;
		break;
	}
	case 14: /* the header alone: nowhere to put the status */
		r->hdr[0] = (struct blk_hdr){T_IN, 0, 0};
		r->desc[0] = (struct vdesc){gpa(&r->hdr[0]), 16, 0, 0};
		r->status[0] = CANARY;
		break;
	case 15: /* an 8-byte header: no sector field */
		head = put_read(d, wdesc(gpa(r->data), SECTOR));
		r->desc[0].len = 8;
		ex = EX_HEADER;
		break;
	case 16: /* an avail ring entry naming a descriptor beyond the table */
		put_read(d, wdesc(gpa(r->data), SECTOR));
		head = d->qsize;
		ex = EX_RING;
		break;
	case 17: /* avail->idx more than a queue size ahead of what the device consumed */
		put_read(d, wdesc(gpa(r->data), SECTOR));
		d->avail_idx = (uint16_t)(d->qsize + 5);
		ex = EX_RING;
		break;
	case 18: /* a descriptor table outside RAM, set up before DRIVER_OK */
	case 19:
	case 20:
		ex = EX_RING;
		break;
	case 21:
	case 22:
		ex = EX_NOTHING;
		break;
	}

	if (n <= 17) {
		if (n == 17) {
			*AVAIL_RING(d, 0) = head;
			kick(d);
		} else {
			avail_add(d, head);
			kick(d);
		}
		if (ex == EX_RING)
			ok = hostile_needs_reset(d, c, false);
		else
			ok = hostile_complete(d, c, head, ex);
	} else if (n <= 20) {
		/* Queue setup errors: redo the queue with a bad size or address. */
		if (!status_reset(d) || dev_init_features(d, blk_wanted())) {
			fail(c, "re-initialisation for the case failed");
			return;
		}
		ring_clear(d);
		wr(d, VM_QUEUE_SEL, 0);
		if (n == 18)
			queue_program(d, d->qsize, FAR_AWAY, gpa(r->avail), gpa(r->used));
		else
			queue_program(d, n == 19 ? 3 : (uint16_t)(d->qmax * 2), gpa(r->desc),
				      gpa(r->avail), gpa(r->used));
		wr(d, VM_QUEUE_READY, 1);
		/* The device may object at QueueReady already, or only at DRIVER_OK. */
		bool early = (rd(d, VM_STATUS) & S_NEEDS_RESET) != 0;

		wr(d, VM_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
		put_read(d, wdesc(gpa(r->data), SECTOR));
		avail_add(d, 0);
		kick(d);
		ok = hostile_needs_reset(d, c, early);
	} else if (n == 21) {
		/* Register abuse: writes to read-only registers, a notify for a queue that does
		 * not exist, odd widths, offsets beyond the registers and the config space. */
		wr(d, VM_MAGIC, 0);
		wr(d, VM_DEVICE_ID, 7);
		wr(d, VM_QUEUE_NOTIFY, 63);
		wr(d, VM_QUEUE_NOTIFY, 0xffff);
		mmio_write8(d->base + VM_STATUS, 0xff);
		(void)mmio_read8(d->base + VM_QUEUE_NUM_MAX + 1);
		(void)mmio_read16(d->base + VM_MAGIC + 2);
		(void)rd(d, 0x0f0);
		(void)rd(d, VM_WINDOW - 4);
		wr(d, VM_WINDOW - 4, 0xdeadbeef);
		wr(d, VM_CONFIG + C_CAPACITY, 1); /* capacity is read-only */
		wr(d, VM_QUEUE_SEL, 63);
		wr(d, VM_QUEUE_NUM, 4);
		wr(d, VM_QUEUE_READY, 1);
		if (rd(d, VM_MAGIC) != VIRT_MAGIC || rd(d, VM_DEVICE_ID) != 2)
			ok = fail(c, "read-only registers changed");
		else if ((cfg32(d, C_CAPACITY) | ((uint64_t)cfg32(d, C_CAPACITY + 4) << 32)) !=
			 d->sectors)
			ok = fail(c, "capacity changed by a config write");
	} else if (n == 22) {
		/* Reset with requests in flight: their completions must not land in the
		 * new rings (§2.4: after reset the device does not touch the old ones). */
		struct req q[BATCH];

		for (uint32_t k = 0; k < BATCH; k++) {
			q[k] = mkreq(T_IN, k * 8, r->data + k * 2 * SECTOR, 2 * SECTOR, true, 1,
				     false, false);
			avail_add(d, req_post(d, &q[k], k, (uint16_t)(k * 4)));
		}
		kick(d);
	}
	if (ok && hostile_recover(d, c))
		pass(c);
}

void scenario_blk_hostile(void)
{
	struct vdev *d = &devs[0];
	uint64_t only, mask = (1ULL << HOSTILE_OLD) - 1;
	bool one = param_u64(micro_cmdline(), "t.case", &only);

	/* t.mask: a bit per case (vblk.c's 0..22, then hostile.c's); default: vblk.c's. */
	param_u64(micro_cmdline(), "t.mask", &mask);
	if (!check_discover() || ndevs < 1)
		micro_done();
	dev_setup(d, 0);
	if (!d->have_sectors || !d->have_salt)
		fail("blk-hostile", "t.sectors0 / t.salt0 missing");
	for (uint32_t n = 0; n < HOSTILE_OLD + hostile2_count; n++) {
		if (one ? only != n : !(n < 64 && (mask >> n) & 1))
			continue;
		if (n < HOSTILE_OLD) {
			hostile_case(d, n);
		} else {
			char c[48] = "blk-hostile-";
			uint32_t l = 12;

			for (const char *p = hostile2_names[n - HOSTILE_OLD]; *p && l < 47; p++)
				c[l++] = *p;
			c[l] = '\0';
			hostile2_case(d, n - HOSTILE_OLD, c);
		}
	}
	micro_done();
}
