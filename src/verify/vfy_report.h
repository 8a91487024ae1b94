/*
 * vfy_report.h — read the verification report of a batch, as
 * GET /api/batches/{id}/report answers it (JSON):
 *
 *	{ "summary": { "expected": E, "migrated": M, "skipped_present": S,
 *	    "quarantined": Q, "failed": F, "pending": P, ... },
 *	  "instances": [ { "study_uid", "series_uid", "sop_instance_uid",
 *	    "sop_class_uid", "source_sha256", "sent_sha256", "target_sha256",
 *	    "level", "outcome", "reason", ... }, ... ], ... }
 *
 * Only these members are read; anything else is checked as JSON and
 * passed over. Rows are kept compactly (no per-row allocation).
 *
 * Part of vnamig-verify, which shares no code with the daemon.
 */
#ifndef VFY_REPORT_H
#define VFY_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "src/verify/vfy_dcm.h"
#include "src/verify/vfy_tree.h"

#define VFY_REPORT_MAX	((size_t)4 << 30)	/* bytes of a report */

enum vfy_outcome { VFY_MIGRATED, VFY_SKIPPED, VFY_QUARANTINED, VFY_FAILED,
	VFY_PENDING, VFY_OUTCOME_N, VFY_OUTCOME_BAD = VFY_OUTCOME_N };
/* The report's names of the outcomes, in enum order. */
extern const char *const vfy_outcome_names[VFY_OUTCOME_N];

struct vfy_row {
	size_t		index;		/* in .instances[], from 0 */
	char		sop[VFY_UID_MAX + 1];	/* "" when absent or bad */
	char		study[VFY_UID_MAX + 1];
	char		level[16];	/* "" when null or absent */
	enum vfy_outcome outcome;	/* VFY_OUTCOME_BAD: absent, unknown */
	int		has_sent;	/* sent_sha256 is 64 hex digits */
	uint8_t		sent[VFY_HASH];
	int		has_target;	/* likewise target_sha256 */
	uint8_t		target[VFY_HASH];
	char		why[160];	/* what is wrong with the row, or "" */
};

struct vfy_report {
	struct vfy_row	*rows;
	size_t		 nrows;
	int		 has_summary;
	/* summary members: has_[k] when a non-negative integer */
	int		 has_expected;
	uint64_t	 expected;
	int		 has_n[VFY_OUTCOME_N];
	uint64_t	 n[VFY_OUTCOME_N];
};

enum vfy_report_read {
	VFY_REPORT_OK,
	VFY_REPORT_IO,		/* cannot be read */
	VFY_REPORT_BAD		/* not JSON, or not a report */
};

/* vfy_report_read: read PATH into R (zeroed first; free with
 * vfy_report_clear). Otherwise the reason is in ERR. */
enum vfy_report_read vfy_report_read(const char *path, struct vfy_report *r,
		    char *err, size_t errlen);
/* vfy_report_parse: the same over the N bytes at P. */
enum vfy_report_read vfy_report_parse(const void *p, size_t n,
		    struct vfy_report *r, char *err, size_t errlen);
void		vfy_report_clear(struct vfy_report *r);

#endif
