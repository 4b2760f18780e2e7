/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest RAM. One memfd (MAP_SHARED) holds all of it so that a snapshot or a live update can
 * hand the same pages to another process. Above LAYOUT_MMIO_HOLE the rest of RAM continues at
 * 4 GiB. The only way from a guest physical address to a host pointer is gm_ptr() with a length.
 */
#ifndef VMM_GUEST_MEM_H
#define VMM_GUEST_MEM_H

#include <stdbool.h>
#include "vmm/compiler.h"

struct log_sink;
struct gm_lazy;

/* A guest physical address: a distinct type so that it cannot be mixed up with a host pointer. */
typedef struct {
	uint64_t a;
} gpa_t;

static inline gpa_t GPA(uint64_t a)
{
	return (gpa_t){ a };
}

#define GM_MAX_REGIONS 4

struct gm_region {
	uint64_t gpa;       /* guest physical start */
	uint64_t size;      /* bytes */
	uint8_t *hva;       /* host mapping */
	uint64_t fd_offset; /* offset of this region in the memfd */
};

struct guest_mem {
	struct gm_region region[GM_MAX_REGIONS];
	unsigned int nr_regions;
	uint64_t ram_size; /* total bytes of RAM */
	int fd;            /* memfd backing all regions, -1 if none */
	bool private_map;  /* fd is mapped copy-on-write (a restored snapshot's memory file) */
	uint8_t *base;     /* single mapping of the whole memfd */
	int src_fd;        /* lazy: the snapshot memory file the memfd's holes stand for, or -1 */
	struct gm_lazy *lazy;
	/* Pages the VMM wrote for the guest (a device's completions), one bit per page of the
	 * memfd, when dirty pages are tracked (gm_track_dirty); KVM tracks the guest's own. */
	uint64_t *dirty;
};

/* The host mapping starts on this boundary and is madvise(MADV_HUGEPAGE)d (gm_create). */
#define GM_HUGE_ALIGN (2 * MiB)

/*
 * Create guest RAM of ram_size bytes (page multiple, > 0) backed by a sealed-size memfd.
 * RAM above LAYOUT_MMIO_HOLE continues at 4 GiB. The mapping is GM_HUGE_ALIGN-aligned and
 * eligible for transparent huge pages where the host lets shmem have them.
 */
int gm_create(struct guest_mem *gm, uint64_t ram_size) WUR;
/*
 * The same over an existing memfd (a live update hands it over; its pages are the guest's RAM
 * as they are): fd is dup'ed and must be a file of exactly ram_size bytes.
 */
int gm_adopt(struct guest_mem *gm, int fd, uint64_t ram_size) WUR;
/*
 * Map a snapshot's memory file copy-on-write (MAP_PRIVATE): the guest sees its pages, its writes
 * stay in this process and the file is left as it is (so it can be restored again). Nothing is
 * read up front: pages come in as the guest touches them. gm->fd is the file's (dup'ed),
 * gm->private_map set.
 */
int gm_adopt_private(struct guest_mem *gm, int fd, uint64_t ram_size) WUR;
/*
 * Restored RAM that stays shareable (guest_mem_lazy.c): a memfd (memfd >= 0: one handed over,
 * dup'ed; else a new one) mapped shared, whose missing pages are filled from src_fd (a
 * snapshot's memory file, dup'ed, never written) when first touched, by a userfaultfd thread
 * ("uffd"). So nothing is read up front, the snapshot stays reusable, and the memfd can be
 * handed to a live update's new process with src_fd (a hole in the memfd means "the file's
 * page"). -EPERM/-ENOSYS/-EINVAL when userfaultfd is not available to this process (the
 * caller then maps the file copy-on-write: gm_adopt_private).
 */
int gm_adopt_lazy(struct guest_mem *gm, int memfd, int src_fd, uint64_t ram_size,
		  const struct log_sink *log) WUR;
/* Pages filled from src_fd so far (diagnostics, tests). */
uint64_t gm_lazy_filled(const struct guest_mem *gm);
/* guest_mem_lazy.c, for guest_mem.c: register gm's mapping and start filling from src_fd
 * (dup'ed into gm->src_fd); stop (gm_destroy does, before unmapping). */
int gm_lazy_start(struct guest_mem *gm, int src_fd, const struct log_sink *log) WUR;
void gm_lazy_stop(struct gm_lazy *l);
void gm_destroy(struct guest_mem *gm);

/*
 * Dirty-page tracking for diff snapshots: gm_track_dirty allocates the bitmap (all clear);
 * gm_mark_dirty sets the pages of [gpa, gpa+len) (any thread; nothing without a bitmap);
 * gm_dirty_take ORs the bitmap into out (ram_size / 4096 bits) and clears it.
 */
int gm_track_dirty(struct guest_mem *gm) WUR;
void gm_mark_dirty(const struct guest_mem *gm, uint64_t gpa, uint64_t len);
void gm_dirty_take(const struct guest_mem *gm, uint64_t *out);
/* 64-bit words of a bitmap of gm's pages. */
static inline size_t gm_dirty_words(const struct guest_mem *gm)
{
	return (size_t)((gm->ram_size / 4096 + 63) / 64);
}

/* Host pointer for [gpa, gpa+len) if the whole range lies inside one region, else NULL. */
void *gm_ptr(const struct guest_mem *gm, gpa_t gpa, uint64_t len);
/* Copy in or out; -EFAULT if any byte is outside guest RAM. */
int gm_read(const struct guest_mem *gm, void *dst, gpa_t gpa, uint64_t len) WUR;
int gm_write(const struct guest_mem *gm, gpa_t gpa, const void *src, uint64_t len) WUR;
/* Bytes of RAM below 4 GiB and above it. */
uint64_t gm_low_size(const struct guest_mem *gm);
uint64_t gm_high_size(const struct guest_mem *gm);
/* The last RAM address + 1 (for e820 and the guest's view). */
uint64_t gm_end(const struct guest_mem *gm);

#endif
