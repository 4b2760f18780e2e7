/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The micro-guest's virtio-mmio driver (vblk.c), shared with the scenarios built on it
 * (hostile.c: more hostile virtio-blk cases; vcon.c: virtio-console). Written from the virtio
 * 1.2 specification, not from the VMM's headers (see vblk.c).
 */
#ifndef MICRO_VBLK_H
#define MICRO_VBLK_H

#include "micro.h"

/* §4.2.2 MMIO device register layout (version 2) */
#define VM_MAGIC	    0x000
#define VM_VERSION	    0x004
#define VM_DEVICE_ID	    0x008
#define VM_VENDOR_ID	    0x00c
#define VM_DEV_FEATURES	    0x010
#define VM_DEV_FEATURES_SEL 0x014
#define VM_DRV_FEATURES	    0x020
#define VM_DRV_FEATURES_SEL 0x024
#define VM_QUEUE_SEL	    0x030
#define VM_QUEUE_NUM_MAX    0x034
#define VM_QUEUE_NUM	    0x038
#define VM_QUEUE_READY	    0x044
#define VM_QUEUE_NOTIFY	    0x050
#define VM_INT_STATUS	    0x060
#define VM_INT_ACK	    0x064
#define VM_STATUS	    0x070
#define VM_QUEUE_DESC_LO    0x080
#define VM_QUEUE_DESC_HI    0x084
#define VM_QUEUE_DRIVER_LO  0x090
#define VM_QUEUE_DRIVER_HI  0x094
#define VM_QUEUE_DEVICE_LO  0x0a0
#define VM_QUEUE_DEVICE_HI  0x0a4
#define VM_CONFIG_GEN	    0x0fc
#define VM_CONFIG	    0x100
#define VM_WINDOW	    0x1000

#define VIRT_MAGIC 0x74726976 /* "virt" */
#define INT_USED   1	      /* §4.2.2 InterruptStatus: used buffer notification */
#define INT_CONFIG 2	      /* configuration change (also sent with DEVICE_NEEDS_RESET) */

/* §2.1 device status */
#define S_ACK	      1
#define S_DRIVER      2
#define S_DRIVER_OK   4
#define S_FEATURES_OK 8
#define S_NEEDS_RESET 64
#define S_FAILED      128

/* §6 reserved feature bits, §5.2.3 virtio-blk feature bits */
#define F_INDIRECT	28
#define F_EVENT_IDX	29
#define F_VERSION_1	32
#define F_RING_PACKED	34
#define F_NOTIF_DATA	38
#define FB_SIZE_MAX	1
#define FB_SEG_MAX	2
#define FB_RO		5
#define FB_BLK_SIZE	6
#define FB_FLUSH	9
#define FB_MQ		12
#define FB_DISCARD	13
#define FB_WRITE_ZEROES 14
#define BIT(b)		(1ULL << (b))

/* §5.2.4 virtio_blk_config offsets */
#define C_CAPACITY  0
#define C_SIZE_MAX  8
#define C_SEG_MAX   12
#define C_BLK_SIZE  20
#define C_NUM_QUEUE 34
#define C_MAX_DISC  36
#define C_MAX_WZ    48

/* §5.2.6 requests */
#define T_IN	       0
#define T_OUT	       1
#define T_FLUSH	       4
#define T_GET_ID       8
#define T_GET_LIFETIME 10
#define T_DISCARD      11
#define T_WRITE_ZEROES 13
#define T_SECURE_ERASE 14
#define ST_OK	       0
#define ST_IOERR       1
#define ST_UNSUPP      2
#define ID_BYTES       20
#define SECTOR	       512

/* §2.7.5 descriptor flags, §2.7.6 avail flags */
#define D_NEXT		   1
#define D_WRITE		   2
#define D_INDIRECT	   4
#define AVAIL_NO_INTERRUPT 1

#define MAX_DEVS    8
#define QSZ	    16 /* our queue size: QueueNumMax permitting */
#define BATCH	    4
#define IND_SMALL   16
#define IND_HUGE    1100 /* beyond any queue size: §2.7.5.3.1 caps a chain at Queue Size */
#define BUF_SECTORS 8
#define CANARY	    0xa5

/* TSC budgets: a completion normally takes tens of microseconds; "a few seconds" at any
 * plausible TSC rate is the hang detector. */
#define WAIT_TSC     10000000000ULL
#define IRQ_WAIT_TSC 2000000000ULL
#define QUIET_TSC    20000000ULL /* how long "no interrupt" must hold: ~10 ms */

struct vdesc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct dwz_seg { /* §5.2.6 virtio_blk_discard_write_zeroes */
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

/* Everything the device reads or writes, in guest RAM; one per device. */
struct ring {
	struct vdesc desc[QSZ];
	struct vdesc ind[IND_SMALL];
	uint8_t avail[4 + 2 * QSZ + 2] __attribute__((aligned(16))); /* flags idx ring used_event */
	uint8_t used[4 + 8 * QSZ + 2] __attribute__((aligned(16))); /* flags idx ring avail_event */
	struct blk_hdr hdr[BATCH];
	struct dwz_seg dwz;
	uint8_t status[BATCH];
	uint8_t id[ID_BYTES + 12];
	uint8_t data[BUF_SECTORS * SECTOR] __attribute__((aligned(512)));
} __attribute__((aligned(4096)));

struct vdev {
	uintptr_t base;
	uint32_t gsi;
	uint32_t index;
	char name[4]; /* "d0": the suffix of this device's check names and t.* keys */
	struct ring *r;
	/* Where queue 0's parts are: r's own by default (ring_place() moves them). */
	struct vdesc *qdesc;
	uint8_t *qavail, *qused;
	uint16_t qidx; /* the queue the helpers drive (0 unless a case says otherwise) */
	uint64_t offered, features;
	uint16_t qmax, qsize, avail_idx, used_seen;
	uint64_t capacity;
	uint32_t seg_max;
	bool event_idx;
	bool live;     /* initialised: probe to queue passed */
	bool want_irq; /* a used-buffer interrupt must follow each completion */
	uint32_t irq_ok, irq_missing, irq_stale, irq_unwanted;
	/* expectations from the command line */
	uint64_t sectors, salt;
	bool have_sectors, have_salt, ro;
};

/* avail: flags 0, idx 2, ring[i] 4 + 2i, used_event 4 + 2 * size (§2.7.6) */
#define AVAIL_FLAGS(d)	    avail_at(d, 0)
#define AVAIL_IDX(d)	    avail_at(d, 2)
#define AVAIL_RING(d, i)    avail_at(d, 4 + 2 * (uint32_t)(i))
#define AVAIL_USED_EVENT(d) avail_at(d, 4 + 2 * (uint32_t)(d)->qsize)

#define FAR_AWAY 0x1000000000ULL /* 64 GiB: beyond the RAM of any test VM */

struct seg {
	uint64_t addr;
	uint32_t len;
	uint16_t flags; /* D_WRITE: the device writes it */
};

struct req {
	uint32_t type;
	uint64_t sector;
	uint8_t *buf;	 /* data (NULL: none) */
	uint32_t len;	 /* data bytes */
	bool dev_writes; /* IN, GET_ID: the data descriptors are device-writable */
	uint32_t nseg;	 /* data split into this many descriptors (>= 1) */
	bool split_hdr;	 /* header in two descriptors */
	bool indirect;
	/* results */
	uint8_t status;
	uint32_t used_len;
	const char *err; /* transport-level failure: timeout, wrong id */
};

/* What a hostile case expects of the device (vblk.c hostile_complete()). */
enum expect {
	EX_CHAIN,   /* completed with used len 0, status byte untouched */
	EX_RING,    /* DEVICE_NEEDS_RESET (and a configuration-change interrupt) */
	EX_HEADER,  /* completed: IOERR with the status written, or used len 0 */
	EX_ANY,	    /* completed somehow (too many segments: OK or an error) */
	EX_NOTHING, /* nothing to check but survival */
};

extern struct ring rings[MAX_DEVS];
extern struct vdesc ind_huge[IND_HUGE];
extern struct vdev devs[MAX_DEVS];
extern uint32_t ndevs;
extern uint32_t next_vector;

static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

static inline void mfence(void)
{
	__asm__ volatile("mfence" ::: "memory");
}

static inline uint32_t rd(const struct vdev *d, uint32_t off)
{
	return mmio_read32(d->base + off);
}

static inline void wr(const struct vdev *d, uint32_t off, uint32_t v)
{
	mmio_write32(d->base + off, v);
}

static inline volatile uint16_t *avail_at(const struct vdev *d, uint32_t off)
{
	return (volatile uint16_t *)(d->qavail + off);
}

/* Ring addresses as the device sees them. */
static inline uint64_t gpa(const volatile void *p)
{
	return (uint64_t)(uintptr_t)p;
}

uint64_t pat_word(uint64_t sector, uint32_t w, uint64_t salt);
void pat_fill(void *buf, uint64_t sector, uint32_t nsect, uint64_t salt);
bool pat_check(const char *check, const struct vdev *d, const void *buf, uint64_t sector,
	       uint32_t nsect, uint64_t salt);
bool zero_check(const char *check, const struct vdev *d, const void *buf, uint64_t sector,
		uint32_t nsect);
bool dparam(const char *key, uint32_t i, uint64_t *v);
const char *dparam_str(const char *key, uint32_t i, uint32_t *len);
uint64_t param_or(const char *key, uint64_t dflt);
/* The LNRO0005 devices of the DSDT (and virtio_mmio.device=) into devs[]; t.ndev of them. */
bool check_discover(void);
void dev_setup(struct vdev *d, uint32_t i);

uint16_t used_idx(const struct vdev *d);
void used_elem(const struct vdev *d, uint16_t i, uint32_t *id, uint32_t *len);
bool status_reset(struct vdev *d);
uint64_t features_read(const struct vdev *d);
uint32_t cfg32(const struct vdev *d, uint32_t off);
uint64_t cfg64(const struct vdev *d, uint32_t off, bool *stable);
/* Queue 0's parts at these addresses from now on (NULL: the device's own struct ring). */
void ring_place(struct vdev *d, struct vdesc *desc, uint8_t *avail, uint8_t *used);
void ring_clear(struct vdev *d);
void queue_program(struct vdev *d, uint16_t size, uint64_t desc, uint64_t avail, uint64_t used);
const char *dev_init_features(struct vdev *d, uint64_t want);
const char *queue_setup(struct vdev *d);
const char *dev_init_queue(struct vdev *d);
uint64_t blk_wanted(void);
const char *dev_init(struct vdev *d);

uint16_t chain_put(struct vdev *d, uint16_t first, const struct seg *s, uint32_t n,
		   struct vdesc *table);
void avail_add(struct vdev *d, uint16_t head);
void kick(struct vdev *d);
bool used_wait(struct vdev *d, uint32_t *id, uint32_t *len);
void irq_after(struct vdev *d);
struct req mkreq(uint32_t type, uint64_t sector, uint8_t *buf, uint32_t len, bool dev_writes,
		 uint32_t nseg, bool split_hdr, bool indirect);
uint16_t req_post(struct vdev *d, struct req *q, uint32_t k, uint16_t first);
bool req_run(struct vdev *d, struct req *q);
bool blk_read(const char *check, struct vdev *d, uint64_t sector, uint32_t nsect, uint32_t nseg,
	      bool split_hdr, bool indirect);
bool blk_simple(const char *check, struct vdev *d, uint32_t type, uint64_t sector, uint8_t *buf,
		uint32_t len, uint8_t want);
bool dwz_run(const char *c, struct vdev *d, uint32_t type, uint64_t sector, uint32_t n,
	     uint32_t flags, uint8_t want);

/* IOAPIC redirection entries and the local APIC's IRR (interrupts stay disabled). */
void ioapic_write(uint32_t reg, uint32_t v);
bool lapic_irr(uint32_t vector);

/* Hostile-case building blocks (vblk.c): see there. */
bool hostile_recover(struct vdev *d, const char *c);
bool hostile_complete(struct vdev *d, const char *c, uint16_t head, enum expect ex);
bool hostile_needs_reset(struct vdev *d, const char *c, bool early);
uint16_t put_read(struct vdev *d, struct vdesc data);
struct vdesc wdesc(uint64_t addr, uint32_t len);

/* hostile.c: the cases after vblk.c's own, by index; their names. */
#define HOSTILE_OLD 23
void hostile2_case(struct vdev *d, uint32_t n, const char *c);
extern const char *const hostile2_names[];
extern const uint32_t hostile2_count;

#endif
