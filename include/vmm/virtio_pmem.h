/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-pmem (virtio 1.2 §5.19): a host file mapped into guest physical memory (the machine's
 * map_memory, above RAM), which the guest's virtio_pmem driver exposes as /dev/pmemN with
 * struct pages, so that a file system on it mounts with -o dax and the guest reads and writes
 * the host's page cache directly. Its config space says where (start, size); its one request
 * queue carries flushes, which fdatasync(2) the file (asynchronously, through io_uring, so that
 * the I/O thread serves the other devices meanwhile; the guest's fsync waits for the host's). A
 * read-only device's memory slot is read-only and its flush is a no-op.
 */
#ifndef VMM_VIRTIO_PMEM_H
#define VMM_VIRTIO_PMEM_H

#include "vmm/event_loop.h"
#include "vmm/virtio.h"

#define VIRTIO_ID_PMEM 27
#define VIRTIO_PMEM_QUEUE_SIZE 64
#define VIRTIO_PMEM_REQ_TYPE_FLUSH 0
/* The file's size must be a multiple of this, and not 0. */
#define VIRTIO_PMEM_ALIGN (2ULL * 1024 * 1024)

struct virtio_pmem;

/*
 * fd: the file (not owned), mapped at guest physical start for size bytes. loop: the I/O
 * thread's, where a flush's end is seen; NULL (or no io_uring): flushes are synchronous.
 */
int virtio_pmem_create(struct virtio_pmem **out, const struct guest_mem *gm,
		       struct ev_loop *loop, int fd, uint64_t start, uint64_t size,
		       bool read_only) WUR;
struct virtio_device *virtio_pmem_device(struct virtio_pmem *p);
void virtio_pmem_destroy(struct virtio_pmem *p);
/* "flushes=N flush_errors=N malformed=N". */
void virtio_pmem_stats(struct virtio_pmem *p, char *buf, size_t len);

#endif
