/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one device interface. Legacy devices (devices/) and virtio devices (virtio/) alike are
 * created from the machine's ordered device table (vm/machine.c), one row per kind, and
 * unwound in reverse. A device is its own file(s) plus one table row: the row names the ops
 * and how many instances the configuration asks for; realize() does the rest (its register
 * model, its bus ranges, its virtio transport) through struct device_host, so that no device
 * knows about KVM or struct machine.
 *
 * Call order: realize -> (reset | quiesce -> resume | save | load)* -> unrealize. All but
 * realize/unrealize may be absent (NULL): a device without state has nothing to save.
 */
#ifndef VMM_DEVICE_H
#define VMM_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/acpi.h"
#include "vmm/bus.h"
#include "vmm/compiler.h"
#include "vmm/config.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/platform.h"

#define DEVICE_ID_MAX (CONFIG_ID_MAX + 1)

/* What the machine offers a device being realized. Valid from realize to unrealize. */
struct device_host {
	const struct vmm_config *cfg;
	struct guest_mem *gm;
	struct bus *pio;
	struct bus *mmio;
	struct irq_sink irq;                /* GSI levels (legacy devices) */
	struct vm_stop_sink stop;           /* the guest asks the VM to stop */
	const struct vm_eventfd_ops *efd;   /* KVM ioeventfd / irqfd routes */
	/* The VM's I/O thread, created on first use (NULL when it cannot be). */
	struct ev_loop *(*io_loop)(void *opaque);
	/* The next virtio-mmio window and its GSI; -ENOSPC when all are taken. */
	int (*virtio_slot)(void *opaque, uint64_t *base, unsigned int *gsi);
	/*
	 * Device memory (virtio-pmem): map [hva, hva + size) (2 MiB multiple) into the guest
	 * at the next free range above RAM, each on a 1 GiB boundary (the same range for the
	 * same configuration, so that a restored guest finds it where it was), read-only if
	 * asked; *gpa is where. unmap takes it out again. -ENOSPC when the slots are taken.
	 */
	int (*map_memory)(void *opaque, void *hva, uint64_t size, bool read_only, uint64_t *gpa);
	void (*unmap_memory)(void *opaque, uint64_t gpa);
	void *opaque;
};

/* Snapshot state of one device: an FDT node of its own (vmm/state, the snapshot issue). */
struct dev_state_writer;
struct dev_state_reader;

struct device;

struct device_ops {
	const char *kind; /* "serial", "virtio-blk"... */
	/*
	 * Optional, before any KVM resource is taken: what of instance idx's configuration
	 * can be checked on its own (its files exist, are of the right kind, are not locked),
	 * so that a user's mistake is reported before the slow part. Takes nothing it keeps.
	 */
	int (*check)(const struct vmm_config *cfg, unsigned int idx, char *err, size_t errlen);
	/*
	 * Create instance idx of this row (0.. the row's count): set d->id (unique; disks
	 * take their drive_id), d->priv, register bus ranges and routes. On error -errno and
	 * one line in err naming the device; the table then unrealizes what came before.
	 */
	int (*realize)(struct device *d, const struct device_host *h, unsigned int idx, char *err,
		       size_t errlen);
	/* Undo realize (also after a failed realize: d->priv may be NULL). */
	void (*unrealize)(struct device *d);
	/* Back to power-on state (a system reset). */
	void (*reset)(struct device *d);
	/*
	 * The VM pauses: take no new work from the guest and finish what is in flight, so that
	 * the device's state is final until resume(). vCPUs are already parked.
	 */
	int (*quiesce)(struct device *d);
	/* Continue; kicks that arrived while quiesced are served now. */
	void (*resume)(struct device *d);
	/*
	 * The device's guest-visible state (quiesced, in-flight work finished) into its own node
	 * of the state tree, and back into a freshly realized device. The state is untrusted:
	 * load checks every field and says in err (one line, naming the device) what is wrong.
	 */
	int (*save)(struct device *d, struct dev_state_writer *w);
	int (*load)(struct device *d, const struct dev_state_reader *r, char *err, size_t errlen);
	/* Its ACPI DSDT node; false: the device is not described. */
	bool (*describe)(struct device *d, struct acpi_dev_desc *out);
	/* Counters for diagnostics, "name=value" pairs on one line. */
	void (*stats)(struct device *d, char *buf, size_t len);
	/*
	 * Optional: the open host file a live update passes on (a disk image: the same open
	 * file, so its lock is held throughout), or -1. The successor's instance of the same id
	 * adopts it (struct config_disk fd).
	 */
	int (*host_fd)(struct device *d);
	/*
	 * Optional: a live update handed the device's host resources to another process, which
	 * runs the guest now. Leave them to it: unrealize closes this process's descriptors but
	 * removes nothing others can see (a socket file).
	 */
	void (*disown)(struct device *d);
};

struct device {
	const struct device_ops *ops;
	char id[DEVICE_ID_MAX];
	void *priv;
};

/* A row of a device table: ops, and how many instances cfg asks for (NULL: one). */
struct device_row {
	const struct device_ops *ops;
	unsigned int (*count)(const struct vmm_config *cfg);
};

/*
 * An ordered set of realized devices (vm/devtable.c). Realized in row order, instance order;
 * unrealized in exactly the reverse order, also after a failure part-way.
 */
struct device_table {
	struct device *dev;
	unsigned int nr, cap;
};

/* Every row's check() for every instance, in order; the first failure is returned. */
int devtable_check(const struct device_row *rows, unsigned int nr_rows,
		   const struct vmm_config *cfg, char *err, size_t errlen) WUR;
int devtable_realize(struct device_table *t, const struct device_row *rows, unsigned int nr_rows,
		     const struct device_host *h, char *err, size_t errlen) WUR;
void devtable_unrealize(struct device_table *t);
/* Every device in order: quiesce (stops at the first failure, resuming the ones before),
 * resume in reverse, reset. */
int devtable_quiesce(struct device_table *t) WUR;
void devtable_resume(struct device_table *t);
void devtable_reset(struct device_table *t);
/*
 * Every device's state under /devices/<id> (compatible "vmm,<kind>-v1"), in table order; and
 * back, refusing a state whose set of devices differs from the table's (naming the first
 * difference).
 */
struct state_writer;
struct state_reader;
int devtable_save(struct device_table *t, struct state_writer *w, char *err, size_t errlen) WUR;
int devtable_load(struct device_table *t, const struct state_reader *r, char *err,
		  size_t errlen) WUR;
/* The DSDT descriptions, in table order; returns how many (at most max). */
unsigned int devtable_describe(struct device_table *t, struct acpi_dev_desc *out,
			       unsigned int max);
struct device *devtable_find(struct device_table *t, const char *id);

/* ---- the devices of this VMM (their files) ---- */

extern const struct device_ops serial_device_ops;      /* devices/serial.c */
extern const struct device_ops i8042_device_ops;       /* devices/i8042.c */
extern const struct device_ops rtc_device_ops;         /* devices/rtc.c */
extern const struct device_ops pvpanic_device_ops;     /* devices/pvpanic.c */
extern const struct device_ops acpi_pm_device_ops;     /* devices/acpi_pm.c */
extern const struct device_ops debug_exit_device_ops;  /* devices/debug_exit.c */
extern const struct device_ops virtio_blk_device_ops;  /* virtio/blk/virtio_blk_dev.c */
extern const struct device_ops virtio_console_device_ops; /* virtio/console/ */
extern const struct device_ops virtio_rng_device_ops;  /* virtio/rng/virtio_rng_dev.c */
extern const struct device_ops virtio_pmem_device_ops; /* virtio/pmem/virtio_pmem_dev.c */
extern const struct device_ops virtio_net_device_ops;  /* virtio/net/virtio_net_dev.c */
extern const struct device_ops virtio_vsock_device_ops; /* virtio/vsock/virtio_vsock_dev.c */

#endif
