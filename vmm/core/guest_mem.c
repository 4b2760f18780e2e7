// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/guest_mem.h"
#include "vmm/layout.h"

/*
 * Map the memfd at a GM_HUGE_ALIGN boundary, so that huge pages can back it (the region above
 * 4 GiB starts at a 3 GiB offset, aligned as well): reserve the size plus one alignment of
 * address space, map the memfd over the aligned part, give back the rest.
 */
static void *gm_map_aligned(int fd, uint64_t size, bool private_map)
{
	uint8_t *resv = mmap(NULL, size + GM_HUGE_ALIGN, PROT_NONE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (resv == MAP_FAILED)
		return MAP_FAILED;
	uint8_t *base = (uint8_t *)ALIGN_UP((uintptr_t)resv, (uintptr_t)GM_HUGE_ALIGN);
	uint8_t *end = resv + size + GM_HUGE_ALIGN;

	if (mmap(base, size, PROT_READ | PROT_WRITE,
		 (private_map ? MAP_PRIVATE : MAP_SHARED) | MAP_NORESERVE | MAP_FIXED, fd,
		 0) == MAP_FAILED) {
		int err = errno;
		munmap(resv, size + GM_HUGE_ALIGN);
		errno = err;
		return MAP_FAILED;
	}
	if (base > resv)
		munmap(resv, (size_t)(base - resv));
	if (end > base + size)
		munmap(base + size, (size_t)(end - (base + size)));
	return base;
}

/* Map fd (ram_size bytes, owned by gm from now on) and lay out the regions. */
static int gm_setup(struct guest_mem *gm, int fd, uint64_t ram_size, bool private_map)
{
	void *base = gm_map_aligned(fd, ram_size, private_map);

	if (base == MAP_FAILED)
		return -errno;
	/* Guest RAM is of no use in a core dump of the VMM and can be huge. */
	(void)madvise(base, ram_size, MADV_DONTDUMP);
	/*
	 * Transparent huge pages: the guest's first touch of a 2 MiB range then costs one nested
	 * page fault instead of 512, which is most of what a fresh guest's memory costs it. On a
	 * memfd (shmem) the kernel honours this only where the host allows it, i.e.
	 * /sys/kernel/mm/transparent_hugepage/shmem_enabled is "advise" (or "always",
	 * "within_size"); Debian's default "never" ignores it, and so does a kernel without THP.
	 */
	(void)madvise(base, ram_size, MADV_HUGEPAGE);

	gm->fd = fd;
	gm->private_map = private_map;
	gm->base = base;
	gm->ram_size = ram_size;
	uint64_t low = MIN(ram_size, LAYOUT_MMIO_HOLE);
	gm->region[0] = (struct gm_region){ .gpa = 0, .size = low, .hva = base, .fd_offset = 0 };
	gm->nr_regions = 1;
	if (ram_size > low) {
		gm->region[1] = (struct gm_region){ .gpa = LAYOUT_MMIO_HOLE_END,
						     .size = ram_size - low,
						     .hva = (uint8_t *)base + low,
						     .fd_offset = low };
		gm->nr_regions = 2;
	}
	return 0;
}

static int gm_check_size(uint64_t ram_size)
{
	if (ram_size == 0 || !IS_ALIGNED(ram_size, 4096ULL))
		return -EINVAL;
	/* RAM above 1 TiB would collide with nothing here, but nobody needs it yet. */
	if (ram_size > 1024 * GiB)
		return -E2BIG;
	return 0;
}

int gm_create(struct guest_mem *gm, uint64_t ram_size)
{
	int r;

	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
	gm->src_fd = -1;
	if ((r = gm_check_size(ram_size)) < 0)
		return r;

	int fd = memfd_create("vmm-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)ram_size) < 0)
		goto fail_errno;
	/* The size is part of the contract with KVM memslots and a restoring process. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		goto fail_errno;
	if ((r = gm_setup(gm, fd, ram_size, false)) < 0) {
		close(fd);
		return r;
	}
	return 0;

fail_errno:;
	int err = -errno;
	close(fd);
	return err;
}

static int gm_adopt_as(struct guest_mem *gm, int fd, uint64_t ram_size, bool private_map)
{
	struct stat st;
	int mine, r;

	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
	gm->src_fd = -1;
	if ((r = gm_check_size(ram_size)) < 0)
		return r;
	if (fstat(fd, &st) < 0)
		return -errno;
	/* Exactly the size asked for: a shorter file would SIGBUS on the guest's first touch. */
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != ram_size)
		return -EINVAL;
	mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (mine < 0)
		return -errno;
	if ((r = gm_setup(gm, mine, ram_size, private_map)) < 0) {
		close(mine);
		return r;
	}
	return 0;
}

int gm_adopt(struct guest_mem *gm, int fd, uint64_t ram_size)
{
	return gm_adopt_as(gm, fd, ram_size, false);
}

int gm_adopt_private(struct guest_mem *gm, int fd, uint64_t ram_size)
{
	return gm_adopt_as(gm, fd, ram_size, true);
}

int gm_adopt_lazy(struct guest_mem *gm, int memfd, int src_fd, uint64_t ram_size,
		  const struct log_sink *log)
{
	struct stat st;
	int r;

	/* The file must be what it stands for: a shorter one would read as zeros. */
	if (fstat(src_fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != ram_size)
		return -EINVAL;
	if ((r = memfd >= 0 ? gm_adopt(gm, memfd, ram_size) : gm_create(gm, ram_size)) < 0)
		return r;
	if ((r = gm_lazy_start(gm, src_fd, log)) < 0)
		gm_destroy(gm);
	return r;
}

void gm_destroy(struct guest_mem *gm)
{
	/* The filler first: it writes into the mapping. */
	gm_lazy_stop(gm->lazy);
	if (gm->src_fd >= 0)
		close(gm->src_fd);
	free(gm->dirty);
	if (gm->base)
		munmap(gm->base, gm->ram_size);
	if (gm->fd >= 0)
		close(gm->fd);
	memset(gm, 0, sizeof(*gm));
	gm->fd = -1;
	gm->src_fd = -1;
}

int gm_track_dirty(struct guest_mem *gm)
{
	if (!gm->dirty && !(gm->dirty = calloc(gm_dirty_words(gm), sizeof(uint64_t))))
		return -ENOMEM;
	return 0;
}

void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len)
{
	if (!gm->dirty || !len)
		return;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->region[i];

		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		uint64_t first = (r->fd_offset + (gpa - r->gpa)) / 4096;
		uint64_t last = (r->fd_offset + MIN(gpa - r->gpa + len, r->size) - 1) / 4096;
		for (uint64_t p = first; p <= last; p++)
			__atomic_fetch_or(&gm->dirty[p / 64], 1ULL << (p % 64), __ATOMIC_RELAXED);
		return;
	}
}

void gm_dirty_take(const struct guest_mem *gm, uint64_t *out)
{
	if (!gm->dirty)
		return;
	for (size_t i = 0; i < gm_dirty_words(gm); i++)
		out[i] |= __atomic_exchange_n(&gm->dirty[i], 0, __ATOMIC_RELAXED);
}

void *gm_ptr(const struct guest_mem *gm, gpa_t gpa, uint64_t len)
{
	uint64_t end;

	if (__builtin_add_overflow(gpa.a, len, &end))
		return NULL;
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		const struct gm_region *r = &gm->region[i];
		if (gpa.a >= r->gpa && end <= r->gpa + r->size)
			return r->hva + (gpa.a - r->gpa);
	}
	return NULL;
}

int gm_read(const struct guest_mem *gm, void *dst, gpa_t gpa, uint64_t len)
{
	const void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(dst, p, len);
	return 0;
}

int gm_write(const struct guest_mem *gm, gpa_t gpa, const void *src, uint64_t len)
{
	void *p = gm_ptr(gm, gpa, len);
	if (!p)
		return -EFAULT;
	memcpy(p, src, len);
	return 0;
}

uint64_t gm_low_size(const struct guest_mem *gm)
{
	return gm->nr_regions ? gm->region[0].size : 0;
}

uint64_t gm_high_size(const struct guest_mem *gm)
{
	return gm->nr_regions > 1 ? gm->region[1].size : 0;
}

uint64_t gm_end(const struct guest_mem *gm)
{
	if (!gm->nr_regions)
		return 0;
	const struct gm_region *r = &gm->region[gm->nr_regions - 1];
	return r->gpa + r->size;
}
