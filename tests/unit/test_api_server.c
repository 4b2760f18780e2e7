// SPDX-License-Identifier: Apache-2.0
/*
 * The API server (vmm/api/api_server.c, api_http.c) on a real unix socket in a temporary
 * directory, with its real "api" thread, over a fake VM: the exact response bytes, requests
 * split into 1-byte writes, pipelining, the body and header limits, methods and versions,
 * Expect: 100-continue, chunked bodies, the connection limit, clients that vanish, send
 * garbage or never read, and the socket path rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api_http.h"
#include "vmm/api_client.h"
#include "fake_api_target.h"

#define TIMEOUT_MS 10000

struct fx {
	char dir[64];
	char path[128];
	struct fake_vm vm;
	struct api_target t;
	struct api_server *s;
};

static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));
	struct vmm_error e = { 0 };

	assert_non_null(x);
	snprintf(x->dir, sizeof(x->dir), "/tmp/vmm-api-test.XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->path, sizeof(x->path), "%s/api.sock", x->dir);
	fake_vm_init(&x->vm);
	fake_vm_target(&x->vm, &x->t);
	if (api_server_start(&x->t, x->path, -1, &x->s, &e) < 0)
		fail_msg("api_server_start: %s", e.msg);
	*state = x;
	return 0;
}

/* Remove the temporary directory and whatever a test left in it. */
static void rm_dir(const char *dir)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static int teardown(void **state)
{
	struct fx *x = *state;

	api_server_stop(x->s);
	fake_vm_fini(&x->vm);
	rm_dir(x->dir);
	free(x);
	return 0;
}

/* ---- a small client ---- */

static int connect_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fail_msg("connect %s: %s", path, strerror(errno));
	return fd;
}

static void send_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			fail_msg("send: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

/* For a peer that may close early on purpose: stop quietly when it did. */
static void send_lenient(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return;
		if (n < 0)
			fail_msg("send: %s", strerror(errno));
		s += n;
		len -= (size_t)n;
	}
}

static void send_str(int fd, const char *s)
{
	send_all(fd, s, strlen(s));
}

struct client {
	int fd;
	char buf[256 * 1024];
	size_t len;
	bool eof;
};

static struct client *client_new(struct fx *x)
{
	struct client *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->fd = connect_path(x->path);
	return c;
}

static void client_free(struct client *c)
{
	if (!c)
		return;
	close(c->fd);
	free(c);
}

/* Read more into c->buf; false at EOF. */
static bool client_fill(struct client *c)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t n;

	if (c->eof)
		return false;
	assert_true(c->len < sizeof(c->buf));
	if (poll(&p, 1, TIMEOUT_MS) != 1)
		fail_msg("no answer within %d ms", TIMEOUT_MS);
	n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
	if (n < 0 && errno == ECONNRESET)
		n = 0;
	if (n < 0)
		fail_msg("recv: %s", strerror(errno));
	if (n == 0) {
		c->eof = true;
		return false;
	}
	c->len += (size_t)n;
	return true;
}

struct resp {
	int status;
	char head[1024];   /* status line and headers, with the blank line */
	char body[64 * 1024];
	size_t body_len;
};

/* One whole response, or false at EOF before any byte of it. */
static bool read_resp(struct client *c, struct resp *r)
{
	char *end, *cl;
	size_t hlen, blen = 0;

	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
		if (!client_fill(c)) {
			if (c->len)
				fail_msg("EOF inside a response head: '%.*s'", (int)c->len, c->buf);
			return false;
		}
	}
	hlen = (size_t)(end + 4 - c->buf);
	assert_true(hlen < sizeof(r->head));
	memcpy(r->head, c->buf, hlen);
	r->head[hlen] = '\0';
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
	cl = strstr(r->head, "Content-Length: ");
	if (cl)
		blen = strtoul(cl + 16, NULL, 10);
	assert_true(blen < sizeof(r->body));
	while (c->len < hlen + blen) {
		if (!client_fill(c))
			fail_msg("EOF inside a response body");
	}
	memcpy(r->body, c->buf + hlen, blen);
	r->body[blen] = '\0';
	r->body_len = blen;
	memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
	c->len -= hlen + blen;
	return true;
}

static void expect_status(struct client *c, struct resp *r, int status)
{
	if (!read_resp(c, r))
		fail_msg("EOF where a %d was expected", status);
	if (r->status != status)
		fail_msg("status %d, expected %d: %s", r->status, status, r->body);
}

static void expect_eof(struct client *c)
{
	assert_int_equal(c->len, 0);
	while (client_fill(c))
		fail_msg("data where EOF was expected: '%.*s'", (int)c->len, c->buf);
}

/* A request with a body, as most clients frame it. */
static void send_req(int fd, const char *method, const char *path, const char *body)
{
	char buf[4096];

	if (body)
		snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: "
			 "application/json\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s", method, path, strlen(body), body);
	else
		snprintf(buf, sizeof(buf), "%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n", method,
			 path);
	send_str(fd, buf);
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- tests ---- */

static void test_response_format(void **state)
{
	struct fx *x = *state;
	struct client *c = client_new(x);
	struct resp *r = malloc(sizeof(*r));
	char want[512];

	send_req(c->fd, "GET", "/version", NULL);
	expect_status(c, r, 200);
	snprintf(want, sizeof(want), "{\"firecracker_version\":\"%s\"}", vmm_version());
	assert_string_equal(r->body, want);
	snprintf(want, sizeof(want), "HTTP/1.1 200 \r\nServer: Firecracker API\r\nConnection: "
		 "keep-alive\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
		 r->body_len);
	assert_string_equal(r->head, want);

	send_req(c->fd, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_status(c, r, 204);
	assert_string_equal(r->head, "HTTP/1.1 204 \r\nServer: Firecracker API\r\nConnection: "
			    "keep-alive\r\n\r\n");

	send_req(c->fd, "GET", "/nothing", NULL);
	expect_status(c, r, 400);
	assert_string_equal(r->body, "{\"fault_message\":\"Invalid request method and/or path: "
			    "GET nothing.\"}");
	assert_non_null(strstr(r->head, "Content-Type: application/json\r\n"));

	/* An absolute URI is routed by its path; a query string is refused, the stream goes on. */
	send_str(c->fd, "GET http://localhost/machine-config HTTP/1.1\r\n\r\n"
		 "GET /version?verbose=1 HTTP/1.1\r\n\r\n");
	expect_status(c, r, 200);
	assert_non_null(strstr(r->body, "vcpu_count"));
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "query strings"));

	/* Still the same connection, and the VM saw the PUT. */
	send_req(c->fd, "GET", "/", NULL);
	expect_status(c, r, 200);
	assert_string_equal(x->vm.cfg.kernel, "/k");
	free(r);
	client_free(c);
}

static void test_split_bytes(void **state)
{
	struct fx *x = *state;
	struct client *c = client_new(x);
	struct resp *r = malloc(sizeof(*r));
	const char *req = "PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
			  "application/json\r\nContent-Length: 37\r\n\r\n"
			  "{\"vcpu_count\": 3, \"mem_size_mib\": 64}"
			  "GET /machine-config HTTP/1.1\r\n\r\n";

	for (const char *p = req; *p; p++) {
		send_all(c->fd, p, 1);
		if ((p - req) % 8 == 0)
			sleep_ms(1); /* let the server read pieces of all sizes */
	}
	expect_status(c, r, 204);
	expect_status(c, r, 200);
	assert_non_null(strstr(r->body, "\"vcpu_count\":3"));
	assert_non_null(strstr(r->body, "\"mem_size_mib\":64"));
	free(r);
	client_free(c);
}

static void test_pipelined(void **state)
{
	struct fx *x = *state;
	struct client *c = client_new(x);
	struct resp *r = malloc(sizeof(*r));
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s%s%s%s%s%s%s",
		 "PUT /boot-source HTTP/1.1\r\nContent-Length: 27\r\n\r\n"
		 "{\"kernel_image_path\": \"/k\"}",
		 "PUT /machine-config HTTP/1.1\r\nContent-Length: 37\r\n\r\n"
		 "{\"vcpu_count\": 2, \"mem_size_mib\": 96}",
		 "GET /machine-config HTTP/1.1\r\n\r\n",
		 "PUT /boot-source HTTP/1.1\r\nContent-Length: 1\r\n\r\n{",
		 "PUT /actions HTTP/1.1\r\nContent-Length: 32\r\n\r\n"
		 "{\"action_type\": \"InstanceStart\"}",
		 "GET / HTTP/1.1\r\n\r\n",
		 "PATCH /machine-config HTTP/1.1\r\nContent-Length: 17\r\n\r\n{\"vcpu_count\": 1}");
	send_str(c->fd, buf);
	expect_status(c, r, 204);
	expect_status(c, r, 204);
	expect_status(c, r, 200);
	assert_non_null(strstr(r->body, "\"mem_size_mib\":96"));
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "not valid JSON"));
	expect_status(c, r, 204);
	expect_status(c, r, 200);
	assert_non_null(strstr(r->body, "\"state\":\"Running\""));
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "after starting the microVM"));
	free(r);
	client_free(c);
}

static void test_body_limit(void **state)
{
	struct fx *x = *state;
	struct client *c = client_new(x);
	struct resp *r = malloc(sizeof(*r));
	char *big = malloc(API_MAX_BODY + 256);
	int n;

	assert_non_null(big);
	/* Exactly the limit is fine (a JSON object padded with spaces). */
	n = snprintf(big, API_MAX_BODY + 256, "PUT /boot-source HTTP/1.1\r\nContent-Length: %d"
		     "\r\n\r\n{\"kernel_image_path\": \"/k\"}", API_MAX_BODY);
	memset(big + n, ' ', API_MAX_BODY - 27);
	send_all(c->fd, big, (size_t)n + API_MAX_BODY - 27);
	expect_status(c, r, 204);

	/* One byte more: refused from the header alone, then the connection ends. */
	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nContent-Length: 51201\r\n\r\n{");
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "51201"));
	assert_non_null(strstr(r->body, "51200"));
	assert_non_null(strstr(r->head, "Connection: close\r\n"));
	expect_eof(c);
	client_free(c);

	/* A huge length, as well. */
	c = client_new(x);
	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n");
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "99999999999"));
	expect_eof(c);
	client_free(c);

	/* Chunked bodies are decoded and held to the same limit. */
	c = client_new(x);
	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	n = snprintf(big, 64, "%x\r\n", 40000);
	memset(big + n, ' ', 40000);
	memcpy(big + n + 40000, "\r\n", 2);
	send_all(c->fd, big, (size_t)n + 40002);
	send_all(c->fd, big, (size_t)n + 40002);
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "51200"));
	expect_eof(c);
	client_free(c);
	free(big);
	free(r);
}

static void test_chunked(void **state)
{
	struct fx *x = *state;
	struct client *c = client_new(x);
	struct resp *r = malloc(sizeof(*r));

	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "10\r\n{\"kernel_image_p\r\n"
		 "b\r\nath\": \"/ck\"\r\n1\r\n}\r\n0\r\n\r\n"
		 "GET /vm/config HTTP/1.1\r\n\r\n");
	expect_status(c, r, 204);
	expect_status(c, r, 200);
	assert_non_null(strstr(r->body, "\"kernel_image_path\":\"/ck\""));
	/* A bad chunk size is a framing error: 400 and the end. */
	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "Malformed HTTP request"));
	expect_eof(c);
	client_free(c);
	/* Both framings at once (a request-smuggling shape): refused. */
	c = client_new(x);
	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: "
		 "chunked\r\n\r\n0\r\n\r\n");
	expect_status(c, r, 400);
	expect_eof(c);
	client_free(c);
	free(r);
}

static void test_header_limit(void **state)
{
	struct fx *x = *state;
	struct client *c = client_new(x);
	struct resp *r = malloc(sizeof(*r));
	static char big[20000];

	/* Just under the limit passes. */
	memset(big, 0, 20000);
	strcpy(big, "GET / HTTP/1.1\r\nX-Pad: ");
	memset(big + strlen(big), 'a', API_MAX_HEADERS - 200);
	strcat(big, "\r\n\r\n");
	send_str(c->fd, big);
	expect_status(c, r, 200);

	/* A header line of 9000 bytes does not. */
	memset(big, 0, 20000);
	strcpy(big, "GET / HTTP/1.1\r\nX-Pad: ");
	memset(big + strlen(big), 'a', 9000);
	strcat(big, "\r\n\r\n");
	send_str(c->fd, big);
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "8192"));
	expect_eof(c);
	client_free(c);

	/* Nor a URL of 9000 bytes, nor many small headers. */
	c = client_new(x);
	memset(big, 0, 20000);
	strcpy(big, "GET /");
	memset(big + 5, 'u', 9000);
	strcat(big, " HTTP/1.1\r\n\r\n");
	send_str(c->fd, big);
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "8192"));
	expect_eof(c);
	client_free(c);

	c = client_new(x);
	send_str(c->fd, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 2000; i++)
		send_lenient(c->fd, "A: b\r\n"); /* the server closes once past the limit */
	send_lenient(c->fd, "\r\n");
	expect_status(c, r, 400);
	expect_eof(c);
	client_free(c);
	free(r);
}

static void test_methods_versions(void **state)
{
	struct fx *x = *state;
	struct resp *r = malloc(sizeof(*r));
	static const char *const bad[] = {
		"POST /actions HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
		"HEAD / HTTP/1.1\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\n\r\n",
		"CONNECT localhost:80 HTTP/1.1\r\n\r\n",
		"get / HTTP/1.1\r\n\r\n",
		"FOO / HTTP/1.1\r\n\r\n",
		"GET / HTTP/2.0\r\n\r\n",
		"GET / HTTP/1.2\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET / FTP/1.1\r\n\r\n",
		"GET /\r\n\r\n",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct client *c = client_new(x);

		send_str(c->fd, bad[i]);
		if (!read_resp(c, r))
			fail_msg("no answer to '%s'", bad[i]);
		if (r->status != 400)
			fail_msg("'%s' got %d", bad[i], r->status);
		expect_eof(c);
		client_free(c);
	}
	struct client *c = client_new(x);
	send_str(c->fd, "POST / HTTP/1.1\r\n\r\n");
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "Unsupported HTTP method POST"));
	client_free(c);

	/* DELETE is HTTP the server takes; the router has nothing for it. */
	c = client_new(x);
	send_str(c->fd, "DELETE /drives/x HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
	expect_status(c, r, 400);
	assert_non_null(strstr(r->body, "DELETE drives"));
	expect_status(c, r, 200);
	client_free(c);
	free(r);
}

static void test_http10(void **state)
{
	struct fx *x = *state;
	struct client *c = client_new(x);
	struct resp *r = malloc(sizeof(*r));

	/* HTTP/1.0 without keep-alive: one answer (still "HTTP/1.1"), then the end. */
	send_str(c->fd, "GET /version HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\n\r\n");
	expect_status(c, r, 200);
	assert_non_null(strstr(r->head, "Connection: close\r\n"));
	assert_non_null(strstr(r->body, "firecracker_version"));
	expect_eof(c);
	client_free(c);

	c = client_new(x);
	send_str(c->fd, "PUT /boot-source HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: "
		 "27\r\n\r\n{\"kernel_image_path\": \"/k\"}");
	expect_status(c, r, 204);
	assert_non_null(strstr(r->head, "Connection: keep-alive\r\n"));
	send_str(c->fd, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	expect_status(c, r, 200);
	client_free(c);

	/* HTTP/1.1 asking to close. */
	c = client_new(x);
	send_str(c->fd, "GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n\r\n");
	expect_status(c, r, 200);
	assert_non_null(strstr(r->head, "Connection: close\r\n"));
	expect_eof(c);
	client_free(c);
	free(r);
}

static void test_expect_continue(void **state)
{
	struct fx *x = *state;
	struct client *c = client_new(x);
	struct resp *r = malloc(sizeof(*r));

	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 27"
		 "\r\n\r\n");
	expect_status(c, r, 100);
	assert_string_equal(r->head, "HTTP/1.1 100 \r\nServer: Firecracker API\r\nConnection: "
			    "keep-alive\r\n\r\n");
	send_str(c->fd, "{\"kernel_image_path\": \"/k\"}");
	expect_status(c, r, 204);
	/* No 100 for a request without a body, nor for one refused by its size. */
	send_str(c->fd, "GET / HTTP/1.1\r\nexpect:   100-Continue  \r\n\r\n");
	expect_status(c, r, 200);
	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: "
		 "60000\r\n\r\n");
	expect_status(c, r, 400);
	expect_eof(c);
	client_free(c);
	free(r);
}

static void test_connection_limit(void **state)
{
	struct fx *x = *state;
	struct resp *r = malloc(sizeof(*r));
	struct client *c[10], *extra;

	for (int i = 0; i < 10; i++) {
		c[i] = client_new(x);
		send_req(c[i]->fd, "GET", "/", NULL); /* accepted and counted once answered */
		expect_status(c[i], r, 200);
	}
	extra = client_new(x);
	expect_status(extra, r, 503);
	assert_non_null(strstr(r->head, "Connection: close\r\n"));
	assert_non_null(strstr(r->body, "Too many open connections"));
	expect_eof(extra);
	client_free(extra);
	/* The ten still work. */
	for (int i = 0; i < 10; i++) {
		send_req(c[i]->fd, "GET", "/version", NULL);
		expect_status(c[i], r, 200);
	}
	/* Once one goes, a new one gets in (the server notices the close asynchronously). */
	client_free(c[0]);
	for (int tries = 0;; tries++) {
		extra = client_new(x);
		send_req(extra->fd, "GET", "/", NULL);
		if (!read_resp(extra, r))
			fail_msg("EOF");
		if (r->status == 200)
			break;
		assert_int_equal(r->status, 503);
		assert_true(tries < 100);
		client_free(extra);
		sleep_ms(10);
	}
	client_free(extra);
	for (int i = 1; i < 10; i++)
		client_free(c[i]);
	free(r);
}

static void test_disconnect_mid_request(void **state)
{
	struct fx *x = *state;
	struct resp *r = malloc(sizeof(*r));
	struct client *other = client_new(x), *c;

	/* Half a head, half a body, and a close after a complete request. */
	c = client_new(x);
	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nContent-Le");
	client_free(c);
	c = client_new(x);
	send_str(c->fd, "PUT /boot-source HTTP/1.1\r\nContent-Length: 27\r\n\r\n{\"kernel_");
	client_free(c);
	c = client_new(x);
	send_str(c->fd, "GET /vm/config HTTP/1.1\r\n\r\n");
	client_free(c); /* the answer goes nowhere */
	c = client_new(x);
	send_str(c->fd, "GET / HTTP/1.1\r\n\r\nGET / HT");
	shutdown(c->fd, SHUT_WR); /* half-close: the complete request is still answered */
	expect_status(c, r, 200);
	expect_eof(c);
	client_free(c);

	/* The half-sent PUT did not reach the VM; a new client and an old one work. */
	assert_null(x->vm.cfg.kernel);
	c = client_new(x);
	send_req(c->fd, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_status(c, r, 204);
	client_free(c);
	send_req(other->fd, "GET", "/", NULL);
	expect_status(other, r, 200);
	client_free(other);
	free(r);
}

static void test_garbage(void **state)
{
	struct fx *x = *state;
	struct resp *r = malloc(sizeof(*r));
	struct client *other = client_new(x), *c;
	static const char *const junk[] = {
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", /* a TLS ClientHello */
		"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET /\x01 HTTP/1.1\r\n\r\n",
		"\r\n\r\n\r\nGARBAGE\r\n\r\n",
	};

	send_req(other->fd, "GET", "/", NULL);
	expect_status(other, r, 200);
	for (size_t i = 0; i < ARRAY_SIZE(junk); i++) {
		c = client_new(x);
		send_str(c->fd, junk[i]);
		if (!read_resp(c, r))
			fail_msg("no answer to junk %zu", i);
		if (r->status != 400)
			fail_msg("junk %zu got %d", i, r->status);
		assert_non_null(strstr(r->body, "fault_message"));
		expect_eof(c);
		client_free(c);
	}
	/* Binary junk then close, without reading. */
	c = client_new(x);
	char bin[3000];
	for (size_t i = 0; i < sizeof(bin); i++)
		bin[i] = (char)(i * 7919);
	send_all(c->fd, bin, sizeof(bin));
	client_free(c);

	send_req(other->fd, "GET", "/version", NULL);
	expect_status(other, r, 200);
	client_free(other);
	free(r);
}

#define FLOOD 10000

/*
 * A client that pipelines FLOOD requests without reading: the server stops reading it once its
 * answers back up (the client's send then blocks: EAGAIN here), stays responsive to another
 * client, and answers every request in order once the flood reader drains.
 */
static void test_flood(void **state)
{
	struct fx *x = *state;
	struct resp *r = malloc(sizeof(*r));
	struct client *flood = client_new(x), *other;
	static const char one[] = "GET /version HTTP/1.1\r\nHost: localhost\r\nX-Pad: "
		"0123456789012345678901234567890123456789012345678901234567890123456789\r\n\r\n";
	size_t total = FLOOD * (sizeof(one) - 1), sent = 0;
	unsigned int answered = 0;
	bool blocked = false;

	while (sent < total) {
		size_t off = sent % (sizeof(one) - 1);
		ssize_t n = send(flood->fd, one + off, sizeof(one) - 1 - off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			blocked = true;
			break;
		}
		if (n < 0)
			fail_msg("send: %s", strerror(errno));
		sent += (size_t)n;
	}
	assert_true(blocked); /* the server stopped reading: it did not buffer it all */

	other = client_new(x);
	send_req(other->fd, "GET", "/", NULL);
	expect_status(other, r, 200);
	send_req(other->fd, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_status(other, r, 204);

	/* Now read while sending the rest. */
	while (answered < FLOOD) {
		struct pollfd p = { .fd = flood->fd, .events = POLLIN };

		if (sent < total)
			p.events |= POLLOUT;
		if (poll(&p, 1, TIMEOUT_MS) != 1)
			fail_msg("flood stalled after %u answers, %zu/%zu bytes sent", answered,
				 sent, total);
		if (p.revents & POLLOUT) {
			size_t off = sent % (sizeof(one) - 1);
			ssize_t n = send(flood->fd, one + off, sizeof(one) - 1 - off,
					 MSG_NOSIGNAL | MSG_DONTWAIT);

			if (n > 0)
				sent += (size_t)n;
		}
		if (p.revents & (POLLIN | POLLHUP)) {
			ssize_t n = recv(flood->fd, flood->buf + flood->len,
					 sizeof(flood->buf) - flood->len, MSG_DONTWAIT);

			if (n == 0)
				fail_msg("EOF after %u answers", answered);
			if (n > 0)
				flood->len += (size_t)n;
			/* Take every whole response buffered. */
			while (memmem(flood->buf, flood->len, "\r\n\r\n", 4)) {
				char *h = memmem(flood->buf, flood->len, "\r\n\r\n", 4);
				char *cl = strstr(flood->buf, "Content-Length: ");
				size_t hl = (size_t)(h + 4 - flood->buf);
				size_t bl = cl ? strtoul(cl + 16, NULL, 10) : 0;

				if (flood->len < hl + bl)
					break;
				assert_memory_equal(flood->buf, "HTTP/1.1 200 ", 13);
				memmove(flood->buf, flood->buf + hl + bl, flood->len - hl - bl);
				flood->len -= hl + bl;
				answered++;
			}
		}
	}
	assert_int_equal(answered, FLOOD);
	assert_int_equal(flood->len, 0);
	client_free(flood);
	client_free(other);
	free(r);
}

/* A slow request (InstanceStart) holds the api thread; others wait their turn, answered. */
static void test_slow_request(void **state)
{
	struct fx *x = *state;
	struct resp *r = malloc(sizeof(*r));
	struct client *a = client_new(x), *b = client_new(x);

	send_req(a->fd, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_status(a, r, 204);
	pthread_mutex_lock(&x->vm.lock);
	x->vm.delay_ms = 100;
	pthread_mutex_unlock(&x->vm.lock);
	send_req(a->fd, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	sleep_ms(20);
	send_req(b->fd, "GET", "/", NULL);
	expect_status(b, r, 200);
	assert_non_null(strstr(r->body, "Running")); /* served after the start finished */
	expect_status(a, r, 204);
	client_free(a);
	client_free(b);
	free(r);
}

/* Stopping with connections open, idle and mid-request, closes them all. */
static void test_stop_with_clients(void **state)
{
	struct fx *x = *state;
	struct resp *r = malloc(sizeof(*r));
	struct client *a = client_new(x), *b = client_new(x);
	struct stat st;

	send_req(a->fd, "GET", "/", NULL);
	expect_status(a, r, 200);
	send_str(b->fd, "PUT /boot-source HTTP/1.1\r\nContent-Length: 100\r\n\r\n{");
	sleep_ms(20);
	api_server_stop(x->s);
	x->s = NULL;
	expect_eof(a);
	assert_false(client_fill(b));
	assert_int_equal(lstat(x->path, &st), -1); /* the socket file is gone */
	assert_int_equal(errno, ENOENT);
	client_free(a);
	client_free(b);
	free(r);
}

/* The SigBlk mask of this process's thread named name; false when there is none (yet). */
static bool thread_sigblk(const char *name, unsigned long long *blk)
{
	char path[300], line[256], want[32];
	bool found = false;
	DIR *d = opendir("/proc/self/task");

	assert_non_null(d);
	snprintf(want, sizeof(want), "%s\n", name);
	for (struct dirent *de; !found && (de = readdir(d));) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (!fgets(line, sizeof(line), f) || strcmp(line, want)) {
			fclose(f);
			continue;
		}
		fclose(f);
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		f = fopen(path, "re");
		assert_non_null(f);
		while (!found && fgets(line, sizeof(line), f))
			found = sscanf(line, "SigBlk: %llx", blk) == 1;
		fclose(f);
	}
	closedir(d);
	return found;
}

/* The "api" thread exists while the server runs, with asynchronous signals blocked. */
static void test_thread_signals(void **state)
{
	unsigned long long blk = 0;
	sigset_t cur;
	(void)state;

	/* The thread names itself once it runs. */
	for (int i = 0; !thread_sigblk("api", &blk); i++) {
		assert_true(i < 500);
		sleep_ms(2);
	}
	/* SIGINT, SIGTERM, SIGCHLD, SIGPIPE blocked; SIGSEGV not. */
	assert_true(blk & (1ULL << (SIGINT - 1)));
	assert_true(blk & (1ULL << (SIGTERM - 1)));
	assert_true(blk & (1ULL << (SIGCHLD - 1)));
	assert_true(blk & (1ULL << (SIGPIPE - 1)));
	assert_false(blk & (1ULL << (SIGSEGV - 1)));
	/* The caller's thread is as it was. */
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	assert_false(sigismember(&cur, SIGINT));
}

/* ---- the socket path ---- */

static int start_at(struct fx *x, const char *path, int fd, struct api_server **s,
		    struct vmm_error *e)
{
	memset(e, 0, sizeof(*e));
	return api_server_start(&x->t, path, fd, s, e);
}

static void test_path_in_use(void **state)
{
	struct fx *x = *state;
	struct api_server *s2 = NULL;
	struct vmm_error e;

	assert_int_equal(start_at(x, x->path, -1, &s2, &e), -EADDRINUSE);
	assert_non_null(strstr(e.msg, x->path));
	assert_non_null(strstr(e.msg, "listens"));
	assert_null(strchr(e.msg, '\n'));
	/* The first server is untouched. */
	struct client *c = client_new(x);
	struct resp *r = malloc(sizeof(*r));
	send_req(c->fd, "GET", "/", NULL);
	expect_status(c, r, 200);
	client_free(c);
	free(r);
}

static void test_path_stale(void **state)
{
	struct fx *x = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct api_server *s2 = NULL;
	struct vmm_error e;
	char path[100];
	int fd;

	/* A socket file whose listener died (closed without unlink). */
	snprintf(path, sizeof(path), "%s/stale.sock", x->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	close(fd);
	if (start_at(x, path, -1, &s2, &e) < 0)
		fail_msg("%s", e.msg);
	struct client c0 = { .fd = connect_path(path) };
	struct resp *r = malloc(sizeof(*r));
	send_req(c0.fd, "GET", "/", NULL);
	expect_status(&c0, r, 200);
	close(c0.fd);
	api_server_stop(s2);
	assert_int_equal(access(path, F_OK), -1);
	free(r);
}

static void test_path_errors(void **state)
{
	struct fx *x = *state;
	struct api_server *s2 = NULL;
	struct vmm_error e;
	char path[300];
	struct stat st;
	int fd;

	/* Too long for sun_path. */
	snprintf(path, sizeof(path), "%s/%0200d", x->dir, 0);
	assert_int_equal(start_at(x, path, -1, &s2, &e), -ENAMETOOLONG);
	assert_non_null(strstr(e.msg, "api socket"));
	/* A directory that does not exist. */
	snprintf(path, sizeof(path), "%s/missing/api.sock", x->dir);
	assert_int_equal(start_at(x, path, -1, &s2, &e), -ENOENT);
	assert_non_null(strstr(e.msg, path));
	/* A regular file: left alone. */
	snprintf(path, sizeof(path), "%s/file", x->dir);
	fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(start_at(x, path, -1, &s2, &e), -EEXIST);
	assert_non_null(strstr(e.msg, path));
	assert_non_null(strstr(e.msg, "not a socket"));
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	/* A symlink (even to a socket) is not replaced either. */
	snprintf(path, sizeof(path), "%s/link", x->dir);
	assert_int_equal(symlink(x->path, path), 0);
	assert_int_equal(start_at(x, path, -1, &s2, &e), -EEXIST);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISLNK(st.st_mode));
	/* A directory. */
	snprintf(path, sizeof(path), "%s/dir", x->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(start_at(x, path, -1, &s2, &e), -EEXIST);
	/* Nothing at all. */
	assert_int_equal(start_at(x, NULL, -1, &s2, &e), -EINVAL);
	assert_int_equal(start_at(x, "", -1, &s2, &e), -EINVAL);
	/* Not a listening socket to adopt. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(start_at(x, "adopted", fd, &s2, &e), -EINVAL);
	assert_true(fcntl(fd, F_GETFD) >= 0); /* still the caller's */
	close(fd);
}

static void test_adopt_fd(void **state)
{
	struct fx *x = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct api_server *s2 = NULL;
	struct vmm_error e;
	char path[100];
	int fd;

	snprintf(path, sizeof(path), "%s/adopted.sock", x->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	if (start_at(x, path, fd, &s2, &e) < 0)
		fail_msg("%s", e.msg);
	assert_int_equal(api_server_listen_fd(s2), fd);
	struct client c0 = { .fd = connect_path(path) };
	struct resp *r = malloc(sizeof(*r));
	send_req(c0.fd, "GET", "/version", NULL);
	expect_status(&c0, r, 200);
	close(c0.fd);
	api_server_stop(s2);
	/* Not bound by the server: the file stays (it belongs to whoever bound it). */
	assert_int_equal(access(path, F_OK), 0);
	free(r);
}

/* Stop does not remove a file that replaced the server's socket meanwhile. */
static void test_stop_keeps_foreign_file(void **state)
{
	struct fx *x = *state;
	struct stat st;
	int fd;

	assert_int_equal(unlink(x->path), 0);
	fd = open(x->path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	api_server_stop(x->s);
	x->s = NULL;
	assert_int_equal(stat(x->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
}

/* The formatter on its own: the exact bytes for each shape. */
/* vmm's own client (vmm hostupdate) against the server, and its parser on what servers send. */
static void test_client(void **state)
{
	struct fx *x = *state;
	struct api_reply r;
	char err[256];

	assert_int_equal(api_call(x->path, "GET", "/", NULL, 5000, &r, err, sizeof(err)), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "\"state\""));
	assert_int_equal(r.pid, getpid()); /* SO_PEERCRED: the server is this process */
	free(r.body);
	assert_int_equal(api_call(x->path, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}",
				  5000, &r, err, sizeof(err)), 0);
	assert_int_equal(r.status, 204);
	assert_string_equal(r.body, "");
	free(r.body);
	assert_string_equal(x->vm.cfg.kernel, "/k");
	assert_int_equal(api_call(x->path, "PATCH", "/vm", "{\"state\": 1}", 5000, &r, err,
				  sizeof(err)), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "fault_message"));
	free(r.body);
	/* No server: one line naming the socket. */
	assert_int_equal(api_call("/nonexistent/api.sock", "GET", "/", NULL, 1000, &r, err,
				  sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/api.sock"));

	/* The parser: whole answers only. */
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
	assert_int_equal(api_reply_parse(ok, strlen(ok), &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "{}");
	free(r.body);
	static const char eof[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
	assert_int_equal(api_reply_parse(eof, strlen(eof), &r), 0);
	assert_string_equal(r.body, "until the end");
	free(r.body);
	static const char *const bad[] = {
		"", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", /* cut short */
		"HTTP/1.1 2x0 OK\r\n\r\n", "GET / HTTP/1.1\r\n\r\n", "\x01\x02garbage",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(api_reply_parse(bad[i], strlen(bad[i]), &r), -EINVAL);
	/* A body over the limit. */
	size_t big = API_CLIENT_BODY_MAX + 10, hl;
	char *m = malloc(big + 100);
	hl = (size_t)snprintf(m, 100, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", big);
	memset(m + hl, 'a', big);
	assert_int_equal(api_reply_parse(m, hl + big, &r), -E2BIG);
	free(m);
}

static void test_format(void **state)
{
	size_t len;
	char *s;
	(void)state;

	s = api_http_format(204, NULL, false, &len);
	assert_string_equal(s, "HTTP/1.1 204 \r\nServer: Firecracker API\r\nConnection: "
			    "keep-alive\r\n\r\n");
	assert_int_equal(len, strlen(s));
	free(s);
	s = api_http_format(400, "{\"fault_message\":\"x\"}", true, &len);
	assert_string_equal(s, "HTTP/1.1 400 \r\nServer: Firecracker API\r\nConnection: close\r\n"
			    "Content-Type: application/json\r\nContent-Length: 21\r\n\r\n"
			    "{\"fault_message\":\"x\"}");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test_setup_teardown(test_response_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_header_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_methods_versions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http10, setup, teardown),
		cmocka_unit_test_setup_teardown(test_expect_continue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disconnect_mid_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_with_clients, setup, teardown),
		cmocka_unit_test_setup_teardown(test_thread_signals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_keeps_foreign_file, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
