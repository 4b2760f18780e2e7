// SPDX-License-Identifier: Apache-2.0
/*
 * Firecracker's JSON layouts (its OpenAPI document: BootSource, MachineConfiguration, Drive,
 * FullVmConfiguration; the --config-file layout) mapped onto the configuration model. Every
 * function works on a copy and swaps it in only when everything was accepted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config_json.h"
#include "vmm/file.h"

/* Firecracker's configuration-file sections that vmm does not implement (yet). */
static const char *const unsupported_sections[] = {
	"balloon", "logger", "metrics", "mmds-config", "cpu-config", "memory-hotplug",
	"serial",
};

/* The first key of o not in allowed[], or NULL. */
static const char *unknown_key(const json_t *o, const char *const *allowed, size_t n)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)o, key, v) {
		size_t i;

		for (i = 0; i < n; i++) {
			if (!strcmp(key, allowed[i]))
				break;
		}
		if (i == n)
			return key;
	}
	return NULL;
}

static int check_keys(const json_t *o, const char *const *allowed, size_t n, const char *what,
		      struct vmm_error *e)
{
	const char *k = unknown_key(o, allowed, n);

	if (k)
		return config_fail(e, -EINVAL, "%s: unknown field '%s'", what, k);
	return 0;
}

/*
 * Typed lookups. Each returns 1 when the field is there with the right type, 0 when it is
 * absent (or JSON null, which Firecracker's serde also reads as absent), and a negative errno
 * with a message when it has the wrong type.
 */
static int get_string(const json_t *o, const char *key, const char **out, struct vmm_error *e)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return config_fail(e, -EINVAL, "%s: must be a string", key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return config_fail(e, -EINVAL, "%s: contains a NUL character", key);
	*out = json_string_value(v);
	return 1;
}

static int get_bool(const json_t *o, const char *key, bool *out, struct vmm_error *e)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return config_fail(e, -EINVAL, "%s: must be true or false", key);
	*out = json_is_true(v);
	return 1;
}

static int get_int(const json_t *o, const char *key, long long *out, struct vmm_error *e)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return config_fail(e, -EINVAL, "%s: must be an integer", key);
	*out = json_integer_value(v);
	return 1;
}

static int need(int r, const char *key, const char *what, struct vmm_error *e)
{
	if (r == 0)
		return config_fail(e, -EINVAL, "%s: missing required field '%s'", what, key);
	return r;
}

int cfgjson_parse_object(const char *text, size_t len, const char *what, json_t **out,
			 struct vmm_error *e)
{
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);

	if (!j)
		return config_fail(e, -EINVAL, "%s: not valid JSON: %s (line %d, column %d)", what,
				   je.text, je.line, je.column);
	if (!json_is_object(j)) {
		json_decref(j);
		return config_fail(e, -EINVAL, "%s: must be a JSON object", what);
	}
	*out = j;
	return 0;
}

/* ---- boot-source ---- */

static int apply_boot_source(struct vmm_config *c, const json_t *b, struct vmm_error *e)
{
	static const char *const keys[] = { "kernel_image_path", "boot_args", "initrd_path" };
	const char *kernel = NULL, *args = NULL, *initrd = NULL;
	int r;

	if (!json_is_object(b))
		return config_fail(e, -EINVAL, "boot-source: must be a JSON object");
	if ((r = check_keys(b, keys, ARRAY_SIZE(keys), "boot-source", e)) < 0)
		return r;
	r = need(get_string(b, "kernel_image_path", &kernel, e), "kernel_image_path",
		 "boot-source", e);
	if (r < 0 || (r = get_string(b, "boot_args", &args, e)) < 0 ||
	    (r = get_string(b, "initrd_path", &initrd, e)) < 0)
		return r;
	if ((r = config_set_path(&c->kernel, kernel, "kernel_image_path", e)) < 0)
		return r;
	if ((r = config_set_cmdline(c, args, "boot_args", e)) < 0)
		return r;
	if (initrd)
		return config_set_path(&c->initrd, initrd, "initrd_path", e);
	free(c->initrd);
	c->initrd = NULL;
	return 0;
}

/* ---- machine-config ---- */

static int apply_machine_config(struct vmm_config *c, const json_t *m, bool patch,
				struct vmm_error *e)
{
	static const char *const keys[] = { "vcpu_count", "mem_size_mib", "smt", "cpu_template",
					    "track_dirty_pages", "huge_pages", "mem_backing_path" };
	long long vcpus, mib;
	bool b;
	const char *s;
	int r, have;

	if (!json_is_object(m))
		return config_fail(e, -EINVAL, "machine-config: must be a JSON object");
	if ((r = check_keys(m, keys, ARRAY_SIZE(keys), "machine-config", e)) < 0)
		return r;
	if ((have = get_int(m, "vcpu_count", &vcpus, e)) < 0)
		return have;
	if (!patch && (r = need(have, "vcpu_count", "machine-config", e)) < 0)
		return r;
	if (have && (r = config_set_cpus(c, vcpus, "vcpu_count", e)) < 0)
		return r;
	if ((have = get_int(m, "mem_size_mib", &mib, e)) < 0)
		return have;
	if (!patch && (r = need(have, "mem_size_mib", "machine-config", e)) < 0)
		return r;
	if (have) {
		if (mib <= 0 || (unsigned long long)mib > (64ULL << 20))
			return config_fail(e, -EINVAL, "mem_size_mib: %lld is out of range", mib);
		if ((r = config_set_memory(c, (uint64_t)mib * MiB, "mem_size_mib", e)) < 0)
			return r;
	}
	/* Firecracker's own fields: accepted with the values that ask for nothing we lack. */
	if ((r = get_bool(m, "smt", &b, e)) < 0)
		return r;
	if (r && b)
		return config_fail(e, -EINVAL, "smt: true is not supported (vmm gives each vCPU "
				   "its own core)");
	if ((r = get_string(m, "cpu_template", &s, e)) < 0)
		return r;
	if (r && strcmp(s, "None"))
		return config_fail(e, -EINVAL, "cpu_template: '%s' is not supported (only "
				   "\"None\"; hide features with --cpuid-mask)", s);
	if ((r = get_bool(m, "track_dirty_pages", &b, e)) < 0)
		return r;
	int track = r ? b : -1;
	if ((r = get_string(m, "huge_pages", &s, e)) < 0)
		return r;
	if (r && strcmp(s, "None"))
		return config_fail(e, -EINVAL, "huge_pages: '%s' is not supported (only \"None\"; "
				   "vmm advises transparent huge pages itself)", s);
	/* Ours: guest RAM in a file (vmm_config_set_memory_file); null: a memfd. */
	json_t *mb = json_object_get(m, "mem_backing_path");
	if (mb && !json_is_null(mb) && !json_is_string(mb))
		return config_fail(e, -EINVAL, "mem_backing_path: must be a string or null");
	if (mb && (r = config_set_memory_file(c, json_is_string(mb) ? json_string_value(mb) : NULL,
					       "mem_backing_path", e)) < 0)
		return r;
	if (track >= 0)
		c->track_dirty = track;
	return 0;
}

/* ---- drives ---- */

static int apply_drive(struct vmm_config *c, const char *path_id, const json_t *d,
		       const char *what, struct vmm_error *e)
{
	static const char *const keys[] = { "drive_id", "path_on_host", "is_root_device",
					    "is_read_only", "partuuid", "cache_type", "io_engine",
					    "rate_limiter", "socket" };
	const char *id = NULL, *path = NULL, *partuuid = NULL, *cache = NULL, *engine = NULL;
	const char *sock = NULL;
	struct vmm_disk disk;
	bool root = false, ro = false;
	json_t *rl;
	int r;

	if (!json_is_object(d))
		return config_fail(e, -EINVAL, "%s: must be a JSON object", what);
	if ((r = check_keys(d, keys, ARRAY_SIZE(keys), what, e)) < 0)
		return r;
	if ((r = need(get_string(d, "drive_id", &id, e), "drive_id", what, e)) < 0)
		return r;
	if (path_id && strcmp(id, path_id))
		return config_fail(e, -EINVAL, "drive_id: '%s' differs from the id in the path, "
				   "'%s'", id, path_id);
	if ((r = get_string(d, "socket", &sock, e)) < 0)
		return r;
	if (r)
		return config_fail(e, -EINVAL, "socket: vhost-user drives are not supported");
	rl = json_object_get(d, "rate_limiter");
	if (rl && !json_is_null(rl))
		return config_fail(e, -EINVAL, "rate_limiter: not supported");
	if ((r = need(get_string(d, "path_on_host", &path, e), "path_on_host", what, e)) < 0 ||
	    (r = need(get_bool(d, "is_root_device", &root, e), "is_root_device", what, e)) < 0 ||
	    (r = get_bool(d, "is_read_only", &ro, e)) < 0 ||
	    (r = get_string(d, "partuuid", &partuuid, e)) < 0 ||
	    (r = get_string(d, "cache_type", &cache, e)) < 0 ||
	    (r = get_string(d, "io_engine", &engine, e)) < 0)
		return r;

	vmm_disk_init(&disk);
	disk.id = id;
	disk.path = path;
	disk.root = root;
	disk.read_only = ro;
	disk.partuuid = partuuid;
	/*
	 * Firecracker's "Unsafe" (its default) leaves FLUSH out; vmm always honours FLUSH, which
	 * is never less safe, so both values map to the host page cache with durable flushes.
	 */
	if (cache && strcmp(cache, "Unsafe") && strcmp(cache, "Writeback"))
		return config_fail(e, -EINVAL, "cache_type: '%s' is neither \"Unsafe\" nor "
				   "\"Writeback\"", cache);
	if (engine) {
		if (!strcmp(engine, "Sync"))
			disk.io = VMM_IO_SYNC;
		else if (!strcmp(engine, "Async"))
			disk.io = VMM_IO_URING;
		else
			return config_fail(e, -EINVAL, "io_engine: '%s' is neither \"Sync\" nor "
					   "\"Async\"", engine);
	}
	return config_put_disk(c, &disk, what, e);
}

/* ---- network interfaces ---- */

static int parse_rate_limiter(const json_t *o, const char *what, struct vmm_rate_limiter *rl,
			      struct vmm_error *e);
static json_t *limiter_json(const struct vmm_rate_limiter *rl);

/* Firecracker's NetworkInterface: iface_id, host_dev_name (required), guest_mac, and the
 * rx_rate_limiter and tx_rate_limiter. */
static int apply_net(struct vmm_config *c, const char *path_id, const json_t *o,
		     const char *what, struct vmm_error *e)
{
	static const char *const keys[] = { "iface_id", "host_dev_name", "guest_mac",
					    "rx_rate_limiter", "tx_rate_limiter" };
	const char *id = NULL, *tap = NULL, *mac = NULL;
	struct vmm_net n;
	char sub[96];
	int r;

	vmm_net_init(&n);
	if (!json_is_object(o))
		return config_fail(e, -EINVAL, "%s: must be a JSON object", what);
	if ((r = check_keys(o, keys, ARRAY_SIZE(keys), what, e)) < 0 ||
	    (r = need(get_string(o, "iface_id", &id, e), "iface_id", what, e)) < 0)
		return r;
	if (path_id && strcmp(id, path_id))
		return config_fail(e, -EINVAL, "iface_id: '%s' differs from the id in the path, "
				   "'%s'", id, path_id);
	if ((r = need(get_string(o, "host_dev_name", &tap, e), "host_dev_name", what, e)) < 0 ||
	    (r = get_string(o, "guest_mac", &mac, e)) < 0)
		return r;
	snprintf(sub, sizeof(sub), "%s: rx_rate_limiter", what);
	if ((r = parse_rate_limiter(json_object_get(o, "rx_rate_limiter"), sub,
				    &n.rx_rate_limiter, e)) < 0)
		return r;
	snprintf(sub, sizeof(sub), "%s: tx_rate_limiter", what);
	if ((r = parse_rate_limiter(json_object_get(o, "tx_rate_limiter"), sub,
				    &n.tx_rate_limiter, e)) < 0)
		return r;
	n.id = id;
	n.tap = tap;
	n.mac = mac;
	return config_put_net(c, &n, what, e);
}

static json_t *net_json(const struct config_net *n)
{
	char mac[18];

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
		 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
	return json_pack("{s:s, s:s?, s:s?, s:o, s:o}", "iface_id", n->id, "host_dev_name", n->tap,
			 "guest_mac", n->has_mac ? mac : NULL, "rx_rate_limiter",
			 limiter_json(&n->rx_limit), "tx_rate_limiter", limiter_json(&n->tx_limit));
}

/* ---- pmem ---- */

/* Firecracker's Pmem: id, path_on_host (required), root_device, read_only. */
static int apply_pmem(struct vmm_config *c, const char *path_id, const json_t *o,
		      const char *what, struct vmm_error *e)
{
	static const char *const keys[] = { "id", "path_on_host", "root_device", "read_only" };
	const char *id = NULL, *path = NULL;
	bool root = false, ro = false;
	struct vmm_pmem p;
	int r;

	if (!json_is_object(o))
		return config_fail(e, -EINVAL, "%s: must be a JSON object", what);
	if ((r = check_keys(o, keys, ARRAY_SIZE(keys), what, e)) < 0 ||
	    (r = need(get_string(o, "id", &id, e), "id", what, e)) < 0)
		return r;
	if (path_id && strcmp(id, path_id))
		return config_fail(e, -EINVAL, "id: '%s' differs from the id in the path, '%s'", id,
				   path_id);
	if ((r = need(get_string(o, "path_on_host", &path, e), "path_on_host", what, e)) < 0 ||
	    (r = get_bool(o, "root_device", &root, e)) < 0 ||
	    (r = get_bool(o, "read_only", &ro, e)) < 0)
		return r;
	vmm_pmem_init(&p);
	p.id = id;
	p.path = path;
	p.root = root;
	p.read_only = ro;
	return config_put_pmem(c, &p, what, e);
}

static json_t *pmem_json(const struct config_pmem *p)
{
	return json_pack("{s:s, s:s?, s:b, s:b}", "id", p->id, "path_on_host", p->path,
			 "root_device", p->root, "read_only", p->read_only);
}

/* Firecracker's Vsock: {"guest_cid", "uds_path", "vsock_id" (deprecated, any string)}. */
static int apply_vsock(struct vmm_config *c, const json_t *o, struct vmm_error *e)
{
	static const char *const keys[] = { "guest_cid", "uds_path", "vsock_id" };
	const char *uds = NULL, *id = NULL;
	long long cid = 0;
	struct vmm_vsock v;
	int r;

	if (!json_is_object(o))
		return config_fail(e, -EINVAL, "vsock: must be a JSON object");
	if ((r = check_keys(o, keys, ARRAY_SIZE(keys), "vsock", e)) < 0 ||
	    (r = need(get_int(o, "guest_cid", &cid, e), "guest_cid", "vsock", e)) < 0 ||
	    (r = need(get_string(o, "uds_path", &uds, e), "uds_path", "vsock", e)) < 0 ||
	    (r = get_string(o, "vsock_id", &id, e)) < 0)
		return r;
	if (cid < 0)
		return config_fail(e, -EINVAL, "vsock: guest_cid %lld is negative", cid);
	vmm_vsock_init(&v);
	v.cid = (uint64_t)cid;
	v.uds_path = uds;
	return config_set_vsock(c, &v, "vsock", e);
}

static json_t *vsock_json(const struct vmm_config *c)
{
	if (!c->vsock.set)
		return json_null();
	return json_pack("{s:I, s:s?}", "guest_cid", (json_int_t)c->vsock.cid, "uds_path",
			 c->vsock.uds);
}

/* ---- rate limiters and the entropy device ---- */

/* Firecracker's TokenBucket: size and refill_time (ms) required, one_time_burst optional. */
static int parse_bucket(const json_t *o, const char *what, struct vmm_token_bucket *b,
			struct vmm_error *e)
{
	static const char *const keys[] = { "size", "one_time_burst", "refill_time" };
	long long size = 0, burst = 0, refill = 0;
	int r;

	*b = (struct vmm_token_bucket){0};
	if (!o || json_is_null(o))
		return 0;
	if (!json_is_object(o))
		return config_fail(e, -EINVAL, "%s: must be a JSON object", what);
	if ((r = check_keys(o, keys, ARRAY_SIZE(keys), what, e)) < 0 ||
	    (r = need(get_int(o, "size", &size, e), "size", what, e)) < 0 ||
	    (r = need(get_int(o, "refill_time", &refill, e), "refill_time", what, e)) < 0 ||
	    (r = get_int(o, "one_time_burst", &burst, e)) < 0)
		return r;
	if (size < 0 || refill < 0 || burst < 0)
		return config_fail(e, -EINVAL, "%s: size, one_time_burst and refill_time must not "
				   "be negative", what);
	b->size = (uint64_t)size;
	b->refill_time_ms = (uint64_t)refill;
	b->one_time_burst = (uint64_t)burst;
	return 0;
}

/* Firecracker's RateLimiter: "bandwidth" (bytes) and "ops" buckets, both optional. */
static int parse_rate_limiter(const json_t *o, const char *what, struct vmm_rate_limiter *rl,
			      struct vmm_error *e)
{
	static const char *const keys[] = { "bandwidth", "ops" };
	char sub[96];
	int r;

	*rl = (struct vmm_rate_limiter){0};
	if (!o || json_is_null(o))
		return 0;
	if (!json_is_object(o))
		return config_fail(e, -EINVAL, "%s: must be a JSON object", what);
	if ((r = check_keys(o, keys, ARRAY_SIZE(keys), what, e)) < 0)
		return r;
	snprintf(sub, sizeof(sub), "%s.bandwidth", what);
	if ((r = parse_bucket(json_object_get(o, "bandwidth"), sub, &rl->bandwidth, e)) < 0)
		return r;
	snprintf(sub, sizeof(sub), "%s.ops", what);
	return parse_bucket(json_object_get(o, "ops"), sub, &rl->ops, e);
}

/* Firecracker's EntropyDeviceConfig: {"rate_limiter": RateLimiter}, which may be absent. */
static int apply_entropy(struct vmm_config *c, const json_t *o, struct vmm_error *e)
{
	static const char *const keys[] = { "rate_limiter" };
	struct vmm_rate_limiter rl;
	int r;

	if (!json_is_object(o))
		return config_fail(e, -EINVAL, "entropy: must be a JSON object");
	if ((r = check_keys(o, keys, ARRAY_SIZE(keys), "entropy", e)) < 0 ||
	    (r = parse_rate_limiter(json_object_get(o, "rate_limiter"), "rate_limiter", &rl,
				    e)) < 0)
		return r;
	return config_set_entropy(c, true, &rl, "entropy: rate_limiter", e);
}

static json_t *bucket_json(const struct vmm_token_bucket *b)
{
	if (!b->size)
		return json_null();
	return json_pack("{s:I, s:I, s:I}", "size", (json_int_t)b->size, "one_time_burst",
			 (json_int_t)b->one_time_burst, "refill_time", (json_int_t)b->refill_time_ms);
}

/* A RateLimiter as GET /vm/config shows it: null when it limits nothing. */
static json_t *limiter_json(const struct vmm_rate_limiter *rl)
{
	if (!rl->bandwidth.size && !rl->ops.size)
		return json_null();
	return json_pack("{s:o, s:o}", "bandwidth", bucket_json(&rl->bandwidth), "ops",
			 bucket_json(&rl->ops));
}

/* The entropy device as GET /vm/config shows it, or null when there is none. */
static json_t *entropy_json(const struct vmm_config *c)
{
	if (!c->rng)
		return json_null();
	return json_pack("{s:o}", "rate_limiter", limiter_json(&c->rng_limit));
}

/* ---- atomic application ---- */

static int apply(struct vmm_config *c, int (*fn)(struct vmm_config *, const void *, struct vmm_error *),
		 const void *arg, struct vmm_error *e)
{
	struct vmm_config tmp;
	int r;

	if (config_copy(&tmp, c) < 0)
		return config_fail(e, -ENOMEM, "out of memory");
	r = fn(&tmp, arg, e);
	if (r < 0) {
		config_fini(&tmp);
		return r;
	}
	config_fini(c);
	*c = tmp;
	return 0;
}

struct drive_arg {
	const char *path_id;
	const json_t *body;
};

struct machine_arg {
	const json_t *body;
	bool patch;
};

static int boot_source_fn(struct vmm_config *c, const void *arg, struct vmm_error *e)
{
	return apply_boot_source(c, arg, e);
}

static int machine_fn(struct vmm_config *c, const void *arg, struct vmm_error *e)
{
	const struct machine_arg *a = arg;

	if (!a->patch) {
		/* PUT replaces the whole machine configuration: back to defaults first. */
		c->nr_cpus = 1;
		c->mem_size = CONFIG_DEFAULT_MEM;
	}
	return apply_machine_config(c, a->body, a->patch, e);
}

static int drive_fn(struct vmm_config *c, const void *arg, struct vmm_error *e)
{
	const struct drive_arg *a = arg;
	char what[96];

	snprintf(what, sizeof(what), "drive '%s'", a->path_id);
	return apply_drive(c, a->path_id, a->body, what, e);
}

static int file_fn(struct vmm_config *c, const void *arg, struct vmm_error *e)
{
	static const char *const keys[] = {
		"boot-source", "machine-config", "drives", "network-interfaces", "vsock",
		"balloon", "logger", "metrics", "mmds-config", "entropy", "cpu-config",
		"memory-hotplug", "serial", "pmem",
	};
	const json_t *root = arg;
	json_t *v;
	int r;

	if ((r = check_keys(root, keys, ARRAY_SIZE(keys), "config file", e)) < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(unsupported_sections); i++) {
		v = json_object_get(root, unsupported_sections[i]);
		/* Tools write empty sections: an empty list or null asks for nothing. */
		if (!v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0))
			continue;
		return config_fail(e, -EINVAL, "%s: not supported by vmm", unsupported_sections[i]);
	}
	v = json_object_get(root, "boot-source");
	if (!v)
		return config_fail(e, -EINVAL, "config file: missing 'boot-source'");
	if ((r = apply_boot_source(c, v, e)) < 0)
		return r;
	v = json_object_get(root, "machine-config");
	if (v && (r = apply_machine_config(c, v, false, e)) < 0)
		return r;
	v = json_object_get(root, "entropy");
	if (v && !json_is_null(v) && (r = apply_entropy(c, v, e)) < 0)
		return r;
	v = json_object_get(root, "vsock");
	if (v && !json_is_null(v) && (r = apply_vsock(c, v, e)) < 0)
		return r;
	v = json_object_get(root, "network-interfaces");
	if (v && !json_is_null(v)) {
		size_t i;
		json_t *d;

		if (!json_is_array(v))
			return config_fail(e, -EINVAL, "network-interfaces: must be a list");
		json_array_foreach(v, i, d) {
			char what[48];

			snprintf(what, sizeof(what), "network-interfaces[%zu]", i);
			if ((r = apply_net(c, NULL, d, what, e)) < 0)
				return r;
		}
	}
	v = json_object_get(root, "pmem");
	if (v && !json_is_null(v)) {
		size_t i;
		json_t *d;

		if (!json_is_array(v))
			return config_fail(e, -EINVAL, "pmem: must be a list");
		json_array_foreach(v, i, d) {
			char what[32];

			snprintf(what, sizeof(what), "pmem[%zu]", i);
			if ((r = apply_pmem(c, NULL, d, what, e)) < 0)
				return r;
		}
	}
	v = json_object_get(root, "drives");
	if (v) {
		size_t i;
		json_t *d;

		if (!json_is_array(v))
			return config_fail(e, -EINVAL, "drives: must be a list");
		json_array_foreach(v, i, d) {
			char what[32];

			snprintf(what, sizeof(what), "drives[%zu]", i);
			if ((r = apply_drive(c, NULL, d, what, e)) < 0)
				return r;
		}
	}
	return 0;
}

int cfgjson_boot_source(struct vmm_config *c, const json_t *body, struct vmm_error *e)
{
	return apply(c, boot_source_fn, body, e);
}

int cfgjson_machine_config(struct vmm_config *c, const json_t *body, bool patch,
			   struct vmm_error *e)
{
	struct machine_arg a = { body, patch };

	return apply(c, machine_fn, &a, e);
}

int cfgjson_drive(struct vmm_config *c, const char *path_id, const json_t *body,
		  struct vmm_error *e)
{
	struct drive_arg a = { path_id, body };

	if (!config_id_valid(path_id))
		return config_fail(e, -EINVAL, "drive_id: '%s' is not 1 to %d letters, digits, "
				   "'_', '-' or '.'", path_id, CONFIG_ID_MAX);
	return apply(c, drive_fn, &a, e);
}

static int net_fn(struct vmm_config *c, const void *arg, struct vmm_error *e)
{
	const struct drive_arg *a = arg;
	char what[96];

	snprintf(what, sizeof(what), "network interface '%s'", a->path_id);
	return apply_net(c, a->path_id, a->body, what, e);
}

int cfgjson_net(struct vmm_config *c, const char *path_id, const json_t *body,
		struct vmm_error *e)
{
	struct drive_arg a = { path_id, body };

	if (!config_id_valid(path_id))
		return config_fail(e, -EINVAL, "iface_id: '%s' is not 1 to %d letters, digits, '_', "
				   "'-' or '.'", path_id, CONFIG_ID_MAX);
	return apply(c, net_fn, &a, e);
}

static int pmem_fn(struct vmm_config *c, const void *arg, struct vmm_error *e)
{
	const struct drive_arg *a = arg;
	char what[96];

	snprintf(what, sizeof(what), "pmem '%s'", a->path_id);
	return apply_pmem(c, a->path_id, a->body, what, e);
}

int cfgjson_pmem(struct vmm_config *c, const char *path_id, const json_t *body,
		 struct vmm_error *e)
{
	struct drive_arg a = { path_id, body };

	if (!config_id_valid(path_id))
		return config_fail(e, -EINVAL, "id: '%s' is not 1 to %d letters, digits, '_', '-' "
				   "or '.'", path_id, CONFIG_ID_MAX);
	return apply(c, pmem_fn, &a, e);
}

static int entropy_fn(struct vmm_config *c, const void *arg, struct vmm_error *e)
{
	return apply_entropy(c, arg, e);
}

int cfgjson_entropy(struct vmm_config *c, const json_t *body, struct vmm_error *e)
{
	return apply(c, entropy_fn, body, e);
}

static int vsock_fn(struct vmm_config *c, const void *arg, struct vmm_error *e)
{
	return apply_vsock(c, arg, e);
}

int cfgjson_vsock(struct vmm_config *c, const json_t *body, struct vmm_error *e)
{
	return apply(c, vsock_fn, body, e);
}

int cfgjson_file(struct vmm_config *c, const json_t *root, struct vmm_error *e)
{
	if (!json_is_object(root))
		return config_fail(e, -EINVAL, "config file: must be a JSON object");
	return apply(c, file_fn, root, e);
}

/* ---- config -> JSON ---- */

json_t *cfgjson_machine_config_get(const struct vmm_config *c)
{
	json_t *j = json_pack("{s:I, s:I, s:b, s:b, s:s}", "vcpu_count", (json_int_t)c->nr_cpus,
			      "mem_size_mib", (json_int_t)(c->mem_size / MiB), "smt", 0,
			      "track_dirty_pages", c->track_dirty, "huge_pages", "None");

	if (j && c->mem_path)
		json_object_set_new(j, "mem_backing_path", json_string(c->mem_path));
	return j;
}

/*
 * Firecracker's Drive as it serializes it: every field, null when unset. vmm always honours
 * FLUSH, which is Firecracker's "Writeback"; VMM_IO_AUTO (io_uring, falling back) shows as
 * "Async", what it is on a host with io_uring.
 */
static json_t *drive_json(const struct config_disk *d)
{
	return json_pack("{s:s, s:s?, s:b, s:s, s:b, s:s?, s:n, s:s, s:n}",
			 "drive_id", d->id, "partuuid", d->partuuid, "is_root_device", d->root,
			 "cache_type", "Writeback", "is_read_only", d->read_only,
			 "path_on_host", d->path, "rate_limiter", "io_engine",
			 d->io == VMM_IO_SYNC ? "Sync" : "Async", "socket");
}

/*
 * FullVmConfiguration: every key present, in Firecracker's order, the devices vmm lacks as
 * null or [] (what GET /vm/config answers; cfgjson_file() reads it back). NULL when out of
 * memory.
 */
json_t *cfgjson_full(const struct vmm_config *c)
{
	json_t *drives = json_array(), *pmems = json_array(), *nets = json_array();

	if (!drives || !pmems || !nets) {
		json_decref(drives);
		json_decref(pmems);
		json_decref(nets);
		return NULL;
	}
	for (unsigned int i = 0; i < c->nr_nets; i++) {
		if (json_array_append_new(nets, net_json(&c->nets[i])) < 0) {
			json_decref(drives);
			json_decref(pmems);
			json_decref(nets);
			return NULL;
		}
	}
	for (unsigned int i = 0; i < c->nr_pmems; i++) {
		if (json_array_append_new(pmems, pmem_json(&c->pmems[i])) < 0) {
			json_decref(drives);
			json_decref(pmems);
			return NULL;
		}
	}
	for (unsigned int i = 0; i < c->nr_disks; i++) {
		if (json_array_append_new(drives, drive_json(&c->disks[i])) < 0) {
			json_decref(drives);
			json_decref(pmems);
			return NULL;
		}
	}
	return json_pack("{s:n, s:o, s:{s:s?, s:s?, s:s?}, s:n, s:n, s:o, s:n, s:n, s:o, s:o, "
			 "s:o, s:o, s:n}",
			 "balloon", "drives", drives,
			 "boot-source", "kernel_image_path", c->kernel, "initrd_path", c->initrd,
			 "boot_args", c->cmdline,
			 "cpu-config", "logger", "machine-config", cfgjson_machine_config_get(c),
			 "metrics", "mmds-config", "network-interfaces", nets, "vsock", vsock_json(c),
			 "entropy", entropy_json(c), "pmem", pmems, "memory-hotplug");
}

/* ---- libvmm ---- */

int vmm_config_from_json(struct vmm_config *c, const char *json, struct vmm_error *e)
{
	json_t *root;
	int r;

	if ((r = cfgjson_parse_object(json, strlen(json), "config", &root, e)) < 0)
		return r;
	r = cfgjson_file(c, root, e);
	json_decref(root);
	return r;
}

#define CONFIG_FILE_MAX (1 * MiB)

int vmm_config_load_file(struct vmm_config *c, const char *path, struct vmm_error *e)
{
	char what[320], sub[VMM_ERROR_LEN];
	uint8_t *buf = NULL;
	json_t *root;
	size_t len = 0;
	int r;

	/* Not fopen(): a FIFO must be refused, not waited on. */
	r = file_read_all("config file", path, CONFIG_FILE_MAX, &buf, &len, sub, sizeof(sub));
	if (r < 0)
		return config_fail(e, r, "%s", sub);
	snprintf(what, sizeof(what), "config file %s", path);
	r = cfgjson_parse_object((const char *)buf, len, what, &root, e);
	free(buf);
	if (r < 0)
		return r;
	r = cfgjson_file(c, root, e);
	json_decref(root);
	if (r < 0 && e) {
		char msg[VMM_ERROR_LEN + 320];

		snprintf(msg, sizeof(msg), "config file %s: %s", path, e->msg);
		if (snprintf(e->msg, sizeof(e->msg), "%s", msg) >= (int)sizeof(e->msg))
			e->msg[sizeof(e->msg) - 2] = '.'; /* cut: say so */
	}
	return r;
}

char *vmm_config_to_json(const struct vmm_config *c)
{
	json_t *j = cfgjson_full(c);
	char *s;

	if (!j)
		return NULL;
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return s;
}
