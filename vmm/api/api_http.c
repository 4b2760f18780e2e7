// SPDX-License-Identifier: Apache-2.0
/*
 * One API connection's HTTP/1.x over libhttp-parser (api_http.h has the rules). The parser
 * calls back with pieces of the request line, headers and body as they arrive, however the
 * bytes were split; a request is routed when it is complete, so pipelined requests are
 * answered in order. Nothing here touches a file descriptor.
 */
#include <errno.h>
#include <http_parser.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_http.h"

#define HDR_KEEP 16 /* bytes kept of a header's name and value: enough for Expect */

struct api_http {
	const struct api_target *t;
	http_parser hp;

	/* The request being parsed. */
	char url[API_MAX_HEADERS + 1];
	size_t url_len;
	size_t head_bytes;          /* request line and headers so far (api_http.h) */
	char *body;
	size_t body_len, body_cap;
	char hname[HDR_KEEP + 1], hval[HDR_KEEP + 1];
	size_t hname_len, hval_len; /* may exceed HDR_KEEP: then the text is not kept */
	bool in_value;              /* the last header callback was a value */
	bool expect_continue;
	int err_status;             /* a callback refused the request: the response to send */
	char err_msg[160];

	bool closing;               /* read nothing more; close once the output is sent */
	char *out;
	size_t out_off, out_len, out_cap;
};

static const char RESPONSE_100[] =
	"HTTP/1.1 100 \r\nServer: Firecracker API\r\nConnection: keep-alive\r\n\r\n";

char *api_http_format(int status, const char *body, bool close, size_t *len)
{
	size_t blen = body ? strlen(body) : 0;
	char *s;
	int n;

	if (body)
		n = asprintf(&s, "HTTP/1.1 %d \r\nServer: Firecracker API\r\nConnection: %s\r\n"
			     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			     status, close ? "close" : "keep-alive", blen, body);
	else
		n = asprintf(&s, "HTTP/1.1 %d \r\nServer: Firecracker API\r\nConnection: %s"
			     "\r\n\r\n", status, close ? "close" : "keep-alive");
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return s;
}

static size_t pending(const struct api_http *h)
{
	return h->out_len - h->out_off;
}

/* Queue bytes to send; out of memory ends the connection at once. */
static void emit(struct api_http *h, const char *data, size_t len)
{
	if (h->out_off && h->out_len + len > h->out_cap) {
		memmove(h->out, h->out + h->out_off, pending(h));
		h->out_len -= h->out_off;
		h->out_off = 0;
	}
	if (h->out_len + len > h->out_cap) {
		size_t cap = h->out_cap ? h->out_cap : 1024;
		char *n;

		while (cap < h->out_len + len)
			cap *= 2;
		n = realloc(h->out, cap);
		if (!n) {
			/* No way to answer: drop everything and close. */
			h->out_off = h->out_len = 0;
			h->closing = true;
			return;
		}
		h->out = n;
		h->out_cap = cap;
	}
	memcpy(h->out + h->out_len, data, len);
	h->out_len += len;
}

static void respond(struct api_http *h, int status, const char *body, bool close)
{
	/* The router leaves a 500 without body only when memory ran out. */
	static const char oom[] = "{\"fault_message\":\"Out of memory.\"}";
	size_t len;
	char *s = api_http_format(status, body ? body : status == 204 ? NULL : oom, close, &len);

	if (!s) {
		h->out_off = h->out_len = 0;
		h->closing = true;
		return;
	}
	emit(h, s, len);
	free(s);
	if (close)
		h->closing = true;
}

/* Answer an error in the HTTP framing (400 with a fault_message) and end the connection. */
static void respond_fatal(struct api_http *h, int status, const char *msg)
{
	json_t *j = json_pack("{s:s}", "fault_message", msg);
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	respond(h, body ? status : 500, body, true);
	free(body);
}

/* A callback refuses the request: remember the answer, then fail the parse. */
static int refuse(struct api_http *h, const char *fmt, ...) PRINTF(2, 3);
static int refuse(struct api_http *h, const char *fmt, ...)
{
	va_list ap;

	h->err_status = 400;
	va_start(ap, fmt);
	vsnprintf(h->err_msg, sizeof(h->err_msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int count_head(struct api_http *h, size_t len)
{
	h->head_bytes += len;
	if (h->head_bytes > API_MAX_HEADERS)
		return refuse(h, "The request line and headers are larger than the limit of %d "
			      "bytes.", API_MAX_HEADERS);
	return 0;
}

static void keep(char *dst, size_t *have, const char *at, size_t len)
{
	if (*have < HDR_KEEP)
		memcpy(dst + *have, at, MIN(len, HDR_KEEP - *have));
	*have += len;
	dst[MIN(*have, (size_t)HDR_KEEP)] = '\0';
}

/* One header is complete: the only one acted on here is Expect. */
static void header_done(struct api_http *h)
{
	if (h->hname_len == 6 && !strcasecmp(h->hname, "expect") && h->hval_len <= HDR_KEEP) {
		size_t n = h->hval_len;

		while (n && (h->hval[n - 1] == ' ' || h->hval[n - 1] == '\t'))
			h->hval[--n] = '\0';
		if (!strcasecmp(h->hval, "100-continue"))
			h->expect_continue = true;
	}
	h->hname_len = h->hval_len = 0;
	h->hname[0] = h->hval[0] = '\0';
	h->in_value = false;
}

static int on_message_begin(http_parser *hp)
{
	struct api_http *h = hp->data;

	h->url_len = 0;
	h->head_bytes = 0;
	h->body_len = 0;
	h->hname_len = h->hval_len = 0;
	h->in_value = false;
	h->expect_continue = false;
	return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
	struct api_http *h = hp->data;

	if (count_head(h, len) < 0)
		return -1;
	/* count_head() keeps url_len + len within the buffer. */
	memcpy(h->url + h->url_len, at, len);
	h->url_len += len;
	return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
	struct api_http *h = hp->data;

	if (h->in_value)
		header_done(h);
	if (count_head(h, len) < 0)
		return -1;
	keep(h->hname, &h->hname_len, at, len);
	return 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
	struct api_http *h = hp->data;

	if (!h->in_value) {
		h->in_value = true;
		if (count_head(h, 4) < 0) /* ": " and CRLF */
			return -1;
	}
	if (count_head(h, len) < 0)
		return -1;
	keep(h->hval, &h->hval_len, at, len);
	return 0;
}

static bool method_ok(unsigned int m)
{
	return m == HTTP_GET || m == HTTP_PUT || m == HTTP_PATCH || m == HTTP_DELETE;
}

static int on_headers_complete(http_parser *hp)
{
	struct api_http *h = hp->data;
	bool has_len = hp->flags & F_CONTENTLENGTH, chunked = hp->flags & F_CHUNKED;

	if (h->in_value)
		header_done(h);
	if (!method_ok(hp->method))
		return refuse(h, "Unsupported HTTP method %s (GET, PUT, PATCH or DELETE).",
			      http_method_str(hp->method));
	if (hp->http_major != 1 || hp->http_minor > 1)
		return refuse(h, "Unsupported HTTP version %u.%u (1.0 or 1.1).", hp->http_major,
			      hp->http_minor);
	if (hp->upgrade)
		return refuse(h, "Protocol upgrades are not supported.");
	if (has_len && hp->content_length > API_MAX_BODY)
		return refuse(h, "The request body of %llu bytes is larger than the limit of %d "
			      "bytes.", (unsigned long long)hp->content_length, API_MAX_BODY);
	if (has_len && hp->content_length > h->body_cap) {
		char *b = realloc(h->body, hp->content_length);

		if (!b) {
			h->err_status = 500;
			snprintf(h->err_msg, sizeof(h->err_msg), "Out of memory.");
			return -1;
		}
		h->body = b;
		h->body_cap = hp->content_length;
	}
	if (h->expect_continue && ((has_len && hp->content_length > 0) || chunked))
		emit(h, RESPONSE_100, sizeof(RESPONSE_100) - 1);
	return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
	struct api_http *h = hp->data;

	if (len > API_MAX_BODY - h->body_len)
		return refuse(h, "The request body of more than %zu bytes is larger than the limit "
			      "of %d bytes.", h->body_len + len, API_MAX_BODY);
	if (h->body_len + len > h->body_cap) {
		/* Chunked: grow. */
		size_t cap = MAX(h->body_cap * 2, (size_t)1024);
		char *b;

		cap = MIN(MAX(cap, h->body_len + len), (size_t)API_MAX_BODY);
		b = realloc(h->body, cap);
		if (!b) {
			h->err_status = 500;
			snprintf(h->err_msg, sizeof(h->err_msg), "Out of memory.");
			return -1;
		}
		h->body = b;
		h->body_cap = cap;
	}
	memcpy(h->body + h->body_len, at, len);
	h->body_len += len;
	return 0;
}

static int on_message_complete(http_parser *hp)
{
	struct api_http *h = hp->data;
	struct api_response r;
	bool close = !http_should_keep_alive(hp);

	h->url[h->url_len] = '\0';
	api_route(h->t, http_method_str(hp->method), h->url, h->body, h->body_len, &r);
	respond(h, r.status, r.body, close || r.close);
	api_response_fini(&r);
	/* Keep a small body buffer for the next request, not a large one. */
	if (h->body_cap > 4096) {
		free(h->body);
		h->body = NULL;
		h->body_cap = 0;
	}
	h->body_len = 0;
	if (h->closing || pending(h) >= API_OUT_CAP)
		http_parser_pause(hp, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

struct api_http *api_http_new(const struct api_target *t)
{
	struct api_http *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->t = t;
	http_parser_init(&h->hp, HTTP_REQUEST);
	h->hp.data = h;
	return h;
}

void api_http_free(struct api_http *h)
{
	if (!h)
		return;
	free(h->body);
	free(h->out);
	free(h);
}

bool api_http_wants_input(const struct api_http *h)
{
	return !h->closing && pending(h) < API_OUT_CAP;
}

size_t api_http_input(struct api_http *h, const char *data, size_t len)
{
	size_t done = 0;

	while (done < len && api_http_wants_input(h)) {
		size_t n = http_parser_execute(&h->hp, &settings, data + done, len - done);
		enum http_errno err = HTTP_PARSER_ERRNO(&h->hp);

		done += n;
		if (err == HPE_PAUSED) {
			/* on_message_complete() stopped for backpressure or closing. */
			http_parser_pause(&h->hp, 0);
			continue;
		}
		if (err != HPE_OK) {
			char msg[200];

			if (h->err_status) {
				respond_fatal(h, h->err_status, h->err_msg);
				break;
			}
			snprintf(msg, sizeof(msg), "Malformed HTTP request: %s.",
				 http_errno_description(err));
			respond_fatal(h, 400, msg);
			break;
		}
		if (n == 0) {
			/* No progress without an error: cannot happen; do not spin on it. */
			respond_fatal(h, 400, "Malformed HTTP request.");
			break;
		}
	}
	return done;
}

void api_http_eof(struct api_http *h)
{
	/* A request cut short by the peer gets no answer: nobody will read it. */
	h->closing = true;
}

const char *api_http_output(const struct api_http *h, size_t *len)
{
	*len = pending(h);
	return h->out ? h->out + h->out_off : ""; /* no NULL + 0 */
}

void api_http_output_done(struct api_http *h, size_t n)
{
	h->out_off += MIN(n, pending(h));
	if (h->out_off == h->out_len) {
		h->out_off = h->out_len = 0;
		/* Give back a buffer that a burst grew. */
		if (h->out_cap > 16 * 1024) {
			free(h->out);
			h->out = NULL;
			h->out_cap = 0;
		}
	}
}

bool api_http_done(const struct api_http *h)
{
	return h->closing && !pending(h);
}
