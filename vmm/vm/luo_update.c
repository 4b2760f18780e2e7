// SPDX-License-Identifier: Apache-2.0
/*
 * A VM carried across a kexec of the host by the Live Update Orchestrator (include/vmm/luo.h):
 * its RAM memfd and its state (in a memfd of its own) preserved in a named session, and on
 * the next kernel a VM restored from that session. The vmm process that preserved them keeps
 * the session's fd, paused, until the kexec takes it: it is the session's holder. If the VM
 * runs again instead, the session is closed, which undoes the preservation.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "machine.h"
#include "snapshot.h"
#include "vm_internal.h"
#include "vmm/luo.h"
#include "vmm/state.h"
#include "vmm/state_config.h"

/* Another vmm may be using the device (one opener at a time): wait that long for it. */
#define LUO_OPEN_WAIT_MS 5000

/*
 * A lazily restored VM's RAM: its memfd's holes stand for the snapshot file's pages, but
 * LUO would preserve them as zero pages. Copy in every page of the file that the memfd does
 * not have yet (the VM is paused: no fault races with this).
 */
static int fill_holes(const struct guest_mem *gm, char *err, size_t errlen)
{
	const size_t chunk = 1 << 20;
	uint8_t *buf;
	off_t off = 0, end = (off_t)gm->ram_size;

	if (gm->src_fd < 0)
		return 0;
	if (!(buf = malloc(chunk)))
		return -ENOMEM;
	while (off < end) {
		off_t hole = lseek(gm->fd, off, SEEK_HOLE), data, stop;

		if (hole < 0 || hole >= end)
			break;
		data = lseek(gm->fd, hole, SEEK_DATA);
		stop = data < 0 || data > end ? end : data;
		for (off_t p = hole; p < stop;) {
			size_t n = (size_t)(stop - p) < chunk ? (size_t)(stop - p) : chunk;
			ssize_t got = pread(gm->src_fd, buf, n, p);

			if (got < 0) {
				snprintf(err, errlen, "reading the snapshot's memory file: %s",
					 strerror(errno));
				free(buf);
				return -errno;
			}
			if (got == 0)
				break;
			/* Zero pages stay holes: LUO gives them back as zeros. */
			bool zero = true;

			for (ssize_t i = 0; i < got && zero; i += 8)
				zero = *(uint64_t *)(buf + i) == 0;
			if (!zero && pwrite(gm->fd, buf, (size_t)got, p) != got) {
				snprintf(err, errlen, "filling guest RAM: %s", strerror(errno));
				free(buf);
				return -EIO;
			}
			p += got;
		}
		off = stop;
	}
	free(buf);
	return 0;
}

static int state_memfd(const uint8_t *blob, size_t len, char *err, size_t errlen)
{
	int fd = memfd_create("vmm-state", MFD_CLOEXEC);

	if (fd < 0 || pwrite(fd, blob, len, 0) != (ssize_t)len) {
		snprintf(err, errlen, "state memfd: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	return fd;
}

/*
 * Two stages, so that the guest's pause does not grow with its RAM: on a running VM, the
 * session is created and the RAM memfd preserved (LUO allocates and pins every page then,
 * 0.5 s for 256 MiB in the TCG test host); the guest runs on, writing to those same pages,
 * which are what the next kernel gets. On a paused VM, the state too (and the RAM first if
 * that was not done yet): only that is inside the pause.
 */
int vmm_vm_luo_preserve(struct vmm_vm *vm, const char *session, struct vmm_error *e)
{
	const struct log_sink *prev = log_bind(&vm->log);
	char err[VMM_ERROR_LEN] = "";
	struct luo_dev dev = { .fd = -1 };
	uint8_t *blob = NULL;
	size_t len;
	int r, sfd = -1, st = -1;
	bool paused;

	pthread_mutex_lock(&vm->op_lock);
	paused = vm->state == VMM_STATE_PAUSED;
	if (!paused && vm->state != VMM_STATE_RUNNING) {
		r = config_fail(e, -EINVAL, "cannot preserve a VM that is %s",
				vm->state == VMM_STATE_CREATED ? "not started"
							       : vmm_state_name(vm->state));
		goto out;
	}
	if (!luo_name_valid(session)) {
		r = config_fail(e, -EINVAL, "LUO session name '%s': 1 to %d characters of A-Z a-z "
				"0-9 . _ -", session, LUO_NAME_LEN - 1);
		goto out;
	}
	if (vm->luo_sfd >= 0 && strcmp(vm->luo_session, session)) {
		r = config_fail(e, -EEXIST, "this VM's RAM is preserved in session '%s' already",
				vm->luo_session);
		goto out;
	}
	if (vm->luo_state_done) {
		r = config_fail(e, -EEXIST, "this VM is preserved already (session '%s')",
				vm->luo_session);
		goto out;
	}
	/* Only a memfd can be preserved: RAM in a file of its own survives a kexec by itself
	 * (where that file does), a copy-on-write mapping of a snapshot cannot. */
	if (vm->cfg.mem_path || vm->m->gm.private_map) {
		r = config_fail(e, -EINVAL, "guest RAM is %s, not a memfd: LUO cannot preserve it%s",
				vm->cfg.mem_path ? "a file" : "a copy-on-write mapping of a snapshot",
				vm->cfg.mem_path ? " (snapshot it in place instead)" : "");
		goto out;
	}
	if (vm->luo_sfd < 0) {
		/* A lazily restored VM's holes are filled first, with no fault racing: paused. */
		if (vm->m->gm.src_fd >= 0 && !paused) {
			r = config_fail(e, -EINVAL, "this VM's RAM still comes in from its snapshot "
					"file: pause it first");
			goto out;
		}
		if ((r = fill_holes(&vm->m->gm, err, sizeof(err))) < 0 ||
		    (r = luo_open(&dev, LUO_DEVICE, LUO_OPEN_WAIT_MS, err, sizeof(err))) < 0 ||
		    (r = luo_session_create(&dev, session, &sfd, err, sizeof(err))) < 0 ||
		    (r = luo_preserve(&dev, sfd, vm->m->gm.fd, VMM_LUO_TOKEN_RAM, err,
				      sizeof(err))) < 0) {
			config_fail(e, r, "LUO preserve: %s", err);
			if (sfd >= 0)
				close(sfd); /* undoes what was preserved */
			goto out;
		}
		vm->luo_sfd = sfd;
		snprintf(vm->luo_session, sizeof(vm->luo_session), "%s", session);
		log_info("guest RAM (%llu MiB) preserved in LUO session '%s'",
			 (unsigned long long)(vm->m->gm.ram_size >> 20), session);
	}
	if (paused) {
		dev.ioctl = luo_sys_ioctl; /* the session fd is all this needs */
		if ((r = machine_state_save(vm->m, NULL, &blob, &len, err, sizeof(err))) < 0 ||
		    (r = st = state_memfd(blob, len, err, sizeof(err))) < 0 ||
		    (r = luo_preserve(&dev, vm->luo_sfd, st, VMM_LUO_TOKEN_STATE, err,
				      sizeof(err))) < 0) {
			config_fail(e, r, "LUO preserve: %s", err);
			goto out;
		}
		vm->luo_state_done = true;
		log_info("state (%zu bytes) preserved in LUO session '%s': the VM stays paused "
			 "until the kexec", len, session);
	}
	r = 0;
out:
	luo_close(&dev);
	if (st >= 0)
		close(st); /* LUO holds its own reference */
	free(blob);
	pthread_mutex_unlock(&vm->op_lock);
	log_bind(prev);
	return r;
}

void vm_luo_drop(struct vmm_vm *vm)
{
	if (vm->luo_sfd < 0)
		return;
	close(vm->luo_sfd);
	vm->luo_sfd = -1;
	vm->luo_state_done = false;
	log_info("LUO session '%s' dropped: the VM runs on here", vm->luo_session);
}

/* Read a whole (small) memfd. */
static int read_memfd(int fd, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || st.st_size <= 0 ||
	    (uint64_t)st.st_size > STATE_MAX_LEN + STATE_HEADER_LEN) {
		snprintf(err, errlen, "the preserved state is %s",
			 st.st_size <= 0 ? "empty" : "too large");
		return -EINVAL;
	}
	if (!(*buf = malloc((size_t)st.st_size)))
		return -ENOMEM;
	if (pread(fd, *buf, (size_t)st.st_size, 0) != st.st_size) {
		snprintf(err, errlen, "reading the preserved state: %s", strerror(errno));
		free(*buf);
		*buf = NULL;
		return -EIO;
	}
	*len = (size_t)st.st_size;
	return 0;
}

int vmm_vm_restore_luo(struct vmm_vm *vm, const char *session, unsigned int flags,
		       struct vmm_error *e)
{
	const struct log_sink *prev = log_bind(&vm->log);
	char err[VMM_ERROR_LEN] = "", what[LUO_NAME_LEN + 16];
	struct luo_dev dev = { .fd = -1 };
	struct vmm_config nc;
	struct state_reader sr;
	struct stat st;
	struct timespec t0, t1;
	uint8_t *buf = NULL;
	size_t len;
	int r, sfd = -1, stfd = -1, ram = -1;

	config_init(&nc);
	snprintf(what, sizeof(what), "LUO session '%s'", session);
	pthread_mutex_lock(&vm->op_lock);
	if (vm->state != VMM_STATE_CREATED) {
		r = config_fail(e, -EINVAL, "a snapshot loads only into a VM not started yet");
		goto out;
	}
	if (!luo_name_valid(session)) {
		r = config_fail(e, -EINVAL, "LUO session name '%s': 1 to %d characters of A-Z a-z "
				"0-9 . _ -", session, LUO_NAME_LEN - 1);
		goto out;
	}
	/* Both files back, then the device free again for the next VM's restore. The kernel
	 * rebuilds the RAM memfd from the preserved folios here, one at a time. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((r = luo_open(&dev, LUO_DEVICE, LUO_OPEN_WAIT_MS, err, sizeof(err))) < 0 ||
	    (r = luo_session_retrieve(&dev, session, &sfd, err, sizeof(err))) < 0 ||
	    (r = luo_retrieve(&dev, sfd, VMM_LUO_TOKEN_STATE, &stfd, err, sizeof(err))) < 0 ||
	    (r = luo_retrieve(&dev, sfd, VMM_LUO_TOKEN_RAM, &ram, err, sizeof(err))) < 0) {
		config_fail(e, r, "%s", err);
		goto out;
	}
	luo_close(&dev);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_info("%s: RAM and state retrieved in %.1f ms", what,
		 (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	if ((r = read_memfd(stfd, &buf, &len, err, sizeof(err))) < 0 ||
	    (r = state_open(&sr, buf, len, err, sizeof(err))) < 0 ||
	    (r = config_state_load(&nc, &sr, err, sizeof(err))) < 0) {
		config_fail(e, r, "%s: %s", what, err);
		goto out;
	}
	if (fstat(ram, &st) < 0 || (uint64_t)st.st_size != nc.mem_size) {
		r = config_fail(e, -EINVAL, "%s: its RAM has %llu bytes, its state says %llu",
				what, (unsigned long long)st.st_size,
				(unsigned long long)nc.mem_size);
		goto out;
	}
	if (nc.mem_path) {
		r = config_fail(e, -EINVAL, "%s: its state names a RAM file, %s", what, nc.mem_path);
		goto out;
	}
	nc.mem_fd = ram; /* the guest's RAM as it was at the kexec */
	ram = -1;
	if ((r = vm_restore_locked(vm, &nc, &sr, flags, what, e)) < 0)
		goto out;
	/* Everything is back: the session is done. */
	if ((r = luo_finish(&dev, sfd, err, sizeof(err))) < 0)
		log_warn("%s: %s", what, err);
	r = 0;
out:
	luo_close(&dev);
	if (sfd >= 0)
		close(sfd);
	if (stfd >= 0)
		close(stfd);
	if (ram >= 0)
		close(ram);
	config_fini(&nc);
	free(buf);
	pthread_mutex_unlock(&vm->op_lock);
	r = vm_restore_finish(vm, r, flags, e);
	log_bind(prev);
	return r;
}
