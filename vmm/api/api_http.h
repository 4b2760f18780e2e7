/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One API connection's HTTP/1.x (vmm/api/api_http.c), without the socket: bytes in, requests
 * routed with api_route() in order, response bytes out. api_server.c moves the bytes; the unit
 * tests and the fuzzer drive it directly. Private to vmm/api/.
 *
 * Framing: Content-Length bodies up to API_MAX_BODY; chunked bodies are decoded (by
 * libhttp-parser) with the same limit on their decoded size. Request line and headers are
 * limited to API_MAX_HEADERS bytes. Expect: 100-continue gets an interim 100 response. An error
 * in the HTTP framing itself (bad syntax, a method other than GET/PUT/PATCH/DELETE, an HTTP
 * version other than 1.0/1.1, a size over a limit, an upgrade) gets a 400 with a fault_message
 * and ends the connection once that response is sent: the stream cannot be trusted after it.
 *
 * Backpressure: while API_OUT_CAP bytes or more of responses wait to be sent, no further request
 * is parsed (api_http_input() returns early and api_http_wants_input() says false), so a client
 * that sends without reading costs at most API_OUT_CAP plus one response.
 */
#ifndef VMM_API_HTTP_H
#define VMM_API_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/api.h"

#ifndef API_OUT_CAP
#define API_OUT_CAP (64 * 1024) /* the fuzzer builds with a small one, to reach it */
#endif

struct api_http;

/* NULL when out of memory. t must outlive it. */
struct api_http *api_http_new(const struct api_target *t);
void api_http_free(struct api_http *h);

/*
 * Parse data, routing each complete request. Returns how many bytes were consumed; fewer than
 * len only when api_http_wants_input() has turned false (output over the cap, or closing).
 */
size_t api_http_input(struct api_http *h, const char *data, size_t len);
/* The peer will send nothing more: what is queued is still to be sent, then the end. */
void api_http_eof(struct api_http *h);
/* Whether input should be read now (false while output is over the cap or when closing). */
bool api_http_wants_input(const struct api_http *h);

/* The bytes waiting to be sent (*len 0: none), and how many of them were sent. */
const char *api_http_output(const struct api_http *h, size_t *len);
void api_http_output_done(struct api_http *h, size_t n);
/* Closing and nothing left to send: close the connection now. */
bool api_http_done(const struct api_http *h);

/*
 * A whole response as Firecracker's server writes it: "HTTP/1.1 <code> \r\n", Server,
 * Connection (keep-alive, or close when close is set), then Content-Type and Content-Length
 * only when there is a body. Returns the malloc'd text and its length in *len, or NULL.
 */
char *api_http_format(int status, const char *body, bool close, size_t *len);

#endif
