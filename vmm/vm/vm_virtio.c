// SPDX-License-Identifier: Apache-2.0
/*
 * The VM's virtio devices: disks (in command-line order), then the virtio console. Device i is a
 * virtio-mmio window at LAYOUT_VIRTIO_MMIO + i * 4 KiB with IOAPIC input LAYOUT_VIRTIO_GSI + i.
 *
 * Two steps, because a bad image is a user error worth reporting before KVM is touched, while the
 * transports need the KVM VM for their routes: vm_virtio_create() opens and locks the images and
 * builds the device models; vm_virtio_attach() routes QueueNotify through ioeventfds and the
 * interrupts through irqfds and maps the windows on the MMIO bus.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vm_internal.h"
#include "vmm/virtio_blk.h"
#include "vmm/virtio_console.h"
#include "vmm/virtio_mmio.h"

static int route_ioeventfd(void *opaque, uint64_t addr, uint32_t len, uint64_t datamatch, int fd,
			   bool assign)
{
	struct vm *vm = opaque;
	struct kvm_ioeventfd io = {
		.datamatch = datamatch,
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int route_irqfd(void *opaque, unsigned int gsi, int fd, bool assign)
{
	struct vm *vm = opaque;
	struct kvm_irqfd irq = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(vm->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

static struct vm_eventfd_ops eventfd_ops = {
	.ioeventfd = route_ioeventfd,
	.irqfd = route_irqfd,
};

/* The kernel command line the guest gets: the user's, plus virtio_mmio.device= entries for
 * kernels booted without ACPI (acpi=off). With ACPI the DSDT already describes every device,
 * and a kernel built with VIRTIO_MMIO_CMDLINE_DEVICES would probe each window twice. */
static int build_cmdline(struct vm *vm)
{
	const char *user = vm->cfg->cmdline ? vm->cfg->cmdline : "";
	size_t n = strlen(user);
	size_t len = n + 1 + vm->nr_virtio * 48;
	char *s = malloc(len);

	if (!s)
		return -ENOMEM;
	memcpy(s, user, n + 1);
	bool acpi_off = strstr(user, "acpi=off") != NULL;
	for (unsigned int i = 0; acpi_off && i < vm->nr_virtio; i++) {
		struct virtio_mmio_config mc = { .base = vm->vmmio_acpi[i].base,
						 .gsi = vm->vmmio_acpi[i].gsi };
		char one[48];
		if (virtio_mmio_cmdline(&mc, one, sizeof(one)) < 0)
			continue;
		n += (size_t)snprintf(s + n, len - n, "%s%s", n ? " " : "", one);
	}
	vm->cmdline = s;
	return 0;
}

int vm_virtio_create(struct vm *vm, char *err, size_t errlen)
{
	const struct vmm_config *cfg = vm->cfg;
	int ret;

	/* No virtio device, no I/O thread: a VM of legacy devices only starts faster and leaner. */
	if (!cfg->nr_disks && cfg->console != VMM_CONSOLE_VIRTIO)
		return build_cmdline(vm) < 0 ? -ENOMEM : 0;
	if ((ret = ev_loop_create(&vm->io, "vmm-io")) < 0) {
		snprintf(err, errlen, "I/O thread: %s", strerror(-ret));
		return ret;
	}
	for (unsigned int i = 0; i < cfg->nr_disks; i++) {
		/* One queue per vCPU: each vCPU's blk-mq context submits on its own queue. */
		ret = virtio_blk_create(&vm->blk[i], &cfg->disks[i], cfg->nr_cpus, &vm->gm, vm->io,
					err, errlen);
		if (ret < 0)
			return ret;
		vm->vdev[vm->nr_virtio++] = virtio_blk_device(vm->blk[i]);
	}
	if (cfg->console == VMM_CONSOLE_VIRTIO) {
		ret = virtio_console_create(&vm->vcon, &vm->gm, vm->io, STDOUT_FILENO);
		if (ret < 0) {
			snprintf(err, errlen, "--console virtio: %s", strerror(-ret));
			return ret;
		}
		vm->vdev[vm->nr_virtio++] = virtio_console_device(vm->vcon);
	}
	for (unsigned int i = 0; i < vm->nr_virtio; i++) {
		vm->vmmio_acpi[i] = (struct acpi_mmio_dev){
			.base = LAYOUT_VIRTIO_MMIO + (uint64_t)i * VIRTIO_MMIO_SIZE,
			.len = VIRTIO_MMIO_SIZE,
			.gsi = LAYOUT_VIRTIO_GSI + i,
		};
	}
	if ((ret = build_cmdline(vm)) < 0) {
		snprintf(err, errlen, "kernel command line: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

int vm_virtio_attach(struct vm *vm, char *err, size_t errlen)
{
	int ret;

	eventfd_ops.opaque = vm;
	for (unsigned int i = 0; i < vm->nr_virtio; i++) {
		struct virtio_mmio_config mc = {
			.base = vm->vmmio_acpi[i].base,
			.gsi = vm->vmmio_acpi[i].gsi,
			.loop = vm->io,
			.efd = &eventfd_ops,
		};
		const char *name = vm->vdev[i]->ops->name;
		if ((ret = virtio_mmio_create(&vm->vmmio[i], vm->vdev[i], &mc)) < 0) {
			snprintf(err, errlen, "%s: virtio-mmio transport: %s", name, strerror(-ret));
			return ret;
		}
		ret = bus_register(&vm->mmio, mc.base, VIRTIO_MMIO_SIZE, virtio_mmio_io,
				   vm->vmmio[i], name);
		if (ret < 0) {
			snprintf(err, errlen, "%s: MMIO window: %s", name, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

int vm_virtio_start(struct vm *vm)
{
	return vm->io ? ev_loop_start(vm->io) : 0;
}

void vm_virtio_destroy(struct vm *vm)
{
	/* Transports first (their routes and watches), then the devices, then the thread. */
	for (unsigned int i = LAYOUT_VIRTIO_MAX_DEVS; i-- > 0;) {
		if (vm->vmmio[i])
			virtio_mmio_destroy(vm->vmmio[i]);
		vm->vmmio[i] = NULL;
	}
	if (vm->vcon)
		virtio_console_destroy(vm->vcon);
	vm->vcon = NULL;
	for (unsigned int i = VMM_MAX_DISKS; i-- > 0;) {
		if (vm->blk[i])
			virtio_blk_destroy(vm->blk[i]);
		vm->blk[i] = NULL;
	}
	vm->nr_virtio = 0;
	if (vm->io)
		ev_loop_destroy(vm->io);
	vm->io = NULL;
	free(vm->cmdline);
	vm->cmdline = NULL;
}
