/* SPDX-License-Identifier: Apache-2.0 */
#ifndef VMM_CLI_H
#define VMM_CLI_H

#include "vmm/config.h"

enum cli_command { CLI_RUN, CLI_HELP, CLI_VERSION };

/*
 * Parse argv into cfg. On a usage error returns -EINVAL and *err holds one line (no newline,
 * g_free it) naming what is wrong. Checks only what needs no resources (syntax, ranges);
 * files and KVM limits are checked when they are opened. *help_text gets the text for
 * CLI_HELP (g_free it).
 */
int cli_parse(int argc, char **argv, enum cli_command *cmd, struct vmm_config *cfg, char **err,
	      char **help_text) WUR;
void cli_config_free(struct vmm_config *cfg);

/*
 * One --disk value: PATH[,ro][,cache=none|writeback][,io=uring|aio|sync][,serial=ID], ",," being a
 * literal comma. -EINVAL with *err (g_free it) naming the disk and the bad part.
 */
int cli_parse_disk(const char *spec, struct vmm_disk *d, char **err) WUR;

/* "256M", "4G", "1024K", "65536" (plain numbers are MiB, as QEMU's -m). */
int cli_parse_size(const char *s, uint64_t *out) WUR;

#endif
