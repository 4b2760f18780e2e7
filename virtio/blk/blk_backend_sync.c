// SPDX-License-Identifier: Apache-2.0
/*
 * The synchronous engine: every request is done inside blk_backend_submit() on the calling
 * thread, then completed through the eventfd like any other engine's, so the device keeps
 * one completion path. For hosts where neither io_uring nor aio can be set up.
 */
#include "blk_backend_internal.h"

static int sync_open(struct blk_backend *b)
{
	(void)b;
	return 0;
}

static void sync_close(struct blk_backend *b)
{
	(void)b;
}

static int sync_submit(struct blk_backend *b, struct blk_req *req, const struct blk_io *io)
{
	blk_backend_complete(b, req, blk_io_do_sync(b, io));
	blk_backend_signal(b);
	return 0;
}

static void sync_kick(struct blk_backend *b)
{
	(void)b;
}

static unsigned int sync_poll(struct blk_backend *b, bool wait)
{
	(void)b;
	(void)wait;
	return 0; /* nothing is ever held: it completed in submit */
}

const struct blk_engine_ops blk_engine_sync_ops = {
	.open = sync_open,
	.close = sync_close,
	.submit = sync_submit,
	.kick = sync_kick,
	.poll = sync_poll,
};
