/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-console (virtio 1.2 §5.3), one port, no MULTIPORT: the guest's hvc0. Output (transmitq)
 * is written to out_fd on the I/O thread; input comes from the main loop through
 * virtio_console_receive(), with the same backpressure contract as the UART (serial.h):
 * bytes the guest has no buffer for are not taken, and rx_ready is called once it posts more.
 * VIRTIO_CONSOLE_F_SIZE carries the terminal size; virtio_console_resize() changes it.
 */
#ifndef VMM_VIRTIO_CONSOLE_H
#define VMM_VIRTIO_CONSOLE_H

#include "vmm/event_loop.h"
#include "vmm/virtio.h"

#define VIRTIO_CONSOLE_F_SIZE       0
#define VIRTIO_CONSOLE_F_MULTIPORT  1
#define VIRTIO_CONSOLE_F_EMERG_WRITE 2

#define VIRTIO_CONSOLE_QUEUE_SIZE 64

struct virtio_console;

int virtio_console_create(struct virtio_console **out, const struct guest_mem *gm,
			  struct ev_loop *loop, int out_fd) WUR;
struct virtio_device *virtio_console_device(struct virtio_console *c);
void virtio_console_destroy(struct virtio_console *c);

/* Thread-safe. Bytes accepted into guest receive buffers (0: none posted, or not ready). */
size_t virtio_console_receive(struct virtio_console *c, const uint8_t *buf, size_t len);
/* Called (from any thread) when the guest posts receive buffers after a short receive. */
void virtio_console_set_rx_ready_cb(struct virtio_console *c, void (*cb)(void *opaque),
				    void *opaque);
/* Thread-safe. New terminal size; a config interrupt if the driver negotiated F_SIZE. */
void virtio_console_resize(struct virtio_console *c, uint16_t cols, uint16_t rows);

/* The model behind a realized virtio_console_device_ops device (virtio_console_dev.c). */
struct device;
struct virtio_console *virtio_console_of(struct device *d);

#endif
