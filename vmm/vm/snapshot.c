// SPDX-License-Identifier: Apache-2.0
/*
 * A paused machine's state and RAM to files, and back into a fresh machine (DESIGN.md,
 * "Snapshot and live update"). The state blob is vmm/state's; RAM goes to its own sparse file:
 * the pages the guest never touched stay holes. Both files are written under a temporary name
 * in their directory, synced, then renamed into place: a failure (a full filesystem, a missing
 * directory) leaves nothing that looks like a snapshot behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine.h"
#include "snapshot.h"
#include "vmm/state.h"
#include "vmm/state_config.h"
#include "x86_state.h"

int machine_state_save(struct machine *m, struct state_fds *fds, uint8_t **blob, size_t *len,
		       char *err, size_t errlen)
{
	struct state_writer w;
	int r;

	if ((r = state_writer_init(&w)) < 0) {
		snprintf(err, errlen, "state: %s", strerror(-r));
		return r;
	}
	w.fds = fds;
	config_state_save(m->cfg, &w);
	x86_host_save(m, &w);
	if ((r = x86_state_save(m, &w, err, errlen)) < 0 ||
	    (r = devtable_save(&m->devs, &w, err, errlen)) < 0) {
		state_writer_fini(&w);
		return r;
	}
	if ((r = state_finish(&w, blob, len)) < 0) {
		snprintf(err, errlen, "state: %s", strerror(-r));
		return r;
	}
	return 0;
}

int machine_state_load(struct machine *m, const struct state_reader *r, char *err,
		       size_t errlen)
{
	int e;

	if ((e = x86_host_check(m, r, err, errlen)) < 0 ||
	    (e = x86_state_load(m, r, err, errlen)) < 0 ||
	    (e = devtable_load(&m->devs, r, err, errlen)) < 0)
		return e;
	return 0;
}

/* ---- files ---- */

/* A temporary file beside path (same filesystem, so that rename is atomic). */
static int tmp_beside(const char *path, char *tmp, size_t len, char *err, size_t errlen)
{
	int fd;

	if ((size_t)snprintf(tmp, len, "%s.tmp-XXXXXX", path) >= len) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		char *d = strdup(path), *dir = d ? dirname(d) : NULL;
		struct stat st;

		if (r == -ENOENT && dir && stat(dir, &st) < 0)
			snprintf(err, errlen, "%s: no such directory %s", path, dir);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
		free(d);
		return r;
	}
	return fd;
}

/*
 * Guest RAM goes to its file with O_DIRECT where the filesystem takes it: straight from the
 * guest's pages to the disk, not copied through the page cache first (on our test machines
 * that copy alone took 0.2 to 2.4 s per GiB, depending on where the new cache pages came
 * from), and the host's cache is not filled with a copy of the guest.
 */
static void try_direct(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl | O_DIRECT);
}

/* A write O_DIRECT refused (alignment the filesystem wants that this one lacks): buffered. */
static bool drop_direct(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl >= 0 && (fl & O_DIRECT) && fcntl(fd, F_SETFL, fl & ~O_DIRECT) == 0;
}

static int write_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EINVAL && drop_direct(fd))
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Sync, then give it its name (and sync the directory, so the name survives a crash too). */
static int commit(int fd, const char *tmp, const char *path, char *err, size_t errlen)
{
	char *d;
	int r = 0, dfd;

	if (fsync(fd) < 0 || rename(tmp, path) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		unlink(tmp);
		return r;
	}
	d = strdup(path);
	if (d && (dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	free(d);
	return r;
}

int snapshot_write_state(const uint8_t *blob, size_t len, const char *path, char *err,
			 size_t errlen)
{
	char tmp[4200];
	int fd = tmp_beside(path, tmp, sizeof(tmp), err, errlen), r;

	if (fd < 0)
		return fd;
	if ((r = write_all(fd, blob, len, 0)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto fail;
	}
	r = commit(fd, tmp, path, err, errlen);
	close(fd);
	return r;
fail:
	close(fd);
	unlink(tmp);
	return r;
}

static bool page_is_zero(const uint8_t *p, size_t len)
{
	static const uint8_t zero[4096];

	for (size_t off = 0; off < len; off += sizeof(zero)) {
		size_t n = MIN(sizeof(zero), len - off);

		if (memcmp(p + off, zero, n))
			return false;
	}
	return true;
}

/*
 * The nonzero pages of [buf, buf + len) to fd at off, each run of them in one write (a
 * 4 KiB write per page costs the filesystem more than the copy); zero pages stay holes.
 */
static int write_nonzero(int fd, const uint8_t *buf, size_t len, off_t off)
{
	const size_t page = 4096, max_run = 16 * MiB;
	size_t run = 0, run_len = 0;
	int r;

	for (size_t o = 0; o < len; o += page) {
		size_t n = MIN(page, len - o);

		if (!page_is_zero(buf + o, n)) {
			if (!run_len)
				run = o;
			run_len += n;
			if (run_len < max_run)
				continue;
		}
		if (run_len && (r = write_all(fd, buf + run, run_len, off + (off_t)run)) < 0)
			return r;
		run_len = 0;
	}
	return run_len ? write_all(fd, buf + run, run_len, off + (off_t)run) : 0;
}

/* Where a file has data: the extent at or after a position, kept as the position moves on. */
struct extents {
	int fd;
	off_t end;
	off_t data, hole; /* [data, hole): data; data == end: none after */
};

static void extents_at(struct extents *x, off_t p)
{
	if (p >= x->data && p < x->hole)
		return;
	if (p < x->data && x->hole != 0)
		return; /* still before the next extent */
	x->data = lseek(x->fd, p, SEEK_DATA);
	if (x->data < 0 || x->data >= x->end) {
		x->data = x->hole = x->end;
		return;
	}
	x->hole = lseek(x->fd, x->data, SEEK_HOLE);
	if (x->hole < 0 || x->hole > x->end)
		x->hole = x->end;
}

/*
 * Lazily restored RAM (guest_mem_lazy.c): each page is the memfd's where it has one, else the
 * snapshot file's. Read with pread, not through the mapping, so that taking a snapshot does
 * not fill the memfd.
 */
static int write_ram_lazy(const struct guest_mem *gm, int fd)
{
	const size_t chunk = 8 * MiB;
	off_t end = (off_t)gm->ram_size, p = 0;
	struct extents mem = { gm->fd, end, 0, 0 }, src = { gm->src_fd, end, 0, 0 };
	uint8_t *buf = aligned_alloc(4096, chunk); /* O_DIRECT's alignment */
	int r = 0;

	if (!buf)
		return -ENOMEM;
	while (p < end) {
		extents_at(&mem, p);
		extents_at(&src, p);
		bool in_mem = p >= mem.data && p < mem.hole;
		bool in_src = p >= src.data && p < src.hole;
		if (!in_mem && !in_src) {
			p = MIN(mem.data, src.data);
			continue;
		}
		/* A run from one file: the memfd's extent, or the file's up to the memfd's next. */
		off_t run_end = in_mem ? mem.hole : MIN(src.hole, mem.data);
		int from = in_mem ? gm->fd : gm->src_fd;
		size_t n = (size_t)MIN((off_t)chunk, run_end - p);
		ssize_t got = pread(from, buf, n, p);

		if (got <= 0) {
			r = got < 0 ? -errno : -EIO;
			break;
		}
		if ((r = write_nonzero(fd, buf, (size_t)got, p)) < 0)
			break;
		p += got;
	}
	free(buf);
	return r;
}

/* RAM to fd: where the memfd has data (SEEK_DATA), the pages that are not all zero. */
static int write_ram(const struct guest_mem *gm, int fd)
{
	off_t pos = 0, end = (off_t)gm->ram_size;
	int r;

	if (gm->src_fd >= 0)
		return write_ram_lazy(gm, fd);
	while (pos < end) {
		off_t data = pos, hole = end;

		/* A private (copy-on-write) mapping: the file's holes may hold guest writes, so
		 * every page is looked at; a memfd tells where it has pages. */
		if (!gm->private_map) {
			data = lseek(gm->fd, pos, SEEK_DATA);
			if (data < 0)
				break; /* ENXIO: no data after pos */
			hole = lseek(gm->fd, data, SEEK_HOLE);
			if (hole < 0 || hole > end)
				hole = end;
		}
		if ((r = write_nonzero(fd, gm->base + data, (size_t)(hole - data), data)) < 0)
			return r;
		pos = hole;
	}
	return 0;
}

/* A new RAM file at path: sized, filled by fill, synced, renamed into place (or nothing). */
static int write_ram_file(const struct guest_mem *gm, const char *path,
			  int (*fill)(const struct guest_mem *gm, const uint64_t *dirty, int fd),
			  const uint64_t *dirty, char *err, size_t errlen)
{
	char tmp[4200];
	int fd = tmp_beside(path, tmp, sizeof(tmp), err, errlen), r = 0;

	if (fd < 0)
		return fd;
	try_direct(fd);
	/* The size first (a sparse file), then the pages. */
	if (ftruncate(fd, (off_t)gm->ram_size) < 0 || (r = fill(gm, dirty, fd)) < 0) {
		r = r < 0 ? r : -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		close(fd);
		unlink(tmp);
		return r;
	}
	r = commit(fd, tmp, path, err, errlen);
	close(fd);
	return r;
}

static int fill_all(const struct guest_mem *gm, const uint64_t *dirty, int fd)
{
	(void)dirty;
	return write_ram(gm, fd);
}

/*
 * Guest RAM that is already the file at path (--memory SIZE,file=PATH): nothing to write but
 * what the mapping holds back. 1: done in place; 0: path is another file.
 */
static int ram_in_place(const struct guest_mem *gm, const char *path, char *err, size_t errlen)
{
	struct stat mine, there;

	/* Mapped copy-on-write from that file: the guest's writes are not in it. */
	if (gm->private_map)
		return 0;
	if (fstat(gm->fd, &mine) < 0 || !S_ISREG(mine.st_mode) || stat(path, &there) < 0 ||
	    mine.st_dev != there.st_dev || mine.st_ino != there.st_ino)
		return 0;
	if (msync(gm->base, gm->ram_size, MS_SYNC) < 0 || fsync(gm->fd) < 0) {
		int r = -errno;

		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	return 1;
}

int snapshot_write_ram(const struct guest_mem *gm, const char *path, char *err, size_t errlen)
{
	int r = ram_in_place(gm, path, err, errlen);

	if (r != 0)
		return r < 0 ? r : 0;
	return write_ram_file(gm, path, fill_all, NULL, err, errlen);
}

/*
 * The pages set in dirty, read through the guest's mapping (a lazily restored page that is not
 * in the memfd yet is brought in from its file on the way), each written whole (a page that
 * became zero must replace what is under it).
 */
static int write_dirty(const struct guest_mem *gm, const uint64_t *dirty, int fd)
{
	uint64_t pages = gm->ram_size / 4096;
	int r;

	for (uint64_t p = 0; p < pages;) {
		if (!(dirty[p / 64] & (1ULL << (p % 64)))) {
			p++;
			continue;
		}
		uint64_t q = p;
		while (q < pages && (dirty[q / 64] & (1ULL << (q % 64))))
			q++;
		if ((r = write_all(fd, gm->base + p * 4096, (size_t)((q - p) * 4096),
				   (off_t)(p * 4096))) < 0)
			return r;
		p = q;
	}
	return 0;
}

int snapshot_write_ram_diff(const struct guest_mem *gm, const uint64_t *dirty, const char *path,
			    char *err, size_t errlen)
{
	struct stat st;
	int fd, r;

	/* RAM that is this file: every page is in it already. */
	if ((r = ram_in_place(gm, path, err, errlen)) != 0)
		return r < 0 ? r : 0;
	/* On top of the memory file of the snapshot it follows: that file becomes this one's. */
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == gm->ram_size) {
		if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
			return r;
		}
		try_direct(fd);
		r = write_dirty(gm, dirty, fd);
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
		close(fd);
		if (r < 0)
			snprintf(err, errlen, "%s: %s (the file is now part old, part new: write the "
				 "diff again, or take a Full snapshot)", path, strerror(-r));
		return r;
	}
	/* A file of its own: the dirty pages only, the rest holes (Firecracker's diff layout,
	 * merged onto the base file's by whoever keeps the chain). */
	return write_ram_file(gm, path, write_dirty, dirty, err, errlen);
}
