/*
 * vfy_json.h — a strict JSON (RFC 8259) validator for one audit leaf:
 * the whole line must be one object, and its top-level "seq" and "prev"
 * are handed back. Nothing else of the leaf is interpreted.
 *
 * Part of vnamig-verify, which shares no code with the daemon.
 */
#ifndef VFY_JSON_H
#define VFY_JSON_H

#include <stddef.h>
#include <stdint.h>

#define VFY_JSON_DEPTH	64	/* nesting limit of objects and arrays */

struct vfy_leaf {
	int		has_seq;	/* top-level "seq" present */
	int		seq_ok;		/* it is an integer in 0 .. 2^64-1 */
	uint64_t	seq;
	int		has_prev;	/* top-level "prev" present */
	int		prev_ok;	/* it is a string of at most 64 bytes */
	char		prev[65];	/* its decoded value, NUL-terminated */
};

/*
 * vfy_json_leaf: check that the N bytes at P are exactly one JSON object
 * (valid UTF-8, valid escapes and numbers, nothing after it, nesting at
 * most VFY_JSON_DEPTH deep, "seq" and "prev" each at most once at the top
 * level) and fill LEAF. Returns 0, or -1 with what is wrong and at which
 * byte in ERR.
 */
int	vfy_json_leaf(const char *p, size_t n, struct vfy_leaf *leaf,
	    char *err, size_t errlen);

#endif
