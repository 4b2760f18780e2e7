// SPDX-License-Identifier: Apache-2.0
/*
 * One KVM machine: created in this order and unwound in reverse on failure (machine_destroy
 * takes a part-built machine too): kernel and initrd files read, guest RAM, /dev/kvm and the
 * VM, the device table, vCPUs. The guest's content (tables, kernel) is a separate step so that
 * a restore can fill RAM its own way.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "machine.h"
#include "x86_state.h"
#include "vmm/acpi.h"
#include "vmm/devices.h"
#include "vmm/file.h"
#include "vmm/layout.h"
#include "vmm/serial.h"
#include "vmm/virtio_console.h"
#include "vmm/virtio_mmio.h"

/* Below the IOAPIC, inside the MMIO hole: three pages KVM needs on Intel for real mode. */
#define KVM_IDENTITY_MAP_ADDR 0xfeffc000ULL
#define KVM_TSS_ADDR          0xfeffd000ULL

#define MAX_KERNEL_SIZE (512 * MiB)
#define MAX_INITRD_SIZE (2 * GiB)

/* ---- the device table: the machine's devices, created in this order ---- */

static unsigned int count_debug_exit(const struct vmm_config *c)
{
	return c->debug_exit_port != 0;
}

static unsigned int count_disks(const struct vmm_config *c)
{
	return c->nr_disks;
}

static unsigned int count_virtio_console(const struct vmm_config *c)
{
	return c->console == VMM_CONSOLE_VIRTIO;
}

static unsigned int count_virtio_rng(const struct vmm_config *c)
{
	return c->rng;
}

static unsigned int count_pmems(const struct vmm_config *c)
{
	return c->nr_pmems;
}

static unsigned int count_nets(const struct vmm_config *c)
{
	return c->nr_nets;
}

static unsigned int count_vsock(const struct vmm_config *c)
{
	return c->vsock.set;
}

static const struct device_row machine_devices[] = {
	{ &serial_device_ops, NULL },
	{ &i8042_device_ops, NULL },
	{ &rtc_device_ops, NULL },
	{ &pvpanic_device_ops, NULL },
	{ &acpi_pm_device_ops, NULL },
	{ &debug_exit_device_ops, count_debug_exit },
	/* virtio-mmio slots in this order: disks (root first), the console, the entropy device,
	 * pmem (root first), network interfaces, vsock. */
	{ &virtio_blk_device_ops, count_disks },
	{ &virtio_console_device_ops, count_virtio_console },
	{ &virtio_rng_device_ops, count_virtio_rng },
	{ &virtio_pmem_device_ops, count_pmems },
	{ &virtio_net_device_ops, count_nets },
	{ &virtio_vsock_device_ops, count_vsock },
};

/* ---- what devices get from the machine ---- */

static void irq_cb(void *opaque, unsigned int gsi, int level)
{
	struct machine *m = opaque;
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(m->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		log_err("KVM_IRQ_LINE gsi %u: %s", gsi, strerror(errno));
}

static void stop_sink_cb(void *opaque, enum vmm_stop_reason reason, int code)
{
	machine_request_stop(opaque, reason, code, "");
}

static int route_ioeventfd(void *opaque, uint64_t addr, uint32_t len, uint64_t datamatch, int fd,
			   bool assign)
{
	struct machine *m = opaque;
	struct kvm_ioeventfd io = {
		.datamatch = datamatch,
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(m->vm_fd, KVM_IOEVENTFD, &io) < 0 ? -errno : 0;
}

static int route_irqfd(void *opaque, unsigned int gsi, int fd, bool assign)
{
	struct machine *m = opaque;
	struct kvm_irqfd irq = {
		.fd = (uint32_t)fd,
		.gsi = gsi,
		.flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN,
	};

	return ioctl(m->vm_fd, KVM_IRQFD, &irq) < 0 ? -errno : 0;
}

/* No virtio device, no I/O thread: a VM of legacy devices only starts faster and leaner. */
static struct ev_loop *io_loop_cb(void *opaque)
{
	struct machine *m = opaque;

	if (!m->io && ev_loop_create(&m->io, THREAD_IO) < 0)
		m->io = NULL;
	return m->io;
}

static int virtio_slot_cb(void *opaque, uint64_t *base, unsigned int *gsi)
{
	struct machine *m = opaque;

	if (m->next_virtio_slot >= LAYOUT_VIRTIO_MAX_DEVS)
		return -ENOSPC;
	*base = LAYOUT_VIRTIO_MMIO + (uint64_t)m->next_virtio_slot * VIRTIO_MMIO_SIZE;
	*gsi = layout_virtio_gsi(m->next_virtio_slot);
	m->next_virtio_slot++;
	return 0;
}

#define DEVMEM_ALIGN (1ULL * GiB)

static int map_memory_cb(void *opaque, void *hva, uint64_t size, bool read_only, uint64_t *gpa)
{
	struct machine *m = opaque;
	unsigned int i;

	for (i = 0; i < MACHINE_DEVMEM_MAX && m->devmem[i].size; i++)
		;
	if (i == MACHINE_DEVMEM_MAX)
		return -ENOSPC;
	if (!m->next_devmem_gpa) {
		/* Above RAM and the 32-bit hole, so never below 4 GiB. */
		uint64_t end = 4ULL * GiB;

		for (unsigned int r = 0; r < m->gm.nr_regions; r++) {
			if (m->gm.region[r].gpa + m->gm.region[r].size > end)
				end = m->gm.region[r].gpa + m->gm.region[r].size;
		}
		m->next_devmem_gpa = (end + DEVMEM_ALIGN - 1) & ~(DEVMEM_ALIGN - 1);
	}
	uint64_t at = m->next_devmem_gpa;
	struct kvm_userspace_memory_region mr = {
		.slot = GM_MAX_REGIONS + i,
		.guest_phys_addr = at,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
		.flags = read_only ? KVM_MEM_READONLY : 0,
	};
	if (ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
		return -errno;
	m->devmem[i].gpa = at;
	m->devmem[i].size = size;
	m->next_devmem_gpa = (at + size + DEVMEM_ALIGN - 1) & ~(DEVMEM_ALIGN - 1);
	*gpa = at;
	return 0;
}

static void unmap_memory_cb(void *opaque, uint64_t gpa)
{
	struct machine *m = opaque;

	for (unsigned int i = 0; i < MACHINE_DEVMEM_MAX; i++) {
		if (!m->devmem[i].size || m->devmem[i].gpa != gpa)
			continue;
		struct kvm_userspace_memory_region mr = {
			.slot = GM_MAX_REGIONS + i,
			.guest_phys_addr = gpa,
		};
		(void)ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr);
		m->devmem[i].size = 0;
		return;
	}
}

/* ---- creation ---- */

static int check_host_memory(const struct vmm_config *cfg, char *err, size_t errlen)
{
	struct sysinfo si;

	if (sysinfo(&si) == 0) {
		uint64_t host = (uint64_t)si.totalram * si.mem_unit;
		if (cfg->mem_size > host) {
			char a[32], b[32];
			snprintf(err, errlen, "%s: %s is more than this host's %s of RAM",
				 cfg->names.memory, loader_fmt_size(cfg->mem_size, a, sizeof(a)),
				 loader_fmt_size(host, b, sizeof(b)));
			return -ENOMEM;
		}
	}
	return 0;
}

static int setup_kvm_vm(struct machine *m, char *err, size_t errlen)
{
	const char *step;
	int ret;

	step = "KVM_CREATE_VM";
	m->vm_fd = ioctl(m->kvm.fd, KVM_CREATE_VM, 0);
	if (m->vm_fd < 0)
		goto fail;
	step = "KVM_SET_IDENTITY_MAP_ADDR";
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	if (ioctl(m->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		goto fail;
	step = "KVM_SET_TSS_ADDR";
	if (ioctl(m->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
		goto fail;
	/*
	 * RAM before the irqchip: the first memslot waits for an SRCU grace period, and on the
	 * KVM we measured that wait is 3-8 ms longer once KVM_CREATE_IRQCHIP has set up its
	 * routing (restore of a 4 GiB guest: ~16 ms to first instruction before, see
	 * bench/README.md).
	 */
	for (unsigned int i = 0; i < m->gm.nr_regions; i++) {
		const struct gm_region *r = &m->gm.region[i];
		struct kvm_userspace_memory_region mr = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->hva,
			.flags = m->cfg->track_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0,
		};
		step = "KVM_SET_USER_MEMORY_REGION";
		if (ioctl(m->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
			goto fail;
	}
	step = "KVM_CREATE_IRQCHIP";
	if (ioctl(m->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		goto fail;
	/* The dummy speaker makes KVM answer port 0x61 too (Linux reads it while calibrating). */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	step = "KVM_CREATE_PIT2";
	if (ioctl(m->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		goto fail;
	return 0;
fail:
	ret = -errno;
	snprintf(err, errlen, "%s: %s", step, strerror(errno));
	return ret;
}

/*
 * Guest RAM: a new memfd; a handed-over one; or a snapshot's memory file, brought in on first
 * touch into a memfd (lazily, through userfaultfd) or, where this process may not use
 * userfaultfd and nothing was handed over, mapped copy-on-write (then it cannot be handed to a
 * live update).
 */
/*
 * Guest RAM in the file at path (--memory SIZE,file=PATH), mapped shared: sized if empty,
 * else of exactly the RAM's size; locked (an OFD lock, so that it travels with the descriptor
 * to a live update's new process and goes when the last holder closes it), so that two VMMs
 * never run one guest's RAM.
 */
static int machine_ram_file(struct machine *m, const struct vmm_config *cfg, char *err,
			    size_t errlen)
{
	const char *path = cfg->mem_path;
	struct flock lk = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	int fd, r;

	if (!IS_ALIGNED(cfg->mem_size, 2 * MiB)) {
		snprintf(err, errlen, "memory file %s: the guest's RAM (%llu bytes) must be a "
			 "multiple of 2 MiB", path, (unsigned long long)cfg->mem_size);
		return -EINVAL;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "memory file %s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "memory file %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (fcntl(fd, F_OFD_SETLK, &lk) < 0) {
		r = -errno;
		snprintf(err, errlen, "memory file %s: %s", path,
			 r == -EAGAIN || r == -EACCES ? "in use by another VMM (it is locked)"
						      : strerror(-r));
		close(fd);
		return r;
	}
	if (st.st_size == 0 && ftruncate(fd, (off_t)cfg->mem_size) < 0) {
		r = -errno;
		snprintf(err, errlen, "memory file %s: cannot make it %llu bytes: %s", path,
			 (unsigned long long)cfg->mem_size, strerror(-r));
		close(fd);
		return r;
	}
	if (st.st_size != 0 && (uint64_t)st.st_size != cfg->mem_size) {
		snprintf(err, errlen, "memory file %s: %llu bytes, the guest's RAM is %llu (use a "
			 "file of that size, or an empty one)", path,
			 (unsigned long long)st.st_size, (unsigned long long)cfg->mem_size);
		close(fd);
		return -EINVAL;
	}
	r = gm_adopt(&m->gm, fd, cfg->mem_size);
	close(fd); /* gm holds its own descriptor of the same open file, and so the lock */
	if (r < 0)
		snprintf(err, errlen, "memory file %s: cannot be mapped shared: %s (it needs a "
			 "filesystem that maps files shared: DAX, tmpfs, hugetlbfs, ext4...)", path,
			 strerror(-r));
	return r;
}

static int machine_ram(struct machine *m, const struct vmm_config *cfg, char *err,
		       size_t errlen)
{
	int r;

	if (cfg->mem_source_fd >= 0) {
		r = gm_adopt_lazy(&m->gm, cfg->mem_fd, cfg->mem_source_fd, cfg->mem_size, m->log);
		if ((r == -EPERM || r == -ENOSYS || r == -EOPNOTSUPP) && cfg->mem_fd < 0) {
			log_info("guest RAM is mapped copy-on-write from the snapshot: userfaultfd "
				 "is not available to this process (%s); a live update will refuse",
				 strerror(-r));
			r = gm_adopt_private(&m->gm, cfg->mem_source_fd, cfg->mem_size);
		}
	} else if (cfg->mem_fd >= 0) {
		r = gm_adopt(&m->gm, cfg->mem_fd, cfg->mem_size);
	} else if (cfg->mem_path) {
		return machine_ram_file(m, cfg, err, errlen);
	} else {
		r = gm_create(&m->gm, cfg->mem_size);
	}
	if (r < 0)
		snprintf(err, errlen, "memory: cannot %s guest RAM: %s",
			 cfg->mem_source_fd >= 0 ? "map the snapshot's" : "allocate", strerror(-r));
	return r;
}

int machine_create(const struct vmm_config *cfg, const struct log_sink *log, unsigned int flags,
		   struct machine **out, char *err, size_t errlen)
{
	const char *kvm_path = cfg->kvm_path ? cfg->kvm_path : "/dev/kvm";
	char bad[64];
	int ret;

	struct machine *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	m->cfg = cfg;
	m->log = log;
	m->vm_fd = -1;
	m->kvm.fd = -1;
	/* Every fd field -1 before the first failure can come: machine_destroy closes them. */
	m->gm.fd = -1;
	m->gm.src_fd = -1;
	m->stop_efd = -1;
	m->nr_vcpus = cfg->nr_cpus;
	m->efd = (struct vm_eventfd_ops){ route_ioeventfd, route_irqfd, m };
	pthread_mutex_init(&m->run_lock, NULL);
	pthread_cond_init(&m->run_cond, NULL);
	pthread_cond_init(&m->park_cond, NULL);
	bus_init(&m->pio);
	bus_init(&m->mmio);

	ret = cpuid_mask_parse(cfg->cpuid_mask, m->cpuid_mask, CPUID_MASK_MAX,
			       &m->nr_cpuid_mask, bad, sizeof(bad));
	if (ret < 0) {
		if (ret == -E2BIG)
			snprintf(err, errlen, "cpuid mask: more than %d features",
				 CPUID_MASK_MAX);
		else
			snprintf(err, errlen, "cpuid mask: unknown CPU feature '%s'", bad);
		goto fail;
	}
	m->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->stop_efd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	/* The files first: a bad kernel or initrd is the commonest error, report it before KVM. */
	if (cfg->kernel && !(flags & MACHINE_NO_KERNEL) &&
	    (ret = file_read_all("kernel", cfg->kernel, MAX_KERNEL_SIZE, &m->kernel,
				 &m->kernel_len, err, errlen)) < 0)
		goto fail;
	if (cfg->initrd && !(flags & MACHINE_NO_KERNEL) &&
	    (ret = file_read_all("initrd", cfg->initrd, MAX_INITRD_SIZE, &m->initrd,
				 &m->initrd_len, err, errlen)) < 0)
		goto fail;
	if ((ret = check_host_memory(cfg, err, errlen)) < 0)
		goto fail;
	/* The devices' own files too (disk images missing, locked, of the wrong kind). */
	if ((ret = devtable_check(machine_devices, ARRAY_SIZE(machine_devices), cfg, err,
				  errlen)) < 0)
		goto fail;
	if ((ret = machine_ram(m, cfg, err, errlen)) < 0)
		goto fail;
	if (cfg->track_dirty && (ret = gm_track_dirty(&m->gm)) < 0) {
		snprintf(err, errlen, "memory: dirty-page bitmap: %s", strerror(-ret));
		goto fail;
	}
	if ((ret = kvm_sys_open(&m->kvm, kvm_path, err, errlen)) < 0)
		goto fail;
	if (cfg->nr_cpus > m->kvm.max_vcpus) {
		snprintf(err, errlen, "%s: %u is above this host's KVM limit of %u",
			 cfg->names.cpus, cfg->nr_cpus, m->kvm.max_vcpus);
		ret = -EINVAL;
		goto fail;
	}
	if ((ret = setup_kvm_vm(m, err, errlen)) < 0)
		goto fail;

	struct device_host host = {
		.cfg = cfg,
		.gm = &m->gm,
		.pio = &m->pio,
		.mmio = &m->mmio,
		.irq = { irq_cb, m },
		.stop = { stop_sink_cb, m },
		.efd = &m->efd,
		.io_loop = io_loop_cb,
		.virtio_slot = virtio_slot_cb,
		.map_memory = map_memory_cb,
		.unmap_memory = unmap_memory_cb,
		.opaque = m,
	};
	if ((ret = devtable_realize(&m->devs, machine_devices, ARRAY_SIZE(machine_devices), &host,
				    err, errlen)) < 0)
		goto fail;

	m->vcpus = calloc(m->nr_vcpus, sizeof(*m->vcpus));
	if (!m->vcpus) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned int i = 0; i < m->nr_vcpus; i++) {
		m->vcpus[i].fd = -1;
		if ((ret = vcpu_create(m, &m->vcpus[i], i, err, errlen)) < 0)
			goto fail;
	}
	*out = m;
	return 0;
fail:
	machine_destroy(m);
	return ret;
}

/* The kernel command line the guest gets: the configured one, plus virtio_mmio.device= entries
 * for kernels booted without ACPI (acpi=off). With ACPI the DSDT describes every device, and a
 * kernel built with VIRTIO_MMIO_CMDLINE_DEVICES would probe each window twice. */
static int build_cmdline(struct machine *m, const struct acpi_dev_desc *devs, unsigned int n)
{
	char *user = config_cmdline(m->cfg);
	size_t len, used;

	if (!user)
		return -ENOMEM;
	used = strlen(user);
	len = used + 1 + n * 48;
	m->cmdline = realloc(user, len);
	if (!m->cmdline) {
		free(user);
		return -ENOMEM;
	}
	if (!strstr(m->cmdline, "acpi=off"))
		return 0;
	for (unsigned int i = 0; i < n; i++) {
		struct virtio_mmio_config mc = { .base = devs[i].mem_base,
						 .gsi = (unsigned int)devs[i].gsi };
		char one[48];

		if (strcmp(devs[i].hid, "LNRO0005") || virtio_mmio_cmdline(&mc, one, sizeof(one)))
			continue;
		used += (size_t)snprintf(m->cmdline + used, len - used, "%s%s", used ? " " : "",
					 one);
	}
	return 0;
}

int machine_load_kernel(struct machine *m, char *err, size_t errlen)
{
	struct acpi_dev_desc devs[32];
	unsigned int nr_devs = devtable_describe(&m->devs, devs, ARRAY_SIZE(devs));
	uint64_t rsdp = 0;
	size_t used = 0;
	int ret;

	if (!m->kernel) {
		snprintf(err, errlen, "kernel: none given");
		return -EINVAL;
	}
	/* ACPI tables first: the loader passes the RSDP address to the kernel. */
	uint8_t *acpi = gm_ptr(&m->gm, GPA(LAYOUT_ACPI), LAYOUT_ACPI_SIZE);
	struct acpi_config acfg = { .nr_cpus = m->nr_vcpus, .devs = devs, .nr_devs = nr_devs };
	if (!acpi) {
		snprintf(err, errlen, "guest RAM too small for the ACPI tables");
		return -ENOMEM;
	}
	ret = acpi_build(acpi, LAYOUT_ACPI_SIZE, LAYOUT_ACPI, &acfg, &rsdp, &used);
	if (ret < 0) {
		snprintf(err, errlen, "ACPI tables: %s", strerror(-ret));
		return ret;
	}
	/*
	 * We have no BIOS, but Linux may jump to one: on a hardware-reduced ACPI platform that
	 * did not boot through EFI, reboot_init() picks BOOT_EFI, whose fallback is BOOT_BIOS,
	 * a real-mode jump to the reset vector F000:FFF0 (arch/x86/kernel/reboot.c). Put a stub
	 * there that does what a PC's firmware ends up doing: pull the reset line.
	 *   mov al, 0xfe; out 0x64, al; hlt; jmp $-3
	 */
	static const uint8_t reset_stub[] = { 0xb0, 0xfe, 0xe6, 0x64, 0xf4, 0xeb, 0xfd };
	if (gm_write(&m->gm, GPA(LAYOUT_RESET_VECTOR), reset_stub, sizeof(reset_stub)) < 0) {
		snprintf(err, errlen, "guest RAM too small for the reset vector");
		return -ENOMEM;
	}
	if ((ret = build_cmdline(m, devs, nr_devs)) < 0) {
		snprintf(err, errlen, "kernel command line: %s", strerror(-ret));
		return ret;
	}
	struct boot_config bc = {
		.kernel = m->kernel,
		.kernel_len = m->kernel_len,
		.initrd = m->initrd,
		.initrd_len = m->initrd_len,
		.cmdline = m->cmdline,
		.acpi_rsdp = rsdp,
	};
	if ((ret = loader_load(&m->gm, &bc, &m->boot, err, errlen)) < 0)
		return ret;
	/* In guest RAM now: the copies go (an initrd may be large). */
	free(m->kernel);
	free(m->initrd);
	m->kernel = m->initrd = NULL;
	if ((ret = vcpu_set_boot_regs(&m->vcpus[0], &m->boot)) < 0) {
		snprintf(err, errlen, "cpu 0: boot registers: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

/* ---- run control ---- */

void machine_request_stop(struct machine *m, enum vmm_stop_reason reason, int code,
			  const char *msg)
{
	pthread_mutex_lock(&m->run_lock);
	if (!m->stopping) {
		m->outcome.reason = reason;
		m->outcome.code = code;
		snprintf(m->outcome.msg, sizeof(m->outcome.msg), "%s", msg ? msg : "");
		__atomic_store_n(&m->stopping, true, __ATOMIC_RELEASE);
		uint64_t one = 1;
		if (write(m->stop_efd, &one, sizeof(one)) < 0) {
			/* eventfd overflow cannot happen with one write; nothing else to do */
		}
		/* Parked vCPUs must see it, and so must a pauser waiting for them. */
		pthread_cond_broadcast(&m->run_cond);
		pthread_cond_broadcast(&m->park_cond);
	}
	pthread_mutex_unlock(&m->run_lock);
}

int machine_start(struct machine *m)
{
	int ret;

	m->started = true;
	/* The I/O thread before the vCPUs: a queue kick must find it running. */
	if (m->io && (ret = ev_loop_start(m->io)) < 0)
		return ret;
	for (unsigned int i = 0; i < m->nr_vcpus; i++) {
		if (__atomic_load_n(&m->stopping, __ATOMIC_ACQUIRE))
			break;
		pthread_mutex_lock(&m->run_lock);
		m->nr_alive++;
		pthread_mutex_unlock(&m->run_lock);
		if ((ret = vcpu_start(&m->vcpus[i])) < 0) {
			machine_vcpu_exited(m);
			return ret;
		}
	}
	return 0;
}

int machine_start_paused(struct machine *m)
{
	int ret;

	__atomic_store_n(&m->pause_req, true, __ATOMIC_RELEASE);
	if ((ret = machine_start(m)) < 0)
		return ret;
	pthread_mutex_lock(&m->run_lock);
	while (m->nr_parked < m->nr_alive && !m->stopping)
		pthread_cond_wait(&m->park_cond, &m->run_lock);
	pthread_mutex_unlock(&m->run_lock);
	return devtable_quiesce(&m->devs);
}

void machine_vcpu_park(struct machine *m)
{
	pthread_mutex_lock(&m->run_lock);
	m->nr_parked++;
	pthread_cond_broadcast(&m->park_cond);
	while (m->pause_req && !m->stopping)
		pthread_cond_wait(&m->run_cond, &m->run_lock);
	m->nr_parked--;
	pthread_mutex_unlock(&m->run_lock);
}

void machine_vcpu_exited(struct machine *m)
{
	pthread_mutex_lock(&m->run_lock);
	m->nr_alive--;
	pthread_cond_broadcast(&m->park_cond);
	pthread_mutex_unlock(&m->run_lock);
}

int machine_pause(struct machine *m)
{
	int ret;

	pthread_mutex_lock(&m->run_lock);
	if (m->stopping) {
		pthread_mutex_unlock(&m->run_lock);
		return -ESHUTDOWN;
	}
	__atomic_store_n(&m->pause_req, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&m->run_lock);
	/* Out of KVM_RUN: a vCPU between its check and KVM_RUN sees immediate_exit. */
	for (unsigned int i = 0; i < m->nr_vcpus; i++)
		vcpu_kick(&m->vcpus[i]);
	pthread_mutex_lock(&m->run_lock);
	while (m->nr_parked < m->nr_alive && !m->stopping)
		pthread_cond_wait(&m->park_cond, &m->run_lock);
	bool stopping = m->stopping;
	pthread_mutex_unlock(&m->run_lock);
	if (stopping) {
		machine_resume(m);
		return -ESHUTDOWN;
	}
	/* No vCPU touches a device now: let them finish what is in flight. */
	if ((ret = devtable_quiesce(&m->devs)) < 0) {
		machine_resume(m);
		return ret;
	}
	return 0;
}

uint64_t machine_resume(struct machine *m)
{
	struct timespec ts;

	/* The guest's kvmclock learns it was stopped (no soft-lockup reports after a pause). */
	x86_kvmclock_ctrl(m);
	/* The vCPUs first: the guest runs again at once. A kick meanwhile waits for its
	 * device's resume, which looks at every queue (a round trip to each I/O thread). */
	pthread_mutex_lock(&m->run_lock);
	__atomic_store_n(&m->pause_req, false, __ATOMIC_RELEASE);
	/* Read before the wakeup: a woken vCPU thread can take this thread's CPU for a slice. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_cond_broadcast(&m->run_cond);
	pthread_mutex_unlock(&m->run_lock);
	devtable_resume(&m->devs);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void machine_halt(struct machine *m, struct vmm_outcome *out)
{
	for (unsigned int i = 0; i < m->nr_vcpus; i++)
		vcpu_kick(&m->vcpus[i]);
	for (unsigned int i = 0; i < m->nr_vcpus; i++)
		vcpu_join(&m->vcpus[i]);
	pthread_mutex_lock(&m->run_lock);
	*out = m->outcome;
	pthread_mutex_unlock(&m->run_lock);
}

int machine_dirty_take(struct machine *m, uint64_t *out)
{
	size_t words = gm_dirty_words(&m->gm);
	uint64_t *slot = calloc(words, sizeof(uint64_t));

	if (!slot)
		return -ENOMEM;
	/* The guest's writes (KVM's log, per memslot, cleared as it is read), then the VMM's. */
	for (unsigned int i = 0; i < m->gm.nr_regions; i++) {
		const struct gm_region *r = &m->gm.region[i];
		struct kvm_dirty_log log = { .slot = i, .dirty_bitmap = slot };
		uint64_t base = r->fd_offset / 4096, pages = r->size / 4096;

		memset(slot, 0, words * sizeof(uint64_t));
		if (ioctl(m->vm_fd, KVM_GET_DIRTY_LOG, &log) < 0) {
			int e = -errno;
			free(slot);
			return e;
		}
		for (uint64_t p = 0; p < pages; p++) {
			if (slot[p / 64] & (1ULL << (p % 64)))
				out[(base + p) / 64] |= 1ULL << ((base + p) % 64);
		}
	}
	free(slot);
	gm_dirty_take(&m->gm, out);
	return 0;
}

void machine_release_devices(struct machine *m)
{
	/* Devices before their I/O thread: they remove their watches from it. */
	devtable_unrealize(&m->devs);
	if (m->io)
		ev_loop_destroy(m->io);
	m->io = NULL;
}

void machine_destroy(struct machine *m)
{
	if (!m)
		return;
	if (m->vcpus) {
		for (unsigned int i = m->nr_vcpus; i-- > 0;) {
			vcpu_kick(&m->vcpus[i]);
			vcpu_join(&m->vcpus[i]);
			if (m->vcpus[i].m)
				vcpu_destroy(&m->vcpus[i]);
		}
		free(m->vcpus);
	}
	machine_release_devices(m);
	if (m->vm_fd >= 0)
		close(m->vm_fd);
	gm_destroy(&m->gm);
	kvm_sys_close(&m->kvm);
	if (m->stop_efd >= 0)
		close(m->stop_efd);
	free(m->kernel);
	free(m->initrd);
	free(m->cmdline);
	pthread_cond_destroy(&m->park_cond);
	pthread_cond_destroy(&m->run_cond);
	pthread_mutex_destroy(&m->run_lock);
	free(m);
}

/* ---- the console and the keyboard ---- */

size_t machine_console_receive(struct machine *m, const uint8_t *buf, size_t len)
{
	struct device *d;

	if (m->cfg->console == VMM_CONSOLE_VIRTIO && (d = devtable_find(&m->devs, "hvc0")))
		return virtio_console_receive(virtio_console_of(d), buf, len);
	if ((d = devtable_find(&m->devs, "com1")))
		return serial_receive(d->priv, buf, len);
	return len; /* no console: input goes nowhere */
}

void machine_console_set_rx_ready(struct machine *m, void (*cb)(void *opaque), void *opaque)
{
	struct device *d;

	if (m->cfg->console == VMM_CONSOLE_VIRTIO && (d = devtable_find(&m->devs, "hvc0")))
		virtio_console_set_rx_ready_cb(virtio_console_of(d), cb, opaque);
	else if ((d = devtable_find(&m->devs, "com1")))
		serial_set_rx_ready_cb(d->priv, cb, opaque);
}

void machine_console_resize(struct machine *m, unsigned int cols, unsigned int rows)
{
	struct device *d = devtable_find(&m->devs, "hvc0");

	/* The UART has no notion of a size. */
	if (d && cols && rows && cols <= UINT16_MAX && rows <= UINT16_MAX)
		virtio_console_resize(virtio_console_of(d), (uint16_t)cols, (uint16_t)rows);
}

int machine_ctrl_alt_del(struct machine *m)
{
	struct device *d = devtable_find(&m->devs, "i8042");

	if (!d)
		return -ENODEV;
	i8042_send_ctrl_alt_del(d->priv);
	return 0;
}
