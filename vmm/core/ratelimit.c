// SPDX-License-Identifier: Apache-2.0
/* Token buckets (vmm/ratelimit.h). */
#include "vmm/ratelimit.h"

#define NS_PER_MS 1000000ULL

void tb_init(struct token_bucket *b, const struct vmm_token_bucket *cfg, uint64_t now_ns)
{
	*b = (struct token_bucket){0};
	if (!cfg || cfg->size == 0 || cfg->refill_time_ms == 0)
		return;
	b->size = cfg->size;
	/* Saturate: a refill time beyond ~584 years is as good as never. */
	b->refill_ns = cfg->refill_time_ms > UINT64_MAX / NS_PER_MS ? UINT64_MAX
								     : cfg->refill_time_ms * NS_PER_MS;
	b->budget = cfg->size;
	b->burst = cfg->one_time_burst;
	b->last_ns = now_ns;
}

/* What elapsed time earned goes to the debt first, then to the budget (up to size). */
static void tb_refill(struct token_bucket *b, uint64_t now_ns)
{
	if (now_ns <= b->last_ns)
		return;
	uint64_t elapsed = now_ns - b->last_ns;

	b->last_ns = now_ns;
	if (b->budget >= b->size && !b->debt) {
		b->frac = 0;
		return;
	}
	if (elapsed >= b->refill_ns && !b->debt) {
		b->budget = b->size;
		b->frac = 0;
		return;
	}
	/* elapsed and size are 64-bit, frac < refill_ns: acc fits 128 bits. */
	unsigned __int128 acc = (unsigned __int128)elapsed * b->size + b->frac;
	unsigned __int128 tokens = acc / b->refill_ns;

	b->frac = (uint64_t)(acc % b->refill_ns);
	if (tokens < b->debt) {
		b->debt -= (uint64_t)tokens;
		return;
	}
	tokens -= b->debt;
	b->debt = 0;
	if (tokens >= b->size - b->budget) {
		b->budget = b->size;
		b->frac = 0;
	} else {
		b->budget += (uint64_t)tokens;
	}
}

uint64_t tb_available(struct token_bucket *b, uint64_t now_ns)
{
	if (tb_unlimited(b))
		return UINT64_MAX;
	tb_refill(b, now_ns);
	return b->burst > UINT64_MAX - b->budget ? UINT64_MAX : b->budget + b->burst;
}

void tb_consume(struct token_bucket *b, uint64_t n)
{
	if (tb_unlimited(b))
		return;
	uint64_t from_burst = n < b->burst ? n : b->burst;

	b->burst -= from_burst;
	n -= from_burst;
	if (n <= b->budget) {
		b->budget -= n;
		return;
	}
	n -= b->budget;
	b->budget = 0;
	b->debt = n > UINT64_MAX - b->debt ? UINT64_MAX : b->debt + n;
}

uint64_t tb_wait_ns(struct token_bucket *b, uint64_t n, uint64_t now_ns)
{
	uint64_t have = tb_available(b, now_ns);

	if (n > b->size && !tb_unlimited(b))
		n = b->size;
	if (have >= n)
		return 0;
	/* Tokens missing (the debt first), at size per refill_ns, less the fraction already
	 * accrued; round up. */
	unsigned __int128 missing = (unsigned __int128)(n - have) + b->debt;

	if (missing > UINT64_MAX)
		return UINT64_MAX;
	unsigned __int128 need = missing * b->refill_ns;

	need = need > b->frac ? need - b->frac : 0;
	unsigned __int128 ns = (need + b->size - 1) / b->size;

	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

void rate_limiter_init(struct rate_limiter *rl, const struct vmm_rate_limiter *cfg,
		       uint64_t now_ns)
{
	tb_init(&rl->bytes, cfg ? &cfg->bandwidth : NULL, now_ns);
	tb_init(&rl->ops, cfg ? &cfg->ops : NULL, now_ns);
}

uint64_t rate_limiter_allow(struct rate_limiter *rl, uint64_t want, uint64_t now_ns,
			    uint64_t *wait_ns)
{
	uint64_t ops = tb_available(&rl->ops, now_ns);
	uint64_t bytes = tb_available(&rl->bytes, now_ns);

	*wait_ns = 0;
	if (ops == 0 || bytes == 0) {
		uint64_t a = tb_wait_ns(&rl->ops, 1, now_ns), b = tb_wait_ns(&rl->bytes, 1, now_ns);

		*wait_ns = a > b ? a : b;
		return 0;
	}
	return want < bytes ? want : bytes;
}

void rate_limiter_consume(struct rate_limiter *rl, uint64_t n)
{
	tb_consume(&rl->ops, 1);
	tb_consume(&rl->bytes, n);
}

bool tb_config_valid(const struct vmm_token_bucket *b)
{
	return (b->size == 0) == (b->refill_time_ms == 0) && (b->size != 0 || b->one_time_burst == 0);
}
