/*
 * dimse_ident.c — C-FIND/C-MOVE/C-GET identifiers: build, encode, decode.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/dimse_ident.h"
#include "dimse/ds_dict.h"
#include "dimse/ds_write.h"

#define TAGA(t)	(unsigned)((t) >> 16), (unsigned)((t) & 0xffff)

void
dimse_ident_init(struct dimse_ident *id)
{
	id->n = 0;
	id->skipped = 0;
}

static int
binary_int(enum ds_vr vr)
{
	return vr == DS_VR_US || vr == DS_VR_UL || vr == DS_VR_SS ||
	    vr == DS_VR_SL;
}

static unsigned
int_size(enum ds_vr vr)
{
	return vr == DS_VR_US || vr == DS_VR_SS ? 2 : 4;
}

/* int_ok: value is a backslash-separated list of numbers in vr's range. */
static int
int_ok(enum ds_vr vr, const char *v)
{
	long long lo = vr == DS_VR_US || vr == DS_VR_UL ? 0 :
	    vr == DS_VR_SS ? -32768 : -2147483648LL;
	long long hi = vr == DS_VR_US ? 65535 : vr == DS_VR_SS ? 32767 :
	    vr == DS_VR_UL ? 4294967295LL : 2147483647LL;

	size_t count = 0;

	while (*v != '\0') {
		char *end;
		long long x;

		errno = 0;
		x = strtoll(v, &end, 10);
		if (end == v || errno != 0 || x < lo || x > hi ||
		    (*end != '\0' && *end != '\\'))
			return 0;
		v = *end == '\\' ? end + 1 : end;
		/* the binary value must fit too */
		if (++count * int_size(vr) > DIMSE_IDENT_VALUE_MAX)
			return 0;
	}
	return 1;
}

static int
settable(enum ds_vr vr)
{
	return (ds_vr_text(vr) && vr != DS_VR_AT) || binary_int(vr) ||
	    vr == DS_VR_SQ;
}

int
dimse_ident_set(struct dimse_ident *id, uint32_t tag, enum ds_vr vr,
    const char *value, char *err, size_t cap)
{
	const struct ds_dict_entry *d;
	struct dimse_ident_elem *e;
	size_t len = value != NULL ? strlen(value) : 0;
	unsigned i;

	if (vr == DS_VR_NONE) {
		if ((d = ds_dict_by_tag(tag)) == NULL || d->vr[0] == DS_VR_NONE) {
			snprintf(err, cap, "(%04x,%04x) is not in the "
			    "dictionary: give its VR as (gggg,eeee):VR",
			    TAGA(tag));
			return -1;
		}
		vr = d->vr[0];
	}
	if (!settable(vr) || (tag >> 16) == 0x0000 || (tag >> 16) == 0x0002 ||
	    (tag >> 16) == 0xfffe) {
		snprintf(err, cap, "(%04x,%04x): a query key cannot be %s%s",
		    TAGA(tag), (tag >> 16) <= 2 || (tag >> 16) == 0xfffe ?
		    "in group " : "a ", (tag >> 16) <= 2 || (tag >> 16) ==
		    0xfffe ? "0000/0002/FFFE" : ds_vr_name(vr));
		return -1;
	}
	if (len > DIMSE_IDENT_VALUE_MAX || (vr == DS_VR_SQ && len > 0)) {
		snprintf(err, cap, "(%04x,%04x): %s", TAGA(tag), vr ==
		    DS_VR_SQ ? "a sequence key is sent empty (universal)" :
		    "value too long");
		return -1;
	}
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)value[k] < 0x20 && (value[k] != 0x1b ||
		    !ds_vr_text(vr))) {
			snprintf(err, cap, "(%04x,%04x): control character "
			    "0x%02x at %zu", TAGA(tag), (unsigned char)value[k],
			    k);
			return -1;
		}
	if (binary_int(vr) && !int_ok(vr, value != NULL ? value : "")) {
		snprintf(err, cap, "(%04x,%04x): \"%.40s\" is not a list of at "
		    "most %u %s numbers", TAGA(tag), value,
		    DIMSE_IDENT_VALUE_MAX / int_size(vr), ds_vr_name(vr));
		return -1;
	}
	for (i = 0; i < id->n && id->e[i].tag < tag; i++)
		;
	if (i == id->n || id->e[i].tag != tag) {
		if (id->n == DIMSE_IDENT_MAX) {
			snprintf(err, cap, "more than %d keys", DIMSE_IDENT_MAX);
			return -1;
		}
		memmove(&id->e[i + 1], &id->e[i], (id->n - i) * sizeof(id->e[0]));
		id->n++;
	}
	e = &id->e[i];
	e->tag = tag;
	e->vr = vr;
	e->len = (uint16_t)len;
	memcpy(e->value, value != NULL ? value : "", len);
	e->value[len] = '\0';
	return 0;
}

const char *
dimse_ident_get(const struct dimse_ident *id, uint32_t tag)
{
	for (unsigned i = 0; i < id->n; i++)
		if (id->e[i].tag == tag)
			return id->e[i].value;
	return NULL;
}

void
dimse_ident_del(struct dimse_ident *id, uint32_t tag)
{
	for (unsigned i = 0; i < id->n; i++)
		if (id->e[i].tag == tag) {
			memmove(&id->e[i], &id->e[i + 1],
			    (id->n - i - 1) * sizeof(id->e[0]));
			id->n--;
			return;
		}
}

static int
hex4(const char *s, unsigned *v)
{
	char *end;
	unsigned long x;

	for (int i = 0; i < 4; i++)
		if (!strchr("0123456789abcdefABCDEF", s[i]) || s[i] == '\0')
			return -1;
	x = strtoul(s, &end, 16);
	(void)end;
	*v = (unsigned)x;
	return 0;
}

int
dimse_ident_arg(struct dimse_ident *id, const char *arg, char *err,
    size_t cap)
{
	const char *eq = strchr(arg, '=');
	size_t klen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	char key[80], g[5], el[5];
	enum ds_vr vr = DS_VR_NONE;
	unsigned gv, ev;
	uint32_t tag;
	char *colon;
	const char *k;

	if (klen == 0 || klen >= sizeof(key)) {
		snprintf(err, cap, "\"%s\": expected KEY or KEY=VALUE", arg);
		return -1;
	}
	memcpy(key, arg, klen);
	key[klen] = '\0';
	if ((colon = strchr(key, ':')) != NULL) {
		*colon = '\0';
		if (strlen(colon + 1) != 2 || (vr = ds_vr_from_chars(
		    (uint8_t)colon[1], (uint8_t)colon[2])) == DS_VR_NONE) {
			snprintf(err, cap, "\"%s\": unknown VR \"%s\"", arg,
			    colon + 1);
			return -1;
		}
	}
	k = key[0] == '(' ? key + 1 : key;
	if (strlen(k) >= 9 && k[4] == ',' && (key[0] != '(' ? k[9] == '\0' :
	    k[9] == ')' && k[10] == '\0')) {
		memcpy(g, k, 4);
		g[4] = '\0';
		memcpy(el, k + 5, 4);
		el[4] = '\0';
		if (hex4(g, &gv) < 0 || hex4(el, &ev) < 0) {
			snprintf(err, cap, "\"%s\": a tag is gggg,eeee in hex",
			    arg);
			return -1;
		}
		tag = DS_TAG(gv, ev);
	} else {
		const struct ds_dict_entry *d = ds_dict_by_keyword(key);

		if (d == NULL || d->mask != 0xffffffffu) {
			snprintf(err, cap, "\"%s\": no attribute has the "
			    "keyword \"%s\" (give a tag as gggg,eeee)", arg,
			    key);
			return -1;
		}
		tag = d->tag;
	}
	if (dimse_ident_set(id, tag, vr, eq != NULL ? eq + 1 : NULL, err,
	    cap) < 0) {
		/* say which argument */
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, cap, "%s: %s", key, why);
		return -1;
	}
	return 0;
}

size_t
dimse_ident_encode(const struct dimse_ident *id, const struct ds_ts *ts,
    uint8_t *buf, size_t cap)
{
	size_t total = 0;

	for (unsigned i = 0; i < id->n; i++) {
		const struct dimse_ident_elem *e = &id->e[i];
		uint8_t h[12], v[DIMSE_IDENT_VALUE_MAX + 2];
		size_t hn, vn = 0;

		if (binary_int(e->vr)) {
			const char *s = e->value;

			while (*s != '\0') {
				char *end;
				long long x = strtoll(s, &end, 10);

				if (int_size(e->vr) == 2)
					ds_put16(v + vn, (unsigned)x & 0xffff,
					    ts->big_endian);
				else
					ds_put32(v + vn, (uint32_t)x,
					    ts->big_endian);
				vn += int_size(e->vr);
				s = *end == '\\' ? end + 1 : end;
			}
		} else {
			memcpy(v, e->value, e->len);
			vn = e->len;
			if (vn & 1)
				v[vn++] = ds_vr_pad(e->vr);
		}
		hn = ds_encode_header(h, e->tag, e->vr, (uint32_t)vn,
		    ts->explicit_vr, ts->big_endian);
		if (buf != NULL && total + hn + vn <= cap) {
			memcpy(buf + total, h, hn);
			memcpy(buf + total + hn, v, vn);
		}
		total += hn + vn;
	}
	return total;
}

/* ---- decoding ---- */

static int
on_element(void *arg, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	struct dimse_ident *id = arg;
	struct dimse_ident_elem *x;
	size_t len = 0;

	if (e->depth != 0)
		return 0;
	if (e->tag == DS_TAG_ITEM || (id->n > 0 &&
	    e->tag <= id->e[id->n - 1].tag)) {
		/* a stray item, or a tag out of order or repeated: the
		 * identifier stays sorted and unique */
		id->skipped++;
		return 0;
	}
	if (id->n == DIMSE_IDENT_MAX || !(ds_vr_text(e->vr) ||
	    binary_int(e->vr)) || e->vr == DS_VR_AT || (ds_vr_text(e->vr) &&
	    n > DIMSE_IDENT_VALUE_MAX)) {
		id->skipped++;
		return 0;
	}
	x = &id->e[id->n];
	if (binary_int(e->vr)) {
		unsigned u = int_size(e->vr);

		for (size_t k = 0; k + u <= n; k += u) {
			long long val;
			int w;

			if (u == 2) {
				unsigned r = e->big_endian ? (unsigned)v[k] <<
				    8 | v[k + 1] : (unsigned)v[k + 1] << 8 |
				    v[k];

				val = e->vr == DS_VR_SS ? (int16_t)r : (long)r;
			} else {
				uint32_t r = e->big_endian ?
				    (uint32_t)v[k] << 24 | (uint32_t)v[k + 1] <<
				    16 | (uint32_t)v[k + 2] << 8 | v[k + 3] :
				    (uint32_t)v[k + 3] << 24 |
				    (uint32_t)v[k + 2] << 16 |
				    (uint32_t)v[k + 1] << 8 | v[k];

				val = e->vr == DS_VR_SL ? (int32_t)r :
				    (long long)r;
			}
			w = snprintf(x->value + len, sizeof(x->value) - len,
			    "%s%lld", k ? "\\" : "", val);
			if (w < 0 || (size_t)w >= sizeof(x->value) - len) {
				id->skipped++;
				return 0;
			}
			len += (size_t)w;
		}
	} else {
		memcpy(x->value, v, n);
		len = n;
		/* strip the padding: trailing NUL for UI, spaces for
		 * the rest (and a stray NUL some peers send) */
		while (len > 0 && (x->value[len - 1] == '\0' ||
		    (x->value[len - 1] == ' ' && e->vr != DS_VR_UI)))
			len--;
	}
	x->value[len] = '\0';
	x->tag = e->tag;
	x->vr = e->vr;
	x->len = (uint16_t)len;
	id->n++;
	return 0;
}

static int
on_value_begin(void *arg, const struct ds_elem *e)
{
	struct dimse_ident *id = arg;

	if (e->depth == 0)
		id->skipped++;
	return 0;
}

static int
on_seq_begin(void *arg, const struct ds_elem *e)
{
	struct dimse_ident *id = arg;

	if (e->depth == 0)
		id->skipped++;
	return 0;
}

int
dimse_ident_decode(const uint8_t *b, size_t n, const struct ds_ts *ts,
    struct dimse_ident *id, struct ds_error *err)
{
	static const struct ds_callbacks cb = {
		.element = on_element,
		.value_begin = on_value_begin,
		.seq_begin = on_seq_begin,
	};
	struct ds_limits lim;
	struct ds_parser *p;
	int rc = 0;

	dimse_ident_init(id);
	ds_limits_default(&lim);
	lim.chunk_over = DIMSE_IDENT_VALUE_MAX;	/* longer: skipped */
	p = ds_parser_new_dataset(ts, &lim, &cb, id);
	if (ds_parse_feed(p, b, n) == DS_ERROR ||
	    ds_parse_finish(p) == DS_ERROR) {
		if (err != NULL)
			*err = *ds_parse_error(p);
		rc = -1;
	}
	ds_parser_free(p);
	return rc;
}
