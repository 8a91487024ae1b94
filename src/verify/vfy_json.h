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

/*
 * A cursor over a JSON document, for readers that walk it piece by piece
 * (the same strict grammar; nothing is built in memory). Every function
 * skips whitespace first. Those that return int return -1 on a syntax
 * error, with what and at which byte in the cursor's ERR; once an error
 * is recorded the first message stays.
 */
struct vfy_jcur {
	const unsigned char	*p;
	size_t			 n, i;		/* i: the next byte */
	unsigned		 depth;
	char			*err;
	size_t			 errlen;
	int			 failed;
	int			 first;		/* no member read yet */
};

/* Over the N bytes at P (borrowed: they must outlive the cursor). */
void	vfy_jcur_init(struct vfy_jcur *, const void *p, size_t n, char *err,
	    size_t errlen);
/* The next byte, or -1 at the end. */
int	vfy_jcur_peek(struct vfy_jcur *);
/* Check and pass one value of any kind. */
int	vfy_jcur_skip(struct vfy_jcur *);
/* A string, decoded into BUF (CAP bytes with the NUL; BUF NULL: only
 * checked), its length in *LEN. 0, 1 when longer than CAP - 1 (BUF is
 * then ""), -1. */
int	vfy_jcur_string(struct vfy_jcur *, char *buf, size_t cap,
	    size_t *len);
/* A number or any other value: 0 with *V when it is an integer in
 * 0 .. 2^64-1 written plainly, 1 when it is another valid value, -1. */
int	vfy_jcur_u64(struct vfy_jcur *, uint64_t *v);
/* Enter an object (C '{') or array (C '['), within the depth limit. */
int	vfy_jcur_open(struct vfy_jcur *, int c);
/*
 * The next member of the object or element of the array just opened
 * (CLOSE '}' or ']'): 1 with the cursor at its value (an object member's
 * key decoded into KEY, "" when longer than CAP - 1), 0 after CLOSE, -1.
 * Call vfy_jcur_open for a nested one before the next call: the cursor
 * keeps one "first" flag, for the innermost container opened.
 */
int	vfy_jcur_next(struct vfy_jcur *, int close, char *key, size_t cap);
/* Nothing but whitespace is left. */
int	vfy_jcur_end(struct vfy_jcur *);
/* Record an error of the reader's own at the cursor; returns -1. */
int	vfy_jcur_fail(struct vfy_jcur *, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* Length of the valid UTF-8 sequence at P (N bytes left), 0 if none. */
size_t	vfy_utf8_len(const unsigned char *p, size_t n);

#endif
