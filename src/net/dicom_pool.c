/*
 * dicom_pool.c — outbound associations leased, returned and reused within
 * the per-peer and overall limits (dicom_pool.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "src/net/dicom_pool.h"
#include "src/net/net.h"
#include "src/util/log.h"

enum pc_state { PC_OPENING, PC_LEASED, PC_IDLE, PC_CLOSING };

/* One association of the pool. Its proposal is its own copy (strings
 * included): the next leases are matched against it. */
struct pconn {
	struct pconn		*next;
	struct dicom_pool	*pool;		/* NULL once the pool is gone */
	struct dicom_conn	*dc;
	char			 peer[65];
	struct dicom_propose	*prop;
	char			*strs;		/* prop's strings */
	unsigned		 nprop;
	enum pc_state		 st;
	struct dicom_lease	*lease;
	struct event		*idle;
	unsigned		 uses;
	int			 heard;		/* a message came on it */
};

struct dicom_lease {
	struct dicom_lease		*next;		/* in the queue */
	struct dicom_pool		*pool;
	char				 peer[65];
	struct dicom_propose		*prop;
	unsigned			 nprop;
	const struct dicom_lease_user	*u;
	void				*arg;
	struct pconn			*pc;
	int				 waiting;
	int				 quiet;	/* dicom_lease_quiet */
};

/* Per peer: associations open and the most at once; its TLS context. */
struct pstat {
	struct pstat	*next;
	char		 peer[65];
	unsigned	 open;
	SSL_CTX		*tls;
};

struct dicom_pool {
	struct net_server	*s;
	struct pconn		*conns;
	struct dicom_lease	*qhead, **qtail;
	struct pstat		*stats;
	unsigned		 open;
	int			 serving, again;
	struct event		*kick;		/* a deferred serve() */
	int			 closing;
	void			(*close_done)(void *);
	void			*close_arg;
};

static void serve(struct dicom_pool *p);

/* Serving runs from the loop, never inside a caller's call into the
 * pool: a lease's user always has its lease before hearing of it. */
static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	serve(arg);
}

static void
kick(struct dicom_pool *p)
{
	event_active(p->kick, EV_TIMEOUT, 0);
}

static struct pstat *
stat_for(struct dicom_pool *p, const char *peer)
{
	struct pstat *st;

	for (st = p->stats; st != NULL; st = st->next)
		if (strcmp(st->peer, peer) == 0)
			return st;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		abort();
	snprintf(st->peer, sizeof(st->peer), "%s", peer);
	st->next = p->stats;
	p->stats = st;
	return st;
}

/* pconf: the configuration in force (a reload replaces it: never kept) */
static const struct conf *
pconf(const struct dicom_pool *p)
{
	return net_server_conf(p->s);
}

static const struct conf_peer *
peer_conf(const struct dicom_pool *p, const char *name)
{
	for (size_t i = 0; i < pconf(p)->npeers; i++)
		if (strcmp(pconf(p)->peers[i].name, name) == 0)
			return &pconf(p)->peers[i];
	return NULL;
}

struct dicom_pool *
dicom_pool_new(struct net_server *s, const struct conf *conf)
{
	struct dicom_pool *p = calloc(1, sizeof(*p));

	if (p == NULL)
		abort();
	p->s = s;
	(void)conf;	/* read from s at each use: it follows reloads */
	p->qtail = &p->qhead;
	if ((p->kick = event_new(net_server_base(s), -1, 0, on_kick, p)) ==
	    NULL)
		abort();
	return p;
}

/* ---- proposals ---- */

/* prop_copy: a copy of prop; with strs, the strings too, in one block
 * (*strs, for free). */
static struct dicom_propose *
prop_copy(const struct dicom_propose *prop, unsigned n, char **strs)
{
	struct dicom_propose *c = calloc(n ? n : 1, sizeof(*c));
	size_t total = 0;
	char *b;

	if (c == NULL)
		abort();
	memcpy(c, prop, n * sizeof(*c));
	if (strs == NULL)
		return c;
	for (unsigned i = 0; i < n; i++) {
		total += strlen(prop[i].abstract) + 1;
		for (unsigned k = 0; k < prop[i].nts; k++)
			total += strlen(prop[i].ts[k]) + 1;
	}
	if ((b = *strs = malloc(total + 1)) == NULL)
		abort();
	for (unsigned i = 0; i < n; i++) {
		c[i].abstract = strcpy(b, prop[i].abstract);
		b += strlen(b) + 1;
		for (unsigned k = 0; k < prop[i].nts; k++) {
			c[i].ts[k] = strcpy(b, prop[i].ts[k]);
			b += strlen(b) + 1;
		}
	}
	return c;
}

/* covers: every context the lease needs was proposed on pc (so the peer
 * answered it as it would on a new association). */
static int
covers_prop(const struct pconn *pc, const struct dicom_propose *prop,
    unsigned nprop)
{
	for (unsigned i = 0; i < nprop; i++) {
		const struct dicom_propose *w = &prop[i];
		int found = 0;

		for (unsigned j = 0; j < pc->nprop && !found; j++) {
			const struct dicom_propose *h = &pc->prop[j];
			unsigned k;

			if (strcmp(h->abstract, w->abstract) != 0 ||
			    (w->scp_role && !h->scp_role))
				continue;
			for (k = 0; k < w->nts; k++) {
				unsigned m;

				for (m = 0; m < h->nts; m++)
					if (strcmp(h->ts[m], w->ts[k]) == 0)
						break;
				if (m == h->nts)
					break;
			}
			found = k == w->nts;
		}
		if (!found)
			return 0;
	}
	return 1;
}

static int
covers(const struct pconn *pc, const struct dicom_lease *l)
{
	return covers_prop(pc, l->prop, l->nprop);
}

/* ---- the associations ---- */

static void
pc_unlink_free(struct pconn *pc)
{
	struct dicom_pool *p = pc->pool;

	if (p != NULL) {
		for (struct pconn **q = &p->conns; *q != NULL; q = &(*q)->next)
			if (*q == pc) {
				*q = pc->next;
				break;
			}
		stat_for(p, pc->peer)->open--;
		p->open--;
	}
	if (pc->idle != NULL)
		event_free(pc->idle);
	free(pc->prop);
	free(pc->strs);
	free(pc);
}

static void
lease_free(struct dicom_lease *l)
{
	free(l->prop);
	free(l);
}

static void
on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct pconn *pc = arg;

	(void)fd;
	(void)what;
	if (pc->st != PC_IDLE)
		return;
	log_info("pool-release", "peer=%s uses=%u why=\"idle for "
	    "limits.idle_timeout\"", pc->peer, pc->uses);
	pc->st = PC_CLOSING;
	dicom_release(pc->dc);
}

static void
pc_idle(struct pconn *pc)
{
	pc->st = PC_IDLE;
	pc->lease = NULL;
	if (pc->pool->closing) {
		pc->st = PC_CLOSING;
		dicom_release(pc->dc);
		return;
	}
	net_timer_arm(pc->idle, pconf(pc->pool)->limits.idle_ms);
}

/* give: pc (established, not leased) to l. */
static void
give(struct pconn *pc, struct dicom_lease *l)
{
	evtimer_del(pc->idle);
	pc->st = PC_LEASED;
	pc->lease = l;
	pc->uses++;
	l->pc = pc;
	l->u->ready(l, pc->dc, l->arg);
}

static void
on_established(struct dicom_conn *dc, void *arg)
{
	struct pconn *pc = arg;

	pc->dc = dc;
	if (pc->lease != NULL)
		give(pc, pc->lease);
	else if (pc->pool != NULL) {
		/* its lease went away while it opened (a study's early send
		 * ended with its retrieve): another may wait for it, and
		 * nothing else wakes the queue. Without this the send proper
		 * of that study waited until the peer dropped the idle
		 * association (dcmqrscp: after 60 s). */
		pc_idle(pc);
		kick(pc->pool);
	}
}

static void
on_message(struct dicom_conn *dc, void *arg, enum dimse_asm_result r,
    const struct dimse_asm_event *ev)
{
	struct pconn *pc = arg;

	(void)dc;
	pc->heard = 1;
	if (pc->lease != NULL && pc->st == PC_LEASED)
		pc->lease->u->message(pc->lease, pc->lease->arg, r, ev);
	else
		log_warn("pool-unexpected", "peer=%s command=%s why=\"a "
		    "response on an association nobody is using\"", pc->peer,
		    dimse_cmd_name(ev->cmd->command));
}

static void
on_ended(struct dicom_conn *dc, void *arg, int ok, const char *why)
{
	struct pconn *pc = arg;
	struct dicom_pool *p = pc->pool;
	struct dicom_lease *l = pc->lease;

	(void)dc;
	(void)ok;
	if (pc->st == PC_IDLE)
		log_info("pool-dropped", "peer=%s uses=%u why=%s", pc->peer,
		    pc->uses, log_q(why));
	pc_unlink_free(pc);
	if (l != NULL) {
		l->pc = NULL;
		l->u->failed(l, l->arg, why);
		lease_free(l);
	}
	if (p == NULL)
		return;
	if (p->closing && p->conns == NULL && p->close_done != NULL) {
		void (*done)(void *) = p->close_done;

		p->close_done = NULL;
		done(p->close_arg);
		return;
	}
	kick(p);
}

static const struct dicom_user pool_user = {
	.established = on_established,
	.message = on_message,
	.ended = on_ended,
};

/* open_for: a new association for l (the limits were checked). 0, or -1
 * when it could not even be tried (l has been failed). */
static int
open_for(struct dicom_pool *p, struct dicom_lease *l,
    const struct conf_peer *peer)
{
	struct pstat *st = stat_for(p, peer->name);
	struct dicom_conn *dc;
	struct pconn *pc;
	char err[256];

	if (peer->tls.enabled && st->tls == NULL &&
	    (st->tls = net_client_tls(peer, err, sizeof(err))) == NULL) {
		l->u->failed(l, l->arg, err);
		lease_free(l);
		return -1;
	}
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		abort();
	pc->pool = p;
	snprintf(pc->peer, sizeof(pc->peer), "%s", peer->name);
	pc->prop = prop_copy(l->prop, l->nprop, &pc->strs);
	pc->nprop = l->nprop;
	pc->st = PC_OPENING;
	pc->lease = l;
	l->pc = pc;
	if ((pc->idle = evtimer_new(net_server_base(p->s), on_idle, pc)) ==
	    NULL)
		abort();
	pc->next = p->conns;
	p->conns = pc;
	st->open++;
	p->open++;
	dc = dicom_connect(p->s, pconf(p), peer, pc->prop, pc->nprop,
	    peer->tls.enabled ? st->tls : NULL, &pool_user, pc, err,
	    sizeof(err));
	if (dc == NULL) {
		l->pc = NULL;
		pc_unlink_free(pc);
		l->u->failed(l, l->arg, err);
		lease_free(l);
		return -1;
	}
	pc->dc = dc;
	return 0;
}

/* ---- serving the queue ---- */

static void
dequeue(struct dicom_pool *p, struct dicom_lease *l)
{
	for (struct dicom_lease **q = &p->qhead; *q != NULL; q = &(*q)->next)
		if (*q == l) {
			*q = l->next;
			if (p->qtail == &l->next)
				p->qtail = q;
			break;
		}
	l->next = NULL;
	l->waiting = 0;
}

/* serve_one: try to serve l. 1 when it left the queue. */
static int
serve_one(struct dicom_pool *p, struct dicom_lease *l)
{
	const struct conf_peer *peer = peer_conf(p, l->peer);
	struct pconn *pc, *spare = NULL;

	if (peer == NULL) {
		dequeue(p, l);
		l->u->failed(l, l->arg, "the peer is no longer configured");
		lease_free(l);
		return 1;
	}
	for (pc = p->conns; pc != NULL; pc = pc->next) {
		if (pc->st != PC_IDLE)
			continue;
		if (strcmp(pc->peer, l->peer) == 0 && covers(pc, l)) {
			dequeue(p, l);
			give(pc, l);
			return 1;
		}
		if (spare == NULL || strcmp(pc->peer, l->peer) == 0)
			spare = pc;
	}
	if (stat_for(p, l->peer)->open < peer->max_associations &&
	    p->open < pconf(p)->limits.associations_out) {
		/* An idle association to the same peer that cannot serve
		 * this lease goes first: a peer that serves one association
		 * at a time (storescp without --fork) would otherwise never
		 * answer the new one while it waits for the idle one. */
		if (spare != NULL && strcmp(spare->peer, l->peer) == 0) {
			log_info("pool-release", "peer=%s uses=%u why=\"room "
			    "for an association with other contexts\"",
			    spare->peer, spare->uses);
			spare->st = PC_CLOSING;
			evtimer_del(spare->idle);
			dicom_release(spare->dc);
		}
		dequeue(p, l);
		open_for(p, l, peer);
		return 1;
	}
	/* At a limit: an idle association that cannot serve this lease
	 * (one of the peer's when at its limit, any when at the overall
	 * one) makes room when released. */
	if (spare != NULL && (strcmp(spare->peer, l->peer) == 0 ||
	    p->open >= pconf(p)->limits.associations_out)) {
		log_info("pool-release", "peer=%s uses=%u why=\"room for an "
		    "association with other contexts\"", spare->peer,
		    spare->uses);
		spare->st = PC_CLOSING;
		evtimer_del(spare->idle);
		dicom_release(spare->dc);
	}
	return 0;
}

static void
serve(struct dicom_pool *p)
{
	if (p->serving) {
		p->again = 1;
		return;
	}
	p->serving = 1;
	do {
		struct dicom_lease *l, *next;

		p->again = 0;
		for (l = p->qhead; l != NULL; l = next) {
			next = l->next;
			if (serve_one(p, l)) {
				p->again = 1;	/* the queue changed */
				break;
			}
		}
	} while (p->again);
	p->serving = 0;
}

struct dicom_lease *
dicom_pool_lease(struct dicom_pool *p, const struct conf_peer *peer,
    const struct dicom_propose *prop, unsigned nprop,
    const struct dicom_lease_user *u, void *arg, char *err, size_t cap)
{
	struct dicom_lease *l;

	if (nprop == 0 || nprop > DICOM_MAX_PCTX) {
		snprintf(err, cap, "%u presentation contexts (1-%d)", nprop,
		    DICOM_MAX_PCTX);
		return NULL;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL)
		abort();
	l->pool = p;
	snprintf(l->peer, sizeof(l->peer), "%s", peer->name);
	l->prop = prop_copy(prop, nprop, NULL);
	l->nprop = nprop;
	l->u = u;
	l->arg = arg;
	l->waiting = 1;
	*p->qtail = l;
	p->qtail = &l->next;
	kick(p);
	return l;
}

/* lease_detach: take l off the queue or its association; the latter is
 * returned. */
static struct pconn *
lease_detach(struct dicom_lease *l)
{
	struct pconn *pc = l->pc;

	if (l->waiting)
		dequeue(l->pool, l);
	if (pc != NULL)
		pc->lease = NULL;
	return pc;
}

void
dicom_lease_return(struct dicom_lease *l)
{
	struct dicom_pool *p = l->pool;
	struct pconn *pc = lease_detach(l);

	if (pc != NULL && pc->st == PC_LEASED)
		pc_idle(pc);
	lease_free(l);
	kick(p);
}

void
dicom_lease_drop(struct dicom_lease *l, const char *why)
{
	struct pconn *pc = lease_detach(l);

	if (pc != NULL && (pc->st == PC_LEASED || pc->st == PC_OPENING)) {
		pc->st = PC_CLOSING;
		if (pc->dc != NULL)
			dicom_abort(pc->dc, why);
	}
	lease_free(l);
}

int
dicom_lease_covers(const struct dicom_lease *l,
    const struct dicom_propose *prop, unsigned nprop)
{
	return l->pc != NULL && covers_prop(l->pc, prop, nprop);
}

unsigned
dicom_pool_count(const struct dicom_pool *p, const struct conf_peer *peer)
{
	if (peer == NULL)
		return p->open;
	for (const struct pstat *st = p->stats; st != NULL; st = st->next)
		if (strcmp(st->peer, peer->name) == 0)
			return st->open;
	return 0;
}

unsigned
dicom_pool_unsettled(const struct dicom_pool *p, const char *peer,
    const struct dicom_conn *except)
{
	unsigned n = 0;

	for (const struct pconn *pc = p->conns; pc != NULL; pc = pc->next)
		if ((pc->st == PC_OPENING || pc->st == PC_LEASED) &&
		    !pc->heard && (pc->lease == NULL || !pc->lease->quiet) &&
		    (except == NULL || pc->dc != except) &&
		    strcmp(pc->peer, peer) == 0)
			n++;
	return n;
}

void
dicom_lease_quiet(struct dicom_lease *l, int on)
{
	l->quiet = on;
}

void
dicom_pool_close(struct dicom_pool *p, void (*done)(void *), void *arg)
{
	p->closing = 1;
	p->close_done = done;
	p->close_arg = arg;
	for (struct pconn *pc = p->conns; pc != NULL; pc = pc->next)
		if (pc->st == PC_IDLE) {
			pc->st = PC_CLOSING;
			evtimer_del(pc->idle);
			dicom_release(pc->dc);
		}
	if (p->conns == NULL && p->close_done != NULL) {
		p->close_done = NULL;
		done(arg);
	}
}

void
dicom_pool_free_(struct dicom_pool *p)
{
	struct pstat *st, *nst;

	if (p == NULL)
		return;
	/* associations still open outlive the pool until they end */
	for (struct pconn *pc = p->conns, *n; pc != NULL; pc = n) {
		n = pc->next;
		pc->pool = NULL;
		pc->lease = NULL;
		evtimer_del(pc->idle);
		if (pc->dc != NULL && pc->st != PC_CLOSING)
			dicom_abort(pc->dc, "the pool is closed");
	}
	while (p->qhead != NULL) {
		struct dicom_lease *l = p->qhead;

		p->qhead = l->next;
		lease_free(l);
	}
	for (st = p->stats; st != NULL; st = nst) {
		nst = st->next;
		SSL_CTX_free(st->tls);
		free(st);
	}
	event_free(p->kick);
	free(p);
}
