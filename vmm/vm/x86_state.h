/* SPDX-License-Identifier: Apache-2.0 */
/* x86 VM and vCPU state <-> the state tree (x86_state.c). */
#ifndef VMM_X86_STATE_H
#define VMM_X86_STATE_H

#include "machine.h"
#include "vmm/state.h"

/* /vm and /vcpus of a machine whose vCPUs are parked with their last exits completed. */
int x86_state_save(struct machine *m, struct state_writer *w, char *err, size_t errlen) WUR;
/* Into a fresh machine (vCPUs created, not started). */
int x86_state_load(struct machine *m, const struct state_reader *r, char *err,
		   size_t errlen) WUR;
/* /host: what the state is bound to (the CPU's vendor and features). */
void x86_host_save(struct machine *m, struct state_writer *w);
/* This host can run the state's guest: same CPU vendor, every feature the guest had. */
int x86_host_check(struct machine *m, const struct state_reader *r, char *err,
		   size_t errlen) WUR;
/*
 * With paging on, CR3 names the guest's top-level page table: outside its RAM the guest
 * cannot run one instruction. Checked on every vCPU a state is saved from (a live update
 * then stops before it hands over a guest that cannot run) and loaded into (a hostile or
 * broken state file). 0, or -EINVAL with "<who>: CR3 ... lies outside guest RAM" in err.
 */
int x86_cr3_check(const struct guest_mem *gm, const struct kvm_sregs *s, const char *who,
		  char *err, size_t errlen) WUR;
/* Tell the guest's kvmclock it was stopped (KVM_KVMCLOCK_CTRL). */
void x86_kvmclock_ctrl(struct machine *m);

#endif
