/*
 * fuzz_vfy_dcm.c — libFuzzer harness for vnamig-verify's Part 10 reader
 * (vfy_dcm_meta, vfy_dcm_file, src/verify/vfy_dcm.h). The input is the
 * start of a file (a whole small file). Any bytes must give the meta
 * group or an error, never a crash, hang or leak; and what the reader
 * promises is checked against the input by code written apart from it
 * (abort() when broken):
 *	- with EOF set the answer is 1 or -1, never "more bytes"; without
 *	  it, 0 or the same answer (same meta, same error): more bytes never
 *	  change a decision already made, so every prefix read without EOF
 *	  gives 0 or the whole input's answer;
 *	- the answer and meta do not depend on the size of ERR, and a short
 *	  ERR holds a prefix of the full message;
 *	- an accepted file has "DICM" at 128, and from 132 to its END a walk
 *	  of whole group 0002 elements (explicit VR little endian, no
 *	  undefined length, none over VFY_DCM_META_MAX), then the end of the
 *	  input or at least 2 bytes of another group; its UIDs are the last
 *	  (0002,0003), (0002,0010) and (0002,0002) values with their padding
 *	  removed (the class UID "" when not a UID); HAS_GLEN, GLEN and
 *	  WALKED those of the last (0002,0000); cut at END it is the same
 *	  file, and one byte after END it is refused;
 *	- vfy_dcm_file on the same bytes (a memfd) agrees: VFY_DCM_OK with
 *	  the same meta, the dataset's length and its SHA-256 (with a zero
 *	  byte added when odd, recomputed here with OpenSSL), VFY_DCM_BAD
 *	  with the same reason otherwise.
 * The reader is given buffers of exactly the size it is told, so that
 * AddressSanitizer sees a one-byte over-read, also when the corpus is
 * replayed.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "src/verify/vfy_dcm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "fuzz_vfy_dcm: %s:%d: %s\n", __FILE__,	\
		    __LINE__, #cond);					\
		abort();						\
	}								\
} while (0)

#define PREFIX		132
#define META_MAX	(64 * 1024)
#define FILE_CAP	(PREFIX + META_MAX + 2)	/* what vfy_dcm_file reads */
#define MAX_CUTS	160

static char	path[4096];	/* the input as a file */
static char	named[4096];	/* its name, to unlink at exit */
static int	fd = -1;

static void
cleanup(void)
{
	if (named[0] != '\0')
		unlink(named);
}

/* One temporary file for the whole run (as fuzz_vfy_note.c). */
static void
open_file(void)
{
	const char *tmp = getenv("TMPDIR");

#ifdef MFD_CLOEXEC
	if ((fd = memfd_create("fuzz_vfy_dcm", MFD_CLOEXEC)) >= 0) {
		struct stat sb;

		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
			return;
		close(fd);
	}
#endif
	snprintf(named, sizeof(named), "%s/fuzz_vfy_dcm.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	check((fd = mkstemp(named)) >= 0);
	snprintf(path, sizeof(path), "%s", named);
	atexit(cleanup);
}

static void
put_file(const void *p, size_t n)
{
	check(n == 0 || pwrite(fd, p, n, 0) == (ssize_t)n);
	check(ftruncate(fd, (off_t)n) == 0);
}

static unsigned
rd16(const uint8_t *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

/* PS3.5 Table 7.1-1: the VRs with 2 reserved bytes and a 4-byte length. */
static int
four_byte_length(const uint8_t *vr)
{
	static const char l[] = "OBODOFOLOVOWSQSVUCUNURUTUV";

	for (size_t i = 0; i + 1 < sizeof(l); i += 2)
		if (vr[0] == (uint8_t)l[i] && vr[1] == (uint8_t)l[i + 1])
			return 1;
	return 0;
}

/* What a UI value should give: padding (NUL, ' ') off the end, then 1 to
 * 64 bytes from '!' to '~'; "" when it is not that. */
static void
uid_of(const uint8_t *v, size_t len, char *out)
{
	out[0] = '\0';
	while (len > 0 && (v[len - 1] == 0 || v[len - 1] == ' '))
		len--;
	if (len == 0 || len > 64)
		return;
	for (size_t i = 0; i < len; i++)
		if (v[i] < '!' || v[i] > '~')
			return;
	memcpy(out, v, len);
	out[len] = '\0';
}

struct walk {
	size_t	bounds[MAX_CUTS];	/* element starts, then END */
	size_t	nb;
	char	sop[80], cls[80], ts[80];
	int	has_glen;
	uint32_t glen;
	size_t	glen_end;
};

/* Walk the accepted meta group of P (N bytes) as M says it ends. */
static void
walk_meta(const uint8_t *p, size_t n, const struct vfy_meta *m,
    struct walk *w)
{
	size_t i = PREFIX;

	memset(w, 0, sizeof(*w));
	check(n >= PREFIX && memcmp(p + 128, "DICM", 4) == 0);
	check(m->end >= PREFIX && m->end <= n);
	while (i < m->end) {
		size_t hdr, len;
		unsigned elem;

		if (w->nb < MAX_CUTS)
			w->bounds[w->nb++] = i;
		check(m->end - i >= 8);
		check(rd16(p + i) == 0x0002);
		elem = rd16(p + i + 2);
		check(p[i + 4] >= 'A' && p[i + 4] <= 'Z');
		check(p[i + 5] >= 'A' && p[i + 5] <= 'Z');
		if (four_byte_length(p + i + 4)) {
			check(m->end - i >= 12);
			hdr = 12;
			len = rd32(p + i + 8);
		} else {
			hdr = 8;
			len = rd16(p + i + 6);
		}
		check(len <= META_MAX);
		check(m->end - i - hdr >= len);
		if (elem == 0x0000) {
			check(len == 4);
			w->has_glen = 1;
			w->glen = rd32(p + i + hdr);
			w->glen_end = i + hdr + len;
		} else if (elem == 0x0002)
			uid_of(p + i + hdr, len, w->cls);
		else if (elem == 0x0003)
			uid_of(p + i + hdr, len, w->sop);
		else if (elem == 0x0010)
			uid_of(p + i + hdr, len, w->ts);
		i += hdr + len;
	}
	check(i == m->end);
	if (w->nb < MAX_CUTS)
		w->bounds[w->nb++] = i;
	/* the group ends at the input's end or at another group */
	check(i == n || (n - i >= 2 && rd16(p + i) != 0x0002));
}

static void
check_meta(const uint8_t *p, size_t n, const struct vfy_meta *m,
    struct walk *w)
{
	walk_meta(p, n, m, w);
	check(w->sop[0] != '\0' && strcmp(m->sop_uid, w->sop) == 0);
	check(w->ts[0] != '\0' && strcmp(m->ts_uid, w->ts) == 0);
	check(strcmp(m->class_uid, w->cls) == 0);
	check(m->has_glen == w->has_glen);
	check(m->glen == (w->has_glen ? w->glen : 0));
	check(m->walked == (w->has_glen ? m->end - w->glen_end : 0));
}

/* vfy_dcm_meta over a copy of the first N bytes of P, of exactly N. */
static int
meta_at(const uint8_t *p, size_t n, int eof, struct vfy_meta *m, char *err,
    size_t errlen)
{
	uint8_t *q = malloc(n > 0 ? n : 1);
	int r;

	check(q != NULL);
	if (n > 0)
		memcpy(q, p, n);
	r = vfy_dcm_meta(q, n, eof, m, err, errlen);
	free(q);
	return r;
}

static void
check_err(const char *err)
{
	check(memchr(err, '\0', 512) != NULL);
	check(err[0] != '\0');
}

/* A prefix of K bytes: without EOF, 0 or the whole input's answer
 * (R0, M0, ERR0); with EOF, an answer. */
static void
check_cut(const uint8_t *p, size_t k, int r0, const struct vfy_meta *m0,
    const char *err0)
{
	struct vfy_meta m;
	char err[512];
	int r;

	r = meta_at(p, k, 0, &m, err, sizeof(err));
	check(r == 0 || r == r0);
	if (r == 1)
		check(memcmp(&m, m0, sizeof(m)) == 0);
	if (r == -1)
		check(strcmp(err, err0) == 0);
	r = meta_at(p, k, 1, &m, err, sizeof(err));
	check(r == 1 || r == -1);
	if (r < 0)
		check_err(err);
}

static void
check_file(const uint8_t *p, size_t n, int r1, const struct vfy_meta *m1,
    const char *err1)
{
	struct vfy_dcm_file f;
	enum vfy_dcm_read rc;
	uint8_t sha[EVP_MAX_MD_SIZE];
	unsigned int shalen = 0;
	char err[512];
	EVP_MD_CTX *ctx;

	if (n >= FILE_CAP)
		return;		/* read in part; the walk above is the test */
	put_file(p, n);
	memset(err, 0x55, sizeof(err));
	rc = vfy_dcm_file(path, &f, err, sizeof(err));
	if (r1 < 0) {
		check(rc == VFY_DCM_BAD);
		check(strcmp(err, err1) == 0);
		return;
	}
	check(rc == VFY_DCM_OK);
	check(memcmp(&f.meta, m1, sizeof(f.meta)) == 0);
	check(f.len == n - m1->end);
	check(f.deflated == (strcmp(m1->ts_uid,
	    "1.2.840.10008.1.2.1.99") == 0));
	check((ctx = EVP_MD_CTX_new()) != NULL);
	check(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1);
	check(EVP_DigestUpdate(ctx, p + m1->end, n - m1->end) == 1);
	if ((n - m1->end) % 2 == 1)
		check(EVP_DigestUpdate(ctx, "", 1) == 1);
	check(EVP_DigestFinal_ex(ctx, sha, &shalen) == 1 && shalen == 32);
	EVP_MD_CTX_free(ctx);
	check(memcmp(f.sha, sha, 32) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vfy_meta m1, m0, ms;
	struct walk w;
	char err1[512], err0[512], small[40];
	size_t errlen = size % sizeof(small), k;
	uint64_t h = 1469598103934665603u;
	int r1, r0, rs;

	if (fd < 0)
		open_file();

	/* The whole input, the file's end (EOF), then without EOF. */
	memset(err1, 0x55, sizeof(err1));
	r1 = meta_at(data, size, 1, &m1, err1, sizeof(err1));
	check(r1 == 1 || r1 == -1);
	if (r1 < 0)
		check_err(err1);
	memset(err0, 0x55, sizeof(err0));
	r0 = meta_at(data, size, 0, &m0, err0, sizeof(err0));
	check(r0 == 0 || r0 == r1);
	if (r0 == 1)
		check(memcmp(&m0, &m1, sizeof(m0)) == 0);
	if (r0 == -1)
		check(strcmp(err0, err1) == 0);

	/* A short (or no) error buffer changes nothing else. */
	memset(small, 0x55, sizeof(small));
	rs = meta_at(data, size, 1, &ms, errlen > 0 ? small : NULL, errlen);
	check(rs == r1);
	check(memcmp(&ms, &m1, sizeof(ms)) == 0);
	if (r1 < 0 && errlen > 0) {
		check(memchr(small, '\0', errlen) != NULL);
		check(strncmp(small, err1, strlen(small)) == 0);
		check(strlen(small) == strnlen(err1, errlen - 1));
	}

	if (r1 == 1) {
		check_meta(data, size, &m1, &w);
		/* The element boundaries, and a few bytes into each header. */
		for (size_t b = 0; b < w.nb; b++)
			for (size_t d = 0; d < 13; d += (d < 2 ? 1 : 5))
				if (w.bounds[b] + d < size)
					check_cut(data, w.bounds[b] + d, r0,
					    &m0, err0);
		/* Cut at END: the same file; one byte more: refused. */
		if (m1.end < size) {
			struct vfy_meta m;
			char err[512];

			check(meta_at(data, m1.end, 1, &m, err,
			    sizeof(err)) == 1);
			check(memcmp(&m, &m1, sizeof(m)) == 0);
			check(meta_at(data, m1.end + 1, 1, &m, err,
			    sizeof(err)) == -1);
			check_err(err);
		}
	}

	/* Other prefixes: the edges, and some picked by the input's hash. */
	for (k = 0; k < size && k < 64; k++)
		h = (h ^ data[size - 1 - k]) * 1099511628211u;
	{
		size_t cuts[] = { 0, 1, 127, 128, 131, 132, 133, 134, 139, 140,
		    143, 144, size / 2, size > 0 ? size - 1 : 0,
		    size > 2 ? size - 2 : 0, (size_t)(h % (size + 1)),
		    (size_t)((h >> 20) % (size + 1)),
		    (size_t)((h >> 40) % (size + 1)) };

		for (k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++)
			if (cuts[k] < size)
				check_cut(data, cuts[k], r0, &m0, err0);
	}

	check_file(data, size, r1, &m1, err1);
	return 0;
}
