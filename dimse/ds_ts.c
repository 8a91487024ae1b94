/*
 * ds_ts.c — see ds_ts.h.
 */
#include "config.h"

#include <string.h>

#include "dimse/ds_ts.h"

const struct ds_ts ds_ts_implicit_le = { "1.2.840.10008.1.2",
	"Implicit VR Little Endian", 0, 0, 0, 0, 0 };
const struct ds_ts ds_ts_explicit_le = { "1.2.840.10008.1.2.1",
	"Explicit VR Little Endian", 1, 0, 0, 0, 0 };
const struct ds_ts ds_ts_explicit_be = { "1.2.840.10008.1.2.2",
	"Explicit VR Big Endian", 1, 1, 0, 0, 1 };
const struct ds_ts ds_ts_deflated_le = { "1.2.840.10008.1.2.1.99",
	"Deflated Explicit VR Little Endian", 1, 0, 1, 0, 0 };

/* Encapsulated syntaxes with names, for logs; others under the
 * compressed roots are accepted by prefix. */
static const struct ds_ts encapsulated[] = {
	{ "1.2.840.10008.1.2.4.50", "JPEG Baseline (Process 1)", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.51", "JPEG Extended (Process 2 & 4)", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.57", "JPEG Lossless, Non-Hierarchical (Process 14)", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.70", "JPEG Lossless, First-Order Prediction", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.80", "JPEG-LS Lossless", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.81", "JPEG-LS Lossy (Near-Lossless)", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.90", "JPEG 2000 (Lossless Only)", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.91", "JPEG 2000", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.102", "MPEG-4 AVC/H.264 High Profile", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.201", "HTJ2K (Lossless Only)", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.4.203", "HTJ2K", 1, 0, 0, 1, 0 },
	{ "1.2.840.10008.1.2.5", "RLE Lossless", 1, 0, 0, 1, 0 },
};

static const struct ds_ts generic_encapsulated = { NULL,
	"Encapsulated (compressed) transfer syntax", 1, 0, 0, 1, 0 };

const struct ds_ts *
ds_ts_lookup(const char *uid)
{
	static const struct ds_ts *const base[] = { &ds_ts_implicit_le,
	    &ds_ts_explicit_le, &ds_ts_explicit_be, &ds_ts_deflated_le };
	size_t len = strlen(uid);

	while (len > 0 && (uid[len - 1] == ' ' || uid[len - 1] == '\0'))
		len--;
	for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
		if (strlen(base[i]->uid) == len &&
		    memcmp(base[i]->uid, uid, len) == 0)
			return base[i];
	for (size_t i = 0; i < sizeof(encapsulated) / sizeof(encapsulated[0]);
	    i++)
		if (strlen(encapsulated[i].uid) == len &&
		    memcmp(encapsulated[i].uid, uid, len) == 0)
			return &encapsulated[i];
	if ((len > 22 && memcmp(uid, "1.2.840.10008.1.2.4.", 20) == 0) ||
	    (len >= 19 && memcmp(uid, "1.2.840.10008.1.2.5", 19) == 0 &&
	    (len == 19 || uid[19] == '.')))
		return &generic_encapsulated;
	return NULL;
}
