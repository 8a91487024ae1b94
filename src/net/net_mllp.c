/*
 * net_mllp.c — HL7 v2 over MLLP (release 1): <VT> message <FS><CR>
 * frames on the reactor, each message answered with its ACK in a frame
 * of its own once src/hl7in.c has made the message's effects durable.
 *
 * A connection pipelines: up to limits.mllp_pipeline of its messages are
 * in commit at once, so a sender that does not wait for each ACK fills a
 * group commit by itself instead of giving it one message per round. The
 * ACKs still go out in the order the messages came (MLLP has no other
 * way to say which message an ACK is for): a message answered before
 * those ahead of it (a duplicate answered from the dedup store, an AR
 * given at once, a commit that ended first) waits in the connection's
 * FIFO with a copy of its ACK. At the limit the socket is not read: the
 * sender is held back by TCP until the oldest message is answered. With
 * mllp_pipeline 1 that is one message at a time.
 *
 * A sender that shuts its sending side after its last message
 * (half-close; over TLS too, close_notify or not) still gets the ACKs of
 * all it sent: its EOF stops the reading (net_conn_set_eof), what was
 * read before it is dispatched, and the connection closes, its output
 * flushed, once the last ACK is out. A draining daemon reads nothing
 * more either and closes each connection once nothing of it is pending.
 * limits.idle_timeout counts only while no ACK is owed.
 *
 * Bytes before a start block are skipped and counted (logged per
 * connection); a frame over limits.mllp_frame is dropped with a log line
 * and the connection closed (nothing of it can be trusted to be one
 * message); a stream that ends mid-frame is logged and its bytes
 * dropped: the sender had no ACK, so it sends the message again.
 */
#include "config.h"

#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "src/daemon.h"
#include "src/hl7/hl7_mllp.h"
#include "src/hl7in.h"
#include "src/net/net.h"
#include "src/net/net_proto.h"
#include "src/util/log.h"

#define VT	0x0b
#define FS	0x1c
#define CR	0x0d

/* A message dispatched and not yet acknowledged on the wire. */
struct pend {
	STAILQ_ENTRY(pend)	 entry;
	struct net_conn		*c;
	struct hl7in_call	*call;		/* being committed */
	int			 answered;
	char			*frame;		/* its ACK framed, waiting for
						 * those ahead; NULL: none */
	size_t			 flen;
};
STAILQ_HEAD(pend_list, pend);

struct mconn {
	struct hl7_mllp		 df;		/* the frames (src/hl7) */
	struct pend_list	 pending;	/* oldest first */
	uint32_t		 npending;
	int			 in_call;	/* hl7in_message on the stack */
	int			 stopped;	/* not read: the pipeline is full */
	int			 resumed;	/* a read is on its way (resume) */
	int			 eof;		/* the peer sends nothing more */
	int			 gone;		/* closed: mllp_closed ran */
	int			 owing;		/* ACKs owed: no idle timeout */
	uint64_t		 frames;
	struct evbuffer		*scratch;	/* ACKs being framed */
	struct event		*later;		/* sends what scratch holds */
	int			 later_on;	/* ... and is active */
};

static const struct conf *
mconf(struct net_conn *c)
{
	return net_server_conf(net_conn_server(c));
}

/* Messages of one connection in commit at once (read live: a reload may
 * change it; 0 would never read again). */
static uint32_t
pipeline(struct net_conn *c)
{
	uint32_t n = mconf(c)->limits.mllp_pipeline;

	return n > 0 ? n : 1;
}

/* The idle timeout runs only while no ACK is owed: a sender waiting for
 * its ACKs is not idle, however long their commit takes. */
static void
owe(struct net_conn *c, struct mconn *m, int owing)
{
	if (m->owing == owing)
		return;
	m->owing = owing;
	net_conn_set_timeout(c, owing ? 0 : mconf(c)->limits.idle_ms);
}

static void mllp_read(struct net_conn *c, struct evbuffer *in);

/* Nothing owed: no message pending, no ACK waiting to be written. */
static int
quiet(const struct mconn *m)
{
	return m->npending == 0 && !m->later_on;
}

static int
mllp_eof(struct net_conn *c)
{
	struct mconn *m = net_conn_data(c);
	struct evbuffer *in = bufferevent_get_input(net_conn_bev(c));

	if (m == NULL)
		return 0;
	m->eof = 1;
	bufferevent_disable(net_conn_bev(c), EV_READ);
	/* a TLS bufferevent drops its write event at the EOF and arms it
	 * again only when its output was empty: ACKs queued meanwhile
	 * would never go out */
	bufferevent_enable(net_conn_bev(c), EV_WRITE);
	if (quiet(m) && evbuffer_get_length(in) == 0)
		return 0;		/* nothing owed: closed now */
	/* frames read before the EOF and not yet looked at (a resumed
	 * read still on its way) are messages too; at the limit they wait
	 * for room (resume) */
	if (!m->stopped)
		mllp_read(c, in);
	return 1;
}

static void send_later(evutil_socket_t fd, short ev, void *arg);

static int
mllp_open(struct net_conn *c)
{
	struct mconn *m = calloc(1, sizeof(*m));
	SSL *ssl = bufferevent_openssl_get_ssl(net_conn_bev(c));

	if (m == NULL || (m->scratch = evbuffer_new()) == NULL ||
	    (m->later = event_new(net_server_base(net_conn_server(c)), -1, 0,
	    send_later, c)) == NULL)
		abort();
	/* over TLS, a sender that half-closes sends a FIN without
	 * close_notify (most do): that is its EOF too, not a truncation
	 * (a frame cut short is dropped anyway), and the session must stay
	 * usable for the ACKs still owed, not end in an alert */
	if (ssl != NULL)
		SSL_set_options(ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	STAILQ_INIT(&m->pending);
	net_conn_set_data(c, m);
	net_conn_set_label(c, "-");
	net_conn_set_timeout(c, mconf(c)->limits.idle_ms);
	net_conn_set_eof(c, mllp_eof);
	return 0;
}

/* Cancel what is still being committed: its answer has nowhere to go. */
static void
cancel_all(struct mconn *m)
{
	struct pend *p;

	STAILQ_FOREACH(p, &m->pending, entry) {
		hl7in_cancel(p->call);
		p->call = NULL;
	}
}

static void
mllp_free(struct net_conn *c)
{
	struct mconn *m = net_conn_data(c);
	struct pend *p;

	if (m == NULL)
		return;
	cancel_all(m);
	while ((p = STAILQ_FIRST(&m->pending)) != NULL) {
		STAILQ_REMOVE_HEAD(&m->pending, entry);
		free(p->frame);
		free(p);
	}
	hl7_mllp_free(&m->df);
	evbuffer_free(m->scratch);
	event_free(m->later);
	free(m);
}

static void
mllp_closed(struct net_conn *c, const char *why)
{
	struct mconn *m = net_conn_data(c);

	if (m == NULL)
		return;
	if (m->df.in_frame && m->df.len > 0)
		log_warn("mllp-truncated", "conn=%llu peer=%s bytes=%zu "
		    "reason=%s action=%s", (unsigned long long)net_conn_id(c),
		    net_conn_peer(c), m->df.len, log_q(why), "dropped; no ACK "
		    "was sent, so the sender resends it");
	if (m->df.garbage > 0)
		log_info("mllp-garbage", "conn=%llu peer=%s bytes=%llu",
		    (unsigned long long)net_conn_id(c), net_conn_peer(c),
		    (unsigned long long)m->df.garbage);
	/* the entries stay until mllp_free: a dispatch may still be on
	 * the stack holding one */
	cancel_all(m);
	m->gone = 1;
}

static void
frame(struct evbuffer *out, const char *ack, size_t len)
{
	static const char end[2] = { FS, CR };
	static const char start = VT;

	evbuffer_add(out, &start, 1);
	evbuffer_add(out, ack, len);
	evbuffer_add(out, end, 2);
}

/* Send the ACKs of the oldest messages that are answered, in order, in
 * one write with what scratch holds already. */
static void
flush(struct net_conn *c, struct mconn *m)
{
	struct pend *p;

	if (m->gone)
		return;
	while ((p = STAILQ_FIRST(&m->pending)) != NULL && p->answered) {
		STAILQ_REMOVE_HEAD(&m->pending, entry);
		m->npending--;
		if (p->frame != NULL)
			evbuffer_add(m->scratch, p->frame, p->flen);
		free(p->frame);
		free(p);
	}
	if (evbuffer_get_length(m->scratch) > 0)
		net_conn_send(c, m->scratch);
	if (m->npending == 0)
		owe(c, m, 0);
}

/* acks_unread: the sender left limits.unread_answers of ACKs unread: it
 * is not read until they are out (one that never reads them made us hold
 * them all). */
static int
acks_unread(struct net_conn *c)
{
	return net_conn_unsent(c) >= mconf(c)->limits.unread_answers;
}

/*
 * The oldest messages were answered and their ACKs sent: a connection
 * that takes nothing more (draining, or its sender is done) closes once
 * nothing is pending; one stopped at the limit reads again.
 */
static void
resume(struct net_conn *c, struct mconn *m)
{
	if (net_conn_draining(c)) {
		if (m->npending == 0)
			net_conn_close(c, "shutting down", 1);
		return;
	}
	if (m->stopped && m->npending < pipeline(c) && !acks_unread(c)) {
		/* read what waited meanwhile; after an EOF only what is
		 * buffered (mllp_read closes once it is all answered) */
		m->stopped = 0;
		m->resumed = 1;
		if (!m->eof)
			bufferevent_enable(net_conn_bev(c), EV_READ);
		bufferevent_trigger(net_conn_bev(c), EV_READ,
		    BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
		return;
	}
	/* with a read on its way, frames may still wait in the input */
	if (m->eof && m->npending == 0 && !m->resumed)
		net_conn_close(c, "closed by peer", 1);
}

static void
answered(void *arg, const char *ack, size_t len, const char *code)
{
	struct pend *p = arg;
	struct net_conn *c = p->c;
	struct mconn *m = net_conn_data(c);

	(void)code;
	p->call = NULL;
	p->answered = 1;
	if (m->in_call || p != STAILQ_FIRST(&m->pending)) {
		/* sent later (after those ahead of it, or by dispatch once
		 * hl7in_message is back): ack is valid only until we return */
		if (ack != NULL) {
			size_t n = len + 3;

			if ((p->frame = malloc(n)) == NULL)
				abort();
			p->frame[0] = VT;
			memcpy(p->frame + 1, ack, len);
			p->frame[n - 2] = FS;
			p->frame[n - 1] = CR;
			p->flen = n;
		}
		return;
	}
	/* the oldest: out once the commit has answered all it holds,
	 * with those answered meanwhile behind it: a group commit ends
	 * many of a pipelining sender's messages at once, and their ACKs
	 * then go in one write, not a write each */
	STAILQ_REMOVE_HEAD(&m->pending, entry);
	m->npending--;
	free(p);
	if (ack != NULL)
		frame(m->scratch, ack, len);
	if (!m->later_on) {
		m->later_on = 1;
		event_active(m->later, 0, 0);
	}
}

static void
send_later(evutil_socket_t fd, short ev, void *arg)
{
	struct net_conn *c = arg;
	struct mconn *m = net_conn_data(c);

	(void)fd;
	(void)ev;
	m->later_on = 0;
	if (m->gone)
		return;
	flush(c, m);
	resume(c, m);
}

/* A whole frame: hand it over, its ACK queued in arrival order. */
static void
dispatch(struct net_conn *c, struct mconn *m)
{
	struct hl7in *h = daemon_hl7in(net_server_app(net_conn_server(c)));
	struct hl7in_call *call;
	struct pend *p = calloc(1, sizeof(*p));

	if (p == NULL)
		abort();
	p->c = c;
	STAILQ_INSERT_TAIL(&m->pending, p, entry);
	m->npending++;
	owe(c, m, 1);
	m->frames++;
	m->in_call = 1;
	call = hl7in_message(h, m->df.msg, m->df.len, net_conn_peer(c),
	    "mllp", answered, p);
	m->in_call = 0;
	if (!p->answered) {
		if (call == NULL)
			p->answered = 1;	/* no answer will come */
		else if (m->gone)
			hl7in_cancel(call);	/* closed meanwhile */
		else
			p->call = call;
	}
	/* answered at once (a duplicate, a refusal): out now if it is
	 * the oldest */
	flush(c, m);
}

static void
mllp_read(struct net_conn *c, struct evbuffer *in)
{
	struct mconn *m = net_conn_data(c);
	uint64_t max = mconf(c)->limits.mllp_frame;
	uint32_t limit = pipeline(c);

	m->resumed = 0;
	m->df.max = max;	/* (a live key) */
	while (!m->gone && !net_conn_draining(c) && m->npending < limit &&
	    !acks_unread(c) && evbuffer_get_length(in) > 0) {
		size_t n = evbuffer_get_length(in), used;
		unsigned char *p = evbuffer_pullup(in, (ssize_t)n);
		uint64_t dropped;
		enum hl7_mllp_step st = hl7_mllp_step(&m->df, p, n, &used,
		    &dropped);

		switch (st) {
		case HL7_MLLP_TOO_LARGE:
			log_warn("mllp-frame-too-large", "conn=%llu peer=%s "
			    "limit=%llu action=%s",
			    (unsigned long long)net_conn_id(c),
			    net_conn_peer(c), (unsigned long long)max,
			    "closed; raise limits.mllp_frame or split the "
			    "message");
			net_conn_close(c, "MLLP frame over limits.mllp_frame",
			    1);
			return;
		case HL7_MLLP_RESTARTED:
			/* the frame before it was cut short (a sender that
			 * gave up on it and began again): dropped,
			 * unanswered (taken as data, it merged two
			 * messages, and the second was never answered) */
			log_warn("mllp-frame-restarted", "conn=%llu peer=%s "
			    "dropped_bytes=%llu detail=%s",
			    (unsigned long long)net_conn_id(c),
			    net_conn_peer(c), (unsigned long long)dropped,
			    log_q("a start byte (0x0B) inside a frame: the "
			    "frame before it is dropped, unanswered"));
			break;
		case HL7_MLLP_FRAME_NO_CR:
			log_info("mllp-bad-trailer", "conn=%llu peer=%s "
			    "detail=%s", (unsigned long long)net_conn_id(c),
			    net_conn_peer(c), "FS not followed by CR; taken "
			    "as the end of the message");
			break;
		default:
			break;
		}
		evbuffer_drain(in, used);
		if (st == HL7_MLLP_NEED)
			break;
		if (st == HL7_MLLP_FRAME || st == HL7_MLLP_FRAME_NO_CR)
			dispatch(c, m);
	}
	if (m->gone || net_conn_draining(c))
		return;
	if (m->npending >= limit || acks_unread(c)) {
		/* full: TCP holds the sender back until the oldest is
		 * answered, or its ACKs are read (resume) */
		if (!m->stopped) {
			m->stopped = 1;
			bufferevent_disable(net_conn_bev(c), EV_READ);
		}
	} else if (m->eof && quiet(m))
		net_conn_close(c, "closed by peer", 1);
}

static void
mllp_drain(struct net_conn *c)
{
	struct mconn *m = net_conn_data(c);

	if (quiet(m)) {
		net_conn_close(c, "shutting down", 1);
		return;
	}
	/* nothing new is taken; resume closes once the last is answered */
	bufferevent_disable(net_conn_bev(c), EV_READ);
}

/* mllp_write: its ACKs all out: one stopped for them reads again. */
static void
mllp_write(struct net_conn *c)
{
	struct mconn *m = net_conn_data(c);

	if (m != NULL && m->stopped && !m->gone)
		resume(c, m);
}

const struct net_proto_ops net_mllp_ops = {
	.name = "mllp",
	.open = mllp_open,
	.read = mllp_read,
	.write = mllp_write,
	.drain = mllp_drain,
	.closed = mllp_closed,
	.free = mllp_free,
};
