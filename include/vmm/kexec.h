/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's next kernel (vmm/host/kexec.c): what `kexec -s -l` and `kexec -e` do, as the
 * kernel's own calls (kexec_file_load(2) and reboot(2)), so that `vmm hostupdate` needs no
 * kexec-tools and spends no process start inside the guests' pause.
 */
#ifndef VMM_KEXEC_H
#define VMM_KEXEC_H

#include <stddef.h>

/*
 * Load KERNEL (a bzImage) and INITRD (NULL: none) to run with CMDLINE. 0, or -errno with
 * one line in err that names the file and says why (EPERM: not root; ENOEXEC, EKEYREJECTED:
 * an image this kernel will not run; ENOSYS: no KEXEC_FILE).
 */
int kexec_load_file(const char *kernel, const char *initrd, const char *cmdline, char *err,
		    size_t errlen);
/* Unload what is loaded (nothing loaded is no error). 0 or -errno. */
int kexec_unload(void);
/* 1 when a kernel is loaded (/sys/kernel/kexec_loaded), 0 when not, -errno if unknown. */
int kexec_loaded(void);
/* Jump into the loaded kernel: returns only on failure, with -errno. */
int kexec_reboot(void);

/*
 * The running kernel's command line as a new kernel should get it: /proc/cmdline without the
 * boot loader's BOOT_IMAGE= word (as kexec --reuse-cmdline), plus extra (NULL: nothing) at the
 * end. A malloc'd string, or NULL with errno set.
 */
char *kexec_cmdline_reuse(const char *proc_cmdline, const char *extra);

#endif
