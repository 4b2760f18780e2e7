// SPDX-License-Identifier: Apache-2.0
/*
 * Hardware-reduced ACPI sleep registers (ACPI 6.5 §4.8.3.7 Sleep Control and Status Registers),
 * pointed to by the FADT's SLEEP_CONTROL_REG (+0) and SLEEP_STATUS_REG (+1).
 *
 * Control: SLP_EN (bit 5) with SLP_TYP (bits 4:2) from the DSDT's \_Sx package. Our \_S5 carries
 * ACPI_PM_SLP_TYP_S5, which powers the VM off. There is no S1-S4 here: such a request is logged
 * and the "machine" wakes up at once. That matters because the OS waits for it: ACPICA's
 * acpi_hw_extended_sleep() clears WAK_STS, writes SLP_EN and then spins until WAK_STS (status
 * bit 7) reads 1 again, so a status register that always read 0 would hang the guest forever.
 * Status: WAK_STS is write-1-to-clear (§4.8.3.7.2); everything else reads 0.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/devices.h"
#include "vmm/layout.h"
#include "vmm/state.h"

struct acpi_pm {
	pthread_mutex_t lock;
	struct vm_stop_sink stop;
	uint8_t status;
	struct dev_ratelimit rl;
};

/* lock held; true for a power-off request */
static bool acpi_pm_control_write(struct acpi_pm *a, uint8_t v)
{
	unsigned int typ = (v & ACPI_PM_SLP_TYP_MASK) >> ACPI_PM_SLP_TYP_SHIFT;

	if (!(v & ACPI_PM_SLP_EN))
		return false;
	if (typ == ACPI_PM_SLP_TYP_S5)
		return true;
	dev_log_ratelimited(&a->rl, "acpi: sleep type %u not supported, waking up at once", typ);
	a->status |= ACPI_PM_WAK_STS;
	return false;
}

void acpi_pm_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *a = opaque;
	bool poweroff = false;

	pthread_mutex_lock(&a->lock);
	for (uint32_t i = 0; i < len; i++) {
		uint64_t off = offset + i;

		if (is_write) {
			if (off == 0)
				poweroff |= acpi_pm_control_write(a, data[i]);
			else if (off == 1)
				a->status &= ~(data[i] & ACPI_PM_WAK_STS);
		} else {
			/* Control reads 0 (SLP_EN is write-only); status shows WAK_STS. */
			data[i] = off == 1 ? a->status : 0;
		}
	}
	pthread_mutex_unlock(&a->lock);
	if (poweroff)
		vm_stop_request(&a->stop, VMM_STOP_POWEROFF, 0);
}

int acpi_pm_create(struct acpi_pm **out, const struct vm_stop_sink *stop)
{
	struct acpi_pm *a;
	int r;

	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	r = -pthread_mutex_init(&a->lock, NULL);
	if (r) {
		free(a);
		return r;
	}
	if (stop)
		a->stop = *stop;
	*out = a;
	return 0;
}

void acpi_pm_destroy(struct acpi_pm *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* ---- the device interface ---- */

static int acpi_pm_realize(struct device *d, const struct device_host *h, unsigned int idx,
		           char *err, size_t errlen)
{
	struct acpi_pm *p;
	int r;

	snprintf(d->id, sizeof(d->id), "acpi-pm");
	if ((r = acpi_pm_create(&p, &h->stop)) < 0)
		goto fail;
	d->priv = p;
	if ((r = bus_register(h->pio, PORT_ACPI_SLEEP, ACPI_PM_PORT_LEN, acpi_pm_io, p, "acpi-pm")) < 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "ACPI sleep registers: %s", strerror(-r));
	return r;
}

static void acpi_pm_unrealize(struct device *d)
{
	acpi_pm_destroy(d->priv);
	d->priv = NULL;
}

static int acpi_pm_dev_save(struct device *d, struct dev_state_writer *w)
{
	struct acpi_pm *a = d->priv;
	uint8_t st;

	pthread_mutex_lock(&a->lock);
	st = a->status;
	pthread_mutex_unlock(&a->lock);
	dev_state_put(w, "sleep-status", &st, 1);
	return 0;
}

static int acpi_pm_dev_load(struct device *d, const struct dev_state_reader *r, char *err,
			    size_t errlen)
{
	struct acpi_pm *a = d->priv;
	uint8_t st;

	if (dev_state_get(r, "sleep-status", &st, 1) < 0 || (st & ~ACPI_PM_WAK_STS)) {
		snprintf(err, errlen, "ACPI sleep registers: their state is missing or inconsistent");
		return -EINVAL;
	}
	pthread_mutex_lock(&a->lock);
	a->status = st;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

const struct device_ops acpi_pm_device_ops = {
	.kind = "acpi-pm",
	.realize = acpi_pm_realize,
	.unrealize = acpi_pm_unrealize,
	.save = acpi_pm_dev_save,
	.load = acpi_pm_dev_load,
};
