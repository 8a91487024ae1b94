/*
 * net_mllp.c — HL7 v2 over MLLP (release 1): <VT> message <FS><CR>
 * frames on the reactor, one message at a time per connection, each
 * answered with its ACK in a frame of its own once src/hl7in.c has made
 * the message's effects durable.
 *
 * Bytes before a start block are skipped and counted (logged per
 * connection); a frame over limits.mllp_frame is dropped with a log line
 * and the connection closed (nothing of it can be trusted to be one
 * message); a stream that ends mid-frame is logged and its bytes
 * dropped: the sender had no ACK, so it sends the message again. While a
 * message is being committed the socket is not read: a sender that does
 * not wait for its ACKs is held back by TCP.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "conf/conf.h"
#include "src/daemon.h"
#include "src/hl7in.h"
#include "src/net/net.h"
#include "src/net/net_proto.h"
#include "src/util/log.h"

#define VT	0x0b
#define FS	0x1c
#define CR	0x0d

struct mconn {
	char			*msg;		/* the frame's bytes so far */
	size_t			 len, cap;
	int			 in_frame;
	uint64_t		 garbage;	/* bytes outside frames */
	struct hl7in_call	*cur;		/* being committed */
	int			 in_call;	/* hl7in_message on the stack */
	int			 answered;	/* ... and it answered already */
	uint64_t		 frames;
	struct evbuffer		*scratch;	/* an ACK being framed */
};

static const struct conf *
mconf(struct net_conn *c)
{
	return net_server_conf(net_conn_server(c));
}

static int
mllp_open(struct net_conn *c)
{
	struct mconn *m = calloc(1, sizeof(*m));

	if (m == NULL || (m->scratch = evbuffer_new()) == NULL)
		abort();
	net_conn_set_data(c, m);
	net_conn_set_label(c, "-");
	net_conn_set_timeout(c, mconf(c)->limits.idle_ms);
	return 0;
}

static void
mllp_free(struct net_conn *c)
{
	struct mconn *m = net_conn_data(c);

	if (m == NULL)
		return;
	hl7in_cancel(m->cur);
	free(m->msg);
	evbuffer_free(m->scratch);
	free(m);
}

static void
mllp_closed(struct net_conn *c, const char *why)
{
	struct mconn *m = net_conn_data(c);

	if (m == NULL)
		return;
	if (m->in_frame && m->len > 0)
		log_warn("mllp-truncated", "conn=%llu peer=%s bytes=%zu "
		    "reason=%s action=%s", (unsigned long long)net_conn_id(c),
		    net_conn_peer(c), m->len, log_q(why), "dropped; no ACK "
		    "was sent, so the sender resends it");
	if (m->garbage > 0)
		log_info("mllp-garbage", "conn=%llu peer=%s bytes=%llu",
		    (unsigned long long)net_conn_id(c), net_conn_peer(c),
		    (unsigned long long)m->garbage);
	hl7in_cancel(m->cur);
	m->cur = NULL;
}

static void mllp_read(struct net_conn *c, struct evbuffer *in);

static void
answered(void *arg, const char *ack, size_t len, const char *code)
{
	struct net_conn *c = arg;
	struct mconn *m = net_conn_data(c);
	struct evbuffer *out = m->scratch;

	(void)code;
	m->cur = NULL;
	if (ack != NULL) {
		static const char end[2] = { FS, CR };
		static const char start = VT;

		evbuffer_add(out, &start, 1);
		evbuffer_add(out, ack, len);
		evbuffer_add(out, end, 2);
		net_conn_send(c, out);
	}
	if (m->in_call) {
		m->answered = 1;
		return;
	}
	if (net_conn_draining(c)) {
		net_conn_close(c, "shutting down", 1);
		return;
	}
	/* answered after a commit: read what waited meanwhile */
	bufferevent_enable(net_conn_bev(c), EV_READ);
	bufferevent_trigger(net_conn_bev(c), EV_READ,
	    BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
}

/* A whole frame: hand it over. 1 when the answer is pending. */
static int
dispatch(struct net_conn *c, struct mconn *m)
{
	struct hl7in *h = daemon_hl7in(net_server_app(net_conn_server(c)));
	struct hl7in_call *call;

	m->frames++;
	m->in_call = 1;
	m->answered = 0;
	call = hl7in_message(h, m->msg, m->len, net_conn_peer(c), "mllp",
	    answered, c);
	m->in_call = 0;
	m->len = 0;
	if (m->answered || call == NULL)
		return 0;
	/* not read meanwhile: an EOF seen now would end the connection
	 * before its ACK (a sender that half-closed after its message) */
	m->cur = call;
	bufferevent_disable(net_conn_bev(c), EV_READ);
	return 1;
}

static void
mllp_read(struct net_conn *c, struct evbuffer *in)
{
	struct mconn *m = net_conn_data(c);
	uint64_t max = mconf(c)->limits.mllp_frame;

	while (m->cur == NULL && evbuffer_get_length(in) > 0) {
		size_t n = evbuffer_get_length(in);
		unsigned char *p = evbuffer_pullup(in, (ssize_t)n);
		size_t i = 0;

		if (!m->in_frame) {
			while (i < n && p[i] != VT)
				i++;
			m->garbage += i;
			if (i == n) {
				evbuffer_drain(in, n);
				return;
			}
			evbuffer_drain(in, i + 1);
			m->in_frame = 1;
			m->len = 0;
			continue;
		}
		while (i < n && p[i] != FS)
			i++;
		if (m->len + i > max) {
			log_warn("mllp-frame-too-large", "conn=%llu peer=%s "
			    "limit=%llu action=%s",
			    (unsigned long long)net_conn_id(c),
			    net_conn_peer(c), (unsigned long long)max,
			    "closed; raise limits.mllp_frame or split the "
			    "message");
			m->in_frame = 0;
			m->len = 0;
			net_conn_close(c, "MLLP frame over limits.mllp_frame",
			    1);
			return;
		}
		if (m->len + i > m->cap) {
			size_t cap = m->cap ? m->cap : 4096;
			char *nm;

			while (cap < m->len + i)
				cap *= 2;
			if ((nm = realloc(m->msg, cap)) == NULL)
				abort();
			m->msg = nm;
			m->cap = cap;
		}
		memcpy(m->msg + m->len, p, i);
		m->len += i;
		if (i == n) {
			evbuffer_drain(in, n);
			return;
		}
		/* <FS> found: the <CR> after it ends the frame */
		if (i + 1 >= n) {
			evbuffer_drain(in, i);	/* keep the FS for later */
			return;
		}
		if (p[i + 1] != CR)
			log_info("mllp-bad-trailer", "conn=%llu peer=%s "
			    "detail=%s", (unsigned long long)net_conn_id(c),
			    net_conn_peer(c), "FS not followed by CR; taken "
			    "as the end of the message");
		evbuffer_drain(in, p[i + 1] == CR ? i + 2 : i + 1);
		m->in_frame = 0;
		if (dispatch(c, m))
			return;
	}
}

static void
mllp_drain(struct net_conn *c)
{
	struct mconn *m = net_conn_data(c);

	if (m->cur == NULL)
		net_conn_close(c, "shutting down", 1);
}

const struct net_proto_ops net_mllp_ops = {
	.name = "mllp",
	.open = mllp_open,
	.read = mllp_read,
	.drain = mllp_drain,
	.closed = mllp_closed,
	.free = mllp_free,
};
