// SPDX-License-Identifier: Apache-2.0
/*
 * The host-update helpers (vmm/host/): the LUO client against a stand-in for /dev/liveupdate
 * that keeps the kernel's rules (struct sizes, names, tokens, one retrieval, what a kexec
 * hands over), so its structures and error paths are tested where the kernel is absent; and
 * the command line a kexec reuses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/kexec.h"
#include "vmm/luo.h"

/* ---- a stand-in for /dev/liveupdate ---- */

#define FAKE_SESSIONS 8
#define FAKE_FILES    4

struct fake_file {
	uint64_t token;
	int fd; /* the kernel's reference: a dup */
};

struct fake_session {
	char name[LUO_NAME_LEN];
	int sfd; /* the fd handed out, 0 if none */
	int incoming, retrieved, finished;
	struct fake_file files[FAKE_FILES];
	int nfiles;
};

static struct fake_session fs[FAKE_SESSIONS];
static int devfd = 1000;
static int calls;
static int fail_next; /* an errno the next call returns, whatever it is */

static struct fake_session *by_sfd(int sfd)
{
	for (int i = 0; i < FAKE_SESSIONS; i++) {
		if (fs[i].name[0] && fs[i].sfd == sfd)
			return &fs[i];
	}
	return NULL;
}

static int refuse(int e)
{
	errno = e;
	return -1;
}

/* What a memfd handler accepts: an unlinked shmem file (here: memfd_create's). */
static int preservable(int fd)
{
	char link[64], path[256];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n < 0)
		return -EBADF;
	path[n] = '\0';
	return strncmp(path, "/memfd:", 7) == 0 ? 0 : -ENOENT;
}

static int fake_ioctl(int fd, unsigned long req, void *arg)
{
	calls++;
	if (fail_next) {
		int e = fail_next;

		fail_next = 0;
		return refuse(e);
	}
	if (fd == devfd && (req == LUO_CREATE_SESSION || req == LUO_RETRIEVE_SESSION)) {
		struct luo_session_req *r = arg;

		if (r->size < 72)
			return refuse(EINVAL);
		/* The kernel copies at most 64 bytes with strscpy: one NUL within them. */
		assert_non_null(memchr(r->name, 0, LUO_NAME_LEN));
		for (int i = 0; i < FAKE_SESSIONS; i++) {
			struct fake_session *s = &fs[i];

			if (!s->name[0] || strcmp(s->name, (char *)r->name))
				continue;
			if (req == LUO_CREATE_SESSION && !s->incoming)
				return refuse(EEXIST);
			if (req == LUO_RETRIEVE_SESSION && s->incoming) {
				if (s->retrieved)
					return refuse(EINVAL);
				s->retrieved = 1;
				s->sfd = 2000 + i;
				r->fd = s->sfd;
				return 0;
			}
		}
		if (req == LUO_RETRIEVE_SESSION)
			return refuse(ENOENT);
		for (int i = 0; i < FAKE_SESSIONS; i++) {
			if (!fs[i].name[0]) {
				memcpy(fs[i].name, r->name, LUO_NAME_LEN);
				fs[i].sfd = 2000 + i;
				r->fd = fs[i].sfd;
				return 0;
			}
		}
		return refuse(ENOMEM);
	}
	struct fake_session *s = by_sfd(fd);

	if (!s)
		return refuse(EINVAL);
	if (req == LUO_PRESERVE_FD || req == LUO_RETRIEVE_FD) {
		struct luo_fd_req *r = arg;

		if (r->size < 16)
			return refuse(EINVAL);
		for (int i = 0; i < s->nfiles; i++) {
			if (s->files[i].token != r->token)
				continue;
			if (req == LUO_PRESERVE_FD)
				return refuse(EEXIST);
			r->fd = fcntl(s->files[i].fd, F_DUPFD_CLOEXEC, 0);
			return 0;
		}
		if (req == LUO_RETRIEVE_FD)
			return refuse(ENOENT);
		if (s->nfiles == FAKE_FILES)
			return refuse(ENOSPC);
		int p = preservable(r->fd);

		if (p < 0)
			return refuse(-p);
		s->files[s->nfiles].token = r->token;
		s->files[s->nfiles].fd = dup(r->fd);
		s->nfiles++;
		return 0;
	}
	if (req == LUO_FINISH) {
		struct luo_finish_req *r = arg;

		if (r->size < 8)
			return refuse(EINVAL);
		s->finished = 1;
		return 0;
	}
	return refuse(EINVAL);
}

/* The kexec: every outgoing session whose fd is open becomes an incoming one. */
static void fake_kexec(void)
{
	for (int i = 0; i < FAKE_SESSIONS; i++) {
		if (fs[i].name[0]) {
			fs[i].incoming = 1;
			fs[i].sfd = 0;
		}
	}
}

static void fake_reset(void)
{
	for (int i = 0; i < FAKE_SESSIONS; i++) {
		for (int j = 0; j < fs[i].nfiles; j++)
			close(fs[i].files[j].fd);
	}
	memset(fs, 0, sizeof(fs));
	calls = 0;
	fail_next = 0;
}

static const struct luo_dev dev = { .fd = 1000, .ioctl = fake_ioctl };

/* ---- LUO client ---- */

static void test_luo_abi(void **state)
{
	(void)state;
	/* The kernel's numbers: type 0xBA, _IO (no size or direction bits). */
	assert_int_equal(LUO_CREATE_SESSION, 0xBA00);
	assert_int_equal(LUO_RETRIEVE_SESSION, 0xBA01);
	assert_int_equal(LUO_PRESERVE_FD, 0xBA40);
	assert_int_equal(LUO_RETRIEVE_FD, 0xBA41);
	assert_int_equal(LUO_FINISH, 0xBA42);
	assert_int_equal(sizeof(struct luo_session_req), 72);
	assert_int_equal(sizeof(struct luo_fd_req), 16);
	assert_int_equal(sizeof(struct luo_finish_req), 8);
}

/* A VM's RAM and state in a session, a kexec, and both back with their bytes. */
static void test_luo_round_trip(void **state)
{
	char err[256], buf[16];
	int sfd = -1, ram = memfd_create("ram", MFD_CLOEXEC), st = memfd_create("state", 0), r1, r2;

	(void)state;
	fake_reset();
	assert_true(ram >= 0 && st >= 0);
	assert_int_equal(ftruncate(ram, 2 << 20), 0);
	assert_int_equal(pwrite(ram, "guest RAM", 9, 4096), 9);
	assert_int_equal(pwrite(st, "VMMSTATE", 8, 0), 8);
	assert_int_equal(luo_session_create(&dev, "vmm-vm0", &sfd, err, sizeof(err)), 0);
	assert_true(sfd > 0);
	assert_int_equal(luo_preserve(&dev, sfd, ram, 1, err, sizeof(err)), 0);
	assert_int_equal(luo_preserve(&dev, sfd, st, 2, err, sizeof(err)), 0);
	close(ram);
	close(st);
	fake_kexec();
	assert_int_equal(luo_session_retrieve(&dev, "vmm-vm0", &sfd, err, sizeof(err)), 0);
	assert_int_equal(luo_retrieve(&dev, sfd, 2, &r2, err, sizeof(err)), 0);
	assert_int_equal(luo_retrieve(&dev, sfd, 1, &r1, err, sizeof(err)), 0);
	assert_int_equal(pread(r1, buf, 9, 4096), 9);
	assert_memory_equal(buf, "guest RAM", 9);
	assert_int_equal(pread(r2, buf, 8, 0), 8);
	assert_memory_equal(buf, "VMMSTATE", 8);
	/* Retrieved fds are close-on-exec, as the kernel makes them. */
	assert_true(fcntl(r1, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(luo_finish(&dev, sfd, err, sizeof(err)), 0);
	assert_true(fs[0].finished);
	close(r1);
	close(r2);
	fake_reset();
}

static void test_luo_errors(void **state)
{
	char err[256], name[80];
	int sfd = -1, fd = -1, memfd = memfd_create("m", MFD_CLOEXEC);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	(void)state;
	fake_reset();
	/* Names: refused before any ioctl. */
	memset(name, 'a', sizeof(name));
	name[LUO_NAME_LEN] = '\0'; /* 64 characters: one too many */
	assert_int_equal(luo_session_create(&dev, name, &sfd, err, sizeof(err)), -EINVAL);
	assert_int_equal(luo_session_create(&dev, "", &sfd, err, sizeof(err)), -EINVAL);
	assert_int_equal(luo_session_create(&dev, "a b", &sfd, err, sizeof(err)), -EINVAL);
	assert_int_equal(luo_session_create(&dev, "../x", &sfd, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "'../x'"));
	assert_int_equal(calls, 0);
	name[LUO_NAME_LEN - 1] = '\0'; /* 63: the longest */
	assert_int_equal(luo_session_create(&dev, name, &sfd, err, sizeof(err)), 0);

	/* A name taken. */
	assert_int_equal(luo_session_create(&dev, "vm", &sfd, err, sizeof(err)), 0);
	assert_int_equal(luo_session_create(&dev, "vm", &fd, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "'vm' exists already"));
	/* A token taken; a file LUO cannot keep; a bad fd. */
	assert_int_equal(luo_preserve(&dev, sfd, memfd, 7, err, sizeof(err)), 0);
	assert_int_equal(luo_preserve(&dev, sfd, memfd, 7, err, sizeof(err)), -EEXIST);
	assert_non_null(strstr(err, "token 7 is taken"));
	assert_int_equal(luo_preserve(&dev, sfd, null, 8, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "only memfds"));
	assert_int_equal(luo_preserve(&dev, sfd, -1, 9, err, sizeof(err)), -EBADF);
	/* Out of memory while pinning: said so. */
	fail_next = ENOMEM;
	assert_int_equal(luo_preserve(&dev, sfd, memfd, 10, err, sizeof(err)), -ENOMEM);
	assert_non_null(strstr(err, "pinned"));
	/* Something the kernel says that we do not expect: its own words. */
	fail_next = EOPNOTSUPP;
	assert_int_equal(luo_finish(&dev, sfd, err, sizeof(err)), -EOPNOTSUPP);
	assert_non_null(strstr(err, strerror(EOPNOTSUPP)));

	/* After the kexec: a session that was not handed over, one retrieved twice, a token
	 * that is not there, a finish refused. */
	fake_kexec();
	assert_int_equal(luo_session_retrieve(&dev, "other", &fd, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "'other'"));
	assert_int_equal(luo_session_retrieve(&dev, "vm", &sfd, err, sizeof(err)), 0);
	assert_int_equal(luo_session_retrieve(&dev, "vm", &fd, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "retrieved already"));
	assert_int_equal(luo_retrieve(&dev, sfd, 99, &fd, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "token 99 is not in this session"));
	fail_next = EBUSY;
	assert_int_equal(luo_finish(&dev, sfd, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "still in use"));
	close(memfd);
	close(null);
	fake_reset();
}

static void test_luo_open(void **state)
{
	char err[256], path[] = "/tmp/vmm-luo-XXXXXX";
	struct luo_dev d;
	int fd;

	(void)state;
	/* No device: the kernel has no LUO, said in words. */
	assert_int_equal(luo_open(&d, "/nonexistent/liveupdate", 0, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "no Live Update Orchestrator"));
	/* A file opens (the device's ioctls are then ioctl(2)'s). */
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(luo_open(&d, path, 0, err, sizeof(err)), 0);
	assert_true(d.fd >= 0);
	/* ...and a real ioctl on something that is not the device fails cleanly. */
	assert_true(luo_session_create(&d, "x", &fd, err, sizeof(err)) < 0);
	luo_close(&d);
	assert_int_equal(d.fd, -1);
	unlink(path);
}

/* ---- kexec ---- */

static void test_cmdline_reuse(void **state)
{
	char *s;

	(void)state;
	s = kexec_cmdline_reuse("BOOT_IMAGE=/boot/vmlinuz-6.1 root=UUID=1 ro quiet\n", NULL);
	assert_string_equal(s, "root=UUID=1 ro quiet");
	free(s);
	s = kexec_cmdline_reuse("console=ttyS0 memmap=1G!8G\n", "vmmhost.resume=1");
	assert_string_equal(s, "console=ttyS0 memmap=1G!8G vmmhost.resume=1");
	free(s);
	/* A quoted value keeps its spaces, and a BOOT_IMAGE inside it is not a word of its own. */
	s = kexec_cmdline_reuse("  a=\"x BOOT_IMAGE=y\"   BOOT_IMAGE=z b\n", "");
	assert_string_equal(s, "a=\"x BOOT_IMAGE=y\" b");
	free(s);
	s = kexec_cmdline_reuse("", "only");
	assert_string_equal(s, "only");
	free(s);
	s = kexec_cmdline_reuse("\n", NULL);
	assert_string_equal(s, "");
	free(s);
}

static void test_kexec_refusals(void **state)
{
	char err[256];

	(void)state;
	/* Files are checked before the kernel is asked. */
	assert_int_equal(kexec_load_file("/nonexistent/bzImage", NULL, "", err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/bzImage"));
	assert_int_equal(kexec_load_file("/", NULL, "", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(kexec_load_file("/proc/self/exe", "/nonexistent/initrd", "", err,
					 sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/initrd"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_luo_abi),
		cmocka_unit_test(test_luo_round_trip),
		cmocka_unit_test(test_luo_errors),
		cmocka_unit_test(test_luo_open),
		cmocka_unit_test(test_cmdline_reuse),
		cmocka_unit_test(test_kexec_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
