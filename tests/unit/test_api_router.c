// SPDX-License-Identifier: Apache-2.0
/*
 * The API router (vmm/api/api_router.c) over a fake VM: every endpoint with good input, every
 * way to get a body wrong (syntax, types, unknown fields at the top and nested, missing
 * required fields, values vmm refuses), the lifecycle rules (what is refused before and after
 * InstanceStart, idempotent pause/resume), status codes and the fault_message shape.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_api_target.h"
#include "vmm/config_json.h"

#define POST_BOOT "The requested operation is not supported after starting the microVM."
#define PRE_BOOT  "The requested operation is not supported before starting the microVM."

struct fx {
	struct fake_vm vm;
	struct api_target t;
	struct api_response r;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	fake_vm_init(&x->vm);
	fake_vm_target(&x->vm, &x->t);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct fx *x = *state;

	api_response_fini(&x->r);
	fake_vm_fini(&x->vm);
	free(x);
	return 0;
}

/* Route one request; returns the status, x->r keeps the response until the next call. */
static int req(struct fx *x, const char *method, const char *path, const char *body)
{
	api_response_fini(&x->r);
	api_route(&x->t, method, path, body, body ? strlen(body) : 0, &x->r);
	return x->r.status;
}

/* A 204 has no body; anything else has a JSON object body. */
static void check_shape(const struct api_response *r)
{
	if (r->status == 204) {
		assert_null(r->body);
		return;
	}
	assert_non_null(r->body);
	json_t *j = json_loads(r->body, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_object(j));
	json_decref(j);
}

/* The request fails with status and a fault_message (the only key) containing text. */
static void expect_fault(struct fx *x, int status, const char *method, const char *path,
			 const char *body, const char *text)
{
	json_t *j, *m;

	assert_int_equal(req(x, method, path, body), status);
	check_shape(&x->r);
	j = json_loads(x->r.body, 0, NULL);
	assert_int_equal(json_object_size(j), 1);
	m = json_object_get(j, "fault_message");
	assert_true(json_is_string(m));
	if (!strstr(json_string_value(m), text))
		fail_msg("%s %s: '%s' does not contain '%s'", method, path, json_string_value(m),
			 text);
	json_decref(j);
}

static void expect_ok(struct fx *x, const char *method, const char *path, const char *body)
{
	int s = req(x, method, path, body);

	if (s != 204)
		fail_msg("%s %s %s: %d %s", method, path, body ? body : "", s,
			 x->r.body ? x->r.body : "");
	check_shape(&x->r);
}

/* A GET that must answer 200; returns the parsed body (json_decref it). */
static json_t *get_json(struct fx *x, const char *path)
{
	json_t *j;

	assert_int_equal(req(x, "GET", path, NULL), 200);
	check_shape(&x->r);
	j = json_loads(x->r.body, 0, NULL);
	assert_non_null(j);
	return j;
}

static void boot(struct fx *x)
{
	expect_ok(x, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_ok(x, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	assert_int_equal(fake_vm_state(&x->vm), VMM_STATE_RUNNING);
}

/* ---- GET / and /version ---- */

static void test_instance_info(void **state)
{
	struct fx *x = *state;
	char want[256];

	snprintf(want, sizeof(want),
		 "{\"id\":\"fake-vm\",\"state\":\"Not started\",\"vmm_version\":\"%s\","
		 "\"app_name\":\"vmm\"}", vmm_version());
	assert_int_equal(req(x, "GET", "/", NULL), 200);
	assert_string_equal(x->r.body, want); /* key order as Firecracker's InstanceInfo */
	boot(x);
	json_t *j = get_json(x, "/");
	assert_string_equal(json_string_value(json_object_get(j, "state")), "Running");
	json_decref(j);
	expect_ok(x, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	j = get_json(x, "/");
	assert_string_equal(json_string_value(json_object_get(j, "state")), "Paused");
	json_decref(j);
	/* No id from the target: the default. */
	x->vm.id = NULL;
	j = get_json(x, "/");
	assert_string_equal(json_string_value(json_object_get(j, "id")), "anonymous-instance");
	json_decref(j);
}

static void test_version(void **state)
{
	struct fx *x = *state;
	char want[128];

	snprintf(want, sizeof(want), "{\"firecracker_version\":\"%s\"}", vmm_version());
	assert_int_equal(req(x, "GET", "/version", NULL), 200);
	assert_string_equal(x->r.body, want);
	/* Trailing slash, extra segments, repeated slashes: the first segment decides. */
	assert_int_equal(req(x, "GET", "/version/", NULL), 200);
	assert_int_equal(req(x, "GET", "/version/x/y", NULL), 200);
	assert_int_equal(req(x, "GET", "//version", NULL), 200);
	assert_string_equal(x->r.body, want);
}

/* ---- paths, methods, bodies ---- */

static void test_unknown_path_method(void **state)
{
	struct fx *x = *state;

	expect_fault(x, 400, "GET", "/foo/bar", NULL,
		     "Invalid request method and/or path: GET foo.");
	expect_fault(x, 400, "PUT", "/version", "{}",
		     "Invalid request method and/or path: PUT version.");
	expect_fault(x, 400, "GET", "/vm", NULL, "Invalid request method and/or path: GET vm.");
	expect_fault(x, 400, "GET", "/vm/other", NULL,
		     "Invalid request method and/or path: GET vm.");
	expect_fault(x, 400, "DELETE", "/drives/x", NULL,
		     "Invalid request method and/or path: DELETE drives.");
	expect_fault(x, 400, "POST", "/actions", "{}",
		     "Invalid request method and/or path: POST actions.");
	expect_fault(x, 400, "PATCH", "/boot-source", "{}",
		     "Invalid request method and/or path: PATCH boot-source.");
	expect_fault(x, 400, "PUT", "/vm", "{}", "Invalid request method and/or path: PUT vm.");
	/* Firecracker resources outside the subset say so. */
	expect_fault(x, 400, "PUT", "/snapshot", "{}", "Missing snapshot operation type");
	expect_fault(x, 400, "PUT", "/snapshot/copy", "{}",
		     "Invalid request method and/or path: PUT /snapshot/copy");
	expect_fault(x, 400, "GET", "/balloon", NULL, "not supported by vmm");
	expect_fault(x, 400, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}",
		     "PATCH /drives");
	/* Nothing reached the VM. */
	assert_int_equal(x->vm.updates, 0);
	assert_int_equal(x->vm.starts, 0);
}

static void test_body_rules(void **state)
{
	struct fx *x = *state;

	expect_fault(x, 400, "GET", "/", "{}", "GET request must not have a body");
	expect_fault(x, 400, "GET", "/machine-config", "x", "must not have a body");
	expect_fault(x, 400, "GET", "/nowhere", "x", "must not have a body");
	expect_fault(x, 400, "PUT", "/boot-source", NULL, "PUT request needs a JSON body");
	expect_fault(x, 400, "PUT", "/nowhere", NULL, "PUT request needs a JSON body");
	expect_fault(x, 400, "PATCH", "/vm", NULL, "PATCH request needs a JSON body");
	expect_fault(x, 400, "PATCH", "/machine-config", NULL, "PATCH request needs");
}

static void test_query_fragment(void **state)
{
	struct fx *x = *state;

	expect_fault(x, 400, "GET", "/?x=1", NULL, "query strings and fragments");
	expect_fault(x, 400, "GET", "/version#top", NULL, "query strings and fragments");
	expect_fault(x, 400, "PUT", "/drives/a?b", "{}", "query strings and fragments");
	expect_fault(x, 400, "GET", "http://localhost/version?x", NULL, "query strings");
}

static void test_absolute_uri(void **state)
{
	struct fx *x = *state;

	assert_int_equal(req(x, "GET", "http://localhost/version", NULL), 200);
	assert_int_equal(req(x, "GET", "http://localhost", NULL), 200);
	assert_non_null(strstr(x->r.body, "\"app_name\":\"vmm\""));
	assert_int_equal(req(x, "GET", "http://localhost/", NULL), 200);
	assert_int_equal(req(x, "GET", "http://localhost:80/machine-config", NULL), 200);
	expect_ok(x, "PUT", "http://localhost/boot-source", "{\"kernel_image_path\": \"/k\"}");
	assert_string_equal(x->vm.cfg.kernel, "/k");
	expect_fault(x, 400, "GET", "localhost/version", NULL, "not a path");
	expect_fault(x, 400, "GET", "*", NULL, "not a path");
	expect_fault(x, 400, "GET", "", NULL, "not a path");
}

/* A fault_message is valid JSON whatever bytes the path had. */
static void test_fault_text_is_utf8(void **state)
{
	struct fx *x = *state;

	expect_fault(x, 400, "GET", "/\xff\xfe/x", NULL, "Invalid request method and/or path");
	expect_fault(x, 400, "GET", "/caf\xc3\xa9", NULL, "GET caf\xc3\xa9.");
	expect_fault(x, 400, "GET", "/\xe2\x82", NULL, "GET ??.");
	expect_fault(x, 400, "GET", "/\xed\xa0\x80", NULL, "GET ???."); /* a surrogate */
	/* A very long path is cut, not overflowed. */
	char path[6000];
	path[0] = '/';
	memset(path + 1, 'a', sizeof(path) - 2);
	path[sizeof(path) - 1] = '\0';
	expect_fault(x, 400, "GET", path, NULL, "Invalid request method and/or path: GET aaa");
}

/* ---- PUT /boot-source ---- */

static void test_boot_source(void **state)
{
	struct fx *x = *state;

	expect_ok(x, "PUT", "/boot-source", "{\"kernel_image_path\": \"/vmlinux\", \"boot_args\": "
		  "\"console=ttyS0 quiet\", \"initrd_path\": \"/initrd\"}");
	assert_string_equal(x->vm.cfg.kernel, "/vmlinux");
	assert_string_equal(x->vm.cfg.cmdline, "console=ttyS0 quiet");
	assert_string_equal(x->vm.cfg.initrd, "/initrd");
	/* PUT replaces: no initrd and no boot_args now. */
	expect_ok(x, "PUT", "/boot-source",
		  "{\"kernel_image_path\": \"/bz\", \"initrd_path\": null}");
	assert_string_equal(x->vm.cfg.kernel, "/bz");
	assert_null(x->vm.cfg.initrd);
	assert_null(x->vm.cfg.cmdline);

	expect_fault(x, 400, "PUT", "/boot-source", "{\"kernel_image_path\": ", "not valid JSON");
	expect_fault(x, 400, "PUT", "/boot-source", "{\"kernel_image_path\": \"/a\"} x",
		     "not valid JSON");
	expect_fault(x, 400, "PUT", "/boot-source", "[\"/a\"]", "must be a JSON object");
	expect_fault(x, 400, "PUT", "/boot-source", "\"/a\"", "request body");
	expect_fault(x, 400, "PUT", "/boot-source", "{\"kernel_image_path\": 5}",
		     "kernel_image_path: must be a string");
	expect_fault(x, 400, "PUT", "/boot-source",
		     "{\"kernel_image_path\": \"/a\", \"boot_args\": [\"x\"]}",
		     "boot_args: must be a string");
	expect_fault(x, 400, "PUT", "/boot-source", "{\"kernel_image_path\": \"/a\", \"foo\": 1}",
		     "unknown field 'foo'");
	expect_fault(x, 400, "PUT", "/boot-source", "{\"boot_args\": \"x\"}",
		     "missing required field 'kernel_image_path'");
	expect_fault(x, 400, "PUT", "/boot-source", "{\"kernel_image_path\": \"\"}", "empty path");
	expect_fault(x, 400, "PUT", "/boot-source",
		     "{\"kernel_image_path\": \"/a\", \"kernel_image_path\": \"/b\"}", "duplicate");
	/* None of the failures changed anything. */
	assert_string_equal(x->vm.cfg.kernel, "/bz");
	assert_int_equal(x->vm.updates, 2);

	boot(x);
	expect_fault(x, 400, "PUT", "/boot-source", "{\"kernel_image_path\": \"/other\"}",
		     POST_BOOT);
	assert_string_equal(x->vm.cfg.kernel, "/k");
}

/* ---- /machine-config ---- */

static void test_machine_config(void **state)
{
	struct fx *x = *state;
	json_t *j;

	assert_int_equal(req(x, "GET", "/machine-config", NULL), 200);
	assert_string_equal(x->r.body, "{\"vcpu_count\":1,\"mem_size_mib\":256,\"smt\":false,"
			    "\"track_dirty_pages\":false,\"huge_pages\":\"None\"}");
	expect_ok(x, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 512}");
	j = get_json(x, "/machine-config");
	assert_int_equal(json_integer_value(json_object_get(j, "vcpu_count")), 2);
	assert_int_equal(json_integer_value(json_object_get(j, "mem_size_mib")), 512);
	json_decref(j);
	expect_ok(x, "PATCH", "/machine-config", "{\"vcpu_count\": 4}");
	assert_int_equal(x->vm.cfg.nr_cpus, 4);
	assert_int_equal(x->vm.cfg.mem_size, 512ULL << 20);
	/* Firecracker-compatible values of its other fields. */
	expect_ok(x, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 128, "
		  "\"smt\": false, \"cpu_template\": \"None\", \"track_dirty_pages\": false, "
		  "\"huge_pages\": \"None\"}");
	assert_int_equal(x->vm.cfg.mem_size, 128ULL << 20);

	expect_fault(x, 400, "PATCH", "/machine-config", "{}", "empty");
	expect_fault(x, 400, "PUT", "/machine-config", "{\"vcpu_count\": 2}",
		     "missing required field 'mem_size_mib'");
	expect_fault(x, 400, "PUT", "/machine-config", "{\"mem_size_mib\": 256}",
		     "missing required field 'vcpu_count'");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"vcpu_count\": \"2\"}",
		     "vcpu_count: must be an integer");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"vcpu_count\": 2.5}",
		     "vcpu_count: must be an integer");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"smt\": 1}",
		     "smt: must be true or false");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"smt\": true}",
		     "smt: true is not supported");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"cpu_template\": \"T2\"}", "'T2'");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"huge_pages\": \"2M\"}", "huge_pages");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"track_dirty_pages\": 1}",
		     "track_dirty_pages: must be true or false");
	expect_ok(x, "PATCH", "/machine-config", "{\"track_dirty_pages\": true}");
	assert_true(x->vm.cfg.track_dirty);
	/* A later field's refusal leaves it as it was. */
	expect_fault(x, 400, "PATCH", "/machine-config",
		     "{\"track_dirty_pages\": false, \"huge_pages\": \"2M\"}", "huge_pages");
	assert_true(x->vm.cfg.track_dirty);
	expect_ok(x, "PATCH", "/machine-config", "{\"track_dirty_pages\": false}");
	assert_false(x->vm.cfg.track_dirty);
	/* Ours: guest RAM in a file, shown back; null takes it away. */
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"mem_backing_path\": 7}",
		     "mem_backing_path: must be a string or null");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"mem_backing_path\": \"\"}",
		     "mem_backing_path: empty path");
	expect_ok(x, "PATCH", "/machine-config", "{\"mem_backing_path\": \"/dev/shm/r\"}");
	assert_string_equal(x->vm.cfg.mem_path, "/dev/shm/r");
	j = get_json(x, "/machine-config");
	assert_string_equal(json_string_value(json_object_get(j, "mem_backing_path")),
			    "/dev/shm/r");
	json_decref(j);
	expect_ok(x, "PATCH", "/machine-config", "{\"mem_backing_path\": null}");
	assert_null(x->vm.cfg.mem_path);
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"vcpu_count\": 0}", "out of range");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"vcpu_count\": 100000}",
		     "out of range");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"mem_size_mib\": 0}", "out of range");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"mem_size_mib\": 2}", "4 MiB");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"vcpu_count\": 2, \"vcpus\": 2}",
		     "unknown field 'vcpus'");
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"vcpu_count\": 2, \"smt\": true}",
		     "smt");
	/* A refused PATCH changes nothing, not even its valid part. */
	assert_int_equal(x->vm.cfg.nr_cpus, 1);

	boot(x);
	expect_fault(x, 400, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64}",
		     POST_BOOT);
	expect_fault(x, 400, "PATCH", "/machine-config", "{\"vcpu_count\": 2}", POST_BOOT);
	/* Syntax is checked first, as Firecracker parses before it asks the VM. */
	expect_fault(x, 400, "PATCH", "/machine-config", "{", "not valid JSON");
	j = get_json(x, "/machine-config");
	assert_int_equal(json_integer_value(json_object_get(j, "vcpu_count")), 1);
	json_decref(j);
}

/* ---- PUT /drives/{id} ---- */

#define DRIVE(id, path, root) "{\"drive_id\": \"" id "\", \"path_on_host\": \"" path "\", " \
			      "\"is_root_device\": " root ", \"is_read_only\": false}"

static void test_drives(void **state)
{
	struct fx *x = *state;
	struct config_disk *d;

	expect_ok(x, "PUT", "/drives/rootfs", DRIVE("rootfs", "/img/root.ext4", "true"));
	assert_int_equal(x->vm.cfg.nr_disks, 1);
	d = &x->vm.cfg.disks[0];
	assert_string_equal(d->id, "rootfs");
	assert_string_equal(d->path, "/img/root.ext4");
	assert_true(d->root);
	assert_false(d->read_only);
	/* The same id replaces the drive. */
	expect_ok(x, "PUT", "/drives/rootfs", "{\"drive_id\": \"rootfs\", \"path_on_host\": "
		  "\"/img/other.ext4\", \"is_root_device\": false, \"is_read_only\": true, "
		  "\"cache_type\": \"Writeback\", \"io_engine\": \"Async\"}");
	assert_int_equal(x->vm.cfg.nr_disks, 1);
	assert_string_equal(d->path, "/img/other.ext4");
	assert_false(d->root);
	assert_true(d->read_only);
	assert_int_equal(d->io, VMM_IO_URING);
	/* vmm's ids allow '-' and '.' too; is_read_only may be left out. */
	expect_ok(x, "PUT", "/drives/data-1.x", "{\"drive_id\": \"data-1.x\", \"path_on_host\": "
		  "\"/img/data\", \"is_root_device\": true, \"partuuid\": \"1234-5678\", "
		  "\"io_engine\": \"Sync\", \"cache_type\": \"Unsafe\", \"rate_limiter\": null}");
	assert_int_equal(x->vm.cfg.nr_disks, 2);
	assert_string_equal(x->vm.cfg.disks[1].partuuid, "1234-5678");
	assert_int_equal(x->vm.cfg.disks[1].io, VMM_IO_SYNC);
	/* A trailing slash or extra segment is ignored, as for every path. */
	expect_ok(x, "PUT", "/drives/d3/", DRIVE("d3", "/img/d3", "false"));
	assert_int_equal(x->vm.cfg.nr_disks, 3);

	expect_fault(x, 400, "PUT", "/drives/rootfs", DRIVE("other", "/img/x", "false"),
		     "differs from the id in the path");
	expect_fault(x, 400, "PUT", "/drives/a$b", DRIVE("a$b", "/img/x", "false"), "'a$b'");
	expect_fault(x, 400, "PUT", "/drives/a%20b", DRIVE("a b", "/img/x", "false"), "'a%20b'");
	expect_fault(x, 400, "PUT", "/drives/", DRIVE("x", "/img/x", "false"), "empty");
	expect_fault(x, 400, "PUT", "/drives", DRIVE("x", "/img/x", "false"), "empty");
	expect_fault(x, 400, "PUT", "/drives//x", DRIVE("x", "/img/x", "false"), "empty");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"path_on_host\": \"/i\"}",
		     "missing required field 'is_root_device'");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"is_root_device\": false}",
		     "missing required field 'path_on_host'");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"path_on_host\": \"/i\", \"is_root_device\": "
		     "false}", "missing required field 'drive_id'");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": 7, \"path_on_host\": \"/i\", "
		     "\"is_root_device\": false}", "drive_id: must be a string");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"path_on_host\": \"/i\", "
		     "\"is_root_device\": false, \"is_read_only\": \"yes\"}",
		     "is_read_only: must be true or false");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"path_on_host\": \"/i\", "
		     "\"is_root_device\": false, \"rate_limiter\": {\"bandwidth\": {\"size\": 1, "
		     "\"refill_time\": 100}}}", "rate_limiter");
	/* Unknown fields, nested inside an object vmm refuses anyway, and at the top. */
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"path_on_host\": \"/i\", "
		     "\"is_root_device\": false, \"rate_limiter\": {\"nope\": 1}}", "rate_limiter");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"path_on_host\": \"/i\", "
		     "\"is_root_device\": false, \"bogus\": true}", "unknown field 'bogus'");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"socket\": \"/s\", "
		     "\"is_root_device\": false}", "vhost-user");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"path_on_host\": \"/i\", "
		     "\"is_root_device\": false, \"io_engine\": \"Fast\"}", "io_engine");
	expect_fault(x, 400, "PUT", "/drives/x", "{\"drive_id\": \"x\", \"path_on_host\": \"/i\", "
		     "\"is_root_device\": false, \"cache_type\": \"None\"}", "cache_type");
	/* A second root device, the same image twice. */
	expect_fault(x, 400, "PUT", "/drives/x", DRIVE("x", "/img/x", "true"), "root device");
	expect_fault(x, 400, "PUT", "/drives/x", DRIVE("x", "/img/data", "false"), "also disk");
	/* At most VMM_MAX_DISKS (ENOSPC: the user's to fix, so 400). */
	expect_ok(x, "PUT", "/drives/d4", DRIVE("d4", "/img/d4", "false"));
	expect_ok(x, "PUT", "/drives/d5", DRIVE("d5", "/img/d5", "false"));
	expect_ok(x, "PUT", "/drives/d6", DRIVE("d6", "/img/d6", "false"));
	expect_ok(x, "PUT", "/drives/d7", DRIVE("d7", "/img/d7", "false"));
	expect_ok(x, "PUT", "/drives/d8", DRIVE("d8", "/img/d8", "false"));
	expect_fault(x, 400, "PUT", "/drives/d9", DRIVE("d9", "/img/d9", "false"), "more than 8");
	assert_int_equal(x->vm.cfg.nr_disks, 8);

	expect_ok(x, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_ok(x, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(x, 400, "PUT", "/drives/d2", DRIVE("d2", "/img/d2", "false"), POST_BOOT);
	/* The id is checked before the phase, as Firecracker parses the path first. */
	expect_fault(x, 400, "PUT", "/drives/a$", DRIVE("a$", "/img/d2", "false"), "'a$'");
	assert_int_equal(x->vm.cfg.nr_disks, 8);
}

/* ---- GET /vm/config ---- */

static void test_vm_config(void **state)
{
	struct fx *x = *state;
	json_t *j, *drives, *d, *boot_src, *mc;

	expect_ok(x, "PUT", "/boot-source", "{\"kernel_image_path\": \"/vmlinux\", \"boot_args\": "
		  "\"console=ttyS0\"}");
	expect_ok(x, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 1024}");
	expect_ok(x, "PUT", "/drives/rootfs", DRIVE("rootfs", "/root.ext4", "true"));
	expect_ok(x, "PUT", "/drives/scratch", DRIVE("scratch", "/scratch.img", "false"));
	expect_ok(x, "PUT", "/drives/rootfs", DRIVE("rootfs", "/root2.ext4", "true"));

	/* Firecracker's layout: every key, in its order, null or [] for what vmm lacks. */
	assert_int_equal(req(x, "GET", "/vm/config", NULL), 200);
	assert_string_equal(x->r.body,
		"{\"balloon\":null,\"drives\":["
		"{\"drive_id\":\"rootfs\",\"partuuid\":null,\"is_root_device\":true,"
		"\"cache_type\":\"Writeback\",\"is_read_only\":false,"
		"\"path_on_host\":\"/root2.ext4\",\"rate_limiter\":null,\"io_engine\":\"Async\","
		"\"socket\":null},"
		"{\"drive_id\":\"scratch\",\"partuuid\":null,\"is_root_device\":false,"
		"\"cache_type\":\"Writeback\",\"is_read_only\":false,"
		"\"path_on_host\":\"/scratch.img\",\"rate_limiter\":null,\"io_engine\":\"Async\","
		"\"socket\":null}],"
		"\"boot-source\":{\"kernel_image_path\":\"/vmlinux\",\"initrd_path\":null,"
		"\"boot_args\":\"console=ttyS0\"},\"cpu-config\":null,\"logger\":null,"
		"\"machine-config\":{\"vcpu_count\":2,\"mem_size_mib\":1024,\"smt\":false,"
		"\"track_dirty_pages\":false,\"huge_pages\":\"None\"},\"metrics\":null,"
		"\"mmds-config\":null,\"network-interfaces\":[],\"vsock\":null,\"entropy\":null,"
		"\"pmem\":[],\"memory-hotplug\":null}");
	j = get_json(x, "/vm/config");
	boot_src = json_object_get(j, "boot-source");
	assert_string_equal(json_string_value(json_object_get(boot_src, "kernel_image_path")),
			    "/vmlinux");
	assert_string_equal(json_string_value(json_object_get(boot_src, "boot_args")),
			    "console=ttyS0");
	mc = json_object_get(j, "machine-config");
	assert_int_equal(json_integer_value(json_object_get(mc, "vcpu_count")), 2);
	assert_int_equal(json_integer_value(json_object_get(mc, "mem_size_mib")), 1024);
	drives = json_object_get(j, "drives");
	assert_int_equal(json_array_size(drives), 2);
	d = json_array_get(drives, 0);
	assert_string_equal(json_string_value(json_object_get(d, "drive_id")), "rootfs");
	assert_string_equal(json_string_value(json_object_get(d, "path_on_host")), "/root2.ext4");
	assert_true(json_is_true(json_object_get(d, "is_root_device")));
	d = json_array_get(drives, 1);
	assert_string_equal(json_string_value(json_object_get(d, "drive_id")), "scratch");
	assert_true(json_is_false(json_object_get(d, "is_read_only")));
	assert_true(json_is_array(json_object_get(j, "network-interfaces")));

	/* It reads back as a configuration file giving the same configuration. */
	struct vmm_config c;
	struct vmm_error e = { 0 };
	config_init(&c);
	assert_int_equal(cfgjson_file(&c, j, &e), 0);
	assert_string_equal(c.kernel, "/vmlinux");
	assert_int_equal(c.nr_disks, 2);
	assert_int_equal(c.nr_cpus, 2);
	config_fini(&c);
	json_decref(j);

	boot(x); /* keeps the configuration, bar the kernel boot() sets */
	j = get_json(x, "/vm/config");
	assert_int_equal(json_array_size(json_object_get(j, "drives")), 2);
	json_decref(j);
}

/* ---- PUT /network-interfaces/{iface_id} ---- */

static void test_net(void **state)
{
	struct fx *x = *state;
	json_t *j, *n;

	expect_ok(x, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_ok(x, "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", "
		  "\"host_dev_name\": \"tap0\", \"guest_mac\": \"52:54:00:AB:cd:01\"}");
	expect_ok(x, "PUT", "/network-interfaces/eth1", "{\"iface_id\": \"eth1\", "
		  "\"host_dev_name\": \"tap1\", \"rx_rate_limiter\": null, \"tx_rate_limiter\": "
		  "{\"bandwidth\": {\"size\": 1048576, \"one_time_burst\": 4096, "
		  "\"refill_time\": 100}, \"ops\": {\"size\": 1000, \"refill_time\": 1000}}}");
	assert_int_equal(x->vm.cfg.nr_nets, 2);
	assert_true(x->vm.cfg.nets[0].has_mac);
	assert_int_equal(x->vm.cfg.nets[0].mac[4], 0xcd);
	assert_false(x->vm.cfg.nets[1].has_mac);
	assert_int_equal(x->vm.cfg.nets[1].rx_limit.bandwidth.size, 0);
	assert_int_equal(x->vm.cfg.nets[1].tx_limit.bandwidth.size, 1048576);
	assert_int_equal(x->vm.cfg.nets[1].tx_limit.bandwidth.one_time_burst, 4096);
	assert_int_equal(x->vm.cfg.nets[1].tx_limit.bandwidth.refill_time_ms, 100);
	assert_int_equal(x->vm.cfg.nets[1].tx_limit.ops.size, 1000);
	j = get_json(x, "/vm/config");
	n = json_array_get(json_object_get(j, "network-interfaces"), 0);
	assert_string_equal(json_string_value(json_object_get(n, "guest_mac")), "52:54:00:ab:cd:01");
	assert_string_equal(json_string_value(json_object_get(n, "host_dev_name")), "tap0");
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(j,
		"network-interfaces"), 1), "guest_mac")));
	struct vmm_config c;
	struct vmm_error e = { 0 };
	config_init(&c);
	assert_int_equal(cfgjson_file(&c, j, &e), 0);
	assert_int_equal(c.nr_nets, 2);
	assert_int_equal(c.nets[0].mac[5], 1);
	/* The limits come back from GET /vm/config as they went in. */
	assert_memory_equal(&c.nets[1].tx_limit, &x->vm.cfg.nets[1].tx_limit,
			    sizeof(c.nets[1].tx_limit));
	assert_int_equal(c.nets[1].rx_limit.ops.size, 0);
	config_fini(&c);
	json_decref(j);

	expect_fault(x, 400, "PUT", "/network-interfaces/eth2", "{\"iface_id\": \"eth2\", "
		     "\"host_dev_name\": \"tap1\"}", "tap 'tap1' is also interface 'eth1'");
	expect_fault(x, 400, "PUT", "/network-interfaces/eth2", "{\"iface_id\": \"eth2\", "
		     "\"host_dev_name\": \"tap2\", \"guest_mac\": \"52:54:00:1\"}",
		     "is not six hex bytes");
	expect_fault(x, 400, "PUT", "/network-interfaces/eth2", "{\"iface_id\": \"eth2\", "
		     "\"host_dev_name\": \"a-very-long-tap-name\"}", "longer than 15");
	expect_fault(x, 400, "PUT", "/network-interfaces/eth2", "{\"iface_id\": \"eth3\", "
		     "\"host_dev_name\": \"tap2\"}", "differs from the id in the path");
	expect_fault(x, 400, "PUT", "/network-interfaces/eth2", "{\"iface_id\": \"eth2\", "
		     "\"host_dev_name\": \"tap2\", \"tx_rate_limiter\": {\"ops\": {}}}",
		     "tx_rate_limiter.ops: missing required field 'size'");
	expect_fault(x, 400, "PUT", "/network-interfaces/eth2", "{\"iface_id\": \"eth2\", "
		     "\"host_dev_name\": \"tap2\", \"rx_rate_limiter\": {\"bytes\": 1}}",
		     "rx_rate_limiter");
	expect_ok(x, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(x, 400, "PUT", "/network-interfaces/eth0", "{\"iface_id\": \"eth0\", "
		     "\"host_dev_name\": \"tap0\"}", POST_BOOT);
}

/* ---- PUT /pmem/{id} ---- */

static void test_pmem(void **state)
{
	struct fx *x = *state;
	json_t *j, *p;

	expect_ok(x, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_ok(x, "PUT", "/pmem/base", "{\"id\": \"base\", \"path_on_host\": \"/img/base\", "
		  "\"root_device\": true, \"read_only\": true}");
	expect_ok(x, "PUT", "/pmem/scratch", "{\"id\": \"scratch\", \"path_on_host\": "
		  "\"/img/s\"}");
	/* The same id replaces the device. */
	expect_ok(x, "PUT", "/pmem/scratch", "{\"id\": \"scratch\", \"path_on_host\": "
		  "\"/img/s2\"}");
	assert_int_equal(x->vm.cfg.nr_pmems, 2);
	assert_string_equal(x->vm.cfg.pmems[1].path, "/img/s2");
	j = get_json(x, "/vm/config");
	p = json_array_get(json_object_get(j, "pmem"), 0);
	assert_string_equal(json_string_value(json_object_get(p, "id")), "base");
	assert_true(json_is_true(json_object_get(p, "root_device")));
	assert_true(json_is_true(json_object_get(p, "read_only")));
	/* It reads back as a configuration file giving the same devices. */
	struct vmm_config c;
	struct vmm_error e = { 0 };
	config_init(&c);
	assert_int_equal(cfgjson_file(&c, j, &e), 0);
	assert_int_equal(c.nr_pmems, 2);
	assert_true(c.pmems[0].root);
	config_fini(&c);
	json_decref(j);

	expect_fault(x, 400, "PUT", "/pmem/x", "{\"id\": \"y\", \"path_on_host\": \"/i\"}",
		     "differs from the id in the path");
	expect_fault(x, 400, "PUT", "/pmem/x", "{\"id\": \"x\"}",
		     "missing required field 'path_on_host'");
	expect_fault(x, 400, "PUT", "/pmem/x", "{\"id\": \"x\", \"path_on_host\": \"/i\", "
		     "\"rate_limiter\": {}}", "unknown field 'rate_limiter'");
	expect_fault(x, 400, "PUT", "/pmem/scratch", "{\"id\": \"scratch\", \"path_on_host\": "
		     "\"/img/base\"}", "is also pmem 'base'");
	expect_fault(x, 400, "PUT", "/pmem/x", "{\"id\": \"x\", \"path_on_host\": \"/i\"}",
		     "more than 2 pmem");
	expect_fault(x, 400, "PUT", "/pmem/", "{\"id\": \"x\", \"path_on_host\": \"/i\"}",
		     "empty");
	expect_ok(x, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(x, 400, "PUT", "/pmem/base", "{\"id\": \"base\", \"path_on_host\": \"/i\"}",
		     POST_BOOT);
}

/* ---- PUT /vsock ---- */

static void test_vsock(void **state)
{
	struct fx *x = *state;
	json_t *j;

	expect_ok(x, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_fault(x, 400, "PUT", "/vsock", "{}", "missing required field 'guest_cid'");
	expect_fault(x, 400, "PUT", "/vsock", "{\"guest_cid\": 3}",
		     "missing required field 'uds_path'");
	expect_fault(x, 400, "PUT", "/vsock", "{\"guest_cid\": 2, \"uds_path\": \"/v\"}",
		     "guest CID 2 is reserved");
	expect_fault(x, 400, "PUT", "/vsock", "{\"guest_cid\": -4, \"uds_path\": \"/v\"}",
		     "negative");
	expect_fault(x, 400, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/v\", "
		     "\"port\": 1}", "unknown field 'port'");
	assert_false(x->vm.cfg.vsock.set);
	/* vsock_id is Firecracker's, deprecated: accepted and not kept. */
	expect_ok(x, "PUT", "/vsock", "{\"vsock_id\": \"v\", \"guest_cid\": 52, "
		  "\"uds_path\": \"/run/v.sock\"}");
	assert_true(x->vm.cfg.vsock.set);
	assert_int_equal(x->vm.cfg.vsock.cid, 52);
	assert_string_equal(x->vm.cfg.vsock.uds, "/run/v.sock");
	j = get_json(x, "/vm/config");
	json_t *v = json_object_get(j, "vsock");
	assert_int_equal(json_integer_value(json_object_get(v, "guest_cid")), 52);
	assert_string_equal(json_string_value(json_object_get(v, "uds_path")), "/run/v.sock");
	/* It reads back as a configuration file giving the same device. */
	struct vmm_config c;
	struct vmm_error e = { 0 };
	config_init(&c);
	assert_int_equal(cfgjson_file(&c, j, &e), 0);
	assert_true(c.vsock.set);
	assert_int_equal(c.vsock.cid, 52);
	config_fini(&c);
	json_decref(j);
	expect_ok(x, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(x, 400, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/v\"}",
		     POST_BOOT);
}

/* ---- PUT /entropy ---- */

static void test_entropy(void **state)
{
	struct fx *x = *state;
	json_t *j, *rl;

	expect_ok(x, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	/* No rate limit: the device alone, shown with a null rate_limiter. */
	expect_ok(x, "PUT", "/entropy", "{}");
	assert_true(x->vm.cfg.rng);
	assert_int_equal(req(x, "GET", "/vm/config", NULL), 200);
	assert_non_null(strstr(x->r.body, "\"entropy\":{\"rate_limiter\":null}"));

	expect_ok(x, "PUT", "/entropy", "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1000, "
		  "\"one_time_burst\": 5000, \"refill_time\": 100}, \"ops\": {\"size\": 10, "
		  "\"refill_time\": 1000}}}");
	assert_int_equal(x->vm.cfg.rng_limit.bandwidth.size, 1000);
	assert_int_equal(x->vm.cfg.rng_limit.bandwidth.one_time_burst, 5000);
	assert_int_equal(x->vm.cfg.rng_limit.bandwidth.refill_time_ms, 100);
	assert_int_equal(x->vm.cfg.rng_limit.ops.size, 10);
	j = get_json(x, "/vm/config");
	rl = json_object_get(json_object_get(j, "entropy"), "rate_limiter");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(rl, "bandwidth"),
							    "one_time_burst")), 5000);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(rl, "ops"),
							    "refill_time")), 1000);
	/* It reads back as a configuration file giving the same device. */
	struct vmm_config c;
	struct vmm_error e = { 0 };
	config_init(&c);
	assert_int_equal(cfgjson_file(&c, j, &e), 0);
	assert_true(c.rng);
	assert_int_equal(c.rng_limit.ops.refill_time_ms, 1000);
	config_fini(&c);
	json_decref(j);

	/* Each refusal names the field; a refused PUT changes nothing. */
	expect_fault(x, 400, "PUT", "/entropy", "{\"rate\": 1}", "unknown field 'rate'");
	expect_fault(x, 400, "PUT", "/entropy", "{\"rate_limiter\": {\"bandwidth\": "
		     "{\"size\": 1}}}", "rate_limiter.bandwidth: missing required field "
		     "'refill_time'");
	expect_fault(x, 400, "PUT", "/entropy", "{\"rate_limiter\": {\"ops\": {\"size\": -1, "
		     "\"refill_time\": 5}}}", "must not be negative");
	expect_fault(x, 400, "PUT", "/entropy", "{\"rate_limiter\": {\"ops\": {\"size\": 0, "
		     "\"refill_time\": 5}}}", "both be positive");
	expect_fault(x, 400, "PUT", "/entropy", "{\"rate_limiter\": {\"bandwidth\": {\"size\": "
		     "\"1\", \"refill_time\": 5}}}", "size: must be an integer");
	expect_fault(x, 400, "PUT", "/entropy", "{\"rate_limiter\": [1]}", "must be a JSON object");
	assert_int_equal(x->vm.cfg.rng_limit.bandwidth.size, 1000);

	expect_ok(x, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(x, 400, "PUT", "/entropy", "{}", POST_BOOT);
}

/* ---- PUT /actions ---- */

static void test_actions(void **state)
{
	struct fx *x = *state;

	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}",
		     "kernel: none given");
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}",
		     PRE_BOOT);
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}",
		     "no metrics");
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"Reboot\"}",
		     "unknown action_type 'Reboot'");
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": 1}", "must be a string");
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": null}", "must be a string");
	expect_fault(x, 400, "PUT", "/actions", "{}", "missing required field 'action_type'");
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"InstanceStart\", \"x\": 1}",
		     "unknown field 'x'");
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"", "JSON");
	assert_int_equal(x->vm.starts, 0);

	/* Start errors: the user's (400) and the VMM's (500). */
	expect_ok(x, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	x->vm.start_err = -ENOMEM;
	expect_fault(x, 500, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}",
		     "fake start failure");
	x->vm.start_err = -EIO;
	expect_fault(x, 500, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", "failure");
	x->vm.start_err = -EFAULT;
	expect_fault(x, 500, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", "failure");
	static const int user_errs[] = { -EINVAL, -ENOENT, -EACCES, -EISDIR, -ENOEXEC, -E2BIG,
					 -EBUSY, -EEXIST, -ENOSPC, -EAGAIN, -ENAMETOOLONG };
	for (size_t i = 0; i < ARRAY_SIZE(user_errs); i++) {
		x->vm.start_err = user_errs[i];
		expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}",
			     "failure");
	}
	assert_int_equal(fake_vm_state(&x->vm), VMM_STATE_CREATED);
	x->vm.start_err = 0;

	expect_ok(x, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	assert_int_equal(x->vm.starts, 1);
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", POST_BOOT);
	assert_int_equal(x->vm.starts, 1);
	expect_ok(x, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
	assert_int_equal(x->vm.cads, 1);
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}",
		     "no metrics");
	/* The fake takes Ctrl-Alt-Del only running: its refusal comes through. */
	expect_ok(x, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}",
		     "needs a running VM");
}

/* ---- PATCH /vm ---- */

static void test_patch_vm(void **state)
{
	struct fx *x = *state;

	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": \"Paused\"}", PRE_BOOT);
	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": \"Resumed\"}", PRE_BOOT);
	/* A bad body is refused as such even before start. */
	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": \"Running\"}",
		     "neither \"Paused\" nor \"Resumed\"");
	boot(x);
	expect_ok(x, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	assert_int_equal(fake_vm_state(&x->vm), VMM_STATE_PAUSED);
	/* Idempotent: the VM is not asked again. */
	expect_ok(x, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	assert_int_equal(x->vm.pauses, 1);
	expect_ok(x, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
	assert_int_equal(fake_vm_state(&x->vm), VMM_STATE_RUNNING);
	expect_ok(x, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
	assert_int_equal(x->vm.resumes, 1);

	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": \"paused\"}", "'paused'");
	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": 1}", "state must be a string");
	expect_fault(x, 400, "PATCH", "/vm", "{}", "missing required field 'state'");
	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": \"Paused\", \"when\": \"now\"}",
		     "unknown field 'when'");
	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": \"Paused\"", "not valid JSON");
	expect_fault(x, 400, "PATCH", "/vm", "[]", "JSON object");
	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": \"Pa\\u0000used\"}", "JSON");
	assert_int_equal(fake_vm_state(&x->vm), VMM_STATE_RUNNING);

	/* A stopped VM: the target refuses, the router passes it on. */
	x->vm.state = VMM_STATE_STOPPED;
	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": \"Paused\"}", "cannot pause");
	expect_fault(x, 400, "PATCH", "/vm", "{\"state\": \"Resumed\"}", "cannot resume");
	json_t *j = get_json(x, "/");
	assert_string_equal(json_string_value(json_object_get(j, "state")), "Stopped");
	json_decref(j);
}

/* PUT /snapshot/create and /snapshot/load: fields, phases, what is passed on. */
static void test_snapshot(void **state)
{
	struct fx *x = *state;
	const char *create = "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"/s/vm.state\", "
			     "\"mem_file_path\": \"/s/vm.mem\"}";

	/* Before start: create is refused, load goes through (paused unless resume_vm). */
	expect_fault(x, 400, "PUT", "/snapshot/create", create, PRE_BOOT);
	expect_fault(x, 400, "PUT", "/snapshot/luo", "{\"session\": \"s\"}", PRE_BOOT);
	expect_fault(x, 400, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s/vm.state\"}",
		     "mem_backend");
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_type\": \"Uffd\", "
		     "\"backend_path\": \"/u\"}}", "only \"File\"");
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"mem_backend\": "
		     "{\"backend_type\": \"File\", \"backend_path\": \"/m\"}}", "not both");
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"resume_vm\": 1}",
		     "resume_vm must be true or false");
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", \"extra\": 1}",
		     "unknown field 'extra'");
	/* Firecracker's overrides of the host side: their shape is checked here. */
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		     "\"vsock_override\": {\"path\": \"/v\"}}", "unknown field 'path'");
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		     "\"vsock_override\": \"/v\"}", "vsock_override must be an object");
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		     "\"network_overrides\": [{\"iface_id\": \"eth0\"}]}",
		     "missing required field 'host_dev_name'");
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		     "\"network_overrides\": {}}", "must be a list");
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		     "\"network_overrides\": [1]}", "network_overrides[0] must be an object");
	assert_int_equal(x->vm.loads, 0);
	expect_ok(x, "PUT", "/snapshot/load",
		  "{\"snapshot_path\": \"/s/vm.state\", \"mem_backend\": {\"backend_type\": "
		  "\"File\", \"backend_path\": \"/s/vm.mem\"}, \"resume_vm\": false, "
		  "\"track_dirty_pages\": false, \"network_overrides\": [{\"iface_id\": \"eth0\", "
		  "\"host_dev_name\": \"tap9\"}], \"vsock_override\": {\"uds_path\": "
		  "\"/run/clone.vsock\"}}");
	assert_int_equal(x->vm.loads, 1);
	assert_int_equal(x->vm.last_overrides_nets, 1);
	assert_string_equal(x->vm.last_override_tap, "tap9");
	assert_string_equal(x->vm.last_override_uds, "/run/clone.vsock");
	assert_string_equal(x->vm.last_state_path, "/s/vm.state");
	assert_string_equal(x->vm.last_mem_path, "/s/vm.mem");
	assert_false(x->vm.last_resume);
	assert_false(x->vm.last_track_dirty);
	assert_int_equal(fake_vm_state(&x->vm), VMM_STATE_PAUSED);
	/* Loaded: a second load is refused, create works on the paused VM. */
	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}", POST_BOOT);
	expect_fault(x, 400, "PUT", "/snapshot/create", "{\"snapshot_path\": \"/a\"}",
		     "mem_file_path");
	expect_fault(x, 400, "PUT", "/snapshot/create",
		     "{\"snapshot_path\": \"/a\", \"mem_file_path\": \"/b\", \"snapshot_type\": "
		     "\"Half\"}", "neither \"Full\" nor \"Diff\"");
	expect_ok(x, "PUT", "/snapshot/create", create);
	assert_int_equal(x->vm.snapshots, 1);
	assert_int_equal(x->vm.last_type, VMM_SNAPSHOT_FULL);
	expect_ok(x, "PUT", "/snapshot/create",
		  "{\"snapshot_path\": \"/a\", \"mem_file_path\": \"/b\", \"snapshot_type\": "
		  "\"Diff\"}");
	assert_int_equal(x->vm.last_type, VMM_SNAPSHOT_DIFF);
	/* PUT /snapshot/luo (ours): a session name, nothing else; the target's error as is. */
	expect_fault(x, 400, "PUT", "/snapshot/luo", "{}", "session");
	expect_fault(x, 400, "PUT", "/snapshot/luo", "{\"session\": 3}", "session");
	expect_fault(x, 400, "PUT", "/snapshot/luo", "{\"session\": \"a\", \"x\": 1}",
		     "unknown field 'x'");
	expect_fault(x, 400, "PUT", "/snapshot/luo", "{\"session\": \"taken\"}",
		     "exists already");
	expect_ok(x, "PUT", "/snapshot/luo", "{\"session\": \"vmm-vm0\"}");
	assert_string_equal(x->vm.last_luo, "vmm-vm0");
	/* Running: pause first. */
	expect_ok(x, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
	expect_fault(x, 400, "PUT", "/snapshot/create", create, "must be paused first");
	/* Running: the target's call (its RAM stage). */
	expect_ok(x, "PUT", "/snapshot/luo", "{\"session\": \"b\"}");
	assert_string_equal(x->vm.last_luo, "b");
	assert_int_equal(x->vm.snapshots, 2);
}

/* snapshot/load asks for dirty-page tracking under either of Firecracker's names. */
static void test_snapshot_load_track_dirty(void **state)
{
	struct fx *x = *state;

	expect_fault(x, 400, "PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		     "\"enable_diff_snapshots\": \"yes\"}", "must be true or false");
	expect_ok(x, "PUT", "/snapshot/load",
		  "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		  "\"enable_diff_snapshots\": true, \"resume_vm\": true}");
	assert_true(x->vm.last_track_dirty);
	assert_true(x->vm.last_resume);
}

/* PUT /live-update: body optional, one field, 200 with the new pid and the blackout. */
static void test_live_update(void **state)
{
	struct fx *x = *state;

	expect_fault(x, 400, "PUT", "/live-update", NULL, PRE_BOOT);
	boot(x);
	expect_fault(x, 400, "PUT", "/live-update", "{\"binary\": 7}", "non-empty string");
	expect_fault(x, 400, "PUT", "/live-update", "{\"binary\": \"\"}", "non-empty string");
	expect_fault(x, 400, "PUT", "/live-update", "{\"path\": \"/x\"}", "unknown field 'path'");
	expect_fault(x, 400, "PUT", "/live-update", "[1]", "JSON object");
	expect_fault(x, 400, "PUT", "/live-update/now", NULL, "Invalid request");
	expect_fault(x, 400, "GET", "/live-update", NULL, "Invalid request");
	assert_int_equal(x->vm.updates_live, 0);
	/* The target's refusal (a binary that is not vmm) is a 400 with its message. */
	expect_fault(x, 400, "PUT", "/live-update", "{\"binary\": \"/bin/true\"}",
		     "stopped before it was ready");
	assert_int_equal(req(x, "PUT", "/live-update", NULL), 200);
	assert_true(x->r.close); /* the socket is another process's now */
	json_t *j = json_loads(x->r.body, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "pid")), 4242);
	assert_int_equal(json_integer_value(json_object_get(j, "blackout_us")), 1234);
	json_decref(j);
	assert_string_equal(x->vm.last_binary, "");
	assert_int_equal(req(x, "PUT", "/live-update", "{\"binary\": \"/usr/bin/vmm\"}"), 200);
	assert_string_equal(x->vm.last_binary, "/usr/bin/vmm");
	assert_int_equal(x->vm.updates_live, 2);
}

/*
 * The target's own refusals come through when the router's look at the state was stale (a
 * start racing with a request): -EBUSY and its message, a 400.
 */
static void test_refused_by_target(void **state)
{
	struct fx *x = *state;

	boot(x);
	x->vm.stale_info = true;
	expect_fault(x, 400, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 64}",
		     POST_BOOT);
	expect_fault(x, 400, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}",
		     "already started");
	assert_int_equal(x->vm.cfg.nr_cpus, 1);
	assert_int_equal(x->vm.starts, 1);
}

static void test_status_text(void **state)
{
	(void)state;
	assert_string_equal(api_status_text(200), "OK");
	assert_string_equal(api_status_text(204), "No Content");
	assert_string_equal(api_status_text(400), "Bad Request");
	assert_string_equal(api_status_text(500), "Internal Server Error");
	assert_string_equal(api_status_text(503), "Service Unavailable");
	assert_string_equal(api_status_text(100), "Continue");
	assert_string_equal(api_status_text(299), "Unknown");
}

/* A body given with a length: bytes past len are not read, NUL bytes are JSON errors. */
static void test_body_length(void **state)
{
	struct fx *x = *state;
	const char body[] = "{\"kernel_image_path\": \"/k\"}garbage";

	api_response_fini(&x->r);
	api_route(&x->t, "PUT", "/boot-source", body, strlen(body) - 7, &x->r);
	assert_int_equal(x->r.status, 204);
	api_response_fini(&x->r);
	api_route(&x->t, "PUT", "/boot-source", "{\"kernel_image_path\"\0: \"/k\"}", 28, &x->r);
	assert_int_equal(x->r.status, 400);
	api_response_fini(&x->r);
	/* len 0 is no body, whatever the pointer. */
	api_route(&x->t, "GET", "/", "{}", 0, &x->r);
	assert_int_equal(x->r.status, 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_instance_info, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_path_method, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_query_fragment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absolute_uri, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fault_text_is_utf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_boot_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_machine_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_entropy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pmem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_net, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vm_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_actions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_patch_vm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_by_target, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
cmocka_unit_test_setup_teardown(test_live_update, setup, teardown),
cmocka_unit_test_setup_teardown(test_snapshot_load_track_dirty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vsock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status_text, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_length, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
