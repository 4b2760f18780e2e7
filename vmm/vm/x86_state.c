// SPDX-License-Identifier: Apache-2.0
/*
 * x86 VM and vCPU state <-> the state tree (include/vmm/state.h), with every KVM state ioctl in
 * the order KVM wants (Documentation/virt/kvm/api.rst; DESIGN.md lists it):
 *
 *   save, with every vCPU parked outside KVM_RUN and its last exit completed:
 *     /vm      KVM_GET_PIT2, KVM_GET_CLOCK, KVM_GET_IRQCHIP (PIC master, slave, IOAPIC)
 *     /vcpus/cpu@N  the CPUID set (KVM_SET_CPUID2), MP_STATE, REGS, SREGS, XSAVE, XCRS, DEBUGREGS, LAPIC,
 *              TSC_KHZ, MSRS (KVM_GET_MSR_INDEX_LIST), VCPU_EVENTS last
 *   load, into a fresh VM with its vCPUs created:
 *     irqchips and PIT first; per vCPU CPUID, MP_STATE, REGS, SREGS, XSAVE, XCRS, DEBUGREGS,
 *     LAPIC, MSRs (TSC before TSC_DEADLINE), VCPU_EVENTS last; then the clock.
 *
 * The guest's clocks follow the host's across the gap: the saved TSC is advanced by the real
 * time that passed, at the vCPU's TSC rate, and kvmclock is set with KVM_CLOCK_REALTIME so that
 * KVM advances it too; KVMCLOCK_CTRL then tells the guest it was stopped (no soft lockups).
 * Every property read back is untrusted: its length must be exactly what the ioctl takes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "machine.h"
#include "vmm/state.h"
#include "x86_state.h"

#define MSR_IA32_TSC          0x10
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define KVM_XSAVE_LEGACY_SIZE 4096

struct saved_msr {
	uint32_t index;
	uint32_t pad;
	uint64_t data;
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- save ---- */

#define GET(fd, req, arg, what)                                                                    \
	do {                                                                                       \
		if (ioctl(fd, req, arg) < 0) {                                                     \
			r = -errno;                                                                \
			snprintf(err, errlen, "%s: %s", what, strerror(errno));                   \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

static int save_vm(struct machine *m, struct state_writer *w, char *err, size_t errlen)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
	struct kvm_irqchip chip;
	int node = state_node(w, 0, "vm"), r = 0;

	state_put_str(w, node, "compatible", "vmm,x86-vm-v1");
	GET(m->vm_fd, KVM_GET_PIT2, &pit, "KVM_GET_PIT2");
	state_put(w, node, "KVM_GET_PIT2", &pit, sizeof(pit));
	memset(&clock, 0, sizeof(clock));
	GET(m->vm_fd, KVM_GET_CLOCK, &clock, "KVM_GET_CLOCK");
	state_put(w, node, "KVM_GET_CLOCK", &clock, sizeof(clock));
	/* When the clocks were read: what a later load advances them by. */
	state_put_u64(w, node, "realtime-ns", realtime_ns());
	static const struct {
		uint32_t id;
		const char *prop;
	} chips[] = {
		{ KVM_IRQCHIP_PIC_MASTER, "KVM_GET_IRQCHIP-pic-master" },
		{ KVM_IRQCHIP_PIC_SLAVE, "KVM_GET_IRQCHIP-pic-slave" },
		{ KVM_IRQCHIP_IOAPIC, "KVM_GET_IRQCHIP-ioapic" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(chips); i++) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = chips[i].id;
		GET(m->vm_fd, KVM_GET_IRQCHIP, &chip, chips[i].prop);
		state_put(w, node, chips[i].prop, &chip, sizeof(chip));
	}
out:
	return r;
}

/*
 * KVM_GET_MSRS or KVM_SET_MSRS over e[0..n), in order, in as few calls as KVM allows (a call
 * is several microseconds, in the blackout of a live update): a call does the entries up to
 * the first it refuses, which is marked in ok[] as not done, and the next call starts after it.
 */
#define MSR_IO_MAX 256 /* KVM's MAX_IO_MSRS */

static int msr_io(int fd, unsigned long req, struct kvm_msr_entry *e, unsigned int n, bool *ok)
{
	struct kvm_msrs *b = malloc(sizeof(*b) + MSR_IO_MAX * sizeof(*e));
	unsigned int done = 0;

	if (!b)
		return -ENOMEM;
	while (done < n) {
		unsigned int k = n - done < MSR_IO_MAX ? n - done : MSR_IO_MAX;
		int r;

		b->nmsrs = k;
		b->pad = 0;
		memcpy(b->entries, e + done, k * sizeof(*e));
		r = ioctl(fd, req, b);
		if (r < 0 || (unsigned int)r > k)
			r = 0;
		if (req == KVM_GET_MSRS)
			memcpy(e + done, b->entries, (size_t)r * sizeof(*e));
		for (int i = 0; i < r; i++)
			ok[done + i] = true;
		done += (unsigned int)r;
		if ((unsigned int)r < k) /* that one refused; the rest go on */
			ok[done++] = false;
	}
	free(b);
	return 0;
}

static int save_msrs(struct vcpu *v, struct state_writer *w, int node, char *err, size_t errlen)
{
	const struct kvm_msr_list *list = v->m->kvm.msrs;
	unsigned int n = list ? list->nmsrs : 0, got = 0;
	struct saved_msr *out = calloc(n ? n : 1, sizeof(*out));
	struct kvm_msr_entry *e = calloc(n ? n : 1, sizeof(*e));
	bool *ok = calloc(n ? n : 1, sizeof(*ok));

	for (unsigned int i = 0; out && e && i < n; i++)
		e[i].index = list->indices[i];
	/* An MSR KVM lists but cannot read here is left out, not fatal. */
	if (!out || !e || !ok || msr_io(v->fd, KVM_GET_MSRS, e, n, ok) < 0) {
		free(out);
		free(e);
		free(ok);
		snprintf(err, errlen, "cpu %u: out of memory", v->index);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (!ok[i])
			continue;
		out[got].index = e[i].index;
		out[got].data = e[i].data;
		got++;
	}
	state_put(w, node, "KVM_GET_MSRS", out, got * sizeof(*out));
	free(out);
	free(e);
	free(ok);
	return 0;
}

int x86_cr3_check(const struct guest_mem *gm, const struct kvm_sregs *s, const char *who,
		  char *err, size_t errlen)
{
	const uint64_t cr0_pg = 1ULL << 31, cr4_pae = 1ULL << 5, efer_lma = 1ULL << 10;
	uint64_t base, len;

	if (!(s->cr0 & cr0_pg))
		return 0;
	if ((s->cr4 & cr4_pae) && !(s->efer & efer_lma)) {
		/* 32-bit PAE: a 32-byte table of four entries, bits 31:5 (SDM 4.4.1). */
		base = s->cr3 & 0xffffffe0ULL;
		len = 32;
	} else {
		/* 4- or 5-level, or 32-bit: a 4 KiB table; the low 12 bits are flags or PCID. */
		base = s->cr3 & 0x000ffffffffff000ULL;
		len = 4096;
	}
	if (gm_ptr(gm, GPA(base), len))
		return 0;
	snprintf(err, errlen, "%s: CR3 %#llx lies outside guest RAM (paging is on)", who,
		 (unsigned long long)s->cr3);
	return -EINVAL;
}

static int save_vcpu(struct vcpu *v, struct state_writer *w, int parent, char *err, size_t errlen)
{
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xsave = NULL;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	char name[32];
	int node, r = 0;
	long tsc_khz;

	snprintf(name, sizeof(name), "cpu@%u", v->index);
	node = state_node(w, parent, name);
	state_put_str(w, node, "compatible", "vmm,x86-vcpu-v1");
	/*
	 * The CPUID the guest was given (shaped for it, masked), as it was set: restored as is.
	 * Not KVM_GET_CPUID2, which reports bits of KVM's own beside it on some hosts.
	 */
	if (!v->cpuid) {
		r = -EINVAL;
		snprintf(err, errlen, "no CPUID was set");
		goto out;
	}
	state_put(w, node, "KVM_SET_CPUID2", v->cpuid->entries,
		  v->cpuid->nent * sizeof(v->cpuid->entries[0]));
	GET(v->fd, KVM_GET_MP_STATE, &mp, "KVM_GET_MP_STATE");
	state_put(w, node, "KVM_GET_MP_STATE", &mp, sizeof(mp));
	GET(v->fd, KVM_GET_REGS, &regs, "KVM_GET_REGS");
	state_put(w, node, "KVM_GET_REGS", &regs, sizeof(regs));
	GET(v->fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	snprintf(name, sizeof(name), "cpu %u", v->index);
	if ((r = x86_cr3_check(&v->m->gm, &sregs, name, err, errlen)) < 0)
		goto out;
	state_put(w, node, "KVM_GET_SREGS", &sregs, sizeof(sregs));
	xsave = calloc(1, KVM_XSAVE_LEGACY_SIZE);
	if (!xsave) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	GET(v->fd, KVM_GET_XSAVE, xsave, "KVM_GET_XSAVE");
	state_put(w, node, "KVM_GET_XSAVE", xsave, KVM_XSAVE_LEGACY_SIZE);
	if (ioctl(v->m->kvm.fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0) {
		GET(v->fd, KVM_GET_XCRS, &xcrs, "KVM_GET_XCRS");
		state_put(w, node, "KVM_GET_XCRS", &xcrs, sizeof(xcrs));
	}
	GET(v->fd, KVM_GET_DEBUGREGS, &dregs, "KVM_GET_DEBUGREGS");
	state_put(w, node, "KVM_GET_DEBUGREGS", &dregs, sizeof(dregs));
	GET(v->fd, KVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC");
	state_put(w, node, "KVM_GET_LAPIC", &lapic, sizeof(lapic));
	tsc_khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (tsc_khz > 0)
		state_put_u32(w, node, "KVM_GET_TSC_KHZ", (uint32_t)tsc_khz);
	if ((r = save_msrs(v, w, node, err, errlen)) < 0)
		goto out;
	/* The TSC as KVM keeps it, an offset from the host's: see load_tsc_offsets. */
	uint64_t ofs;
	struct kvm_device_attr a = { .group = KVM_VCPU_TSC_CTRL, .attr = KVM_VCPU_TSC_OFFSET,
				     .addr = (uint64_t)(uintptr_t)&ofs };
	if (ioctl(v->fd, KVM_GET_DEVICE_ATTR, &a) == 0)
		state_put_u64(w, node, "KVM_VCPU_TSC_OFFSET", ofs);
	/* Last: the events (a pending exception, an NMI, the interrupt shadow) are as of now. */
	GET(v->fd, KVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS");
	state_put(w, node, "KVM_GET_VCPU_EVENTS", &events, sizeof(events));
out:
	free(xsave);
	if (r < 0 && !strstr(err, "cpu ")) {
		char tmp[VMM_ERROR_LEN];

		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "cpu %u: %.200s", v->index, tmp);
	}
	return r;
}

int x86_state_save(struct machine *m, struct state_writer *w, char *err, size_t errlen)
{
	int vcpus, r;

	if ((r = save_vm(m, w, err, errlen)) < 0)
		return r;
	vcpus = state_node(w, 0, "vcpus");
	for (unsigned int i = 0; i < m->nr_vcpus; i++) {
		if ((r = save_vcpu(&m->vcpus[i], w, vcpus, err, errlen)) < 0)
			return r;
	}
	return 0;
}

/* ---- the host the state is bound to ---- */

static void cpu_vendor(const struct kvm_cpuid2 *c, char out[13])
{
	memset(out, 0, 13);
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function == 0) {
			memcpy(out, &e->ebx, 4);
			memcpy(out + 4, &e->edx, 4);
			memcpy(out + 8, &e->ecx, 4);
		}
	}
}

void x86_host_save(struct machine *m, struct state_writer *w)
{
	int node = state_node(w, 0, "host");
	char vendor[13];

	cpu_vendor(m->kvm.cpuid, vendor);
	state_put_str(w, node, "cpu-vendor", vendor);
	state_put(w, node, "KVM_GET_SUPPORTED_CPUID", m->kvm.cpuid->entries,
		  m->kvm.cpuid->nent * sizeof(m->kvm.cpuid->entries[0]));
}

static const struct kvm_cpuid_entry2 *find_entry(const struct kvm_cpuid_entry2 *e, size_t n,
						 uint32_t leaf, uint32_t sub)
{
	for (size_t i = 0; i < n; i++) {
		if (e[i].function == leaf &&
		    (!(e[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e[i].index == sub))
			return &e[i];
	}
	return NULL;
}

static uint32_t reg_of(const struct kvm_cpuid_entry2 *e, int reg)
{
	switch (reg) {
	case 0: return e->eax;
	case 1: return e->ebx;
	case 2: return e->ecx;
	default: return e->edx;
	}
}

int x86_host_check(struct machine *m, const struct state_reader *r, char *err, size_t errlen)
{
	static const struct {
		uint32_t leaf, sub;
		int reg;
		const char *name;
	} checked[] = {
		{ 1, 0, 2, "leaf 1 ECX" },	  { 1, 0, 3, "leaf 1 EDX" },
		{ 7, 0, 1, "leaf 7 EBX" },	  { 7, 0, 2, "leaf 7 ECX" },
		{ 7, 0, 3, "leaf 7 EDX" },	  { 0xd, 1, 0, "leaf 0xd.1 EAX" },
		{ 0x80000001, 0, 2, "leaf 0x80000001 ECX" },
		{ 0x80000001, 0, 3, "leaf 0x80000001 EDX" },
	};
	int host = state_find(r, "/host"), cpu0 = state_find(r, "/vcpus/cpu@0");
	const char *vendor = state_get_str(r, host, "cpu-vendor", 13);
	char mine[13];
	size_t len;
	const struct kvm_cpuid_entry2 *guest;

	cpu_vendor(m->kvm.cpuid, mine);
	if (!vendor) {
		snprintf(err, errlen, "the state names no host CPU");
		return -EINVAL;
	}
	if (strcmp(vendor, mine)) {
		snprintf(err, errlen, "host CPU: the state is from a %s, this host is a %s", vendor,
			 mine);
		return -EINVAL;
	}
	/*
	 * Every feature the guest was given must be one this host can give: what this VMM
	 * gives a vCPU here (KVM's supported set as cpuid.c shapes it, which adds bits of its own
	 * such as HTT for SMP guests), the vCPUs being created by now.
	 */
	const struct kvm_cpuid2 *can = m->nr_vcpus && m->vcpus[0].cpuid ? m->vcpus[0].cpuid
									 : m->kvm.cpuid;
	guest = state_get_ptr(r, cpu0, "KVM_SET_CPUID2", &len);
	if (!guest || len % sizeof(*guest)) {
		snprintf(err, errlen, "cpu 0: no CPUID in the state");
		return -EINVAL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(checked); i++) {
		const struct kvm_cpuid_entry2 *g =
			find_entry(guest, len / sizeof(*guest), checked[i].leaf, checked[i].sub);
		const struct kvm_cpuid_entry2 *h =
			find_entry(can->entries, can->nent, checked[i].leaf, checked[i].sub);
		uint32_t missing;

		if (!g)
			continue;
		missing = reg_of(g, checked[i].reg) & ~(h ? reg_of(h, checked[i].reg) : 0);
		/* The hypervisor bit and x2APIC are KVM's own to give, whatever the host. */
		if (checked[i].leaf == 1 && checked[i].reg == 2)
			missing &= ~((1u << 31) | (1u << 21));
		if (missing) {
			snprintf(err, errlen, "host CPU: lacks features the guest was given (%s bits "
				 "0x%08x)", checked[i].name, missing);
			return -EINVAL;
		}
	}
	return 0;
}

/* ---- load ---- */

#define SET(fd, req, arg, what)                                                                    \
	do {                                                                                       \
		if (ioctl(fd, req, arg) < 0) {                                                     \
			r = -errno;                                                                \
			snprintf(err, errlen, "cpu %u: %s: %s", v->index, what, strerror(errno));  \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

/* A property of exactly len bytes, or a message naming it. */
static int need(const struct state_reader *r, int node, const char *prop, void *out, size_t len,
		const char *who, char *err, size_t errlen)
{
	int e = state_get(r, node, prop, out, len);

	if (e == -ENOENT)
		snprintf(err, errlen, "%s: %s missing from the state", who, prop);
	else if (e < 0)
		snprintf(err, errlen, "%s: %s has the wrong length", who, prop);
	return e;
}

static int load_vm_chips(struct machine *m, const struct state_reader *r, int node, char *err,
			 size_t errlen)
{
	static const struct {
		uint32_t id;
		const char *prop;
	} chips[] = {
		{ KVM_IRQCHIP_PIC_MASTER, "KVM_GET_IRQCHIP-pic-master" },
		{ KVM_IRQCHIP_PIC_SLAVE, "KVM_GET_IRQCHIP-pic-slave" },
		{ KVM_IRQCHIP_IOAPIC, "KVM_GET_IRQCHIP-ioapic" },
	};
	struct kvm_pit_state2 pit;
	struct kvm_irqchip chip;
	int e;

	for (size_t i = 0; i < ARRAY_SIZE(chips); i++) {
		if ((e = need(r, node, chips[i].prop, &chip, sizeof(chip), "vm", err, errlen)) < 0)
			return e;
		if (chip.chip_id != chips[i].id) {
			snprintf(err, errlen, "vm: %s is for another chip", chips[i].prop);
			return -EINVAL;
		}
		if (ioctl(m->vm_fd, KVM_SET_IRQCHIP, &chip) < 0) {
			snprintf(err, errlen, "vm: KVM_SET_IRQCHIP: %s", strerror(errno));
			return -errno;
		}
	}
	if ((e = need(r, node, "KVM_GET_PIT2", &pit, sizeof(pit), "vm", err, errlen)) < 0)
		return e;
	if (ioctl(m->vm_fd, KVM_SET_PIT2, &pit) < 0) {
		snprintf(err, errlen, "vm: KVM_SET_PIT2: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int load_clock(struct machine *m, const struct state_reader *r, int node, char *err,
		      size_t errlen)
{
	struct kvm_clock_data clock, set;
	uint64_t then;
	int e, caps;

	if ((e = need(r, node, "KVM_GET_CLOCK", &clock, sizeof(clock), "vm", err, errlen)) < 0 ||
	    (e = state_get_u64(r, node, "realtime-ns", &then)) < 0) {
		if (e == -ENOENT || e == -EINVAL)
			snprintf(err, errlen, "vm: the clock's time of saving is missing");
		return e;
	}
	memset(&set, 0, sizeof(set));
	set.clock = clock.clock;
	caps = ioctl(m->kvm.fd, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK);
	if (caps > 0 && (caps & KVM_CLOCK_REALTIME) && (clock.flags & KVM_CLOCK_REALTIME)) {
		/* KVM advances kvmclock by the real time since it was read. */
		set.flags = KVM_CLOCK_REALTIME;
		set.realtime = clock.realtime;
	} else {
		uint64_t now = realtime_ns();

		set.clock += now > then ? now - then : 0;
	}
	if (ioctl(m->vm_fd, KVM_SET_CLOCK, &set) < 0) {
		snprintf(err, errlen, "vm: KVM_SET_CLOCK: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

static int cmp_msr_order(const void *a, const void *b)
{
	/* TSC before TSC_DEADLINE (the deadline is compared with the TSC as it is set). */
	const struct saved_msr *x = a, *y = b;
	int kx = x->index == MSR_IA32_TSC ? 0 : x->index == MSR_IA32_TSC_DEADLINE ? 2 : 1;
	int ky = y->index == MSR_IA32_TSC ? 0 : y->index == MSR_IA32_TSC_DEADLINE ? 2 : 1;

	return kx - ky;
}

static int load_msrs(struct vcpu *v, const struct state_reader *r, int node, uint64_t elapsed_ns,
		     char *err, size_t errlen)
{
	size_t len;
	const struct saved_msr *saved = state_get_ptr(r, node, "KVM_GET_MSRS", &len);
	struct saved_msr *msrs;
	struct kvm_msr_entry *e;
	bool *ok;
	uint32_t khz = 0;
	size_t n;

	if (!saved || len % sizeof(*saved) || len / sizeof(*saved) > 4096) {
		snprintf(err, errlen, "cpu %u: KVM_GET_MSRS missing or of a wrong length", v->index);
		return -EINVAL;
	}
	n = len / sizeof(*saved);
	msrs = malloc(len ? len : 1);
	e = calloc(n ? n : 1, sizeof(*e));
	ok = calloc(n ? n : 1, sizeof(*ok));
	if (!msrs || !e || !ok) {
		free(msrs);
		free(e);
		free(ok);
		return -ENOMEM;
	}
	memcpy(msrs, saved, len);
	qsort(msrs, n, sizeof(*msrs), cmp_msr_order);
	if (state_get_u32(r, node, "KVM_GET_TSC_KHZ", &khz) < 0)
		khz = 0;
	for (size_t i = 0; i < n; i++) {
		e[i].index = msrs[i].index;
		e[i].data = msrs[i].data;
		/* The TSC goes on at its rate for the time the VM was away. */
		if (e[i].index == MSR_IA32_TSC && khz)
			e[i].data += elapsed_ns / 1000 * khz / 1000;
	}
	int rc = msr_io(v->fd, KVM_SET_MSRS, e, (unsigned int)n, ok);

	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (!ok[i])
			log_warn("cpu %u: KVM did not take MSR 0x%x back", v->index, e[i].index);
	}
	if (rc < 0)
		snprintf(err, errlen, "cpu %u: MSRs: %s", v->index, strerror(-rc));
	free(msrs);
	free(e);
	free(ok);
	return rc;
}

static int load_vcpu(struct vcpu *v, const struct state_reader *sr, uint64_t elapsed_ns, char *err,
		     size_t errlen)
{
	char path[32], who[16];
	int node, e;
	size_t len;
	const struct kvm_cpuid_entry2 *entries;
	struct kvm_cpuid2 *cpuid = NULL;
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave *xsave = NULL;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
	struct kvm_vcpu_events events;
	int r = 0;

	snprintf(path, sizeof(path), "/vcpus/cpu@%u", v->index);
	snprintf(who, sizeof(who), "cpu %u", v->index);
	node = state_find(sr, path);
	if (node < 0) {
		snprintf(err, errlen, "%s: missing from the state", who);
		return -EINVAL;
	}
	entries = state_get_ptr(sr, node, "KVM_SET_CPUID2", &len);
	if (!entries || !len || len % sizeof(*entries) || len / sizeof(*entries) > 1024) {
		snprintf(err, errlen, "%s: KVM_SET_CPUID2 missing or of a wrong length", who);
		return -EINVAL;
	}
	cpuid = malloc(sizeof(*cpuid) + len);
	xsave = calloc(1, KVM_XSAVE_LEGACY_SIZE);
	if (!cpuid || !xsave) {
		r = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	cpuid->nent = (uint32_t)(len / sizeof(*entries));
	cpuid->padding = 0;
	memcpy(cpuid->entries, entries, len);
	SET(v->fd, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
	/* What the guest has now, for the next snapshot. */
	free(v->cpuid);
	v->cpuid = cpuid;
	cpuid = NULL;
	if ((e = need(sr, node, "KVM_GET_MP_STATE", &mp, sizeof(mp), who, err, errlen)) < 0 ||
	    (e = need(sr, node, "KVM_GET_REGS", &regs, sizeof(regs), who, err, errlen)) < 0 ||
	    (e = need(sr, node, "KVM_GET_SREGS", &sregs, sizeof(sregs), who, err, errlen)) < 0 ||
	    (e = need(sr, node, "KVM_GET_XSAVE", xsave, KVM_XSAVE_LEGACY_SIZE, who, err,
		      errlen)) < 0 ||
	    (e = need(sr, node, "KVM_GET_DEBUGREGS", &dregs, sizeof(dregs), who, err, errlen)) < 0 ||
	    (e = need(sr, node, "KVM_GET_LAPIC", &lapic, sizeof(lapic), who, err, errlen)) < 0 ||
	    (e = need(sr, node, "KVM_GET_VCPU_EVENTS", &events, sizeof(events), who, err,
		      errlen)) < 0) {
		r = e;
		goto out;
	}
	if ((r = x86_cr3_check(&v->m->gm, &sregs, who, err, errlen)) < 0)
		goto out;
	SET(v->fd, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE");
	SET(v->fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
	SET(v->fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	SET(v->fd, KVM_SET_XSAVE, xsave, "KVM_SET_XSAVE");
	if (state_get(sr, node, "KVM_GET_XCRS", &xcrs, sizeof(xcrs)) == 0)
		SET(v->fd, KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS");
	SET(v->fd, KVM_SET_DEBUGREGS, &dregs, "KVM_SET_DEBUGREGS");
	SET(v->fd, KVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC");
	if ((r = load_msrs(v, sr, node, elapsed_ns, err, errlen)) < 0)
		goto out;
	/* Last, as saved last. */
	/*
	 * The pending NMI is restored only when flagged (older KVMs do not flag it on get). The
	 * SIPI vector is never reported, so it is not flagged: that would set vector 0.
	 */
	events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING;
	SET(v->fd, KVM_SET_VCPU_EVENTS, &events, "KVM_SET_VCPU_EVENTS");
out:
	free(cpuid);
	free(xsave);
	return r;
}

/*
 * The TSCs exactly, where both sides allow: api.rst's algorithm for KVM_VCPU_TSC_OFFSET. The
 * saved KVM_GET_CLOCK holds the host TSC and kvmclock of one instant; after KVM_SET_CLOCK has
 * advanced kvmclock by the real time that passed, each offset moves by that time at the
 * vCPU's rate less what the host TSC moved:
 *   offset = saved offset + (kvmclock now - kvmclock saved) * rate + (host TSC saved - now).
 * On the same host the two terms cancel and the guest's TSC keeps its distance to the host's
 * to the tick. load_msrs has already set a TSC advanced by the time between two realtime
 * readings (some microseconds off, more if the saving thread was preempted between the TSC
 * and the clock); it stays where this cannot be done: a state without the offsets, or a
 * host clock that is not the TSC (no KVM_CLOCK_HOST_TSC).
 */
static void load_tsc_offsets(struct machine *m, const struct state_reader *r, int vm_node)
{
	struct kvm_clock_data src, dst;

	memset(&dst, 0, sizeof(dst));
	if (state_get(r, vm_node, "KVM_GET_CLOCK", &src, sizeof(src)) < 0 ||
	    !(src.flags & KVM_CLOCK_HOST_TSC) || ioctl(m->vm_fd, KVM_GET_CLOCK, &dst) < 0 ||
	    !(dst.flags & KVM_CLOCK_HOST_TSC))
		return;
	for (unsigned int i = 0; i < m->nr_vcpus; i++) {
		char path[32];
		uint64_t ofs;
		uint32_t khz;
		int node;

		snprintf(path, sizeof(path), "/vcpus/cpu@%u", i);
		node = state_find(r, path);
		if (node < 0 || state_get_u64(r, node, "KVM_VCPU_TSC_OFFSET", &ofs) < 0 ||
		    state_get_u32(r, node, "KVM_GET_TSC_KHZ", &khz) < 0 || !khz)
			continue;
		__int128 ticks = (__int128)(int64_t)(dst.clock - src.clock) * khz / 1000000;
		ofs += (uint64_t)(int64_t)ticks + (src.host_tsc - dst.host_tsc);
		struct kvm_device_attr a = { .group = KVM_VCPU_TSC_CTRL,
					     .attr = KVM_VCPU_TSC_OFFSET,
					     .addr = (uint64_t)(uintptr_t)&ofs };
		if (ioctl(m->vcpus[i].fd, KVM_SET_DEVICE_ATTR, &a) < 0)
			log_warn("cpu %u: KVM_VCPU_TSC_OFFSET: %s", i, strerror(errno));
	}
}

int x86_state_load(struct machine *m, const struct state_reader *r, char *err, size_t errlen)
{
	int node = state_find(r, "/vm"), e;
	const char *compat = state_get_str(r, node, "compatible", 64);
	uint64_t then, now = realtime_ns();

	if (!compat || strcmp(compat, "vmm,x86-vm-v1")) {
		snprintf(err, errlen, "vm: missing, or not a vmm,x86-vm-v1 node");
		return -EINVAL;
	}
	if (state_get_u64(r, node, "realtime-ns", &then) < 0) {
		snprintf(err, errlen, "vm: the clock's time of saving is missing");
		return -EINVAL;
	}
	/* Interrupt controllers and the PIT before the vCPUs' LAPICs. */
	if ((e = load_vm_chips(m, r, node, err, errlen)) < 0)
		return e;
	for (unsigned int i = 0; i < m->nr_vcpus; i++) {
		if ((e = load_vcpu(&m->vcpus[i], r, now > then ? now - then : 0, err, errlen)) < 0)
			return e;
	}
	/* The clock last: KVM computes kvmclock from it and the TSCs just set. */
	if ((e = load_clock(m, r, node, err, errlen)) < 0)
		return e;
	load_tsc_offsets(m, r, node);
	return 0;
}

void x86_kvmclock_ctrl(struct machine *m)
{
	/* -EINVAL when the guest has not set up kvmclock: nothing to tell it then. */
	for (unsigned int i = 0; i < m->nr_vcpus; i++)
		(void)ioctl(m->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0);
}
