// SPDX-License-Identifier: Apache-2.0
/* libvmm's vmm_api_start/stop: the API server over a VM's api_target. */
#include <errno.h>
#include <stdlib.h>

#include "vmm/api.h"
#include "vmm/log.h"

struct vmm_api {
	struct api_server *server;
};

int vmm_api_start(struct vmm_vm *vm, const char *path, int listen_fd, struct vmm_api **out,
		  struct vmm_error *e)
{
	struct api_target t;
	struct vmm_api *api = calloc(1, sizeof(*api));
	int r;

	if (!api)
		return config_fail(e, -ENOMEM, "out of memory");
	vm_api_target(vm, &t);
	if ((r = api_server_start(&t, path, listen_fd, &api->server, e)) < 0) {
		free(api);
		return r;
	}
	*out = api;
	return 0;
}

void vmm_api_stop(struct vmm_api *api)
{
	if (!api)
		return;
	api_server_stop(api->server);
	free(api);
}
