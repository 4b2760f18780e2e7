// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the API client's response parser (vmm/api/api_client.c,
 * api_reply_parse): what vmm hostupdate reads from each VM's socket.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/api_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_reply r;

	if (api_reply_parse((const char *)data, size, &r) == 0) {
		/* Whatever was accepted is whole: a status and a terminated body. */
		if (r.status < 100 || r.status > 999 || strlen(r.body) > API_CLIENT_BODY_MAX)
			abort();
		free(r.body);
	}
	return 0;
}
