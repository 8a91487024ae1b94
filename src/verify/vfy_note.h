/*
 * vfy_note.h — trusted Ed25519 keys and signed checkpoints: C2SP
 * signed-note (https://c2sp.org/signed-note) in the tlog-checkpoint form
 * (https://c2sp.org/tlog-checkpoint):
 *
 *	<origin>\n<size>\n<base64 root>\n[<extension line>\n ...]
 *	\n
 *	— <key name> <base64(key id || signature)>\n	(one or more)
 *
 * The signature is over the text before the blank line. For Ed25519 the
 * key id is the first 4 bytes of SHA-256(name || "\n" || 0x01 || the
 * 32-byte public key) and the signature 64 bytes. A checkpoint file holds
 * notes separated by blank lines.
 *
 * Part of vnamig-verify, which shares no code with the daemon.
 */
#ifndef VFY_NOTE_H
#define VFY_NOTE_H

#include <stddef.h>
#include <stdint.h>

#include "src/verify/vfy_tree.h"

#define VFY_NOTE_MAX	(16 * 1024)	/* bytes of one note */
#define VFY_NOTE_SIGS	16		/* signature lines of one note */
#define VFY_CKPT_FILE_MAX (256 * 1024 * 1024)	/* bytes of one file */

struct vfy_keys;

/* An empty key list; never NULL. */
struct vfy_keys	*vfy_keys_new(void);
void		 vfy_keys_free_(struct vfy_keys *);
#define vfy_keys_free(k) do { vfy_keys_free_(k); (k) = NULL; } while (0)
/* Add the Ed25519 public keys (PEM SubjectPublicKeyInfo, one or more
 * blocks) in PATH. 0, or -1 with the reason in ERR. */
int		 vfy_keys_load(struct vfy_keys *, const char *path, char *err,
		    size_t errlen);
/* How many keys have signed a verified note; their ids into IDS (hex,
 * comma-separated, "" when none). */
size_t		 vfy_keys_used(const struct vfy_keys *, char *ids, size_t n);

struct vfy_sig {
	char		*name;
	uint8_t		 keyid[4];
	uint8_t		*sig;		/* after the key id */
	size_t		 siglen;
};

enum vfy_sig_state {
	VFY_SIG_OK,		/* a trusted key's signature verifies */
	VFY_SIG_BAD,		/* a trusted key's signature does not */
	VFY_SIG_UNTRUSTED	/* no signature by a trusted key */
};

struct vfy_ckpt {
	const char	*file;		/* where it was read (borrowed) */
	unsigned	 index;		/* its place in the file, from 1 */
	char		*text;		/* the note, NUL-terminated */
	size_t		 len;
	size_t		 body;		/* text[0..body) is what is signed */
	char		*origin;
	uint64_t	 size;
	uint8_t		 root[VFY_HASH];
	struct vfy_sig	*sigs;
	size_t		 nsigs;
	enum vfy_sig_state state;	/* set by vfy_ckpt_verify */
	char		 why[512];	/* when not VFY_SIG_OK */
	char		 keyid[9];	/* hex id of the key that verified */
};

enum vfy_read {
	VFY_READ_OK,
	VFY_READ_IO,		/* cannot be read (missing, too big) */
	VFY_READ_BAD		/* a note is malformed */
};

/*
 * vfy_ckpt_read: parse every note of the checkpoint file PATH (kept, not
 * copied: it must outlive the list) and append them to *LIST (*N of
 * them, realloc'd). Otherwise the reason is in ERR.
 */
enum vfy_read	vfy_ckpt_read(const char *path, struct vfy_ckpt **list,
		    size_t *n, char *err, size_t errlen);
/* vfy_ckpt_verify: check C's signatures with KEYS; sets state, why and
 * keyid, and marks the key that verified as used. */
void		vfy_ckpt_verify(struct vfy_ckpt *c, struct vfy_keys *keys);
/* Free what vfy_ckpt_read allocated for one note. */
void		vfy_ckpt_clear(struct vfy_ckpt *c);

#endif
