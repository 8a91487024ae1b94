/*
 * conf_yaml.c — libyaml events → struct cy_node tree; error collection.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "conf/conf_yaml.h"

void
cy_err(struct cy_errs *e, unsigned line, unsigned col, const char *fmt, ...)
{
	char msg[1024], head[512];
	size_t need, hl, ml;
	va_list ap;

	e->n++;
	if (e->n > CY_MAX_ERRORS + 1)
		return;
	if (e->n == CY_MAX_ERRORS + 1) {
		snprintf(msg, sizeof(msg), "further errors not shown");
		line = col = 0;
	} else {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	if (line > 0)
		snprintf(head, sizeof(head), "%s:%u:%u: ", e->file, line, col);
	else
		snprintf(head, sizeof(head), "%s: ", e->file);
	hl = strlen(head);
	ml = strlen(msg);
	need = e->len + hl + ml + 2;
	if (need > e->cap) {
		size_t cap = e->cap ? e->cap : 256;
		char *nb;

		while (cap < need)
			cap *= 2;
		if ((nb = realloc(e->buf, cap)) == NULL)
			abort();
		e->buf = nb;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, head, hl);
	memcpy(e->buf + e->len + hl, msg, ml);
	e->len += hl + ml;
	e->buf[e->len++] = '\n';
	e->buf[e->len] = '\0';
}

const char *
cy_kind_name(enum cy_kind k)
{
	switch (k) {
	case CY_SCALAR:
		return "a scalar";
	case CY_MAP:
		return "a mapping";
	case CY_SEQ:
		return "a list";
	}
	return "?";
}

int
cy_is_null(const struct cy_node *n)
{
	return n->kind == CY_SCALAR && n->plain &&
	    (n->len == 0 || strcmp(n->value, "~") == 0 ||
	    strcmp(n->value, "null") == 0 || strcmp(n->value, "Null") == 0 ||
	    strcmp(n->value, "NULL") == 0);
}

void
cy_free(struct cy_node *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nkids; i++)
		cy_free(n->kids[i]);
	free(n->kids);
	free(n->value);
	free(n);
}

static struct cy_node *
node_new(enum cy_kind k, const yaml_mark_t *m)
{
	struct cy_node *n = calloc(1, sizeof(*n));

	if (n == NULL)
		abort();
	n->kind = k;
	n->line = (unsigned)m->line + 1;
	n->col = (unsigned)m->column + 1;
	return n;
}

static void
node_add(struct cy_node *parent, struct cy_node *kid)
{
	if (parent->nkids == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct cy_node **nk = realloc(parent->kids, cap * sizeof(*nk));

		if (nk == NULL)
			abort();
		parent->kids = nk;
		parent->cap = cap;
	}
	parent->kids[parent->nkids++] = kid;
}

struct builder {
	struct cy_node	*root;
	struct cy_node	*stack[CY_MAX_DEPTH];
	int		 depth;
	size_t		 nodes;
	int		 docs;
};

/* Attach n where the event stream puts it; -1 (n freed) on a limit. */
static int
attach(struct builder *b, struct cy_node *n, struct cy_errs *e)
{
	if (++b->nodes > CY_MAX_NODES) {
		cy_err(e, n->line, n->col, "more than %d YAML nodes; "
		    "a configuration file is far smaller", CY_MAX_NODES);
		cy_free(n);
		return -1;
	}
	if (b->depth == 0) {
		b->root = n;
	} else
		node_add(b->stack[b->depth - 1], n);
	if (n->kind != CY_SCALAR) {
		if (b->depth == CY_MAX_DEPTH) {
			cy_err(e, n->line, n->col, "nesting deeper than %d "
			    "levels; the configuration has at most a few",
			    CY_MAX_DEPTH);
			return -1;
		}
		b->stack[b->depth++] = n;
	}
	return 0;
}

/* One event; returns 1 at stream end, 0 to go on, -1 on error. */
static int
event(struct builder *b, yaml_event_t *ev, struct cy_errs *e)
{
	struct cy_node *n;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (++b->docs > 1) {
			cy_err(e, (unsigned)ev->start_mark.line + 1,
			    (unsigned)ev->start_mark.column + 1,
			    "a second YAML document; expected exactly one");
			return -1;
		}
		return 0;
	case YAML_ALIAS_EVENT:
		cy_err(e, (unsigned)ev->start_mark.line + 1,
		    (unsigned)ev->start_mark.column + 1,
		    "YAML alias *%s is not supported; write the value out",
		    (const char *)ev->data.alias.anchor);
		return -1;
	case YAML_SCALAR_EVENT:
		n = node_new(CY_SCALAR, &ev->start_mark);
		n->len = ev->data.scalar.length;
		if ((n->value = malloc(n->len + 1)) == NULL)
			abort();
		memcpy(n->value, ev->data.scalar.value, n->len);
		n->value[n->len] = '\0';
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		return attach(b, n, e);
	case YAML_MAPPING_START_EVENT:
	case YAML_SEQUENCE_START_EVENT:
		n = node_new(ev->type == YAML_MAPPING_START_EVENT ? CY_MAP :
		    CY_SEQ, &ev->start_mark);
		return attach(b, n, e);
	case YAML_MAPPING_END_EVENT:
	case YAML_SEQUENCE_END_EVENT:
		if (b->depth > 0)
			b->depth--;
		return 0;
	case YAML_STREAM_END_EVENT:
		return 1;
	default:
		return 0;
	}
}

struct cy_node *
cy_parse(const char *buf, size_t len, struct cy_errs *e)
{
	struct builder b;
	yaml_parser_t p;
	yaml_event_t ev;
	int r = 0;

	memset(&b, 0, sizeof(b));
	if (!yaml_parser_initialize(&p))
		abort();
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (r == 0) {
		if (!yaml_parser_parse(&p, &ev)) {
			cy_err(e, (unsigned)p.problem_mark.line + 1,
			    (unsigned)p.problem_mark.column + 1,
			    "YAML syntax error: %s%s%s",
			    p.problem ? p.problem : "unknown problem",
			    p.context ? " " : "", p.context ? p.context : "");
			r = -1;
			break;
		}
		r = event(&b, &ev, e);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (r < 0) {
		cy_free(b.root);
		return NULL;
	}
	if (b.root == NULL || cy_is_null(b.root)) {
		cy_err(e, 0, 0, "the file holds no settings; expected a "
		    "mapping with node:, listen:, peers: ... (see "
		    "conf/vnamigd.yaml)");
		cy_free(b.root);
		return NULL;
	}
	return b.root;
}
