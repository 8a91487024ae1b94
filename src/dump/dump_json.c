/*
 * dump_json.c — see dump_json.h.
 *
 * The parser's callbacks pick, from the VR, how each value is written:
 *   text     (AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT)
 *            text_to_utf8(), the one place where bytes in the Specific
 *            Character Set become UTF-8; then the splitter: values on
 *            '\' (not LT ST UT UR), PN groups on '=', padding trimmed,
 *            DS and IS turned into JSON numbers; then the JSON escaper;
 *   numbers  (US SS UL SL FL FD SV UV, and AT as "GGGGEEEE") unit by
 *            unit;
 *   binary   (OB OD OF OL OV OW UN, encapsulated pixel data) as base64,
 *            or a BulkDataURI into the file.
 * Values are written as they arrive. What is held back is at most one
 * binary unit, one UTF-8 sequence, one DS/IS value (NUM_MAX bytes), a
 * few runs of padding, and, with --bulk-uri, the fragments of an
 * encapsulated pixel data up to the chunk size (to choose between
 * InlineBinary and BulkDataURI): never a whole large value.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dimse/ds_charset.h"
#include "dimse/ds_dict.h"
#include "dimse/ds_parse.h"
#include "src/dump/dump_json.h"

#define CHARSET_MAX	128	/* bytes of (0008,0005) kept */
#define NUM_MAX		64	/* a longer DS or IS value is not a number */
#define CS_HOLD		65536	/* streamed text held for a reset point */
#define CS_HOLD_MAX	(1u << 20) /* ... at most: then decoded as it is */
#define PAD_RUNS	8	/* runs of padding held back in a value */
#define TAG_CHARSET	DS_TAG(0x0008, 0x0005)
#define TAG_PIXREP	DS_TAG(0x0028, 0x0103)
#define TAGA(t)		(unsigned)((t) >> 16), (unsigned)((t) & 0xffff)

/* A JSON container being written: a dataset or item (object) or a
 * sequence (array of items). */
struct lvl {
	unsigned	 seq:1;
	unsigned	 first:1;	/* nothing written in it yet */
	uint32_t	 last_tag;	/* object: the key written last */
	int		 pixrep;	/* (0028,0103) in effect, -1 unknown */
	char		 charset[CHARSET_MAX];	/* (0008,0005) in effect */
	struct ds_charset *cs;		/* its decoder, NULL without one */
	int		 cs_owned;	/* this level's own (0008,0005) */
};

struct pad_run {
	uint8_t		 byte;		/* ' ', NUL, or '^' in a PN */
	uint32_t	 n;
};

/* One text element on its way out, after text_to_utf8(). "Value" here is
 * one of the backslash-separated values. */
struct txt {
	enum ds_vr	 vr;
	unsigned	 multi:1;	/* '\' separates values */
	unsigned	 trim_lead:1;	/* leading spaces are not significant */
	unsigned	 pn:1;		/* '=' separates name groups */
	unsigned	 num:1;		/* DS or IS: a number */
	unsigned	 lead:1;	/* skipping leading spaces */
	unsigned	 started:1;	/* the value's separator (and PN "{") out */
	unsigned	 open:1;	/* a JSON string is open */
	unsigned	 tostr:1;	/* DS/IS too long: written as a string */
	unsigned	 decode:1;	/* through the Specific Character Set */
	unsigned	 group;		/* PN: 0 Alphabetic, 1 Ideographic, ... */
	unsigned	 ngroups;	/* PN: groups written in the object */
	uint64_t	 nvalues;	/* values ended so far */
	uint8_t		 nbuf[NUM_MAX];	/* DS/IS: the value so far */
	size_t		 nlen;
	struct pad_run	 pad[PAD_RUNS];	/* padding not yet known trailing */
	unsigned	 npad;
	uint8_t		 u8[4];		/* UTF-8 sequence being checked */
	unsigned	 u8have, u8need;
	uint64_t	 replaced;	/* bytes replaced by U+FFFD */
};

enum vmode { V_NONE, V_SKIP, V_TEXT, V_NUM, V_BIN, V_URI };
enum emode { E_INLINE, E_BUF, E_URI };

#define PROG(j)	((j)->o->prog != NULL ? (j)->o->prog : "vnamig-dump")

struct dump_json {
	FILE				*out;
	const struct dump_json_opts	*o;
	const char			*file;
	char				*uri;	/* file://PATH, with --bulk-uri */
	uint32_t			 chunk;	/* the parser's chunk_over */
	unsigned			 base;	/* indent of the file's object */
	int				 deflated; /* offsets not of the file */
	struct lvl			*lv;
	unsigned			 nlv, caplv;

	/* the element being written */
	enum vmode			 mode;
	struct ds_elem			 e;
	uint64_t			 nvals;	/* items in its "Value" */
	unsigned			 unit;	/* bytes of one binary value */
	int				 swap;	/* big-endian units: swap */
	uint8_t				 carry[8]; /* a partial unit */
	unsigned			 ncarry;
	int				 b64open; /* "InlineBinary": " out */
	uint8_t				 b64[3];
	unsigned			 nb64;
	struct txt			 t;
	uint8_t				*csbuf;	/* text not yet decoded */
	size_t				 cslen, cscap;
	char				*csout;	/* text decoded */
	size_t				 csoutcap;

	/* encapsulated pixel data */
	int				 encap;	/* inside it */
	enum emode			 emode;
	uint8_t				*ebuf;	/* E_BUF: the items so far */
	size_t				 elen;
	uint64_t			 estart, eend; /* offsets of the items */
	int				 efirst;
	unsigned			 ndatasets; /* dump_json_dataset */
};

static void jwarn(struct dump_json *j, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* jwarn: one warning line about the current element, unless quiet. */
static void
jwarn(struct dump_json *j, const char *fmt, ...)
{
	va_list ap;

	if (j->o->quiet)
		return;
	fflush(j->out);
	fprintf(stderr, "%s: %s: warning at byte %llu, tag "
	    "(%04x,%04x): ", PROG(j), j->file, (unsigned long long)j->e.offset,
	    TAGA(j->e.tag));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---------------------------------------------------------------------- */
/* JSON output. */

/* newline: start a line indented for nesting level n. */
static void
newline(struct dump_json *j, unsigned n)
{
	fputc('\n', j->out);
	for (unsigned i = 0; i < j->base + n; i++)
		fputs("  ", j->out);
}

/* put_str: write the UTF-8 bytes p[0..n) escaped for the inside of a
 * JSON string (RFC 8259 7): quote, backslash and C0 controls. */
static void
put_str(struct dump_json *j, const uint8_t *p, size_t n)
{
	size_t i = 0, run;

	while (i < n) {
		for (run = i; run < n && p[run] >= 0x20 && p[run] != '"' &&
		    p[run] != '\\'; run++)
			;
		fwrite(p + i, 1, run - i, j->out);
		if (run == n)
			break;
		switch (p[run]) {
		case '"': fputs("\\\"", j->out); break;
		case '\\': fputs("\\\\", j->out); break;
		case '\b': fputs("\\b", j->out); break;
		case '\f': fputs("\\f", j->out); break;
		case '\n': fputs("\\n", j->out); break;
		case '\r': fputs("\\r", j->out); break;
		case '\t': fputs("\\t", j->out); break;
		default: fprintf(j->out, "\\u%04x", p[run]); break;
		}
		i = run + 1;
	}
}

/* val_sep: before each entry of "Value": open the array, or a comma. */
static void
val_sep(struct dump_json *j)
{
	fputs(j->nvals++ == 0 ? ", \"Value\": [" : ", ", j->out);
}

static struct lvl *
top(struct dump_json *j)
{
	return &j->lv[j->nlv - 1];
}

/* push: open a level (its "{" or "[" is the caller's); it inherits the
 * Specific Character Set of the one below. */
static void
push(struct dump_json *j, int seq)
{
	struct lvl *l;

	if (j->nlv == j->caplv) {
		unsigned cap = j->caplv ? 2 * j->caplv : 16;
		struct lvl *nl = realloc(j->lv, cap * sizeof(*nl));

		if (nl == NULL)
			abort();
		j->lv = nl;
		j->caplv = cap;
	}
	l = &j->lv[j->nlv++];
	l->seq = seq;
	l->first = 1;
	l->last_tag = 0;
	l->cs_owned = 0;
	if (j->nlv > 1) {
		memcpy(l->charset, j->lv[j->nlv - 2].charset, CHARSET_MAX);
		l->pixrep = j->lv[j->nlv - 2].pixrep;
		l->cs = j->lv[j->nlv - 2].cs;
	} else {
		l->charset[0] = '\0';
		l->pixrep = -1;
		l->cs = NULL;
	}
}

/* close_level: write the end of the top level and pop it: "}" for an
 * object, "]}" for a sequence (closing its element too), "}" for a
 * sequence without items (no "Value", PS3.18 F.2.5). */
static void
close_level(struct dump_json *j)
{
	struct lvl *l = top(j);

	if (!l->first)
		newline(j, j->nlv - 1);
	if (l->seq)
		fputs(l->first ? "}" : "]}", j->out);
	else
		fputc('}', j->out);
	if (l->cs_owned)
		ds_cs_free(l->cs);
	j->nlv--;
}

/* elem_begin: write the key and VR of e: "GGGGEEEE": {"vr": "XX". */
static void
elem_begin(struct dump_json *j, const struct ds_elem *e, const char *vr)
{
	struct lvl *l = top(j);

	j->e = *e;
	j->nvals = 0;
	if (!l->first && e->tag == l->last_tag)
		jwarn(j, "repeated tag: the JSON object has the key twice");
	else if (!l->first && e->tag < l->last_tag)
		jwarn(j, "tag out of ascending order (after %08" PRIX32 ")",
		    l->last_tag);
	if (!l->first)
		fputc(',', j->out);
	l->first = 0;
	l->last_tag = e->tag;
	newline(j, j->nlv);
	fprintf(j->out, "\"%08" PRIX32 "\": {\"vr\": \"%s\"", e->tag, vr);
}

/* bulk_uri: write the BulkDataURI of len bytes at file offset off. */
static void
bulk_uri(struct dump_json *j, uint64_t off, uint64_t len)
{
	fprintf(j->out, ", \"BulkDataURI\": \"%s?offset=%" PRIu64
	    "&length=%" PRIu64 "\"", j->uri, off, len);
}

/* ---------------------------------------------------------------------- */
/* Binary: base64 (RFC 4648 4), streamed. */

static void
b64_enc(const uint8_t *in, unsigned n, char *out)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint32_t v = (uint32_t)in[0] << 16 | (n > 1 ? (uint32_t)in[1] << 8 :
	    0) | (n > 2 ? in[2] : 0);

	out[0] = a[v >> 18 & 63];
	out[1] = a[v >> 12 & 63];
	out[2] = n > 1 ? a[v >> 6 & 63] : '=';
	out[3] = n > 2 ? a[v & 63] : '=';
}

/* b64_put: n more bytes of the current binary value, opening its
 * "InlineBinary" on the first. */
static void
b64_put(struct dump_json *j, const uint8_t *p, size_t n)
{
	char buf[4096];
	size_t k = 0;

	if (n == 0)
		return;
	if (!j->b64open) {
		fputs(", \"InlineBinary\": \"", j->out);
		j->b64open = 1;
	}
	while (n > 0) {
		if (j->nb64 > 0 || n < 3) {
			j->b64[j->nb64++] = *p++;
			n--;
			if (j->nb64 < 3)
				continue;
			b64_enc(j->b64, 3, buf + k);
			j->nb64 = 0;
		} else {
			b64_enc(p, 3, buf + k);
			p += 3;
			n -= 3;
		}
		if ((k += 4) == sizeof(buf)) {
			fwrite(buf, 1, k, j->out);
			k = 0;
		}
	}
	fwrite(buf, 1, k, j->out);
}

/* b64_close: flush the last group and close the string, if opened. */
static void
b64_close(struct dump_json *j)
{
	char q[4];

	if (!j->b64open)
		return;
	if (j->nb64 > 0) {
		b64_enc(j->b64, j->nb64, q);
		fwrite(q, 1, 4, j->out);
	}
	fputc('"', j->out);
	j->b64open = 0;
	j->nb64 = 0;
}

/*
 * bin_put: n more bytes of an OW OF OD OL OV value. The model's binary is
 * Little Endian (as Explicit VR Little Endian, the default transfer
 * syntax of DICOMweb), so the units of a big-endian value are swapped,
 * a partial unit carried to the next call.
 */
static void
bin_put(struct dump_json *j, const uint8_t *p, size_t n)
{
	uint8_t blk[4096];	/* a multiple of every unit */
	size_t k;

	if (!j->swap) {
		b64_put(j, p, n);
		return;
	}
	while (n > 0) {
		for (k = 0; k < sizeof(blk) && n > 0; n--) {
			j->carry[j->ncarry++] = *p++;
			if (j->ncarry < j->unit)
				continue;
			for (unsigned u = 0; u < j->unit; u++)
				blk[k++] = j->carry[j->unit - 1 - u];
			j->ncarry = 0;
		}
		b64_put(j, blk, k);
	}
}

static void
bin_end(struct dump_json *j)
{
	if (j->ncarry > 0) {
		jwarn(j, "value length is not a multiple of %u: its last %u "
		    "bytes are as stored", j->unit, j->ncarry);
		b64_put(j, j->carry, j->ncarry);
		j->ncarry = 0;
	}
	b64_close(j);
}

/* ---------------------------------------------------------------------- */
/* Numbers of the binary VRs. */

static unsigned
num_size(enum ds_vr vr)
{
	switch (vr) {
	case DS_VR_US: case DS_VR_SS:
		return 2;
	case DS_VR_UL: case DS_VR_SL: case DS_VR_FL: case DS_VR_AT:
		return 4;
	case DS_VR_FD: case DS_VR_SV: case DS_VR_UV:
		return 8;
	default:
		return 0;
	}
}

/* num_real: write v with the fewest digits that read back as the same
 * float (single) or double; JSON has no NaN or infinity: those become a
 * string and a warning. */
static void
num_real(struct dump_json *j, double v, int single)
{
	char s[48];
	int prec;

	if (!isfinite(v)) {
		const char *name = isnan(v) ? "NaN" : v > 0 ? "Infinity" :
		    "-Infinity";

		jwarn(j, "%s value %s has no JSON number: written as the "
		    "string \"%s\"", single ? "FL" : "FD", name, name);
		fprintf(j->out, "\"%s\"", name);
		return;
	}
	for (prec = single ? 6 : 15; prec < (single ? 9 : 17); prec++) {
		snprintf(s, sizeof(s), "%.*g", prec, v);
		if (single ? (double)strtof(s, NULL) == v : strtod(s, NULL) == v)
			break;
	}
	snprintf(s, sizeof(s), "%.*g", prec, v);
	fputs(s, j->out);
}

/* num_unit: write the value in the unit at b as an entry of "Value". */
static void
num_unit(struct dump_json *j, const uint8_t *b)
{
	int be = j->e.big_endian;
	uint64_t x = ds_uint(b, j->unit, be);
	uint32_t u32 = (uint32_t)x;
	float f;
	double d;

	val_sep(j);
	switch (j->e.vr) {
	case DS_VR_SS:
		fprintf(j->out, "%d", (int)(int16_t)x);
		break;
	case DS_VR_SL:
		fprintf(j->out, "%" PRId32, (int32_t)u32);
		break;
	case DS_VR_SV:
		fprintf(j->out, "%" PRId64, (int64_t)x);
		break;
	case DS_VR_FL:
		memcpy(&f, &u32, sizeof(f));
		num_real(j, f, 1);
		break;
	case DS_VR_FD:
		memcpy(&d, &x, sizeof(d));
		num_real(j, d, 0);
		break;
	case DS_VR_AT:
		fprintf(j->out, "\"%04X%04X\"", (unsigned)ds_uint(b, 2, be),
		    (unsigned)ds_uint(b + 2, 2, be));
		break;
	default:	/* US UL UV */
		fprintf(j->out, "%" PRIu64, x);
		break;
	}
}

/* num_put: n more bytes of a numeric value; a partial unit is carried. */
static void
num_put(struct dump_json *j, const uint8_t *p, size_t n)
{
	while (n > 0) {
		if (j->ncarry == 0 && n >= j->unit) {
			num_unit(j, p);
			p += j->unit;
			n -= j->unit;
			continue;
		}
		j->carry[j->ncarry++] = *p++;
		n--;
		if (j->ncarry == j->unit) {
			num_unit(j, j->carry);
			j->ncarry = 0;
		}
	}
}

static void
num_end(struct dump_json *j)
{
	if (j->ncarry > 0)
		jwarn(j, "value length is not a multiple of %u: its last %u "
		    "bytes are left out", j->unit, j->ncarry);
	j->ncarry = 0;
	if (j->nvals > 0)
		fputc(']', j->out);
}

/* ---------------------------------------------------------------------- */
/* DS and IS: decimal text to JSON number. */

static size_t
digits(const uint8_t *s, size_t i, size_t n)
{
	while (i < n && s[i] >= '0' && s[i] <= '9')
		i++;
	return i;
}

/*
 * ds_number: the DS (PS3.5 6.2: [+-]d[.d][(e|E)[+-]d], a digit in the
 * mantissa) or IS ([+-]d) in s[0..n), spaces already trimmed, rewritten
 * as a JSON number in out (at least n + 2 bytes): no '+', no leading
 * zeros, a digit on both sides of '.'. The decimal digits are kept, so no
 * precision is lost. Returns 0, or -1 when s is not such a number or
 * is beyond a double's range.
 */
static int
ds_number(const uint8_t *s, size_t n, int integer, char *out)
{
	size_t i = 0, ib, ie, fb, fe = 0, k = 0;

	if (i < n && (s[i] == '+' || s[i] == '-')) {
		if (s[i] == '-')
			out[k++] = '-';
		i++;
	}
	ib = i;
	ie = i = digits(s, i, n);
	fb = ie;
	if (!integer && i < n && s[i] == '.') {
		fb = i + 1;
		fe = i = digits(s, fb, n);
	}
	if (ie == ib && fe <= fb)
		return -1;
	while (ib + 1 < ie && s[ib] == '0')
		ib++;
	if (ie == ib)
		out[k++] = '0';
	memcpy(out + k, s + ib, ie - ib);
	k += ie - ib;
	if (fe > fb) {
		out[k++] = '.';
		memcpy(out + k, s + fb, fe - fb);
		k += fe - fb;
	}
	if (!integer && i < n && (s[i] == 'e' || s[i] == 'E')) {
		out[k++] = 'e';
		if (++i < n && (s[i] == '+' || s[i] == '-')) {
			if (s[i] == '-')
				out[k++] = '-';
			i++;
		}
		if ((ie = digits(s, i, n)) == i)
			return -1;
		memcpy(out + k, s + i, ie - i);
		k += ie - i;
		i = ie;
	}
	out[k] = '\0';
	return i == n && isfinite(strtod(out, NULL)) ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* Text: the splitter, after text_to_utf8(). */

static void
txt_begin(struct dump_json *j, enum ds_vr vr)
{
	struct txt *t = &j->t;

	memset(t, 0, sizeof(*t));
	t->vr = vr;
	t->multi = vr != DS_VR_LT && vr != DS_VR_ST && vr != DS_VR_UT &&
	    vr != DS_VR_UR;
	t->trim_lead = vr == DS_VR_AE || vr == DS_VR_CS || vr == DS_VR_DS ||
	    vr == DS_VR_IS || vr == DS_VR_LO || vr == DS_VR_SH;
	t->pn = vr == DS_VR_PN;
	t->num = vr == DS_VR_DS || vr == DS_VR_IS;
	t->lead = t->trim_lead;
	t->decode = top(j)->cs != NULL && (vr == DS_VR_SH || vr == DS_VR_LO ||
	    vr == DS_VR_ST || vr == DS_VR_LT || vr == DS_VR_UC ||
	    vr == DS_VR_UT || vr == DS_VR_PN);
	j->cslen = 0;
}

/* txt_open: make sure a JSON string is open for the current value (or
 * PN group), writing what comes before it. */
static void
txt_open(struct dump_json *j)
{
	static const char *const group[] = {
		"Alphabetic", "Ideographic", "Phonetic"
	};
	struct txt *t = &j->t;

	if (t->open)
		return;
	if (!t->started) {
		t->started = 1;
		val_sep(j);
		if (t->pn)
			fputc('{', j->out);
	}
	if (t->pn)
		fprintf(j->out, "%s\"%s\": ", t->ngroups++ ? ", " : "",
		    group[t->group]);
	fputc('"', j->out);
	t->open = 1;
}

/* txt_emit: n bytes of significant text of the current value. */
static void
txt_emit(struct dump_json *j, const uint8_t *p, size_t n)
{
	struct txt *t = &j->t;

	if (t->num && !t->tostr) {
		if (t->nlen + n <= NUM_MAX) {
			memcpy(t->nbuf + t->nlen, p, n);
			t->nlen += n;
			return;
		}
		jwarn(j, "%s value longer than %d bytes is not a number: "
		    "written as a string", ds_vr_name(t->vr), NUM_MAX);
		t->tostr = 1;
		txt_open(j);
		put_str(j, t->nbuf, t->nlen);
		t->nlen = 0;
	}
	txt_open(j);
	put_str(j, p, n);
}

/* pad_flush: the padding runs but the last keep are not trailing after
 * all: write them. */
static void
pad_flush(struct dump_json *j, unsigned keep)
{
	struct txt *t = &j->t;
	unsigned out = t->npad - keep;
	uint8_t b[64];

	for (unsigned r = 0; r < out; r++) {
		memset(b, t->pad[r].byte, sizeof(b));
		for (uint32_t left = t->pad[r].n; left > 0; ) {
			uint32_t k = left < sizeof(b) ? left : sizeof(b);

			txt_emit(j, b, k);
			left -= k;
		}
	}
	memmove(t->pad, t->pad + out, keep * sizeof(t->pad[0]));
	t->npad = keep;
}

/* pad_push: hold back a padding byte until the value shows whether it is
 * trailing. Past PAD_RUNS runs the oldest is written: bounded memory;
 * only absurd padding (many runs of alternating space and NUL) is kept. */
static void
pad_push(struct dump_json *j, uint8_t c)
{
	struct txt *t = &j->t;

	if (t->npad > 0 && t->pad[t->npad - 1].byte == c &&
	    t->pad[t->npad - 1].n < UINT32_MAX) {
		t->pad[t->npad - 1].n++;
		return;
	}
	if (t->npad == PAD_RUNS)
		pad_flush(j, PAD_RUNS - 1);
	t->pad[t->npad].byte = c;
	t->pad[t->npad].n = 1;
	t->npad++;
}

/* num_text: write the DS/IS value collected: a number, null when empty,
 * else the text as a string and a warning. */
static void
num_text(struct dump_json *j)
{
	struct txt *t = &j->t;
	char out[NUM_MAX + 2];

	val_sep(j);
	if (t->nlen == 0) {
		fputs("null", j->out);
		return;
	}
	if (ds_number(t->nbuf, t->nlen, t->vr == DS_VR_IS, out) == 0) {
		if (t->vr == DS_VR_IS && (strtod(out, NULL) < -2147483648.0 ||
		    strtod(out, NULL) > 2147483647.0))
			jwarn(j, "IS value %s is outside -2^31..2^31-1 (PS3.5 "
			    "6.2); written as a number all the same", out);
		fputs(out, j->out);
		return;
	}
	jwarn(j, "%s value \"%.*s\" is not a number: written as a string",
	    ds_vr_name(t->vr), (int)t->nlen, (const char *)t->nbuf);
	fputc('"', j->out);
	put_str(j, t->nbuf, t->nlen);
	fputc('"', j->out);
}

/* txt_value_end: a '\' or the end: write the end of the current value
 * (null when it was empty, PS3.18 F.2.5) and reset for the next. */
static void
txt_value_end(struct dump_json *j)
{
	struct txt *t = &j->t;

	t->npad = 0;
	if (t->num && !t->tostr)
		num_text(j);
	else if (t->open)
		fputc('"', j->out);
	else if (!t->started) {
		val_sep(j);
		fputs("null", j->out);
	}
	if (t->pn && t->started)
		fputc('}', j->out);
	t->nvalues++;
	t->started = t->open = t->tostr = 0;
	t->nlen = 0;
	t->group = t->ngroups = 0;
	t->lead = t->trim_lead;
}

/* txt_pad: c is padding if trailing: space, NUL, and in a PN the
 * component delimiter '^' (trailing empty components are not
 * significant, PS3.5 6.2.1.1; dcm2json drops them too). */
static int
txt_pad(const struct txt *t, uint8_t c)
{
	return c == ' ' || c == '\0' || (c == '^' && t->pn);
}

static int
txt_special(const struct txt *t, uint8_t c)
{
	return txt_pad(t, c) || (c == '\\' && t->multi) ||
	    (c == '=' && t->pn && t->group < 2);
}

/* txt_put: n more bytes of UTF-8 text of the element. */
static void
txt_put(struct dump_json *j, const uint8_t *p, size_t n)
{
	struct txt *t = &j->t;
	size_t i = 0, run;

	while (i < n) {
		uint8_t c = p[i];

		if (c == '\\' && t->multi) {
			txt_value_end(j);
			i++;
		} else if (c == '=' && t->pn && t->group < 2) {
			t->npad = 0;
			if (t->open)
				fputc('"', j->out);
			t->open = 0;
			t->group++;
			i++;
		} else if (txt_pad(t, c)) {
			if (!t->lead || c != ' ') {
				t->lead = 0;
				pad_push(j, c);
			}
			i++;
		} else {
			for (run = i + 1; run < n && !txt_special(t, p[run]);
			    run++)
				;
			t->lead = 0;
			pad_flush(j, 0);
			txt_emit(j, p + i, run - i);
			i = run;
		}
	}
}

/* ---------------------------------------------------------------------- */
/* Text: bytes to UTF-8. */

/* utf8_len: the length of the UTF-8 sequence led by b (RFC 3629 4), 0
 * when b cannot lead one. */
static unsigned
utf8_len(uint8_t b)
{
	if (b >= 0xc2 && b <= 0xdf)
		return 2;
	if (b >= 0xe0 && b <= 0xef)
		return 3;
	if (b >= 0xf0 && b <= 0xf4)
		return 4;
	return 0;
}

/* utf8_next_ok: b may follow lead as byte pos (1-3) of its sequence: no
 * overlong forms, surrogates or code points past U+10FFFF. */
static int
utf8_next_ok(uint8_t lead, unsigned pos, uint8_t b)
{
	if ((b & 0xc0) != 0x80)
		return 0;
	if (pos != 1)
		return 1;
	return !((lead == 0xe0 && b < 0xa0) || (lead == 0xed && b > 0x9f) ||
	    (lead == 0xf0 && b < 0x90) || (lead == 0xf4 && b > 0x8f));
}

static void
utf8_bad(struct dump_json *j)
{
	static const uint8_t fffd[] = { 0xef, 0xbf, 0xbd };

	j->t.replaced++;
	j->t.u8have = j->t.u8need = 0;
	txt_put(j, fffd, sizeof(fffd));
}

/*
 * utf8_feed: text that should be UTF-8 (ISO_IR 192, ASCII, which every
 * set shares, or what the character set decoder wrote) on to txt_put():
 * each invalid sequence becomes U+FFFD, counted for txt_end(). Any
 * chunking; then once with last set.
 */
static void
utf8_feed(struct dump_json *j, const uint8_t *p, size_t n, int last)
{
	struct txt *t = &j->t;
	size_t i = 0, run;
	unsigned n_ok;

	while (i < n) {
		if (t->u8need == 0) {
			for (run = i; run < n && p[run] < 0x80; run++)
				;
			if (run > i) {
				txt_put(j, p + i, run - i);
				i = run;
			} else if ((t->u8need = utf8_len(p[i])) == 0) {
				utf8_bad(j);
				i++;
			} else {
				t->u8[0] = p[i++];
				t->u8have = 1;
			}
		} else if (!utf8_next_ok(t->u8[0], t->u8have, p[i])) {
			utf8_bad(j);	/* p[i] starts afresh */
		} else {
			t->u8[t->u8have++] = p[i++];
			if (t->u8have == t->u8need) {
				n_ok = t->u8need;
				t->u8have = t->u8need = 0;
				txt_put(j, t->u8, n_ok);
			}
		}
	}
	if (last && t->u8need > 0)
		utf8_bad(j);
}

/* cs_decode: the first n bytes held in csbuf through the character set,
 * on to utf8_feed(); trailing NULs (padding) pass as they are. */
static void
cs_decode(struct dump_json *j, size_t n)
{
	size_t bad = 0, nul = 0;
	int len;

	if (n == 0)
		return;
	while (nul < n && j->csbuf[n - nul - 1] == '\0')
		nul++;
	if (j->csoutcap < 3 * (n - nul) + 1) {
		free(j->csout);
		j->csoutcap = 3 * (n - nul) + 1;
		if ((j->csout = malloc(j->csoutcap)) == NULL)
			abort();
	}
	len = ds_cs_decode(top(j)->cs, j->t.vr, j->csbuf, n - nul, j->csout,
	    j->csoutcap, &bad);
	if (len < 0)
		abort();	/* 3n + 1 is always enough */
	j->t.replaced += bad;
	utf8_feed(j, (const uint8_t *)j->csout, (size_t)len, 0);
	if (nul > 0)
		utf8_feed(j, j->csbuf + n - nul, nul, 0);
	if (j->cslen > n)
		memmove(j->csbuf, j->csbuf + n, j->cslen - n);
	j->cslen -= n;
}

/*
 * text_to_utf8: the one place where the bytes of a text value, in the
 * Specific Character Set in effect (top(j)->cs, from (0008,0005) of this
 * dataset or item, PS3.5 6.1), become UTF-8 for txt_put(); everything
 * after this function sees UTF-8 only. Called with the value's bytes in
 * order, in any chunking, then once with last set. SH LO ST LT UC UT PN
 * go through ds_cs_decode(): a value that arrives whole (up to the
 * parser's chunk size) is decoded in one piece; a streamed one is held
 * until a reset point (CR LF FF TAB, PS3.5 6.1.2.5.3), where the decoder
 * is back in its initial state, and decoded up to it (after CS_HOLD_MAX
 * bytes without one, as it is). Without (0008,0005), and for the other
 * VRs, the bytes pass as UTF-8 when valid. Undecodable bytes become
 * U+FFFD, which txt_end() reports.
 */
static void
text_to_utf8(struct dump_json *j, const uint8_t *p, size_t n, int last)
{
	size_t cut;

	if (!j->t.decode) {
		utf8_feed(j, p, n, last);
		return;
	}
	if (j->cslen + n > j->cscap) {
		size_t cap = j->cscap ? j->cscap : 4096;
		uint8_t *nb;

		while (cap < j->cslen + n)
			cap *= 2;
		if ((nb = realloc(j->csbuf, cap)) == NULL)
			abort();
		j->csbuf = nb;
		j->cscap = cap;
	}
	if (n > 0)
		memcpy(j->csbuf + j->cslen, p, n);
	j->cslen += n;
	if (last) {
		cs_decode(j, j->cslen);
		utf8_feed(j, NULL, 0, 1);
		return;
	}
	if (j->cslen < CS_HOLD)
		return;
	for (cut = j->cslen; cut > 0; cut--) {
		uint8_t c = j->csbuf[cut - 1];

		if (c == '\r' || c == '\n' || c == '\f' || c == '\t')
			break;
	}
	if (cut == 0 && j->cslen >= CS_HOLD_MAX)
		cut = j->cslen;
	if (cut > 0)
		cs_decode(j, cut);
}

static void
txt_end(struct dump_json *j)
{
	struct txt *t = &j->t;

	text_to_utf8(j, NULL, 0, 1);
	if (t->nvalues > 0 || t->started || t->nlen > 0)
		txt_value_end(j);
	if (j->nvals > 0)
		fputc(']', j->out);
	if (t->replaced > 0 && t->decode)
		jwarn(j, "%s text is not valid in Specific Character Set "
		    "\"%s\": %" PRIu64 " bytes replaced by U+FFFD",
		    ds_vr_name(t->vr), top(j)->charset, t->replaced);
	else if (t->replaced > 0)
		jwarn(j, "%s text is not valid UTF-8 (Specific Character Set "
		    "\"%s\"): %" PRIu64 " invalid sequences replaced by U+FFFD",
		    ds_vr_name(t->vr), top(j)->charset, t->replaced);
}

/* keep_charset: (0008,0005) sets the character set of its dataset. */
static void
keep_charset(struct dump_json *j, const uint8_t *v, size_t n)
{
	char *cs = top(j)->charset;

	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\0'))
		n--;
	while (n > 0 && v[0] == ' ') {
		v++;
		n--;
	}
	if (n >= CHARSET_MAX)
		n = CHARSET_MAX - 1;
	memcpy(cs, v, n);
	cs[n] = '\0';
	if (top(j)->cs_owned)
		ds_cs_free(top(j)->cs);
	top(j)->cs = ds_cs_new((const char *)v, n);
	top(j)->cs_owned = 1;
	if (ds_cs_error(top(j)->cs) != NULL)
		jwarn(j, "Specific Character Set: %s", ds_cs_error(top(j)->cs));
}

/* ---------------------------------------------------------------------- */
/* Elements. */

static const char *
json_vr(const struct ds_elem *e)
{
	if (e->vr == DS_VR_SQ || (e->vr == DS_VR_UN &&
	    e->length == DS_UNDEFINED_LENGTH))
		return "SQ";
	return e->vr == DS_VR_NONE ? "UN" : ds_vr_name(e->vr);
}

/*
 * implicit_vr: the VR to write for e. In implicit VR the dictionary's
 * "US or SS" of a pixel value (PS3.5 A.1 c, PS3.3 C.7.6.3.1) is SS when
 * the dataset's Pixel Representation (0028,0103) is 1, as DCMTK reads
 * it; the multi-valued LUT descriptors stay US.
 */
static enum ds_vr
implicit_vr(struct dump_json *j, const struct ds_elem *e)
{
	const struct ds_dict_entry *d;

	if (!e->vr_guessed || e->vr != DS_VR_US || top(j)->pixrep != 1)
		return e->vr;
	d = ds_dict_by_tag(e->tag);
	if (d != NULL && d->vr[1] == DS_VR_SS && strcmp(d->vm, "1") == 0)
		return DS_VR_SS;
	return e->vr;
}

/* val_begin: write the head of e and choose how its value goes out;
 * streamed: it is over the chunk size (BulkDataURI when asked). */
static void
val_begin(struct dump_json *j, const struct ds_elem *ep, int streamed)
{
	struct ds_elem x = *ep;
	const struct ds_elem *e = &x;

	x.vr = implicit_vr(j, ep);
	elem_begin(j, e, json_vr(e));
	j->ncarry = 0;
	if (ds_vr_text(e->vr)) {
		j->mode = V_TEXT;
		txt_begin(j, e->vr);
	} else if ((j->unit = num_size(e->vr)) > 0) {
		j->mode = V_NUM;
	} else if (streamed && j->uri != NULL && !j->deflated) {
		bulk_uri(j, e->offset + e->hdr_len, e->length);
		j->mode = V_URI;
	} else {
		j->mode = V_BIN;
		j->unit = ds_vr_unit(e->vr);
		j->swap = e->big_endian && j->unit > 1;
	}
}

static void
val_data(struct dump_json *j, const uint8_t *p, size_t n)
{
	switch (j->mode) {
	case V_TEXT: text_to_utf8(j, p, n, 0); break;
	case V_NUM: num_put(j, p, n); break;
	case V_BIN: bin_put(j, p, n); break;
	case V_URI: case V_SKIP: case V_NONE: break;
	}
}

static void
val_end(struct dump_json *j)
{
	switch (j->mode) {
	case V_TEXT: txt_end(j); break;
	case V_NUM: num_end(j); break;
	case V_BIN: bin_end(j); break;
	case V_URI: case V_SKIP: case V_NONE: break;
	}
	if (j->mode != V_SKIP)
		fputc('}', j->out);
	j->mode = V_NONE;
}

/*
 * Encapsulated pixel data (PS3.5 A.4): its InlineBinary is the base64 of
 * the value as stored, the items (Basic Offset Table, then fragments)
 * with their tags and lengths, without the sequence delimiter, as pydicom
 * writes it; the BulkDataURI points at the same bytes. With --bulk-uri
 * the items are held until they pass the chunk size, then dropped for a
 * URI.
 */
static void
encap_begin(struct dump_json *j, const struct ds_elem *e)
{
	elem_begin(j, e, e->vr == DS_VR_NONE ? "OB" : ds_vr_name(e->vr));
	j->encap = 1;
	j->efirst = 1;
	j->elen = 0;
	j->emode = j->uri != NULL && !j->deflated ? E_BUF : E_INLINE;
	j->swap = 0;
}

static void
frag_data(struct dump_json *j, const uint8_t *p, size_t n)
{
	if (j->emode == E_BUF && j->elen + n > j->chunk)
		j->emode = E_URI;
	if (j->emode == E_INLINE)
		b64_put(j, p, n);
	else if (j->emode == E_BUF && n > 0) {
		if (j->ebuf == NULL && (j->ebuf = malloc(j->chunk)) == NULL)
			abort();
		memcpy(j->ebuf + j->elen, p, n);
		j->elen += n;
	}
}

static void
frag_begin(struct dump_json *j, const struct ds_elem *e, int streamed)
{
	uint8_t h[8];
	int be = e->big_endian;

	if (j->efirst) {
		j->estart = e->offset;
		j->efirst = 0;
	}
	j->eend = e->offset + 8 + e->length;
	for (int i = 0; i < 2; i++) {	/* (FFFE,E000) and the length */
		h[be ? 1 - i : i] = (uint8_t)(0xfffe >> (8 * i));
		h[2 + (be ? 1 - i : i)] = (uint8_t)(0xe000 >> (8 * i));
	}
	for (int i = 0; i < 4; i++)
		h[4 + (be ? 3 - i : i)] = (uint8_t)(e->length >> (8 * i));
	if (j->emode == E_BUF && streamed)
		j->emode = E_URI;
	frag_data(j, h, sizeof(h));
}

static void
encap_end(struct dump_json *j)
{
	if (j->emode == E_BUF)
		b64_put(j, j->ebuf, j->elen);
	if (j->emode == E_URI)
		bulk_uri(j, j->estart, j->eend - j->estart);
	else
		b64_close(j);
	fputc('}', j->out);
	j->encap = 0;
}

/* ---------------------------------------------------------------------- */
/* Parser callbacks. */

/* skipped: e is left out: the file meta group (unless --meta) and group
 * lengths (gggg,0000), which describe the encoding, not the data; as
 * dcm2json, with or without +m. */
static int
skipped(const struct dump_json *j, const struct ds_elem *e)
{
	return (e->meta && !j->o->meta) || (e->tag & 0xffff) == 0;
}

static int
on_meta(void *arg, const struct ds_meta *m)
{
	struct dump_json *j = arg;

	j->deflated = m->ts->deflated;
	return 0;
}

static int
on_element(void *arg, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	struct dump_json *j = arg;

	if (skipped(j, e) && !e->fragment)
		return 0;
	if (e->fragment) {
		frag_begin(j, e, 0);
		frag_data(j, v, n);
		return 0;
	}
	if (e->tag == TAG_CHARSET)
		keep_charset(j, v, n);
	if (e->tag == TAG_PIXREP && n == 2)
		top(j)->pixrep = (int)ds_uint(v, 2, e->big_endian);
	val_begin(j, e, 0);
	val_data(j, v, n);
	val_end(j);
	return 0;
}

static int
on_value_begin(void *arg, const struct ds_elem *e)
{
	struct dump_json *j = arg;

	if (e->fragment)
		frag_begin(j, e, 1);
	else if (skipped(j, e))
		j->mode = V_SKIP;
	else
		val_begin(j, e, 1);
	return 0;
}

static int
on_value_chunk(void *arg, const struct ds_elem *e, const uint8_t *p,
    size_t n)
{
	struct dump_json *j = arg;

	if (e->fragment)
		frag_data(j, p, n);
	else
		val_data(j, p, n);
	return 0;
}

static int
on_value_end(void *arg, const struct ds_elem *e)
{
	struct dump_json *j = arg;

	if (!e->fragment)
		val_end(j);
	return 0;
}

static int
on_seq_begin(void *arg, const struct ds_elem *e)
{
	struct dump_json *j = arg;

	if (e->encapsulated) {
		encap_begin(j, e);
		return 0;
	}
	elem_begin(j, e, "SQ");
	push(j, 1);
	return 0;
}

static int
on_item_begin(void *arg, const struct ds_elem *e)
{
	struct dump_json *j = arg;
	struct lvl *l = top(j);

	(void)e;
	fputs(l->first ? ", \"Value\": [" : ",", j->out);
	l->first = 0;
	newline(j, j->nlv);
	fputc('{', j->out);
	push(j, 0);
	return 0;
}

static int
on_close(void *arg, const struct ds_elem *e)
{
	struct dump_json *j = arg;

	if (e->encapsulated)
		encap_end(j);
	else if (j->nlv > 1)
		close_level(j);
	return 0;
}

static int
on_warning(void *arg, const struct ds_error *w)
{
	struct dump_json *j = arg;

	if (!j->o->quiet) {
		fflush(j->out);
		fprintf(stderr, "%s: %s: warning at byte %llu, tag "
		    "(%04x,%04x): %s\n", PROG(j), j->file,
		    (unsigned long long)w->offset,
		    TAGA(w->tag), w->msg);
	}
	return 0;
}

static const struct ds_callbacks json_cb = {
	.meta = on_meta,
	.element = on_element,
	.value_begin = on_value_begin,
	.value_chunk = on_value_chunk,
	.value_end = on_value_end,
	.seq_begin = on_seq_begin,
	.item_begin = on_item_begin,
	.item_end = on_close,
	.seq_end = on_close,
	.warning = on_warning,
};

/* ---------------------------------------------------------------------- */
/* Files. */

/* file_uri: "file://" and the absolute path of path, percent-encoded
 * (RFC 8089, RFC 3986 2.1). Never NULL; the caller frees it. */
static char *
file_uri(const char *path)
{
	char *abs = realpath(path, NULL), *u, *q;
	const char *s = abs != NULL ? abs : path;
	size_t n = strlen(s);

	if ((u = malloc(sizeof("file://") + 3 * n)) == NULL)
		abort();
	q = u + strlen(strcpy(u, "file://"));
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || strchr("-._~/", c) != NULL)
			*q++ = (char)c;
		else
			q += sprintf(q, "%%%02X", c);
	}
	*q = '\0';
	free(abs);
	return u;
}

/* unwind: the parse stopped: end what is open, so the JSON stays valid. */
static void
unwind(struct dump_json *j)
{
	if (j->mode != V_NONE)
		val_end(j);
	if (j->encap)
		encap_end(j);
	while (j->nlv > 1)
		close_level(j);
}

/* obj_begin: start the object of one dataset (label names it in
 * messages) and its parser's limits. */
static void
obj_begin(struct dump_json *j, const char *label, struct ds_limits *lim)
{
	ds_limits_default(lim);
	j->chunk = lim->chunk_over;
	j->file = label;
	j->deflated = 0;
	j->mode = V_NONE;
	j->encap = 0;
	push(j, 0);
	fputc('{', j->out);
}

/* obj_failed: the parse of label stopped: close what is open, say
 * where. */
static void
obj_failed(struct dump_json *j, const struct ds_parser *p, const char *label)
{
	const struct ds_error *err = ds_parse_error(p);

	unwind(j);
	fflush(j->out);
	fprintf(stderr, "%s: %s: byte %llu, tag (%04x,%04x): %s\n", PROG(j),
	    label, (unsigned long long)err->offset, TAGA(err->tag), err->msg);
}

/* json_file: write the object of one file (null when it cannot be
 * opened). Returns 0 when it parsed completely, else 1. */
static int
json_file(struct dump_json *j, const char *path)
{
	struct ds_limits lim;
	struct ds_parser *p;
	enum ds_result r = DS_NEED_MORE;
	uint8_t buf[65536];
	ssize_t n;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG(j), path,
		    strerror(errno));
		fputs("null", j->out);
		return 1;
	}
	j->uri = j->o->bulk_uri ? file_uri(path) : NULL;
	obj_begin(j, path, &lim);
	p = ds_parser_new_file(&lim, &json_cb, j);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if ((r = ds_parse_feed(p, buf, (size_t)n)) == DS_ERROR)
			break;
	if (n < 0) {
		unwind(j);
		fflush(j->out);
		fprintf(stderr, "%s: %s: read: %s\n", PROG(j), path,
		    strerror(errno));
		rc = 1;
	} else if (r == DS_ERROR || ds_parse_finish(p) == DS_ERROR) {
		obj_failed(j, p, path);
		rc = 1;
	}
	close_level(j);
	ds_parser_free(p);
	close(fd);
	free(j->uri);
	j->uri = NULL;
	return rc;
}

int
dump_json_files(FILE *out, char *const *paths, int n,
    const struct dump_json_opts *o)
{
	struct dump_json j;
	int rc = 0;

	memset(&j, 0, sizeof(j));
	j.out = out;
	j.o = o;
	j.base = n > 1;
	if (n > 1)
		fputc('[', out);
	for (int i = 0; i < n; i++) {
		if (n > 1) {
			if (i > 0)
				fputc(',', out);
			newline(&j, 0);
		}
		rc |= json_file(&j, paths[i]);
	}
	fputs(n > 1 ? "\n]\n" : "\n", out);
	free(j.lv);
	free(j.ebuf);
	free(j.csbuf);
	free(j.csout);
	if (fflush(out) != 0 || ferror(out)) {
		fprintf(stderr, "%s: write: %s\n", PROG(&j), strerror(errno));
		rc = 1;
	}
	return rc;
}

/* ---------------------------------------------------------------------- */
/* Datasets (a Q/R identifier), one object each in an array. */

struct dump_json *
dump_json_open(FILE *out, const struct dump_json_opts *o)
{
	struct dump_json *j = calloc(1, sizeof(*j));

	if (j == NULL)
		abort();
	j->out = out;
	j->o = o;
	j->base = 1;
	fputc('[', out);
	return j;
}

int
dump_json_dataset(struct dump_json *j, const uint8_t *p, size_t n,
    const struct ds_ts *ts, const char *label)
{
	struct ds_limits lim;
	struct ds_parser *ps;
	int rc = 0;

	if (j->ndatasets++ > 0)
		fputc(',', j->out);
	newline(j, 0);
	j->uri = NULL;
	obj_begin(j, label, &lim);
	ps = ds_parser_new_dataset(ts, &lim, &json_cb, j);
	if (ds_parse_feed(ps, p, n) == DS_ERROR ||
	    ds_parse_finish(ps) == DS_ERROR) {
		obj_failed(j, ps, label);
		rc = 1;
	}
	close_level(j);
	ds_parser_free(ps);
	return rc;
}

int
dump_json_close(struct dump_json *j)
{
	int rc = 0;

	fputs(j->ndatasets ? "\n]\n" : "]\n", j->out);
	if (fflush(j->out) != 0 || ferror(j->out)) {
		fprintf(stderr, "%s: write: %s\n", PROG(j), strerror(errno));
		rc = 1;
	}
	free(j->lv);
	free(j->ebuf);
	free(j->csbuf);
	free(j->csout);
	free(j);
	return rc;
}
