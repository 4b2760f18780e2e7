// SPDX-License-Identifier: Apache-2.0
/*
 * Disk images: open, check, size and lock a raw image (regular file or block device) for a
 * block backend. A user hands us the path, so every failure becomes one line naming the path
 * and the cause, never a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "vmm/blk_backend.h"
#include "vmm/file.h"

#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U /* Linux 6.1 */
#endif

/*
 * struct statx as the kernel defines it (include/uapi/linux/stat.h, Linux 6.1). glibc 2.36's
 * copy predates stx_dio_mem_align/stx_dio_offset_align and hides them in padding.
 */
struct image_statx {
	uint32_t stx_mask;
	uint32_t stx_blksize;
	uint64_t stx_attributes;
	uint32_t stx_nlink, stx_uid, stx_gid;
	uint16_t stx_mode, pad1;
	uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
	struct {
		int64_t tv_sec;
		uint32_t tv_nsec;
		int32_t pad;
	} stx_atime, stx_btime, stx_ctime, stx_mtime;
	uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
	uint64_t stx_mnt_id;
	uint32_t stx_dio_mem_align;
	uint32_t stx_dio_offset_align;
	uint64_t spare[12];
};
_Static_assert(sizeof(struct image_statx) == 256, "struct statx is 256 bytes");

PRINTF(3, 4) static void image_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}


/*
 * O_DIRECT alignment for memory and file offsets. statx(STATX_DIOALIGN) knows it (Linux 6.1,
 * filesystems that report it); otherwise a block device's logical block size, and for a file a
 * probe: a 512-byte direct read that the kernel refuses with EINVAL means 4096.
 */
static unsigned int image_dio_align(int fd, const struct blk_image *img)
{
	struct image_statx stx = {0};
	void *buf;
	ssize_t r;

	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) && IS_POW2(stx.stx_dio_mem_align) &&
	    IS_POW2(stx.stx_dio_offset_align))
		return MAX(MAX(stx.stx_dio_mem_align, stx.stx_dio_offset_align), 512U);
	if (img->is_blockdev)
		return img->logical_block;
	if (posix_memalign(&buf, 4096, 4096))
		return 4096;
	do {
		r = pread(fd, buf, 512, 0);
	} while (r < 0 && errno == EINTR);
	free(buf);
	return r < 0 && errno == EINVAL ? 4096 : 512;
}

/* Turn a failed open() into the one line the user needs. */
static int image_open_err(const char *path, int flags, bool read_only, int r, char *err,
			  size_t errlen)
{
	if (r == -EINVAL && (flags & O_DIRECT)) {
		/* Was it O_DIRECT that was refused? Then say so, unless the file is of a kind we
		 * would refuse anyway (a directory may refuse O_DIRECT too). */
		int fd = open(path, (flags & ~O_DIRECT) | O_CLOEXEC);
		struct stat st;

		if (fd >= 0) {
			int ok = fstat(fd, &st);

			close(fd);
			if (ok == 0 && S_ISDIR(st.st_mode))
				r = -EISDIR;
			else if (ok == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
				image_err(err, errlen, "%s: not a regular file or block device",
					  path);
			else
				image_err(
					err, errlen,
					"%s: cache=none: O_DIRECT not supported by this filesystem",
					path);
			if (r == -EINVAL)
				return r;
		}
	}
	if (r == -EISDIR) {
		image_err(err, errlen, "%s: is a directory, not a regular file or block device",
			  path);
		return r;
	}
	if (!read_only && (r == -EACCES || r == -EPERM || r == -EROFS) &&
	    faccessat(AT_FDCWD, path, R_OK, AT_EACCESS) == 0) {
		image_err(err, errlen, "%s: %s (to use it read-only, add ,ro)", path, strerror(-r));
		return r;
	}
	image_err(err, errlen, "%s: %s", path, strerror(-r));
	return r;
}

/* Check, lock and measure an open image (fd is img's from now on, closed on error). */
static int image_setup(struct blk_image *img, int fd, const char *path, bool read_only,
		       enum blk_cache cache, char *err, size_t errlen)
{
	struct flock fl = {
		.l_type = read_only ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = 0,
		.l_len = 0, /* the whole file, however it grows */
	};
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0) {
		r = -errno;
		image_err(err, errlen, "%s: %s", path, strerror(-r));
		goto err_close;
	}
	if (S_ISDIR(st.st_mode)) {
		r = -EISDIR;
		image_err(err, errlen, "%s: is a directory, not a regular file or block device",
			  path);
		goto err_close;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		r = -EINVAL;
		image_err(err, errlen, "%s: not a regular file or block device (%s)", path,
			  file_kind(&st));
		goto err_close;
	}
	/* Opened non-blocking so that a FIFO could not hang open(); I/O is blocking. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		r = -errno;
		image_err(err, errlen, "%s: %s", path, strerror(-r));
		goto err_close;
	}

	/* An OFD lock belongs to this open file description, not to the process: a second
	 * open in the same process conflicts too, and it goes away with the last close. An
	 * adopted descriptor that already holds the lock takes it again without conflict. */
	/*
	 * A conflict may be a process that just died: an io_uring ring keeps its registered file,
	 * and so the lock, until the kernel has torn it down, a few milliseconds after the exit
	 * (kill -9 then a restore at once). Wait up to a second for such a lock to go.
	 */
	for (int tries = 0; fcntl(fd, F_OFD_SETLK, &fl) < 0; tries++) {
		const struct timespec ms20 = { 0, 20 * 1000 * 1000 };

		r = -errno;
		if ((r == -EAGAIN || r == -EACCES) && tries < 50) {
			nanosleep(&ms20, NULL);
			continue;
		}
		if (r == -EAGAIN || r == -EACCES) {
			r = -EBUSY;
			image_err(
				err, errlen,
				"%s: is locked by another process (another vmm using this image?)",
				path);
		} else {
			image_err(err, errlen, "%s: cannot lock: %s", path, strerror(-r));
		}
		goto err_close;
	}
	r = 0;

	img->fd = fd;
	img->read_only = read_only;
	img->direct = cache == BLK_CACHE_NONE;
	img->is_blockdev = S_ISBLK(st.st_mode);
	img->dev = st.st_dev;
	img->ino = st.st_ino;
	img->rdev = st.st_rdev;
	img->logical_block = 512;
	if (img->is_blockdev) {
		uint64_t size;
		int lbs;

		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			r = -errno;
			image_err(err, errlen, "%s: cannot get the device size: %s", path,
				  strerror(-r));
			goto err_reset;
		}
		img->size = size;
		if (ioctl(fd, BLKSSZGET, &lbs) == 0 && lbs >= 512 && IS_POW2((uint64_t)lbs))
			img->logical_block = (unsigned int)lbs;
	} else {
		img->size = (uint64_t)st.st_size;
	}
	if (img->size < 512) {
		r = -EINVAL;
		image_err(err, errlen, "%s: %llu bytes, smaller than one 512-byte sector", path,
			  (unsigned long long)img->size);
		goto err_reset;
	}
	img->dio_align = img->direct ? image_dio_align(fd, img) : 1;
	/* Files: hole punching works on every filesystem we expect (ext4, xfs, btrfs, tmpfs);
	 * where it does not, DISCARD completes with EOPNOTSUPP. Block devices: BLKDISCARD,
	 * likewise. */
	img->can_discard = true;
	return 0;

err_reset:
	memset(img, 0, sizeof(*img));
	img->fd = -1;
err_close:
	close(fd);
	return r;
}

static int image_args_check(struct blk_image *img, const char *path, enum blk_cache cache,
			    char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!img)
		return -EINVAL;
	memset(img, 0, sizeof(*img));
	img->fd = -1;
	if (!path || !*path) {
		image_err(err, errlen, "empty image path");
		return -EINVAL;
	}
	if (cache != BLK_CACHE_WRITEBACK && cache != BLK_CACHE_NONE) {
		image_err(err, errlen, "%s: unknown cache mode", path);
		return -EINVAL;
	}
	return 0;
}

int blk_image_open(struct blk_image *img, const char *path, bool read_only, enum blk_cache cache,
		   char *err, size_t errlen)
{
	int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	struct stat st;
	int fd, r;

	if ((r = image_args_check(img, path, cache, err, errlen)) < 0)
		return r;
	if (cache == BLK_CACHE_NONE)
		flags |= O_DIRECT;
	fd = open(path, flags);
	if (fd < 0) {
		r = -errno;
		/* A FIFO opened for writing without a reader answers ENXIO. */
		if (r == -ENXIO && stat(path, &st) == 0 && !S_ISREG(st.st_mode) &&
		    !S_ISBLK(st.st_mode)) {
			image_err(err, errlen, "%s: not a regular file or block device (%s)", path,
				  file_kind(&st));
			return -EINVAL;
		}
		return image_open_err(path, flags, read_only, r, err, errlen);
	}
	return image_setup(img, fd, path, read_only, cache, err, errlen);
}

int blk_image_adopt(struct blk_image *img, int fd, const char *path, bool read_only,
		    enum blk_cache cache, char *err, size_t errlen)
{
	const char *name = path ? path : "image";
	int mine, fl, r;

	if ((r = image_args_check(img, name, cache, err, errlen)) < 0)
		return r;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0) {
		r = -errno;
		image_err(err, errlen, "%s: fd %d: %s", name, fd, strerror(-r));
		return r;
	}
	if (!read_only && (fl & O_ACCMODE) != O_RDWR) {
		image_err(err, errlen, "%s: fd %d is not open for reading and writing", name, fd);
		return -EBADF;
	}
	if ((fl & O_ACCMODE) == O_WRONLY) {
		image_err(err, errlen, "%s: fd %d is not open for reading", name, fd);
		return -EBADF;
	}
	mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (mine < 0) {
		r = -errno;
		image_err(err, errlen, "%s: %s", name, strerror(-r));
		return r;
	}
	/* cache=none wants O_DIRECT on the open file description (shared with the giver). */
	if (cache == BLK_CACHE_NONE && !(fl & O_DIRECT) &&
	    fcntl(mine, F_SETFL, fl | O_DIRECT) < 0) {
		r = -errno;
		image_err(err, errlen, "%s: cache=none: %s", name, strerror(-r));
		close(mine);
		return r;
	}
	return image_setup(img, mine, name, read_only, cache, err, errlen);
}

void blk_image_close(struct blk_image *img)
{
	if (!img || img->fd < 0)
		return;
	close(img->fd);
	img->fd = -1;
}
