// SPDX-License-Identifier: Apache-2.0
/*
 * The configuration in the state (/config): what a restore or a live update rebuilds the
 * machine from. Read back through the configuration's own setters, so a state can ask for
 * nothing a user could not.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/config.h"
#include "vmm/state.h"
#include "vmm/state_config.h"

static bool limits(const struct vmm_rate_limiter *rl)
{
	return rl->bandwidth.size || rl->ops.size;
}

/* A rate limiter's six numbers, their names after prefix ("" for the entropy device's). */
static const char *const limiter_keys[6] = { "bandwidth-size", "bandwidth-burst",
					     "bandwidth-refill-ms", "ops-size", "ops-burst",
					     "ops-refill-ms" };

static uint64_t *limiter_field(struct vmm_rate_limiter *rl, unsigned int i)
{
	struct vmm_token_bucket *b = i < 3 ? &rl->bandwidth : &rl->ops;

	return i % 3 == 0 ? &b->size : i % 3 == 1 ? &b->one_time_burst : &b->refill_time_ms;
}

static void put_limiter(struct state_writer *w, int node, const char *prefix,
			const struct vmm_rate_limiter *rl)
{
	struct vmm_rate_limiter copy = *rl;
	char key[32];

	for (unsigned int i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "%s%s", prefix, limiter_keys[i]);
		state_put_u64(w, node, key, *limiter_field(&copy, i));
	}
}

/* 1: read; 0: absent (none of its numbers; *rl zeroed); -1: some but not all of them. */
static int get_limiter(const struct state_reader *r, int node, const char *prefix,
		       struct vmm_rate_limiter *rl)
{
	unsigned int found = 0;
	char key[32];

	*rl = (struct vmm_rate_limiter){0};
	for (unsigned int i = 0; i < 6; i++) {
		snprintf(key, sizeof(key), "%s%s", prefix, limiter_keys[i]);
		found += state_get_u64(r, node, key, limiter_field(rl, i)) == 0;
	}
	return found == 6 ? 1 : found == 0 ? 0 : -1;
}

void config_state_save(const struct vmm_config *c, struct state_writer *w)
{
	int node = state_node(w, 0, "config"), disks;

	state_put_str(w, node, "compatible", "vmm,config-v1");
	if (c->id)
		state_put_str(w, node, "id", c->id);
	if (c->kernel)
		state_put_str(w, node, "kernel", c->kernel);
	if (c->initrd)
		state_put_str(w, node, "initrd", c->initrd);
	if (c->cmdline)
		state_put_str(w, node, "cmdline", c->cmdline);
	state_put_u32(w, node, "cpus", c->nr_cpus);
	state_put_u64(w, node, "memory", c->mem_size);
	if (c->mem_path)
		state_put_str(w, node, "memory-file", c->mem_path);
	if (c->track_dirty)
		state_put_u32(w, node, "track-dirty", 1);
	state_put_u32(w, node, "console", (uint32_t)c->console);
	state_put_u32(w, node, "timeout", c->timeout_s);
	state_put_u32(w, node, "on-reboot", (uint32_t)c->on_reboot);
	state_put_u32(w, node, "debug-exit-port", c->debug_exit_port);
	if (c->cpuid_mask)
		state_put_str(w, node, "cpuid-mask", c->cpuid_mask);
	if (c->rng)
		put_limiter(w, state_node(w, node, "entropy"), "", &c->rng_limit);
	if (c->vsock.set) {
		int n = state_node(w, node, "vsock");

		state_put_u64(w, n, "cid", c->vsock.cid);
		state_put_str(w, n, "uds-path", c->vsock.uds);
	}
	if (c->nr_nets) {
		int nn = state_node(w, node, "net");

		for (unsigned int i = 0; i < c->nr_nets; i++) {
			const struct config_net *n = &c->nets[i];
			int x = state_node(w, nn, n->id);

			state_put_u32(w, x, "index", i);
			if (n->tap)
				state_put_str(w, x, "tap", n->tap);
			if (n->has_mac)
				state_put(w, x, "mac", n->mac, 6);
			if (limits(&n->rx_limit))
				put_limiter(w, x, "rx-", &n->rx_limit);
			if (limits(&n->tx_limit))
				put_limiter(w, x, "tx-", &n->tx_limit);
			if (n->user) {
				/* The rules as config_put_net() takes them back. */
				char fwd[CONFIG_MAX_HOSTFWD * 48] = "";
				size_t len = 0;

				for (unsigned int j = 0; j < n->nr_fwd; j++) {
					if (j)
						fwd[len++] = ',';
					config_hostfwd_format(&n->fwd[j], fwd + len,
							      sizeof(fwd) - len);
					len = strlen(fwd);
				}
				state_put_u32(w, x, "user", 1);
				state_put_str(w, x, "hostfwd", fwd);
				if (n->mtu)
					state_put_u32(w, x, "mtu", n->mtu);
			}
		}
	}
	if (c->nr_pmems) {
		int pm = state_node(w, node, "pmem");

		for (unsigned int i = 0; i < c->nr_pmems; i++) {
			const struct config_pmem *p = &c->pmems[i];
			int n = state_node(w, pm, p->id);

			state_put_u32(w, n, "index", i);
			if (p->path)
				state_put_str(w, n, "path", p->path);
			state_put_u32(w, n, "read-only", p->read_only);
			state_put_u32(w, n, "root", p->root);
		}
	}
	disks = state_node(w, node, "disks");
	/* In configuration order (the guest's order is derived: root first). */
	for (unsigned int i = 0; i < c->nr_disks; i++) {
		const struct config_disk *d = &c->disks[i];
		int n = state_node(w, disks, d->id);

		state_put_u32(w, n, "index", i);
		if (d->path)
			state_put_str(w, n, "path", d->path);
		state_put_u32(w, n, "read-only", d->read_only);
		state_put_u32(w, n, "root", d->root);
		if (d->partuuid)
			state_put_str(w, n, "partuuid", d->partuuid);
		state_put_u32(w, n, "cache", (uint32_t)d->cache);
		state_put_u32(w, n, "io", (uint32_t)d->io);
		if (d->serial)
			state_put_str(w, n, "serial", d->serial);
		state_put_u32(w, n, "poll-us", d->poll_us);
	}
}

#define PATH_MAX_STATE 4096

static int u32_field(const struct state_reader *r, int node, const char *prop, uint32_t *v,
		     char *err, size_t errlen)
{
	if (state_get_u32(r, node, prop, v) < 0) {
		snprintf(err, errlen, "config: %s missing or malformed", prop);
		return -EINVAL;
	}
	return 0;
}

int config_state_load(struct vmm_config *c, const struct state_reader *r, char *err,
		      size_t errlen)
{
	int node = state_find(r, "/config"), disks, e;
	const char *compat = state_get_str(r, node, "compatible", 64), *s;
	uint32_t cpus, console, timeout, on_reboot, port;
	uint64_t mem;
	struct vmm_error ve;

	if (!compat || strcmp(compat, "vmm,config-v1")) {
		snprintf(err, errlen, "config: missing, or not a vmm,config-v1 node");
		return -EINVAL;
	}
	if ((e = u32_field(r, node, "cpus", &cpus, err, errlen)) < 0 ||
	    (e = u32_field(r, node, "console", &console, err, errlen)) < 0 ||
	    (e = u32_field(r, node, "timeout", &timeout, err, errlen)) < 0 ||
	    (e = u32_field(r, node, "on-reboot", &on_reboot, err, errlen)) < 0 ||
	    (e = u32_field(r, node, "debug-exit-port", &port, err, errlen)) < 0)
		return e;
	if (state_get_u64(r, node, "memory", &mem) < 0) {
		snprintf(err, errlen, "config: memory missing or malformed");
		return -EINVAL;
	}
	if (console > VMM_CONSOLE_VIRTIO || on_reboot > VMM_ON_REBOOT_RESTART) {
		snprintf(err, errlen, "config: console or on-reboot out of range");
		return -EINVAL;
	}
	if (config_set_cpus(c, cpus, "config: cpus", &ve) < 0 ||
	    config_set_memory(c, mem, "config: memory", &ve) < 0 ||
	    config_set_timeout(c, timeout, "config: timeout", &ve) < 0 ||
	    config_set_debug_exit_port(c, port, "config: debug-exit port", &ve) < 0 ||
	    ((s = state_get_str(r, node, "id", CONFIG_ID_MAX + 1)) &&
	     config_set_id(c, s, "config: id", &ve) < 0) ||
	    ((s = state_get_str(r, node, "kernel", PATH_MAX_STATE)) &&
	     config_set_path(&c->kernel, s, "config: kernel", &ve) < 0) ||
	    ((s = state_get_str(r, node, "initrd", PATH_MAX_STATE)) &&
	     config_set_path(&c->initrd, s, "config: initrd", &ve) < 0) ||
	    ((s = state_get_str(r, node, "cmdline", PATH_MAX_STATE * 16)) &&
	     config_set_cmdline(c, s, "config: cmdline", &ve) < 0) ||
	    ((s = state_get_str(r, node, "memory-file", PATH_MAX_STATE)) &&
	     config_set_memory_file(c, s, "config: memory-file", &ve) < 0) ||
	    ((s = state_get_str(r, node, "cpuid-mask", 1024)) &&
	     config_set_cpuid_mask(c, s, "config: cpuid-mask", &ve) < 0)) {
		snprintf(err, errlen, "%s", ve.msg);
		return -EINVAL;
	}
	c->console = (enum vmm_console_kind)console;
	c->on_reboot = (enum vmm_on_reboot)on_reboot;
	uint32_t track = 0;
	c->track_dirty = state_get_u32(r, node, "track-dirty", &track) == 0 && track;

	int rng = state_find(r, "/config/entropy");
	if (rng >= 0) {
		struct vmm_rate_limiter rl;

		if (get_limiter(r, rng, "", &rl) <= 0) {
			snprintf(err, errlen, "config: entropy: malformed");
			return -EINVAL;
		}
		if (config_set_entropy(c, true, &rl, "config: entropy", &ve) < 0) {
			snprintf(err, errlen, "%s", ve.msg);
			return -EINVAL;
		}
	} else {
		c->rng = false;
	}

	int vs = state_find(r, "/config/vsock");
	if (config_set_vsock(c, NULL, "config: vsock", &ve) < 0) {
		snprintf(err, errlen, "%s", ve.msg);
		return -EINVAL;
	}
	if (vs >= 0) {
		struct vmm_vsock v;

		vmm_vsock_init(&v);
		if (state_get_u64(r, vs, "cid", &v.cid) < 0 ||
		    !(v.uds_path = state_get_str(r, vs, "uds-path", PATH_MAX_STATE))) {
			snprintf(err, errlen, "config: vsock: malformed");
			return -EINVAL;
		}
		if (config_set_vsock(c, &v, "config: vsock", &ve) < 0) {
			snprintf(err, errlen, "%s", ve.msg);
			return -EINVAL;
		}
	}

	int nn = state_find(r, "/config/net");
	config_clear_nets(c);
	for (uint32_t want = 0; nn >= 0 && want < VMM_MAX_NICS; want++) {
		bool found = false;

		for (int x = state_first_child(r, nn); x >= 0; x = state_next_sibling(r, x)) {
			uint32_t idx;
			size_t maclen = 0;
			const uint8_t *mac = state_get_ptr(r, x, "mac", &maclen);
			char macs[18], what[96];
			struct vmm_net n;

			if (state_get_u32(r, x, "index", &idx) < 0 || idx != want)
				continue;
			if (mac && maclen != 6) {
				snprintf(err, errlen, "config: network interface '%s': malformed",
					 state_node_name(r, x));
				return -EINVAL;
			}
			vmm_net_init(&n);
			n.id = state_node_name(r, x);
			n.tap = state_get_str(r, x, "tap", 16);
			if (get_limiter(r, x, "rx-", &n.rx_rate_limiter) < 0 ||
			    get_limiter(r, x, "tx-", &n.tx_rate_limiter) < 0) {
				snprintf(err, errlen, "config: network interface '%s': malformed "
					 "rate limiter", state_node_name(r, x));
				return -EINVAL;
			}
			uint32_t user = 0;
			if (state_get_u32(r, x, "user", &user) == 0 && user) {
				n.user = true;
				n.hostfwd = state_get_str(r, x, "hostfwd", CONFIG_MAX_HOSTFWD * 48);
				/* Absent (states of a vmm before mtu=): 1500. Checked as the
				 * user's. */
				uint32_t mtu = 0;
				if (state_get_u32(r, x, "mtu", &mtu) == 0)
					n.mtu = mtu;
			}
			if (mac) {
				snprintf(macs, sizeof(macs), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0],
					 mac[1], mac[2], mac[3], mac[4], mac[5]);
				n.mac = macs;
			}
			snprintf(what, sizeof(what), "config: network interface '%.60s'",
				 n.id ? n.id : "?");
			if (config_put_net(c, &n, what, &ve) < 0) {
				snprintf(err, errlen, "%s", ve.msg);
				return -EINVAL;
			}
			found = true;
			break;
		}
		if (!found)
			break;
	}
	int pm = state_find(r, "/config/pmem");
	config_clear_pmems(c);
	for (uint32_t want = 0; pm >= 0 && want < VMM_MAX_PMEM; want++) {
		bool found = false;

		for (int n = state_first_child(r, pm); n >= 0; n = state_next_sibling(r, n)) {
			uint32_t idx, ro, root;
			struct vmm_pmem p;
			char what[96];

			if (state_get_u32(r, n, "index", &idx) < 0 || idx != want)
				continue;
			if (state_get_u32(r, n, "read-only", &ro) < 0 ||
			    state_get_u32(r, n, "root", &root) < 0 || ro > 1 || root > 1) {
				snprintf(err, errlen, "config: pmem '%s': malformed",
					 state_node_name(r, n));
				return -EINVAL;
			}
			vmm_pmem_init(&p);
			p.id = state_node_name(r, n);
			p.path = state_get_str(r, n, "path", PATH_MAX_STATE);
			p.read_only = ro;
			p.root = root;
			snprintf(what, sizeof(what), "config: pmem '%.60s'", p.id ? p.id : "?");
			if (config_put_pmem(c, &p, what, &ve) < 0) {
				snprintf(err, errlen, "%s", ve.msg);
				return -EINVAL;
			}
			found = true;
			break;
		}
		if (!found)
			break;
	}

	disks = state_find(r, "/config/disks");
	config_clear_disks(c);
	/* Put back in their configuration order (the index), whatever the node order. */
	for (uint32_t want = 0; disks >= 0 && want < VMM_MAX_DISKS; want++) {
		bool found = false;

		for (int n = state_first_child(r, disks); n >= 0; n = state_next_sibling(r, n)) {
			uint32_t idx, ro, root, cache, io, poll;
			struct vmm_disk d;
			char what[96];

			if (state_get_u32(r, n, "index", &idx) < 0 || idx != want)
				continue;
			if (state_get_u32(r, n, "read-only", &ro) < 0 ||
			    state_get_u32(r, n, "root", &root) < 0 ||
			    state_get_u32(r, n, "cache", &cache) < 0 ||
			    state_get_u32(r, n, "io", &io) < 0 ||
			    state_get_u32(r, n, "poll-us", &poll) < 0 || ro > 1 || root > 1) {
				snprintf(err, errlen, "config: disk '%s': malformed",
					 state_node_name(r, n));
				return -EINVAL;
			}
			vmm_disk_init(&d);
			d.id = state_node_name(r, n);
			d.path = state_get_str(r, n, "path", PATH_MAX_STATE);
			d.read_only = ro;
			d.root = root;
			d.partuuid = state_get_str(r, n, "partuuid", 65);
			d.cache = (enum vmm_cache)cache;
			d.io = (enum vmm_io_engine)io;
			d.serial = state_get_str(r, n, "serial", CONFIG_SERIAL_MAX + 1);
			d.poll_us = poll;
			snprintf(what, sizeof(what), "config: disk '%.60s'", d.id ? d.id : "?");
			if (config_put_disk(c, &d, what, &ve) < 0) {
				snprintf(err, errlen, "%s", ve.msg);
				return -EINVAL;
			}
			found = true;
			break;
		}
		if (!found)
			break;
	}
	return 0;
}
