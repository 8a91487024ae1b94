/*
 * dicom_pool.h — our outbound DICOM associations, shared: a user leases
 * an association to a configured peer for one piece of work (a C-STORE
 * run, a C-FIND, a commitment request) and returns it; the pool reuses an
 * idle association whose proposal covers what the next lease needs
 * instead of opening another, and keeps within two limits:
 *
 *   peers[].max_associations   open to that peer at once
 *   limits.associations_out    open to all peers at once
 *
 * A lease that cannot be served at once waits in order. An association
 * that stays idle for limits.idle_timeout is released; one the peer ends
 * while idle is dropped (and logged); one that ends while leased fails
 * that lease (the user decides whether to retry). Opening honours
 * limits.network_timeout; an established association that never answers
 * is the DIMSE layer's business (limits.dimse_timeout).
 */
#ifndef VNAMIG_DICOM_POOL_H
#define VNAMIG_DICOM_POOL_H

#include "dimse/dimse_msg.h"
#include "src/net/dicom_svc.h"

struct conf;
struct conf_peer;
struct net_server;
struct dicom_pool;
struct dicom_lease;

struct dicom_lease_user {
	/* The association is ours until dicom_lease_return. */
	void	(*ready)(struct dicom_lease *l, struct dicom_conn *dc,
		    void *arg);
	/* A response (or part of one) on it, as dicom_user.message. */
	void	(*message)(struct dicom_lease *l, void *arg,
		    enum dimse_asm_result r, const struct dimse_asm_event *ev);
	/* No association: it could not be opened (rejected, refused,
	 * timed out), or it ended while leased. The lease is over (do not
	 * return it). */
	void	(*failed)(struct dicom_lease *l, void *arg, const char *why);
};

/* dicom_pool_new: a pool on s; the limits and peers of s's configuration
 * (net_server_conf: the one in force after a reload; conf must be it at
 * first) are read at each lease. A peer with tls.enabled gets a client
 * context from net_client_tls, made once. */
struct dicom_pool *dicom_pool_new(struct net_server *s,
    const struct conf *conf);

/*
 * dicom_pool_lease: ask for an association to peer whose proposal holds
 * every context in prop (copied; the strings must stay valid while the
 * lease waits or its association is being opened). u hears of it from
 * the loop, never from within this call. Returns the lease, or NULL with err
 * when it can never be served (more contexts than one association can
 * propose, the peer's TLS context cannot be made).
 */
struct dicom_lease *dicom_pool_lease(struct dicom_pool *p,
    const struct conf_peer *peer, const struct dicom_propose *prop,
    unsigned nprop, const struct dicom_lease_user *u, void *arg,
    char *err, size_t cap);

/* dicom_lease_return: done with the association (nothing in flight):
 * it goes back to the pool. The lease is freed. */
void dicom_lease_return(struct dicom_lease *l);

/* dicom_lease_drop: done, and the association is not to be reused (a
 * protocol state the user does not trust): it is aborted. A lease still
 * waiting is withdrawn. The lease is freed. */
void dicom_lease_drop(struct dicom_lease *l, const char *why);

/* dicom_lease_covers: whether l's association (once it has one) was
 * proposed every context of prop, with all of its transfer syntaxes: a
 * lease asking for prop would be given it when it is returned. */
int dicom_lease_covers(const struct dicom_lease *l,
    const struct dicom_propose *prop, unsigned nprop);

/* dicom_pool_count: associations open (or opening) to peer (NULL: to
 * all peers). */
unsigned dicom_pool_count(const struct dicom_pool *p,
    const struct conf_peer *peer);

/*
 * dicom_pool_unsettled: associations to peer (by name) being opened, or
 * open and in use, on which nothing has come from the peer yet: the
 * peer may still be setting up its side (DCMTK's dcmqrscp: a process of
 * its own, which first takes its index's lock exclusively). Not counted:
 * except (an association, or NULL), and those whose lease is quiet.
 */
unsigned dicom_pool_unsettled(const struct dicom_pool *p, const char *peer,
    const struct dicom_conn *except);

/* dicom_lease_quiet: l's user will send nothing on it for now (on), or
 * may again: a quiet association is not waited for as unsettled (it
 * cannot be heard while nothing is asked on it). */
void dicom_lease_quiet(struct dicom_lease *l, int on);

/*
 * dicom_pool_close: release every idle association and, once no
 * association is left, call done(arg) (at once when none is open). The
 * leases still out are not touched: return or drop them.
 */
void dicom_pool_close(struct dicom_pool *p, void (*done)(void *),
    void *arg);
void dicom_pool_free_(struct dicom_pool *p);
#define dicom_pool_free(p) do { dicom_pool_free_(p); (p) = NULL; } while (0)

#endif
