/* SPDX-License-Identifier: Apache-2.0 */
/* What the user asked for, after parsing and validation, before any resource is taken. */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdbool.h>
#include "vmm/blk_backend.h"
#include "vmm/compiler.h"

enum vmm_on_reboot { VMM_REBOOT_EXIT, VMM_REBOOT_RESTART };

enum vmm_console { VMM_CONSOLE_SERIAL, VMM_CONSOLE_VIRTIO };

/* --disk PATH[,ro][,cache=none|writeback][,io=uring|aio|sync][,serial=ID][,poll=USEC] */
struct vmm_disk {
	char *path;
	bool read_only;
	enum blk_cache cache;   /* default writeback (host page cache; FLUSH still durable) */
	enum blk_engine engine; /* default io_uring */
	bool engine_explicit;   /* the user named io=: no fallback */
	char *serial;           /* GET_ID, at most 20 bytes; NULL: none */
	/*
	 * Added for adaptive polling: the longest the I/O thread busy-polls the queues and the
	 * backend after an event, in microseconds; 0: never (a zeroed struct polls not at all,
	 * the CLI fills in VMM_DISK_POLL_US).
	 */
	unsigned int poll_us;
};

#define VMM_DISK_POLL_US     32      /* as QEMU's iothread poll-max-ns default, 32 us */
#define VMM_DISK_POLL_MAX_US 1000000 /* one second: anything longer is a mistake */

#define VMM_MAX_DISKS 7 /* virtio-mmio GSIs 16..23, one is the console's */

struct vmm_config {
	char *kernel;
	char *initrd;
	char *cmdline;             /* never NULL after cli_parse */
	unsigned int nr_cpus;
	uint64_t mem_size;         /* bytes, page multiple */
	unsigned int timeout_s;    /* 0 = none */
	enum vmm_on_reboot on_reboot;
	uint16_t debug_exit_port;  /* 0 = no debug-exit device */
	char *cpuid_mask;          /* comma list of feature names hidden from the guest */
	char *kvm_path;            /* /dev/kvm */
	struct vmm_disk disks[VMM_MAX_DISKS];
	unsigned int nr_disks;
	enum vmm_console console;  /* where the guest's console is; default serial */
};

#define VMM_DEFAULT_CMDLINE "console=ttyS0"
#define VMM_DEFAULT_CMDLINE_VIRTIO_CONSOLE "console=hvc0"
#define VMM_DEFAULT_MEM     (256 * MiB)

/* Exit statuses (documented in README.md). Debug-exit statuses are (v << 1) | 1, always odd. */
#define VMM_EXIT_OK          0
#define VMM_EXIT_ERROR       1
#define VMM_EXIT_USAGE       2
#define VMM_EXIT_PANIC       100
#define VMM_EXIT_TRIPLE      102
#define VMM_EXIT_FATAL       104
#define VMM_EXIT_TIMEOUT     124

#endif
