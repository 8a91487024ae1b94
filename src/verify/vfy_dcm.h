/*
 * vfy_dcm.h — just enough of a DICOM Part 10 file (PS3.10 7.1) to find
 * its dataset: the 128-byte preamble, "DICM", and the File Meta
 * Information (group 0002, always explicit VR little endian, PS3.10
 * 7.1), walked element by element. Its SOP Instance UID and transfer
 * syntax are handed back; the dataset is every byte after the group,
 * hashed as it is (SHA-256), whatever its transfer syntax.
 *
 * Part of vnamig-verify, which shares no code with the daemon.
 */
#ifndef VFY_DCM_H
#define VFY_DCM_H

#include <stddef.h>
#include <stdint.h>

#include "src/verify/vfy_tree.h"

#define VFY_DCM_PREFIX		132		/* preamble + "DICM" */
#define VFY_DCM_META_MAX	(64 * 1024)	/* bytes of group 0002 */
#define VFY_UID_MAX		64		/* PS3.5 9.1 */

#define VFY_TS_DEFLATED		"1.2.840.10008.1.2.1.99"
#define VFY_CLASS_DICOMDIR	"1.2.840.10008.1.3.10"

struct vfy_meta {
	size_t		end;		/* offset of the dataset */
	char		sop_uid[VFY_UID_MAX + 1];	/* (0002,0003) */
	char		class_uid[VFY_UID_MAX + 1];	/* (0002,0002) */
	char		ts_uid[VFY_UID_MAX + 1];	/* (0002,0010) */
	int		has_glen;	/* (0002,0000) present */
	uint32_t	glen;		/* its value */
	size_t		walked;		/* bytes of the elements after it */
};

/*
 * vfy_dcm_meta: read the prefix and file meta group from the N bytes at
 * P, the start of a file; EOF set when the file has no more. The group
 * ends at the first element of another group: its elements are walked,
 * (0002,0000) is not taken on trust (M->glen and M->walked tell whether
 * it was right). Returns 1 with M filled, 0 when more bytes are needed
 * (never with EOF set), -1 with what is wrong and at which byte in ERR.
 */
int	vfy_dcm_meta(const uint8_t *p, size_t n, int eof, struct vfy_meta *m,
	    char *err, size_t errlen);

struct vfy_dcm_file {
	struct vfy_meta	meta;
	uint8_t		sha[VFY_HASH];	/* of the dataset bytes */
	uint64_t	len;		/* dataset bytes in the file */
	int		deflated;	/* transfer syntax VFY_TS_DEFLATED */
};

enum vfy_dcm_read {
	VFY_DCM_OK,
	VFY_DCM_BAD,		/* not a Part 10 file: ERR says why */
	VFY_DCM_IO		/* cannot be read: ERR says why */
};

/*
 * vfy_dcm_file: read the file PATH: its meta group and the SHA-256 of its
 * dataset bytes, streamed (memory does not grow with the file). A dataset
 * of odd length is hashed with one zero byte added, as it is sent
 * (PS3.5 A.5, 7.1.1: a dataset in transfer is of even length; only a
 * deflated one can be odd in a file).
 */
enum vfy_dcm_read vfy_dcm_file(const char *path, struct vfy_dcm_file *f,
		    char *err, size_t errlen);

#endif
