// SPDX-License-Identifier: Apache-2.0
/*
 * libvmm's control socket (vmm.h): the API server (api_server.c) over a VM's api_target
 * (vm_api_target(), vm/vm.c). Links only together with the VM code.
 */
#include <errno.h>
#include <stdlib.h>

#include "vmm/api.h"

struct vmm_api {
	struct api_server *server;
};

int vmm_api_start(struct vmm_vm *vm, const char *path, int listen_fd, struct vmm_api **out,
		  struct vmm_error *e)
{
	struct api_target t;
	struct vmm_api *a;
	int r;

	a = calloc(1, sizeof(*a));
	if (!a)
		return config_fail(e, -ENOMEM, "api socket %s: out of memory", path ? path : "");
	vm_api_target(vm, &t);
	r = api_server_start(&t, path, listen_fd, &a->server, e);
	if (r < 0) {
		free(a);
		return r;
	}
	*out = a;
	return 0;
}

void vmm_api_stop(struct vmm_api *api)
{
	if (!api)
		return;
	api_server_stop(api->server);
	free(api);
}
