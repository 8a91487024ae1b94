/*
 * ds_edit.c — see ds_edit.h.
 *
 * The editor owns a parser and keeps the raw input it has not yet passed
 * on. Every callback names an element's offset: the bytes before it are
 * copied, then the element's own bytes are either copied (a region that
 * may run past this feed, for streamed values) or skipped and replaced.
 * A stack of frames mirrors the parser's (datasets and sequences), each
 * with the set of edits that reach into it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dimse/ds_edit.h"

#define MAX_EDITS	64
#define MAX_CREATORS	64

struct edit {
	struct ds_path	 path;
	char		 creator[DS_PATH_MAX][65];
	int		 remove;
	enum ds_vr	 vr;
	uint8_t		*value;
	size_t		 len;
	int		 done;
};

struct creator {
	uint16_t	 group;
	uint8_t		 block;
	char		 name[65];
};

struct frame {
	int		 seq;		/* a sequence, else a dataset */
	uint64_t	 mask;		/* edits reaching into it */
	unsigned	 depth;		/* path steps consumed above it */
	unsigned	 items;		/* seq: items seen */
	int		 rewritten;	/* defined length made undefined */
	int		 explicit_vr, be;
	struct creator	 cr[MAX_CREATORS];
	unsigned	 ncr;
	uint16_t	 passed_group;	/* creators of groups below are final */
	uint32_t	 last;		/* the last element's tag, */
	int		 seen;		/* once there was one */
};

struct ds_editor {
	struct ds_parser	*p;
	ds_sink_fn		*sink;
	void			*arg;
	struct edit		 ed[MAX_EDITS];
	unsigned		 ned, applied;
	struct frame		*fr;
	unsigned		 nfr, capfr;
	uint8_t			*hold;		/* raw input from emitted on */
	size_t			 hold_len, hold_cap;
	uint64_t		 emitted;	/* stream offset of hold[0] */
	uint64_t		 reg_end;	/* current region's end */
	int			 reg_skip;
	int			 failed;
	char			 err[256];
};

static const struct ds_callbacks edit_cb;

static int
efail(struct ds_editor *ed, const char *msg)
{
	if (!ed->failed)
		snprintf(ed->err, sizeof(ed->err), "%s", msg);
	ed->failed = 1;
	return -1;
}

static int
emit(struct ds_editor *ed, const void *p, size_t n)
{
	if (n == 0 || ed->failed)
		return ed->failed ? -1 : 0;
	return ed->sink(ed->arg, p, n) != 0 ? efail(ed, "the sink refused "
	    "the data") : 0;
}

/* Pass the raw bytes [emitted, x) on, copying or skipping per region. */
static int
advance(struct ds_editor *ed, uint64_t x)
{
	while (ed->emitted < x) {
		uint64_t stop = x;
		int skip = 0;
		size_t n;

		if (ed->emitted < ed->reg_end) {
			stop = ed->reg_end < x ? ed->reg_end : x;
			skip = ed->reg_skip;
		}
		n = (size_t)(stop - ed->emitted);
		if (n > ed->hold_len)
			return efail(ed, "internal: offset past the input held");
		if (!skip && emit(ed, ed->hold, n) < 0)
			return -1;
		memmove(ed->hold, ed->hold + n, ed->hold_len - n);
		ed->hold_len -= n;
		ed->emitted += n;
	}
	return 0;
}

static void
region(struct ds_editor *ed, uint64_t end, int skip)
{
	ed->reg_end = end;
	ed->reg_skip = skip;
}

static struct frame *
top(struct ds_editor *ed)
{
	return &ed->fr[ed->nfr - 1];
}

static struct frame *
push(struct ds_editor *ed, int seq, uint64_t mask, unsigned depth)
{
	struct frame *f, *t = ed->nfr ? top(ed) : NULL;

	if (ed->nfr == ed->capfr) {
		unsigned cap = ed->capfr ? ed->capfr * 2 : 8;
		struct frame *n = realloc(ed->fr, cap * sizeof(*n));

		if (n == NULL)
			abort();
		ed->fr = n;
		ed->capfr = cap;
		t = ed->nfr ? top(ed) : NULL;
	}
	f = &ed->fr[ed->nfr++];
	memset(f, 0, sizeof(*f));
	f->seq = seq;
	f->mask = mask;
	f->depth = depth;
	if (t != NULL) {
		f->explicit_vr = t->explicit_vr;
		f->be = t->be;
	}
	return f;
}

/* ---- private creators ---- */

static const char *
creator_of(const struct frame *f, uint16_t group, uint8_t block)
{
	for (unsigned i = 0; i < f->ncr; i++)
		if (f->cr[i].group == group && f->cr[i].block == block)
			return f->cr[i].name;
	return NULL;
}

static void
add_creator(struct frame *f, uint16_t group, uint8_t block, const uint8_t *v,
    size_t n)
{
	struct creator *c;

	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\0'))
		n--;
	if (f->ncr == MAX_CREATORS || n > 64)
		return;
	c = &f->cr[f->ncr++];
	c->group = group;
	c->block = block;
	memcpy(c->name, v, n);
	c->name[n] = '\0';
}

/* Does step s (with its creator) name the element tag t in frame f? */
static int
step_match(const struct frame *f, const struct ds_path_step *s,
    const char *creator, uint32_t t)
{
	const char *c;

	if (creator[0] == '\0')
		return s->tag == t;
	if ((t >> 16) != (s->tag >> 16) || (t & 0xff) != (s->tag & 0xff) ||
	    ((t >> 8) & 0xff) < 0x10)
		return 0;
	c = creator_of(f, (uint16_t)(t >> 16), (uint8_t)(t >> 8));
	return c != NULL && strcmp(c, creator) == 0;
}

/* ---- writing new bytes ---- */

static int
header(struct ds_editor *ed, const struct frame *f, uint32_t tag,
    enum ds_vr vr, uint32_t len)
{
	uint8_t b[12];

	return emit(ed, b, ds_encode_header(b, tag, vr, len, f->explicit_vr,
	    f->be));
}

static int
element(struct ds_editor *ed, const struct frame *f, uint32_t tag,
    enum ds_vr vr, const void *v, size_t len)
{
	if (header(ed, f, tag, vr, (uint32_t)len) < 0)
		return -1;
	return emit(ed, v, len);
}

/* ---- inserting ---- */

static int
is_leaf(const struct edit *e, const struct frame *f)
{
	return e->path.n == f->depth + 1;
}

/* The tag a set-edit puts in frame f, 0 when its creator is unknown. */
static uint32_t
target(const struct frame *f, const struct edit *e)
{
	const struct ds_path_step *s = &e->path.step[f->depth];
	const char *cr = e->creator[f->depth];
	uint16_t g = (uint16_t)(s->tag >> 16);

	if (cr[0] == '\0')
		return s->tag;
	for (unsigned i = 0; i < f->ncr; i++)
		if (f->cr[i].group == g && strcmp(f->cr[i].name, cr) == 0)
			return (uint32_t)g << 16 | (uint32_t)f->cr[i].block << 8 |
			    (s->tag & 0xff);
	return 0;
}

/* A private creator for e in the first free block after the group's
 * others (so the element order stays ascending). */
static int
new_creator(struct ds_editor *ed, struct frame *f, struct edit *e)
{
	const char *cr = e->creator[f->depth];
	uint16_t g = (uint16_t)(e->path.step[f->depth].tag >> 16);
	unsigned block = 0x10;
	uint8_t v[66];
	size_t n = strlen(cr);

	for (unsigned i = 0; i < f->ncr; i++)
		if (f->cr[i].group == g && f->cr[i].block >= block)
			block = f->cr[i].block + 1u;
	if (block > 0xff)
		return efail(ed, "no free private block for a new creator");
	memcpy(v, cr, n);
	if (n & 1)
		v[n++] = ' ';
	add_creator(f, g, (uint8_t)block, v, n);
	return element(ed, f, (uint32_t)g << 16 | block, DS_VR_LO, v, n);
}

/* Write the set-edits of frame f whose element sorts before next. */
static int
insert_before(struct ds_editor *ed, struct frame *f, uint32_t next)
{
	if (next != UINT32_MAX && f->mask != 0) {
		/* edits go by the order of tags: out of it, or twice, an
		 * element named by one would be left in place beside the
		 * new value (or inserted before a later copy of it) */
		if (f->seen && next <= f->last) {
			char m[160];

			snprintf(m, sizeof(m), "element (%04X,%04X) %s: the "
			    "dataset is not in ascending tag order, and an "
			    "edit could leave the old value in place",
			    (unsigned)(next >> 16), (unsigned)(next & 0xffff),
			    next == f->last ? "appears twice" : "comes after "
			    "a higher tag");
			return efail(ed, m);
		}
		f->last = next;
		f->seen = 1;
	}
	for (;;) {
		struct edit *best = NULL;
		uint32_t bt = 0;

		for (unsigned i = 0; i < ed->ned; i++) {
			struct edit *e = &ed->ed[i];
			uint32_t t;

			if (!(f->mask >> i & 1) || e->done || e->remove ||
			    !is_leaf(e, f))
				continue;
			t = target(f, e);
			if (t == 0 && next > ((e->path.step[f->depth].tag &
			    0xffff0000u) | 0xff)) {
				if (new_creator(ed, f, e) < 0)
					return -1;
				t = target(f, e);
			}
			if (t != 0 && t < next && (best == NULL || t < bt)) {
				best = e;
				bt = t;
			}
		}
		if (best == NULL)
			return 0;
		if (element(ed, f, bt, best->vr, best->value, best->len) < 0)
			return -1;
		best->done = 1;
		ed->applied++;
	}
}

/* ---- callbacks ---- */

static int
skipping(const struct ds_editor *ed)
{
	for (unsigned i = 0; i < ed->nfr; i++)
		if (ed->fr[i].seq && ed->fr[i].rewritten < 0)
			return 1;
	return 0;
}

/* The leaf edit naming element tag in frame f, or NULL. */
static struct edit *
leaf_for(struct ds_editor *ed, const struct frame *f, uint32_t tag)
{
	for (unsigned i = 0; i < ed->ned; i++) {
		struct edit *e = &ed->ed[i];

		if ((f->mask >> i & 1) && !e->done && is_leaf(e, f) &&
		    step_match(f, &e->path.step[f->depth],
		    e->creator[f->depth], tag))
			return e;
	}
	return NULL;
}

/*
 * Before any data element of dataset frame f at e: copy what precedes it,
 * insert what sorts before it, and apply a leaf edit that names it.
 * Returns 1 when the element was replaced or removed (its bytes are
 * skipped up to end), 0 when it is to be kept.
 */
static int
before_element(struct ds_editor *ed, const struct ds_elem *e, uint64_t end)
{
	struct frame *f = top(ed);
	struct edit *le;

	if (advance(ed, e->offset) < 0 || insert_before(ed, f, e->tag) < 0)
		return -1;
	if ((le = leaf_for(ed, f, e->tag)) == NULL)
		return 0;
	le->done = 1;
	ed->applied++;
	region(ed, end, 1);
	if (!le->remove && element(ed, f, e->tag, le->vr, le->value,
	    le->len) < 0)
		return -1;
	return 1;
}

static void
note_creator(struct ds_editor *ed, const struct ds_elem *e,
    const uint8_t *v, size_t n)
{
	uint16_t g = (uint16_t)(e->tag >> 16), el = (uint16_t)e->tag;

	if ((g & 1) && el >= 0x10 && el <= 0xff)
		add_creator(top(ed), g, (uint8_t)el, v, n);
}

/* A value element (whole, or the start of a streamed one): copy it, or
 * let an edit replace or remove it. v is NULL for a streamed value. */
static int
value_elem(struct ds_editor *ed, const struct ds_elem *e, const uint8_t *v,
    size_t n)
{
	uint64_t end = e->offset + e->hdr_len + e->length;
	int r = 0;

	if (skipping(ed))
		return 0;
	if (e->meta || e->fragment || top(ed)->seq) {
		if (advance(ed, e->offset) < 0)
			return -1;
	} else {
		if (v != NULL)
			note_creator(ed, e, v, n);
		if ((r = before_element(ed, e, end)) < 0)
			return -1;
	}
	if (r == 0)
		region(ed, end, 0);
	return 0;
}

static int
c_element(void *arg, const struct ds_elem *e, const uint8_t *v, size_t n)
{
	return value_elem(arg, e, v, n);
}

static int
c_value_begin(void *arg, const struct ds_elem *e)
{
	return value_elem(arg, e, NULL, 0);
}

static int
c_seq_begin(void *arg, const struct ds_elem *e)
{
	struct ds_editor *ed = arg;
	struct frame *f = top(ed), *s;
	uint64_t mask = 0;
	struct edit *le;
	unsigned d = f->depth;

	if (skipping(ed)) {
		push(ed, 1, 0, 0);
		return 0;
	}
	if (advance(ed, e->offset) < 0 || insert_before(ed, f, e->tag) < 0)
		return -1;
	if ((le = leaf_for(ed, f, e->tag)) != NULL) {
		le->done = 1;
		ed->applied++;
		if (!le->remove && element(ed, f, e->tag, le->vr, le->value,
		    le->len) < 0)
			return -1;
		s = push(ed, 1, 0, d);
		s->rewritten = -1;	/* skip it all, up to its end */
		return 0;
	}
	for (unsigned i = 0; i < ed->ned; i++)
		if ((f->mask >> i & 1) && ed->ed[i].path.n > d + 1 &&
		    step_match(f, &ed->ed[i].path.step[d], ed->ed[i].creator[d],
		    e->tag))
			mask |= (uint64_t)1 << i;
	s = push(ed, 1, mask, d);
	if (e->vr == DS_VR_UN && !e->encapsulated) {
		s->explicit_vr = 0;	/* PS3.5 6.2.2: implicit LE inside */
		s->be = 0;
	}
	if (mask != 0 && e->length != DS_UNDEFINED_LENGTH) {
		s->rewritten = 1;
		region(ed, e->offset + e->hdr_len, 1);
		return header(ed, f, e->tag, DS_VR_SQ, DS_UNDEFINED_LENGTH);
	}
	region(ed, e->offset + e->hdr_len, 0);
	return 0;
}

static int
c_item_begin(void *arg, const struct ds_elem *e)
{
	struct ds_editor *ed = arg;
	struct frame *s = top(ed), *f;
	unsigned idx = s->items++, d = s->depth;
	uint64_t mask = 0;

	if (skipping(ed)) {
		push(ed, 0, 0, 0);
		return 0;
	}
	for (unsigned i = 0; i < ed->ned; i++)
		if ((s->mask >> i & 1) && ed->ed[i].path.step[d].item ==
		    (int)idx)
			mask |= (uint64_t)1 << i;
	f = push(ed, 0, mask, d + 1);
	if (advance(ed, e->offset) < 0)
		return -1;
	if (mask != 0 && e->length != DS_UNDEFINED_LENGTH) {
		f->rewritten = 1;
		region(ed, e->offset + 8, 1);
		return header(ed, f, DS_TAG_ITEM, DS_VR_NONE,
		    DS_UNDEFINED_LENGTH);
	}
	region(ed, e->offset + 8, 0);
	return 0;
}

/* A frame closes: finish its content, add delimiters it now needs. */
static int
close_frame(void *arg, const struct ds_elem *e)
{
	struct ds_editor *ed = arg;
	struct frame *f = top(ed);
	uint64_t pos = ds_parse_position(ed->p);
	int undefined = e->length == DS_UNDEFINED_LENGTH;
	int r = 0;

	if (f->seq && f->rewritten < 0) {	/* removed sequence */
		ed->nfr--;
		if (skipping(ed))
			return 0;
		region(ed, pos, 1);
		return advance(ed, pos);
	}
	if (skipping(ed)) {
		ed->nfr--;
		return 0;
	}
	if (advance(ed, undefined ? pos - 8 : pos) < 0)
		return -1;
	if (!f->seq)
		r = insert_before(ed, f, UINT32_MAX);
	if (r == 0 && f->rewritten > 0)
		r = header(ed, f, f->seq ? DS_TAG_SEQ_END : DS_TAG_ITEM_END,
		    DS_VR_NONE, 0);
	ed->nfr--;
	return r;
}

static int
c_meta(void *arg, const struct ds_meta *m)
{
	struct ds_editor *ed = arg;

	if (m->ts->deflated)
		return efail(ed, "edit mode cannot edit a deflated dataset in "
		    "place; re-encode it first");
	ed->fr[0].explicit_vr = m->ts->explicit_vr;
	ed->fr[0].be = m->ts->big_endian;
	return 0;
}

static const struct ds_callbacks edit_cb = {
	.meta = c_meta,
	.element = c_element,
	.value_begin = c_value_begin,
	.seq_begin = c_seq_begin,
	.item_begin = c_item_begin,
	.item_end = close_frame,
	.seq_end = close_frame,
};

/* ---- API ---- */

struct ds_editor *
ds_editor_new(const struct ds_ts *ts, const struct ds_limits *lim,
    ds_sink_fn *sink, void *arg)
{
	struct ds_editor *ed = calloc(1, sizeof(*ed));
	struct frame *root;

	if (ed == NULL)
		abort();
	ed->sink = sink;
	ed->arg = arg;
	root = push(ed, 0, 0, 0);
	if (ts != NULL) {
		root->explicit_vr = ts->explicit_vr;
		root->be = ts->big_endian;
		if (ts->deflated)
			efail(ed, "edit mode cannot edit a deflated dataset in "
			    "place; re-encode it first");
	}
	ed->p = ts ? ds_parser_new_dataset(ts, lim, &edit_cb, ed) :
	    ds_parser_new_file(lim, &edit_cb, ed);
	return ed;
}

void
ds_editor_free_(struct ds_editor *ed)
{
	if (ed == NULL)
		return;
	for (unsigned i = 0; i < ed->ned; i++)
		free(ed->ed[i].value);
	ds_parser_free(ed->p);
	free(ed->fr);
	free(ed->hold);
	free(ed);
}

static int
add_edit(struct ds_editor *ed, const struct ds_path *path, int remove,
    enum ds_vr vr, const void *value, size_t len)
{
	struct edit *e;

	if (ed->ned == MAX_EDITS)
		return efail(ed, "more than 64 edits on one dataset");
	if (path->n == 0 || path->n > DS_PATH_MAX)
		return efail(ed, "an edit path needs 1 to 8 steps");
	if ((path->step[0].tag >> 16) == 0x0002)
		return efail(ed, "the file meta group (0002) is not edited "
		    "here; it is written with the file");
	if (!remove && (vr == DS_VR_SQ || vr == DS_VR_NONE || (len & 1) ||
	    len > 0xfffffffeu || (!ds_vr_long(vr) && len > 0xffff)))
		return efail(ed, "a set needs a non-SQ VR and an even value "
		    "length that fits the VR");
	e = &ed->ed[ed->ned];
	memset(e, 0, sizeof(*e));
	e->path = *path;
	for (unsigned i = 0; i < path->n; i++) {
		const char *c = path->step[i].creator;

		if (c != NULL && (strlen(c) > 64 || !(path->step[i].tag >>
		    16 & 1)))
			return efail(ed, "a private creator must be at most 64 "
			    "characters, in an odd group");
		snprintf(e->creator[i], sizeof(e->creator[i]), "%s",
		    c ? c : "");
		e->path.step[i].creator = NULL;	/* not kept: copied above */
	}
	e->remove = remove;
	e->vr = vr;
	if (!remove) {
		if ((e->value = malloc(len ? len : 1)) == NULL)
			abort();
		memcpy(e->value, value, len);
		e->len = len;
	}
	ed->fr[0].mask |= (uint64_t)1 << ed->ned++;
	return 0;
}

int
ds_edit_set(struct ds_editor *ed, const struct ds_path *path, enum ds_vr vr,
    const void *value, size_t len)
{
	return add_edit(ed, path, 0, vr, value, len);
}

int
ds_edit_remove(struct ds_editor *ed, const struct ds_path *path)
{
	return add_edit(ed, path, 1, DS_VR_NONE, NULL, 0);
}

enum ds_result
ds_editor_feed(struct ds_editor *ed, const uint8_t *p, size_t n)
{
	uint64_t held_end;

	if (ed->failed)
		return DS_ERROR;
	if (ed->hold_len + n > ed->hold_cap) {
		size_t cap = ed->hold_cap ? ed->hold_cap : 65536;

		while (cap < ed->hold_len + n)
			cap *= 2;
		if ((ed->hold = realloc(ed->hold, cap)) == NULL)
			abort();
		ed->hold_cap = cap;
	}
	memcpy(ed->hold + ed->hold_len, p, n);
	ed->hold_len += n;
	if (ds_parse_feed(ed->p, p, n) == DS_ERROR) {
		efail(ed, ds_parse_error(ed->p)->msg);
		return DS_ERROR;
	}
	/* Pass on what is decided: the current region, as far as held. */
	held_end = ed->emitted + ed->hold_len;
	if (ed->reg_end > ed->emitted && advance(ed, ed->reg_end < held_end ?
	    ed->reg_end : held_end) < 0)
		return DS_ERROR;
	return ed->failed ? DS_ERROR : DS_NEED_MORE;
}

enum ds_result
ds_editor_finish(struct ds_editor *ed)
{
	if (ed->failed)
		return DS_ERROR;
	if (ds_parse_finish(ed->p) != DS_DONE) {
		efail(ed, ds_parse_error(ed->p)->msg);
		return DS_ERROR;
	}
	if (advance(ed, ed->emitted + ed->hold_len) < 0 ||
	    insert_before(ed, &ed->fr[0], UINT32_MAX) < 0)
		return DS_ERROR;
	return DS_DONE;
}

const char *
ds_editor_error(const struct ds_editor *ed)
{
	return ed->failed ? ed->err : NULL;
}

unsigned
ds_editor_applied(const struct ds_editor *ed)
{
	return ed->applied;
}
