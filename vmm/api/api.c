// SPDX-License-Identifier: Apache-2.0
/*
 * libvmm's control socket (vmm.h): the API server (api_server.c) over a VM's api_target
 * (vm_api_target(), vm/vm.c). Links only together with the VM code. The VM knows the API that
 * serves it, so that a live update can hand its listening socket on.
 */
#include <errno.h>
#include <stdlib.h>

#include "../vm/vm_internal.h"
#include "vmm/api.h"

struct vmm_api {
	struct api_server *server;
	struct vmm_vm *vm;
};

static int api_start(struct vmm_vm *vm, const char *path, int listen_fd, uint64_t dev,
		     uint64_t ino, struct vmm_api **out, struct vmm_error *e)
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
	if (dev || ino)
		api_server_own_file(a->server, dev, ino);
	a->vm = vm;
	pthread_mutex_lock(&vm->lock);
	vm->api = a;
	pthread_mutex_unlock(&vm->lock);
	*out = a;
	return 0;
}

int vmm_api_start(struct vmm_vm *vm, const char *path, int listen_fd, struct vmm_api **out,
		  struct vmm_error *e)
{
	return api_start(vm, path, listen_fd, 0, 0, out, e);
}

int vmm_api_adopt(struct vmm_vm *vm, const char *path, int listen_fd, uint64_t dev, uint64_t ino,
		  struct vmm_api **out, struct vmm_error *e)
{
	return api_start(vm, path, listen_fd, dev, ino, out, e);
}

void vmm_api_stop(struct vmm_api *api)
{
	if (!api)
		return;
	pthread_mutex_lock(&api->vm->lock);
	if (api->vm->api == api)
		api->vm->api = NULL;
	pthread_mutex_unlock(&api->vm->lock);
	api_server_stop(api->server);
	free(api);
}

int vmm_api_listen_fd(struct vmm_api *api)
{
	return api_server_listen_fd(api->server);
}

const char *vmm_api_path(struct vmm_api *api)
{
	return api_server_path(api->server);
}

void vmm_api_file_id(struct vmm_api *api, uint64_t *dev, uint64_t *ino)
{
	api_server_file_id(api->server, dev, ino);
}

void vmm_api_hold(struct vmm_api *api, bool hold)
{
	api_server_hold(api->server, hold);
}

void vmm_api_disown(struct vmm_api *api)
{
	api_server_disown(api->server);
}
