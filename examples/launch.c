// SPDX-License-Identifier: Apache-2.0
/*
 * launch: boot a kernel with libvmm and exit with the guest's status, as `vmm run` would.
 *   cc launch.c $(pkg-config --cflags --libs vmm) -o launch
 *   ./launch bzImage "console=ttyS0" [initrd]
 */
#include <stdio.h>
#include <unistd.h>
#include <vmm/vmm.h>

int main(int argc, char **argv)
{
	struct vmm_config *c = vmm_config_new();
	struct vmm_error e = { 0 };
	struct vmm_outcome o;
	struct vmm_vm *vm;

	if (argc < 3) {
		fprintf(stderr, "usage: %s KERNEL CMDLINE [INITRD]\n", argv[0]);
		return 2;
	}
	if (vmm_config_set_kernel(c, argv[1], &e) < 0 ||
	    vmm_config_set_cmdline(c, argv[2], &e) < 0 ||
	    (argc > 3 && vmm_config_set_initrd(c, argv[3], &e) < 0) ||
	    vmm_config_set_console(c, VMM_CONSOLE_SERIAL, STDIN_FILENO, STDOUT_FILENO, false,
				   &e) < 0 ||
	    vmm_vm_create(c, NULL, &vm, &e) < 0) {
		fprintf(stderr, "launch: %s\n", e.msg);
		return 1;
	}
	if (vmm_vm_start(vm, &e) < 0) {
		fprintf(stderr, "launch: %s\n", e.msg);
		return 1;
	}
	vmm_vm_wait(vm, &o);
	if (o.msg[0])
		fprintf(stderr, "launch: %s\n", o.msg);
	vmm_vm_destroy(vm);
	vmm_config_free(c);
	return vmm_outcome_status(&o);
}
