/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Firecracker's JSON shapes <-> the configuration model (vmm/config/config_json.c), shared by
 * the API socket's request bodies and `vmm --config-file`. Field names, types and enum values
 * are those of Firecracker's OpenAPI document. A field Firecracker has whose value asks for
 * something vmm lacks, and any field Firecracker does not have, is refused with a message that
 * names it; nothing is silently ignored. On error the configuration is unchanged.
 */
#ifndef VMM_CONFIG_JSON_H
#define VMM_CONFIG_JSON_H

#include <jansson.h>
#include <stdbool.h>

#include "vmm/config.h"

/* PUT /boot-source: kernel_image_path (required), boot_args, initrd_path. */
int cfgjson_boot_source(struct vmm_config *c, const json_t *body, struct vmm_error *e) WUR;
/*
 * PUT /machine-config (patch false: vcpu_count and mem_size_mib required, omitted optional
 * fields back to their defaults) and PATCH /machine-config (patch true: only what is given).
 */
int cfgjson_machine_config(struct vmm_config *c, const json_t *body, bool patch,
			   struct vmm_error *e) WUR;
/* PUT /drives/{id}: path_id is the id in the path, which the body's drive_id must equal. */
int cfgjson_drive(struct vmm_config *c, const char *path_id, const json_t *body,
		  struct vmm_error *e) WUR;
/* PUT /network-interfaces/{iface_id}: the body's iface_id must equal path_id. */
int cfgjson_net(struct vmm_config *c, const char *path_id, const json_t *body,
		struct vmm_error *e) WUR;
/* PUT /pmem/{id}: path_id is the id in the path, which the body's id must equal. */
int cfgjson_pmem(struct vmm_config *c, const char *path_id, const json_t *body,
		 struct vmm_error *e) WUR;
/* PUT /entropy: a virtio-rng device, with "rate_limiter" optional. */
int cfgjson_entropy(struct vmm_config *c, const json_t *body, struct vmm_error *e) WUR;
/* PUT /vsock: Firecracker's Vsock body (guest_cid, uds_path; vsock_id accepted). */
int cfgjson_vsock(struct vmm_config *c, const json_t *body, struct vmm_error *e) WUR;
/* A whole Firecracker configuration file: "boot-source", "machine-config", "drives",
 * "entropy". */
int cfgjson_file(struct vmm_config *c, const json_t *root, struct vmm_error *e) WUR;

/* GET /machine-config */
json_t *cfgjson_machine_config_get(const struct vmm_config *c);
/* GET /vm/config: the FullVmConfiguration layout. */
json_t *cfgjson_full(const struct vmm_config *c);

/* Parse text as one JSON object (duplicate keys refused); what names it in messages. */
int cfgjson_parse_object(const char *text, size_t len, const char *what, json_t **out,
			 struct vmm_error *e) WUR;

#endif
