// SPDX-License-Identifier: Apache-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/kvm.h"

/* Every capability the VMM relies on, with what it is for (shown when it is missing). */
static const struct {
	int cap;
	const char *name;
	const char *why;
} required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY", "guest RAM from our memfd" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP", "in-kernel PIC/IOAPIC/LAPIC" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2", "in-kernel PIT" },
	{ KVM_CAP_PIT_STATE2, "KVM_CAP_PIT_STATE2", "PIT state for snapshots" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID", "KVM_GET_SUPPORTED_CPUID" },
	{ KVM_CAP_SET_TSS_ADDR, "KVM_CAP_SET_TSS_ADDR", "real-mode support on Intel" },
	{ KVM_CAP_SET_IDENTITY_MAP_ADDR, "KVM_CAP_SET_IDENTITY_MAP_ADDR", "EPT identity map" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD", "queue notifications without exits" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD", "interrupts from I/O threads" },
	{ KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING", "GSI routing" },
	{ KVM_CAP_MP_STATE, "KVM_CAP_MP_STATE", "vCPU run state" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs without races" },
	{ KVM_CAP_VCPU_EVENTS, "KVM_CAP_VCPU_EVENTS", "pending events for snapshots" },
	{ KVM_CAP_ADJUST_CLOCK, "KVM_CAP_ADJUST_CLOCK", "kvmclock for snapshots" },
	{ KVM_CAP_TSC_DEADLINE_TIMER, "KVM_CAP_TSC_DEADLINE_TIMER", "the guest's LAPIC timer" },
	{ KVM_CAP_NR_VCPUS, "KVM_CAP_NR_VCPUS", "vCPU limits" },
};

static int check_errno(int r)
{
	return r < 0 ? -errno : r;
}

int kvm_sys_open(struct kvm_sys *kvm, const char *path, char *err, size_t errlen)
{
	int ret;

	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = open(path, O_RDWR | O_CLOEXEC);
	if (kvm->fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			snprintf(err, errlen, "%s: not present (no KVM on this host: load kvm_intel "
				 "or kvm_amd, or enable virtualization)", path);
		else if (ret == -EACCES || ret == -EPERM)
			snprintf(err, errlen, "%s: permission denied (add the user to the group "
				 "that owns it, usually 'kvm')", path);
		else
			snprintf(err, errlen, "%s: %s", path, strerror(-ret));
		return ret;
	}

	int version = ioctl(kvm->fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		snprintf(err, errlen, "%s: KVM API version %d, need %d", path, version,
			 KVM_API_VERSION);
		ret = -ENOTSUP;
		goto fail;
	}
	for (size_t i = 0; i < ARRAY_SIZE(required_caps); i++) {
		if (ioctl(kvm->fd, KVM_CHECK_EXTENSION, required_caps[i].cap) <= 0) {
			snprintf(err, errlen, "%s: missing %s (needed for %s)", path,
				 required_caps[i].name, required_caps[i].why);
			ret = -ENOTSUP;
			goto fail;
		}
	}

	int r = ioctl(kvm->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r <= 0) {
		ret = r < 0 ? -errno : -EINVAL;
		snprintf(err, errlen, "%s: KVM_GET_VCPU_MMAP_SIZE failed", path);
		goto fail;
	}
	kvm->run_size = (size_t)r;
	kvm->nr_vcpus = (unsigned int)ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	r = ioctl(kvm->fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	kvm->max_vcpus = r > 0 ? (unsigned int)r : kvm->nr_vcpus;

	/* Supported CPUID: grow the buffer until KVM stops saying E2BIG. */
	for (unsigned int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c) {
			ret = -ENOMEM;
			goto fail;
		}
		c->nent = n;
		ret = check_errno(ioctl(kvm->fd, KVM_GET_SUPPORTED_CPUID, c));
		if (ret == 0) {
			kvm->cpuid = c;
			break;
		}
		free(c);
		if (ret != -E2BIG) {
			snprintf(err, errlen, "%s: KVM_GET_SUPPORTED_CPUID: %s", path,
				 strerror(-ret));
			goto fail;
		}
	}
	if (!kvm->cpuid) {
		snprintf(err, errlen, "%s: KVM_GET_SUPPORTED_CPUID: too many entries", path);
		ret = -E2BIG;
		goto fail;
	}

	struct kvm_msr_list probe = { .nmsrs = 0 };
	ret = check_errno(ioctl(kvm->fd, KVM_GET_MSR_INDEX_LIST, &probe));
	if (ret < 0 && ret != -E2BIG) {
		snprintf(err, errlen, "%s: KVM_GET_MSR_INDEX_LIST: %s", path, strerror(-ret));
		goto fail;
	}
	kvm->msrs = calloc(1, sizeof(*kvm->msrs) + probe.nmsrs * sizeof(uint32_t));
	if (!kvm->msrs) {
		ret = -ENOMEM;
		goto fail;
	}
	kvm->msrs->nmsrs = probe.nmsrs;
	ret = check_errno(ioctl(kvm->fd, KVM_GET_MSR_INDEX_LIST, kvm->msrs));
	if (ret < 0) {
		snprintf(err, errlen, "%s: KVM_GET_MSR_INDEX_LIST: %s", path, strerror(-ret));
		goto fail;
	}
	return 0;

fail:
	kvm_sys_close(kvm);
	return ret;
}

void kvm_sys_close(struct kvm_sys *kvm)
{
	if (kvm->fd >= 0)
		close(kvm->fd);
	free(kvm->cpuid);
	free(kvm->msrs);
	memset(kvm, 0, sizeof(*kvm));
	kvm->fd = -1;
}

bool kvm_sys_has_msr(const struct kvm_sys *kvm, uint32_t index)
{
	for (uint32_t i = 0; kvm->msrs && i < kvm->msrs->nmsrs; i++)
		if (kvm->msrs->indices[i] == index)
			return true;
	return false;
}
