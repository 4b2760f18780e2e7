#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# kvmtrace.sh COMMAND...: run a case's command with the test host's KVM tracepoints on, to see
# how a guest died where vmm cannot look (a triple fault resets the vCPU before vmm sees it).
# For a case file: 'run sh @TOOLS@/kvmtrace.sh sh @TOOLS@/net-user-run.sh ...'. Prints the
# command's output, then:
#   KVMTRACE hist ...   exits by reason, interrupts injected by vector, exits to userspace by
#                       reason (tracefs hist triggers: counts over the whole command)
#   KVMTRACE ev ...     the last events kept: page faults taken during a guest page-table walk
#                       (exit info bit 33), exceptions KVM injected, shutdown exits (triple
#                       faults, with the event being delivered in intr_info)
# A walk that faults at a guest-physical address outside the guest's RAM, right before an
# injected #PF, means the guest's page tables or CR3 point outside its memory.
# Inside the test host only (root, tracefs); exits with the command's status.
t=/sys/kernel/tracing
[ -d $t/events/kvm ] || mount -t tracefs none $t 2>/dev/null
if [ ! -d $t/events/kvm ]; then
	echo "KVMTRACE no KVM tracepoints here"
	exec "$@"
fi
ev=$t/events/kvm
echo 0 >$t/tracing_on
echo >$t/trace
echo 1024 >$t/buffer_size_kb
echo 'error_code & 0x200000000' >$ev/kvm_page_fault/filter
echo 'exit_reason == 127' >$ev/kvm_exit/filter
for e in kvm_page_fault kvm_inj_exception kvm_exit; do echo 1 >$ev/$e/enable; done
hists="kvm_exit:exit_reason kvm_inj_virq:vector kvm_userspace_exit:reason"
for h in $hists; do echo "hist:keys=${h#*:}:sort=hitcount.descending" >$ev/${h%%:*}/trigger; done
echo 1 >$t/tracing_on
"$@"
st=$?
echo 0 >$t/tracing_on
for h in $hists; do
	grep -E '^\{' $ev/${h%%:*}/hist | sed "s/^/KVMTRACE hist ${h%%:*} /"
	echo "!hist:keys=${h#*:}:sort=hitcount.descending" >$ev/${h%%:*}/trigger
done
grep -v '^#' $t/trace | tail -n 40 | sed 's/^ */KVMTRACE ev /'
for e in kvm_page_fault kvm_inj_exception kvm_exit; do
	echo 0 >$ev/$e/enable
	echo 0 >$ev/$e/filter
done
echo >$t/trace
exit $st
