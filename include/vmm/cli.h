/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vmm executable's command line (vmm/cli/cli.c): argv -> a configuration plus what the
 * front end itself does (serve the API socket, boot now or wait for InstanceStart).
 *
 *   vmm run --kernel PATH [OPTION...] [--api-sock PATH] [--id NAME]
 *   vmm [--api-sock PATH] [--config-file FILE] [--id NAME]   (Firecracker's flags)
 *   vmm restore STATE --mem MEM [--paused] [--api-sock PATH] [--id NAME]
 *   vmm restore --luo-session NAME [--paused] [--api-sock PATH] [--id NAME]
 *   vmm --help | vmm run --help | vmm --version
 */
#ifndef VMM_CLI_H
#define VMM_CLI_H

#include <stdbool.h>

#include "vmm/config.h"

enum cli_command { CLI_RUN, CLI_HELP, CLI_VERSION };

struct cli_opts {
	enum cli_command cmd;
	struct vmm_config cfg;
	char *api_sock;    /* NULL: no API socket */
	char *config_file; /* NULL: none */
	bool boot_now;     /* a kernel is configured: start at once (else wait for the API) */
	char *restore_state; /* vmm restore STATE --mem MEM: the snapshot to load */
	char *restore_mem;
	char *restore_luo;   /* vmm restore --luo-session NAME: the state and RAM from LUO */
	bool restore_paused; /* --paused: leave it paused (the API resumes it) */
	bool restore_track_dirty; /* --track-dirty-pages */
	int handover_fd;     /* --handover FD (hidden): a live update's new process; else -1 */
};

/*
 * Parse argv into o (config_init'ed inside). On a usage error returns -EINVAL and *err holds one
 * line (no newline, free it) naming what is wrong. Checks only what needs no resources; a
 * config file is only named here (main.c reads it: its errors are not usage errors).
 * *help_text gets the text for CLI_HELP (free it).
 */
int cli_parse(int argc, char **argv, struct cli_opts *o, char **err, char **help_text) WUR;
void cli_opts_free(struct cli_opts *o);

/*
 * One --disk value: PATH[,id=NAME][,ro][,root][,cache=none|writeback][,io=uring|aio|sync]
 * [,serial=ID][,poll=USEC], ",," being a literal comma. Added to cfg as disk number index
 * (its default id "diskN"). -EINVAL with *err (free it) naming the disk and the bad part.
 */
int cli_parse_disk(const char *spec, unsigned int index, struct vmm_config *cfg, char **err) WUR;
/* --net tap=NAME|fd=N[,mac=][,id=], the index-th (default id netN). */
int cli_parse_net(const char *spec, unsigned int index, struct vmm_config *cfg, char **err) WUR;
/* --vsock cid=N,uds=PATH */
int cli_parse_vsock(const char *spec, struct vmm_config *cfg, char **err) WUR;
/* --pmem PATH[,id=NAME][,ro][,root], the index-th (default id pmemN). */
int cli_parse_pmem(const char *spec, unsigned int index, struct vmm_config *cfg, char **err) WUR;
/* --rng[=bytes=SIZE[/MS][,ops=N[/MS]][,burst=SIZE]] (spec NULL or "": no limit). */
int cli_parse_rng(const char *spec, struct vmm_config *cfg, char **err) WUR;

#endif
