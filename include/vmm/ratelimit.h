/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Token buckets for device rate limits (vmm/core/ratelimit.c), with the semantics of
 * Firecracker's RateLimiter: a bucket holds at most `size` tokens, refills `size` tokens per
 * `refill_time_ms` continuously, and starts with an extra `one_time_burst` that is spent first
 * and never refilled. A bucket of size 0 is unlimited. A limiter has one bucket for bytes
 * (bandwidth) and one for requests (ops); a request needs both. Pure: time comes from the
 * caller (CLOCK_MONOTONIC nanoseconds), so unit tests drive it.
 */
#ifndef VMM_RATELIMIT_H
#define VMM_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/vmm.h"

struct token_bucket {
	uint64_t size;       /* 0: unlimited */
	uint64_t refill_ns;
	uint64_t budget;     /* tokens now, at most size */
	uint64_t burst;      /* what is left of the one-time burst */
	uint64_t last_ns;    /* time of the last refill */
	uint64_t frac;       /* (elapsed ns * size) not yet a whole token, < refill_ns */
	uint64_t debt;       /* tokens taken beyond the budget: refills pay it back first */
};

struct rate_limiter {
	struct token_bucket bytes, ops;
};

/* A full bucket at now_ns. size 0 or refill_ms 0: unlimited. */
void tb_init(struct token_bucket *b, const struct vmm_token_bucket *cfg, uint64_t now_ns);
static inline bool tb_unlimited(const struct token_bucket *b)
{
	return b->size == 0;
}
/* Tokens available at now_ns (refills first); UINT64_MAX when unlimited. */
uint64_t tb_available(struct token_bucket *b, uint64_t now_ns);
/*
 * Take n tokens, the one-time burst first. More than tb_available() (a packet, which cannot be
 * split, larger than what is left) leaves the bucket in debt: it gives nothing until refills
 * paid it back, so the rate holds over time.
 */
void tb_consume(struct token_bucket *b, uint64_t n);
/* Nanoseconds from now_ns until min(n, size) tokens are available (0: now). */
uint64_t tb_wait_ns(struct token_bucket *b, uint64_t n, uint64_t now_ns);

void rate_limiter_init(struct rate_limiter *rl, const struct vmm_rate_limiter *cfg,
		       uint64_t now_ns);
/*
 * How many of `want` bytes one request may move now: 0 when either bucket is empty (then
 * *wait_ns says when to try again), else min(want, bytes available). Nothing is taken.
 */
uint64_t rate_limiter_allow(struct rate_limiter *rl, uint64_t want, uint64_t now_ns,
			    uint64_t *wait_ns);
/* One request that moved n bytes (more than allowed: see tb_consume). */
void rate_limiter_consume(struct rate_limiter *rl, uint64_t n);
/* A bucket configuration a user may ask for: both zero (no limit) or both non-zero. */
bool tb_config_valid(const struct vmm_token_bucket *b);

#endif
