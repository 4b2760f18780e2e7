// SPDX-License-Identifier: Apache-2.0
/*
 * Guest RAM to a snapshot's memory file (vmm/vm/snapshot.c), on real files: RAM that is the
 * file itself (--memory SIZE,file=PATH) is snapshotted in place (nothing written, nothing
 * beside it, the same inode, what the guest wrote in it); another path gets a copy; RAM mapped
 * copy-on-write from that same file is never "in place" (the guest's writes are not in it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../vmm/vm/snapshot.h"
#include "vmm/guest_mem.h"

#define RAM (4u << 20)

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/vmm-snapram-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* dir/name, in a buffer of the caller's (names kept across calls). */
#define path_of(name) path_in((char[128]){ 0 }, name)
static char *path_in(char *buf, const char *name)
{
	snprintf(buf, 128, "%s/%s", dir, name);
	return buf;
}

static int ram_file(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, RAM), 0);
	return fd;
}

static ino_t ino(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

static int entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void expect_at(const char *path, off_t off, const char *want)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, strlen(want), off), (ssize_t)strlen(want));
	assert_memory_equal(buf, want, strlen(want));
	close(fd);
}

static void test_in_place(void **state)
{
	struct guest_mem gm;
	char err[256] = "";
	char *ram = path_of("guest.ram");
	int fd = ram_file(ram);
	ino_t before = ino(ram);

	(void)state;
	assert_int_equal(gm_adopt(&gm, fd, RAM), 0);
	close(fd);
	assert_int_equal(gm_write(&gm, GPA(0x1000), "written by the guest", 20), 0);
	assert_int_equal(gm_write(&gm, GPA(RAM - 8), "the end!", 8), 0);
	/* The RAM's own file: done in place, nothing beside it, the same inode. */
	assert_int_equal(snapshot_write_ram(&gm, ram, err, sizeof(err)), 0);
	assert_int_equal(ino(ram), before);
	assert_int_equal(entries(), 1);
	expect_at(ram, 0x1000, "written by the guest");
	expect_at(ram, RAM - 8, "the end!");
	/* By another name of the same file (a hard link): still in place. */
	assert_int_equal(link(ram, path_of("link.ram")), 0);
	assert_int_equal(snapshot_write_ram(&gm, path_of("link.ram"), err, sizeof(err)), 0);
	assert_int_equal(ino(path_of("link.ram")), before);
	assert_int_equal(entries(), 2);
	/* Another path: a copy of its own, the RAM's file left as it is. */
	assert_int_equal(snapshot_write_ram(&gm, path_of("copy.mem"), err, sizeof(err)), 0);
	assert_true(ino(path_of("copy.mem")) != before);
	assert_int_equal(ino(ram), before);
	expect_at(path_of("copy.mem"), 0x1000, "written by the guest");
	expect_at(path_of("copy.mem"), RAM - 8, "the end!");
	/* Somewhere it cannot go: one line naming the path, nothing left behind. */
	assert_true(snapshot_write_ram(&gm, path_of("nodir/x.mem"), err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "nodir"));
	assert_int_equal(entries(), 3);
	gm_destroy(&gm);
	unlink(ram);
	unlink(path_of("link.ram"));
	unlink(path_of("copy.mem"));
}

/* Mapped copy-on-write from the file: its own path gets the guest's RAM as a new file. */
static void test_private_map_is_copied(void **state)
{
	struct guest_mem gm;
	char err[256] = "";
	char *ram = path_of("snap.mem");
	int fd = ram_file(ram);
	ino_t before = ino(ram);

	(void)state;
	assert_int_equal(pwrite(fd, "from the file", 13, 0x2000), 13);
	assert_int_equal(gm_adopt_private(&gm, fd, RAM), 0);
	close(fd);
	assert_int_equal(gm_write(&gm, GPA(0x1000), "written by the guest", 20), 0);
	expect_at(ram, 0x1000, "\0\0\0\0");
	assert_int_equal(snapshot_write_ram(&gm, ram, err, sizeof(err)), 0);
	assert_true(ino(ram) != before);
	expect_at(ram, 0x1000, "written by the guest");
	expect_at(ram, 0x2000, "from the file");
	assert_int_equal(entries(), 1);
	gm_destroy(&gm);
	unlink(ram);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_place),
		cmocka_unit_test(test_private_map_is_copied),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
