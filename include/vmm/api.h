/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control API (vmm/api/): Firecracker's REST API over HTTP/1.1 on a unix socket.
 *
 * Two layers. The router (api_router.c) is pure: one parsed request (method, path, body) in,
 * one response (status, JSON body) out, acting on a VM only through struct api_target, so
 * that unit tests drive it with a fake VM. The server (api_server.c) owns the socket, the
 * connections and the HTTP parsing (libhttp-parser), on a thread of its own ("api").
 */
#ifndef VMM_API_H
#define VMM_API_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/compiler.h"
#include "vmm/config.h"

/* Firecracker's default limit for a request body (--http-api-max-payload-size). */
#define API_MAX_BODY    51200
#define API_MAX_HEADERS 8192 /* request line and headers */

struct api_info {
	const char *id;         /* InstanceInfo.id */
	enum vmm_state state;   /* InstanceInfo.state: vmm_state_name() */
};

/* What the router needs from a VM; vm.c implements it, tests fake it. */
struct api_target_ops {
	void (*info)(void *opaque, struct api_info *out);
	/*
	 * Run fn on the VM's configuration while it is not started; fn's error is returned
	 * as is (config unchanged). Started: -EBUSY and a message.
	 */
	int (*update_config)(void *opaque,
			     int (*fn)(struct vmm_config *c, void *arg, struct vmm_error *e),
			     void *arg, struct vmm_error *e);
	/* A copy of the configuration (config_fini + free it), NULL when out of memory. */
	struct vmm_config *(*get_config)(void *opaque);
	int (*start)(void *opaque, struct vmm_error *e);
	int (*pause)(void *opaque, struct vmm_error *e);
	int (*resume)(void *opaque, struct vmm_error *e);
	int (*ctrl_alt_del)(void *opaque, struct vmm_error *e);
	/* PUT /snapshot/create on a paused VM, PUT /snapshot/load on a VM not started. */
	int (*snapshot_create)(void *opaque, const char *state_path, const char *mem_path,
			       enum vmm_snapshot_type type, struct vmm_error *e);
	int (*snapshot_load)(void *opaque, const char *state_path, const char *mem_path,
			     unsigned int flags, const struct vmm_restore_overrides *ov,
			     struct vmm_error *e); /* VMM_RESTORE_*; ov may be NULL */
	/* PUT /snapshot/luo on a started VM: preserved in that LUO session (vmm_vm_luo_preserve). */
	int (*snapshot_luo)(void *opaque, const char *session, struct vmm_error *e);
	/* PUT /live-update: binary NULL for the running executable. */
	int (*live_update)(void *opaque, const char *binary, struct vmm_live_update *out,
			   struct vmm_error *e);
};

struct api_target {
	const struct api_target_ops *ops;
	void *opaque;
};

struct api_response {
	int status;   /* 200, 204, 400, 404, 500... */
	char *body;   /* malloc'd JSON text, or NULL for none (204) */
	bool close;   /* close the connection after this answer (a live update handed the
		       * socket to another process: the client reconnects to that one) */
};

/*
 * Route one request. method and path as received ("PUT", "/drives/rootfs"; a query string is
 * refused), body of len bytes (not NUL-terminated, may be NULL when len is 0). Errors come back
 * as 4xx/5xx with {"fault_message": "..."}; never fails otherwise.
 */
void api_route(const struct api_target *t, const char *method, const char *path,
	       const char *body, size_t len, struct api_response *out);
void api_response_fini(struct api_response *r);
/* The reason phrase for a status ("No Content"). */
const char *api_status_text(int status);

/*
 * The server. Listens on a unix socket at path (sun_path limit checked: -ENAMETOOLONG; missing
 * directory: -ENOENT; a live listener there: -EADDRINUSE; a stale socket file left by a dead
 * process is replaced; a path that exists and is not a socket: -EEXIST), or adopts listen_fd
 * (>= 0, already listening; path then only names it; the server owns it once started and
 * closes it at stop, a failed start leaves it to the caller). Serves t from a thread named
 * "api" until api_server_stop(), which closes every connection and unlinks the path it bound
 * (if the file there is still its socket). t's ops run on that thread, one request at a time.
 * HTTP rules (limits, chunked bodies, backpressure): vmm/api/api_http.h. At most 10
 * connections: another one gets a 503 and is closed.
 */
struct api_server;
int api_server_start(const struct api_target *t, const char *path, int listen_fd,
		     struct api_server **out, struct vmm_error *e) WUR;
void api_server_stop(struct api_server *s);
/* The listening fd and its path (a live update hands them over). */
int api_server_listen_fd(const struct api_server *s);
const char *api_server_path(const struct api_server *s);
/* The socket file's identity (0, 0 when the server did not bind it). */
void api_server_file_id(const struct api_server *s, uint64_t *dev, uint64_t *ino);
/* Stop accepting connections (open ones are still served), or accept again. */
void api_server_hold(struct api_server *s, bool hold);
/* Leave the socket file at stop (after a hold): another process serves it now. */
void api_server_disown(struct api_server *s);
/* An adopted socket whose file (dev, ino) is now this server's to remove at stop. */
void api_server_own_file(struct api_server *s, uint64_t dev, uint64_t ino);

/* The target that drives a real VM (vm/vm.c). */
struct vmm_vm;
void vm_api_target(struct vmm_vm *vm, struct api_target *out);

#endif
