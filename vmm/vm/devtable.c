// SPDX-License-Identifier: Apache-2.0
/* The ordered device table: realize in order, unwind in reverse (include/vmm/device.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/state.h"

static int devtable_grow(struct device_table *t)
{
	unsigned int cap = t->cap ? t->cap * 2 : 16;
	struct device *d = realloc(t->dev, cap * sizeof(*d));

	if (!d)
		return -ENOMEM;
	t->dev = d;
	t->cap = cap;
	return 0;
}

int devtable_check(const struct device_row *rows, unsigned int nr_rows,
		   const struct vmm_config *cfg, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < nr_rows; i++) {
		unsigned int n = rows[i].count ? rows[i].count(cfg) : 1;
		int r;

		for (unsigned int idx = 0; rows[i].ops->check && idx < n; idx++) {
			if ((r = rows[i].ops->check(cfg, idx, err, errlen)) < 0)
				return r;
		}
	}
	return 0;
}

int devtable_realize(struct device_table *t, const struct device_row *rows, unsigned int nr_rows,
		     const struct device_host *h, char *err, size_t errlen)
{
	int r;

	for (unsigned int i = 0; i < nr_rows; i++) {
		unsigned int n = rows[i].count ? rows[i].count(h->cfg) : 1;

		for (unsigned int idx = 0; idx < n; idx++) {
			struct device *d;

			if (t->nr == t->cap && (r = devtable_grow(t)) < 0) {
				snprintf(err, errlen, "%s: out of memory", rows[i].ops->kind);
				goto fail;
			}
			d = &t->dev[t->nr];
			memset(d, 0, sizeof(*d));
			d->ops = rows[i].ops;
			/* Counted before realize: a failed realize is unrealized too. */
			t->nr++;
			if ((r = d->ops->realize(d, h, idx, err, errlen)) < 0)
				goto fail;
			for (unsigned int j = 0; j + 1 < t->nr; j++) {
				if (!strcmp(t->dev[j].id, d->id)) {
					snprintf(err, errlen, "%s: id '%s' is taken by a %s",
						 d->ops->kind, d->id, t->dev[j].ops->kind);
					r = -EEXIST;
					goto fail;
				}
			}
		}
	}
	return 0;
fail:
	devtable_unrealize(t);
	return r;
}

void devtable_unrealize(struct device_table *t)
{
	while (t->nr > 0) {
		struct device *d = &t->dev[--t->nr];

		d->ops->unrealize(d);
	}
	free(t->dev);
	t->dev = NULL;
	t->cap = 0;
}

int devtable_quiesce(struct device_table *t)
{
	for (unsigned int i = 0; i < t->nr; i++) {
		struct device *d = &t->dev[i];
		int r;

		if (!d->ops->quiesce || (r = d->ops->quiesce(d)) == 0)
			continue;
		/* Undo: the ones before continue, in reverse. */
		while (i-- > 0) {
			if (t->dev[i].ops->resume)
				t->dev[i].ops->resume(&t->dev[i]);
		}
		return r;
	}
	return 0;
}

void devtable_resume(struct device_table *t)
{
	for (unsigned int i = t->nr; i-- > 0;) {
		if (t->dev[i].ops->resume)
			t->dev[i].ops->resume(&t->dev[i]);
	}
}

void devtable_reset(struct device_table *t)
{
	for (unsigned int i = 0; i < t->nr; i++) {
		if (t->dev[i].ops->reset)
			t->dev[i].ops->reset(&t->dev[i]);
	}
}

unsigned int devtable_describe(struct device_table *t, struct acpi_dev_desc *out,
			       unsigned int max)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < t->nr && n < max; i++) {
		if (t->dev[i].ops->describe && t->dev[i].ops->describe(&t->dev[i], &out[n]))
			n++;
	}
	return n;
}

int devtable_save(struct device_table *t, struct state_writer *w, char *err, size_t errlen)
{
	int devices = state_node(w, 0, "devices");

	for (unsigned int i = 0; i < t->nr; i++) {
		struct device *d = &t->dev[i];
		struct dev_state_writer dw = { w, state_node(w, devices, d->id) };
		char compat[64];
		int r;

		snprintf(compat, sizeof(compat), "vmm,%s-v1", d->ops->kind);
		state_put_str(w, dw.node, "compatible", compat);
		if (!d->ops->save) {
			snprintf(err, errlen, "%s: cannot be saved", d->id);
			return -EOPNOTSUPP;
		}
		if ((r = d->ops->save(d, &dw)) < 0) {
			snprintf(err, errlen, "%s: saving its state: %s", d->id, strerror(-r));
			return r;
		}
	}
	return w->err;
}

int devtable_load(struct device_table *t, const struct state_reader *r, char *err, size_t errlen)
{
	int devices = state_find(r, "/devices"), n = 0;

	if (devices < 0) {
		snprintf(err, errlen, "devices: missing from the state");
		return -EINVAL;
	}
	/* The same set: every node a device of ours, every device of ours a node. */
	for (int node = state_first_child(r, devices); node >= 0;
	     node = state_next_sibling(r, node), n++) {
		const char *id = state_node_name(r, node);

		if (!id || !devtable_find(t, id)) {
			snprintf(err, errlen, "devices: the state has a device '%s' this VM has not",
				 id ? id : "?");
			return -EINVAL;
		}
	}
	for (unsigned int i = 0; i < t->nr; i++) {
		struct device *d = &t->dev[i];
		char path[DEVICE_ID_MAX + 16], compat[64];
		struct dev_state_reader dr = { r, -1 };
		const char *have;
		int e;

		snprintf(path, sizeof(path), "/devices/%s", d->id);
		dr.node = state_find(r, path);
		if (dr.node < 0) {
			snprintf(err, errlen, "devices: this VM has a device '%s' the state has not",
				 d->id);
			return -EINVAL;
		}
		snprintf(compat, sizeof(compat), "vmm,%s-v1", d->ops->kind);
		have = state_get_str(r, dr.node, "compatible", 64);
		if (!have || strcmp(have, compat)) {
			snprintf(err, errlen, "%s: the state's is a %s, not a %s", d->id,
				 have ? have : "device of no kind", compat);
			return -EINVAL;
		}
		if (!d->ops->load) {
			snprintf(err, errlen, "%s: cannot be loaded", d->id);
			return -EOPNOTSUPP;
		}
		if ((e = d->ops->load(d, &dr, err, errlen)) < 0)
			return e;
	}
	return 0;
}

struct device *devtable_find(struct device_table *t, const char *id)
{
	for (unsigned int i = 0; i < t->nr; i++) {
		if (!strcmp(t->dev[i].id, id))
			return &t->dev[i];
	}
	return NULL;
}
