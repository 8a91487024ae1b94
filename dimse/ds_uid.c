/*
 * ds_uid.c — see ds_uid.h.  Lookups over the generated, sorted tables in
 * ds_uid_table.c.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "dimse/ds_uid.h"

const struct ds_uid_entry *
ds_uid_lookup(const char *uid)
{
	const struct ds_uid_entry	*e = ds_uid_table.entries;
	size_t				 lo = 0, hi, mid;
	int				 c;

	if (uid == NULL)
		return NULL;
	hi = ds_uid_table.nentries;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(uid, e[mid].uid)) == 0)
			return &e[mid];
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct ds_uid_entry *
ds_uid_by_keyword(const char *kw)
{
	const struct ds_uid_entry	*e;
	size_t				 lo = 0, hi, mid;
	int				 c;

	if (kw == NULL)
		return NULL;
	hi = ds_uid_table.nkeywords;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		e = &ds_uid_table.entries[ds_uid_table.by_keyword[mid]];
		if ((c = strcmp(kw, e->keyword)) == 0)
			return e;
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

const struct ds_uid_entry *const *
ds_uid_storage(size_t *n)
{
	if (n != NULL)
		*n = ds_uid_table.nstorage;
	return ds_uid_table.storage;
}

const char *
ds_uid_name(const char *uid)
{
	const struct ds_uid_entry	*e = ds_uid_lookup(uid);

	if (e == NULL || e->name[0] == '\0')
		return "unknown UID";
	return e->name;
}

size_t
ds_uid_count(void)
{
	return ds_uid_table.nentries;
}

int
ds_uid_exact(char dst[65], const uint8_t *v, size_t n)
{
	while (n > 0 && (v[n - 1] == '\0' || v[n - 1] == ' '))
		n--;
	if (n > 64 || memchr(v, '\0', n) != NULL) {
		dst[0] = '\0';
		return -1;
	}
	memcpy(dst, v, n);
	dst[n] = '\0';
	return 0;
}

void
ds_uid_copy(char dst[65], const uint8_t *v, size_t n)
{
	while (n > 0 && (v[n - 1] == '\0' || v[n - 1] == ' '))
		n--;
	if (n > 64)
		n = 64;
	memcpy(dst, v, n);
	dst[n] = '\0';
}
