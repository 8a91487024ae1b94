/*
 * conf_yaml.h — internal to conf/: a small tree built from libyaml's event
 * stream, with the position of every node, and the error collector used by
 * the loader. Building our own tree (instead of libyaml's document loader)
 * lets us bound depth and node count and refuse aliases before any of
 * them can cost memory or stack.
 */
#ifndef VNAMIG_CONF_YAML_H
#define VNAMIG_CONF_YAML_H

#include <stddef.h>

#define CY_MAX_DEPTH	32
#define CY_MAX_NODES	100000
#define CY_MAX_ERRORS	50

enum cy_kind { CY_SCALAR, CY_MAP, CY_SEQ };

struct cy_node {
	enum cy_kind	  kind;
	unsigned	  line, col;	/* 1-based */
	char		 *value;	/* CY_SCALAR: NUL-terminated */
	size_t		  len;		/* CY_SCALAR: bytes, may hold NULs */
	int		  plain;	/* CY_SCALAR: unquoted */
	struct cy_node	**kids;		/* CY_MAP: key, value, key, ...  */
	size_t		  nkids, cap;	/* CY_SEQ: items */
};

struct cy_errs {
	const char	*file;
	char		*buf;
	size_t		 len, cap;
	unsigned	 n;
};

/* cy_err: append "FILE:LINE:COL: message\n" (LINE 0 = no position). */
void cy_err(struct cy_errs *e, unsigned line, unsigned col,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* cy_parse: the tree of buf, or NULL after adding errors to e (also for an
 * empty document). The caller frees it with cy_free. */
struct cy_node *cy_parse(const char *buf, size_t len, struct cy_errs *e);
void cy_free(struct cy_node *n);

/* cy_is_null: a plain "", "~", "null" scalar — a key given no value. */
int cy_is_null(const struct cy_node *n);
const char *cy_kind_name(enum cy_kind k);

#endif
