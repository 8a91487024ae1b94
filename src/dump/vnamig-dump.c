/*
 * vnamig-dump — print every element of DICOM files: tag, VR, length,
 * keyword and value, nested items indented; like DCMTK's dcmdump. Or,
 * with --json, the DICOM JSON model (dump_json.c); or, with -d, digests.
 * Streams each file through the dataset parser, so a file of any size
 * dumps in constant memory.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/evp.h>

#include "dimse/ds_charset.h"
#include "dimse/ds_dict.h"
#include "dimse/ds_digest.h"
#include "dimse/ds_parse.h"
#include "src/dump/dump_json.h"

#define SHOW_MAX	64	/* bytes/values shown of one value */
#define TEXT_MAX	256	/* bytes of text shown of one value */
#define TAG_CHARSET	DS_TAG(0x0008, 0x0005)

/* The Specific Character Set in effect at one nesting level: the
 * dataset, or an item, which inherits its parent's unless it has its own
 * (0008,0005) (PS3.5 6.1.2.4 ... 7.5: an item may override it). */
struct cs_level {
	struct ds_charset	*cs;	/* NULL: the default repertoire */
	int			 owned;	/* set by this level's (0008,0005) */
};

struct dump {
	FILE		*out;
	const char	*file;
	int		 quiet_warnings;
	int		 all;		/* show whole values (-a) */
	unsigned	 indent;
	uint64_t	 streamed;	/* bytes of the current streamed value */
	struct cs_level	*cs;		/* [0] dataset, then each open item */
	unsigned	 ncs, capcs;
	struct ds_charset *utf8;	/* for values with no (0008,0005) */
	char		*u8;		/* a decoded value */
	size_t		 capu8;
};

static void
indent(struct dump *d, unsigned depth)
{
	for (unsigned i = 0; i < depth; i++)
		fputs("  ", d->out);
}

static const char *
keyword(uint32_t tag)
{
	const struct ds_dict_entry *e = ds_dict_by_tag(tag);

	if (e != NULL && e->keyword[0] != '\0')
		return e->keyword;
	return (tag >> 16) & 1 ? "PrivateTag" : "UnknownTag";
}

static void
head(struct dump *d, const struct ds_elem *e)
{
	indent(d, d->indent);
	fprintf(d->out, "(%04x,%04x) %s ", (unsigned)(e->tag >> 16),
	    (unsigned)(e->tag & 0xffff), e->fragment ? "pi" : e->tag >> 16 ==
	    0xfffe ? "na" : ds_vr_name(e->vr));
}

static void
warn(struct dump *d, const struct ds_elem *e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
warn(struct dump *d, const struct ds_elem *e, const char *fmt, ...)
{
	va_list ap;

	if (d->quiet_warnings)
		return;
	fflush(d->out);
	fprintf(stderr, "vnamig-dump: %s: warning at byte %llu, tag "
	    "(%04x,%04x): ", d->file, (unsigned long long)e->offset,
	    (unsigned)(e->tag >> 16), (unsigned)(e->tag & 0xffff));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static struct ds_charset *
cur_cs(struct dump *d)
{
	return d->ncs > 0 ? d->cs[d->ncs - 1].cs : NULL;
}

/* cs_push: an item opens; it starts with its parent's character set. */
static void
cs_push(struct dump *d)
{
	if (d->ncs == d->capcs) {
		unsigned cap = d->capcs ? 2 * d->capcs : 8;
		struct cs_level *n = realloc(d->cs, cap * sizeof(*n));

		if (n == NULL)
			abort();
		d->cs = n;
		d->capcs = cap;
	}
	d->cs[d->ncs].cs = cur_cs(d);
	d->cs[d->ncs].owned = 0;
	d->ncs++;
}

static void
cs_pop(struct dump *d)
{
	if (d->ncs == 0)
		return;
	d->ncs--;
	if (d->cs[d->ncs].owned)
		ds_cs_free(d->cs[d->ncs].cs);
}

/* cs_set: (0008,0005) sets the character set of its dataset or item. */
static void
cs_set(struct dump *d, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	struct cs_level *l;

	if (d->ncs == 0)
		cs_push(d);
	l = &d->cs[d->ncs - 1];
	if (l->owned)
		ds_cs_free(l->cs);
	l->cs = ds_cs_new((const char *)v, n);
	l->owned = 1;
	if (ds_cs_error(l->cs) != NULL)
		warn(d, e, "Specific Character Set: %s", ds_cs_error(l->cs));
}

/*
 * text_value: the value decoded to UTF-8 per the Specific Character Set
 * in effect (only SH LO ST LT UC UT PN use it; the other text VRs are
 * ASCII), padding stripped; control characters and backslashes inside
 * LT ST UT (where '\' is not a delimiter) are shown as escapes. Bytes
 * the character set cannot decode are shown as U+FFFD and reported.
 */
static void
text_value(struct dump *d, const struct ds_elem *e, const uint8_t *v,
    size_t n)
{
	struct ds_charset *cs = cur_cs(d);
	size_t bad = 0;
	int len, shown;

	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\0'))
		n--;
	if (d->capu8 < 3 * n + 1) {
		free(d->u8);
		d->capu8 = 3 * n + 1;
		if ((d->u8 = malloc(d->capu8)) == NULL)
			abort();
	}
	if (cs == NULL) {
		/* No (0008,0005): the default repertoire. Bytes >= 0x80 are
		 * shown as UTF-8 when they are valid UTF-8 (many writers
		 * leave the term out), else reported. */
		if (d->utf8 == NULL)
			d->utf8 = ds_cs_new("ISO_IR 192", 10);
		cs = d->utf8;
	}
	if ((len = ds_cs_decode(cs, e->vr, v, n, d->u8, d->capu8, &bad)) < 0)
		abort();	/* 3n + 1 is always enough */
	shown = len;
	if (!d->all && shown > TEXT_MAX) {
		shown = TEXT_MAX;	/* cut at a character boundary */
		while (shown > 0 && ((uint8_t)d->u8[shown] & 0xc0) == 0x80)
			shown--;
	}
	fputc('[', d->out);
	for (int i = 0; i < shown; i++) {
		uint8_t c = (uint8_t)d->u8[i];

		if (c < 0x20 || c == 0x7f)
			fprintf(d->out, "\\x%02x", c);
		else
			fputc(c, d->out);
	}
	fputs(shown < len ? "...]" : "]", d->out);
	if (bad > 0)
		warn(d, e, "%zu bytes of this %s value are not valid in its "
		    "Specific Character Set%s: shown as U+FFFD", bad,
		    ds_vr_name(e->vr), cur_cs(d) == NULL ? " (none given: "
		    "ASCII, or UTF-8)" : "");
}

static void
binary_value(struct dump *d, const struct ds_elem *e, const uint8_t *v,
    size_t n)
{
	unsigned unit = ds_vr_unit(e->vr);
	size_t count, i;

	if (e->vr == DS_VR_OB || e->vr == DS_VR_UN || e->fragment ||
	    unit == 1) {
		for (i = 0; i < n && (d->all || i < SHOW_MAX / 4); i++)
			fprintf(d->out, "%s%02x", i ? "\\" : "", v[i]);
		fputs(i < n ? "..." : n == 0 ? "(no value)" : "", d->out);
		return;
	}
	if (e->vr == DS_VR_AT)
		unit = 4;
	count = n / unit;
	for (i = 0; i < count && (d->all || i < SHOW_MAX / 4); i++) {
		const uint8_t *b = v + i * unit;
		uint64_t x = ds_uint(b, unit, e->big_endian);

		if (i)
			fputc('\\', d->out);
		switch (e->vr) {
		case DS_VR_AT:
			fprintf(d->out, "(%04x,%04x)",
			    (unsigned)ds_uint(b, 2, e->big_endian),
			    (unsigned)ds_uint(b + 2, 2, e->big_endian));
			break;
		case DS_VR_SS: fprintf(d->out, "%d", (int16_t)x); break;
		case DS_VR_SL: fprintf(d->out, "%d", (int32_t)x); break;
		case DS_VR_SV: fprintf(d->out, "%lld", (long long)x); break;
		case DS_VR_FL: case DS_VR_OF: {
			uint32_t u = (uint32_t)x;
			float f;

			memcpy(&f, &u, 4);
			fprintf(d->out, "%g", (double)f);
			break;
		}
		case DS_VR_FD: case DS_VR_OD: {
			double f;

			memcpy(&f, &x, 8);
			fprintf(d->out, "%g", f);
			break;
		}
		default:
			if (e->vr == DS_VR_OW || e->vr == DS_VR_OL ||
			    e->vr == DS_VR_OV)
				fprintf(d->out, "%0*llx", (int)unit * 2,
				    (unsigned long long)x);
			else
				fprintf(d->out, "%llu", (unsigned long long)x);
		}
	}
	fputs(i < count ? "..." : n == 0 ? "(no value)" : "", d->out);
}

static void
tail(struct dump *d, const struct ds_elem *e, const char *kw)
{
	if (e->length == DS_UNDEFINED_LENGTH)
		fprintf(d->out, "  # u/l, %s\n", kw);
	else
		fprintf(d->out, "  # %u, %s\n", e->length, kw);
}

static int
on_meta(void *arg, const struct ds_meta *m)
{
	struct dump *d = arg;

	fprintf(d->out, "# Dataset: %s%s (%s)\n", m->ts->name,
	    !m->ts_guessed ? "" : m->has_meta ? " (guessed: no (0002,0010))" :
	    " (guessed: no file meta)", m->ts_uid);
	return 0;
}

static int
on_element(void *arg, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	struct dump *d = arg;

	if (e->tag == TAG_CHARSET && !e->fragment)
		cs_set(d, e, v, n);
	head(d, e);
	if (ds_vr_text(e->vr) && !e->fragment)
		text_value(d, e, v, n);
	else
		binary_value(d, e, v, n);
	tail(d, e, e->fragment ? "PixelFragment" : keyword(e->tag));
	return 0;
}

static int
on_value_begin(void *arg, const struct ds_elem *e)
{
	struct dump *d = arg;

	d->streamed = 0;
	(void)e;
	return 0;
}

static int
on_value_chunk(void *arg, const struct ds_elem *e, const uint8_t *p, size_t n)
{
	struct dump *d = arg;

	(void)e;
	(void)p;
	d->streamed += n;
	return 0;
}

static int
on_value_end(void *arg, const struct ds_elem *e)
{
	struct dump *d = arg;

	head(d, e);
	fprintf(d->out, "(%llu bytes, not shown)",
	    (unsigned long long)d->streamed);
	tail(d, e, e->fragment ? "PixelFragment" : keyword(e->tag));
	return 0;
}

static int
on_seq_begin(void *arg, const struct ds_elem *e)
{
	struct dump *d = arg;

	head(d, e);
	fputs(e->encapsulated ? "(PixelSequence)" : "(Sequence)", d->out);
	tail(d, e, keyword(e->tag));
	d->indent++;
	return 0;
}

static int
on_item_begin(void *arg, const struct ds_elem *e)
{
	struct dump *d = arg;

	head(d, e);
	fputs("(Item)", d->out);
	tail(d, e, "Item");
	d->indent++;
	cs_push(d);
	return 0;
}

static int
on_close(void *arg, const struct ds_elem *e)
{
	struct dump *d = arg;

	(void)e;
	if (d->indent > 0)
		d->indent--;
	return 0;
}

static int
on_item_end(void *arg, const struct ds_elem *e)
{
	struct dump *d = arg;

	cs_pop(d);
	return on_close(arg, e);
}

static int
on_warning(void *arg, const struct ds_error *w)
{
	struct dump *d = arg;

	if (!d->quiet_warnings)
		fprintf(stderr, "vnamig-dump: %s: warning at byte %llu, tag "
		    "(%04x,%04x): %s\n", d->file, (unsigned long long)w->offset,
		    (unsigned)(w->tag >> 16), (unsigned)(w->tag & 0xffff),
		    w->msg);
	return 0;
}

static const struct ds_callbacks dump_cb = {
	.meta = on_meta,
	.element = on_element,
	.value_begin = on_value_begin,
	.value_chunk = on_value_chunk,
	.value_end = on_value_end,
	.seq_begin = on_seq_begin,
	.item_begin = on_item_begin,
	.item_end = on_item_end,
	.seq_end = on_close,
	.warning = on_warning,
};

static void
hex(const uint8_t *h, char *out)
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", h[i]);
}

/*
 * The file SHA-256 of a large file runs in a thread of its own, over the
 * same buffers the parser reads, so it costs no time beside the parse and
 * the pixel digest (which hashes the same bytes again): a ring of
 * HASH_SLOTS buffers, filled by the main thread in order, hashed by the
 * hasher in order; a buffer is refilled only once hashed (and parsed: the
 * main thread parses it before reading the next).
 */
#define HASH_SLOTS	8
#define HASH_SLOT	(1u << 20)
#define HASH_THREAD_MIN	(8u << 20)	/* smaller files: one thread */

struct hasher {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	EVP_MD_CTX	*ctx;
	uint8_t		*buf[HASH_SLOTS];
	size_t		 len[HASH_SLOTS];
	uint64_t	 posted, done;	/* slots filled, slots hashed */
	int		 eof;
};

static void *
hash_main(void *arg)
{
	struct hasher *h = arg;
	unsigned slot;

	pthread_mutex_lock(&h->mu);
	for (;;) {
		while (h->done == h->posted && !h->eof)
			pthread_cond_wait(&h->cv, &h->mu);
		if (h->done == h->posted)
			break;
		slot = (unsigned)(h->done % HASH_SLOTS);
		pthread_mutex_unlock(&h->mu);
		EVP_DigestUpdate(h->ctx, h->buf[slot], h->len[slot]);
		pthread_mutex_lock(&h->mu);
		h->done++;
		pthread_cond_broadcast(&h->cv);
	}
	pthread_mutex_unlock(&h->mu);
	return NULL;
}

/*
 * read_hashed: read fd to its end, each chunk into fctx and the parser.
 * Returns the last read()'s result (0 at the end, < 0 on error) and the
 * parser's last result in *r.
 */
static ssize_t
read_hashed(int fd, EVP_MD_CTX *fctx, struct ds_parser *p, enum ds_result *r)
{
	struct hasher h = { .ctx = fctx };
	struct stat st;
	pthread_t thr;
	ssize_t n = 0;
	unsigned slot;

	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size < HASH_THREAD_MIN) {
		static uint8_t buf[1 << 18];

		while ((n = read(fd, buf, sizeof(buf))) > 0) {
			EVP_DigestUpdate(fctx, buf, (size_t)n);
			if ((*r = ds_parse_feed(p, buf, (size_t)n)) == DS_ERROR)
				break;
		}
		return n;
	}
	for (slot = 0; slot < HASH_SLOTS; slot++)
		if ((h.buf[slot] = malloc(HASH_SLOT)) == NULL)
			abort();
	pthread_mutex_init(&h.mu, NULL);
	pthread_cond_init(&h.cv, NULL);
	if (pthread_create(&thr, NULL, hash_main, &h) != 0)
		abort();
	for (;;) {
		pthread_mutex_lock(&h.mu);
		while (h.posted - h.done == HASH_SLOTS)
			pthread_cond_wait(&h.cv, &h.mu);
		pthread_mutex_unlock(&h.mu);
		slot = (unsigned)(h.posted % HASH_SLOTS);
		if ((n = read(fd, h.buf[slot], HASH_SLOT)) <= 0)
			break;
		pthread_mutex_lock(&h.mu);
		h.len[slot] = (size_t)n;
		h.posted++;
		pthread_cond_broadcast(&h.cv);
		pthread_mutex_unlock(&h.mu);
		if ((*r = ds_parse_feed(p, h.buf[slot], (size_t)n)) == DS_ERROR)
			break;
	}
	pthread_mutex_lock(&h.mu);
	h.eof = 1;
	pthread_cond_broadcast(&h.cv);
	pthread_mutex_unlock(&h.mu);
	pthread_join(thr, NULL);
	pthread_cond_destroy(&h.cv);
	pthread_mutex_destroy(&h.mu);
	for (slot = 0; slot < HASH_SLOTS; slot++)
		free(h.buf[slot]);
	return n;
}

/*
 * digest_file: print the file's SHA-256 (the bytes as stored), the
 * canonical dataset digest and the pixel digest (ds_digest.h), all from
 * one streaming read. 0 when the file parsed, 1 otherwise.
 */
static int
digest_file(const char *path)
{
	struct ds_digest *dg = ds_digest_new();
	struct ds_parser *p = ds_parser_new_file(NULL, ds_digest_callbacks(),
	    dg);
	EVP_MD_CTX *fctx = EVP_MD_CTX_new();
	uint8_t fh[32], ch[32], ph[32];
	char fx[65], cx[65], px[65];
	unsigned int fl = 32;
	enum ds_result r = DS_NEED_MORE;
	int fd, has_px, rc = 1;
	ssize_t n;

	if (fctx == NULL || !EVP_DigestInit_ex(fctx, EVP_sha256(), NULL))
		abort();
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "vnamig-dump: %s: %s\n", path, strerror(errno));
		goto out;
	}
	n = read_hashed(fd, fctx, p, &r);
	close(fd);
	if (n < 0)
		fprintf(stderr, "vnamig-dump: %s: read: %s\n", path,
		    strerror(errno));
	else if (r == DS_ERROR || ds_parse_finish(p) == DS_ERROR ||
	    ds_digest_final(dg, ch, ph, &has_px) < 0)
		fprintf(stderr, "vnamig-dump: %s: byte %llu: %s\n", path,
		    (unsigned long long)ds_parse_error(p)->offset,
		    ds_parse_error(p)->msg);
	else {
		EVP_DigestFinal_ex(fctx, fh, &fl);
		hex(fh, fx);
		hex(ch, cx);
		hex(ph, px);
		printf("%s sha256=%s canonical=%s pixel=%s\n", path, fx, cx,
		    has_px ? px : "none");
		rc = 0;
	}
out:
	EVP_MD_CTX_free(fctx);
	ds_parser_free(p);
	ds_digest_free(dg);
	return rc;
}

/* dump_file: 0 when the file parsed completely, 1 otherwise. */
static int
dump_file(const char *path, int quiet, int all)
{
	struct dump d = { .out = stdout, .file = path, .quiet_warnings = quiet,
	    .all = all };
	struct ds_parser *p;
	const struct ds_error *err;
	uint8_t buf[65536];
	ssize_t n;
	int fd, rc = 0;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "vnamig-dump: %s: %s\n", path, strerror(errno));
		return 1;
	}
	p = ds_parser_new_file(NULL, &dump_cb, &d);
	printf("# File: %s\n", path);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (ds_parse_feed(p, buf, (size_t)n) == DS_ERROR)
			break;
	if (n < 0) {
		fprintf(stderr, "vnamig-dump: %s: read: %s\n", path,
		    strerror(errno));
		rc = 1;
	} else if ((n > 0 ? DS_ERROR : ds_parse_finish(p)) == DS_ERROR) {
		err = ds_parse_error(p);
		fflush(stdout);
		fprintf(stderr, "vnamig-dump: %s: byte %llu, tag (%04x,%04x): "
		    "%s\n", path, (unsigned long long)err->offset,
		    (unsigned)(err->tag >> 16), (unsigned)(err->tag & 0xffff),
		    err->msg);
		rc = 1;
	}
	ds_parser_free(p);
	close(fd);
	while (d.ncs > 0)
		cs_pop(&d);
	free(d.cs);
	ds_cs_free(d.utf8);
	free(d.u8);
	return rc;
}

static void
usage(FILE *f)
{
	fputs("NAME\n"
"    vnamig-dump - print the elements of DICOM files\n"
"\n"
"SYNOPSIS\n"
"    vnamig-dump [-q] [-a] FILE...\n"
"    vnamig-dump --json [-q] [--meta] [--bulk-uri] FILE...\n"
"    vnamig-dump -d FILE...\n"
"\n"
"DESCRIPTION\n"
"    Parses each FILE (Part 10 with or without preamble and file meta,\n"
"    any uncompressed, deflated or encapsulated transfer syntax) and\n"
"    prints one line per element: (gggg,eeee) VR value  # length,\n"
"    keyword. Items are indented. Values over 64 KiB are streamed and\n"
"    not shown. A file that cannot be parsed gets one line on stderr\n"
"    naming the byte offset, the tag and what is wrong.\n"
"\n"
"    Text is shown in UTF-8, decoded per the Specific Character Set\n"
"    (0008,0005) of its dataset or item (ISO_IR 6/100/101/109/110/126/\n"
"    127/138/144/148/166/13/192, GB18030, GBK, and ISO 2022 with code\n"
"    extensions, JIS X 0208/0212, KS X 1001, GB 2312). Without\n"
"    (0008,0005), valid UTF-8 is shown as such. Bytes the character set\n"
"    cannot decode are shown as U+FFFD, with a warning saying how many;\n"
"    control characters are shown as \\xHH. Text is cut after 256 bytes\n"
"    and binary values after 16 values, marked \"...\", unless -a.\n"
"\n"
"OPTIONS\n"
"    -q, --quiet\n"
"        do not print warnings (odd lengths, undecodable text and the\n"
"        like)\n"
"    -a, --all\n"
"        show values whole (those under 64 KiB), as dcmdump +L does\n"
"    -d, --digest\n"
"        instead of the elements, print one line per file: the SHA-256 of\n"
"        its bytes, the canonical dataset digest and the pixel digest\n"
"        (they match across re-encodings of the same instance)\n"
"    --json\n"
"        instead, write the DICOM JSON model (PS3.18 F.2): for one FILE\n"
"        an object, for several an array of objects in the order given.\n"
"        Keys are the tags as 8 upper-case hex digits, each with \"vr\"\n"
"        and, unless the value is empty, one of:\n"
"          \"Value\"  text VRs: one string per backslash-separated value\n"
"                   (LT ST UT UR are never split), padding trimmed,\n"
"                   null for an empty one; PN: objects of Alphabetic,\n"
"                   Ideographic and Phonetic; DS IS US SS UL SL FL FD\n"
"                   SV UV: numbers (a DS or IS that is not a number is\n"
"                   written as a string, with a warning); AT: \"GGGGEEEE\";\n"
"                   SQ: one object per item\n"
"          \"InlineBinary\"  OB OD OF OL OV OW UN: base64 of the value,\n"
"                   little-endian; encapsulated pixel data: base64 of\n"
"                   its items (offset table and fragments, with their\n"
"                   item tags and lengths)\n"
"          \"BulkDataURI\"  with --bulk-uri, see below\n"
"        As dcm2json does, the file meta group (0002,xxxx) is left out\n"
"        (it is not part of the dataset; see --meta), and so are group\n"
"        lengths (gggg,0000), which describe the encoding, not the data.\n"
"        A PN's trailing empty components (\"Doe^John^^\") are dropped.\n"
"        In implicit VR, private tags have no VR: they are UN. Text is\n"
"        decoded to UTF-8 as in the text dump (see DESCRIPTION), per the\n"
"        (0008,0005) of its dataset or item; undecodable bytes become\n"
"        U+FFFD, with a warning; (0008,0005) itself is written as\n"
"        stored. FL or FD NaN and infinities,\n"
"        which JSON cannot write, become the strings \"NaN\",\n"
"        \"Infinity\", \"-Infinity\", with a warning. A file that\n"
"        cannot be opened is null; one that fails to parse keeps what\n"
"        was read before the error: the output is always valid JSON.\n"
"    --meta\n"
"        with --json, also write the file meta group (dcm2json +m)\n"
"    --bulk-uri\n"
"        with --json, binary values over 64 KiB and encapsulated pixel\n"
"        data over 64 KiB are written as \"BulkDataURI\":\n"
"        \"file:///ABS/PATH?offset=N&length=M\", the bytes as stored in the\n"
"        file (in its byte order); deflated files keep InlineBinary\n"
"    -h, --help\n"
"        this page\n"
"\n"
"EXIT STATUS\n"
"    0 when every file parsed, 1 when any did not, 2 on bad usage.\n", f);
}

enum { OPT_JSON = 256, OPT_META, OPT_BULK_URI };

static const struct option longopts[] = {
	{ "quiet",	no_argument, NULL, 'q' },
	{ "all",	no_argument, NULL, 'a' },
	{ "digest",	no_argument, NULL, 'd' },
	{ "help",	no_argument, NULL, 'h' },
	{ "json",	no_argument, NULL, OPT_JSON },
	{ "meta",	no_argument, NULL, OPT_META },
	{ "bulk-uri",	no_argument, NULL, OPT_BULK_URI },
	{ NULL,		0,	     NULL, 0 },
};

int
main(int argc, char **argv)
{
	struct dump_json_opts jo = { 0 };
	int ch, quiet = 0, digest = 0, json = 0, all = 0, rc = 0;

	while ((ch = getopt_long(argc, argv, "qadh", longopts, NULL)) != -1) {
		switch (ch) {
		case 'q': quiet = 1; break;
		case 'a': all = 1; break;
		case 'd': digest = 1; break;
		case 'h': usage(stdout); return 0;
		case OPT_JSON: json = 1; break;
		case OPT_META: jo.meta = 1; break;
		case OPT_BULK_URI: jo.bulk_uri = 1; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind == argc || (digest && json) || (all && (digest || json)) ||
	    (!json && (jo.meta || jo.bulk_uri))) {
		usage(stderr);
		return 2;
	}
	if (json) {
		jo.quiet = quiet;
		return dump_json_files(stdout, argv + optind, argc - optind,
		    &jo);
	}
	for (int i = optind; i < argc; i++)
		rc |= digest ? digest_file(argv[i]) :
		    dump_file(argv[i], quiet, all);
	return rc;
}
