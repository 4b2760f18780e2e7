// SPDX-License-Identifier: Apache-2.0
/*
 * CMOS real-time clock, MC146818A register model (Motorola MC146818A datasheet: address map,
 * registers A-D; century byte 0x32 as the PC and the ACPI FADT CENTURY field use it).
 *
 * Time comes from the host wall clock (UTC) at every read, so it never drifts and there is no
 * update cycle: UIP (register A bit 7) always reads 0. No periodic, alarm or update-ended
 * interrupts are modelled (no IRQ 8); register C reads 0.
 *
 * Guest writes to the clock: we keep them, as an offset from host time (as QEMU does), rather
 * than ignoring them. A guest that sets its hardware clock (hwclock --systohc, the kernel's
 * 11-minute NTP sync) then reads back what it wrote, plus elapsed time, and the host clock is
 * never touched. Writes while register B.SET is 1 go to the frozen copy in CMOS RAM and take
 * effect when SET is cleared, which is the sequence the datasheet prescribes; a single field
 * written with SET clear takes effect at once. An impossible date is ignored with a log line.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vmm/device.h"
#include "vmm/devices.h"
#include "vmm/layout.h"
#include "vmm/state.h"

#define REG_SEC	    0x00
#define REG_MIN	    0x02
#define REG_HOUR    0x04
#define REG_WDAY    0x06
#define REG_MDAY    0x07
#define REG_MONTH   0x08
#define REG_YEAR    0x09
#define REG_A	    0x0a
#define REG_B	    0x0b
#define REG_C	    0x0c
#define REG_D	    0x0d
#define REG_CENTURY 0x32

#define A_UIP	0x80
#define B_SET	0x80
#define B_DM	0x04 /* 1: binary, 0: BCD */
#define B_24H	0x02
#define D_VRT	0x80 /* valid RAM and time: the battery is fine */
#define HOUR_PM 0x80

#define INDEX_NMI_MASK 0x80

/* Enough for any date timegm() can express in 4 digits; bounds a snapshot's offset. */
#define RTC_OFFSET_MAX ((int64_t)1 << 40)

struct rtc {
	pthread_mutex_t lock;
	struct rtc_clock clock;
	struct rtc_state st;
	struct dev_ratelimit rl;
};

static const uint8_t rtc_time_regs[] = {REG_SEC,  REG_MIN,   REG_HOUR, REG_WDAY,
					REG_MDAY, REG_MONTH, REG_YEAR, REG_CENTURY};

static bool rtc_is_time_reg(unsigned int reg)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(rtc_time_regs); i++)
		if (rtc_time_regs[i] == reg)
			return true;
	return false;
}

static int64_t rtc_host_now(const struct rtc *r)
{
	struct timespec ts;

	if (r->clock.now)
		return r->clock.now(r->clock.opaque);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static uint8_t rtc_encode(const struct rtc *r, unsigned int v)
{
	if (r->st.cmos[REG_B] & B_DM)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* -1 for a BCD byte with a nibble above 9. */
static int rtc_decode(const struct rtc *r, uint8_t v)
{
	if (r->st.cmos[REG_B] & B_DM)
		return v;
	if ((v >> 4) > 9 || (v & 0xf) > 9)
		return -1;
	return (v >> 4) * 10 + (v & 0xf);
}

/* Register value of one time field for the given UTC time. */
static uint8_t rtc_field(const struct rtc *r, unsigned int reg, const struct tm *tm)
{
	switch (reg) {
	case REG_SEC:
		return rtc_encode(r, (unsigned int)tm->tm_sec % 60); /* no leap second */
	case REG_MIN:
		return rtc_encode(r, (unsigned int)tm->tm_min);
	case REG_HOUR:
		if (r->st.cmos[REG_B] & B_24H)
			return rtc_encode(r, (unsigned int)tm->tm_hour);
		/* 12-hour mode: 12, 1..11 with bit 7 for PM (datasheet table 3). */
		return rtc_encode(r, tm->tm_hour % 12 ? (unsigned int)tm->tm_hour % 12 : 12) |
		       (tm->tm_hour >= 12 ? HOUR_PM : 0);
	case REG_WDAY:
		return rtc_encode(r, (unsigned int)tm->tm_wday + 1); /* Sunday = 1 */
	case REG_MDAY:
		return rtc_encode(r, (unsigned int)tm->tm_mday);
	case REG_MONTH:
		return rtc_encode(r, (unsigned int)tm->tm_mon + 1);
	case REG_YEAR:
		return rtc_encode(r, (unsigned int)(tm->tm_year + 1900) % 100);
	case REG_CENTURY:
		return rtc_encode(r, (unsigned int)(tm->tm_year + 1900) / 100);
	}
	return 0;
}

static void rtc_guest_tm(const struct rtc *r, struct tm *tm)
{
	time_t t = (time_t)(rtc_host_now(r) + r->st.offset);

	gmtime_r(&t, tm);
}

/* Write the current guest time into the time registers of CMOS RAM (lock held). */
static void rtc_freeze(struct rtc *r)
{
	struct tm tm;

	rtc_guest_tm(r, &tm);
	for (unsigned int i = 0; i < ARRAY_SIZE(rtc_time_regs); i++)
		r->st.cmos[rtc_time_regs[i]] = rtc_field(r, rtc_time_regs[i], &tm);
}

/* Turn time registers into seconds since the epoch; -EINVAL for an impossible date. */
static int rtc_regs_to_time(const struct rtc *r, const uint8_t *cmos, int64_t *out)
{
	int sec = rtc_decode(r, cmos[REG_SEC]);
	int min = rtc_decode(r, cmos[REG_MIN]);
	int hour;
	int mday = rtc_decode(r, cmos[REG_MDAY]);
	int mon = rtc_decode(r, cmos[REG_MONTH]);
	int year = rtc_decode(r, cmos[REG_YEAR]);
	int century = rtc_decode(r, cmos[REG_CENTURY]);
	struct tm tm = {0}, check;
	time_t t;

	if (r->st.cmos[REG_B] & B_24H) {
		hour = rtc_decode(r, cmos[REG_HOUR]);
	} else {
		hour = rtc_decode(r, cmos[REG_HOUR] & ~HOUR_PM);
		if (hour < 1 || hour > 12)
			return -EINVAL;
		hour = hour % 12 + ((cmos[REG_HOUR] & HOUR_PM) ? 12 : 0);
	}
	if (sec < 0 || sec > 59 || min < 0 || min > 59 || hour < 0 || hour > 23 || mday < 1 ||
	    mday > 31 || mon < 1 || mon > 12 || year < 0 || year > 99 || century < 0 ||
	    century > 99)
		return -EINVAL;
	tm.tm_sec = sec;
	tm.tm_min = min;
	tm.tm_hour = hour;
	tm.tm_mday = mday;
	tm.tm_mon = mon - 1;
	tm.tm_year = century * 100 + year - 1900;
	t = timegm(&tm);
	/* timegm() normalises 31 February into March: refuse instead. */
	if (!gmtime_r(&t, &check) || check.tm_mday != mday || check.tm_mon != mon - 1)
		return -EINVAL;
	*out = (int64_t)t;
	return 0;
}

/* Guest set the clock to what the time registers in cmos say (lock held). */
static void rtc_apply(struct rtc *r, const uint8_t *cmos)
{
	int64_t t;

	if (rtc_regs_to_time(r, cmos, &t)) {
		dev_log_ratelimited(&r->rl, "rtc: guest wrote an invalid date, ignored");
		return;
	}
	r->st.offset = t - rtc_host_now(r);
}

static uint8_t rtc_read(struct rtc *r, unsigned int reg)
{
	struct tm tm;
	uint8_t v;

	if (rtc_is_time_reg(reg) && !(r->st.cmos[REG_B] & B_SET)) {
		rtc_guest_tm(r, &tm);
		return rtc_field(r, reg, &tm);
	}
	switch (reg) {
	case REG_A:
		return r->st.cmos[REG_A] & ~A_UIP; /* never inside an update cycle */
	case REG_C:
		/* Interrupt flags, cleared by reading; we raise none. */
		v = r->st.cmos[REG_C];
		r->st.cmos[REG_C] = 0;
		return v;
	case REG_D:
		return D_VRT;
	}
	return r->st.cmos[reg];
}

static void rtc_write(struct rtc *r, unsigned int reg, uint8_t v)
{
	uint8_t regs[RTC_CMOS_SIZE];

	if (rtc_is_time_reg(reg)) {
		if (r->st.cmos[REG_B] & B_SET) {
			r->st.cmos[reg] = v;
			return;
		}
		/* One field while the clock runs: the others keep their current value. */
		rtc_freeze(r);
		memcpy(regs, r->st.cmos, sizeof(regs));
		regs[reg] = v;
		rtc_apply(r, regs);
		return;
	}
	switch (reg) {
	case REG_A:
		r->st.cmos[REG_A] = v & ~A_UIP;
		break;
	case REG_B: {
		uint8_t old = r->st.cmos[REG_B];

		/* The new data mode applies both to the frozen copy and to what is decoded. */
		r->st.cmos[REG_B] = v;
		if ((v & B_SET) && !(old & B_SET)) {
			rtc_freeze(r); /* updates stop; the guest now edits this copy */
		} else if (!(v & B_SET) && (old & B_SET)) {
			memcpy(regs, r->st.cmos, sizeof(regs));
			rtc_apply(r, regs);
		}
		break;
	}
	case REG_C:
	case REG_D:
		break; /* read-only */
	default:
		r->st.cmos[reg] = v;
		break;
	}
}

void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	/* A 16-bit access (outw 0x70: index in AL, data in AH) is two byte cycles on ISA. */
	for (uint32_t i = 0; i < len; i++) {
		uint64_t off = offset + i;

		if (off == 0) {
			/* Bit 7 of the index masks NMI on a PC; we have no NMI source to mask. */
			if (is_write)
				r->st.index = data[i] & ~INDEX_NMI_MASK;
			else
				data[i] = 0xff; /* write-only on a PC */
		} else if (off == 1) {
			if (is_write)
				rtc_write(r, r->st.index, data[i]);
			else
				data[i] = rtc_read(r, r->st.index);
		} else if (!is_write) {
			data[i] = 0xff;
		}
	}
	pthread_mutex_unlock(&r->lock);
}

int rtc_create(struct rtc **out, const struct rtc_clock *clock)
{
	struct rtc *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = -pthread_mutex_init(&r->lock, NULL);
	if (ret) {
		free(r);
		return ret;
	}
	if (clock)
		r->clock = *clock;
	r->st.cmos[REG_A] = 0x26;  /* 32.768 kHz time base, 1024 Hz rate: what a PC BIOS sets */
	r->st.cmos[REG_B] = B_24H; /* 24-hour, BCD */
	r->st.cmos[REG_D] = D_VRT;
	*out = r;
	return 0;
}

void rtc_destroy(struct rtc *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

void rtc_state_get(struct rtc *r, struct rtc_state *st)
{
	pthread_mutex_lock(&r->lock);
	*st = r->st;
	pthread_mutex_unlock(&r->lock);
}

int rtc_state_set(struct rtc *r, const struct rtc_state *st)
{
	if (st->index >= RTC_CMOS_SIZE || st->offset > RTC_OFFSET_MAX ||
	    st->offset < -RTC_OFFSET_MAX)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	r->st = *st;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* ---- the device interface ---- */

static int rtc_realize(struct device *d, const struct device_host *h, unsigned int idx,
		       char *err, size_t errlen)
{
	struct rtc *p;
	int r;

	snprintf(d->id, sizeof(d->id), "rtc");
	if ((r = rtc_create(&p, NULL)) < 0)
		goto fail;
	d->priv = p;
	if ((r = bus_register(h->pio, PORT_CMOS, RTC_PORT_LEN, rtc_io, p, "rtc")) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "CMOS RTC: %s", strerror(-r));
	return r;
}

static void rtc_unrealize(struct device *d)
{
	rtc_destroy(d->priv);
	d->priv = NULL;
}

static int rtc_dev_save(struct device *d, struct dev_state_writer *w)
{
	struct rtc_state st;

	rtc_state_get(d->priv, &st);
	dev_state_put(w, "rtc-state", &st, sizeof(st));
	return 0;
}

static int rtc_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			size_t errlen)
{
	struct rtc_state st;

	if (dev_state_get(r, "rtc-state", &st, sizeof(st)) < 0 || rtc_state_set(d->priv, &st) < 0) {
		snprintf(err, errlen, "CMOS RTC: its state is missing or inconsistent");
		return -EINVAL;
	}
	return 0;
}

static bool rtc_describe(struct device *d, struct acpi_dev_desc *out)
{
	acpi_desc_rtc(out, PORT_CMOS);
	return true;
}

const struct device_ops rtc_device_ops = {
	.kind = "rtc",
	.realize = rtc_realize,
	.unrealize = rtc_unrealize,
	.save = rtc_dev_save,
	.load = rtc_dev_load,
	.describe = rtc_describe,
};
