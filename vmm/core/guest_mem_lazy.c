// SPDX-License-Identifier: Apache-2.0
/*
 * Restored guest RAM filled on first touch (guest_mem.h, gm_adopt_lazy).
 *
 * A restore maps a memfd (shared, so that a live update can hand it on) and registers the
 * mapping with userfaultfd in "missing" mode: the first access to a page the memfd does not
 * have yet, by a vCPU (through KVM), a device or the VMM itself, stops and is reported here;
 * this thread reads that page (and the rest of its cluster that the file has data for) from
 * the snapshot's memory file and installs it with UFFDIO_COPY, which also wakes the access.
 * The file is only read. A page once in the memfd is the guest's, whatever the file says: so
 * "the memfd's hole at offset x" always means "the file's page at x", in this process and in
 * the next one, which registers its own mapping the same way.
 *
 * This thread never touches the registered range itself (it would wait for itself).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vmm/guest_mem.h"
#include "vmm/log.h"
#include "vmm/thread.h"

#define LAZY_PAGE    4096u
#define LAZY_CLUSTER (64u * 1024) /* read-around, within the file's data */

struct gm_lazy {
	int uffd;
	int stop_efd;
	int src_fd;     /* gm->src_fd (the guest_mem's) */
	uint8_t *base;
	uint64_t size;
	pthread_t thread;
	bool started;
	uint64_t filled; /* pages, __atomic */
	uint8_t buf[LAZY_CLUSTER];
};

static int uffd_open(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int err = errno;

	if (fd >= 0)
		return fd;
	/*
	 * Faults taken in the kernel (KVM's own accesses) need the privilege that
	 * vm.unprivileged_userfaultfd=0 reserves to CAP_SYS_PTRACE; /dev/userfaultfd gives it
	 * to whoever may open the device.
	 */
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(dev);
		if (fd >= 0)
			return fd;
	}
	return -err;
}

/* Install len bytes of the file at off (zeros past its end). 0, -EEXIST, or -errno. */
static int fill_range(struct gm_lazy *l, uint64_t off, uint64_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = pread(l->src_fd, l->buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	memset(l->buf + got, 0, len - got);
	struct uffdio_copy c = { .dst = (uintptr_t)(l->base + off), .src = (uintptr_t)l->buf,
				 .len = len };
	if (ioctl(l->uffd, UFFDIO_COPY, &c) < 0)
		return c.copy == -EEXIST || errno == EEXIST ? -EEXIST : -errno;
	__atomic_add_fetch(&l->filled, len / LAZY_PAGE, __ATOMIC_RELAXED);
	return 0;
}

static void on_fault(struct gm_lazy *l, uint64_t addr)
{
	uint64_t off = (addr - (uintptr_t)l->base) & ~(uint64_t)(LAZY_PAGE - 1);
	int r;

	if (off >= l->size)
		return;
	/* Read around within the file's data: a hole of the file stays one page at a time. */
	uint64_t start = off & ~(uint64_t)(LAZY_CLUSTER - 1);
	uint64_t end = MIN(start + LAZY_CLUSTER, l->size);
	off_t data = lseek(l->src_fd, (off_t)off, SEEK_DATA);
	if (data == (off_t)off) {
		off_t hole = lseek(l->src_fd, (off_t)off, SEEK_HOLE);
		off_t from = lseek(l->src_fd, (off_t)start, SEEK_DATA);

		if (hole > (off_t)off && (uint64_t)hole < end)
			end = (uint64_t)hole;
		if (from >= (off_t)start && from <= (off_t)off)
			start = (uint64_t)from & ~(uint64_t)(LAZY_PAGE - 1);
		else
			start = off;
		end = ALIGN_UP(end, (uint64_t)LAZY_PAGE);
		if (end - start > LAZY_PAGE && fill_range(l, start, end - start) == 0)
			return;
	}
	/* The one page (a neighbour was there already, or the file has a hole here). */
	r = fill_range(l, off, LAZY_PAGE);
	if (r == -EEXIST) {
		/* Filled meanwhile (another access to it): wake whoever still waits. */
		struct uffdio_range w = { .start = (uintptr_t)(l->base + off), .len = LAZY_PAGE };

		(void)ioctl(l->uffd, UFFDIO_WAKE, &w);
	} else if (r < 0) {
		log_err("guest RAM: cannot fill the page at 0x%llx from the snapshot: %s",
			(unsigned long long)off, strerror(-r));
	}
}

static void *lazy_thread(void *arg)
{
	struct gm_lazy *l = arg;
	struct uffd_msg msg[16];

	for (;;) {
		struct pollfd p[2] = { { .fd = l->uffd, .events = POLLIN },
				       { .fd = l->stop_efd, .events = POLLIN } };

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_err("guest RAM filler: poll: %s", strerror(errno));
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		ssize_t n = read(l->uffd, msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			log_err("guest RAM filler: read: %s", strerror(errno));
			return NULL;
		}
		for (size_t i = 0; i < (size_t)n / sizeof(msg[0]); i++) {
			if (msg[i].event == UFFD_EVENT_PAGEFAULT)
				on_fault(l, msg[i].arg.pagefault.address);
		}
	}
}

int gm_lazy_start(struct guest_mem *gm, int src_fd, const struct log_sink *log)
{
	struct gm_lazy *l = calloc(1, sizeof(*l));
	int r;

	if (!l)
		return -ENOMEM;
	l->uffd = l->stop_efd = -1;
	l->base = gm->base;
	l->size = gm->ram_size;
	if ((gm->src_fd = fcntl(src_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
		r = -errno;
		goto fail;
	}
	l->src_fd = gm->src_fd;
	if ((l->uffd = uffd_open()) < 0) {
		r = l->uffd;
		goto fail;
	}
	struct uffdio_api api = { .api = UFFD_API };
	if (ioctl(l->uffd, UFFDIO_API, &api) < 0) {
		r = -errno;
		goto fail;
	}
	if (!(api.features & UFFD_FEATURE_MISSING_SHMEM)) {
		r = -EOPNOTSUPP;
		goto fail;
	}
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)gm->base, .len = gm->ram_size },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	if (ioctl(l->uffd, UFFDIO_REGISTER, &reg) < 0) {
		r = -errno;
		goto fail;
	}
	if (!(reg.ioctls & (1ULL << _UFFDIO_COPY))) {
		r = -EOPNOTSUPP;
		goto fail;
	}
	if ((l->stop_efd = eventfd(0, EFD_CLOEXEC)) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = thread_create(&l->thread, THREAD_UFFD, 0, lazy_thread, l, log)) < 0)
		goto fail;
	l->started = true;
	gm->lazy = l;
	return 0;
fail:
	gm_lazy_stop(l);
	return r;
}

void gm_lazy_stop(struct gm_lazy *l)
{
	uint64_t one = 1;

	if (!l)
		return;
	if (l->started) {
		if (write(l->stop_efd, &one, sizeof(one)) < 0) {
			/* an eventfd write cannot fail here */
		}
		pthread_join(l->thread, NULL);
	}
	if (l->stop_efd >= 0)
		close(l->stop_efd);
	if (l->uffd >= 0)
		close(l->uffd);
	free(l);
}

uint64_t gm_lazy_filled(const struct guest_mem *gm)
{
	return gm->lazy ? __atomic_load_n(&gm->lazy->filled, __ATOMIC_RELAXED) : 0;
}
