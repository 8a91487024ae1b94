/*
 * vfy_dcm.c — the Part 10 prefix and file meta group (vfy_dcm.h): a
 * bounds-checked walk over a buffer, then the dataset streamed through
 * SHA-256.
 *
 * An element of group 0002 is explicit VR little endian (PS3.5 7.1.2):
 *	tag (4) | VR (2) | length (2)				most VRs
 *	tag (4) | VR (2) | 00 00 | length (4)			the VRs below
 * No element of group 0002 may have an undefined length.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "src/verify/vfy_dcm.h"

#define READ_CHUNK	(256 * 1024)

static int
bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* VRs whose length takes 4 bytes after 2 reserved ones (PS3.5 7.1.2). */
static int
long_vr(const uint8_t vr[2])
{
	static const char *const l[] = { "OB", "OD", "OF", "OL", "OV", "OW",
	    "SQ", "SV", "UC", "UN", "UR", "UT", "UV" };

	for (size_t i = 0; i < sizeof(l) / sizeof(l[0]); i++)
		if (vr[0] == l[i][0] && vr[1] == l[i][1])
			return 1;
	return 0;
}

/* A UI value (LEN bytes at V) into OUT, its trailing NUL or space padding
 * removed; -1 when it is too long or holds a byte that no UID can. */
static int
uid(const uint8_t *v, size_t len, char out[VFY_UID_MAX + 1])
{
	while (len > 0 && (v[len - 1] == '\0' || v[len - 1] == ' '))
		len--;
	if (len == 0 || len > VFY_UID_MAX)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (v[i] <= 0x20 || v[i] >= 0x7f)
			return -1;
	memcpy(out, v, len);
	out[len] = '\0';
	return 0;
}

/* Keep the value of element (0002,ELEM) at V. */
static int
meta_value(struct vfy_meta *m, uint16_t elem, const uint8_t *v, size_t len,
    size_t at, char *err, size_t errlen)
{
	char *dst;

	switch (elem) {
	case 0x0000:
		if (len != 4)
			return bad(err, errlen, "byte %zu: (0002,0000) has "
			    "length %zu, not 4", at, len);
		m->has_glen = 1;
		m->glen = le32(v);
		return 0;
	case 0x0002: dst = m->class_uid; break;
	case 0x0003: dst = m->sop_uid; break;
	case 0x0010: dst = m->ts_uid; break;
	default:
		return 0;
	}
	if (uid(v, len, dst) == 0)
		return 0;
	dst[0] = '\0';
	if (elem == 0x0002)
		return 0;	/* only used to spot a DICOMDIR */
	return bad(err, errlen, "byte %zu: (0002,%04x) is not a UID (empty, "
	    "longer than %d, or not printable)", at, elem, VFY_UID_MAX);
}

int
vfy_dcm_meta(const uint8_t *p, size_t n, int eof, struct vfy_meta *m,
    char *err, size_t errlen)
{
	size_t i = VFY_DCM_PREFIX, glen_end = 0;

	memset(m, 0, sizeof(*m));
	if (n < VFY_DCM_PREFIX)
		return eof ? bad(err, errlen, "%zu bytes: shorter than the "
		    "128-byte preamble and \"DICM\"", n) : 0;
	if (memcmp(p + 128, "DICM", 4) != 0)
		return bad(err, errlen, "byte 128: no \"DICM\" after the "
		    "preamble (not a Part 10 file)");
	for (;;) {
		uint16_t group, elem;
		uint32_t len;
		size_t hdr;

		if (n - i < 2)
			break;			/* at the end, or need more */
		if ((group = le16(p + i)) != 0x0002)
			break;
		if (n - i < 12 && !(n - i >= 8 && !long_vr(p + i + 4)))
			return eof ? bad(err, errlen, "byte %zu: the file ends "
			    "inside an element header of group 0002", i) : 0;
		elem = le16(p + i + 2);
		if (p[i + 4] < 'A' || p[i + 4] > 'Z' || p[i + 5] < 'A' ||
		    p[i + 5] > 'Z')
			return bad(err, errlen, "byte %zu: (0002,%04x) has no "
			    "VR (the file meta group must be explicit VR "
			    "little endian)", i, elem);
		if (long_vr(p + i + 4)) {
			hdr = 12;
			len = le32(p + i + 8);
		} else {
			hdr = 8;
			len = le16(p + i + 6);
		}
		if (len == 0xffffffffu)
			return bad(err, errlen, "byte %zu: (0002,%04x) has an "
			    "undefined length", i, elem);
		if (len > VFY_DCM_META_MAX)
			return bad(err, errlen, "byte %zu: (0002,%04x) is %lu "
			    "bytes long, more than the %d a file meta group "
			    "may take here", i, elem, (unsigned long)len,
			    VFY_DCM_META_MAX);
		if (n - i - hdr < len)
			return eof ? bad(err, errlen, "byte %zu: (0002,%04x) "
			    "says %lu bytes, the file has %zu left", i, elem,
			    (unsigned long)len, n - i - hdr) : 0;
		if (meta_value(m, elem, p + i + hdr, len, i, err, errlen) < 0)
			return -1;
		i += hdr + len;
		if (elem == 0x0000)
			glen_end = i;
	}
	if (n - i < 2 && !eof)
		return 0;			/* the next group is not seen */
	if (n - i == 1)
		return bad(err, errlen, "byte %zu: the file ends one byte "
		    "after the file meta group", i);
	if (m->sop_uid[0] == '\0')
		return bad(err, errlen, "no (0002,0003) Media Storage SOP "
		    "Instance UID in the file meta group (bytes 132..%zu)", i);
	if (m->ts_uid[0] == '\0')
		return bad(err, errlen, "no (0002,0010) Transfer Syntax UID "
		    "in the file meta group (bytes 132..%zu)", i);
	m->end = i;
	m->walked = glen_end > 0 ? i - glen_end : 0;
	return 1;
}

/* Read up to N bytes (fewer only at the end of the file). */
static ssize_t
read_full(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* Hash the dataset: LEN bytes at P already read, then the rest of FD. */
static int
hash_rest(int fd, EVP_MD_CTX *ctx, const uint8_t *p, size_t len,
    uint8_t *buf, struct vfy_dcm_file *f)
{
	unsigned int ol = VFY_HASH;
	ssize_t r;

	f->len = len;
	if (EVP_DigestUpdate(ctx, p, len) != 1)
		abort();
	while ((r = read_full(fd, buf, READ_CHUNK)) > 0) {
		if (EVP_DigestUpdate(ctx, buf, (size_t)r) != 1)
			abort();
		f->len += (uint64_t)r;
	}
	if (r < 0)
		return -1;
	if ((f->len & 1) && EVP_DigestUpdate(ctx, "", 1) != 1)
		abort();
	if (EVP_DigestFinal_ex(ctx, f->sha, &ol) != 1 || ol != VFY_HASH)
		abort();
	return 0;
}

enum vfy_dcm_read
vfy_dcm_file(const char *path, struct vfy_dcm_file *f, char *err,
    size_t errlen)
{
	size_t cap = VFY_DCM_PREFIX + VFY_DCM_META_MAX + 2;
	enum vfy_dcm_read rc = VFY_DCM_IO;
	uint8_t *buf = NULL;
	EVP_MD_CTX *ctx = NULL;
	char why[512];
	ssize_t got;
	int fd, r;

	memset(f, 0, sizeof(*f));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		bad(err, errlen, "cannot open: %s", strerror(errno));
		return VFY_DCM_IO;
	}
	if ((buf = malloc(cap > READ_CHUNK ? cap : READ_CHUNK)) == NULL ||
	    (ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex2(ctx, EVP_sha256(), NULL) != 1)
		abort();
	if ((got = read_full(fd, buf, cap)) < 0) {
		bad(err, errlen, "cannot read: %s", strerror(errno));
		goto out;
	}
	r = vfy_dcm_meta(buf, (size_t)got, (size_t)got < cap, &f->meta, why,
	    sizeof(why));
	if (r <= 0) {
		if (r == 0)
			snprintf(why, sizeof(why), "the file meta group is "
			    "longer than %d bytes", VFY_DCM_META_MAX);
		bad(err, errlen, "%s", why);
		rc = VFY_DCM_BAD;
		goto out;
	}
	f->deflated = strcmp(f->meta.ts_uid, VFY_TS_DEFLATED) == 0;
	if (hash_rest(fd, ctx, buf + f->meta.end, (size_t)got - f->meta.end,
	    buf, f) < 0) {
		bad(err, errlen, "cannot read: %s", strerror(errno));
		goto out;
	}
	rc = VFY_DCM_OK;
 out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	return rc;
}
