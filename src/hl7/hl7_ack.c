/*
 * hl7_ack.c — see hl7.h. Original-mode acknowledgments (HL7 v2.5.1
 * 2.9.2): MSH addressed back to the sender, MSA, and for AE/AR an ERR
 * segment whose form follows the message's version (ERR-1 before v2.5,
 * ERR-2/3/4/8 from v2.5 on, when ERR-1 became backward-compatible only;
 * it is withdrawn in v2.7).
 *
 * Output goes through a writer that counts every byte but stores only
 * what fits, so the result has snprintf's contract.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/hl7/hl7.h"
#include "src/hl7/hl7_int.h"

/* Table 0357, message error condition codes (v2.5.1). */
static const struct {
	int		 code;
	const char	*text;
} errs[] = {
	{ 0,	"Message accepted" },
	{ 100,	"Segment sequence error" },
	{ 101,	"Required field missing" },
	{ 102,	"Data type error" },
	{ 103,	"Table value not found" },
	{ 104,	"Value too long" },
	{ 200,	"Unsupported message type" },
	{ 201,	"Unsupported event code" },
	{ 202,	"Unsupported processing id" },
	{ 203,	"Unsupported version id" },
	{ 204,	"Unknown key identifier" },
	{ 205,	"Duplicate key identifier" },
	{ 206,	"Application record locked" },
	{ 207,	"Application internal error" },
};

const char *
hl7_err_text(int code)
{
	size_t i;

	for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (errs[i].code == code)
			return errs[i].text;
	return NULL;
}

struct w {
	const struct hl7_msg	*m;
	char			*out;
	size_t			 cap, len;
};

static void
put(struct w *w, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++, w->len++)
		if (w->len + 1 < w->cap)
			w->out[w->len] = s[i];
}

static void
putc_(struct w *w, char c)
{
	put(w, &c, 1);
}

static void
puts_(struct w *w, const char *s)
{
	put(w, s, strlen(s));
}

/* raw: copy m's bytes at seg-field#rep.comp (0: all of it) unchanged. */
static void
raw(struct w *w, uint32_t field, uint32_t rep, uint32_t comp)
{
	struct hl7_path p = { "MSH", field, rep, comp, 0 };
	const char *s;
	size_t n;
	int lit;

	if (hl7__raw(w->m, &p, &s, &n, &lit))
		put(w, s, n);
}

/* utf8: the length of the valid UTF-8 sequence at s (n > 0 bytes left)
 * and its code point, or 0 when invalid. */
static size_t
utf8(const unsigned char *s, size_t n, unsigned *cp)
{
	size_t len, i;
	unsigned c = s[0], min;

	if (c < 0xc2 || c > 0xf4)
		return 0;
	len = c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
	min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
	if (n < len)
		return 0;
	c &= len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

/*
 * esc: write our UTF-8 string s escaped for m: its delimiters as \F\ \S\
 * \R\ \E\ \T\ (\P\), controls as \Xhh\, and other characters as m's
 * charset allows (see hl7_ack in hl7.h).
 */
static void
esc(struct w *w, const char *s)
{
	const struct hl7_msg *m = w->m;
	const unsigned char *p = (const unsigned char *)s;
	char buf[8];
	unsigned cp;
	size_t n = strlen(s), i, k;
	char c, e = 0;

	for (i = 0; i < n; i++) {
		c = (char)p[i];
		if (c == m->fs)
			e = 'F';
		else if (c == m->cs)
			e = 'S';
		else if (c == m->rs)
			e = 'R';
		else if (c == m->es)
			e = 'E';
		else if (c == m->ss)
			e = 'T';
		else if (m->tc != 0 && c == m->tc)
			e = 'P';
		else
			e = 0;
		if (e != 0) {
			buf[0] = m->es, buf[1] = e, buf[2] = m->es;
			put(w, buf, 3);
		} else if (p[i] < 0x20 || p[i] == 0x7f) {
			snprintf(buf, sizeof(buf), "%cX%02X%c", m->es, p[i],
			    m->es);
			puts_(w, buf);
		} else if (p[i] < 0x80)
			putc_(w, c);
		else if ((k = utf8(p + i, n - i, &cp)) == 0)
			putc_(w, '?');
		else {
			if (m->out_cs == HL7_OUT_UTF8)
				put(w, s + i, k);
			else if (m->out_cs == HL7_OUT_LATIN1 && cp <= 0xff)
				putc_(w, (char)cp);
			else
				putc_(w, '?');
			i += k - 1;
		}
	}
}

static void
num(struct w *w, uint32_t v)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%u", (unsigned)v);
	puts_(w, buf);
}

/* new_err: m's version is 2.5 or later (by MSH-12.1, "2.5.1"). */
static int
new_err(const struct hl7_msg *m)
{
	const char *v = m->hdr[HL7_H_VERSION];
	unsigned long major, minor;
	char *end;

	if (!(v[0] >= '0' && v[0] <= '9'))
		return 0;
	major = strtoul(v, &end, 10);
	if (*end != '.' || !(end[1] >= '0' && end[1] <= '9'))
		return 0;
	minor = strtoul(end + 1, NULL, 10);
	return major > 2 || (major == 2 && minor >= 5);
}

/*
 * location: the error's SEG^seq^field. Before v2.5 (ERR-1, ELD) all three
 * components are written, empty when unknown, so that the code is the
 * fourth; from v2.5 (ERR-2, ERL) nothing without a segment ID, and no
 * trailing empty components.
 */
static void
location(struct w *w, const struct hl7_err *e, int v25)
{
	int seg = strlen(e->seg) == 3;

	if (seg)
		esc(w, e->seg);
	if (v25 && (!seg || e->seq == 0))
		return;
	putc_(w, w->m->cs);
	if (e->seq != 0)
		num(w, e->seq);
	if (v25 && e->field == 0)
		return;
	putc_(w, w->m->cs);
	if (e->field != 0)
		num(w, e->field);
}

/* err_segment: ERR for an AE or AR (see hl7_ack in hl7.h). */
static void
err_segment(struct w *w, const struct hl7_err *e, int v25)
{
	const struct hl7_msg *m = w->m;
	char sep = v25 ? m->cs : m->ss;	/* inside ERR-3, inside ERR-1.4 */
	int i;

	puts_(w, "ERR");
	putc_(w, m->fs);
	if (v25)
		putc_(w, m->fs);	/* ERR-1 empty */
	location(w, e, v25);
	putc_(w, v25 ? m->fs : m->cs);
	num(w, (uint32_t)e->code);
	putc_(w, sep);
	esc(w, hl7_err_text(e->code));
	putc_(w, sep);
	puts_(w, "HL70357");
	if (v25) {
		putc_(w, m->fs);
		putc_(w, 'E');		/* ERR-4 severity */
		if (e->text[0] != '\0') {
			for (i = 5; i <= 8; i++)
				putc_(w, m->fs);
			esc(w, e->text);	/* ERR-8 user message */
		}
	}
	putc_(w, '\r');
}

size_t
hl7_ack(const struct hl7_msg *m, const char *code, const char *control_id,
    const char *timestamp, const struct hl7_err *e, char *out, size_t cap)
{
	static const struct hl7_err internal = { .code = HL7_E_INTERNAL };
	struct w w = { m, out, cap, 0 };
	int aa, v25 = new_err(m);
	uint32_t i;

	if (cap > 0)
		out[0] = '\0';
	if (code == NULL || control_id == NULL || timestamp == NULL ||
	    control_id[0] == '\0' || timestamp[0] == '\0' ||
	    (strcmp(code, "AA") != 0 && strcmp(code, "AE") != 0 &&
	    strcmp(code, "AR") != 0))
		return 0;
	aa = code[1] == 'A';
	if (!aa && e == NULL)
		e = &internal;
	if (!aa && hl7_err_text(e->code) == NULL)
		return 0;
	if (!aa && memchr(e->text, '\0', sizeof(e->text)) == NULL)
		return 0;

	/* MSH: their receiver is our sender and the other way round */
	puts_(&w, "MSH");
	raw(&w, 1, 0, 0);
	raw(&w, 2, 0, 0);
	putc_(&w, m->fs), raw(&w, 5, 0, 0);
	putc_(&w, m->fs), raw(&w, 6, 0, 0);
	putc_(&w, m->fs), raw(&w, 3, 0, 0);
	putc_(&w, m->fs), raw(&w, 4, 0, 0);
	putc_(&w, m->fs), esc(&w, timestamp);
	putc_(&w, m->fs);			/* MSH-8 security */
	putc_(&w, m->fs), puts_(&w, "ACK");
	if (m->hdr[HL7_H_TRIGGER][0] != '\0') {
		putc_(&w, m->cs), raw(&w, 9, 1, 2);
		putc_(&w, m->cs), puts_(&w, "ACK");
	}
	putc_(&w, m->fs), esc(&w, control_id);
	putc_(&w, m->fs), raw(&w, 11, 0, 0);
	putc_(&w, m->fs), raw(&w, 12, 0, 0);
	if (hl7_charset(m)[0] != '\0') {
		for (i = 13; i <= 18; i++)
			putc_(&w, m->fs);
		raw(&w, 18, 0, 0);
	}
	putc_(&w, '\r');

	/* MSA: code, their control id, the text before v2.5 */
	puts_(&w, "MSA");
	putc_(&w, m->fs), puts_(&w, code);
	putc_(&w, m->fs), raw(&w, 10, 0, 0);
	if (!aa && !v25 && e->text[0] != '\0')
		putc_(&w, m->fs), esc(&w, e->text);
	putc_(&w, '\r');
	if (!aa)
		err_segment(&w, e, v25);
	if (cap > 0)
		out[w.len < cap ? w.len : cap - 1] = '\0';
	return w.len;
}
