/*
 * vfy_mig.h — vnamig-verify migration: re-check a finished batch against
 * copies of its instances fetched from the target by another tool, and
 * the batch report's own arithmetic.
 *
 * Part of vnamig-verify, which shares no code with the daemon.
 */
#ifndef VFY_MIG_H
#define VFY_MIG_H

enum vfy_level { VFY_LEVEL_BYTES, VFY_LEVEL_DATASET };

struct vfy_mig_opts {
	const char	*report;	/* the report's JSON file */
	const char	*dir;		/* the target's copies, Part 10 */
	enum vfy_level	 level;
	int		 json;		/* one JSON object on stdout */
	int		 verbose;	/* a line per instance that is OK */
};

/*
 * vfy_migration: run the check and print its result on stdout (errors
 * on stderr). Returns the exit status: 0 every migrated instance is
 * there with the bytes sent and the report adds up, 1 otherwise, 3 when
 * the report or a part of the directory cannot be read.
 */
int	vfy_migration(const struct vfy_mig_opts *);

#endif
