// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: vq_pop() over a ring whose every byte the fuzzer chooses (virtio 1.2 §2.7).
 * Invariants checked on top of ASan/UBSan: every iovec lies inside the guest RAM mapping and
 * adds up to the reported lengths, readable segments come first, a reported head is a valid
 * descriptor index, a broken ring yields nothing more, and the walk never exceeds iov_cap.
 *
 * Input: [0] log2 queue size, [1] flags (event idx, indirect, small iovec), [2..3] the first
 * avail index, then bytes copied over guest RAM from address 0: the avail ring at 0, the
 * descriptor table right after it, then the used ring, packed so that short inputs reach
 * descriptors; buffers and indirect tables may be anywhere (most of RAM is zero).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtqueue.h"

#define FUZZ_RAM (64 * 1024)
#define FUZZ_IOV 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

static struct guest_mem gm;

static void check_elem(const struct vq_elem *e, const struct virtqueue *vq)
{
	const uint8_t *lo = gm.base, *hi = gm.base + gm.ram_size;
	uint64_t out = 0, in = 0;

	CHECK(e->head < vq->size);
	CHECK(e->out_num + e->in_num <= e->iov_cap);
	for (unsigned int i = 0; i < e->out_num + e->in_num; i++) {
		const uint8_t *p = e->iov[i].iov_base;
		CHECK(e->iov[i].iov_len > 0);
		CHECK(p >= lo && p < hi && e->iov[i].iov_len <= (size_t)(hi - p));
		if (i < e->out_num)
			out += e->iov[i].iov_len;
		else
			in += e->iov[i].iov_len;
	}
	CHECK(out == e->out_len && in == e->in_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t scratch[FUZZ_RAM];
	struct iovec iov[FUZZ_IOV];
	struct virtqueue vq;

	if (size < 4)
		return 0;
	if (!gm.base && gm_create(&gm, FUZZ_RAM) != 0)
		abort();

	memset(gm.base, 0, FUZZ_RAM);
	memcpy(gm.base, data + 4, MIN(size - 4, (size_t)FUZZ_RAM));

	memset(&vq, 0, sizeof(vq));
	vq.gm = &gm;
	vq_reset(&vq);
	vq.size = (uint16_t)(1u << (data[0] % 8));
	vq.avail_gpa = 0;
	vq.desc_gpa = ALIGN_UP(vring_avail_bytes(vq.size), 16ULL);
	vq.used_gpa = vq.desc_gpa + vring_desc_bytes(vq.size);
	vq.ready = true;
	if (vq_enable(&vq, &gm, 128, data[1] & 1, data[1] & 2) != 0)
		abort(); /* the layout above always fits */
	vq.last_avail = (uint16_t)(data[2] | data[3] << 8);
	vq.used_idx = vq.last_avail;

	struct vq_elem e = {.iov = iov, .iov_cap = (data[1] & 4) ? 4 : FUZZ_IOV};
	for (unsigned int round = 0; round < 2u * vq.size + 2; round++) {
		uint16_t before = vq.last_avail;
		int ret = vq_pop(&vq, &e);

		if (ret == 0) {
			CHECK(vq.last_avail == before);
			break;
		}
		if (ret == -EIO) {
			CHECK(vq.broken && vq.last_avail == before);
			CHECK(vq_pop(&vq, &e) == -EIO && !vq_has_avail(&vq));
			break;
		}
		CHECK(ret == 1 || ret == -EBADMSG);
		CHECK(vq.last_avail == (uint16_t)(before + 1));
		if (ret == 1) {
			check_elem(&e, &vq);
			/* Touch every byte the device was given, as a device would. */
			size_t n = iov_to_buf(iov, e.out_num, 0, scratch, sizeof(scratch));
			CHECK(n == MIN(e.out_len, (uint64_t)sizeof(scratch)));
			n = iov_from_buf(iov + e.out_num, e.in_num, 0, scratch,
					 MIN(e.in_len, (uint64_t)sizeof(scratch)));
			CHECK(n == MIN(e.in_len, (uint64_t)sizeof(scratch)));
			vq_push(&vq, e.head, (uint32_t)e.in_len);
		} else {
			CHECK(e.head < vq.size && e.out_num + e.in_num == 0);
			vq_push(&vq, e.head, 0);
		}
		(void)vq_should_notify(&vq);
		vq_set_notification(&vq, round & 1);
	}
	return 0;
}
