/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One KVM virtual machine instance (vm/machine.c): the VM fd, guest RAM, buses, the device
 * table, vCPU threads, and their run control (start, park for a pause, stop). The lifecycle
 * and its states live one level up, in vm.c; a restart is a new machine.
 */
#ifndef VMM_MACHINE_H
#define VMM_MACHINE_H

#include <pthread.h>
#include <stdbool.h>

#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/cpuid.h"
#include "vmm/device.h"
#include "vmm/event_loop.h"
#include "vmm/guest_mem.h"
#include "vmm/kvm.h"
#include "vmm/loader.h"
#include "vmm/log.h"

struct machine;

struct vcpu {
	struct machine *m;
	unsigned int index;
	int fd;
	struct kvm_cpuid2 *cpuid; /* what KVM_SET_CPUID2 was given (KVM_GET_CPUID2 may add bits) */
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
};

#define MACHINE_DEVMEM_MAX 4

struct machine {
	const struct vmm_config *cfg; /* owned by the VM, outlives the machine */
	const struct log_sink *log;
	struct kvm_sys kvm;
	int vm_fd;
	struct guest_mem gm;
	struct bus pio;
	struct bus mmio;
	struct vm_eventfd_ops efd;
	const struct cpuid_feature *cpuid_mask[CPUID_MASK_MAX];
	unsigned int nr_cpuid_mask;

	/* The kernel and initrd as read from their files (until loaded into RAM). */
	uint8_t *kernel;
	size_t kernel_len;
	uint8_t *initrd;
	size_t initrd_len;
	struct boot_result boot;
	char *cmdline; /* what the kernel gets */

	struct device_table devs;
	struct ev_loop *io; /* the I/O thread, when a virtio device asked for it */
	unsigned int next_virtio_slot;
	/* Device memory (map_memory), KVM memslots GM_MAX_REGIONS + i. */
	struct {
		uint64_t gpa, size;
	} devmem[MACHINE_DEVMEM_MAX];
	uint64_t next_devmem_gpa;

	struct vcpu *vcpus;
	unsigned int nr_vcpus;

	/* Run control; run_lock protects everything below. */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;  /* vCPUs wait here while parked */
	pthread_cond_t park_cond; /* the pauser waits here */
	bool pause_req;           /* read by vCPU threads with __atomic too */
	unsigned int nr_parked;
	unsigned int nr_alive;    /* vCPU threads not yet returned */
	bool started;             /* machine_start was called (by the creating thread) */
	bool stopping;            /* read by vCPU threads with __atomic too */
	struct vmm_outcome outcome;
	int stop_efd;             /* readable once a stop was requested */
};

/*
 * Everything but the guest's content: read the kernel and initrd (if cfg names them), RAM,
 * the KVM VM, devices, vCPUs. On error -errno and one line in err; nothing is left behind.
 */
#define MACHINE_NO_KERNEL 1 /* a restore: the kernel is in the RAM it is handed, not read */
int machine_create(const struct vmm_config *cfg, const struct log_sink *log, unsigned int flags,
		   struct machine **out, char *err, size_t errlen) WUR;
/* Boot content: ACPI tables, the reset stub, the kernel, initrd and cmdline, boot registers. */
int machine_load_kernel(struct machine *m, char *err, size_t errlen) WUR;
/* I/O thread, then the vCPU threads. */
int machine_start(struct machine *m) WUR;
/* The same, every vCPU parked at once and the devices quiesced, as after machine_pause(). */
int machine_start_paused(struct machine *m) WUR;
/* Park every vCPU outside KVM_RUN, then quiesce the devices; resume undoes it. */
int machine_pause(struct machine *m) WUR;
/* Returns when the vCPUs were let go (CLOCK_MONOTONIC ns): the end of a blackout. */
uint64_t machine_resume(struct machine *m);
/* Thread-safe, the first request wins: devices, vCPUs, the VM's control thread. */
void machine_request_stop(struct machine *m, enum vmm_stop_reason reason, int code,
			  const char *msg);
/* After a stop request: kick and join the vCPUs; *out gets the outcome. */
void machine_halt(struct machine *m, struct vmm_outcome *out);
/*
 * With cfg->track_dirty: OR into out (gm_dirty_words() words, one bit per page of RAM) the
 * pages written since the last call, by the guest (KVM's dirty log) and by the VMM's devices,
 * and start over. Paused machines only.
 */
int machine_dirty_take(struct machine *m, uint64_t *out) WUR;
/* Unrealize the devices (disk images closed, locks gone) of a halted machine. */
void machine_release_devices(struct machine *m);
void machine_destroy(struct machine *m);

/* The console's input side (the UART or hvc0) and size. */
size_t machine_console_receive(struct machine *m, const uint8_t *buf, size_t len);
void machine_console_set_rx_ready(struct machine *m, void (*cb)(void *opaque), void *opaque);
void machine_console_resize(struct machine *m, unsigned int cols, unsigned int rows);
int machine_ctrl_alt_del(struct machine *m) WUR;

/* vcpu.c */
int vcpu_create(struct machine *m, struct vcpu *vcpu, unsigned int index, char *err,
		size_t errlen) WUR;
int vcpu_set_boot_regs(struct vcpu *vcpu, const struct boot_result *b) WUR;
void vcpu_destroy(struct vcpu *vcpu);
int vcpu_start(struct vcpu *vcpu) WUR;
void vcpu_kick(struct vcpu *vcpu);
void vcpu_join(struct vcpu *vcpu);
void vcpu_dump_regs(struct vcpu *vcpu);

/* machine.c, for vcpu.c: a vCPU thread parks here while a pause is requested. */
void machine_vcpu_park(struct machine *m);
void machine_vcpu_exited(struct machine *m);

#endif
