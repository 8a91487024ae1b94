/*
 * vfy_tree.h — SHA-256 and the RFC 9162 Merkle tree hash, kept as a
 * frontier: for n leaves, the roots of the perfect subtrees that n's set
 * bits stand for (at most 64 hashes), so the root of the first n leaves
 * is known as each leaf streams past, in memory that does not grow with n.
 *
 * Part of vnamig-verify, which shares no code with the daemon.
 */
#ifndef VFY_TREE_H
#define VFY_TREE_H

#include <stddef.h>
#include <stdint.h>

#define VFY_HASH	32

/* SHA-256 over up to three parts (a NULL part of length 0 is skipped). */
void	vfy_sha256(const void *p1, size_t n1, const void *p2, size_t n2,
	    const void *p3, size_t n3, uint8_t out[VFY_HASH]);
/* Free what vfy_sha256 keeps between calls (at exit). */
void	vfy_sha256_done(void);
/* RFC 9162 2.1.1: SHA-256(0x00 || leaf), SHA-256(0x01 || l || r). */
void	vfy_leaf_hash(const void *leaf, size_t n, uint8_t out[VFY_HASH]);
void	vfy_node_hash(const uint8_t l[VFY_HASH], const uint8_t r[VFY_HASH],
	    uint8_t out[VFY_HASH]);
/* Lower-case hex of N bytes into OUT (2N + 1 bytes). */
void	vfy_hex(const uint8_t *p, size_t n, char *out);

struct vfy_tree;

/* An empty tree; never NULL (aborts when out of memory). */
struct vfy_tree	*vfy_tree_new(void);
void		 vfy_tree_free_(struct vfy_tree *);
#define vfy_tree_free(t) do { vfy_tree_free_(t); (t) = NULL; } while (0)
/* Append the leaf whose leaf hash is H. */
void		 vfy_tree_add(struct vfy_tree *, const uint8_t h[VFY_HASH]);
uint64_t	 vfy_tree_size(const struct vfy_tree *);
/* MTH of the leaves added so far (SHA-256("") when none). */
void		 vfy_tree_root(const struct vfy_tree *, uint8_t out[VFY_HASH]);

#endif
