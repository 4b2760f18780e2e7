// SPDX-License-Identifier: Apache-2.0
/*
 * VM lifecycle: create (KVM VM, RAM, tables, kernel, devices, vCPUs, in that order, unwound in
 * reverse on failure), run (vCPU threads + a glib main loop on the calling thread for the
 * console, signals and the timeout) and destroy.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "vm_internal.h"
#include "vmm/acpi.h"
#include "vmm/devices.h"
#include "vmm/layout.h"
#include "vmm/serial.h"
#include "vmm/term.h"
#include "vmm/virtio_console.h"

/* Below the IOAPIC, inside the MMIO hole: three pages KVM needs on Intel for real mode. */
#define KVM_IDENTITY_MAP_ADDR 0xfeffc000ULL
#define KVM_TSS_ADDR          0xfeffd000ULL

#define MAX_FILE_SIZE (2 * GiB)

struct devices {
	struct serial *serial;
	struct i8042 *i8042;
	struct rtc *rtc;
	struct debug_exit *debug_exit;
	struct pvpanic *pvpanic;
	struct acpi_pm *acpi_pm;
};

struct mapped_file {
	uint8_t *data;
	size_t len;
};

static void stop_sink_cb(void *opaque, enum vm_stop_reason reason, int code)
{
	vm_request_stop(opaque, reason, code, "");
}

static void irq_cb(void *opaque, unsigned int gsi, int level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0)
		fprintf(stderr, "vmm: KVM_IRQ_LINE gsi %u: %s\n", gsi, strerror(errno));
}

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, int code, const char *msg)
{
	pthread_mutex_lock(&vm->stop_lock);
	if (!vm->stopping) {
		vm->outcome.reason = reason;
		vm->outcome.code = code;
		snprintf(vm->outcome.msg, sizeof(vm->outcome.msg), "%s", msg ? msg : "");
		__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
		uint64_t one = 1;
		if (write(vm->stop_efd, &one, sizeof(one)) < 0) {
			/* eventfd overflow cannot happen with one write; nothing else to do */
		}
	}
	pthread_mutex_unlock(&vm->stop_lock);
}

static int map_file(const char *what, const char *path, struct mapped_file *f, char *err,
		    size_t errlen)
{
	struct stat st;
	int ret;

	memset(f, 0, sizeof(*f));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s: %s", what, path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s: %s", what, path, strerror(-ret));
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		ret = -EISDIR;
		snprintf(err, errlen, "%s: %s: is a directory", what, path);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s: %s: not a regular file", what, path);
		goto out;
	}
	if (st.st_size == 0) {
		ret = -ENOEXEC;
		snprintf(err, errlen, "%s: %s: empty file", what, path);
		goto out;
	}
	if ((uint64_t)st.st_size > MAX_FILE_SIZE) {
		ret = -EFBIG;
		snprintf(err, errlen, "%s: %s: larger than 2 GiB", what, path);
		goto out;
	}
	/* MAP_PRIVATE read-only: the loader copies what it needs into guest RAM. */
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s: %s", what, path, strerror(-ret));
		goto out;
	}
	f->data = p;
	f->len = (size_t)st.st_size;
	ret = 0;
out:
	close(fd);
	return ret;
}

static void unmap_file(struct mapped_file *f)
{
	if (f->data)
		munmap(f->data, f->len);
	memset(f, 0, sizeof(*f));
}

static int check_host_memory(const struct vmm_config *cfg, char *err, size_t errlen)
{
	struct sysinfo si;

	if (sysinfo(&si) == 0) {
		uint64_t host = (uint64_t)si.totalram * si.mem_unit;
		if (cfg->mem_size > host) {
			char a[32], b[32];
			snprintf(err, errlen, "--memory: %s is more than this host's %s of RAM",
				 loader_fmt_size(cfg->mem_size, a, sizeof(a)),
				 loader_fmt_size(host, b, sizeof(b)));
			return -ENOMEM;
		}
	}
	return 0;
}

static int check_kvm_limits(struct vm *vm, char *err, size_t errlen)
{
	if (vm->cfg->nr_cpus > vm->kvm.max_vcpus) {
		snprintf(err, errlen, "--cpus: %u is above this host's KVM limit of %u",
			 vm->cfg->nr_cpus, vm->kvm.max_vcpus);
		return -EINVAL;
	}
	return 0;
}

static int setup_kvm_vm(struct vm *vm, char *err, size_t errlen)
{
	const char *step;
	int ret;

	step = "KVM_CREATE_VM";
	vm->vm_fd = ioctl(vm->kvm.fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0)
		goto fail;
	step = "KVM_SET_IDENTITY_MAP_ADDR";
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
		goto fail;
	step = "KVM_SET_TSS_ADDR";
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0)
		goto fail;
	step = "KVM_CREATE_IRQCHIP";
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		goto fail;
	/* The dummy speaker makes KVM answer port 0x61 too (Linux reads it while calibrating). */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	step = "KVM_CREATE_PIT2";
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		goto fail;

	for (unsigned int i = 0; i < vm->gm.nr_regions; i++) {
		const struct gm_region *r = &vm->gm.region[i];
		struct kvm_userspace_memory_region mr = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)r->hva,
		};
		step = "KVM_SET_USER_MEMORY_REGION";
		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0)
			goto fail;
	}
	return 0;
fail:
	ret = -errno;
	snprintf(err, errlen, "%s: %s", step, strerror(errno));
	return ret;
}

static int setup_devices(struct vm *vm, char *err, size_t errlen)
{
	struct devices *d = vm->dev;
	struct irq_sink irq = { .set_level = irq_cb, .opaque = vm };
	struct vm_stop_sink stop = { .request = stop_sink_cb, .opaque = vm };
	const char *what;
	int ret;

	/* Created in this order, destroyed in reverse by vm_destroy(). */
	what = "serial";
	if ((ret = serial_create(&d->serial, &irq, IRQ_COM1, STDOUT_FILENO)) < 0)
		goto fail;
	if ((ret = bus_register(&vm->pio, PORT_COM1, 8, serial_io, d->serial, "com1")) < 0)
		goto fail;
	what = "i8042";
	if ((ret = i8042_create(&d->i8042, &stop)) < 0)
		goto fail;
	if ((ret = bus_register(&vm->pio, PORT_I8042_DATA, 1, i8042_data_io, d->i8042,
				"i8042-data")) < 0 ||
	    (ret = bus_register(&vm->pio, PORT_I8042_CMD, 1, i8042_cmd_io, d->i8042,
				"i8042-cmd")) < 0)
		goto fail;
	what = "rtc";
	if ((ret = rtc_create(&d->rtc, NULL)) < 0)
		goto fail;
	if ((ret = bus_register(&vm->pio, PORT_CMOS, RTC_PORT_LEN, rtc_io, d->rtc, "rtc")) < 0)
		goto fail;
	what = "pvpanic";
	if ((ret = pvpanic_create(&d->pvpanic, &stop)) < 0)
		goto fail;
	if ((ret = bus_register(&vm->pio, PORT_PVPANIC, PVPANIC_PORT_LEN, pvpanic_io, d->pvpanic, "pvpanic")) < 0)
		goto fail;
	what = "acpi sleep registers";
	if ((ret = acpi_pm_create(&d->acpi_pm, &stop)) < 0)
		goto fail;
	if ((ret = bus_register(&vm->pio, PORT_ACPI_SLEEP, ACPI_PM_PORT_LEN, acpi_pm_io, d->acpi_pm, "acpi-pm")) < 0)
		goto fail;
	if (vm->cfg->debug_exit_port) {
		what = "debug-exit";
		if ((ret = debug_exit_create(&d->debug_exit, &stop, vm->cfg->debug_exit_port, 1)) < 0)
			goto fail;
		ret = bus_register(&vm->pio, vm->cfg->debug_exit_port,
				   debug_exit_len(d->debug_exit), debug_exit_io,
				   d->debug_exit, "debug-exit");
		if (ret == -EEXIST) {
			snprintf(err, errlen, "--debug-exit-port: 0x%x is taken by another device",
				 vm->cfg->debug_exit_port);
			return ret;
		}
		if (ret < 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s: %s", what, strerror(-ret));
	return ret;
}

static void destroy_devices(struct devices *d)
{
	if (d->debug_exit)
		debug_exit_destroy(d->debug_exit);
	if (d->acpi_pm)
		acpi_pm_destroy(d->acpi_pm);
	if (d->pvpanic)
		pvpanic_destroy(d->pvpanic);
	if (d->rtc)
		rtc_destroy(d->rtc);
	if (d->i8042)
		i8042_destroy(d->i8042);
	if (d->serial)
		serial_destroy(d->serial);
	memset(d, 0, sizeof(*d));
}

static int load_guest(struct vm *vm, char *err, size_t errlen)
{
	struct mapped_file kernel, initrd = { 0 };
	uint64_t rsdp = 0;
	size_t used = 0;
	int ret;

	/* ACPI tables first: the loader passes the RSDP address to the kernel. */
	uint8_t *acpi = gm_ptr(&vm->gm, GPA(LAYOUT_ACPI), LAYOUT_ACPI_SIZE);
	struct acpi_config acfg = {
		.nr_cpus = vm->nr_vcpus,
		.pvpanic = true,
		.mmio_devs = vm->vmmio_acpi,
		.nr_mmio_devs = vm->nr_virtio,
	};
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
	if (gm_write(&vm->gm, GPA(LAYOUT_RESET_VECTOR), reset_stub, sizeof(reset_stub)) < 0) {
		snprintf(err, errlen, "guest RAM too small for the reset vector");
		return -ENOMEM;
	}

	if ((ret = map_file("kernel", vm->cfg->kernel, &kernel, err, errlen)) < 0)
		return ret;
	if (vm->cfg->initrd &&
	    (ret = map_file("initrd", vm->cfg->initrd, &initrd, err, errlen)) < 0)
		goto out;
	struct boot_config bc = {
		.kernel = kernel.data,
		.kernel_len = kernel.len,
		.initrd = initrd.data,
		.initrd_len = initrd.len,
		.cmdline = vm->cmdline,
		.acpi_rsdp = rsdp,
	};
	ret = loader_load(&vm->gm, &bc, &vm->boot, err, errlen);
out:
	unmap_file(&initrd);
	unmap_file(&kernel);
	return ret;
}

int vm_create(const struct vmm_config *cfg, struct vm **out, char *err, size_t errlen)
{
	int ret;
	char bad[64];

	struct vm *vm = calloc(1, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	vm->cfg = cfg;
	vm->vm_fd = -1;
	vm->kvm.fd = -1;
	vm->gm.fd = -1;
	vm->stop_efd = -1;
	vm->nr_vcpus = cfg->nr_cpus;
	pthread_mutex_init(&vm->stop_lock, NULL);
	bus_init(&vm->pio);
	bus_init(&vm->mmio);

	ret = cpuid_mask_parse(cfg->cpuid_mask, vm->cpuid_mask, VM_MAX_CPUID_MASK,
			       &vm->nr_cpuid_mask, bad, sizeof(bad));
	if (ret < 0) {
		if (ret == -E2BIG)
			snprintf(err, errlen, "--cpuid-mask: more than %d features",
				 VM_MAX_CPUID_MASK);
		else
			snprintf(err, errlen, "--cpuid-mask: unknown CPU feature '%s'", bad);
		goto fail;
	}
	vm->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->stop_efd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((ret = check_host_memory(cfg, err, errlen)) < 0)
		goto fail;
	if ((ret = gm_create(&vm->gm, cfg->mem_size)) < 0) {
		snprintf(err, errlen, "--memory: cannot allocate guest RAM: %s", strerror(-ret));
		goto fail;
	}
	/* Images before KVM too: a missing or locked image is a user error. */
	if ((ret = vm_virtio_create(vm, err, errlen)) < 0)
		goto fail;
	/* Load before touching KVM: a bad kernel or initrd is the commonest error. */
	if ((ret = load_guest(vm, err, errlen)) < 0)
		goto fail;
	if ((ret = kvm_sys_open(&vm->kvm, cfg->kvm_path, err, errlen)) < 0)
		goto fail;
	if ((ret = check_kvm_limits(vm, err, errlen)) < 0)
		goto fail;
	if ((ret = setup_kvm_vm(vm, err, errlen)) < 0)
		goto fail;
	vm->dev = calloc(1, sizeof(*vm->dev));
	if (!vm->dev) {
		ret = -ENOMEM;
		goto fail;
	}
	if ((ret = setup_devices(vm, err, errlen)) < 0)
		goto fail;
	if ((ret = vm_virtio_attach(vm, err, errlen)) < 0)
		goto fail;
	vm->vcpus = calloc(vm->nr_vcpus, sizeof(*vm->vcpus));
	if (!vm->vcpus) {
		ret = -ENOMEM;
		goto fail;
	}
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		vm->vcpus[i].fd = -1;
		if ((ret = vcpu_create(vm, &vm->vcpus[i], i, err, errlen)) < 0)
			goto fail;
	}
	*out = vm;
	return 0;
fail:
	vm_destroy(vm);
	return ret;
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	if (vm->vcpus) {
		for (unsigned int i = vm->nr_vcpus; i-- > 0;) {
			vcpu_join(&vm->vcpus[i]);
			if (vm->vcpus[i].vm)
				vcpu_destroy(&vm->vcpus[i]);
		}
		free(vm->vcpus);
	}
	vm_virtio_destroy(vm);
	if (vm->dev) {
		destroy_devices(vm->dev);
		free(vm->dev);
	}
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	gm_destroy(&vm->gm);
	kvm_sys_close(&vm->kvm);
	if (vm->stop_efd >= 0)
		close(vm->stop_efd);
	pthread_mutex_destroy(&vm->stop_lock);
	free(vm);
}

/* ---- the main loop: console input, signals, timeout, stop ---- */

#define STDIN_CHUNK 4096

struct loop {
	struct vm *vm;
	GMainLoop *loop;
	guint stdin_watch;
	int rx_efd; /* the UART has room again (written from a vCPU thread) */
	uint8_t pending[STDIN_CHUNK];
	size_t pending_len, pending_off;
	bool stdin_eof;
	uint64_t dropped; /* terminal input typed while the guest was not reading */
	struct term_escape esc;
	guint timeout_id;
};

static gboolean on_stdin(gint fd, GIOCondition cond, gpointer data);

static void stdin_watch_set(struct loop *l, bool on)
{
	if (on && !l->stdin_watch && !l->stdin_eof)
		l->stdin_watch = g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR,
					       on_stdin, l);
	else if (!on && l->stdin_watch) {
		g_source_remove(l->stdin_watch);
		l->stdin_watch = 0;
	}
}

/* The guest's console input: hvc0 with --console virtio, else the UART. */
static size_t console_receive(struct vm *vm, const uint8_t *buf, size_t len)
{
	if (vm->vcon)
		return virtio_console_receive(vm->vcon, buf, len);
	return serial_receive(vm->dev->serial, buf, len);
}

static void console_set_rx_ready_cb(struct vm *vm, void (*cb)(void *opaque), void *opaque)
{
	if (vm->vcon)
		virtio_console_set_rx_ready_cb(vm->vcon, cb, opaque);
	else
		serial_set_rx_ready_cb(vm->dev->serial, cb, opaque);
}

/* Push what is pending into the console; stop reading stdin while the guest does not keep up. */
static void feed_serial(struct loop *l)
{
	while (l->pending_off < l->pending_len) {
		size_t n = console_receive(l->vm, l->pending + l->pending_off,
					   l->pending_len - l->pending_off);
		if (n == 0)
			break;
		l->pending_off += n;
	}
	if (l->pending_off == l->pending_len) {
		l->pending_off = l->pending_len = 0;
		stdin_watch_set(l, true);
	} else if (!l->esc.enabled) {
		/* A pipe: stop reading until the guest makes room; nothing is lost. */
		stdin_watch_set(l, false);
	}
	/* A terminal is still read while the guest does not keep up, so that Ctrl-A x works
	 * whatever the guest does; keys typed into a full UART are dropped, as on hardware. */
}

static gboolean on_stdin(gint fd, GIOCondition cond, gpointer data)
{
	struct loop *l = data;
	uint8_t buf[STDIN_CHUNK];

	/* One byte short: a Ctrl-A held over from the last read may expand to two bytes. */
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		/* EOF on a pipe: the guest keeps running, it just gets no more input. */
		l->stdin_eof = true;
		l->stdin_watch = 0;
		return G_SOURCE_REMOVE;
	}
	if (l->pending_len) {
		/* Only a terminal gets here (a pipe is not read while input is pending). */
		uint8_t scratch[STDIN_CHUNK];
		term_escape_filter(&l->esc, buf, (size_t)n, scratch, sizeof(scratch));
		l->dropped += (uint64_t)n;
	} else {
		l->pending_len = term_escape_filter(&l->esc, buf, (size_t)n, l->pending,
						    sizeof(l->pending));
		l->pending_off = 0;
	}
	if (l->esc.quit) {
		vm_request_stop(l->vm, VM_STOP_SIGNAL, SIGINT, "console escape: Ctrl-A x");
		return G_SOURCE_CONTINUE;
	}
	feed_serial(l);
	return l->stdin_watch ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void on_rx_ready(void *opaque)
{
	struct loop *l = opaque;
	uint64_t one = 1;

	if (write(l->rx_efd, &one, sizeof(one)) < 0) {
		/* already signalled */
	}
}

static gboolean on_rx_efd(gint fd, GIOCondition cond, gpointer data)
{
	struct loop *l = data;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* spurious */
	}
	if (l->pending_len)
		feed_serial(l);
	return G_SOURCE_CONTINUE;
}

static gboolean on_stop(gint fd, GIOCondition cond, gpointer data)
{
	struct loop *l = data;
	g_main_loop_quit(l->loop);
	return G_SOURCE_CONTINUE;
}

static gboolean on_signal_int(gpointer data)
{
	vm_request_stop(((struct loop *)data)->vm, VM_STOP_SIGNAL, SIGINT, "interrupted (SIGINT)");
	return G_SOURCE_CONTINUE;
}

static gboolean on_signal_term(gpointer data)
{
	vm_request_stop(((struct loop *)data)->vm, VM_STOP_SIGNAL, SIGTERM, "terminated (SIGTERM)");
	return G_SOURCE_CONTINUE;
}

static gboolean on_signal_hup(gpointer data)
{
	vm_request_stop(((struct loop *)data)->vm, VM_STOP_SIGNAL, SIGHUP, "hangup (SIGHUP)");
	return G_SOURCE_CONTINUE;
}

/* The terminal changed size: tell hvc0 (the UART has no notion of it). */
static gboolean on_signal_winch(gpointer data)
{
	struct vm *vm = ((struct loop *)data)->vm;
	struct winsize ws;

	if (vm->vcon && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col && ws.ws_row)
		virtio_console_resize(vm->vcon, ws.ws_col, ws.ws_row);
	return G_SOURCE_CONTINUE;
}

static gboolean on_timeout(gpointer data)
{
	struct loop *l = data;
	char msg[96];

	snprintf(msg, sizeof(msg), "--timeout: guest still running after %u s, stopped it",
		 l->vm->cfg->timeout_s);
	vm_request_stop(l->vm, VM_STOP_TIMEOUT, 0, msg);
	l->timeout_id = 0;
	return G_SOURCE_REMOVE;
}

int vm_run(struct vm *vm, struct vm_outcome *outcome)
{
	struct loop l = { .vm = vm, .rx_efd = -1 };
	GMainContext *ctx = g_main_context_default();
	guint ids[10];
	unsigned int nids = 0;
	int ret = 0;

	l.loop = g_main_loop_new(ctx, FALSE);
	l.rx_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l.rx_efd < 0) {
		ret = -errno;
		goto out;
	}
	console_set_rx_ready_cb(vm, on_rx_ready, &l);
	term_escape_init(&l.esc, isatty(STDIN_FILENO));
	if (vm->vcon && isatty(STDOUT_FILENO)) {
		ids[nids++] = g_unix_signal_add(SIGWINCH, on_signal_winch, &l);
		on_signal_winch(&l);
	}

	ids[nids++] = g_unix_fd_add(vm->stop_efd, G_IO_IN, on_stop, &l);
	ids[nids++] = g_unix_fd_add(l.rx_efd, G_IO_IN, on_rx_efd, &l);
	ids[nids++] = g_unix_signal_add(SIGINT, on_signal_int, &l);
	ids[nids++] = g_unix_signal_add(SIGTERM, on_signal_term, &l);
	ids[nids++] = g_unix_signal_add(SIGHUP, on_signal_hup, &l);
	if (vm->cfg->timeout_s)
		l.timeout_id = g_timeout_add_seconds(vm->cfg->timeout_s, on_timeout, &l);
	stdin_watch_set(&l, true);

	/* The I/O thread before the vCPUs: a queue kick must find it running. */
	if (vm_virtio_start(vm) < 0)
		vm_request_stop(vm, VM_STOP_FATAL, 0, "cannot start the I/O thread");
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		if (__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE))
			break;
		ret = vcpu_start(&vm->vcpus[i]);
		if (ret < 0) {
			vm_request_stop(vm, VM_STOP_FATAL, 0, "cannot start a vCPU thread");
			break;
		}
	}
	if (!__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE))
		g_main_loop_run(l.loop);

	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++)
		vcpu_join(&vm->vcpus[i]);
	console_set_rx_ready_cb(vm, NULL, NULL);

	pthread_mutex_lock(&vm->stop_lock);
	*outcome = vm->outcome;
	pthread_mutex_unlock(&vm->stop_lock);

out:
	/* Before the signal sources go (glib restores the default actions): a SIGTERM from
	 * here on must not leave the terminal raw. */
	term_restore();
	stdin_watch_set(&l, false);
	if (l.timeout_id)
		g_source_remove(l.timeout_id);
	for (unsigned int i = 0; i < nids; i++)
		g_source_remove(ids[i]);
	if (l.rx_efd >= 0)
		close(l.rx_efd);
	g_main_loop_unref(l.loop);
	return ret;
}
