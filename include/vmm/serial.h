/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 16550A UART register model (COM1 on a PC: 8 ports, IRQ 4).
 *
 * Threads: serial_io() runs on vCPU threads, serial_receive() on the main thread; one mutex per
 * UART serialises them. The irq_sink is called with that mutex held (so level changes reach the
 * VM in the order they were computed); it must not call back into the UART. The rx-ready callback
 * is called WITHOUT the mutex, from a vCPU thread: it must be thread-safe (an eventfd write or
 * g_main_context_wakeup()) and may call serial_receive().
 */
#ifndef VMM_SERIAL_H
#define VMM_SERIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/compiler.h"
#include "vmm/platform.h"

#define SERIAL_PORT_LEN	  8    /* I/O ports taken on the PIO bus */
#define SERIAL_FIFO_SIZE  16   /* 16550A receive FIFO */
#define SERIAL_INBUF_SIZE 4096 /* host-side input buffer behind the RX FIFO */

/*
 * Guest-visible state, plain data so that a snapshot can store it as one versioned blob.
 * Anything host-side (fds, buffered-but-not-yet-received host input, callbacks) is not in it.
 */
struct serial_state {
	uint8_t ier; /* bits 3:0 only, the upper bits read 0 on a 16550A */
	uint8_t lcr;
	uint8_t mcr; /* bits 4:0 */
	uint8_t lsr; /* only the sticky error bits (OE, PE, FE, BI) are stored; DR/THRE/TEMT derived
		      */
	uint8_t msr; /* line bits 7:4 and delta bits 3:0 */
	uint8_t scr;
	uint8_t fcr; /* last value written (bit 0 FIFO enable, bits 7:6 trigger level) */
	uint8_t dll, dlm;
	uint8_t thri_pending; /* THR-empty interrupt pending (cleared by reading IIR while shown) */
	uint8_t irq_level;    /* last level pushed through the irq_sink */
	uint8_t rx_head, rx_count;
	uint8_t rx_fifo[SERIAL_FIFO_SIZE];
};

struct serial;

/*
 * out_fd: where transmitted bytes go (not owned, not closed; -1 discards). Writing is done on
 * the vCPU thread; see serial.c for the bounded wait when the fd cannot take more.
 * The owner of the process must ignore SIGPIPE, or a closed reader kills the VMM.
 */
int serial_create(struct serial **out, const struct irq_sink *irq, unsigned int gsi,
		  int out_fd) WUR;
void serial_destroy(struct serial *s);

/* Bus handler for the 8-port range. */
void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/*
 * Host input (main thread): accepts as many bytes as fit in the host-side buffer and returns
 * that count; the caller keeps the rest. After a short count the rx-ready callback fires once
 * there is room again (at least half the buffer), so the main loop can stop polling stdin while
 * the guest is not reading, without dropping bytes or buffering without bound.
 */
size_t serial_receive(struct serial *s, const uint8_t *buf, size_t len);
size_t serial_rx_space(struct serial *s);
void serial_set_rx_ready_cb(struct serial *s, void (*cb)(void *opaque), void *opaque);

/* Back to power-on state (keeps the fd, the callback and the host input buffer). */
void serial_reset(struct serial *s);

/* Snapshot. set validates everything (the blob is untrusted): -EINVAL if inconsistent. */
void serial_state_get(struct serial *s, struct serial_state *st);
int serial_state_set(struct serial *s, const struct serial_state *st) WUR;

/* Counters for diagnostics. */
struct serial_stats {
	uint64_t tx_bytes;
	uint64_t tx_dropped;  /* output fd stalled or broken */
	uint64_t rx_bytes;    /* delivered to the guest */
	uint64_t rx_overruns; /* loopback bytes lost to a full FIFO */
};
void serial_stats_get(struct serial *s, struct serial_stats *st);

#endif
