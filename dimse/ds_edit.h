/*
 * ds_edit.h — edit mode: rewrite only the elements an edit touches and
 * copy every other byte of the dataset as it came, pixel data included,
 * streaming (the transform engine and the forwarder use it).
 *
 * Edits address elements by path: a top-level tag, or a tag inside a
 * given item of a sequence, any depth ((0008,1115)[0] (0008,1140)[2]
 * (0008,1155)). Private elements are addressed by (group, creator,
 * element byte) and resolved against the private creators of the dataset
 * or item they are in. An edit sets (replaces, or inserts in tag order) or
 * removes an element.
 *
 * What changes besides the edited elements: a sequence or item of
 * defined length that holds an edit is rewritten with undefined length
 * and delimiters (its contents move); a set on a private element whose
 * creator is absent inserts the creator in the first free block. Nothing
 * else changes: no byte outside the edited elements and those headers.
 */
#ifndef VNAMIG_DS_EDIT_H
#define VNAMIG_DS_EDIT_H

#include <stddef.h>
#include <stdint.h>

#include "dimse/ds_parse.h"
#include "dimse/ds_write.h"

#define DS_PATH_MAX 8

struct ds_path_step {
	uint32_t	 tag;		/* for private: (group, 0x00ee) */
	const char	*creator;	/* private creator, or NULL */
	int		 item;		/* item index into it (not last step) */
};

struct ds_path {
	struct ds_path_step	step[DS_PATH_MAX];
	unsigned		n;
};

struct ds_editor;

/*
 * ds_editor_new: an editor that parses a dataset in syntax ts (or a Part
 * 10 file when ts is NULL: the preamble and meta are copied unchanged)
 * and writes the edited bytes to sink. Never NULL.
 */
struct ds_editor *ds_editor_new(const struct ds_ts *ts,
    const struct ds_limits *lim, ds_sink_fn *sink, void *arg);
void ds_editor_free_(struct ds_editor *ed);
#define ds_editor_free(e) do { ds_editor_free_(e); (e) = NULL; } while (0)

/* ds_edit_set: put value (len bytes, raw in the dataset's byte order,
 * even length) with VR vr at path. Copies value. -1 with a message in
 * ds_editor_error() on a bad path (group 0002, too deep, creator too
 * long). Call before the first ds_editor_feed. */
int ds_edit_set(struct ds_editor *ed, const struct ds_path *path,
    enum ds_vr vr, const void *value, size_t len);
/* ds_edit_remove: remove the element at path if present. */
int ds_edit_remove(struct ds_editor *ed, const struct ds_path *path);

/* Feed input; DS_NEED_MORE or DS_ERROR (see ds_editor_error). */
enum ds_result ds_editor_feed(struct ds_editor *ed, const uint8_t *p,
    size_t n);
/* The input ended: write what remains (pending inserts included). */
enum ds_result ds_editor_finish(struct ds_editor *ed);
const char *ds_editor_error(const struct ds_editor *ed);
/* How many edits were applied (sets done, removes that found their
 * element). */
unsigned ds_editor_applied(const struct ds_editor *ed);

#endif
