/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small ACPI Machine Language (AML) byte-code builder, enough for a static DSDT:
 * names, scopes, devices, simple methods, packages, integers, strings, EISA IDs and
 * resource templates. Encoding follows ACPI 6.5 chapter 20 ("ACPI Machine Language
 * Specification"); resource descriptors follow chapter 6.4.
 *
 * The builder writes into a caller-supplied buffer and never allocates. Errors are
 * sticky: the first failure (-ENOSPC, -EINVAL, -E2BIG) is kept in `err`, later calls
 * do nothing, and aml_finish() reports it, so building code reads straight through.
 *
 * Nested objects (Scope, Device, Method, Package, Buffer) are opened with a *_begin()
 * call that returns a token and closed with aml_end() (or aml_restemplate_end()),
 * which inserts the PkgLength once the body size is known.
 */
#ifndef VMM_AML_H
#define VMM_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/compiler.h"

/* ACPI 6.5 §20.2.5 opcodes used here. */
#define AML_ZERO_OP	      0x00
#define AML_ONE_OP	      0x01
#define AML_NAME_OP	      0x08
#define AML_BYTE_PREFIX	      0x0a
#define AML_WORD_PREFIX	      0x0b
#define AML_DWORD_PREFIX      0x0c
#define AML_STRING_PREFIX     0x0d
#define AML_QWORD_PREFIX      0x0e
#define AML_SCOPE_OP	      0x10
#define AML_BUFFER_OP	      0x11
#define AML_PACKAGE_OP	      0x12
#define AML_METHOD_OP	      0x14
#define AML_DUAL_NAME_PREFIX  0x2e
#define AML_MULTI_NAME_PREFIX 0x2f
#define AML_EXT_OP_PREFIX     0x5b
#define AML_DEVICE_OP	      0x82 /* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR	      0x5c
#define AML_PARENT_PREFIX     0x5e
#define AML_RETURN_OP	      0xa4

/* Largest value a PkgLength can hold (28 bits, §20.2.4). */
#define AML_PKGLEN_MAX 0x0fffffffU

/* Resource descriptor tags (ACPI 6.5 §6.4.2 small, §6.4.3 large). */
#define AML_RES_IRQ_NOFLAGS 0x22 /* small, type 0x04, length 2 */
#define AML_RES_IO	    0x47 /* small, type 0x08, length 7 */
#define AML_RES_END_TAG	    0x79 /* small, type 0x0f, length 1 */
#define AML_RES_MEM32_FIXED 0x86 /* large, type 0x06 */
#define AML_RES_EXT_IRQ	    0x89 /* large, type 0x09 */

/* Extended Interrupt descriptor flags (§6.4.3.6). */
#define AML_IRQ_CONSUMER   (1u << 0)
#define AML_IRQ_EDGE	   (1u << 1)
#define AML_IRQ_ACTIVE_LOW (1u << 2)
#define AML_IRQ_SHARED	   (1u << 3)

struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int err; /* first error, sticky */
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
/* Returns the sticky error (0 if none) and the number of bytes written. */
int aml_finish(const struct aml *a, size_t *len) WUR;

/* NameSeg: exactly four characters, [A-Z_] then [A-Z0-9_] (§20.2.2). */
bool aml_nameseg_valid(const char *seg);

/*
 * PkgLength for a body of `body` bytes that follow it: the encoded value counts the
 * PkgLength bytes themselves (§20.2.4). Writes 1-4 bytes to out and returns how many,
 * or -E2BIG when the total does not fit in 28 bits.
 */
int aml_pkglen_encode(uint8_t out[4], size_t body) WUR;

/* Raw bytes; for callers that know the encoding. */
void aml_bytes(struct aml *a, const void *data, size_t n);

/*
 * NameString: optional leading '\' or '^'s, then NameSegs separated by '.'. Segments
 * shorter than four characters are padded with '_' as ASL does ("RTC" -> "RTC_").
 */
void aml_name(struct aml *a, const char *path);

/* Smallest encoding: ZeroOp, OneOp, Byte/Word/DWord/QWord prefix (§20.2.3). */
void aml_int(struct aml *a, uint64_t v);
/* Always a DWordConst, the form an EISAID() takes in ASL. */
void aml_dword(struct aml *a, uint32_t v);
/* String constant: printable ASCII, NUL-terminated in the encoding. */
void aml_string(struct aml *a, const char *s);
/* EISAID("PNP0501") -> compressed 32-bit ID as a DWordConst; "AAA####" with hex digits. */
void aml_eisaid(struct aml *a, const char *id);
/* Computes the compressed EISA ID; -EINVAL on a malformed string. */
int aml_eisaid_encode(const char *id, uint32_t *out) WUR;

/* Name (path, <next object>): emit the value right after. */
void aml_name_decl(struct aml *a, const char *path);

size_t aml_scope_begin(struct aml *a, const char *path);
size_t aml_device_begin(struct aml *a, const char *path);
/* Method flags: argument count 0-7, serialized, sync level 0 (§19.6.85). */
size_t aml_method_begin(struct aml *a, const char *path, unsigned int nargs, bool serialized);
/* Package with nelems elements; the caller emits exactly that many data objects. */
size_t aml_package_begin(struct aml *a, uint8_t nelems);
/* Return (<next object>) */
void aml_return(struct aml *a);
/* Closes a Scope, Device, Method or Package opened with the token. */
void aml_end(struct aml *a, size_t token);

/* ResourceTemplate () { ... }: a Buffer whose bytes are resource descriptors. */
size_t aml_restemplate_begin(struct aml *a);
/* Appends the End Tag with its checksum, then the Buffer's size and PkgLength. */
void aml_restemplate_end(struct aml *a, size_t token);

/* Resource descriptors, inside a resource template. */
void aml_res_io(struct aml *a, uint16_t base, uint8_t len); /* Decode16, fixed base */
void aml_res_irq_noflags(struct aml *a, uint8_t irq);	    /* ISA IRQ 0-15, edge high */
void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable);
void aml_res_ext_irq(struct aml *a, uint8_t flags, uint32_t gsi);

#endif
