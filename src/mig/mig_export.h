/*
 * mig_export.h — the file-system export target's disk work, on a thread
 * of its own so a slow or large write never stalls the reactor.
 *
 * An export target (conf `exports:`) is a directory tree
 *	<root>/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm
 * of DICOM Part 10 files: the 128-byte preamble, "DICM", a file meta
 * group written by us (ds_write_part10_header), then the dataset bytes
 * exactly as the source sent them (taken from the spool). Every UID is
 * checked before it becomes a name (digits and dots, at most 64, no
 * empty component), so nothing from the wire can climb out of the root.
 *
 * A file is written as ".<SOP>.dcm.tmp" beside its final name,
 * fsynced, renamed, and its directory fsynced (exports[].fsync: false
 * skips both fsyncs, for scratch targets), so a file under
 * its final name is always whole. A WRITE job hashes the dataset bytes
 * it wrote; a CHECK job reads files back from the disk and hashes their
 * dataset (after the meta group its group length names): that is the
 * export's verification, compared by the engine with the source hash.
 *
 * An EDIT job serves transforms (an HL7 merge's PatientID) for any
 * target: it streams a spooled dataset through ds_edit into a file of
 * its own (dataset bytes only, as C-STORE sends them), with the SHA-256
 * and the canonical digest of what it wrote. Those copies can be made
 * again at will, so they are not fsynced.
 */
#ifndef VNAMIG_MIG_EXPORT_H
#define VNAMIG_MIG_EXPORT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct mig_export;

#define MIG_X_UID	65

struct mig_xfile {
	/* in */
	char		 src[4096];	/* spool segment path (WRITE) */
	uint64_t	 off, len;	/* the dataset bytes in it */
	char		 cls[MIG_X_UID], sop[MIG_X_UID], ts[MIG_X_UID];
	char		 study[MIG_X_UID], series[MIG_X_UID];
	size_t		 idx;		/* the caller's, untouched */
	/* EDIT: the dataset with element set_tag (a top-level LO, such
	 * as PatientID) set to set_val, written to dst */
	uint32_t	 set_tag;
	char		 set_val[MIG_X_UID];
	char		 dst[4096];
	/* out */
	int		 rc;		/* 0, or an errno value */
	int		 permanent;	/* rc from the instance itself (a UID
					 * no file name can take, a meta
					 * group or an edit refused): no
					 * retry helps */
	char		 why[320];	/* what failed, where */
	uint8_t		 sha[32];	/* SHA-256 of the dataset bytes */
	uint64_t	 bytes;		/* the file's size */
	uint8_t		 canon[32];	/* EDIT: the canonical digest */
	uint8_t		 pixel[32];	/* ... the pixel digest */
	int		 has_pixels;
	int		 canon_ok;	/* ... computed (the output parsed) */
};

enum mig_xkind { MIG_X_WRITE, MIG_X_CHECK, MIG_X_EDIT };

struct mig_xjob {
	enum mig_xkind	 kind;
	char		 root[4096];
	int		 fsync;
	struct mig_xfile *f;		/* owned by the job */
	size_t		 n;
	/* called on the loop when every file is done; the job is freed
	 * after it returns (not called after mig_export_free) */
	void		(*done)(void *arg, struct mig_xjob *j);
	void		*arg;
	struct mig_xjob	*next;
};

/* mig_export_new: the worker thread, reporting on base. NULL with err. */
struct mig_export *mig_export_new(struct event_base *base, char *err,
    size_t errlen);
/* mig_export_free: finish the job under way, drop the queued ones
 * (their callbacks are not called), stop the thread. */
void mig_export_free(struct mig_export *x);

/* mig_xjob_new: a job of n files (zeroed), kind, root. */
struct mig_xjob *mig_xjob_new(enum mig_xkind kind, const char *root,
    int fsync, size_t n);
/* mig_export_submit: queue j; its callback comes later, on the loop. */
void mig_export_submit(struct mig_export *x, struct mig_xjob *j);

/* mig_export_uid_ok: s may be a path component (a DICOM UID). */
int mig_export_uid_ok(const char *s);
/* mig_export_path: <root>/<study>/<series>/<sop>.dcm into out; -1 when a
 * UID is not valid or it does not fit. */
int mig_export_path(const char *root, const char *study, const char *series,
    const char *sop, char *out, size_t cap);

#endif
