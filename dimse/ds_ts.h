/*
 * ds_ts.h — transfer syntaxes (PS3.5 10, Annex A): how a dataset is
 * encoded. Pure lookup.
 */
#ifndef VNAMIG_DS_TS_H
#define VNAMIG_DS_TS_H

struct ds_ts {
	const char	*uid;
	const char	*name;
	unsigned	 explicit_vr:1;
	unsigned	 big_endian:1;
	unsigned	 deflated:1;
	unsigned	 encapsulated:1;	/* pixel data in fragments */
	unsigned	 retired:1;
};

/*
 * ds_ts_lookup: the transfer syntax for uid (trailing NUL/space padding
 * ignored). UIDs not in the table but under 1.2.840.10008.1.2.4. or .5
 * are taken as encapsulated Explicit VR Little Endian (every compressed
 * syntax is); anything else returns NULL.
 */
const struct ds_ts *ds_ts_lookup(const char *uid);

extern const struct ds_ts ds_ts_implicit_le;	/* 1.2.840.10008.1.2 */
extern const struct ds_ts ds_ts_explicit_le;	/* 1.2.840.10008.1.2.1 */
extern const struct ds_ts ds_ts_explicit_be;	/* 1.2.840.10008.1.2.2 */
extern const struct ds_ts ds_ts_deflated_le;	/* 1.2.840.10008.1.2.1.99 */

#endif
