/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk request parsing (virtio 1.2 §5.2.6), internal to virtio_blk.c and its tests.
 * A pure function over a popped chain: it decides what the request is, checks it against the
 * device's limits and either settles it at once (a status) or describes one backend operation.
 * It never touches a backend, so cmocka drives it with a fake ring alone.
 */
#ifndef VMM_VIRTIO_BLK_REQ_H
#define VMM_VIRTIO_BLK_REQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "vmm/blk_backend.h"
#include "vmm/compiler.h"
#include "vmm/virtqueue.h"

/* §5.2.6: le32 type, le32 reserved, le64 sector, then data, then the status byte. */
#define VBLK_HDR_BYTES 16
/* §5.2.6: struct virtio_blk_discard_write_zeroes {le64 sector; le32 num_sectors; le32 flags} */
#define VBLK_DWZ_SEG_BYTES  16
#define VBLK_DWZ_FLAG_UNMAP 1U

/* What the device offers; the parser checks every request against it. */
struct vblk_limits {
	uint64_t capacity; /* 512-byte sectors visible to the guest */
	uint64_t max_data; /* most data bytes in one IN or OUT request */
	bool read_only;
	bool discard;	   /* VIRTIO_BLK_F_DISCARD offered */
	bool write_zeroes; /* VIRTIO_BLK_F_WRITE_ZEROES offered */
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg; /* 0 or 1: one struct blk_req per request */
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	const uint8_t *id; /* VIRTIO_BLK_ID_BYTES, NUL padded */
};

enum vblk_action {
	VBLK_DONE,   /* settled: write status, return used_len */
	VBLK_SUBMIT, /* one backend operation: op, offset, len, data[0..data_cnt) */
};

struct vblk_parsed {
	uint32_t type;
	uint64_t sector;
	enum vblk_action action;
	uint8_t status;	     /* VBLK_DONE: VIRTIO_BLK_S_* */
	uint32_t used_len;   /* VBLK_DONE: bytes written into the writable part, status included;
			      * VBLK_SUBMIT: the same if the operation succeeds */
	uint64_t status_off; /* offset of the status byte in the writable part (its last byte) */

	/* VBLK_SUBMIT */
	enum blk_op op;
	uint64_t offset;       /* bytes */
	uint64_t len;	       /* bytes */
	unsigned int data_cnt; /* READ/WRITE: entries of the data iovec */
	bool unmap;	       /* WRITE_ZEROES */
};

/*
 * Parse the chain in elem. data (data_cap entries, at least elem->iov_cap) receives the data
 * buffers of an IN or OUT request, trimmed of the header and the status byte. GET_ID writes the
 * ID into the chain's writable part here. Returns 0 with *p filled, or -EBADMSG when the chain
 * cannot even carry a status (no 16-byte header in its readable part, or no writable byte):
 * the caller completes it with used length 0.
 */
int vblk_req_parse(const struct vq_elem *elem, const struct vblk_limits *lim, struct iovec *data,
		   unsigned int data_cap, struct vblk_parsed *p) WUR;

#endif
