// SPDX-License-Identifier: Apache-2.0
/*
 * scenario count: a guest whose life must go on unbroken across snapshots, restores and live
 * updates. It counts, in guest RAM and in a register at once, prints "COUNT n" at every step,
 * and with t.ndev=1 also writes a sector of its virtio disk with n and reads it back each time,
 * so that a request lost, repeated or completed twice across a pause shows up (a timeout, a
 * wrong status, a wrong sector). The host checks that the printed sequence has no reset, gap
 * or repeat. Any disagreement: "MICRO FAIL count ..." and the failure status.
 *
 * With t.aps=1 and a second vCPU, an AP works throughout (a store loop, micro_ap_post) and
 * every step checks that it went on: an AP lost or left stopped across a pause shows up as
 * no progress over COUNT_AP_STEPS steps.
 *
 *   t.scenario=count t.cycles=N [t.ndev=1 t.mmio_base=... t.gsi_base=...] [t.aps=1]
 */
#include <stddef.h>
#include <stdint.h>

#include "micro.h"
#include "vblk.h"

#define COUNT_SECTORS 64
/* Steps an AP may go without progress (its vCPU thread can wait for a host CPU). */
#define COUNT_AP_STEPS 64

/* The count in RAM: a volatile global the compiler must load and store every step. */
static volatile uint32_t count_ram;
/* What the AP stores to, again and again. */
static volatile uint32_t count_ap_target;

static uint8_t count_buf[512] __attribute__((aligned(512)));

static void count_fill(uint32_t n, uint32_t sector)
{
	uint32_t *w = (uint32_t *)count_buf;

	for (uint32_t i = 0; i < 512 / 4; i++)
		w[i] = n * 0x9e3779b9u ^ sector ^ i;
}

/* One request, completed exactly once with status OK (else a failure line). */
static bool count_req(struct vdev *d, uint32_t type, uint32_t sector, uint32_t n)
{
	struct req q = mkreq(type, sector, count_buf, 512, type == 0 /* IN: device writes */, 1,
			     false, false);

	if (!req_run(d, &q))
		return fail("count", "step %u: request type %u: %s", n, type, q.err);
	if (q.status != 0)
		return fail("count", "step %u: request type %u: status %u", n, type, q.status);
	return true;
}

static bool count_io(struct vdev *d, uint32_t n)
{
	uint32_t sector = n % COUNT_SECTORS;
	const uint32_t *w = (const uint32_t *)count_buf;

	count_fill(n, sector);
	if (!count_req(d, 1 /* OUT */, sector, n))
		return false;
	for (uint32_t i = 0; i < 512; i++)
		count_buf[i] = 0;
	if (!count_req(d, 0 /* IN */, sector, n))
		return false;
	for (uint32_t i = 0; i < 512 / 4; i++) {
		if (w[i] != (n * 0x9e3779b9u ^ sector ^ i))
			return fail("count", "sector %u read back wrong at step %u", sector, n);
	}
	return true;
}

__attribute__((noreturn)) void scenario_count(uint64_t cycles)
{
	struct vdev *d = NULL;
	uint32_t reg = 0;

	if (param_or("t.ndev", 0) > 0) {
		const char *why;

		if (!check_discover())
			debug_exit(FAIL_EXIT_CODE);
		d = &devs[0];
		dev_setup(d, 0);
		if ((why = dev_init(d))) {
			fail("count", "disk: %s", why);
			debug_exit(FAIL_EXIT_CODE);
		}
	}
	uint32_t aps = param_or("t.aps", 0) ? micro_ap_workers() : 0, ap_seen = 0, ap_still = 0;
	if (param_or("t.aps", 0) && !aps) {
		fail("count", "t.aps=1 but no AP started");
		debug_exit(FAIL_EXIT_CODE);
	}
	if (aps)
		micro_ap_post(0, MICRO_AP_WRITE, (uintptr_t)&count_ap_target, 0, 1, 0, 0xffffffffu,
			      1000);
	uart_printf("READY aps=%u\n", aps);
	for (;;) {
		uint64_t t0 = rdtsc();

		while (rdtsc() - t0 < cycles)
			cpu_pause();
		count_ram = count_ram + 1;
		/* The register copy: kept in a register by the asm, not reloaded from RAM. */
		__asm__ volatile("add $1, %0" : "+r"(reg));
		if (reg != count_ram) {
			fail("count", "RAM says %u, the register %u", count_ram, reg);
			debug_exit(FAIL_EXIT_CODE);
		}
		if (d && !count_io(d, reg))
			debug_exit(FAIL_EXIT_CODE);
		if (aps) {
			uint32_t it = micro_ap_iters(0);

			ap_still = it == ap_seen ? ap_still + 1 : 0;
			ap_seen = it;
			if (ap_still >= COUNT_AP_STEPS || !micro_ap_busy(0)) {
				fail("count", "the AP stopped at step %u (%u iterations)", reg, it);
				debug_exit(FAIL_EXIT_CODE);
			}
		}
		uart_printf("COUNT %u\n", reg);
	}
}
