/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libvmm: run KVM virtual machines from a C program. The only public header of vmm.
 *
 * A configuration (struct vmm_config) is plain data built with the setters below; each setter
 * checks its own field and the whole configuration is checked again when a VM starts. A VM
 * (struct vmm_vm) is created from a copy of a configuration and has a lifecycle:
 *
 *     created --start--> running <--pause/resume--> paused
 *        |                  \                          /
 *        +------------------ stop / the guest stops --+--> stopped
 *
 * Several VMs may live in one process; each has its own threads (a control thread, an I/O
 * thread when it has virtio devices, one thread per vCPU). Functions may be called from any
 * thread unless said otherwise; callbacks run on the VM's own threads and must not call
 * vmm_vm_destroy() or vmm_vm_wait() on their VM.
 *
 * Errors: functions that can fail return 0 or a negative errno value and, when the caller
 * passes a struct vmm_error, one line of text naming what is wrong (no trailing newline).
 *
 * Signals: a vCPU is made to leave KVM_RUN with SIGRTMIN sent to its thread; libvmm installs
 * a handler that does nothing for it (once per process, at the first VM start). Threads that
 * libvmm creates block every other asynchronous signal: the program handles those.
 */
#ifndef VMM_VMM_H
#define VMM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VMM_ERROR_LEN 256

struct vmm_error {
	int code;                /* the negative errno also returned */
	char msg[VMM_ERROR_LEN]; /* one line naming the culprit */
};

/* The library's version, "MAJOR.MINOR.PATCH". */
const char *vmm_version(void);

/* ---- configuration ---- */

struct vmm_config;

enum vmm_console_kind {
	VMM_CONSOLE_SERIAL, /* COM1, the guest's ttyS0 (default) */
	VMM_CONSOLE_VIRTIO, /* a virtio-console, the guest's hvc0; COM1 stays present */
};

enum vmm_on_reboot {
	VMM_ON_REBOOT_EXIT,    /* a guest reboot stops the VM (outcome VMM_STOP_REBOOT) */
	VMM_ON_REBOOT_RESTART, /* the VM boots again from the same configuration */
};

enum vmm_cache {
	VMM_CACHE_WRITEBACK, /* the host page cache; FLUSH is still durable (default) */
	VMM_CACHE_NONE,      /* O_DIRECT */
};

enum vmm_io_engine {
	VMM_IO_AUTO,  /* io_uring, falling back to libaio then sync with a logged line (default) */
	VMM_IO_URING, /* these three never fall back */
	VMM_IO_AIO,
	VMM_IO_SYNC,
};

/* A virtio-blk disk. Fill with vmm_disk_init(), then set what differs from the defaults. */
struct vmm_disk {
	const char *id;       /* unique in the VM; letters, digits, '_', '-', '.', 1..64 chars */
	const char *path;     /* raw image or block device (the name messages use with fd) */
	int fd;               /* >= 0: adopt this open image instead of opening path (dup'ed) */
	bool read_only;
	bool root;            /* the root device: first disk, "root=/dev/vda" on the cmdline */
	const char *partuuid; /* with root: "root=PARTUUID=..." instead */
	enum vmm_cache cache;
	enum vmm_io_engine io;
	const char *serial;   /* VIRTIO_BLK_T_GET_ID, 1..20 printable ASCII; NULL: none */
	unsigned int poll_us; /* adaptive busy-polling window of the I/O thread, 0 = off */
};

#define VMM_DISK_POLL_US_DEFAULT 32
#define VMM_DISK_POLL_US_MAX     1000000
#define VMM_MAX_DISKS            8

void vmm_disk_init(struct vmm_disk *d);

/*
 * A rate limit, as Firecracker's RateLimiter: each bucket holds `size` tokens (bytes for
 * bandwidth, requests for ops), refilled at size per refill_time_ms, plus a one-time burst
 * spent first. A bucket with size 0 (and refill_time_ms 0) does not limit.
 */
struct vmm_token_bucket {
	uint64_t size;
	uint64_t one_time_burst;
	uint64_t refill_time_ms;
};

struct vmm_rate_limiter {
	struct vmm_token_bucket bandwidth;
	struct vmm_token_bucket ops;
};

/*
 * A virtio-pmem device: the file at path (a raw image, e.g. an ext4 the guest mounts with
 * -o dax) mapped into guest physical memory, the guest's /dev/pmemN in order. The file must
 * be a non-zero multiple of 2 MiB. read_only maps it read-only (a read-only memory slot, so
 * many VMs can share one base image and the host holds one copy of it in its page cache).
 * root: the guest's root file system, "root=/dev/pmem0 rootflags=dax" on the command line.
 */
struct vmm_pmem {
	const char *id;       /* unique among the pmem devices; as a disk's id */
	const char *path;
	int fd;               /* >= 0: adopt this open file instead of opening path (dup'ed) */
	bool read_only;
	bool root;
};

#define VMM_MAX_PMEM 2

void vmm_pmem_init(struct vmm_pmem *p);

/*
 * A virtio-net interface on a tap device: tap names it (created if absent, which needs
 * CAP_NET_ADMIN), or fd is an open tap (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, as runtimes pass
 * it; dup'ed). mac "52:54:00:12:34:56", or NULL: the guest makes one up.
 * user: user-mode networking (libslirp, in the helper process vmm-slirp, looked for beside
 * the executable, then in libexecdir; $VMM_SLIRP_HELPER names another) instead of a tap;
 * hostfwd then lists host ports forwarded to the guest, comma-separated rules
 * "tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" (or "udp:"), NULL or "" for none, and
 * mtu the link's MTU (68 to 65520; 0: 1500), which the guest is told (VIRTIO_NET_F_MTU):
 * 65520 moves a TCP stream in 44 times fewer frames than 1500.
 * rx_rate_limiter and tx_rate_limiter (all zero: none) limit what the guest receives and
 * sends, as Firecracker's: bytes (bandwidth) and frames (ops).
 */
struct vmm_net {
	const char *id;       /* iface_id: unique in the VM, as a disk's id */
	const char *tap;
	int fd;
	const char *mac;
	bool user;
	const char *hostfwd;
	unsigned int mtu;     /* user only */
	struct vmm_rate_limiter rx_rate_limiter, tx_rate_limiter;
};

#define VMM_MAX_NICS 4

void vmm_net_init(struct vmm_net *n);

/*
 * A virtio-vsock device with Firecracker's hybrid host side: host programs connect to the
 * unix socket uds_path and write "CONNECT <port>\n" to reach a guest listener; the guest's
 * connections to host port P reach a listener at uds_path_P. cid: the guest's (3 and up),
 * unique on the host. fd >= 0: a listening socket at uds_path to adopt (dup'ed).
 */
struct vmm_vsock {
	uint64_t cid;
	const char *uds_path;
	int fd;
};

void vmm_vsock_init(struct vmm_vsock *v);

struct vmm_config *vmm_config_new(void);
struct vmm_config *vmm_config_dup(const struct vmm_config *c);
void vmm_config_free(struct vmm_config *c);

/* The instance id GET / reports ("anonymous-instance" by default). */
int vmm_config_set_id(struct vmm_config *c, const char *id, struct vmm_error *e);
/* bzImage (64-bit boot protocol) or vmlinux ELF (PVH note, else its 64-bit entry). */
int vmm_config_set_kernel(struct vmm_config *c, const char *path, struct vmm_error *e);
int vmm_config_set_initrd(struct vmm_config *c, const char *path, struct vmm_error *e);
/* NULL: the default, "console=ttyS0" (or "console=hvc0" with a virtio console). */
int vmm_config_set_cmdline(struct vmm_config *c, const char *cmdline, struct vmm_error *e);
int vmm_config_set_cpus(struct vmm_config *c, unsigned int n, struct vmm_error *e);
/* Bytes of RAM, a multiple of 4 KiB, at least 4 MiB; default 256 MiB. */
int vmm_config_set_memory(struct vmm_config *c, uint64_t bytes, struct vmm_error *e);
/*
 * Guest RAM backed by the file at path (NULL: an anonymous memfd, the default), mapped shared:
 * a DAX file on persistent memory, tmpfs, hugetlbfs. An empty or new file is sized to the
 * RAM; an existing one must have exactly the RAM's size. The RAM's size must be a multiple of
 * 2 MiB. The file is locked while a VM uses it. A snapshot whose memory file is this file
 * writes no memory ("in place"); restoring such a snapshot maps the file back.
 */
int vmm_config_set_memory_file(struct vmm_config *c, const char *path, struct vmm_error *e);
/*
 * Where the console goes: input is read from in_fd (-1: none), output written to out_fd (-1:
 * discarded). The fds are not owned and must stay open while a VM uses them. Defaults: serial,
 * no input, output discarded. escape: Ctrl-A x on the input stops the VM (VMM_STOP_SIGNAL,
 * SIGINT), Ctrl-A Ctrl-A sends a Ctrl-A (for a terminal).
 */
int vmm_config_set_console(struct vmm_config *c, enum vmm_console_kind kind, int in_fd,
			   int out_fd, bool escape, struct vmm_error *e);
/* Stop the VM after this long (VMM_STOP_TIMEOUT), restarts included; 0 = never. */
int vmm_config_set_timeout(struct vmm_config *c, unsigned int seconds, struct vmm_error *e);
int vmm_config_set_on_reboot(struct vmm_config *c, enum vmm_on_reboot r, struct vmm_error *e);
/* I/O port of a QEMU isa-debug-exit compatible device; 0 = none (default 0xf4). */
int vmm_config_set_debug_exit_port(struct vmm_config *c, unsigned int port, struct vmm_error *e);
/* CPU features hidden from the guest, by /proc/cpuinfo name: "cx16,clflushopt". */
int vmm_config_set_cpuid_mask(struct vmm_config *c, const char *list, struct vmm_error *e);
/* Default /dev/kvm. */
int vmm_config_set_kvm_device(struct vmm_config *c, const char *path, struct vmm_error *e);
/* Add a disk, or replace the one with the same id (Firecracker's PUT /drives semantics). */
int vmm_config_put_disk(struct vmm_config *c, const struct vmm_disk *d, struct vmm_error *e);
/* Add a network interface, or replace the one with the same id (PUT /network-interfaces). */
int vmm_config_put_net(struct vmm_config *c, const struct vmm_net *n, struct vmm_error *e);
/* Add a pmem device, or replace the one with the same id (Firecracker's PUT /pmem/{id}). */
int vmm_config_put_pmem(struct vmm_config *c, const struct vmm_pmem *p, struct vmm_error *e);
/*
 * A virtio-rng device (Firecracker's "entropy"): the guest's /dev/hwrng, filled from the
 * host's getrandom(2). rl NULL: no rate limit. enable false removes it.
 */
int vmm_config_set_entropy(struct vmm_config *c, bool enable, const struct vmm_rate_limiter *rl,
			   struct vmm_error *e);
/* The vsock device (PUT /vsock); v NULL removes it. */
int vmm_config_set_vsock(struct vmm_config *c, const struct vmm_vsock *v, struct vmm_error *e);

/*
 * Firecracker's JSON configuration layout ("boot-source", "machine-config", "drives"), as
 * `firecracker --config-file` takes it. Unknown keys and values vmm cannot honour are refused,
 * naming them. Applied on top of c; on error c is unchanged.
 */
int vmm_config_from_json(struct vmm_config *c, const char *json, struct vmm_error *e);
int vmm_config_load_file(struct vmm_config *c, const char *path, struct vmm_error *e);
/* The configuration as GET /vm/config shows it; free() the string. NULL when out of memory. */
char *vmm_config_to_json(const struct vmm_config *c);

/* Every check that needs no resource (files and KVM are checked when the VM starts). */
int vmm_config_validate(const struct vmm_config *c, struct vmm_error *e);

/* ---- virtual machines ---- */

struct vmm_vm;

enum vmm_state {
	VMM_STATE_CREATED, /* "Not started" */
	VMM_STATE_RUNNING,
	VMM_STATE_PAUSED,
	VMM_STATE_STOPPED,
};

/* "Not started", "Running", "Paused", "Stopped". */
const char *vmm_state_name(enum vmm_state s);

enum vmm_stop_reason {
	VMM_STOP_NONE = 0,
	VMM_STOP_POWEROFF,     /* ACPI S5 */
	VMM_STOP_REBOOT,       /* i8042 reset line or ACPI reset (with VMM_ON_REBOOT_EXIT) */
	VMM_STOP_DEBUG_EXIT,   /* code = the value written to the debug-exit port */
	VMM_STOP_PANIC,        /* pvpanic */
	VMM_STOP_TRIPLE_FAULT, /* KVM_EXIT_SHUTDOWN */
	VMM_STOP_FATAL,        /* KVM internal error, failed entry, unknown exit, broken host */
	VMM_STOP_TIMEOUT,      /* the configured timeout expired */
	VMM_STOP_SIGNAL,       /* the program stopped it for a signal; code = the signal */
	VMM_STOP_REQUEST,      /* vmm_vm_stop() */
	VMM_STOP_ERROR,        /* the VM could not start or restart; msg says why */
	VMM_STOP_UPDATED,      /* live update: another process runs the guest; code = its pid */
};

struct vmm_outcome {
	enum vmm_stop_reason reason;
	int code;
	char msg[VMM_ERROR_LEN]; /* one line; empty when the guest chose to stop */
};

/*
 * The exit status the vmm executable uses for an outcome: 0 poweroff or reboot, (v << 1) | 1
 * debug-exit, 100 panic, 102 triple fault, 104 fatal, 124 timeout, 128 + n signal n,
 * 1 error, 0 stop requested or handed over by a live update.
 */
int vmm_outcome_status(const struct vmm_outcome *o);

enum vmm_event {
	VMM_EVENT_STARTED,   /* running: vCPUs entered the guest */
	VMM_EVENT_PAUSED,
	VMM_EVENT_RESUMED,
	VMM_EVENT_RESTARTED, /* the guest rebooted and VMM_ON_REBOOT_RESTART booted it again */
	VMM_EVENT_PANICKED,  /* the guest reported a panic (the VM then stops) */
	VMM_EVENT_STOPPED,   /* outcome is set; vmm_vm_wait() returns */
};

enum vmm_log_level { VMM_LOG_ERROR, VMM_LOG_WARN, VMM_LOG_INFO, VMM_LOG_DEBUG };

struct vmm_callbacks {
	/* outcome is non-NULL for VMM_EVENT_STOPPED and VMM_EVENT_PANICKED. */
	void (*event)(void *opaque, struct vmm_vm *vm, enum vmm_event ev,
		      const struct vmm_outcome *outcome);
	/* One line, no newline. NULL: lines go to stderr as "vmm: LINE". */
	void (*log)(void *opaque, enum vmm_log_level level, const char *line);
	void *opaque;
};

/* A VM in state created, with its own copy of c (not checked yet). cb may be NULL. */
int vmm_vm_create(const struct vmm_config *c, const struct vmm_callbacks *cb, struct vmm_vm **out,
		  struct vmm_error *e);
/* created -> running: check the configuration, open images, build the VM, boot the kernel. */
int vmm_vm_start(struct vmm_vm *vm, struct vmm_error *e);
/* running -> paused: returns once every vCPU is parked and every virtio queue quiesced. */
int vmm_vm_pause(struct vmm_vm *vm, struct vmm_error *e);
int vmm_vm_resume(struct vmm_vm *vm, struct vmm_error *e);
/* Ask a running or paused VM to stop (VMM_STOP_REQUEST); vmm_vm_wait() tells when it did. */
int vmm_vm_stop(struct vmm_vm *vm, struct vmm_error *e);
/* The same with a reason of the caller's (timeouts, signals); the first stop request wins. */
int vmm_vm_stop_with(struct vmm_vm *vm, enum vmm_stop_reason reason, int code, const char *msg);
/* Press Ctrl-Alt-Del on the guest's i8042 keyboard (a running VM). */
int vmm_vm_send_ctrl_alt_del(struct vmm_vm *vm, struct vmm_error *e);
/* The console's size in characters (virtio console: a config interrupt). */
int vmm_vm_console_resize(struct vmm_vm *vm, unsigned int cols, unsigned int rows);
enum vmm_snapshot_type {
	VMM_SNAPSHOT_FULL, /* all of RAM (pages never touched stay holes in the file) */
	VMM_SNAPSHOT_DIFF, /* only the pages dirtied since the last snapshot, over it */
};

/*
 * A paused VM's state to state_path and its RAM to mem_path (sparse). Each file is written
 * under a temporary name beside it and renamed once complete: a failure leaves no file that
 * looks valid. -EINVAL unless paused. VMM_SNAPSHOT_DIFF (dirty pages tracked from the start:
 * config track_dirty or VMM_RESTORE_TRACK_DIRTY; a Full snapshot or a restore before it) writes
 * only the pages written since the last snapshot: over mem_path in place when it is the
 * previous snapshot's memory file (which then goes with this state), else into a new sparse
 * file of them alone (Firecracker's diff layout).
 */
int vmm_vm_snapshot(struct vmm_vm *vm, const char *state_path, const char *mem_path,
		    enum vmm_snapshot_type type, struct vmm_error *e);
/*
 * Into a VM not started yet: the machine the snapshot describes (its configuration replaces
 * the VM's, but for the console, the id and the KVM device), paused, or running with
 * VMM_RESTORE_RESUME. Its RAM is mem_path's content, never read up front and never written:
 * a memfd whose pages are filled from the file as the guest first touches them (userfaultfd),
 * so that the VM can still be live-updated; where this process may not use userfaultfd, the
 * file mapped copy-on-write (then a live update refuses). A state that is damaged, of a newer
 * format, for another CPU, or whose memory file has another size is refused with one line
 * naming what differs; nothing is started then.
 */
#define VMM_RESTORE_RESUME      1u /* running, not paused, once restored */
#define VMM_RESTORE_TRACK_DIRTY 2u /* track dirty pages (Diff snapshots of the restored VM) */
int vmm_vm_restore(struct vmm_vm *vm, const char *state_path, const char *mem_path,
		   unsigned int flags, struct vmm_error *e);
/*
 * What a restore may change in the snapshot's configuration: the host side of its devices, as
 * Firecracker's network_overrides and vsock_override (a clone restored beside its original
 * needs its own tap and socket). The guest sees the same devices.
 */
struct vmm_restore_overrides {
	unsigned int nr_nets;
	struct {
		const char *id;  /* an interface of the snapshot */
		const char *tap; /* its new tap */
	} nets[VMM_MAX_NICS];
	const char *vsock_uds; /* NULL: the snapshot's */
};
/* vmm_vm_restore with overrides (NULL: none); an override naming nothing the snapshot has is
 * refused, naming it. */
int vmm_vm_restore_with(struct vmm_vm *vm, const char *state_path, const char *mem_path,
			unsigned int flags, const struct vmm_restore_overrides *ov,
			struct vmm_error *e);

/*
 * Host kernel update by Linux's Live Update Orchestrator (/dev/liveupdate, Linux 6.19+), for a
 * VM whose RAM is a memfd (the default), in two stages so that the guest's pause does not grow
 * with its RAM. On a running VM: a LUO session of that name (1 to 63 characters of A-Z a-z
 * 0-9 . _ -) is created and the RAM memfd preserved in it (every page allocated and pinned);
 * the guest runs on in those same pages. On a paused VM: the VM's state too (in a second
 * memfd), and the RAM first if that was not done yet. This process holds the session until the
 * kexec (kexec_file_load) takes it: resuming the VM closes the session, which undoes the
 * preservation. A lazily restored VM's RAM is filled from its snapshot file first (paused).
 */
int vmm_vm_luo_preserve(struct vmm_vm *vm, const char *session, struct vmm_error *e);
/*
 * On the kernel after the kexec, into a VM not started yet: retrieve the session, restore the
 * VM from its state with the preserved memfd as its RAM (nothing copied), and finish the
 * session. Flags as vmm_vm_restore's.
 */
int vmm_vm_restore_luo(struct vmm_vm *vm, const char *session, unsigned int flags,
		       struct vmm_error *e);

/* ---- live update: another vmm process takes over the running guest ---- */

struct vmm_live_update {
	int pid;                /* the process that runs the guest now */
	uint64_t blackout_us;   /* from this process's pause to the new one's resume */
};

/*
 * Hand the running (or paused) VM over to a new process started from binary (NULL: the
 * running executable's path) with the arguments "--handover FD", which calls
 * vmm_vm_receive(). The new process gets guest RAM (the same memfd: nothing is copied), the
 * disk images (the same open files, their locks held throughout), the console's file
 * descriptors (it inherits stdin, stdout and stderr), the API's listening socket, and the
 * front end's data (vmm_vm_set_front_data()). It builds its VM, vCPUs and backends while the
 * guest still runs here; only then is the guest paused, its state sent, loaded and resumed
 * there. On success this VM stops with VMM_STOP_UPDATED (code = the new pid) without touching
 * the guest again, and the API socket file is left to the new process. On any failure before
 * the new process resumed the guest, the new process is killed, the guest resumes here and
 * the error names what failed: an update never loses the VM.
 */
int vmm_vm_live_update(struct vmm_vm *vm, const char *binary, struct vmm_live_update *out,
		       struct vmm_error *e);
/* Opaque bytes (at most 4096) the front end gives its successor (the vmm executable: the
 * terminal's mode from before it went raw). */
int vmm_vm_set_front_data(struct vmm_vm *vm, const void *data, size_t len);

struct vmm_api;

/* What the receiving side of a live update is given, and gets. */
struct vmm_receive {
	int console_in, console_out;  /* in: this process's console (as vmm_config_set_console) */
	struct vmm_vm *vm;            /* out: the VM, running or paused as it was */
	struct vmm_api *api;          /* out: the API, serving the handed-over socket, or NULL */
	void *front_data;             /* out: malloc'd, or NULL */
	size_t front_len;
};

/*
 * The new process's side of vmm_vm_live_update(), over the socket it was given: build the
 * machine, load the state, resume, serve the API. On error nothing of the guest was touched
 * (the old process resumes it) and sock is told why.
 */
int vmm_vm_receive(int sock, const struct vmm_callbacks *cb, struct vmm_receive *r,
		   struct vmm_error *e);

/* Block until the VM is stopped; *out gets why. -EINVAL if it was never started. */
int vmm_vm_wait(struct vmm_vm *vm, struct vmm_outcome *out);
enum vmm_state vmm_vm_state(struct vmm_vm *vm);
/* A copy of the VM's configuration (with what the API changed); vmm_config_free() it. */
struct vmm_config *vmm_vm_config(struct vmm_vm *vm);
/* Stops the VM if it runs, waits for it, frees everything. */
void vmm_vm_destroy(struct vmm_vm *vm);

/* ---- the control socket (Firecracker's REST API, see README) ---- */

struct vmm_api;

/*
 * Serve the API for vm on a unix socket at path, from a thread of its own. A path where
 * another process listens is refused (-EADDRINUSE); a stale socket file is replaced.
 * listen_fd >= 0 adopts an already listening socket instead (path is then only its name).
 */
int vmm_api_start(struct vmm_vm *vm, const char *path, int listen_fd, struct vmm_api **out,
		  struct vmm_error *e);
/* Stop serving, close every connection, remove the socket file. */
void vmm_api_stop(struct vmm_api *api);

#ifdef __cplusplus
}
#endif

#endif
