// SPDX-License-Identifier: Apache-2.0
/*
 * AML byte-code builder. References are to ACPI 6.5: chapter 20 for the AML grammar,
 * §6.4 for resource descriptors.
 */
#include <errno.h>
#include <string.h>

#include "vmm/aml.h"

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	a->buf = buf;
	a->cap = buf ? cap : 0;
	a->len = 0;
	a->err = 0;
}

int aml_finish(const struct aml *a, size_t *len)
{
	if (a->err)
		return a->err;
	*len = a->len;
	return 0;
}

static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

static bool aml_room(struct aml *a, size_t n)
{
	if (a->err)
		return false;
	if (n > a->cap - a->len) { /* len <= cap always holds */
		aml_fail(a, -ENOSPC);
		return false;
	}
	return true;
}

void aml_bytes(struct aml *a, const void *data, size_t n)
{
	if (!aml_room(a, n))
		return;
	memcpy(a->buf + a->len, data, n);
	a->len += n;
}

static void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

static void aml_le(struct aml *a, uint64_t v, unsigned int n)
{
	uint8_t tmp[8];

	for (unsigned int i = 0; i < n; i++)
		tmp[i] = (uint8_t)(v >> (8 * i));
	aml_bytes(a, tmp, n);
}

/* Inserts n bytes at pos, moving what follows; used to put a PkgLength in front of a body. */
static void aml_insert(struct aml *a, size_t pos, const uint8_t *data, size_t n)
{
	if (a->err)
		return;
	if (pos > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	if (!aml_room(a, n))
		return;
	memmove(a->buf + pos + n, a->buf + pos, a->len - pos);
	memcpy(a->buf + pos, data, n);
	a->len += n;
}

/* §20.2.2: LeadNameChar is A-Z or '_', NameChar adds 0-9. */
static bool aml_lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool aml_name_char(char c)
{
	return aml_lead_char(c) || (c >= '0' && c <= '9');
}

bool aml_nameseg_valid(const char *seg)
{
	if (!seg || !aml_lead_char(seg[0]))
		return false;
	for (int i = 1; i < 4; i++)
		if (!aml_name_char(seg[i]))
			return false;
	return seg[4] == '\0';
}

int aml_pkglen_encode(uint8_t out[4], size_t body)
{
	/*
	 * §20.2.4: one byte holds 0-63 in bits 5:0. Otherwise bits 7:6 count the extra
	 * bytes (1-3), bits 3:0 are the low nibble and each extra byte the next 8 bits,
	 * so 2, 3 and 4 bytes reach 12, 20 and 28 bits. The value includes these bytes.
	 */
	static const size_t limit[4] = {0x3f, 0xfff, 0xfffff, AML_PKGLEN_MAX};

	for (unsigned int n = 1; n <= 4; n++) {
		size_t total;

		if (__builtin_add_overflow(body, (size_t)n, &total) || total > limit[n - 1])
			continue;
		if (n == 1) {
			out[0] = (uint8_t)total;
			return 1;
		}
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0x0f));
		for (unsigned int i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return (int)n;
	}
	return -E2BIG;
}

void aml_name(struct aml *a, const char *path)
{
	char segs[255][4];
	unsigned int nseg = 0;
	const char *p = path;
	size_t prefix = 0;

	if (a->err)
		return;
	if (!path) {
		aml_fail(a, -EINVAL);
		return;
	}
	if (*p == '\\') {
		p++;
		prefix = 1;
	} else {
		while (*p == '^')
			p++;
		prefix = (size_t)(p - path);
	}

	while (*p) {
		size_t n = strcspn(p, ".");

		if (n == 0 || n > 4 || nseg == ARRAY_SIZE(segs)) {
			aml_fail(a, -EINVAL);
			return;
		}
		memset(segs[nseg], '_', 4);
		memcpy(segs[nseg], p, n);
		{
			char seg[5];

			memcpy(seg, segs[nseg], 4);
			seg[4] = '\0';
			if (!aml_nameseg_valid(seg)) {
				aml_fail(a, -EINVAL);
				return;
			}
		}
		nseg++;
		p += n;
		if (*p == '.') {
			p++;
			if (!*p) { /* trailing dot */
				aml_fail(a, -EINVAL);
				return;
			}
		}
	}

	/* §20.2.2: NameString := <RootChar | PrefixPath> NamePath */
	aml_bytes(a, path, prefix);
	if (nseg == 0) {
		aml_byte(a, 0x00); /* NullName */
	} else if (nseg == 2) {
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nseg > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nseg);
	}
	for (unsigned int i = 0; i < nseg; i++)
		aml_bytes(a, segs[i], 4);
}

void aml_int(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_le(a, v, 1);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_le(a, v, 2);
	} else if (v <= 0xffffffff) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_le(a, v, 4);
	} else {
		/* Only meaningful in a revision >= 2 definition block (64-bit integers). */
		aml_byte(a, AML_QWORD_PREFIX);
		aml_le(a, v, 8);
	}
}

void aml_dword(struct aml *a, uint32_t v)
{
	aml_byte(a, AML_DWORD_PREFIX);
	aml_le(a, v, 4);
}

void aml_string(struct aml *a, const char *s)
{
	if (a->err)
		return;
	if (!s) {
		aml_fail(a, -EINVAL);
		return;
	}
	/* §20.2.3: AsciiCharList holds 0x01-0x7f; NUL ends it. */
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7f) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int aml_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int aml_eisaid_encode(const char *id, uint32_t *out)
{
	uint8_t b[4];
	int d[4];

	if (!id || strlen(id) != 7)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (id[i] < 'A' || id[i] > 'Z')
			return -EINVAL;
	for (int i = 0; i < 4; i++) {
		d[i] = aml_hex_digit(id[3 + i]);
		if (d[i] < 0)
			return -EINVAL;
	}
	/*
	 * The compressed EISA ID (ACPI 6.5 §19.6.43, EISAID macro): three 5-bit letters
	 * ('A' = 1) and four hex digits, stored most significant byte first, so that
	 * read as a little-endian DWORD the bytes are swapped.
	 */
	uint16_t letters =
		(uint16_t)(((id[0] - 0x40) << 10) | ((id[1] - 0x40) << 5) | (id[2] - 0x40));
	b[0] = (uint8_t)(letters >> 8);
	b[1] = (uint8_t)letters;
	b[2] = (uint8_t)((d[0] << 4) | d[1]);
	b[3] = (uint8_t)((d[2] << 4) | d[3]);
	*out = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v;
	int ret;

	if (a->err)
		return;
	ret = aml_eisaid_encode(id, &v);
	if (ret) {
		aml_fail(a, ret);
		return;
	}
	aml_dword(a, v);
}

void aml_name_decl(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_name(a, path);
}

size_t aml_scope_begin(struct aml *a, const char *path)
{
	size_t token;

	aml_byte(a, AML_SCOPE_OP);
	token = a->len;
	aml_name(a, path);
	return token;
}

size_t aml_device_begin(struct aml *a, const char *path)
{
	size_t token;

	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	token = a->len;
	aml_name(a, path);
	return token;
}

size_t aml_method_begin(struct aml *a, const char *path, unsigned int nargs, bool serialized)
{
	size_t token;

	aml_byte(a, AML_METHOD_OP);
	token = a->len;
	aml_name(a, path);
	if (nargs > 7)
		aml_fail(a, -EINVAL);
	/* §20.2.5.2 MethodFlags: bits 2:0 ArgCount, bit 3 SerializeFlag, 7:4 SyncLevel */
	aml_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
	return token;
}

size_t aml_package_begin(struct aml *a, uint8_t nelems)
{
	size_t token;

	aml_byte(a, AML_PACKAGE_OP);
	token = a->len;
	aml_byte(a, nelems);
	return token;
}

void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN_OP);
}

void aml_end(struct aml *a, size_t token)
{
	uint8_t pkglen[4];
	int n;

	if (a->err)
		return;
	if (token > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	n = aml_pkglen_encode(pkglen, a->len - token);
	if (n < 0) {
		aml_fail(a, n);
		return;
	}
	aml_insert(a, token, pkglen, (size_t)n);
}

size_t aml_restemplate_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	return a->len;
}

void aml_restemplate_end(struct aml *a, size_t token)
{
	uint8_t hdr[4 + 9];
	struct aml h;
	size_t body, hlen;
	uint8_t sum = AML_RES_END_TAG;
	int n;

	if (a->err)
		return;
	if (token > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	/*
	 * §6.4.2.9 End Tag: its checksum byte makes all descriptor bytes, end tag
	 * included, sum to zero (zero would also be accepted as "no checksum").
	 */
	for (size_t i = token; i < a->len; i++)
		sum = (uint8_t)(sum + a->buf[i]);
	aml_byte(a, AML_RES_END_TAG);
	aml_byte(a, (uint8_t)(0x100 - sum));
	if (a->err)
		return;

	/* §19.6.10 DefBuffer := BufferOp PkgLength BufferSize ByteList */
	body = a->len - token;
	aml_init(&h, hdr + 4, sizeof(hdr) - 4);
	aml_int(&h, body);
	if (h.err) {
		aml_fail(a, h.err);
		return;
	}
	n = aml_pkglen_encode(hdr, h.len + body);
	if (n < 0) {
		aml_fail(a, n);
		return;
	}
	/* The PkgLength goes right before the BufferSize we built after 4 spare bytes. */
	hlen = (size_t)n + h.len;
	memmove(hdr + (size_t)n, hdr + 4, h.len);
	aml_insert(a, token, hdr, hlen);
}

void aml_res_io(struct aml *a, uint16_t base, uint8_t len)
{
	/* §6.4.2.5 I/O Port Descriptor: Decode16, min = max = base, alignment 1 */
	uint8_t d[8] = {
		AML_RES_IO,	      0x01, (uint8_t)base, (uint8_t)(base >> 8), (uint8_t)base,
		(uint8_t)(base >> 8), 0x01, len,
	};

	aml_bytes(a, d, sizeof(d));
}

void aml_res_irq_noflags(struct aml *a, uint8_t irq)
{
	/* §6.4.2.1 IRQ Descriptor, 2-byte form: edge, active high, exclusive */
	if (irq > 15) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, AML_RES_IRQ_NOFLAGS);
	aml_le(a, 1u << irq, 2);
}

void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable)
{
	/* §6.4.3.4 32-Bit Fixed Memory Range Descriptor */
	aml_byte(a, AML_RES_MEM32_FIXED);
	aml_le(a, 9, 2);
	aml_byte(a, writable ? 1 : 0);
	aml_le(a, base, 4);
	aml_le(a, len, 4);
}

void aml_res_ext_irq(struct aml *a, uint8_t flags, uint32_t gsi)
{
	/* §6.4.3.6 Extended Interrupt Descriptor, one interrupt, no resource source */
	aml_byte(a, AML_RES_EXT_IRQ);
	aml_le(a, 6, 2);
	aml_byte(a, flags & 0x1f);
	aml_byte(a, 1);
	aml_le(a, gsi, 4);
}
