/* SPDX-License-Identifier: Apache-2.0 */
/* struct vm, shared by vm.c and vcpu.c only. */
#ifndef VMM_VM_INTERNAL_H
#define VMM_VM_INTERNAL_H

#include "vmm/cpuid.h"
#include "vmm/loader.h"
#include "vmm/acpi.h"
#include "vmm/event_loop.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

#define VM_MAX_CPUID_MASK 32

struct vm {
	const struct vmm_config *cfg;
	struct kvm_sys kvm;
	int vm_fd;
	struct guest_mem gm;
	struct bus pio;
	struct bus mmio;
	struct boot_result boot;
	const struct cpuid_feature *cpuid_mask[VM_MAX_CPUID_MASK];
	unsigned int nr_cpuid_mask;

	struct vcpu *vcpus;
	unsigned int nr_vcpus;

	struct devices *dev; /* legacy devices, see vm.c */

	/* virtio: the devices in window order (disks, then the console), their transports. */
	struct ev_loop *io;  /* the I/O thread serving every virtio queue */
	struct virtio_blk *blk[VMM_MAX_DISKS];
	struct virtio_console *vcon;
	struct virtio_device *vdev[LAYOUT_VIRTIO_MAX_DEVS];
	struct virtio_mmio *vmmio[LAYOUT_VIRTIO_MAX_DEVS];
	struct acpi_mmio_dev vmmio_acpi[LAYOUT_VIRTIO_MAX_DEVS];
	unsigned int nr_virtio;
	char *cmdline; /* cfg->cmdline plus what the VMM appends */

	/* Stopping: the first request wins; stop_efd wakes the main loop. */
	pthread_mutex_t stop_lock;
	bool stopping; /* read by vCPU threads with __atomic */
	struct vm_outcome outcome;
	int stop_efd;
};

/* vm_virtio.c */
int vm_virtio_create(struct vm *vm, char *err, size_t errlen) WUR;
int vm_virtio_attach(struct vm *vm, char *err, size_t errlen) WUR;
int vm_virtio_start(struct vm *vm) WUR;
void vm_virtio_destroy(struct vm *vm);

#endif
