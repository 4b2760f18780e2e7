// SPDX-License-Identifier: Apache-2.0
/* vCPU threads: set up registers, CPUID and MSRs, then loop on KVM_RUN. They never touch glib. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "machine.h"
#include "vmm/thread.h"
#include "vmm/vcpu_exit.h"

/* The signal that makes a vCPU thread leave KVM_RUN (vmm.h documents it). */
#define VCPU_KICK_SIGNAL SIGRTMIN

#define MSR_IA32_SYSENTER_CS  0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE  0x1a0
#define MSR_MTRR_DEF_TYPE     0x2ff
#define MSR_STAR              0xc0000081
#define MSR_LSTAR             0xc0000082
#define MSR_CSTAR             0xc0000083
#define MSR_SYSCALL_MASK      0xc0000084
#define MSR_KERNEL_GS_BASE    0xc0000102

#define MISC_ENABLE_FAST_STRING 1ULL
#define MTRR_ENABLE             (1ULL << 11)
#define MTRR_TYPE_WB            6ULL

#define APIC_LVT0      0x350
#define APIC_LVT1      0x360
#define APIC_MODE_MASK (7u << 8)
#define APIC_MODE_NMI    (4u << 8)
#define APIC_MODE_EXTINT (7u << 8)

static int set_cpuid(struct vcpu *vcpu)
{
	struct machine *vm = vcpu->m;
	const struct kvm_cpuid2 *sup = vm->kvm.cpuid;
	size_t sz = sizeof(*sup) + sup->nent * sizeof(sup->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);

	if (!c)
		return -ENOMEM;
	memcpy(c, sup, sz);
	cpuid_shape(c->entries, c->nent, vcpu->index, vm->nr_vcpus, vm->cpuid_mask,
		    vm->nr_cpuid_mask);
	int r = ioctl(vcpu->fd, KVM_SET_CPUID2, c);
	int err = r < 0 ? -errno : 0;
	if (err)
		free(c);
	else
		vcpu->cpuid = c; /* a snapshot saves what the guest was given */
	return err;
}

/*
 * The MSR values firmware would leave: MTRRs on with write-back default (otherwise Linux treats
 * all RAM as uncached), fast strings, and a clean SYSCALL/SYSENTER state. Only MSRs that KVM
 * lists are set, one at a time, so that one KVM cannot make the boot fail for a cosmetic MSR.
 */
static void set_msrs(struct vcpu *vcpu)
{
	static const struct {
		uint32_t index;
		uint64_t value;
	} init[] = {
		{ MSR_IA32_SYSENTER_CS, 0 },    { MSR_IA32_SYSENTER_ESP, 0 },
		{ MSR_IA32_SYSENTER_EIP, 0 },   { MSR_STAR, 0 },
		{ MSR_LSTAR, 0 },               { MSR_CSTAR, 0 },
		{ MSR_SYSCALL_MASK, 0 },        { MSR_KERNEL_GS_BASE, 0 },
		{ MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING },
		{ MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WB },
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} one;

	for (size_t i = 0; i < ARRAY_SIZE(init); i++) {
		if (init[i].index != MSR_MTRR_DEF_TYPE &&
		    !kvm_sys_has_msr(&vcpu->m->kvm, init[i].index))
			continue;
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e.index = init[i].index;
		one.e.data = init[i].value;
		if (ioctl(vcpu->fd, KVM_SET_MSRS, &one) != 1)
			log_warn("cpu %u: KVM did not take MSR 0x%x", vcpu->index, init[i].index);
	}
}

/* LINT0 as ExtINT and LINT1 as NMI, as a PC's firmware leaves the local APIC (MP spec 3.6). */
static int set_lint(struct vcpu *vcpu)
{
	struct kvm_lapic_state lapic;

	if (ioctl(vcpu->fd, KVM_GET_LAPIC, &lapic) < 0)
		return -errno;
	uint32_t *lvt0 = (uint32_t *)&lapic.regs[APIC_LVT0];
	uint32_t *lvt1 = (uint32_t *)&lapic.regs[APIC_LVT1];
	*lvt0 = (*lvt0 & ~APIC_MODE_MASK) | APIC_MODE_EXTINT;
	*lvt1 = (*lvt1 & ~APIC_MODE_MASK) | APIC_MODE_NMI;
	if (ioctl(vcpu->fd, KVM_SET_LAPIC, &lapic) < 0)
		return -errno;
	return 0;
}

/* The boot CPU starts where the loader says; the others wait for INIT-SIPI in KVM. */
int vcpu_set_boot_regs(struct vcpu *vcpu, const struct boot_result *b)
{
	struct kvm_sregs sregs;
	struct kvm_fpu fpu;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	sregs.cs = b->sregs.cs;
	sregs.ds = b->sregs.ds;
	sregs.es = b->sregs.es;
	sregs.fs = b->sregs.fs;
	sregs.gs = b->sregs.gs;
	sregs.ss = b->sregs.ss;
	sregs.tr = b->sregs.tr;
	sregs.ldt = b->sregs.ldt;
	sregs.gdt = b->sregs.gdt;
	sregs.idt = b->sregs.idt;
	sregs.cr0 = b->sregs.cr0;
	sregs.cr3 = b->sregs.cr3;
	sregs.cr4 = b->sregs.cr4;
	sregs.efer = b->sregs.efer;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &b->regs) < 0)
		return -errno;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;      /* x87 default control word (FNINIT) */
	fpu.mxcsr = 0x1f80;   /* SSE default: all exceptions masked */
	if (ioctl(vcpu->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	return 0;
}

int vcpu_create(struct machine *vm, struct vcpu *vcpu, unsigned int index, char *err,
		size_t errlen)
{
	int ret;
	const char *step;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->m = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		ret = -errno;
		step = "KVM_CREATE_VCPU";
		goto fail;
	}
	vcpu->run = mmap(NULL, vm->kvm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		ret = -errno;
		step = "mmap of kvm_run";
		goto fail;
	}
	step = "KVM_SET_CPUID2";
	if ((ret = set_cpuid(vcpu)) < 0)
		goto fail;
	set_msrs(vcpu);
	step = "local APIC LINT setup";
	if ((ret = set_lint(vcpu)) < 0)
		goto fail;
	return 0;

fail:
	snprintf(err, errlen, "cpu %u: %s: %s", index, step, strerror(-ret));
	vcpu_destroy(vcpu);
	return ret;
}

void vcpu_destroy(struct vcpu *vcpu)
{
	free(vcpu->cpuid);
	vcpu->cpuid = NULL;
	if (vcpu->run)
		munmap(vcpu->run, vcpu->m->kvm.run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}

static void kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return EINTR */
}

static bool vm_is_stopping(struct machine *m)
{
	return __atomic_load_n(&m->stopping, __ATOMIC_ACQUIRE);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct machine *vm = vcpu->m;
	struct vcpu_exit ex;
	sigset_t set;

	/* Born with every signal blocked (thread.c): only the kick gets through. */
	sigemptyset(&set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);

	while (!vm_is_stopping(vm)) {
		if (__atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE)) {
			/*
			 * Complete the last exit before parking (an IN's data into RAX, an MMIO
			 * read's into its register): KVM does it on the next KVM_RUN, which
			 * immediate_exit makes return at once (api.rst, KVM_RUN). Only then is
			 * the vCPU's state whole for a snapshot.
			 */
			__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_RELEASE);
			(void)ioctl(vcpu->fd, KVM_RUN, 0); /* -EINTR, never enters the guest */
			vcpu->run->immediate_exit = 0;
			machine_vcpu_park(vm);
			continue;
		}
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				vcpu->run->immediate_exit = 0;
				continue;
			}
			char msg[128];
			snprintf(msg, sizeof(msg), "cpu %u: KVM_RUN: %s", vcpu->index,
				 strerror(errno));
			machine_request_stop(vm, VMM_STOP_FATAL, 0, msg);
			break;
		}
		vcpu_handle_exit(vcpu->run, vm->kvm.run_size, &vm->pio, &vm->mmio, &ex);
		if (ex.action == VCPU_STOP) {
			if (ex.dump_regs) {
				char msg[200];
				snprintf(msg, sizeof(msg), "cpu %u: %s", vcpu->index, ex.msg);
				machine_request_stop(vm, ex.reason, ex.code, msg);
				vcpu_dump_regs(vcpu);
			} else {
				machine_request_stop(vm, ex.reason, ex.code, "");
			}
			break;
		}
	}
	machine_vcpu_exited(vm);
	return NULL;
}

static void install_kick_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler; /* no SA_RESTART: KVM_RUN must return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

int vcpu_start(struct vcpu *vcpu)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	int r;

	/* Once per process: the handler is the same for every VM and never changes. */
	pthread_once(&once, install_kick_handler);
	r = thread_create(&vcpu->thread, THREAD_VCPU, vcpu->index, vcpu_thread, vcpu,
			  vcpu->m->log);
	if (r < 0)
		return r;
	vcpu->thread_started = true;
	return 0;
}

void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	/* immediate_exit covers the window between the stopping check and KVM_RUN. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_RELEASE);
	pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_join(struct vcpu *vcpu)
{
	if (!vcpu->thread_started)
		return;
	pthread_join(vcpu->thread, NULL);
	vcpu->thread_started = false;
}

void vcpu_dump_regs(struct vcpu *vcpu)
{
	struct kvm_regs r;
	struct kvm_sregs s;

	if (ioctl(vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu->fd, KVM_GET_SREGS, &s) < 0) {
		log_err("cpu %u: registers unavailable: %s", vcpu->index, strerror(errno));
		return;
	}
	log_err("cpu %u registers:", vcpu->index);
	log_err("  rip %016llx rflags %08llx rsp %016llx rbp %016llx", r.rip, r.rflags, r.rsp,
		r.rbp);
	log_err("  rax %016llx rbx %016llx rcx %016llx rdx %016llx", r.rax, r.rbx, r.rcx, r.rdx);
	log_err("  rsi %016llx rdi %016llx r8  %016llx r9  %016llx", r.rsi, r.rdi, r.r8, r.r9);
	log_err("  r10 %016llx r11 %016llx r12 %016llx r13 %016llx", r.r10, r.r11, r.r12, r.r13);
	log_err("  r14 %016llx r15 %016llx", r.r14, r.r15);
	log_err("  cr0 %016llx cr2 %016llx cr3 %016llx cr4 %016llx efer %llx", s.cr0, s.cr2,
		s.cr3, s.cr4, s.efer);
	log_err("  cs %04x base %llx limit %x l %u db %u  ss %04x  ds %04x", s.cs.selector,
		s.cs.base, s.cs.limit, s.cs.l, s.cs.db, s.ss.selector, s.ds.selector);
	log_err("  gdt %llx/%x idt %llx/%x apic_base %llx", s.gdt.base, s.gdt.limit, s.idt.base,
		s.idt.limit, s.apic_base);
}
