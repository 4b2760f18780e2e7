// SPDX-License-Identifier: Apache-2.0
/* The VM state blob: libfdt behind a header with a version and a CRC (include/vmm/state.h). */
#include <endian.h>
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "vmm/state.h"

#define STATE_INITIAL_CAP (64 * KiB)

int state_writer_init(struct state_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->cap = STATE_INITIAL_CAP;
	w->fdt = malloc(w->cap);
	if (!w->fdt)
		return -ENOMEM;
	if (fdt_create_empty_tree(w->fdt, (int)w->cap) < 0) {
		free(w->fdt);
		w->fdt = NULL;
		return -EINVAL;
	}
	fdt_setprop_string(w->fdt, 0, "compatible", STATE_COMPATIBLE);
	fdt_setprop_u32(w->fdt, 0, "format-version", STATE_FORMAT_VERSION);
	fdt_setprop_string(w->fdt, 0, "vmm-version", VMM_VERSION_STRING);
	return 0;
}

void state_writer_fini(struct state_writer *w)
{
	free(w->fdt);
	w->fdt = NULL;
}

/* Double the buffer; node offsets stay valid (fdt_open_into keeps the structure). */
static bool state_grow(struct state_writer *w)
{
	size_t cap = w->cap * 2;
	void *n;

	if (cap > STATE_MAX_LEN || !(n = malloc(cap)) || fdt_open_into(w->fdt, n, (int)cap) < 0) {
		w->err = -E2BIG;
		return false;
	}
	free(w->fdt);
	w->fdt = n;
	w->cap = cap;
	return true;
}

int state_node(struct state_writer *w, int parent, const char *name)
{
	int r;

	if (w->err)
		return w->err;
	while ((r = fdt_add_subnode(w->fdt, parent, name)) == -FDT_ERR_NOSPACE) {
		if (!state_grow(w))
			return w->err;
	}
	if (r < 0)
		w->err = -EINVAL;
	return r < 0 ? w->err : r;
}

void state_put(struct state_writer *w, int node, const char *prop, const void *data, size_t len)
{
	int r;

	if (w->err)
		return;
	if (node < 0 || len > STATE_MAX_LEN) {
		w->err = -EINVAL;
		return;
	}
	while ((r = fdt_setprop(w->fdt, node, prop, data, (int)len)) == -FDT_ERR_NOSPACE) {
		if (!state_grow(w))
			return;
	}
	if (r < 0)
		w->err = -EINVAL;
}

void state_put_u32(struct state_writer *w, int node, const char *prop, uint32_t v)
{
	fdt32_t be = cpu_to_fdt32(v);

	state_put(w, node, prop, &be, sizeof(be));
}

void state_put_u64(struct state_writer *w, int node, const char *prop, uint64_t v)
{
	fdt64_t be = cpu_to_fdt64(v);

	state_put(w, node, prop, &be, sizeof(be));
}

void state_put_str(struct state_writer *w, int node, const char *prop, const char *s)
{
	state_put(w, node, prop, s, strlen(s) + 1);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, 4);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return le64toh(v);
}

int state_finish(struct state_writer *w, uint8_t **out, size_t *len)
{
	uint8_t *buf;
	size_t blob;
	int r = w->err;

	if (r == 0 && fdt_pack(w->fdt) < 0)
		r = -EINVAL;
	if (r < 0) {
		state_writer_fini(w);
		return r;
	}
	blob = fdt_totalsize(w->fdt);
	buf = malloc(STATE_HEADER_LEN + blob);
	if (!buf) {
		state_writer_fini(w);
		return -ENOMEM;
	}
	memcpy(buf, STATE_MAGIC, 8);
	put_le32(buf + 8, STATE_FORMAT_VERSION);
	put_le32(buf + 12, STATE_HEADER_LEN);
	put_le64(buf + 16, blob);
	put_le32(buf + 24, (uint32_t)crc32(0, w->fdt, (uInt)blob));
	put_le32(buf + 28, 0);
	memcpy(buf + STATE_HEADER_LEN, w->fdt, blob);
	state_writer_fini(w);
	*out = buf;
	*len = STATE_HEADER_LEN + blob;
	return 0;
}

int state_open(struct state_reader *r, const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	uint64_t blob;
	uint32_t version, hlen, crc;
	const char *compat;
	int clen;

	memset(r, 0, sizeof(*r));
	if (len < STATE_HEADER_LEN || memcmp(buf, STATE_MAGIC, 8)) {
		snprintf(err, errlen, len < 8 || memcmp(buf, STATE_MAGIC, 8)
				      ? "not a vmm state (no VMMSTATE header)"
				      : "truncated: %zu bytes, not even a header", len);
		return -EINVAL;
	}
	version = get_le32(buf + 8);
	hlen = get_le32(buf + 12);
	blob = get_le64(buf + 16);
	crc = get_le32(buf + 24);
	if (version > STATE_FORMAT_VERSION) {
		snprintf(err, errlen, "format version %u is newer than this vmm's %u", version,
			 STATE_FORMAT_VERSION);
		return -EPROTO;
	}
	if (version == 0 || hlen != STATE_HEADER_LEN) {
		snprintf(err, errlen, "bad header (version %u, header length %u)", version, hlen);
		return -EINVAL;
	}
	if (blob > STATE_MAX_LEN || blob > len - STATE_HEADER_LEN) {
		snprintf(err, errlen, "truncated: the header says %llu bytes of state, %zu follow",
			 (unsigned long long)blob, len - STATE_HEADER_LEN);
		return -EINVAL;
	}
	if ((uint32_t)crc32(0, buf + STATE_HEADER_LEN, (uInt)blob) != crc) {
		snprintf(err, errlen, "CRC mismatch: the state is damaged");
		return -EINVAL;
	}
	/*
	 * The tree as vmm writes it: FDT version 17, exactly the blob's size. Checked before
	 * libfdt looks deeper: libfdt 1.6 takes older versions, which have no struct size, and
	 * then reads past the buffer.
	 */
	const void *fdt = buf + STATE_HEADER_LEN;
	if (blob < sizeof(struct fdt_header) || fdt_magic(fdt) != FDT_MAGIC ||
	    fdt_version(fdt) != 17 || fdt_last_comp_version(fdt) != 16 ||
	    fdt_totalsize(fdt) != blob) {
		snprintf(err, errlen, "malformed state tree (not a version 17 tree of %llu bytes)",
			 (unsigned long long)blob);
		return -EINVAL;
	}
	if (fdt_check_full(buf + STATE_HEADER_LEN, blob) < 0) {
		snprintf(err, errlen, "malformed state tree");
		return -EINVAL;
	}
	compat = fdt_getprop(buf + STATE_HEADER_LEN, 0, "compatible", &clen);
	if (!compat || clen < 1 || compat[clen - 1] || strcmp(compat, STATE_COMPATIBLE)) {
		snprintf(err, errlen, "not a %s state", STATE_COMPATIBLE);
		return -EINVAL;
	}
	r->fdt = buf + STATE_HEADER_LEN;
	r->len = blob;
	r->version = version;
	return 0;
}

int state_find(const struct state_reader *r, const char *path)
{
	return fdt_path_offset(r->fdt, path);
}

int state_first_child(const struct state_reader *r, int node)
{
	return fdt_first_subnode(r->fdt, node);
}

int state_next_sibling(const struct state_reader *r, int node)
{
	return fdt_next_subnode(r->fdt, node);
}

const char *state_node_name(const struct state_reader *r, int node)
{
	return fdt_get_name(r->fdt, node, NULL);
}

const void *state_get_ptr(const struct state_reader *r, int node, const char *prop, size_t *len)
{
	int l;
	const void *p;

	if (node < 0)
		return NULL;
	p = fdt_getprop(r->fdt, node, prop, &l);
	if (!p || l < 0)
		return NULL;
	*len = (size_t)l;
	return p;
}

int state_get(const struct state_reader *r, int node, const char *prop, void *out, size_t len)
{
	size_t l;
	const void *p = state_get_ptr(r, node, prop, &l);

	if (!p)
		return -ENOENT;
	if (l != len)
		return -EINVAL;
	memcpy(out, p, len);
	return 0;
}

int state_get_u32(const struct state_reader *r, int node, const char *prop, uint32_t *v)
{
	fdt32_t be;
	int e = state_get(r, node, prop, &be, sizeof(be));

	if (e == 0)
		*v = fdt32_to_cpu(be);
	return e;
}

int state_get_u64(const struct state_reader *r, int node, const char *prop, uint64_t *v)
{
	fdt64_t be;
	int e = state_get(r, node, prop, &be, sizeof(be));

	if (e == 0)
		*v = fdt64_to_cpu(be);
	return e;
}

const char *state_get_str(const struct state_reader *r, int node, const char *prop, size_t max)
{
	size_t l;
	const char *p = state_get_ptr(r, node, prop, &l);

	if (!p || l == 0 || l > max || p[l - 1] || strlen(p) != l - 1)
		return NULL;
	return p;
}

void dev_state_put(struct dev_state_writer *w, const char *prop, const void *data, size_t len)
{
	state_put(w->w, w->node, prop, data, len);
}

int dev_state_get(const struct dev_state_reader *r, const char *prop, void *out, size_t len)
{
	return state_get(r->r, r->node, prop, out, len);
}

const void *dev_state_get_ptr(const struct dev_state_reader *r, const char *prop, size_t *len)
{
	return state_get_ptr(r->r, r->node, prop, len);
}

void dev_state_fail(struct dev_state_writer *w, int err)
{
	if (!w->w->err)
		w->w->err = err;
}

bool dev_state_keeps_fds(const struct dev_state_writer *w)
{
	return w->w->fds != NULL;
}

int dev_state_add_fd(struct dev_state_writer *w, int fd)
{
	struct state_fds *f = w->w->fds;

	if (!f)
		return -EOPNOTSUPP;
	if (f->nr >= STATE_MAX_FDS)
		return -ENOSPC;
	f->fd[f->nr] = fd;
	return (int)f->nr++;
}

bool dev_state_has_fds(const struct dev_state_reader *r)
{
	return r->r->fds != NULL;
}

int dev_state_take_fd(const struct dev_state_reader *r, uint32_t idx)
{
	struct state_fds *f = r->r->fds;
	int fd;

	if (!f || idx >= f->nr || f->fd[idx] < 0)
		return -EBADF;
	fd = f->fd[idx];
	f->fd[idx] = -1;
	return fd;
}
