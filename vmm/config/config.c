// SPDX-License-Identifier: Apache-2.0
/*
 * The configuration model: defaults, one setter per field with its checks, and the checks
 * across fields (config_validate). Nothing here opens a file or touches KVM.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <arpa/inet.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/config.h"
#include "vmm/cpuid.h"
#include "vmm/devices.h"
#include "vmm/layout.h"
#include "vmm/ratelimit.h"
#include "vmm/serial.h"

int config_fail(struct vmm_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e) {
		e->code = code;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
	}
	return code;
}

const char *vmm_version(void)
{
	return VMM_VERSION_STRING;
}

const char *vmm_state_name(enum vmm_state s)
{
	switch (s) {
	case VMM_STATE_CREATED:
		return "Not started"; /* Firecracker's InstanceInfo.state */
	case VMM_STATE_RUNNING:
		return "Running";
	case VMM_STATE_PAUSED:
		return "Paused";
	case VMM_STATE_STOPPED:
		return "Stopped";
	}
	return "Unknown";
}

void config_init(struct vmm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->nr_cpus = 1;
	c->mem_size = CONFIG_DEFAULT_MEM;
	c->mem_fd = -1;
	c->mem_source_fd = -1;
	c->vsock.fd = -1;
	c->console = VMM_CONSOLE_SERIAL;
	c->console_in = -1;
	c->console_out = -1;
	c->on_reboot = VMM_ON_REBOOT_EXIT;
	c->debug_exit_port = CONFIG_DEFAULT_DEBUG_EXIT_PORT;
	c->names.memory = "memory";
	c->names.cpus = "cpus";
}

static void disk_fini(struct config_disk *d)
{
	free(d->id);
	free(d->path);
	free(d->partuuid);
	free(d->serial);
	if (d->fd >= 0)
		close(d->fd);
	memset(d, 0, sizeof(*d));
	d->fd = -1;
}

static void pmem_fini(struct config_pmem *p)
{
	free(p->id);
	free(p->path);
	if (p->fd >= 0)
		close(p->fd);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

void config_clear_pmems(struct vmm_config *c)
{
	for (unsigned int i = 0; i < c->nr_pmems; i++)
		pmem_fini(&c->pmems[i]);
	c->nr_pmems = 0;
}

static void net_fini(struct config_net *n)
{
	free(n->id);
	free(n->tap);
	if (n->fd >= 0)
		close(n->fd);
	memset(n, 0, sizeof(*n));
	n->fd = -1;
}

void config_clear_nets(struct vmm_config *c)
{
	for (unsigned int i = 0; i < c->nr_nets; i++)
		net_fini(&c->nets[i]);
	c->nr_nets = 0;
}

void config_clear_disks(struct vmm_config *c)
{
	for (unsigned int i = 0; i < c->nr_disks; i++)
		disk_fini(&c->disks[i]);
	c->nr_disks = 0;
}

void config_fini(struct vmm_config *c)
{
	config_clear_disks(c);
	config_clear_pmems(c);
	config_clear_nets(c);
	free(c->vsock.uds);
	if (c->vsock.fd >= 0)
		close(c->vsock.fd);
	free(c->id);
	free(c->kernel);
	free(c->initrd);
	free(c->cmdline);
	free(c->cpuid_mask);
	free(c->kvm_path);
	free(c->mem_path);
	if (c->mem_fd >= 0)
		close(c->mem_fd);
	if (c->mem_source_fd >= 0)
		close(c->mem_source_fd);
	config_init(c);
}

/* strdup that keeps NULL; *ok goes false when memory runs out. */
static char *dup_or_null(const char *s, bool *ok)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*ok = false;
	return d;
}

static int dup_fd(int fd, bool *ok)
{
	int d;

	if (fd < 0)
		return -1;
	d = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (d < 0)
		*ok = false;
	return d;
}

static void disk_copy(struct config_disk *dst, const struct config_disk *src, bool *ok)
{
	*dst = *src;
	dst->id = dup_or_null(src->id, ok);
	dst->path = dup_or_null(src->path, ok);
	dst->partuuid = dup_or_null(src->partuuid, ok);
	dst->serial = dup_or_null(src->serial, ok);
	dst->fd = dup_fd(src->fd, ok);
}

int config_copy(struct vmm_config *dst, const struct vmm_config *src)
{
	bool ok = true;

	*dst = *src;
	dst->id = dup_or_null(src->id, &ok);
	dst->kernel = dup_or_null(src->kernel, &ok);
	dst->initrd = dup_or_null(src->initrd, &ok);
	dst->cmdline = dup_or_null(src->cmdline, &ok);
	dst->cpuid_mask = dup_or_null(src->cpuid_mask, &ok);
	dst->kvm_path = dup_or_null(src->kvm_path, &ok);
	dst->mem_path = dup_or_null(src->mem_path, &ok);
	dst->mem_fd = dup_fd(src->mem_fd, &ok);
	dst->mem_source_fd = dup_fd(src->mem_source_fd, &ok);
	for (unsigned int i = 0; i < src->nr_disks; i++)
		disk_copy(&dst->disks[i], &src->disks[i], &ok);
	for (unsigned int i = 0; i < src->nr_nets; i++) {
		dst->nets[i].id = dup_or_null(src->nets[i].id, &ok);
		dst->nets[i].tap = dup_or_null(src->nets[i].tap, &ok);
		dst->nets[i].fd = dup_fd(src->nets[i].fd, &ok);
	}
	dst->vsock.uds = dup_or_null(src->vsock.uds, &ok);
	dst->vsock.fd = dup_fd(src->vsock.fd, &ok);
	for (unsigned int i = 0; i < src->nr_pmems; i++) {
		dst->pmems[i].id = dup_or_null(src->pmems[i].id, &ok);
		dst->pmems[i].path = dup_or_null(src->pmems[i].path, &ok);
		dst->pmems[i].fd = dup_fd(src->pmems[i].fd, &ok);
	}
	if (!ok) {
		config_fini(dst);
		return -ENOMEM;
	}
	return 0;
}

const struct config_disk *config_disk_at(const struct vmm_config *c, unsigned int idx)
{
	unsigned int root = c->nr_disks;

	for (unsigned int i = 0; i < c->nr_disks; i++) {
		if (c->disks[i].root)
			root = i;
	}
	if (root == c->nr_disks)
		return &c->disks[idx];
	if (idx == 0)
		return &c->disks[root];
	/* The others keep their order, shifted past the root's place. */
	return &c->disks[idx <= root ? idx - 1 : idx];
}

struct config_disk *config_disk_find(struct vmm_config *c, const char *id)
{
	for (unsigned int i = 0; i < c->nr_disks; i++) {
		if (!strcmp(c->disks[i].id, id))
			return &c->disks[i];
	}
	return NULL;
}

int config_parse_size(const char *s, uint64_t *out)
{
	const char *p = s;
	uint64_t v = 0, mult;

	if (!s || !*s)
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
			return -ERANGE;
	}
	if (p == s)
		return -EINVAL;
	switch (*p) {
	case '\0':
		mult = MiB; /* as QEMU's -m */
		break;
	case 'k': case 'K': mult = KiB; p++; break;
	case 'm': case 'M': mult = MiB; p++; break;
	case 'g': case 'G': mult = GiB; p++; break;
	case 't': case 'T': mult = 1024 * GiB; p++; break;
	case 'b': case 'B': mult = 1; p++; break;
	default:
		return -EINVAL;
	}
	/* Allow "256MiB" and "256MB" (both binary here). */
	if (mult != 1 && (!strcmp(p, "iB") || !strcmp(p, "B")))
		p += strlen(p);
	if (*p)
		return -EINVAL;
	if (__builtin_mul_overflow(v, mult, &v))
		return -ERANGE;
	*out = v;
	return 0;
}

bool config_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > CONFIG_ID_MAX)
		return false;
	for (const char *p = id; *p; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' || *p == '.'))
			return false;
	}
	return true;
}

/*
 * Ports taken by KVM's in-kernel devices (they never reach us: a device of ours there would be
 * dead) and by the platform devices of vm/machine.c.
 */
static const struct {
	unsigned int base, len;
	const char *what;
} fixed_ports[] = {
	{ 0x20, 2, "the in-kernel PIC (0x20)" },
	{ 0x40, 4, "the in-kernel PIT (0x40-0x43)" },
	{ 0x61, 1, "the in-kernel PC speaker port (0x61)" },
	{ 0xa0, 2, "the in-kernel PIC (0xa0)" },
	{ 0x4d0, 2, "the in-kernel ELCR (0x4d0)" },
	{ PORT_I8042_DATA, 1, "the i8042 (0x60)" },
	{ PORT_I8042_CMD, 1, "the i8042 (0x64)" },
	{ PORT_CMOS, RTC_PORT_LEN, "the CMOS RTC (0x70-0x71)" },
	{ PORT_COM1, SERIAL_PORT_LEN, "COM1 (0x3f8-0x3ff)" },
	{ PORT_PVPANIC, PVPANIC_PORT_LEN, "pvpanic (0x505)" },
	{ PORT_ACPI_SLEEP, ACPI_PM_PORT_LEN, "the ACPI sleep registers (0x600-0x601)" },
};

bool config_port_free(unsigned int port, unsigned int len, const char **what)
{
	for (size_t i = 0; i < ARRAY_SIZE(fixed_ports); i++) {
		unsigned int b = fixed_ports[i].base, e = b + fixed_ports[i].len;

		if (port < e && port + len > b) {
			if (what)
				*what = fixed_ports[i].what;
			return false;
		}
	}
	return true;
}

/* ---- setters: each takes the name its caller knows the field by, for the message ---- */

static int set_str(char **field, const char *v, struct vmm_error *e, const char *what)
{
	char *d = NULL;

	if (v && !(d = strdup(v)))
		return config_fail(e, -ENOMEM, "%s: out of memory", what);
	free(*field);
	*field = d;
	return 0;
}

int config_set_id(struct vmm_config *c, const char *id, const char *what, struct vmm_error *e)
{
	if (!config_id_valid(id))
		return config_fail(e, -EINVAL,
				   "%s: '%s' is not 1 to %d letters, digits, '_', '-' or '.'", what,
				   id ? id : "", CONFIG_ID_MAX);
	return set_str(&c->id, id, e, what);
}

int config_set_path(char **field, const char *path, const char *what, struct vmm_error *e)
{
	if (!path || !*path)
		return config_fail(e, -EINVAL, "%s: empty path", what);
	if (strlen(path) >= 4096)
		return config_fail(e, -ENAMETOOLONG, "%s: path longer than 4095 bytes", what);
	return set_str(field, path, e, what);
}

int config_set_cmdline(struct vmm_config *c, const char *cmdline, const char *what,
		       struct vmm_error *e)
{
	/* The kernel's own limit (cmdline_size) is checked when it is loaded. */
	if (cmdline && strlen(cmdline) >= LAYOUT_CMDLINE_MAX)
		return config_fail(e, -E2BIG, "%s: %zu bytes, more than the %llu this VMM can place",
				   what, strlen(cmdline), LAYOUT_CMDLINE_MAX - 1);
	return set_str(&c->cmdline, cmdline, e, what);
}

int config_set_cpus(struct vmm_config *c, long long n, const char *what, struct vmm_error *e)
{
	if (n < 1 || n > CONFIG_MAX_CPUS)
		return config_fail(e, -EINVAL, "%s: %lld is out of range (1..%d)", what, n,
				   CONFIG_MAX_CPUS);
	c->nr_cpus = (unsigned int)n;
	c->names.cpus = what;
	return 0;
}

int config_set_memory(struct vmm_config *c, uint64_t bytes, const char *what, struct vmm_error *e)
{
	if (bytes == 0)
		return config_fail(e, -EINVAL, "%s: 0 is not a usable amount of RAM", what);
	if (bytes < CONFIG_MIN_MEM)
		return config_fail(e, -EINVAL, "%s: %llu bytes is less than the 4 MiB minimum",
				   what, (unsigned long long)bytes);
	if (!IS_ALIGNED(bytes, 4 * KiB))
		return config_fail(e, -EINVAL, "%s: %llu bytes is not a multiple of 4 KiB", what,
				   (unsigned long long)bytes);
	/* Below what any page table of ours could map: 64 TiB. */
	if (bytes > 64 * 1024 * GiB)
		return config_fail(e, -EINVAL, "%s: %llu bytes is more than 64 TiB", what,
				   (unsigned long long)bytes);
	c->mem_size = bytes;
	c->names.memory = what;
	return 0;
}

int config_set_memory_file(struct vmm_config *c, const char *path, const char *what,
			   struct vmm_error *e)
{
	if (!path) {
		free(c->mem_path);
		c->mem_path = NULL;
		return 0;
	}
	return config_set_path(&c->mem_path, path, what, e);
}

int config_set_cpuid_mask(struct vmm_config *c, const char *list, const char *what,
			  struct vmm_error *e)
{
	const struct cpuid_feature *f[CPUID_MASK_MAX];
	unsigned int n;
	char bad[64];
	int r;

	if (!list || !*list)
		return set_str(&c->cpuid_mask, NULL, e, what);
	r = cpuid_mask_parse(list, f, CPUID_MASK_MAX, &n, bad, sizeof(bad));
	if (r == -E2BIG)
		return config_fail(e, r, "%s: more than %d features", what, CPUID_MASK_MAX);
	if (r < 0)
		return config_fail(e, r, "%s: unknown CPU feature '%s' (names as in /proc/cpuinfo)",
				   what, bad);
	return set_str(&c->cpuid_mask, list, e, what);
}

int config_set_debug_exit_port(struct vmm_config *c, long long port, const char *what,
			       struct vmm_error *e)
{
	const char *clash;

	if (port < 0 || port > 0xffff)
		return config_fail(e, -EINVAL, "%s: %lld is not an I/O port (0..65535)", what, port);
	if (port && !config_port_free((unsigned int)port, 1, &clash))
		return config_fail(e, -EINVAL, "%s: 0x%llx is taken by %s", what, port, clash);
	c->debug_exit_port = (uint16_t)port;
	return 0;
}

int config_set_timeout(struct vmm_config *c, long long s, const char *what, struct vmm_error *e)
{
	if (s < 0 || s > 100 * 365 * 86400LL)
		return config_fail(e, -EINVAL, "%s: %lld is not a number of seconds", what, s);
	c->timeout_s = (unsigned int)s;
	return 0;
}

static bool printable(const char *s)
{
	for (; *s; s++) {
		if (*s < 0x20 || *s > 0x7e)
			return false;
	}
	return true;
}

/* Check one disk on its own; what names it in messages. */
static int disk_check(const struct vmm_disk *d, const char *what, struct vmm_error *e)
{
	if (!d->id || !config_id_valid(d->id))
		return config_fail(e, -EINVAL,
				   "%s: id '%s' is not 1 to %d letters, digits, '_', '-' or '.'",
				   what, d->id ? d->id : "", CONFIG_ID_MAX);
	if ((!d->path || !*d->path) && d->fd < 0)
		return config_fail(e, -EINVAL, "%s: no image path", what);
	if (d->path && strlen(d->path) >= 4096)
		return config_fail(e, -ENAMETOOLONG, "%s: path longer than 4095 bytes", what);
	if (d->serial && (!*d->serial || strlen(d->serial) > CONFIG_SERIAL_MAX))
		return config_fail(e, -EINVAL, "%s: serial must be 1 to %d characters", what,
				   CONFIG_SERIAL_MAX);
	if (d->serial && !printable(d->serial))
		return config_fail(e, -EINVAL, "%s: serial must be printable ASCII", what);
	if (d->partuuid && (!d->root || !*d->partuuid || strlen(d->partuuid) > 64 ||
			    !printable(d->partuuid) || strchr(d->partuuid, ' ')))
		return config_fail(e, -EINVAL,
				   d->root ? "%s: partuuid '%s' is not a partition UUID"
					   : "%s: partuuid '%s' is only for the root device",
				   what, d->partuuid);
	if (d->poll_us > VMM_DISK_POLL_US_MAX)
		return config_fail(e, -EINVAL,
				   "%s: poll must be microseconds from 0 (off) to %u", what,
				   VMM_DISK_POLL_US_MAX);
	if ((unsigned int)d->cache > VMM_CACHE_NONE)
		return config_fail(e, -EINVAL, "%s: unknown cache mode %d", what, (int)d->cache);
	if ((unsigned int)d->io > VMM_IO_SYNC)
		return config_fail(e, -EINVAL, "%s: unknown I/O engine %d", what, (int)d->io);
	return 0;
}

int config_put_disk(struct vmm_config *c, const struct vmm_disk *d, const char *what,
		    struct vmm_error *e)
{
	struct config_disk nd = { .fd = -1 }, *slot;
	bool ok = true;
	int r;

	if ((r = disk_check(d, what, e)) < 0)
		return r;
	slot = config_disk_find(c, d->id);
	if (!slot && c->nr_disks >= VMM_MAX_DISKS)
		return config_fail(e, -ENOSPC, "%s: more than %d disks", what, VMM_MAX_DISKS);
	for (unsigned int i = 0; i < c->nr_disks; i++) {
		const struct config_disk *o = &c->disks[i];

		if (o == slot)
			continue;
		if (d->root && o->root)
			return config_fail(e, -EINVAL, "%s: disk '%s' is already the root device",
					   what, o->id);
		if (d->path && o->path && !strcmp(d->path, o->path))
			return config_fail(e, -EINVAL, "%s: %s is also disk '%s'", what, d->path,
					   o->id);
	}
	nd.id = dup_or_null(d->id, &ok);
	nd.path = dup_or_null(d->path, &ok);
	nd.partuuid = dup_or_null(d->partuuid, &ok);
	nd.serial = dup_or_null(d->serial, &ok);
	nd.fd = dup_fd(d->fd, &ok);
	nd.read_only = d->read_only;
	nd.root = d->root;
	nd.cache = d->cache;
	nd.io = d->io;
	nd.poll_us = d->poll_us;
	if (!ok) {
		disk_fini(&nd);
		return config_fail(e, -ENOMEM, "%s: out of memory", what);
	}
	if (slot)
		disk_fini(slot);
	else
		slot = &c->disks[c->nr_disks++];
	*slot = nd;
	return 0;
}

bool config_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];
	char end;

	if (!s || strlen(s) != 17 ||
	    sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &end) != 6)
		return false;
	for (int i = 0; i < 6; i++) {
		if (s[i * 3 + 2] != ':' && i < 5)
			return false;
		mac[i] = (uint8_t)b[i];
	}
	return true;
}

struct config_net *config_net_find(struct vmm_config *c, const char *id)
{
	for (unsigned int i = 0; i < c->nr_nets; i++) {
		if (!strcmp(c->nets[i].id, id))
			return &c->nets[i];
	}
	return NULL;
}

bool config_parse_hostfwd(const char *s, struct config_hostfwd *out, char *err, size_t errlen)
{
	char buf[96], *host, *hport, *guest, *gport, *dash, *end;
	struct config_hostfwd f = {0};
	struct in_addr a;
	unsigned long v;

	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "too long");
		return false;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	/* PROTO:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT */
	host = strchr(buf, ':');
	if (!host) {
		snprintf(err, errlen, "not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT");
		return false;
	}
	*host++ = '\0';
	if (!strcmp(buf, "udp")) {
		f.udp = true;
	} else if (*buf && strcmp(buf, "tcp")) {
		snprintf(err, errlen, "protocol '%s' is not tcp or udp", buf);
		return false;
	}
	dash = strchr(host, '-');
	hport = strchr(host, ':');
	if (!dash || !hport || hport > dash || !(gport = strrchr(dash, ':'))) {
		snprintf(err, errlen, "not [tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT");
		return false;
	}
	*hport++ = '\0';
	*dash = '\0';
	guest = dash + 1;
	*gport++ = '\0';
	f.host_addr = htonl(INADDR_LOOPBACK);
	if (*host) {
		if (inet_pton(AF_INET, host, &a) != 1) {
			snprintf(err, errlen, "host address '%s' is not an IPv4 address", host);
			return false;
		}
		f.host_addr = a.s_addr;
	}
	if (*guest) {
		if (inet_pton(AF_INET, guest, &a) != 1 ||
		    (ntohl(a.s_addr) & 0xffffff00) != 0x0a000200) {
			snprintf(err, errlen, "guest address '%s' is not an IPv4 address in "
				 "10.0.2.0/24", guest);
			return false;
		}
		f.guest_addr = a.s_addr;
	}
	errno = 0;
	v = strtoul(hport, &end, 10);
	if (!*hport || *end || errno || v < 1 || v > 65535) {
		snprintf(err, errlen, "host port '%s' is not 1 to 65535", hport);
		return false;
	}
	f.host_port = (uint16_t)v;
	v = strtoul(gport, &end, 10);
	if (!*gport || *end || errno || v < 1 || v > 65535) {
		snprintf(err, errlen, "guest port '%s' is not 1 to 65535", gport);
		return false;
	}
	f.guest_port = (uint16_t)v;
	*out = f;
	return true;
}

void config_hostfwd_format(const struct config_hostfwd *f, char *buf, size_t len)
{
	char h[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN] = "";
	struct in_addr a = { f->host_addr };

	inet_ntop(AF_INET, &a, h, sizeof(h));
	if (f->guest_addr) {
		a.s_addr = f->guest_addr;
		inet_ntop(AF_INET, &a, g, sizeof(g));
	}
	snprintf(buf, len, "%s:%s:%u-%s:%u", f->udp ? "udp" : "tcp", h, f->host_port, g,
		 f->guest_port);
}

/* Two rules that would bind one host socket (any address overlaps every address). */
static bool same_host_port(const struct config_hostfwd *a, const struct config_hostfwd *b)
{
	return a->udp == b->udp && a->host_port == b->host_port &&
	       (a->host_addr == b->host_addr || !a->host_addr || !b->host_addr);
}

/* A comma-separated list of rules into nn->fwd. */
static int parse_hostfwds(const char *list, struct config_net *nn, const char *what,
			  struct vmm_error *e)
{
	const char *p = list;
	char rule[128], why[128];

	while (p && *p) {
		size_t len = strcspn(p, ",");

		if (len >= sizeof(rule))
			len = sizeof(rule) - 1;
		memcpy(rule, p, len);
		rule[len] = '\0';
		p += strcspn(p, ",");
		if (*p)
			p++;
		if (nn->nr_fwd == CONFIG_MAX_HOSTFWD)
			return config_fail(e, -EINVAL, "%s: more than %d hostfwd rules", what,
					   CONFIG_MAX_HOSTFWD);
		if (!config_parse_hostfwd(rule, &nn->fwd[nn->nr_fwd], why, sizeof(why)))
			return config_fail(e, -EINVAL, "%s: hostfwd '%s': %s", what, rule, why);
		for (unsigned int i = 0; i < nn->nr_fwd; i++) {
			if (same_host_port(&nn->fwd[i], &nn->fwd[nn->nr_fwd]))
				return config_fail(e, -EINVAL, "%s: hostfwd '%s': %s port %u is "
						   "forwarded twice", what, rule,
						   nn->fwd[i].udp ? "udp" : "tcp",
						   nn->fwd[i].host_port);
		}
		nn->nr_fwd++;
	}
	return 0;
}

static int bucket_check(const struct vmm_token_bucket *b, const char *what, const char *name,
			struct vmm_error *e)
{
	if (!tb_config_valid(b))
		return config_fail(e, -EINVAL, "%s: %s: size and refill_time must both be 0 (no "
				   "limit) or both be positive, and one_time_burst needs a size",
				   what, name);
	return 0;
}

int config_put_net(struct vmm_config *c, const struct vmm_net *n, const char *what,
		   struct vmm_error *e)
{
	struct config_net nn = { .fd = -1 }, *slot;
	bool ok = true;
	int r;

	if (!n->id || !config_id_valid(n->id))
		return config_fail(e, -EINVAL,
				   "%s: id '%s' is not 1 to %d letters, digits, '_', '-' or '.'",
				   what, n->id ? n->id : "", CONFIG_ID_MAX);
	if (n->user && n->tap && *n->tap)
		return config_fail(e, -EINVAL, "%s: user-mode networking has no tap", what);
	if (!n->user && n->hostfwd && *n->hostfwd)
		return config_fail(e, -EINVAL, "%s: hostfwd needs user-mode networking", what);
	if (!n->user && n->mtu)
		return config_fail(e, -EINVAL, "%s: mtu is for user-mode networking (a tap's MTU "
				   "is the tap's: ip link set NAME mtu N)", what);
	if (n->mtu && (n->mtu < CONFIG_NET_MTU_MIN || n->mtu > CONFIG_NET_MTU_MAX))
		return config_fail(e, -EINVAL, "%s: mtu %u is not %d to %d", what, n->mtu,
				   CONFIG_NET_MTU_MIN, CONFIG_NET_MTU_MAX);
	char rxw[112], txw[112];
	snprintf(rxw, sizeof(rxw), "%s: rx_rate_limiter", what);
	snprintf(txw, sizeof(txw), "%s: tx_rate_limiter", what);
	if ((r = bucket_check(&n->rx_rate_limiter.bandwidth, rxw, "bandwidth", e)) < 0 ||
	    (r = bucket_check(&n->rx_rate_limiter.ops, rxw, "ops", e)) < 0 ||
	    (r = bucket_check(&n->tx_rate_limiter.bandwidth, txw, "bandwidth", e)) < 0 ||
	    (r = bucket_check(&n->tx_rate_limiter.ops, txw, "ops", e)) < 0)
		return r;
	if (!n->user && (!n->tap || !*n->tap) && n->fd < 0)
		return config_fail(e, -EINVAL, "%s: no tap device named", what);
	/* An open tap without a name: its name, so that a snapshot can open it again. (A user
	 * network's fd, handed over by a live update, is its helper's socket.) */
	struct ifreq ifr = {0};
	if (!n->user && (!n->tap || !*n->tap) && ioctl(n->fd, TUNGETIFF, &ifr) < 0)
		return config_fail(e, -EINVAL, "%s: fd %d is not a tap (%s)", what, n->fd,
				   strerror(errno));
	if (n->user && (r = parse_hostfwds(n->hostfwd, &nn, what, e)) < 0)
		return r;
	if (n->tap && strlen(n->tap) > 15)
		return config_fail(e, -EINVAL, "%s: tap name '%s' is longer than 15 characters",
				   what, n->tap);
	if (n->mac && !config_parse_mac(n->mac, nn.mac))
		return config_fail(e, -EINVAL, "%s: MAC '%s' is not six hex bytes aa:bb:cc:dd:ee:ff",
				   what, n->mac);
	if (n->mac && (nn.mac[0] & 1))
		return config_fail(e, -EINVAL, "%s: MAC '%s' is a multicast address", what, n->mac);
	slot = config_net_find(c, n->id);
	if (!slot && c->nr_nets >= VMM_MAX_NICS)
		return config_fail(e, -ENOSPC, "%s: more than %d network interfaces", what,
				   VMM_MAX_NICS);
	for (unsigned int i = 0; i < c->nr_nets; i++) {
		const struct config_net *o = &c->nets[i];

		if (o != slot && n->tap && o->tap && !strcmp(n->tap, o->tap))
			return config_fail(e, -EINVAL, "%s: tap '%s' is also interface '%s'", what,
					   n->tap, o->id);
		for (unsigned int j = 0; o != slot && j < o->nr_fwd; j++) {
			for (unsigned int k = 0; k < nn.nr_fwd; k++) {
				if (same_host_port(&o->fwd[j], &nn.fwd[k]))
					return config_fail(e, -EINVAL, "%s: hostfwd: %s port %u is "
							   "also forwarded by interface '%s'", what,
							   nn.fwd[k].udp ? "udp" : "tcp",
							   nn.fwd[k].host_port, o->id);
			}
		}
	}
	nn.id = dup_or_null(n->id, &ok);
	nn.user = n->user;
	nn.mtu = n->mtu;
	nn.rx_limit = n->rx_rate_limiter;
	nn.tx_limit = n->tx_rate_limiter;
	if (!n->user)
		nn.tap = dup_or_null(n->tap && *n->tap ? n->tap : ifr.ifr_name, &ok);
	nn.fd = dup_fd(n->fd, &ok);
	nn.has_mac = n->mac != NULL;
	if (!ok) {
		net_fini(&nn);
		return config_fail(e, -ENOMEM, "%s: out of memory", what);
	}
	if (slot)
		net_fini(slot);
	else
		slot = &c->nets[c->nr_nets++];
	*slot = nn;
	return 0;
}

struct config_pmem *config_pmem_find(struct vmm_config *c, const char *id)
{
	for (unsigned int i = 0; i < c->nr_pmems; i++) {
		if (!strcmp(c->pmems[i].id, id))
			return &c->pmems[i];
	}
	return NULL;
}

int config_put_pmem(struct vmm_config *c, const struct vmm_pmem *p, const char *what,
		    struct vmm_error *e)
{
	struct config_pmem np = { .fd = -1 }, *slot;
	bool ok = true;

	if (!p->id || !config_id_valid(p->id))
		return config_fail(e, -EINVAL,
				   "%s: id '%s' is not 1 to %d letters, digits, '_', '-' or '.'",
				   what, p->id ? p->id : "", CONFIG_ID_MAX);
	if ((!p->path || !*p->path) && p->fd < 0)
		return config_fail(e, -EINVAL, "%s: no file path", what);
	if (p->path && strlen(p->path) >= 4096)
		return config_fail(e, -ENAMETOOLONG, "%s: path longer than 4095 bytes", what);
	slot = config_pmem_find(c, p->id);
	if (!slot && c->nr_pmems >= VMM_MAX_PMEM)
		return config_fail(e, -ENOSPC, "%s: more than %d pmem devices", what, VMM_MAX_PMEM);
	for (unsigned int i = 0; i < c->nr_pmems; i++) {
		const struct config_pmem *o = &c->pmems[i];

		if (o == slot)
			continue;
		if (p->root && o->root)
			return config_fail(e, -EINVAL, "%s: pmem '%s' is already the root device",
					   what, o->id);
		if (p->path && o->path && !strcmp(p->path, o->path))
			return config_fail(e, -EINVAL, "%s: %s is also pmem '%s'", what, p->path,
					   o->id);
	}
	np.id = dup_or_null(p->id, &ok);
	np.path = dup_or_null(p->path, &ok);
	np.fd = dup_fd(p->fd, &ok);
	np.read_only = p->read_only;
	np.root = p->root;
	if (!ok) {
		pmem_fini(&np);
		return config_fail(e, -ENOMEM, "%s: out of memory", what);
	}
	if (slot)
		pmem_fini(slot);
	else
		slot = &c->pmems[c->nr_pmems++];
	*slot = np;
	return 0;
}

int config_validate(const struct vmm_config *c, struct vmm_error *e)
{
	const char *clash;

	if (!c->kernel)
		return config_fail(e, -EINVAL, "kernel: none given");
	if (c->debug_exit_port && !config_port_free(c->debug_exit_port, 1, &clash))
		return config_fail(e, -EINVAL, "debug-exit port: 0x%x is taken by %s",
				   c->debug_exit_port, clash);
	/* One virtio-mmio window and GSI each; LAYOUT_VIRTIO_MAX_DEVS in all. */
	if (config_virtio_devices(c) > LAYOUT_VIRTIO_MAX_DEVS) {
		char pm[32] = "";

		if (c->nr_pmems)
			snprintf(pm, sizeof(pm), ", %u pmem", c->nr_pmems);
		return config_fail(e, -ENOSPC, "devices: %u disks, %u network interfaces%s%s%s%s "
				   "need more than the %d virtio-mmio slots", c->nr_disks, c->nr_nets,
				   c->console == VMM_CONSOLE_VIRTIO ? ", a virtio console" : "",
				   c->rng ? ", an entropy device" : "", pm,
				   c->vsock.set ? ", a vsock device" : "", LAYOUT_VIRTIO_MAX_DEVS);
	}
	/* Device ids are one name space (the device table, a live update's host files). */
	for (unsigned int i = 0; i < c->nr_nets; i++) {
		for (unsigned int j = 0; j < c->nr_disks; j++) {
			if (!strcmp(c->nets[i].id, c->disks[j].id))
				return config_fail(e, -EINVAL, "network interface '%s': a disk has "
						   "that id too", c->nets[i].id);
		}
		for (unsigned int j = 0; j < c->nr_pmems; j++) {
			if (!strcmp(c->nets[i].id, c->pmems[j].id))
				return config_fail(e, -EINVAL, "network interface '%s': a pmem has "
						   "that id too", c->nets[i].id);
		}
	}
	for (unsigned int i = 0; i < c->nr_pmems; i++) {
		for (unsigned int j = 0; j < c->nr_disks; j++) {
			if (!strcmp(c->pmems[i].id, c->disks[j].id))
				return config_fail(e, -EINVAL, "pmem '%s': a disk has that id too",
						   c->pmems[i].id);
			if (c->pmems[i].root && c->disks[j].root)
				return config_fail(e, -EINVAL, "pmem '%s': disk '%s' is already the "
						   "root device", c->pmems[i].id, c->disks[j].id);
		}
	}
	return 0;
}

unsigned int config_virtio_devices(const struct vmm_config *c)
{
	return c->nr_disks + (c->console == VMM_CONSOLE_VIRTIO) + c->rng + c->nr_pmems +
	       c->nr_nets + c->vsock.set;
}

int config_set_vsock(struct vmm_config *c, const struct vmm_vsock *v, const char *what,
		     struct vmm_error *e)
{
	struct config_vsock nv = { .fd = -1 };
	bool ok = true;

	if (!v) {
		free(c->vsock.uds);
		if (c->vsock.fd >= 0)
			close(c->vsock.fd);
		c->vsock = (struct config_vsock){ .fd = -1 };
		return 0;
	}
	/* 0 to 2 are the hypervisor's, loopback's and the host's; -1U is VMADDR_CID_ANY; Linux
	 * keeps CIDs to 32 bits. */
	if (v->cid < 3 || v->cid >= UINT32_MAX)
		return config_fail(e, -EINVAL, "%s: guest CID %llu is reserved or out of range: "
				   "use 3 to 4294967294", what, (unsigned long long)v->cid);
	if (!v->uds_path || !*v->uds_path)
		return config_fail(e, -EINVAL, "%s: no uds_path (the host side's unix socket)",
				   what);
	/* PATH_4294967295 must fit a socket address (108 bytes with its NUL). */
	if (strlen(v->uds_path) > 107 - 11)
		return config_fail(e, -ENAMETOOLONG, "%s: uds_path %s: longer than the 96 bytes "
				   "that leave room for _PORT in a unix socket path", what,
				   v->uds_path);
	nv.set = true;
	nv.cid = v->cid;
	nv.uds = dup_or_null(v->uds_path, &ok);
	nv.fd = dup_fd(v->fd, &ok);
	if (!ok) {
		free(nv.uds);
		if (nv.fd >= 0)
			close(nv.fd);
		return config_fail(e, -ENOMEM, "%s: out of memory", what);
	}
	free(c->vsock.uds);
	if (c->vsock.fd >= 0)
		close(c->vsock.fd);
	c->vsock = nv;
	return 0;
}


int config_set_entropy(struct vmm_config *c, bool enable, const struct vmm_rate_limiter *rl,
		       const char *what, struct vmm_error *e)
{
	int r;

	if (rl && ((r = bucket_check(&rl->bandwidth, what, "bandwidth", e)) < 0 ||
		   (r = bucket_check(&rl->ops, what, "ops", e)) < 0))
		return r;
	c->rng = enable;
	c->rng_limit = enable && rl ? *rl : (struct vmm_rate_limiter){0};
	return 0;
}

char *config_cmdline(const struct vmm_config *c)
{
	const char *base = c->cmdline ? c->cmdline
		: c->console == VMM_CONSOLE_VIRTIO ? CONFIG_DEFAULT_CMDLINE_VIRTIO
						    : CONFIG_DEFAULT_CMDLINE;
	const struct config_disk *root = NULL;
	char *s;

	for (unsigned int i = 0; i < c->nr_disks; i++) {
		if (c->disks[i].root)
			root = &c->disks[i];
	}
	for (unsigned int i = 0; !root && i < c->nr_pmems; i++) {
		/* The root pmem is the first (machine.c), so /dev/pmem0; DAX: no page cache copy. */
		if (c->pmems[i].root) {
			if (asprintf(&s, "%s%sroot=/dev/pmem0 rootflags=dax %s", base,
				     *base ? " " : "", c->pmems[i].read_only ? "ro" : "rw") < 0)
				return NULL;
			return s;
		}
	}
	if (!root)
		return strdup(base);
	/* As Firecracker does for is_root_device: the root disk is /dev/vda (machine.c puts it
	 * first). */
	if (root->partuuid) {
		if (asprintf(&s, "%s%sroot=PARTUUID=%s %s", base, *base ? " " : "",
			     root->partuuid, root->read_only ? "ro" : "rw") < 0)
			return NULL;
	} else if (asprintf(&s, "%s%sroot=/dev/vda %s", base, *base ? " " : "",
			    root->read_only ? "ro" : "rw") < 0) {
		return NULL;
	}
	return s;
}

const struct config_pmem *config_pmem_at(const struct vmm_config *c, unsigned int idx)
{
	unsigned int root = c->nr_pmems;

	for (unsigned int i = 0; i < c->nr_pmems; i++) {
		if (c->pmems[i].root)
			root = i;
	}
	if (root == c->nr_pmems)
		return &c->pmems[idx];
	if (idx == 0)
		return &c->pmems[root];
	return &c->pmems[idx <= root ? idx - 1 : idx];
}

/* ---- the public setters (libvmm): the neutral field names ---- */

void vmm_disk_init(struct vmm_disk *d)
{
	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->cache = VMM_CACHE_WRITEBACK;
	d->io = VMM_IO_AUTO;
	d->poll_us = VMM_DISK_POLL_US_DEFAULT;
}

struct vmm_config *vmm_config_new(void)
{
	struct vmm_config *c = malloc(sizeof(*c));

	if (c)
		config_init(c);
	return c;
}

struct vmm_config *vmm_config_dup(const struct vmm_config *c)
{
	struct vmm_config *d = malloc(sizeof(*d));

	if (d && config_copy(d, c) < 0) {
		free(d);
		return NULL;
	}
	return d;
}

void vmm_config_free(struct vmm_config *c)
{
	if (!c)
		return;
	config_fini(c);
	free(c);
}

int vmm_config_set_id(struct vmm_config *c, const char *id, struct vmm_error *e)
{
	return config_set_id(c, id, "id", e);
}

int vmm_config_set_kernel(struct vmm_config *c, const char *path, struct vmm_error *e)
{
	return config_set_path(&c->kernel, path, "kernel", e);
}

int vmm_config_set_initrd(struct vmm_config *c, const char *path, struct vmm_error *e)
{
	if (!path) {
		free(c->initrd);
		c->initrd = NULL;
		return 0;
	}
	return config_set_path(&c->initrd, path, "initrd", e);
}

int vmm_config_set_cmdline(struct vmm_config *c, const char *cmdline, struct vmm_error *e)
{
	return config_set_cmdline(c, cmdline, "cmdline", e);
}

int vmm_config_set_cpus(struct vmm_config *c, unsigned int n, struct vmm_error *e)
{
	return config_set_cpus(c, n, "cpus", e);
}

int vmm_config_set_memory(struct vmm_config *c, uint64_t bytes, struct vmm_error *e)
{
	return config_set_memory(c, bytes, "memory", e);
}

int vmm_config_set_memory_file(struct vmm_config *c, const char *path, struct vmm_error *e)
{
	return config_set_memory_file(c, path, "memory file", e);
}

int vmm_config_set_console(struct vmm_config *c, enum vmm_console_kind kind, int in_fd,
			   int out_fd, bool escape, struct vmm_error *e)
{
	if (kind != VMM_CONSOLE_SERIAL && kind != VMM_CONSOLE_VIRTIO)
		return config_fail(e, -EINVAL, "console: unknown kind %d", (int)kind);
	c->console = kind;
	c->console_in = in_fd < 0 ? -1 : in_fd;
	c->console_out = out_fd < 0 ? -1 : out_fd;
	c->console_escape = escape;
	return 0;
}

int vmm_config_set_timeout(struct vmm_config *c, unsigned int seconds, struct vmm_error *e)
{
	return config_set_timeout(c, seconds, "timeout", e);
}

int vmm_config_set_on_reboot(struct vmm_config *c, enum vmm_on_reboot r, struct vmm_error *e)
{
	if (r != VMM_ON_REBOOT_EXIT && r != VMM_ON_REBOOT_RESTART)
		return config_fail(e, -EINVAL, "on-reboot: unknown action %d", (int)r);
	c->on_reboot = r;
	return 0;
}

int vmm_config_set_debug_exit_port(struct vmm_config *c, unsigned int port, struct vmm_error *e)
{
	return config_set_debug_exit_port(c, port, "debug-exit port", e);
}

int vmm_config_set_cpuid_mask(struct vmm_config *c, const char *list, struct vmm_error *e)
{
	return config_set_cpuid_mask(c, list, "cpuid mask", e);
}

int vmm_config_set_kvm_device(struct vmm_config *c, const char *path, struct vmm_error *e)
{
	return config_set_path(&c->kvm_path, path, "kvm device", e);
}

int vmm_config_put_disk(struct vmm_config *c, const struct vmm_disk *d, struct vmm_error *e)
{
	char what[96];

	snprintf(what, sizeof(what), "disk '%s'", d->id ? d->id : "");
	return config_put_disk(c, d, what, e);
}

void vmm_net_init(struct vmm_net *n)
{
	memset(n, 0, sizeof(*n));
	n->fd = -1;
}

int vmm_config_put_net(struct vmm_config *c, const struct vmm_net *n, struct vmm_error *e)
{
	char what[96];

	snprintf(what, sizeof(what), "network interface '%s'", n->id ? n->id : "");
	return config_put_net(c, n, what, e);
}

void vmm_pmem_init(struct vmm_pmem *p)
{
	memset(p, 0, sizeof(*p));
	p->fd = -1;
}

int vmm_config_put_pmem(struct vmm_config *c, const struct vmm_pmem *p, struct vmm_error *e)
{
	char what[96];

	snprintf(what, sizeof(what), "pmem '%s'", p->id ? p->id : "");
	return config_put_pmem(c, p, what, e);
}

void vmm_vsock_init(struct vmm_vsock *v)
{
	memset(v, 0, sizeof(*v));
	v->fd = -1;
}

int vmm_config_set_vsock(struct vmm_config *c, const struct vmm_vsock *v, struct vmm_error *e)
{
	return config_set_vsock(c, v, "vsock", e);
}

int vmm_config_set_entropy(struct vmm_config *c, bool enable, const struct vmm_rate_limiter *rl,
			   struct vmm_error *e)
{
	return config_set_entropy(c, enable, rl, "entropy", e);
}

int vmm_config_validate(const struct vmm_config *c, struct vmm_error *e)
{
	return config_validate(c, e);
}
