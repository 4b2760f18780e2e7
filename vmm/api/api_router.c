// SPDX-License-Identifier: Apache-2.0
/*
 * The API router: one request (method, path, body) in, one response out, acting on the VM
 * only through struct api_target. The subset of Firecracker's REST API that vmm implements:
 *
 *   GET   /                 InstanceInfo
 *   GET   /version          {"firecracker_version": ...}
 *   PUT   /boot-source      before start
 *   PUT   /machine-config   before start (PATCH too); GET any time
 *   PUT   /drives/{id}      before start; the same id replaces the drive
 *   PUT   /pmem/{id}        before start; the same id replaces the device
 *   PUT   /network-interfaces/{iface_id}  before start; the same id replaces it
 *   PUT   /entropy          before start: a virtio-rng device, optionally rate limited
 *   PUT   /vsock            before start: the vsock device (guest_cid, uds_path)
 *   PUT   /actions          InstanceStart, SendCtrlAltDel (FlushMetrics: refused, no metrics)
 *   PATCH /vm               {"state": "Paused" | "Resumed"} once started; idempotent
 *   GET   /vm/config        FullVmConfiguration
 *
 * Routing follows Firecracker's: leading slashes are dropped, the first path segment picks the
 * resource and later segments are ignored except where they are an argument (/drives/{id},
 * /vm/config); a GET with a body, or a PUT/PATCH without one, is refused before the path is
 * looked at. Bodies are JSON objects; unknown fields, wrong types and missing required fields
 * are refused by config_json.c or here, naming the field. Every refusal is a 400 (or 500 for
 * what is not the user's fault) with {"fault_message": "..."}.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/api.h"
#include "vmm/config_json.h"

/* The phase messages are Firecracker's wording: clients may look for them. */
#define MSG_POST_BOOT "The requested operation is not supported after starting the microVM."
#define MSG_PRE_BOOT  "The requested operation is not supported before starting the microVM."

/* Firecracker resources outside vmm's subset: refused by name rather than as unknown paths. */
static const char *const unsupported_resources[] = {
	"balloon", "cpu-config", "hotplug", "logger", "metrics", "mmds",
	"serial", "vsock",
};

enum method { M_GET, M_PUT, M_PATCH, M_DELETE, M_OTHER };

struct req {
	const struct api_target *t;
	enum method method;
	const char *mname;
	const char *seg;   /* the first path segment ("" for /) */
	const char *arg;   /* the second one, NULL when there is none */
	const char *body;
	size_t len;
	struct api_response *out;
};

const char *api_status_text(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	}
	return "Unknown";
}

void api_response_fini(struct api_response *r)
{
	free(r->body);
	r->body = NULL;
	r->status = 0;
}

/*
 * Errors caused by what the user asked for (their JSON, their files, the VM's state) are
 * 400s; the rest (memory, I/O, KVM, anything unexpected) are the VMM's own failure: 500.
 */
static int status_for(int err)
{
	switch (-err) {
	case EINVAL: case ENOENT: case EACCES: case EPERM: case EISDIR: case ENOTDIR:
	case ELOOP: case ENAMETOOLONG: case ENOEXEC: case E2BIG: case EBUSY: case EEXIST:
	case ENOSPC: case EAGAIN: case EROFS: case EFBIG: case ERANGE: case EOVERFLOW:
	case ENXIO: case EOPNOTSUPP: case EALREADY: case EADDRINUSE:
		return 400;
	}
	return 500;
}

/*
 * Replace what is not valid UTF-8 with '?' (jansson refuses such strings): a message may
 * quote the path's bytes, or have been cut in the middle of a character.
 */
static void utf8_clean(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p) {
		unsigned int c = *p, n, cp, min;

		if (c < 0x80) {
			p++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			*p++ = '?';
			continue;
		}
		unsigned int i;

		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				break;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if (i <= n || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			*p++ = '?';
			continue;
		}
		p += n + 1;
	}
}

static void set_json(struct api_response *out, int status, json_t *j)
{
	out->status = status;
	out->body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!out->body) {
		/* Out of memory: a 500 whose body the server fills in. */
		out->status = 500;
	}
}

static void fault(struct api_response *out, int status, const char *fmt, ...) PRINTF(3, 4);
static void fault(struct api_response *out, int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	utf8_clean(msg);
	set_json(out, status, json_pack("{s:s}", "fault_message", msg));
}

/* A failure r (negative errno) with the message in e, or the errno's text. */
static void fail(struct api_response *out, int r, const struct vmm_error *e)
{
	fault(out, status_for(r), "%s", e->msg[0] ? e->msg : strerror(-r));
}

static void no_content(struct api_response *out)
{
	out->status = 204;
	out->body = NULL;
}

static enum vmm_state state_of(const struct req *q)
{
	struct api_info info = { 0 };

	q->t->ops->info(q->t->opaque, &info);
	return info.state;
}

/* The body as a JSON object, or false with the response set. */
static bool parse_body(struct req *q, json_t **j)
{
	struct vmm_error e = { 0 };
	int r = cfgjson_parse_object(q->body, q->len, "request body", j, &e);

	if (r < 0) {
		fail(q->out, r, &e);
		return false;
	}
	return true;
}

/* ---- GET ---- */

static void get_instance_info(struct req *q)
{
	struct api_info info = { 0 };

	q->t->ops->info(q->t->opaque, &info);
	set_json(q->out, 200, json_pack("{s:s, s:s, s:s, s:s}",
					"id", info.id ? info.id : CONFIG_DEFAULT_ID,
					"state", vmm_state_name(info.state),
					"vmm_version", vmm_version(),
					"app_name", "vmm"));
}

static void get_version(struct req *q)
{
	set_json(q->out, 200, json_pack("{s:s}", "firecracker_version", vmm_version()));
}

static void get_config(struct req *q, bool full)
{
	struct vmm_config *c = q->t->ops->get_config(q->t->opaque);

	if (!c) {
		fault(q->out, 500, "Out of memory copying the configuration.");
		return;
	}
	set_json(q->out, 200, full ? cfgjson_full(c) : cfgjson_machine_config_get(c));
	config_fini(c);
	free(c);
}

static void get_machine_config(struct req *q)
{
	get_config(q, false);
}

static void get_vm_config(struct req *q)
{
	get_config(q, true);
}

/* ---- configuration changes (before start) ---- */

enum change { CH_BOOT_SOURCE, CH_MACHINE_PUT, CH_MACHINE_PATCH, CH_DRIVE, CH_ENTROPY, CH_VSOCK,
	      CH_PMEM, CH_NET };

struct change_arg {
	enum change kind;
	const json_t *body;
	const char *id;
};

static int change_fn(struct vmm_config *c, void *arg, struct vmm_error *e)
{
	const struct change_arg *a = arg;

	switch (a->kind) {
	case CH_BOOT_SOURCE:
		return cfgjson_boot_source(c, a->body, e);
	case CH_MACHINE_PUT:
		return cfgjson_machine_config(c, a->body, false, e);
	case CH_MACHINE_PATCH:
		return cfgjson_machine_config(c, a->body, true, e);
	case CH_DRIVE:
		return cfgjson_drive(c, a->id, a->body, e);
	case CH_ENTROPY:
		return cfgjson_entropy(c, a->body, e);
	case CH_VSOCK:
		return cfgjson_vsock(c, a->body, e);
	case CH_PMEM:
		return cfgjson_pmem(c, a->id, a->body, e);
	case CH_NET:
		return cfgjson_net(c, a->id, a->body, e);
	}
	return config_fail(e, -EINVAL, "unknown change");
}

static void change_config(struct req *q, enum change kind, const char *id)
{
	struct change_arg a = { .kind = kind, .id = id };
	struct vmm_error e = { 0 };
	json_t *j;
	int r;

	if (!parse_body(q, &j))
		return;
	if (kind == CH_MACHINE_PATCH && json_object_size(j) == 0) {
		fault(q->out, 400, "PATCH /machine-config: the object is empty, nothing to "
		      "change.");
		goto out;
	}
	/* The target refuses too (-EBUSY); asking first gives every target the same words. */
	if (state_of(q) != VMM_STATE_CREATED) {
		fault(q->out, 400, MSG_POST_BOOT);
		goto out;
	}
	a.body = j;
	r = q->t->ops->update_config(q->t->opaque, change_fn, &a, &e);
	if (r < 0)
		fail(q->out, r, &e);
	else
		no_content(q->out);
out:
	json_decref(j);
}

static void put_drive(struct req *q)
{
	/* Firecracker allows [A-Za-z0-9_]; vmm's ids are a superset ('-' and '.' too). */
	if (!q->arg || !*q->arg) {
		fault(q->out, 400, "PUT /drives/{drive_id}: the drive id in the path is empty.");
		return;
	}
	if (!config_id_valid(q->arg)) {
		fault(q->out, 400, "PUT /drives/{drive_id}: '%.80s' is not 1 to %d letters, "
		      "digits, '_', '-' or '.'.", q->arg, CONFIG_ID_MAX);
		return;
	}
	change_config(q, CH_DRIVE, q->arg);
}

static void put_net(struct req *q)
{
	if (!q->arg || !*q->arg) {
		fault(q->out, 400, "PUT /network-interfaces/{iface_id}: the id in the path is "
		      "empty.");
		return;
	}
	if (!config_id_valid(q->arg)) {
		fault(q->out, 400, "PUT /network-interfaces/{iface_id}: '%.80s' is not 1 to %d "
		      "letters, digits, '_', '-' or '.'.", q->arg, CONFIG_ID_MAX);
		return;
	}
	change_config(q, CH_NET, q->arg);
}

static void put_pmem(struct req *q)
{
	if (!q->arg || !*q->arg) {
		fault(q->out, 400, "PUT /pmem/{id}: the id in the path is empty.");
		return;
	}
	if (!config_id_valid(q->arg)) {
		fault(q->out, 400, "PUT /pmem/{id}: '%.80s' is not 1 to %d letters, digits, '_', "
		      "'-' or '.'.", q->arg, CONFIG_ID_MAX);
		return;
	}
	change_config(q, CH_PMEM, q->arg);
}

/* ---- actions and VM state ---- */

/* The one string field key of j, refusing any other field; NULL with the response set. */
static const char *only_string_field(struct req *q, json_t *j, const char *key)
{
	const char *k;
	json_t *v;

	json_object_foreach(j, k, v) {
		if (strcmp(k, key)) {
			fault(q->out, 400, "%s /%s: unknown field '%.64s'.", q->mname, q->seg, k);
			return NULL;
		}
	}
	v = json_object_get(j, key);
	if (!v) {
		fault(q->out, 400, "%s /%s: missing required field '%s'.", q->mname, q->seg, key);
		return NULL;
	}
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
		fault(q->out, 400, "%s /%s: %s must be a string.", q->mname, q->seg, key);
		return NULL;
	}
	return json_string_value(v);
}

static void run_op(struct req *q, int (*op)(void *opaque, struct vmm_error *e))
{
	struct vmm_error e = { 0 };
	int r = op(q->t->opaque, &e);

	if (r < 0)
		fail(q->out, r, &e);
	else
		no_content(q->out);
}

static void put_actions(struct req *q)
{
	const struct api_target_ops *ops = q->t->ops;
	const char *action;
	json_t *j;

	if (!parse_body(q, &j))
		return;
	action = only_string_field(q, j, "action_type");
	if (!action)
		goto out;
	if (!strcmp(action, "InstanceStart")) {
		if (state_of(q) != VMM_STATE_CREATED)
			fault(q->out, 400, MSG_POST_BOOT);
		else
			run_op(q, ops->start);
	} else if (!strcmp(action, "SendCtrlAltDel")) {
		if (state_of(q) == VMM_STATE_CREATED)
			fault(q->out, 400, MSG_PRE_BOOT);
		else
			run_op(q, ops->ctrl_alt_del);
	} else if (!strcmp(action, "FlushMetrics")) {
		fault(q->out, 400, "FlushMetrics: vmm has no metrics to flush.");
	} else {
		fault(q->out, 400, "PUT /actions: unknown action_type '%.64s' (InstanceStart, "
		      "SendCtrlAltDel or FlushMetrics).", action);
	}
out:
	json_decref(j);
}

static void patch_vm(struct req *q)
{
	const char *want;
	enum vmm_state s;
	json_t *j;

	if (!parse_body(q, &j))
		return;
	want = only_string_field(q, j, "state");
	if (!want)
		goto out;
	if (strcmp(want, "Paused") && strcmp(want, "Resumed")) {
		fault(q->out, 400, "PATCH /vm: state '%.64s' is neither \"Paused\" nor "
		      "\"Resumed\".", want);
		goto out;
	}
	s = state_of(q);
	if (s == VMM_STATE_CREATED) {
		fault(q->out, 400, MSG_PRE_BOOT);
		goto out;
	}
	/* As Firecracker: pausing a paused VM, or resuming a running one, succeeds. */
	if (!strcmp(want, "Paused") && s == VMM_STATE_PAUSED)
		no_content(q->out);
	else if (!strcmp(want, "Resumed") && s == VMM_STATE_RUNNING)
		no_content(q->out);
	else
		run_op(q, !strcmp(want, "Paused") ? q->t->ops->pause : q->t->ops->resume);
out:
	json_decref(j);
}

/* ---- snapshots ---- */

/* A string field of j (required or not): 1 found, 0 absent, -1 with the response set. */
static int str_field(struct req *q, json_t *j, const char *key, bool required, const char **out)
{
	json_t *v = json_object_get(j, key);

	if (!v || json_is_null(v)) {
		if (required)
			fault(q->out, 400, "PUT /snapshot/%s: missing required field '%s'.", q->arg,
			      key);
		return required ? -1 : 0;
	}
	if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
	    !*json_string_value(v)) {
		fault(q->out, 400, "PUT /snapshot/%s: %s must be a non-empty string.", q->arg, key);
		return -1;
	}
	*out = json_string_value(v);
	return 1;
}

static int bool_field(struct req *q, json_t *j, const char *key, bool *out)
{
	json_t *v = json_object_get(j, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		fault(q->out, 400, "PUT /snapshot/%s: %s must be true or false.", q->arg, key);
		return -1;
	}
	*out = json_is_true(v);
	return 1;
}

static bool only_keys(struct req *q, json_t *j, const char *const *keys, size_t n)
{
	const char *k;
	json_t *v;

	json_object_foreach(j, k, v) {
		size_t i;

		for (i = 0; i < n && strcmp(k, keys[i]); i++)
			;
		if (i == n) {
			fault(q->out, 400, "PUT /snapshot/%s: unknown field '%.64s'.", q->arg, k);
			return false;
		}
	}
	return true;
}

static void snapshot_create(struct req *q, json_t *j)
{
	static const char *const keys[] = { "snapshot_path", "mem_file_path", "snapshot_type",
					    "version" };
	const char *state = NULL, *mem = NULL, *type = "Full";
	enum vmm_snapshot_type t = VMM_SNAPSHOT_FULL;
	struct vmm_error e = { 0 };
	int r;

	if (!only_keys(q, j, keys, ARRAY_SIZE(keys)) ||
	    str_field(q, j, "snapshot_path", true, &state) < 0 ||
	    str_field(q, j, "mem_file_path", true, &mem) < 0 ||
	    str_field(q, j, "snapshot_type", false, &type) < 0)
		return;
	if (json_object_get(j, "version")) {
		fault(q->out, 400, "PUT /snapshot/create: version: vmm writes its own format, "
		      "version %d.", 1);
		return;
	}
	if (!strcmp(type, "Diff"))
		t = VMM_SNAPSHOT_DIFF;
	else if (strcmp(type, "Full")) {
		fault(q->out, 400, "PUT /snapshot/create: snapshot_type '%.64s' is neither \"Full\" "
		      "nor \"Diff\".", type);
		return;
	}
	if (state_of(q) == VMM_STATE_CREATED) {
		fault(q->out, 400, MSG_PRE_BOOT);
		return;
	}
	if (state_of(q) != VMM_STATE_PAUSED) {
		fault(q->out, 400, "PUT /snapshot/create: the microVM must be paused first "
		      "(PATCH /vm {\"state\": \"Paused\"}).");
		return;
	}
	r = q->t->ops->snapshot_create(q->t->opaque, state, mem, t, &e);
	if (r < 0)
		fail(q->out, r, &e);
	else
		no_content(q->out);
}

static void snapshot_load(struct req *q, json_t *j)
{
	static const char *const keys[] = { "snapshot_path", "mem_backend", "mem_file_path",
					    "resume_vm", "track_dirty_pages",
					    "enable_diff_snapshots", "clock_realtime",
					    "network_overrides", "vsock_override", "huge_pages" };
	const char *state = NULL, *mem = NULL, *type = NULL, *huge = NULL;
	json_t *backend = json_object_get(j, "mem_backend"), *v;
	bool resume = false, flag = false;
	struct vmm_error e = { 0 };
	int r, have_file;

	if (!only_keys(q, j, keys, ARRAY_SIZE(keys)) ||
	    str_field(q, j, "snapshot_path", true, &state) < 0 ||
	    (have_file = str_field(q, j, "mem_file_path", false, &mem)) < 0 ||
	    bool_field(q, j, "resume_vm", &resume) < 0)
		return;
	if (backend && !json_is_null(backend)) {
		static const char *const bkeys[] = { "backend_type", "backend_path" };
		const char *k;

		if (have_file) {
			fault(q->out, 400, "PUT /snapshot/load: give mem_backend or mem_file_path, "
			      "not both.");
			return;
		}
		if (!json_is_object(backend)) {
			fault(q->out, 400, "PUT /snapshot/load: mem_backend must be an object.");
			return;
		}
		json_object_foreach(backend, k, v) {
			if (strcmp(k, bkeys[0]) && strcmp(k, bkeys[1])) {
				fault(q->out, 400, "PUT /snapshot/load: mem_backend: unknown field "
				      "'%.64s'.", k);
				return;
			}
		}
		if (str_field(q, backend, "backend_type", true, &type) < 0 ||
		    str_field(q, backend, "backend_path", true, &mem) < 0)
			return;
		if (strcmp(type, "File")) {
			fault(q->out, 400, "PUT /snapshot/load: backend_type '%.64s' is not "
			      "supported (only \"File\").", type);
			return;
		}
	} else if (!have_file) {
		fault(q->out, 400, "PUT /snapshot/load: missing field: mem_backend (or "
		      "mem_file_path).");
		return;
	}
	/* Firecracker's own fields: accepted with the values that ask for nothing we lack. */
	/* Either name (the older one is Firecracker's deprecated alias) tracks dirty pages. */
	bool track = false;
	if (bool_field(q, j, "track_dirty_pages", &track) < 0 ||
	    bool_field(q, j, "enable_diff_snapshots", &flag) < 0)
		return;
	track = track || flag;
	flag = true;
	if (bool_field(q, j, "clock_realtime", &flag) < 0)
		return;
	if (str_field(q, j, "huge_pages", false, &huge) < 0)
		return;
	if (huge && strcmp(huge, "None") && strcmp(huge, "Snapshot")) {
		fault(q->out, 400, "PUT /snapshot/load: huge_pages '%.64s' is not supported.", huge);
		return;
	}
	/* Firecracker's overrides of the host side: [{"iface_id", "host_dev_name"}] and
	 * {"uds_path"}; the snapshot must have what they name (checked by the restore). */
	struct vmm_restore_overrides ov = { 0 };
	v = json_object_get(j, "network_overrides");
	if (v && !json_is_null(v)) {
		static const char *const nkeys[] = { "iface_id", "host_dev_name" };
		size_t i;
		json_t *o;

		if (!json_is_array(v) || json_array_size(v) > VMM_MAX_NICS) {
			fault(q->out, 400, "PUT /snapshot/load: network_overrides must be a list of "
			      "at most %d interfaces.", VMM_MAX_NICS);
			return;
		}
		json_array_foreach(v, i, o) {
			if (!json_is_object(o)) {
				fault(q->out, 400, "PUT /snapshot/load: network_overrides[%zu] must be "
				      "an object.", i);
				return;
			}
			if (!only_keys(q, o, nkeys, ARRAY_SIZE(nkeys)) ||
			    str_field(q, o, "iface_id", true, &ov.nets[i].id) < 0 ||
			    str_field(q, o, "host_dev_name", true, &ov.nets[i].tap) < 0)
				return;
		}
		ov.nr_nets = (unsigned int)json_array_size(v);
	}
	v = json_object_get(j, "vsock_override");
	if (v && !json_is_null(v)) {
		static const char *const vkeys[] = { "uds_path" };

		if (!json_is_object(v)) {
			fault(q->out, 400, "PUT /snapshot/load: vsock_override must be an object.");
			return;
		}
		if (!only_keys(q, v, vkeys, ARRAY_SIZE(vkeys)) ||
		    str_field(q, v, "uds_path", true, &ov.vsock_uds) < 0)
			return;
	}
	if (state_of(q) != VMM_STATE_CREATED) {
		fault(q->out, 400, MSG_POST_BOOT);
		return;
	}
	r = q->t->ops->snapshot_load(q->t->opaque, state, mem,
				     (resume ? VMM_RESTORE_RESUME : 0) |
					     (track ? VMM_RESTORE_TRACK_DIRTY : 0), &ov, &e);
	if (r < 0)
		fail(q->out, r, &e);
	else
		no_content(q->out);
}

/*
 * PUT /snapshot/luo {"session": NAME} (ours): a VM preserved for a host kexec; running, its
 * RAM; paused, its state as well (vmm_vm_luo_preserve).
 */
static void snapshot_luo(struct req *q, json_t *j)
{
	static const char *const keys[] = { "session" };
	const char *session = NULL;
	struct vmm_error e = { 0 };
	int r;

	if (!only_keys(q, j, keys, ARRAY_SIZE(keys)) ||
	    str_field(q, j, "session", true, &session) < 0)
		return;
	if (state_of(q) == VMM_STATE_CREATED) {
		fault(q->out, 400, MSG_PRE_BOOT);
		return;
	}
	if (!q->t->ops->snapshot_luo) {
		fault(q->out, 400, "PUT /snapshot/luo: not supported here.");
		return;
	}
	r = q->t->ops->snapshot_luo(q->t->opaque, session, &e);
	if (r < 0)
		fail(q->out, r, &e);
	else
		no_content(q->out);
}

static void put_snapshot(struct req *q)
{
	json_t *j;

	if (!q->arg || (strcmp(q->arg, "create") && strcmp(q->arg, "load") &&
			strcmp(q->arg, "luo"))) {
		fault(q->out, 400, q->arg ? "Invalid request method and/or path: PUT /snapshot/%.64s."
					  : "Missing snapshot operation type.%.0s",
		      q->arg ? q->arg : "");
		return;
	}
	if (!parse_body(q, &j))
		return;
	if (!strcmp(q->arg, "create"))
		snapshot_create(q, j);
	else if (!strcmp(q->arg, "luo"))
		snapshot_luo(q, j);
	else
		snapshot_load(q, j);
	json_decref(j);
}

/* ---- live update (ours: Firecracker has none) ---- */

/* PUT /live-update, body optional: {"binary": PATH}. 200 {"pid", "blackout_us"}. */
static void put_live_update(struct req *q)
{
	struct vmm_live_update res = { 0 };
	struct vmm_error e = { 0 };
	const char *binary = NULL, *k;
	json_t *j = NULL, *v;
	int r;

	if (q->arg) {
		fault(q->out, 400, "Invalid request method and/or path: PUT /live-update/%.64s.",
		      q->arg);
		return;
	}
	if (q->len && !parse_body(q, &j))
		return;
	json_object_foreach(j, k, v) {
		if (strcmp(k, "binary")) {
			fault(q->out, 400, "PUT /live-update: unknown field '%.64s'.", k);
			goto out;
		}
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
		    !*json_string_value(v)) {
			fault(q->out, 400, "PUT /live-update: binary must be a non-empty string.");
			goto out;
		}
		binary = json_string_value(v);
	}
	enum vmm_state s = state_of(q);
	if (s == VMM_STATE_CREATED) {
		fault(q->out, 400, MSG_PRE_BOOT);
		goto out;
	}
	r = q->t->ops->live_update(q->t->opaque, binary, &res, &e);
	if (r < 0)
		fail(q->out, r, &e);
	else {
		set_json(q->out, 200, json_pack("{s:i, s:I}", "pid", res.pid, "blackout_us",
						(json_int_t)res.blackout_us));
		/* This process serves nothing more: a keep-alive client must reconnect. */
		q->out->close = true;
	}
out:
	json_decref(j);
}

/* ---- dispatch ---- */

static enum method method_of(const char *m)
{
	if (!strcmp(m, "GET"))
		return M_GET;
	if (!strcmp(m, "PUT"))
		return M_PUT;
	if (!strcmp(m, "PATCH"))
		return M_PATCH;
	if (!strcmp(m, "DELETE"))
		return M_DELETE;
	return M_OTHER;
}

static bool is_unsupported(const char *seg)
{
	for (size_t i = 0; i < ARRAY_SIZE(unsupported_resources); i++) {
		if (!strcmp(seg, unsupported_resources[i]))
			return true;
	}
	return false;
}

static bool is(const struct req *q, enum method m, const char *seg)
{
	return q->method == m && !strcmp(q->seg, seg);
}

/* The handler for a GET without a body, or NULL. */
static void (*get_handler(const struct req *q))(struct req *)
{
	if (!*q->seg)
		return get_instance_info;
	if (!strcmp(q->seg, "version"))
		return get_version;
	if (!strcmp(q->seg, "machine-config"))
		return get_machine_config;
	if (!strcmp(q->seg, "vm") && q->arg && !strcmp(q->arg, "config"))
		return get_vm_config;
	return NULL;
}

static void dispatch(struct req *q)
{
	bool body = q->len > 0;
	void (*get)(struct req *) = q->method == M_GET && !body ? get_handler(q) : NULL;

	if (get)
		get(q);
	else if (q->method == M_GET && body)
		fault(q->out, 400, "A GET request must not have a body.");
	else if (is(q, M_PUT, "live-update"))
		put_live_update(q); /* the one PUT whose body is optional */
	else if ((q->method == M_PUT || q->method == M_PATCH) && !body)
		fault(q->out, 400, "A %s request needs a JSON body.", q->mname);
	else if (is(q, M_PUT, "boot-source"))
		change_config(q, CH_BOOT_SOURCE, NULL);
	else if (is(q, M_PUT, "machine-config"))
		change_config(q, CH_MACHINE_PUT, NULL);
	else if (is(q, M_PATCH, "machine-config"))
		change_config(q, CH_MACHINE_PATCH, NULL);
	else if (is(q, M_PUT, "drives"))
		put_drive(q);
	else if (is(q, M_PUT, "pmem"))
		put_pmem(q);
	else if (is(q, M_PUT, "network-interfaces"))
		put_net(q);
	else if (is(q, M_PUT, "entropy"))
		change_config(q, CH_ENTROPY, NULL);
	else if (is(q, M_PUT, "vsock"))
		change_config(q, CH_VSOCK, NULL);
	else if (is(q, M_PUT, "actions"))
		put_actions(q);
	else if (is(q, M_PATCH, "vm"))
		patch_vm(q);
	else if (is(q, M_PUT, "snapshot"))
		put_snapshot(q);
	else if (is(q, M_PATCH, "drives"))
		fault(q->out, 400, "PATCH /drives: changing a drive of a started microVM is not "
		      "supported by vmm.");
	else if (is_unsupported(q->seg))
		fault(q->out, 400, "%s /%s: not supported by vmm.", q->mname, q->seg);
	else
		fault(q->out, 400, "Invalid request method and/or path: %.16s %.128s.", q->mname,
		      q->seg);
}

/*
 * The path of a request target: "/x" as is, an absolute URI ("http://host/x") without its
 * scheme and authority. NULL when it is neither.
 */
static const char *abs_path(const char *target)
{
	const char *p = target;

	if (*p == '/')
		return p;
	/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
	if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
		return NULL;
	while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
	       *p == '+' || *p == '-' || *p == '.')
		p++;
	if (strncmp(p, "://", 3))
		return NULL;
	p += 3;
	p += strcspn(p, "/");
	return *p ? p : "/";
}

void api_route(const struct api_target *t, const char *method, const char *path,
	       const char *body, size_t len, struct api_response *out)
{
	struct req q = { .t = t, .mname = method, .body = len ? body : NULL, .len = len,
			 .out = out };
	const char *p;
	char *copy, *slash;

	out->status = 0;
	out->body = NULL;
	out->close = false;
	q.method = method_of(method);
	if (strpbrk(path, "?#")) {
		fault(out, 400, "%.16s %.128s: query strings and fragments are not supported.",
		      method, path);
		return;
	}
	p = abs_path(path);
	if (!p) {
		fault(out, 400, "%.16s %.128s: the request target is not a path.", method, path);
		return;
	}
	while (*p == '/')
		p++;
	copy = strdup(p);
	if (!copy) {
		fault(out, 500, "Out of memory.");
		return;
	}
	q.seg = copy;
	slash = strchr(copy, '/');
	if (slash) {
		*slash = '\0';
		q.arg = slash + 1;
		slash = strchr(slash + 1, '/');
		if (slash)
			*slash = '\0';
		/* "drives/" has no second segment, "drives//x" an empty one. */
		if (!*q.arg && !slash)
			q.arg = NULL;
	}
	if (q.method == M_OTHER) {
		fault(out, 400, "Invalid request method and/or path: %.16s %.128s.", method, q.seg);
	} else {
		dispatch(&q);
	}
	free(copy);
}
