/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The configuration model (vmm/config/): what the user asked for, as plain data, before any
 * resource is taken. Every front end produces it: argv (vmm/cli), Firecracker's JSON layout
 * (the config file and the API's PUT bodies, config_json.c) and a program through libvmm's
 * setters. Defaults and checks live here and nowhere else; each setter checks its field and
 * config_validate() checks what involves several fields.
 *
 * Messages name the field in the vocabulary of the front end that set it is not known here,
 * so they use the library's neutral names ("memory", "cpus", "disk 'rootfs'"); front ends add
 * their own prefix when that reads better.
 */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/compiler.h"
#include "vmm/vmm.h"

/* One disk, owning its strings. */
struct config_disk {
	char *id;
	char *path;
	int fd;             /* adopted image fd (owned), or -1 */
	bool read_only;
	bool root;
	char *partuuid;     /* NULL: none */
	enum vmm_cache cache;
	enum vmm_io_engine io;
	char *serial;       /* NULL: none */
	unsigned int poll_us;
};

struct config_pmem {
	char *id;
	char *path;
	int fd;             /* adopted file (owned), or -1 */
	bool read_only;
	bool root;
};

/* A host port forwarded into a user-mode network. Addresses in network byte order. */
struct config_hostfwd {
	bool udp;
	uint32_t host_addr;
	uint16_t host_port;
	uint32_t guest_addr; /* 0: the guest's DHCP address, 10.0.2.15 */
	uint16_t guest_port;
};

#define CONFIG_MAX_HOSTFWD 16
/* A user-mode network's MTU: IPv4's least, libslirp's most (65521) rounded down to even. */
#define CONFIG_NET_MTU_MIN 68
#define CONFIG_NET_MTU_MAX 65520

struct config_net {
	char *id;
	char *tap;          /* NULL: fd, or user mode */
	int fd;             /* adopted tap, or user mode's helper socket (owned), or -1 */
	bool has_mac;
	uint8_t mac[6];
	bool user;          /* user-mode networking (libslirp) */
	unsigned int mtu;   /* user mode: the link's MTU, told to the guest; 0: 1500, not told */
	struct vmm_rate_limiter rx_limit, tx_limit; /* all zero: none */
	unsigned int nr_fwd;
	struct config_hostfwd fwd[CONFIG_MAX_HOSTFWD];
};

/* The vsock device (Firecracker's "vsock"): guest CID and the host side's socket. */
struct config_vsock {
	bool set;
	uint64_t cid;
	char *uds;          /* PATH: host programs connect here; guest connections go to PATH_P */
	int fd;             /* adopted listening socket at uds (owned), or -1 */
};

struct vmm_config {
	char *id;
	char *kernel;
	char *initrd;        /* NULL: none */
	char *cmdline;       /* NULL: the default for the console kind */
	unsigned int nr_cpus;
	uint64_t mem_size;   /* bytes, 4 KiB multiple */
	int mem_fd;          /* adopted guest RAM memfd (owned), or -1 */
	int mem_source_fd;   /* a restore: RAM starts as this snapshot memory file (owned, only
			      * read), its pages brought in as first touched; or -1 */
	char *mem_path;      /* guest RAM is this file, mapped shared (--memory SIZE,file=PATH);
			      * NULL: an anonymous memfd */

	bool track_dirty;    /* track dirty pages (diff snapshots; Firecracker's track_dirty_pages) */

	enum vmm_console_kind console;
	int console_in;      /* not owned; -1: no input */
	int console_out;     /* not owned; -1: discard */
	bool console_escape;

	unsigned int timeout_s;
	enum vmm_on_reboot on_reboot;
	uint16_t debug_exit_port; /* 0: none */
	char *cpuid_mask;    /* NULL: nothing hidden */
	char *kvm_path;

	struct config_disk disks[VMM_MAX_DISKS];
	unsigned int nr_disks;

	struct config_pmem pmems[VMM_MAX_PMEM];
	unsigned int nr_pmems;
	struct config_net nets[VMM_MAX_NICS];
	unsigned int nr_nets;

	struct config_vsock vsock;

	bool rng;            /* a virtio-rng device (Firecracker's "entropy") */
	struct vmm_rate_limiter rng_limit; /* its rate limit; all zero: none */

	/* How the user named the fields checked only when the VM starts (their setters' what):
	 * "--memory" or "mem_size_mib", so that a later error speaks the user's language. */
	struct {
		const char *memory;
		const char *cpus;
	} names;
};

#define CONFIG_DEFAULT_ID                 "anonymous-instance"
#define CONFIG_DEFAULT_CMDLINE            "console=ttyS0"
#define CONFIG_DEFAULT_CMDLINE_VIRTIO     "console=hvc0"
#define CONFIG_DEFAULT_MEM                (256 * MiB)
#define CONFIG_MIN_MEM                    (4 * MiB)
#define CONFIG_MAX_CPUS                   254 /* xAPIC IDs; KVM may allow fewer */
#define CONFIG_DEFAULT_DEBUG_EXIT_PORT    0xf4
#define CONFIG_ID_MAX                     64
#define CONFIG_SERIAL_MAX                 20
#define CONFIG_VSOCK_ID                   "vsock0" /* the device's id (device table, handover) */

/* Exit statuses of the vmm executable (README). Debug-exit statuses are (v << 1) | 1. */
#define VMM_EXIT_OK      0
#define VMM_EXIT_ERROR   1
#define VMM_EXIT_USAGE   2
#define VMM_EXIT_PANIC   100
#define VMM_EXIT_TRIPLE  102
#define VMM_EXIT_FATAL   104
#define VMM_EXIT_TIMEOUT 124

/* Fill e (may be NULL) and return code (negative errno). */
int config_fail(struct vmm_error *e, int code, const char *fmt, ...) PRINTF(3, 4);

/* Defaults everywhere; every fd -1. */
void config_init(struct vmm_config *c);
/* Free what c owns (strings, adopted fds) and leave it as config_init() does. */
void config_fini(struct vmm_config *c);
/* Deep copy (adopted fds are dup'ed). */
int config_copy(struct vmm_config *dst, const struct vmm_config *src) WUR;

/* The command line the kernel gets before the VMM appends its own entries: the user's or the
 * default, plus root= for a root disk. malloc'd. */
char *config_cmdline(const struct vmm_config *c);
/* The idx-th disk in the guest's order: the root disk first (/dev/vda), then the others as
 * configured. idx < c->nr_disks. */
const struct config_disk *config_disk_at(const struct vmm_config *c, unsigned int idx);
/* The disk by id, or NULL. */
struct config_disk *config_disk_find(struct vmm_config *c, const char *id);
/* Remove every disk. */
void config_clear_disks(struct vmm_config *c);

/* "256M", "4G", "1024K", "65536" (plain numbers are MiB, as QEMU's -m). */
int config_parse_size(const char *s, uint64_t *out) WUR;
/* A name of ours: 1..CONFIG_ID_MAX of [A-Za-z0-9_.-]. */
bool config_id_valid(const char *id);
/* Whether port (and port + len - 1) is free of the platform's fixed devices; if not, *what
 * names the one it clashes with. */
bool config_port_free(unsigned int port, unsigned int len, const char **what);

/*
 * The setters. what names the field as the caller's front end knows it ("--memory",
 * "mem_size_mib", "memory") and starts the message. On error c is unchanged.
 */
int config_set_id(struct vmm_config *c, const char *id, const char *what, struct vmm_error *e) WUR;
int config_set_path(char **field, const char *path, const char *what, struct vmm_error *e) WUR;
int config_set_cmdline(struct vmm_config *c, const char *cmdline, const char *what,
		       struct vmm_error *e) WUR;
int config_set_cpus(struct vmm_config *c, long long n, const char *what, struct vmm_error *e) WUR;
int config_set_memory(struct vmm_config *c, uint64_t bytes, const char *what,
		      struct vmm_error *e) WUR;
/* Guest RAM in this file (NULL: a memfd again); its size is checked when the VM starts. */
int config_set_memory_file(struct vmm_config *c, const char *path, const char *what,
			   struct vmm_error *e) WUR;
/* A list of /proc/cpuinfo names ("cx16,clwb"), each known; NULL or "": nothing hidden. */
int config_set_cpuid_mask(struct vmm_config *c, const char *list, const char *what,
			  struct vmm_error *e) WUR;
int config_set_debug_exit_port(struct vmm_config *c, long long port, const char *what,
			       struct vmm_error *e) WUR;
int config_set_timeout(struct vmm_config *c, long long s, const char *what,
		       struct vmm_error *e) WUR;
/* Add d, or replace the disk with its id. */
int config_put_disk(struct vmm_config *c, const struct vmm_disk *d, const char *what,
		    struct vmm_error *e) WUR;
/* The checks across fields, and that a kernel is set. */
int config_put_net(struct vmm_config *c, const struct vmm_net *n, const char *what,
		   struct vmm_error *e) WUR;
struct config_net *config_net_find(struct vmm_config *c, const char *id);
void config_clear_nets(struct vmm_config *c);
/* One rule "tcp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT" ("udp:", or no protocol: tcp);
 * the host address defaults to 127.0.0.1. false and a reason in err if it is not one. */
bool config_parse_hostfwd(const char *s, struct config_hostfwd *out, char *err, size_t errlen);
/* One rule in the form config_parse_hostfwd() reads, every field spelt out. */
void config_hostfwd_format(const struct config_hostfwd *f, char *buf, size_t len);
/* "aa:bb:cc:dd:ee:ff" -> 6 bytes; false if it is not one. */
bool config_parse_mac(const char *s, uint8_t mac[6]);
int config_put_pmem(struct vmm_config *c, const struct vmm_pmem *p, const char *what,
		    struct vmm_error *e) WUR;
struct config_pmem *config_pmem_find(struct vmm_config *c, const char *id);
/* The guest's order (/dev/pmem0, 1): the root device first, the others as configured. */
const struct config_pmem *config_pmem_at(const struct vmm_config *c, unsigned int idx);
void config_clear_pmems(struct vmm_config *c);
int config_set_entropy(struct vmm_config *c, bool enable, const struct vmm_rate_limiter *rl,
		       const char *what, struct vmm_error *e) WUR;
/* The vsock device, or none (v NULL). */
int config_set_vsock(struct vmm_config *c, const struct vmm_vsock *v, const char *what,
		     struct vmm_error *e) WUR;
/* How many virtio-mmio slots c's devices take. */
unsigned int config_virtio_devices(const struct vmm_config *c);
int config_validate(const struct vmm_config *c, struct vmm_error *e) WUR;

#endif
