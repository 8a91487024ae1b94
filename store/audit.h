/*
 * audit.h — the tamper-evident audit log: an append-only RFC 9162 Merkle
 * tree in the store, signed checkpoints, inclusion and consistency proofs,
 * and export for vnamig-verify.
 *
 * Leaves. A leaf is canonical JSON (keys sorted bytewise, no whitespace,
 * non-ASCII as \u escapes, integers only) of the caller's event object
 * plus the fields audit_append adds:
 *	seq	 its index in the tree (0, 1, 2, ...)
 *	time	 wall clock, RFC 3339 UTC with microseconds
 *	mono	 CLOCK_MONOTONIC in microseconds, with
 *	boot	 the kernel's boot id, so mono compares within one boot
 *	prev	 hex SHA-256 leaf hash of leaf seq-1 (absent for seq 0)
 * The caller gives "event" (dotted name) and whatever of "actor",
 * "object", "hashes", "transform", "outcome", "reason" applies. PHI never
 * goes in clear: audit_phi() makes a keyed commitment to it.
 * `prev` chains the leaves so a verifier can name the one leaf that was
 * altered, not only that some leaf before a checkpoint was.
 *
 * Tree. leaf hash = SHA-256(0x00 || leaf), node = SHA-256(0x01 || l || r)
 * (RFC 9162 2.1.1). Every perfect subtree's hash is stored once, in the
 * same batch as the leaf that completes it, so roots and proofs for any
 * size need O(log n) reads and appending costs O(1) amortised hashes.
 *
 * Checkpoints. A signed note (C2SP signed-note / tlog-checkpoint form):
 *	<origin>\n<size>\n<base64 root>\n\n— <origin> <base64(keyid || sig)>\n
 * with an Ed25519 signature over the first three lines and keyid the first
 * four bytes of SHA-256(origin || "\n" || 0x01 || public key). Each is kept
 * in the store and appended (fsync'd) to the plain checkpoint file.
 */
#ifndef VNAMIG_AUDIT_H
#define VNAMIG_AUDIT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "store/store.h"

#define AUDIT_HASH	32

struct audit_opts {
	const char	*origin;	/* checkpoint origin, e.g. vnamig/AE */
	const char	*key_file;	/* Ed25519 private key (PEM, PKCS#8);
					 * created with KEY.pub when absent */
	const char	*checkpoint_file;	/* plain copy; NULL = none */
	const char	*data_dir;	/* the key must not be under it */
};

struct audit;

/*
 * audit_open: load the key (creating it on first start), reload the tree
 * from the store, and record in the log the key's first use or rotation.
 * Returns NULL with a message in err.
 */
struct audit *audit_open(struct store *st, const struct audit_opts *o,
    char *err, size_t errlen);
void audit_close_(struct audit *a);
#define audit_close(a) do { audit_close_(a); (a) = NULL; } while (0)

/*
 * audit_append: add the leaf for EV (not changed; members named like the
 * added fields are replaced) to the unit being built in B, with the tree
 * nodes it completes. Returns its seq. The leaf is durable when B's unit
 * is.
 */
uint64_t audit_append(struct audit *a, struct store_batch *b,
    const json_t *ev);

/* Leaves appended (durable or in flight) / durable. */
uint64_t audit_size(const struct audit *a);
uint64_t audit_durable_size(struct audit *a);

/* Root of the first SIZE durable leaves. 0 or -1. */
int audit_root(struct audit *a, uint64_t size, uint8_t root[AUDIT_HASH]);
/* The leaf hash of leaf SEQ and its bytes (malloc'd) when wanted. */
int audit_leaf(struct audit *a, uint64_t seq, uint8_t hash[AUDIT_HASH],
    char **json, size_t *len);

/*
 * Proofs (RFC 9162 2.1.3 and 2.1.4) over durable leaves: *path gets n
 * hashes (malloc'd, AUDIT_HASH bytes each). 0, or -1 with a reason in err
 * (out of range, read error).
 */
int audit_inclusion(struct audit *a, uint64_t index, uint64_t size,
    uint8_t **path, size_t *n, char *err, size_t errlen);
int audit_consistency(struct audit *a, uint64_t m, uint64_t size,
    uint8_t **path, size_t *n, char *err, size_t errlen);

/*
 * audit_checkpoint: sign the durable tree and keep the note (store +
 * checkpoint file). Nothing new since the last one: returns 0 and makes
 * none. *note (when wanted) gets the text, malloc'd. 1 made, 0 none, -1.
 */
int audit_checkpoint(struct audit *a, char **note, char *err, size_t errlen);
/* The latest checkpoint note (malloc'd), or NULL when none. */
char *audit_latest_checkpoint(struct audit *a);

/* A keyed commitment to a PHI value: hex HMAC-SHA256(secret, value), the
 * secret kept in the store's meta (never exported). */
void audit_phi(const struct audit *a, const char *value, char out[65]);

/*
 * audit_export: write every durable leaf as one line (its exact bytes) to
 * LEAVES, and every checkpoint note, separated by blank lines, to CKPTS;
 * with PEMS, *PEMS (malloc'd) is every public key the log was signed
 * with (those its audit.key leaves name, and the current one), PEM
 * blocks one after another, oldest first. Returns the number of leaves,
 * or -1 (err says which read or write failed).
 */
int64_t audit_export(struct audit *a, FILE *leaves, FILE *ckpts,
    char **pems, char *err, size_t errlen);
/* The public key as PEM (malloc'd). */
char *audit_public_pem(const struct audit *a);

/*
 * The tree read from a store alone, without an open log (checks,
 * restores, tools): the leaves held (0 with *n, or -1 when the store
 * could not be read: never taken for an empty log); the root of the first N from the
 * stored nodes (0, or -1 when one is missing); and audit_tree_check,
 * which recomputes the root from every leaf and compares it with the
 * stored tree's: 0 with the size and root, or -1 with err (a missing
 * leaf or node, a mismatch).
 */
int audit_store_size(struct store *st, uint64_t *n);
int audit_store_root(struct store *st, uint64_t n, uint8_t root[AUDIT_HASH]);
int audit_tree_check(struct store *st, uint64_t *size,
    uint8_t root[AUDIT_HASH], char *err, size_t errlen);

/* Pure helpers, exposed for the tests. */
void audit_leaf_hash(const void *leaf, size_t n, uint8_t out[AUDIT_HASH]);
void audit_node_hash(const uint8_t l[AUDIT_HASH], const uint8_t r[AUDIT_HASH],
    uint8_t out[AUDIT_HASH]);
/* json_dumps in the canonical form (malloc'd). */
char *audit_canonical(const json_t *j, size_t *len);

#endif
