// SPDX-License-Identifier: Apache-2.0
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vmm/vcpu_exit.h"

const char *vcpu_exit_reason_name(uint32_t reason)
{
	static const char *const names[] = {
		[KVM_EXIT_UNKNOWN] = "UNKNOWN",
		[KVM_EXIT_EXCEPTION] = "EXCEPTION",
		[KVM_EXIT_IO] = "IO",
		[KVM_EXIT_HYPERCALL] = "HYPERCALL",
		[KVM_EXIT_DEBUG] = "DEBUG",
		[KVM_EXIT_HLT] = "HLT",
		[KVM_EXIT_MMIO] = "MMIO",
		[KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
		[KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
		[KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
		[KVM_EXIT_INTR] = "INTR",
		[KVM_EXIT_SET_TPR] = "SET_TPR",
		[KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
		[KVM_EXIT_NMI] = "NMI",
		[KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
		[KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
	};
	if (reason < ARRAY_SIZE(names) && names[reason])
		return names[reason];
	return "?";
}

static void stop(struct vcpu_exit *out, enum vmm_stop_reason reason, bool dump, const char *fmt, ...)
	PRINTF(4, 5);

static void stop(struct vcpu_exit *out, enum vmm_stop_reason reason, bool dump, const char *fmt, ...)
{
	va_list ap;

	out->action = VCPU_STOP;
	out->reason = reason;
	out->dump_regs = dump;
	va_start(ap, fmt);
	vsnprintf(out->msg, sizeof(out->msg), fmt, ap);
	va_end(ap);
}

static void handle_io(struct kvm_run *run, size_t run_size, struct bus *pio, struct vcpu_exit *out)
{
	uint32_t size = run->io.size;
	uint64_t total, end;

	/* The kernel fills these, but the bounds are cheap to check and the data lies in our mapping. */
	if ((size != 1 && size != 2 && size != 4) ||
	    __builtin_mul_overflow((uint64_t)size, (uint64_t)run->io.count, &total) ||
	    __builtin_add_overflow(run->io.data_offset, total, &end) || end > run_size) {
		stop(out, VMM_STOP_FATAL, true,
		     "KVM_EXIT_IO with a malformed data area (size %u count %u offset %llu)", size,
		     run->io.count, (unsigned long long)run->io.data_offset);
		return;
	}
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < run->io.count; i++, data += size)
		bus_access(pio, run->io.port, data, size, is_write);
}

void vcpu_handle_exit(struct kvm_run *run, size_t run_size, struct bus *pio, struct bus *mmio,
		      struct vcpu_exit *out)
{
	memset(out, 0, sizeof(*out));
	out->action = VCPU_CONTINUE;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_io(run, run_size, pio, out);
		return;
	case KVM_EXIT_MMIO:
		if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data)) {
			stop(out, VMM_STOP_FATAL, true, "KVM_EXIT_MMIO with length %u",
			     run->mmio.len);
			return;
		}
		bus_access(mmio, run->mmio.phys_addr, run->mmio.data, run->mmio.len,
			   run->mmio.is_write);
		return;
	case KVM_EXIT_INTR:
		/* A signal kicked us out of KVM_RUN; the caller checks whether to stop. */
	case KVM_EXIT_HLT:
		/* With the in-kernel LAPIC, HLT is handled by KVM; if it still exits, run again. */
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return;
	case KVM_EXIT_SHUTDOWN:
		/* A triple fault, or the guest asked the (absent) chipset to reset us this way. */
		stop(out, VMM_STOP_TRIPLE_FAULT, true, "guest triple fault (KVM_EXIT_SHUTDOWN)");
		return;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			stop(out, VMM_STOP_POWEROFF, false, "guest powered off");
			return;
		case KVM_SYSTEM_EVENT_RESET:
			stop(out, VMM_STOP_REBOOT, false, "guest reset");
			return;
		case KVM_SYSTEM_EVENT_CRASH:
			stop(out, VMM_STOP_PANIC, false, "guest crashed (KVM system event)");
			return;
		default:
			stop(out, VMM_STOP_FATAL, true, "KVM_EXIT_SYSTEM_EVENT of unknown type %u",
			     run->system_event.type);
			return;
		}
	case KVM_EXIT_FAIL_ENTRY:
		stop(out, VMM_STOP_FATAL, true,
		     "KVM_EXIT_FAIL_ENTRY: hardware entry failure reason 0x%llx on cpu %u",
		     (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
		     run->fail_entry.cpu);
		return;
	case KVM_EXIT_INTERNAL_ERROR: {
		char extra[64] = "";
		if (run->internal.ndata > 0)
			snprintf(extra, sizeof(extra), ", data[0] 0x%llx",
				 (unsigned long long)run->internal.data[0]);
		stop(out, VMM_STOP_FATAL, true, "KVM_EXIT_INTERNAL_ERROR: suberror %u%s%s",
		     run->internal.suberror,
		     run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? " (emulation failure)"
									   : "",
		     extra);
		return;
	}
	default:
		stop(out, VMM_STOP_FATAL, true, "unhandled KVM exit %u (%s)", run->exit_reason,
		     vcpu_exit_reason_name(run->exit_reason));
		return;
	}
}
