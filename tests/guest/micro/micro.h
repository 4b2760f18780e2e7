/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Micro-guests: freestanding test kernels for the vmm guest suite. The same C (micro.c) is built
 * twice, -m64 for the bzImage (64-bit boot protocol entry) and -m32 for the PVH ELF (32-bit flat
 * protected mode, paging off). The entry stubs only set a stack and call micro_main().
 */
#ifndef MICRO_H
#define MICRO_H

/* How we were entered: selects the layout of the boot information pointer. */
#define MICRO_BOOT_BZIMAGE 1 /* boot_params, Linux Documentation/arch/x86/boot.rst */
#define MICRO_BOOT_PVH	   2 /* struct hvm_start_info, Xen arch-x86/hvm/start_info.h */

#define MICRO_STACK_SIZE 16384

#ifndef __ASSEMBLER__
#include <stdint.h>

void micro_main(uint32_t boot_kind, uintptr_t boot_info);

/* The AP trampoline (tramp.S): 16-bit code, copied to a low page and started by SIPI. */
extern const char micro_tramp_start[], micro_tramp_count[], micro_tramp_end[];
#endif

#endif
