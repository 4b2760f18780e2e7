/* SPDX-License-Identifier: Apache-2.0 */
/* The configuration in the state, /config (vmm/state/config_state.c). */
#ifndef VMM_STATE_CONFIG_H
#define VMM_STATE_CONFIG_H

#include "vmm/config.h"
#include "vmm/state.h"

void config_state_save(const struct vmm_config *c, struct state_writer *w);
/* Into c (config_init'ed), through the setters: what they refuse is refused here too. */
int config_state_load(struct vmm_config *c, const struct state_reader *r, char *err,
		      size_t errlen) WUR;

#endif
