// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the API's HTTP parsing (vmm/api/api_http.c) and router (api_router.c) over
 * a fake VM, with bytes the fuzzer chooses. Invariants checked on top of ASan/UBSan:
 *   - the byte stream: api_http_input() consumes what it is given unless it stops wanting
 *     input; the output the client would read parses as a sequence of HTTP/1.1 responses
 *     (libhttp-parser in response mode), each with a status the API uses, and every body is a
 *     JSON object; output waiting never grows past the cap by more than one response;
 *   - the router alone: every response has a status the API uses and a body exactly when it
 *     is not a 204, and that body is a JSON object with a string fault_message on errors.
 *
 * Input: [0] mode (bit 0: router alone), the VM's starting state and, for streams, how the
 * client behaves (its read sizes, whether it stalls); [1] seed of the chunk sizes; the rest is
 * the stream, or for the router: method index, path up to the first NUL, then the body.
 */
#include <http_parser.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_http.h"
#include "fake_api_target.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

/* The largest response the fake VM can produce: GET /vm/config with 7 long drive paths. */
#define MAX_RESPONSE (64 * 1024)

static bool status_ok(int s)
{
	return s == 100 || s == 200 || s == 204 || s == 400 || s == 500;
}

static void check_json_object(const char *body, size_t len)
{
	json_t *j = json_loadb(body, len, 0, NULL);

	CHECK(j && json_is_object(j));
	json_decref(j);
}

/* ---- the client's view of the output: a stream of responses ---- */

struct client {
	http_parser hp;
	char body[MAX_RESPONSE];
	size_t body_len;
	unsigned int responses;
};

static int cl_body(http_parser *hp, const char *at, size_t len)
{
	struct client *c = hp->data;

	CHECK(c->body_len + len <= sizeof(c->body));
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int cl_headers(http_parser *hp)
{
	CHECK(hp->http_major == 1 && hp->http_minor == 1);
	CHECK(status_ok(hp->status_code));
	return 0;
}

static int cl_complete(http_parser *hp)
{
	struct client *c = hp->data;

	if (hp->status_code == 204 || hp->status_code == 100)
		CHECK(c->body_len == 0);
	else
		check_json_object(c->body, c->body_len);
	c->body_len = 0;
	c->responses++;
	return 0;
}

static const http_parser_settings client_settings = {
	.on_headers_complete = cl_headers,
	.on_body = cl_body,
	.on_message_complete = cl_complete,
};

static void client_read(struct client *c, struct api_http *h, size_t max)
{
	size_t len, n;
	const char *out = api_http_output(h, &len);

	n = len < max ? len : max;
	if (!n)
		return;
	CHECK(http_parser_execute(&c->hp, &client_settings, out, n) == n);
	CHECK(HTTP_PARSER_ERRNO(&c->hp) == HPE_OK);
	api_http_output_done(h, n);
}

static uint32_t next(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

static void fuzz_stream(const struct api_target *t, uint8_t mode, uint8_t seed,
			const uint8_t *data, size_t size)
{
	struct api_http *h = api_http_new(t);
	struct client *c = calloc(1, sizeof(*c));
	uint32_t rng = seed;
	/* A client that reads little at a time, or stalls until the server stops reading. */
	size_t read_max = mode & 0x10 ? 7 : SIZE_MAX;
	bool stall = mode & 0x20;
	size_t off = 0;

	if (!h || !c)
		goto out;
	http_parser_init(&c->hp, HTTP_RESPONSE);
	c->hp.data = c;
	while (off < size && !api_http_done(h)) {
		size_t chunk = 1 + next(&rng) % 64, used, len;

		if (chunk > size - off)
			chunk = size - off;
		used = api_http_input(h, (const char *)data + off, chunk);
		CHECK(used <= chunk);
		if (used < chunk)
			CHECK(!api_http_wants_input(h));
		off += used;
		api_http_output(h, &len);
		CHECK(len <= API_OUT_CAP + MAX_RESPONSE);
		/* A stalling client reads only once the server stops reading. */
		if (!stall || !api_http_wants_input(h))
			client_read(c, h, read_max);
	}
	api_http_eof(h);
	client_read(c, h, SIZE_MAX);
	CHECK(api_http_done(h));
out:
	free(c);
	api_http_free(h);
}

/* ---- the router alone ---- */

static void fuzz_route(const struct api_target *t, const uint8_t *data, size_t size)
{
	static const char *const methods[] = { "GET", "PUT", "PATCH", "DELETE", "POST" };
	struct api_response r;
	const uint8_t *nul;
	char *path;
	size_t plen;

	if (size < 1)
		return;
	const char *m = methods[data[0] % 5];
	data++, size--;
	nul = memchr(data, 0, size);
	plen = nul ? (size_t)(nul - data) : size;
	path = malloc(plen + 1);
	if (!path)
		return;
	memcpy(path, data, plen);
	path[plen] = '\0';
	data += plen, size -= plen;
	if (size)
		data++, size--; /* the NUL */
	api_route(t, m, path, (const char *)data, size, &r);
	CHECK(status_ok(r.status) && r.status != 100);
	if (r.status == 204) {
		CHECK(!r.body);
	} else {
		json_t *j = json_loads(r.body, 0, NULL);

		CHECK(j && json_is_object(j));
		if (r.status >= 400)
			CHECK(json_is_string(json_object_get(j, "fault_message")) &&
			      json_object_size(j) == 1);
		json_decref(j);
	}
	api_response_fini(&r);
	free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake_vm vm;
	struct api_target t;
	uint8_t mode;

	if (size < 2)
		return 0;
	mode = data[0];
	fake_vm_init(&vm);
	fake_vm_target(&vm, &t);
	/* Start in any state, so that the post-boot paths are reached without InstanceStart. */
	vm.state = (enum vmm_state)((mode >> 1) & 3);
	if (mode & 0x40)
		vm.cfg.kernel = strdup("/k");
	if (mode & 1)
		fuzz_route(&t, data + 2, size - 2);
	else
		fuzz_stream(&t, mode, data[1], data + 2, size - 2);
	fake_vm_fini(&vm);
	return 0;
}
