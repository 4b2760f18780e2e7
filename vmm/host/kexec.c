// SPDX-License-Identifier: Apache-2.0
/*
 * kexec_file_load(2) and reboot(LINUX_REBOOT_CMD_KEXEC): include/vmm/kexec.h. With
 * kexec_file_load the kernel parses and (where it is enforced) verifies the image itself;
 * it is what `kexec -s` uses, and the only kexec a locked-down kernel allows.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/kexec.h"

#ifndef KEXEC_FILE_UNLOAD
#define KEXEC_FILE_UNLOAD       0x00000001
#define KEXEC_FILE_NO_INITRAMFS 0x00000004
#endif

static long sys_kexec_file_load(int kfd, int ifd, unsigned long cmdline_len, const char *cmdline,
				unsigned long flags)
{
#ifdef SYS_kexec_file_load
	return syscall(SYS_kexec_file_load, kfd, ifd, cmdline_len, cmdline, flags);
#else
	(void)kfd, (void)ifd, (void)cmdline_len, (void)cmdline, (void)flags;
	errno = ENOSYS;
	return -1;
#endif
}

static const char *why(int e)
{
	switch (e) {
	case EPERM:
		return "not permitted (kexec needs root: CAP_SYS_BOOT)";
	case ENOEXEC:
		return "not a kernel image this kernel can load (x86: a bzImage)";
	case EKEYREJECTED:
	case EBADMSG:
		return "its signature was refused (this kernel only loads signed kernels)";
	case ENOSYS:
		return "this kernel has no kexec_file_load (CONFIG_KEXEC_FILE)";
	default:
		return strerror(e);
	}
}

int kexec_load_file(const char *kernel, const char *initrd, const char *cmdline, char *err,
		    size_t errlen)
{
	int kfd = -1, ifd = -1, e = 0;
	unsigned long flags = 0;
	struct stat st;

	kfd = open(kernel, O_RDONLY | O_CLOEXEC);
	if (kfd < 0 || fstat(kfd, &st) < 0 || !S_ISREG(st.st_mode)) {
		e = kfd < 0 ? errno : EINVAL;
		snprintf(err, errlen, "%s: %s", kernel,
			 kfd < 0 ? strerror(e) : "not a regular file");
		if (kfd >= 0)
			close(kfd);
		return -e;
	}
	if (initrd) {
		ifd = open(initrd, O_RDONLY | O_CLOEXEC);
		if (ifd < 0) {
			e = errno;
			snprintf(err, errlen, "%s: %s", initrd, strerror(e));
			close(kfd);
			return -e;
		}
	} else {
		flags |= KEXEC_FILE_NO_INITRAMFS;
	}
	/* The length counts the terminating NUL. */
	if (sys_kexec_file_load(kfd, ifd, strlen(cmdline) + 1, cmdline, flags) < 0) {
		e = errno;
		snprintf(err, errlen, "kexec_file_load of %s: %s", kernel, why(e));
	}
	close(kfd);
	if (ifd >= 0)
		close(ifd);
	return -e;
}

int kexec_unload(void)
{
	if (sys_kexec_file_load(-1, -1, 0, NULL, KEXEC_FILE_UNLOAD) < 0)
		return -errno;
	return 0;
}

int kexec_loaded(void)
{
	char c = 0;
	int fd = open("/sys/kernel/kexec_loaded", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, &c, 1);
	close(fd);
	if (n != 1)
		return -EIO;
	return c == '1';
}

int kexec_reboot(void)
{
	/* The new kernel starts here; the caller has synced what must survive. */
	syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_KEXEC, NULL);
	return -errno;
}

char *kexec_cmdline_reuse(const char *proc_cmdline, const char *extra)
{
	size_t n = strlen(proc_cmdline) + (extra ? strlen(extra) : 0) + 2;
	char *out = malloc(n), *o = out;
	const char *p = proc_cmdline;

	if (!out)
		return NULL;
	/* Word by word (the kernel splits on spaces; quotes keep a value's spaces together). */
	while (*p) {
		const char *w;
		int quoted = 0;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!*p)
			break;
		w = p;
		while (*p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n'))) {
			if (*p == '"')
				quoted = !quoted;
			p++;
		}
		if ((size_t)(p - w) >= 11 && !strncmp(w, "BOOT_IMAGE=", 11))
			continue;
		if (o != out)
			*o++ = ' ';
		memcpy(o, w, (size_t)(p - w));
		o += p - w;
	}
	if (extra && *extra) {
		if (o != out)
			*o++ = ' ';
		memcpy(o, extra, strlen(extra));
		o += strlen(extra);
	}
	*o = '\0';
	return out;
}
