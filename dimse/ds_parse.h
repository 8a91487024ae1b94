/*
 * ds_parse.h — the incremental DICOM dataset parser (PS3.5 7, PS3.10 7).
 *
 * Feed it bytes in any chunking (P-DATA fragments, file reads); it calls
 * back once per element, in stream order, and never needs the whole
 * instance in memory: values above a configurable size arrive as a stream
 * of chunks. Pure: no I/O, no sockets.
 *
 * Sequences and items nest through seq_begin/item_begin/item_end/seq_end.
 * Encapsulated pixel data ((7FE0,0010) of undefined length) arrives as a
 * sequence whose items are the fragments (basic offset table first), each
 * fragment delivered as an element with tag (FFFE,E000) and VR OB.
 *
 * Values are passed as they are on the wire (byte order of the transfer
 * syntax; see ds_elem.big_endian). Offsets count bytes of the dataset
 * stream as fed (for a file: from its first byte; for a deflated dataset:
 * of the inflated stream after the file meta group).
 */
#ifndef VNAMIG_DS_PARSE_H
#define VNAMIG_DS_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "dimse/ds_ts.h"
#include "dimse/ds_vr.h"

#define DS_UNDEFINED_LENGTH	0xffffffffu
#define DS_TAG(g, e)		((uint32_t)(g) << 16 | (uint32_t)(e))
#define DS_TAG_ITEM		DS_TAG(0xfffe, 0xe000)
#define DS_TAG_ITEM_END		DS_TAG(0xfffe, 0xe00d)
#define DS_TAG_SEQ_END		DS_TAG(0xfffe, 0xe0dd)
#define DS_TAG_PIXEL_DATA	DS_TAG(0x7fe0, 0x0010)

struct ds_limits {
	uint32_t	max_depth;	/* sequence nesting (default 64) */
	uint64_t	max_elements;	/* per dataset (default 1,000,000) */
	uint32_t	chunk_over;	/* values longer are streamed in chunks
					 * (default 64 KiB) */
	uint64_t	max_inflate;	/* inflated bytes of a deflated dataset
					 * (default 4 GiB) */
	uint64_t	max_ratio;	/* inflated/compressed ratio bound
					 * (default 1000) */
};

struct ds_elem {
	uint32_t	 tag;
	enum ds_vr	 vr;		/* from the stream, or the dictionary */
	uint32_t	 length;	/* DS_UNDEFINED_LENGTH for undefined */
	uint64_t	 offset;	/* of the element's first header byte */
	uint8_t		 hdr_len;	/* header bytes: 8 or 12 */
	unsigned	 depth;		/* 0 = top-level dataset */
	unsigned	 big_endian:1;	/* value bytes are big-endian */
	unsigned	 vr_guessed:1;	/* implicit VR: VR from the dictionary,
					 * UN when unknown */
	unsigned	 encapsulated:1; /* pixel data as fragments */
	unsigned	 fragment:1;	/* an (FFFE,E000) fragment */
	unsigned	 meta:1;	/* part of the file meta group */
};

/* What the file meta group said (or what sniffing guessed). */
struct ds_meta {
	const struct ds_ts	*ts;		/* syntax of the dataset */
	char			 ts_uid[65];	/* as given (or guessed) */
	char			 sop_class[65];
	char			 sop_instance[65];
	int			 has_preamble;	/* 128 bytes + "DICM" */
	int			 has_meta;	/* a group 0002 was present */
	int			 ts_guessed;	/* no meta, or no (0002,0010)
						 * in it: syntax sniffed */
	uint64_t		 dataset_offset; /* first byte after meta */
};

enum ds_result {
	DS_NEED_MORE = 0,	/* all input consumed; feed more or finish */
	DS_DONE = 1,		/* finish: the dataset ended cleanly */
	DS_ERROR = -1,		/* see ds_parse_error(); the parser is dead */
};

struct ds_error {
	uint32_t	 tag;		/* element concerned (0 if none) */
	uint64_t	 offset;	/* stream offset where it went wrong */
	char		 msg[256];	/* what is wrong, in English */
};

/*
 * Callbacks; any of them may be NULL. A non-zero return stops the parse
 * with DS_ERROR and the message "stopped by the consumer".
 * element:     a whole value (length ≤ chunk_over), value bytes valid only
 *              during the call.
 * value_begin/value_chunk/value_end: a value longer than chunk_over.
 * seq_begin:   e is the SQ element (or encapsulated pixel data);
 * item_begin:  e is the (FFFE,E000) item header; item_end and seq_end
 *              close them (also for defined lengths, when the length runs
 *              out).
 * meta:        once, before the first dataset element (file mode), or
 *              at the start (dataset mode, with the given syntax).
 * warning:     a recoverable oddity (odd value length, ...); parsing goes
 *              on.
 */
struct ds_callbacks {
	int	(*meta)(void *arg, const struct ds_meta *m);
	int	(*element)(void *arg, const struct ds_elem *e,
		    const uint8_t *value, size_t len);
	int	(*value_begin)(void *arg, const struct ds_elem *e);
	int	(*value_chunk)(void *arg, const struct ds_elem *e,
		    const uint8_t *p, size_t n);
	int	(*value_end)(void *arg, const struct ds_elem *e);
	int	(*seq_begin)(void *arg, const struct ds_elem *e);
	int	(*item_begin)(void *arg, const struct ds_elem *e);
	int	(*item_end)(void *arg, const struct ds_elem *e);
	int	(*seq_end)(void *arg, const struct ds_elem *e);
	int	(*warning)(void *arg, const struct ds_error *w);
};

struct ds_parser;

/* ds_limits_default: fill lim with the defaults above. */
void ds_limits_default(struct ds_limits *lim);

/*
 * ds_parser_new_file: parse a Part 10 file (preamble, "DICM", meta) or,
 * when there is none, a bare dataset whose syntax is sniffed. Never NULL.
 * lim and cb are copied.
 */
struct ds_parser *ds_parser_new_file(const struct ds_limits *lim,
    const struct ds_callbacks *cb, void *arg);
/* ds_parser_new_dataset: parse a dataset in syntax ts (as DIMSE data). */
struct ds_parser *ds_parser_new_dataset(const struct ds_ts *ts,
    const struct ds_limits *lim, const struct ds_callbacks *cb, void *arg);
void ds_parser_free_(struct ds_parser *p);
#define ds_parser_free(p) do { ds_parser_free_(p); (p) = NULL; } while (0)

/* ds_parse_feed: consume all of data; DS_NEED_MORE or DS_ERROR. */
enum ds_result ds_parse_feed(struct ds_parser *p, const uint8_t *data,
    size_t len);
/* ds_parse_finish: the input ended; DS_DONE when it ended on an element
 * boundary with every undefined-length sequence closed, else DS_ERROR
 * ("truncated ..."). */
enum ds_result ds_parse_finish(struct ds_parser *p);
const struct ds_error *ds_parse_error(const struct ds_parser *p);
/* Stream offset of the next byte the parser will read. */
uint64_t ds_parse_position(const struct ds_parser *p);
/* Elements seen so far (items and delimiters not counted). */
uint64_t ds_parse_elements(const struct ds_parser *p);

#endif
