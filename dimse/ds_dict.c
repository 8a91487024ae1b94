/*
 * ds_dict.c — see ds_dict.h.  Lookups over the generated, sorted tables
 * in ds_dict_table.c; PS3.5 7.1 for group lengths, 7.8 for private tags.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dimse/ds_dict.h"

/* (gggg,0000) of a group the dictionary does not list (PS3.5 7.2). */
static const struct ds_dict_entry group_length = {
	0x00000000, 0x0000ffff, { DS_VR_UL }, "1", "GenericGroupLength",
	"Generic Group Length", 0
};

/* (gggg,0010-00FF), gggg odd (PS3.5 7.8.1); the mask says "odd group,
 * element 00xx", the 0x10 lower bound is checked in code. */
static const struct ds_dict_entry private_creator = {
	0x00010010, 0x0001ff00, { DS_VR_LO }, "1", "PrivateCreator",
	"Private Creator", 0
};

/* exact: the entry with exactly tag among the sorted exact entries. */
static const struct ds_dict_entry *
exact(uint32_t tag)
{
	const struct ds_dict_entry	*e = ds_dict_table.entries;
	size_t				 lo = 0, hi, mid;

	hi = ds_dict_table.nexact;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (e[mid].tag == tag)
			return &e[mid];
		if (e[mid].tag < tag)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* repeating: the first repeating-group entry whose pattern matches tag. */
static const struct ds_dict_entry *
repeating(uint32_t tag)
{
	const struct ds_dict_entry	*e;
	size_t				 i;

	for (i = ds_dict_table.nexact; i < ds_dict_table.nentries; i++) {
		e = &ds_dict_table.entries[i];
		if ((tag & e->mask) == e->tag)
			return e;
	}
	return NULL;
}

const struct ds_dict_entry *
ds_dict_by_tag(uint32_t tag)
{
	const struct ds_dict_entry	*e;
	uint16_t			 group = tag >> 16, elem = tag & 0xffff;

	if ((e = exact(tag)) != NULL)
		return e;
	if (elem == 0x0000)
		return &group_length;
	if (group & 1) {
		/* private: repeating groups are even, never match here */
		if (elem >= 0x0010 && elem <= 0x00ff)
			return &private_creator;
		return NULL;
	}
	return repeating(tag);
}

const struct ds_dict_entry *
ds_dict_by_keyword(const char *keyword)
{
	const struct ds_dict_entry	*e;
	size_t				 lo = 0, hi, mid;
	int				 c;

	if (keyword == NULL)
		return NULL;
	hi = ds_dict_table.nkeywords;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		e = &ds_dict_table.entries[ds_dict_table.by_keyword[mid]];
		if ((c = strcmp(keyword, e->keyword)) == 0)
			return e;
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t
ds_dict_count(void)
{
	return ds_dict_table.nentries;
}
