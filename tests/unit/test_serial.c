// SPDX-License-Identifier: Apache-2.0
/* 16550A register model: what Linux's 8250 driver relies on, without KVM. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/serial.h"

#define RBR 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

struct fake_irq {
	int level;
	unsigned int gsi;
	int changes; /* calls to set_level */
};

static void fake_set_level(void *opaque, unsigned int gsi, int level)
{
	struct fake_irq *f = opaque;

	f->gsi = gsi;
	f->level = level;
	f->changes++;
}

struct fixture {
	struct fake_irq irq;
	struct irq_sink sink;
	struct serial *s;
	int pipe_fd[2];
	int ready_calls;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(pipe2(f->pipe_fd, O_CLOEXEC | O_NONBLOCK), 0);
	f->sink = (struct irq_sink){.set_level = fake_set_level, .opaque = &f->irq};
	assert_int_equal(serial_create(&f->s, &f->sink, IRQ_COM1, f->pipe_fd[1]), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	serial_destroy(f->s);
	close(f->pipe_fd[0]);
	close(f->pipe_fd[1]);
	free(f);
	return 0;
}

static uint8_t rd(struct fixture *f, unsigned int off)
{
	uint8_t v = 0;

	serial_io(f->s, off, &v, 1, false);
	return v;
}

static void wr(struct fixture *f, unsigned int off, uint8_t v)
{
	serial_io(f->s, off, &v, 1, true);
}

static void test_reset_values(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(rd(f, IER), 0);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(rd(f, LSR), 0x60);
	assert_int_equal(f->irq.changes, 0);
}

static void test_thre_temt_after_writes(void **state)
{
	struct fixture *f = *state;

	for (int i = 0; i < 100; i++) {
		wr(f, RBR, 'a');
		assert_int_equal(rd(f, LSR) & 0x60, 0x60);
	}
}

static void test_output_reaches_fd(void **state)
{
	struct fixture *f = *state;
	const char *msg = "hello, world\n";
	char buf[64] = {0};

	for (const char *p = msg; *p; p++)
		wr(f, RBR, (uint8_t)*p);
	assert_int_equal(read(f->pipe_fd[0], buf, sizeof(buf)), (ssize_t)strlen(msg));
	assert_string_equal(buf, msg);
}

static void test_output_full_pipe_does_not_hang(void **state)
{
	struct fixture *f = *state;
	struct serial_stats st;
	uint8_t junk[4096];

	/* Fill the pipe, then the UART must drop rather than wait forever. */
	memset(junk, 'x', sizeof(junk));
	while (write(f->pipe_fd[1], junk, sizeof(junk)) > 0)
		;
	for (int i = 0; i < 50; i++)
		wr(f, RBR, 'z');
	serial_stats_get(f->s, &st);
	assert_int_equal(st.tx_dropped, 50);
	assert_int_equal(rd(f, LSR) & 0x60, 0x60);
	/* Drain: output resumes. */
	while (read(f->pipe_fd[0], junk, sizeof(junk)) > 0)
		;
	wr(f, RBR, 'q');
	serial_stats_get(f->s, &st);
	assert_int_equal(st.tx_bytes, 1);
	assert_int_equal(read(f->pipe_fd[0], junk, 1), 1);
	assert_int_equal(junk[0], 'q');
}

/* serial8250_do_startup's THRE test: both 0->1 edges must show THRI in IIR. */
static void test_thri_on_etbei_edge(void **state)
{
	struct fixture *f = *state;

	wr(f, IER, 0x02);
	assert_int_equal(f->irq.level, 1);
	assert_int_equal(f->irq.gsi, IRQ_COM1);
	assert_int_equal(rd(f, IIR), 0x02);
	/* Acknowledged by the read. */
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(f->irq.level, 0);
	wr(f, IER, 0);
	wr(f, IER, 0x02);
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(rd(f, IIR), 0x01);
	/* Rewriting ETBEI without an edge is no new interrupt. */
	wr(f, IER, 0x02);
	assert_int_equal(rd(f, IIR), 0x01);
	/* A THR write makes THR empty again at once: THRI pending again. */
	wr(f, RBR, 'x');
	assert_int_equal(f->irq.level, 1);
	assert_int_equal(rd(f, IIR), 0x02);
	assert_int_equal(f->irq.level, 0);
}

static void test_rx_fifo_fill_drain(void **state)
{
	struct fixture *f = *state;
	uint8_t in[20];

	for (unsigned int i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)('A' + i);
	wr(f, FCR, 0x07); /* FIFO on, trigger 1 */
	assert_int_equal(rd(f, IIR), 0xc1);
	wr(f, IER, 0x01);
	assert_int_equal(f->irq.level, 0);
	assert_int_equal(serial_receive(f->s, in, sizeof(in)), sizeof(in));
	assert_int_equal(f->irq.level, 1);
	assert_int_equal(rd(f, LSR) & 0x01, 0x01);
	assert_int_equal(rd(f, IIR), 0xc4);
	for (unsigned int i = 0; i < sizeof(in); i++) {
		assert_int_equal(rd(f, LSR) & 0x01, 1);
		assert_int_equal(rd(f, RBR), in[i]);
	}
	assert_int_equal(rd(f, LSR) & 0x01, 0);
	assert_int_equal(rd(f, IIR), 0xc1);
	assert_int_equal(f->irq.level, 0);
}

static void test_rx_trigger_and_timeout(void **state)
{
	struct fixture *f = *state;
	uint8_t in[8] = "abcdefgh";

	wr(f, FCR, 0x81); /* trigger level 8 */
	wr(f, IER, 0x01);
	assert_int_equal(serial_receive(f->s, in, 3), 3);
	assert_int_equal(rd(f, IIR), 0xcc); /* below trigger: character timeout */
	assert_int_equal(serial_receive(f->s, in + 3, 5), 5);
	assert_int_equal(rd(f, IIR), 0xc4);
}

static void test_rx_without_fifo(void **state)
{
	struct fixture *f = *state;
	uint8_t in[3] = {1, 2, 3};

	assert_int_equal(serial_receive(f->s, in, 3), 3);
	assert_int_equal(rd(f, LSR) & 1, 1);
	assert_int_equal(rd(f, RBR), 1);
	assert_int_equal(rd(f, RBR), 2);
	assert_int_equal(rd(f, RBR), 3);
	assert_int_equal(rd(f, LSR) & 1, 0);
}

static void ready_cb(void *opaque)
{
	struct fixture *f = opaque;

	f->ready_calls++;
}

static void test_host_buffer_backpressure(void **state)
{
	struct fixture *f = *state;
	size_t total = SERIAL_INBUF_SIZE + 100;
	uint8_t *in = malloc(total);
	size_t n, got = 0;

	assert_non_null(in);
	for (size_t i = 0; i < total; i++)
		in[i] = (uint8_t)(i * 7);
	serial_set_rx_ready_cb(f->s, ready_cb, f);
	wr(f, FCR, 0x01);
	n = serial_receive(f->s, in, total);
	/* Host buffer plus the 16-byte FIFO take it, the rest is left to the caller. */
	assert_true(n < total);
	assert_int_equal(n, SERIAL_INBUF_SIZE + 16);
	assert_int_equal(serial_receive(f->s, in + n, total - n), 0);
	assert_int_equal(serial_rx_space(f->s), 0);
	/* The guest drains; the callback fires once, when half the buffer is free. */
	while (got < SERIAL_INBUF_SIZE / 2 + 16) {
		assert_int_equal(rd(f, RBR), in[got]);
		got++;
	}
	assert_int_equal(f->ready_calls, 1);
	n += serial_receive(f->s, in + n, total - n);
	assert_int_equal(n, total);
	while (rd(f, LSR) & 1) {
		assert_int_equal(rd(f, RBR), in[got]);
		got++;
	}
	assert_int_equal(got, total); /* nothing dropped, in order */
	assert_int_equal(f->ready_calls, 1);
	free(in);
}

static void test_loopback(void **state)
{
	struct fixture *f = *state;
	uint8_t host = 'h';

	/* Linux autoconfig: MCR = LOOP | OUT2 | RTS must read MSR lines DCD | CTS. */
	wr(f, MCR, 0x10 | 0x0a);
	assert_int_equal(rd(f, MSR) & 0xf0, 0x90);
	wr(f, MCR, 0x10 | 0x05); /* DTR | OUT1 */
	assert_int_equal(rd(f, MSR) & 0xf0, 0x60);
	wr(f, MCR, 0x10 | 0x0f);
	assert_int_equal(rd(f, MSR) & 0xf0, 0xf0);
	/* Deltas: all lines dropped; RI 1->0 is a trailing edge. */
	wr(f, MCR, 0x10);
	assert_int_equal(rd(f, MSR), 0x0f);
	assert_int_equal(rd(f, MSR), 0x00);

	/* THR loops into RBR and does not reach the output fd; host input waits. */
	assert_int_equal(serial_receive(f->s, &host, 1), 1);
	assert_int_equal(rd(f, LSR) & 1, 0);
	wr(f, RBR, 0x5a);
	assert_int_equal(rd(f, LSR) & 1, 1);
	assert_int_equal(rd(f, RBR), 0x5a);
	wr(f, RBR, 1);
	wr(f, RBR, 2); /* no FIFO: overrun */
	assert_int_equal(rd(f, LSR) & 0x03, 0x03);
	assert_int_equal(rd(f, LSR) & 0x02, 0);
	assert_int_equal(rd(f, RBR), 1);
	uint8_t c;
	assert_int_equal(read(f->pipe_fd[0], &c, 1), -1);

	/* Leaving loopback reconnects the host line. */
	wr(f, MCR, 0x0b);
	assert_int_equal(rd(f, MSR) & 0xf0, 0xb0);
	assert_int_equal(rd(f, RBR), 'h');
}

static void test_line_status_priority(void **state)
{
	struct fixture *f = *state;

	wr(f, MCR, 0x10);
	wr(f, IER, 0x0f);
	/* THRI pending from the ETBEI edge; MSR deltas too. Overrun beats all. */
	wr(f, RBR, 1);
	wr(f, RBR, 2);
	assert_int_equal(rd(f, IIR), 0x06);
	assert_int_equal(rd(f, LSR) & 0x02, 0x02); /* clears OE */
	assert_int_equal(rd(f, IIR), 0x04);	   /* then data */
	rd(f, RBR);
	assert_int_equal(rd(f, IIR), 0x02); /* then THRE, acknowledged by this read */
	wr(f, MCR, 0x12);		    /* RTS -> CTS: modem status change */
	assert_int_equal(rd(f, IIR), 0x00);
	assert_int_equal(f->irq.level, 1);
	rd(f, MSR);
	assert_int_equal(rd(f, IIR), 0x01);
	assert_int_equal(f->irq.level, 0);
}

static void test_dlab_scratch_ier_mask(void **state)
{
	struct fixture *f = *state;

	wr(f, LCR, 0x83);
	wr(f, RBR, 0x34);
	wr(f, IER, 0x12);
	assert_int_equal(rd(f, RBR), 0x34);
	assert_int_equal(rd(f, IER), 0x12);
	wr(f, LCR, 0x03);
	assert_int_equal(rd(f, IER), 0);
	assert_int_equal(rd(f, LCR), 0x03);
	wr(f, LCR, 0x83);
	assert_int_equal(rd(f, RBR), 0x34);
	assert_int_equal(rd(f, IER), 0x12);
	wr(f, LCR, 0x03);
	/* Linux autoconfig: IER bits 7:4 read 0. */
	wr(f, IER, 0xff);
	assert_int_equal(rd(f, IER), 0x0f);
	wr(f, IER, 0);
	wr(f, SCR, 0xa5);
	assert_int_equal(rd(f, SCR), 0xa5);
	/* No 64-byte FIFO: IIR bit 5 stays 0 (not a 16750). */
	wr(f, FCR, 0x21);
	assert_int_equal(rd(f, IIR) & 0xe0, 0xc0);
	/* FIFO off: IIR bits 7:6 read 0. */
	wr(f, FCR, 0);
	assert_int_equal(rd(f, IIR) & 0xc0, 0);
}

static void test_irq_only_on_change(void **state)
{
	struct fixture *f = *state;
	uint8_t in[4] = "abcd";

	wr(f, IER, 0x01);
	assert_int_equal(f->irq.changes, 0);
	assert_int_equal(serial_receive(f->s, in, 1), 1);
	assert_int_equal(f->irq.changes, 1);
	rd(f, LSR);
	rd(f, IIR);
	rd(f, SCR);
	assert_int_equal(f->irq.changes, 1);
	rd(f, RBR);
	assert_int_equal(f->irq.changes, 2);
	assert_int_equal(f->irq.level, 0);
	rd(f, RBR);
	assert_int_equal(f->irq.changes, 2);
}

static void test_state_roundtrip(void **state)
{
	struct fixture *f = *state;
	struct serial_state st, bad;
	uint8_t in[2] = "xy";

	wr(f, FCR, 0x01);
	wr(f, SCR, 0x42);
	assert_int_equal(serial_receive(f->s, in, 2), 2);
	serial_state_get(f->s, &st);
	serial_reset(f->s);
	assert_int_equal(rd(f, SCR), 0);
	assert_int_equal(serial_state_set(f->s, &st), 0);
	assert_int_equal(rd(f, SCR), 0x42);
	assert_int_equal(rd(f, RBR), 'x');
	assert_int_equal(rd(f, RBR), 'y');
	bad = st;
	bad.rx_count = 17;
	assert_int_equal(serial_state_set(f->s, &bad), -EINVAL);
	bad = st;
	bad.rx_head = 16;
	assert_int_equal(serial_state_set(f->s, &bad), -EINVAL);
}

static void test_wide_access(void **state)
{
	struct fixture *f = *state;
	uint8_t d[2] = {0x12, 0x34};

	/* outw to SCR-1: two byte cycles (MSR ignored, SCR written). */
	serial_io(f->s, MSR, d, 2, true);
	assert_int_equal(rd(f, SCR), 0x34);
}

/* The main loop's callback may feed more input straight away: no deadlock, nothing lost. */
struct reentry {
	struct fixture *f;
	const uint8_t *in;
	size_t total, sent;
};

static void reentry_cb(void *opaque)
{
	struct reentry *re = opaque;

	re->sent += serial_receive(re->f->s, re->in + re->sent, re->total - re->sent);
}

static void test_rx_ready_cb_reentry(void **state)
{
	struct fixture *f = *state;
	struct reentry re = {.f = f, .total = 3 * SERIAL_INBUF_SIZE};
	uint8_t *in = malloc(re.total);
	size_t got = 0;

	assert_non_null(in);
	for (size_t i = 0; i < re.total; i++)
		in[i] = (uint8_t)(i ^ (i >> 8));
	re.in = in;
	serial_set_rx_ready_cb(f->s, reentry_cb, &re);
	wr(f, FCR, 0x01);
	re.sent = serial_receive(f->s, in, re.total);
	while (rd(f, LSR) & 1) {
		assert_int_equal(rd(f, RBR), in[got]);
		got++;
	}
	assert_int_equal(got, re.total);
	free(in);
}

/* Several "vCPUs" transmit while the "main thread" feeds input: order per thread kept. */
#define STRESS_BYTES 2000

static void *stress_tx(void *opaque)
{
	struct fixture *f = opaque;

	for (int i = 0; i < STRESS_BYTES; i++) {
		wr(f, RBR, 'T');
		(void)rd(f, IIR);
		(void)rd(f, LSR);
	}
	return NULL;
}

static void *stress_rx(void *opaque)
{
	struct fixture *f = opaque;
	size_t got = 0;

	while (got < STRESS_BYTES) {
		if (rd(f, LSR) & 1) {
			assert_int_equal(rd(f, RBR), (uint8_t)got);
			got++;
		}
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct fixture *f = *state;
	pthread_t tx[2], rx;
	uint8_t in[STRESS_BYTES];
	size_t sent = 0, out = 0;
	char buf[512];
	ssize_t n;

	for (int i = 0; i < STRESS_BYTES; i++)
		in[i] = (uint8_t)i;
	/* A blocking-free reader is needed for the pipe: drain it as we go. */
	wr(f, FCR, 0x01);
	wr(f, IER, 0x03);
	assert_int_equal(pthread_create(&rx, NULL, stress_rx, f), 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&tx[i], NULL, stress_tx, f), 0);
	while (sent < STRESS_BYTES || out < 2 * STRESS_BYTES) {
		if (sent < STRESS_BYTES)
			sent += serial_receive(f->s, in + sent, STRESS_BYTES - sent);
		n = read(f->pipe_fd[0], buf, sizeof(buf));
		if (n > 0)
			out += (size_t)n;
	}
	for (int i = 0; i < 2; i++)
		pthread_join(tx[i], NULL);
	pthread_join(rx, NULL);
	assert_int_equal(out, 2 * STRESS_BYTES);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_reset_values),
		T(test_thre_temt_after_writes),
		T(test_output_reaches_fd),
		T(test_output_full_pipe_does_not_hang),
		T(test_thri_on_etbei_edge),
		T(test_rx_fifo_fill_drain),
		T(test_rx_trigger_and_timeout),
		T(test_rx_without_fifo),
		T(test_host_buffer_backpressure),
		T(test_loopback),
		T(test_line_status_priority),
		T(test_dlab_scratch_ier_mask),
		T(test_irq_only_on_change),
		T(test_state_roundtrip),
		T(test_wide_access),
		T(test_rx_ready_cb_reentry),
		T(test_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
