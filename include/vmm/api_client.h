/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A client of a vmm's API socket (vmm/api/api_client.c): one request per connection
 * ("Connection: close"), the response parsed with libhttp-parser. For vmm's own tools
 * (vmm hostupdate); the server is vmm/api/api_server.c.
 */
#ifndef VMM_API_CLIENT_H
#define VMM_API_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

#include "vmm/compiler.h"

#define API_CLIENT_BODY_MAX (1u << 20)

struct api_reply {
	int status;  /* HTTP status */
	char *body;  /* NUL-terminated (malloc'd; "" when empty) */
	pid_t pid;   /* the server process (SO_PEERCRED), 0 if unknown */
};

/*
 * METHOD PATH with an optional JSON body to the socket at sock, waiting up to timeout_ms for
 * the whole exchange. 0 and *out filled (free out->body) whatever the status; a negative errno
 * and one line in err when there was no well-formed HTTP response.
 */
int api_call(const char *sock, const char *method, const char *path, const char *body,
	     int timeout_ms, struct api_reply *out, char *err, size_t errlen) WUR;

/*
 * Parse a whole HTTP response (exposed for the unit tests and the fuzz target): status and
 * body into out (body malloc'd). -EINVAL on a malformed or incomplete response, -E2BIG on a
 * body over API_CLIENT_BODY_MAX.
 */
int api_reply_parse(const char *buf, size_t len, struct api_reply *out) WUR;

#endif
