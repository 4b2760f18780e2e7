// SPDX-License-Identifier: Apache-2.0
/*
 * 16550A UART. References: TI/National PC16550D datasheet (register descriptions, §8), and what
 * Linux's drivers/tty/serial/8250/8250_port.c expects of it:
 *
 * - autoconfig() checks that IER bits 7:4 read 0, that loopback maps MCR to MSR
 *   (RTS|OUT2 -> CTS|DCD = 0x90), and that IIR bits 7:6 read 11 once FCR enabled the FIFOs
 *   (and bit 5 reads 0: no 64-byte FIFO, so it stays a 16550A and not a 16750).
 * - serial8250_do_startup() sets IER.ETBEI, reads IIR, clears IER, sets ETBEI again and reads
 *   IIR again: a UART that does not re-assert THRE on the second 0->1 edge gets UART_BUG_THRE,
 *   and then the kernel drives transmission from a backup timer instead of interrupts, which is
 *   where other VMMs lost seconds per boot. Hence the THRE model below: transmission is
 *   instantaneous, so THR is always empty again right after a write; the THRE interrupt is
 *   pending after every THR write and every ETBEI 0->1 edge, and an IIR read that reports it
 *   acknowledges it.
 *
 * IRQ line and OUT2: on a PC the UART's INTR pin reaches the PIC through a buffer gated by MCR
 * OUT2. We do not gate (as QEMU and Firecracker): Linux sets OUT2 whenever it uses the IRQ and
 * clears IER when it stops, so gating changes nothing for it, while a guest that forgets OUT2
 * would just lose its console interrupts. Interrupts stay operational in loopback mode, as the
 * datasheet says for the diagnostic mode.
 *
 * The line level is recomputed after every access and pushed only when it changes. ISA IRQs are
 * edge-triggered at the IOAPIC, so the level transitions are the edges the guest sees.
 *
 * Receive timing: with no baud clock, a character never waits for the 4-character timeout. Data
 * below the FIFO trigger level is reported at once as a character timeout (IIR 0x0c), data at or
 * above it as "received data available" (0x04); Linux treats both alike.
 *
 * Output: each byte written to THR goes to out_fd on the vCPU thread, under the UART lock so
 * bytes from several vCPUs keep their order. A fd that cannot take more (full pipe, stopped
 * terminal) gets a bounded wait (SERIAL_TX_WAIT_MS); after that the UART counts the output as
 * stalled and drops bytes without waiting until the fd accepts one again. The guest is never
 * stopped for more than that budget, and a reader that went away costs nothing per byte.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vmm/device.h"
#include "vmm/devices.h"
#include "vmm/layout.h"
#include "vmm/serial.h"
#include "vmm/state.h"

/* Register offsets (DLAB=0 / DLAB=1). */
#define UART_RBR_THR 0 /* DLL with DLAB */
#define UART_IER     1 /* DLM with DLAB */
#define UART_IIR_FCR 2
#define UART_LCR     3
#define UART_MCR     4
#define UART_LSR     5
#define UART_MSR     6
#define UART_SCR     7

#define IER_ERBFI 0x01 /* received data available */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI  0x04 /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_MASK  0x0f

#define IIR_NO_INT     0x01
#define IIR_MSI	       0x00
#define IIR_THRI       0x02
#define IIR_RDI	       0x04
#define IIR_RLSI       0x06
#define IIR_CTI	       0x0c /* character timeout */
#define IIR_FIFO_16550 0xc0

#define FCR_ENABLE	0x01
#define FCR_CLEAR_RCVR	0x02
#define FCR_CLEAR_XMIT	0x04
#define FCR_DMA_SELECT	0x08
#define FCR_TRIGGER	0xc0
#define FCR_STORED_MASK (FCR_ENABLE | FCR_DMA_SELECT | FCR_TRIGGER)

#define LCR_DLAB 0x80

#define MCR_DTR	 0x01
#define MCR_RTS	 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR	     0x01
#define LSR_OE	     0x02
#define LSR_PE	     0x04
#define LSR_FE	     0x08
#define LSR_BI	     0x10
#define LSR_THRE     0x20
#define LSR_TEMT     0x40
#define LSR_ERR_MASK (LSR_OE | LSR_PE | LSR_FE | LSR_BI)

#define MSR_DCTS  0x01
#define MSR_DDSR  0x02
#define MSR_TERI  0x04
#define MSR_DDCD  0x08
#define MSR_CTS	  0x10
#define MSR_DSR	  0x20
#define MSR_RI	  0x40
#define MSR_DCD	  0x80
#define MSR_DELTA 0x0f
#define MSR_LINES 0xf0

/* What the host side "modem" asserts outside loopback: a connected null-modem cable. */
#define MSR_HOST_LINES (MSR_DCD | MSR_DSR | MSR_CTS)

/* Budget for one byte when the output fd is full before we call the output stalled. */
#define SERIAL_TX_WAIT_MS 100

struct serial {
	pthread_mutex_t lock;
	struct serial_state st;

	struct irq_sink irq;
	unsigned int gsi;

	int out_fd;
	bool out_poll; /* not a regular file: poll before writing so write() never blocks long */
	bool tx_stalled;
	bool tx_broken;

	/* Host input not yet in the RX FIFO: a ring the main thread fills. */
	uint8_t in_buf[SERIAL_INBUF_SIZE];
	size_t in_head;
	size_t in_count;
	bool in_blocked; /* serial_receive came up short: call rx_ready_cb when there is room */
	void (*rx_ready_cb)(void *opaque);
	void *rx_ready_opaque;

	struct serial_stats stats;
	struct dev_ratelimit rl;
};

/* ---- RX FIFO (lock held) ---- */

static unsigned int serial_rx_capacity(const struct serial *s)
{
	/* Without FIFOs the receiver holds one character in RBR. */
	return (s->st.fcr & FCR_ENABLE) ? SERIAL_FIFO_SIZE : 1;
}

static bool serial_rx_push(struct serial *s, uint8_t b)
{
	struct serial_state *st = &s->st;

	if (st->rx_count >= serial_rx_capacity(s))
		return false;
	st->rx_fifo[(st->rx_head + st->rx_count) % SERIAL_FIFO_SIZE] = b;
	st->rx_count++;
	return true;
}

static uint8_t serial_rx_pop(struct serial *s)
{
	struct serial_state *st = &s->st;
	uint8_t b = st->rx_fifo[st->rx_head];

	st->rx_head = (st->rx_head + 1) % SERIAL_FIFO_SIZE;
	st->rx_count--;
	return b;
}

static void serial_rx_clear(struct serial *s)
{
	s->st.rx_head = 0;
	s->st.rx_count = 0;
}

/* Move host input into the FIFO. In loopback the receiver is cut off from the outside line. */
static void serial_rx_refill(struct serial *s)
{
	if (s->st.mcr & MCR_LOOP)
		return;
	while (s->in_count) {
		if (!serial_rx_push(s, s->in_buf[s->in_head]))
			break;
		s->in_head = (s->in_head + 1) % SERIAL_INBUF_SIZE;
		s->in_count--;
	}
}

static unsigned int serial_rx_trigger(const struct serial *s)
{
	static const unsigned int level[4] = {1, 4, 8, 14};

	return level[(s->st.fcr & FCR_TRIGGER) >> 6];
}

/* ---- modem lines (lock held) ---- */

static uint8_t serial_msr_lines(const struct serial *s)
{
	uint8_t mcr = s->st.mcr;

	if (!(mcr & MCR_LOOP))
		return MSR_HOST_LINES;
	/* Loopback (datasheet, MCR bit 4): DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
	return ((mcr & MCR_DTR) ? MSR_DSR : 0) | ((mcr & MCR_RTS) ? MSR_CTS : 0) |
	       ((mcr & MCR_OUT1) ? MSR_RI : 0) | ((mcr & MCR_OUT2) ? MSR_DCD : 0);
}

static void serial_msr_update(struct serial *s)
{
	uint8_t old = s->st.msr & MSR_LINES;
	uint8_t now = serial_msr_lines(s);
	uint8_t changed = old ^ now;
	uint8_t delta = s->st.msr & MSR_DELTA;

	if (changed & MSR_CTS)
		delta |= MSR_DCTS;
	if (changed & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI)) /* trailing edge only */
		delta |= MSR_TERI;
	if (changed & MSR_DCD)
		delta |= MSR_DDCD;
	s->st.msr = now | delta;
}

/* ---- interrupts (lock held) ---- */

static uint8_t serial_lsr(const struct serial *s)
{
	/* Transmission is instantaneous: THR and the shift register are always empty. */
	uint8_t lsr = LSR_THRE | LSR_TEMT | (s->st.lsr & LSR_ERR_MASK);

	if (s->st.rx_count)
		lsr |= LSR_DR;
	return lsr;
}

/* Highest-priority pending interrupt, IIR bits 3:0 (datasheet table 4). */
static uint8_t serial_iir_id(const struct serial *s)
{
	const struct serial_state *st = &s->st;

	if ((st->ier & IER_ELSI) && (st->lsr & LSR_ERR_MASK))
		return IIR_RLSI;
	if ((st->ier & IER_ERBFI) && st->rx_count) {
		if ((st->fcr & FCR_ENABLE) && st->rx_count < serial_rx_trigger(s))
			return IIR_CTI;
		return IIR_RDI;
	}
	if ((st->ier & IER_ETBEI) && st->thri_pending)
		return IIR_THRI;
	if ((st->ier & IER_EDSSI) && (st->msr & MSR_DELTA))
		return IIR_MSI;
	return IIR_NO_INT;
}

static void serial_irq_update(struct serial *s)
{
	uint8_t level = serial_iir_id(s) != IIR_NO_INT;

	if (level != s->st.irq_level) {
		s->st.irq_level = level;
		irq_set_level(&s->irq, s->gsi, level);
	}
}

/* ---- output ---- */

static int serial_tx_wait(struct serial *s, int timeout_ms)
{
	struct pollfd pfd = {.fd = s->out_fd, .events = POLLOUT};
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		int r = poll(&pfd, 1, timeout_ms);

		if (r > 0)
			return 0; /* writable, or an error that write() will report */
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t spent = (now.tv_sec - start.tv_sec) * 1000 +
				(now.tv_nsec - start.tv_nsec) / 1000000;
		if (spent >= timeout_ms)
			return -ETIMEDOUT;
		timeout_ms -= (int)spent;
		start = now;
	}
}

static void serial_tx_byte(struct serial *s, uint8_t b)
{
	int budget = s->tx_stalled ? 0 : SERIAL_TX_WAIT_MS;

	if (s->out_fd < 0 || s->tx_broken) {
		s->stats.tx_dropped++;
		return;
	}
	/* A few attempts: poll() may call the fd writable and another writer fills it first. */
	for (int attempt = 0; attempt < 3;) {
		if (s->out_poll && serial_tx_wait(s, budget) == -ETIMEDOUT)
			break;
		ssize_t n = write(s->out_fd, &b, 1);
		if (n == 1) {
			s->stats.tx_bytes++;
			if (s->tx_stalled) {
				s->tx_stalled = false;
				dev_log_ratelimited(
					&s->rl,
					"serial: output resumed (%llu bytes dropped so far)",
					(unsigned long long)s->stats.tx_dropped);
			}
			return;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			attempt++;
			if (!s->out_poll && serial_tx_wait(s, budget) == -ETIMEDOUT)
				break;
			continue;
		}
		s->tx_broken = true;
		s->stats.tx_dropped++;
		dev_log_ratelimited(&s->rl,
				    "serial: output fd failed (%s), discarding guest output",
				    n < 0 ? strerror(errno) : "short write");
		return;
	}
	s->stats.tx_dropped++;
	if (!s->tx_stalled) {
		s->tx_stalled = true;
		dev_log_ratelimited(&s->rl,
				    "serial: output fd not draining, dropping guest output");
	}
}

/* ---- registers (lock held) ---- */

static void serial_thr_write(struct serial *s, uint8_t b)
{
	if (s->st.mcr & MCR_LOOP) {
		/* Loopback: the transmitter feeds the receiver; a full FIFO is an overrun. */
		if (!serial_rx_push(s, b)) {
			s->st.lsr |= LSR_OE;
			s->stats.rx_overruns++;
		}
	} else {
		serial_tx_byte(s, b);
	}
	/* The character left at once, THR is empty again: that is a new THRE interrupt. */
	s->st.thri_pending = 1;
}

static void serial_fcr_write(struct serial *s, uint8_t v)
{
	/* Toggling FIFO enable clears both FIFOs (datasheet FCR bit 0). */
	if ((v ^ s->st.fcr) & FCR_ENABLE)
		serial_rx_clear(s);
	/* The other bits are only programmed while bit 0 is written as 1. */
	if (!(v & FCR_ENABLE)) {
		s->st.fcr = 0;
		return;
	}
	if (v & FCR_CLEAR_RCVR)
		serial_rx_clear(s);
	/* FCR_CLEAR_XMIT: the transmit FIFO is always empty. */
	s->st.fcr = v & FCR_STORED_MASK;
}

static uint8_t serial_reg_read(struct serial *s, unsigned int off)
{
	struct serial_state *st = &s->st;
	bool dlab = st->lcr & LCR_DLAB;
	uint8_t v = 0;

	switch (off) {
	case UART_RBR_THR:
		if (dlab) {
			v = st->dll;
		} else if (st->rx_count) {
			v = serial_rx_pop(s);
			s->stats.rx_bytes++;
		}
		break;
	case UART_IER:
		v = dlab ? st->dlm : st->ier;
		break;
	case UART_IIR_FCR:
		v = serial_iir_id(s);
		/* Reading IIR while it shows THRE acknowledges that interrupt (datasheet table 4).
		 */
		if (v == IIR_THRI)
			st->thri_pending = 0;
		if (st->fcr & FCR_ENABLE)
			v |= IIR_FIFO_16550;
		break;
	case UART_LCR:
		v = st->lcr;
		break;
	case UART_MCR:
		v = st->mcr;
		break;
	case UART_LSR:
		v = serial_lsr(s);
		st->lsr &= ~LSR_ERR_MASK;
		break;
	case UART_MSR:
		v = st->msr;
		st->msr &= ~MSR_DELTA;
		break;
	case UART_SCR:
		v = st->scr;
		break;
	}
	return v;
}

static void serial_reg_write(struct serial *s, unsigned int off, uint8_t v)
{
	struct serial_state *st = &s->st;
	bool dlab = st->lcr & LCR_DLAB;

	switch (off) {
	case UART_RBR_THR:
		if (dlab)
			st->dll = v;
		else
			serial_thr_write(s, v);
		break;
	case UART_IER:
		if (dlab) {
			st->dlm = v;
		} else {
			v &= IER_MASK;
			/* THR is always empty, so enabling ETBEI is itself a THRE interrupt. */
			if ((v & IER_ETBEI) && !(st->ier & IER_ETBEI))
				st->thri_pending = 1;
			st->ier = v;
		}
		break;
	case UART_IIR_FCR:
		serial_fcr_write(s, v);
		break;
	case UART_LCR:
		st->lcr = v;
		break;
	case UART_MCR:
		st->mcr = v & MCR_MASK;
		serial_msr_update(s);
		break;
	case UART_LSR:
	case UART_MSR:
		/* Factory-test writes on real parts; ignored. */
		break;
	case UART_SCR:
		st->scr = v;
		break;
	}
}

/* After every access: move host input in, recompute the IRQ, see whether the host may send. */
static bool serial_settle(struct serial *s)
{
	serial_rx_refill(s);
	serial_irq_update(s);
	if (s->in_blocked && SERIAL_INBUF_SIZE - s->in_count >= SERIAL_INBUF_SIZE / 2) {
		s->in_blocked = false;
		return s->rx_ready_cb != NULL;
	}
	return false;
}

static void serial_unlock_notify(struct serial *s, bool notify)
{
	void (*cb)(void *) = s->rx_ready_cb;
	void *opaque = s->rx_ready_opaque;

	pthread_mutex_unlock(&s->lock);
	/* Outside the lock: the callback may come straight back with serial_receive(). */
	if (notify && cb)
		cb(opaque);
}

void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;
	bool notify;

	pthread_mutex_lock(&s->lock);
	/* Wider accesses are split into byte cycles, as the ISA bus does for an 8-bit device. */
	for (uint32_t i = 0; i < len; i++) {
		uint64_t off = offset + i;

		if (off >= SERIAL_PORT_LEN || off < offset) {
			if (!is_write)
				data[i] = 0xff;
			continue;
		}
		if (is_write)
			serial_reg_write(s, (unsigned int)off, data[i]);
		else
			data[i] = serial_reg_read(s, (unsigned int)off);
	}
	notify = serial_settle(s);
	serial_unlock_notify(s, notify);
}

size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t done = 0;

	pthread_mutex_lock(&s->lock);
	/* Fill the ring, let the FIFO take what it can, and again: the FIFO frees ring space. */
	while (done < len) {
		size_t n = MIN(len - done, SERIAL_INBUF_SIZE - s->in_count);
		size_t tail = (s->in_head + s->in_count) % SERIAL_INBUF_SIZE;
		size_t first = MIN(n, SERIAL_INBUF_SIZE - tail);

		if (n == 0)
			break;
		memcpy(&s->in_buf[tail], buf + done, first);
		memcpy(s->in_buf, buf + done + first, n - first);
		s->in_count += n;
		done += n;
		serial_rx_refill(s);
	}
	/* Record the shortfall in the same critical section, so the wakeup cannot be missed. */
	if (done < len)
		s->in_blocked = true;
	serial_irq_update(s);
	pthread_mutex_unlock(&s->lock);
	return done;
}

size_t serial_rx_space(struct serial *s)
{
	size_t space;

	pthread_mutex_lock(&s->lock);
	space = SERIAL_INBUF_SIZE - s->in_count;
	pthread_mutex_unlock(&s->lock);
	return space;
}

void serial_set_rx_ready_cb(struct serial *s, void (*cb)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&s->lock);
	s->rx_ready_cb = cb;
	s->rx_ready_opaque = opaque;
	pthread_mutex_unlock(&s->lock);
}

static void serial_reset_locked(struct serial *s)
{
	struct serial_state *st = &s->st;
	uint8_t irq_level = st->irq_level;

	memset(st, 0, sizeof(*st));
	st->irq_level = irq_level; /* what the sink last saw, so the update below is exact */
	st->dll = 12;		   /* 9600 baud with the PC's 1.8432 MHz clock */
	st->msr = serial_msr_lines(s);
	serial_rx_refill(s);
	serial_irq_update(s);
}

void serial_reset(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	serial_reset_locked(s);
	pthread_mutex_unlock(&s->lock);
}

int serial_create(struct serial **out, const struct irq_sink *irq, unsigned int gsi, int out_fd)
{
	struct serial *s;
	struct stat sb;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	r = -pthread_mutex_init(&s->lock, NULL);
	if (r)
		goto err_free;
	if (irq)
		s->irq = *irq;
	s->gsi = gsi;
	s->out_fd = out_fd;
	/* Regular files are always writable; everything else may fill up and block. */
	s->out_poll = out_fd >= 0 && !(fstat(out_fd, &sb) == 0 && S_ISREG(sb.st_mode));
	serial_reset_locked(s);
	*out = s;
	return 0;

err_free:
	free(s);
	return r;
}

void serial_destroy(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void serial_state_get(struct serial *s, struct serial_state *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->st;
	pthread_mutex_unlock(&s->lock);
}

int serial_state_set(struct serial *s, const struct serial_state *st)
{
	unsigned int cap = (st->fcr & FCR_ENABLE) ? SERIAL_FIFO_SIZE : 1;

	/* A snapshot file is untrusted: reject what a 16550A could never hold. */
	if ((st->ier & ~IER_MASK) || (st->mcr & ~MCR_MASK) || (st->lsr & ~LSR_ERR_MASK) ||
	    (st->fcr & ~FCR_STORED_MASK) || st->thri_pending > 1 || st->irq_level > 1 ||
	    st->rx_head >= SERIAL_FIFO_SIZE || st->rx_count > cap)
		return -EINVAL;

	pthread_mutex_lock(&s->lock);
	s->st = *st;
	/* The restored VM's interrupt controller starts from scratch: push the level once. */
	s->st.irq_level = serial_iir_id(s) != IIR_NO_INT;
	irq_set_level(&s->irq, s->gsi, s->st.irq_level);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void serial_stats_get(struct serial *s, struct serial_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->stats;
	pthread_mutex_unlock(&s->lock);
}

/* ---- the device interface: COM1 ---- */

static int serial_realize(struct device *d, const struct device_host *h, unsigned int idx,
			  char *err, size_t errlen)
{
	struct serial *s;
	int r;

	snprintf(d->id, sizeof(d->id), "com1");
	if ((r = serial_create(&s, &h->irq, IRQ_COM1, h->cfg->console_out)) < 0)
		goto fail;
	d->priv = s;
	if ((r = bus_register(h->pio, PORT_COM1, SERIAL_PORT_LEN, serial_io, s, "com1")) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "serial port com1: %s", strerror(-r));
	return r;
}

static void serial_unrealize(struct device *d)
{
	/* The bus goes with the machine; the ranges of a failed realize never matter. */
	serial_destroy(d->priv);
	d->priv = NULL;
}

static void serial_dev_reset(struct device *d)
{
	serial_reset(d->priv);
}

static int serial_dev_save(struct device *d, struct dev_state_writer *w)
{
	struct serial_state st;

	serial_state_get(d->priv, &st);
	dev_state_put(w, "serial-state", &st, sizeof(st));
	return 0;
}

static int serial_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			   size_t errlen)
{
	struct serial_state st;

	if (dev_state_get(r, "serial-state", &st, sizeof(st)) < 0 ||
	    serial_state_set(d->priv, &st) < 0) {
		snprintf(err, errlen, "serial port com1: its state is missing or inconsistent");
		return -EINVAL;
	}
	return 0;
}

static bool serial_describe(struct device *d, struct acpi_dev_desc *out)
{
	acpi_desc_uart(out, "COM1", 0, PORT_COM1, IRQ_COM1);
	return true;
}

static void serial_dev_stats(struct device *d, char *buf, size_t len)
{
	struct serial_stats st;

	serial_stats_get(d->priv, &st);
	snprintf(buf, len, "tx_bytes=%llu tx_dropped=%llu rx_bytes=%llu rx_overruns=%llu",
		 (unsigned long long)st.tx_bytes, (unsigned long long)st.tx_dropped,
		 (unsigned long long)st.rx_bytes, (unsigned long long)st.rx_overruns);
}

const struct device_ops serial_device_ops = {
	.kind = "serial",
	.realize = serial_realize,
	.unrealize = serial_unrealize,
	.reset = serial_dev_reset,
	.save = serial_dev_save,
	.load = serial_dev_load,
	.describe = serial_describe,
	.stats = serial_dev_stats,
};
