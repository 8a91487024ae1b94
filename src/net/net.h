/*
 * net.h — listeners and connections on the reactor: accept, per-listener
 * connection limits, TCP_NODELAY, timeouts, one teardown path, and
 * deferred destruction (a connection is never freed inside its own
 * callback chain: net_conn_close() queues it and the reaper frees it on a
 * later loop turn).
 *
 * Each protocol supplies a struct net_proto_ops; the glue for DICOM, HTTP
 * and MLLP lives beside this file.
 */
#ifndef VNAMIG_NET_H
#define VNAMIG_NET_H

#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

struct conf;
struct conf_listen;
struct net_server;
struct net_conn;

struct net_proto_ops {
	const char *name;			/* "dicom", "http", "mllp" */
	/* A new connection: set up state (net_conn_set_data). -1 = close. */
	int	(*open)(struct net_conn *c);
	/* Bytes arrived in the connection's input buffer. */
	void	(*read)(struct net_conn *c, struct evbuffer *in);
	/* The daemon is draining: finish or close (net_conn_close). */
	void	(*drain)(struct net_conn *c);
	/* Free protocol state; called from the reaper only. */
	void	(*free)(struct net_conn *c);
	/* Outbound connections (net_server_connect): the transport is up
	 * (TLS handshake done too). */
	void	(*connected)(struct net_conn *c);
	/* The output buffer drained to its low-water mark (empty unless
	 * set): room for more of a streamed answer. */
	void	(*write)(struct net_conn *c);
	/* The connection is going away (why says so); called once, from
	 * net_conn_close, for either direction. */
	void	(*closed)(struct net_conn *c, const char *why);
};

/* The connection set of one daemon. Holds the config pointer it is given
 * (net_server_set_conf replaces it after a reload) and an opaque pointer
 * to the application (the daemon) for the protocol handlers. */
struct net_server *net_server_new(struct event_base *base,
    const struct conf *conf, void *app);
void *net_server_app(const struct net_server *s);
/* Whether new work (instances) may be taken now: NULL yes, else why not,
 * in words for a status comment. Unset: always yes. */
typedef const char *net_intake_fn(void *arg);
void net_server_set_intake(struct net_server *s, net_intake_fn *fn,
    void *arg);
const char *net_server_intake(const struct net_server *s);
/* Someone refused at the door (KIND: "tls_failed", "association_rejected",
 * "unauthorized"; PROTO; PEER "address:port"; WHY): told to fn, which
 * the daemon sets (an audit leaf, at most one a minute per kind and
 * address). Unset (the tools): nothing. */
typedef void net_refusal_fn(void *arg, const char *kind, const char *proto,
    const char *peer, const char *why);
void net_server_set_refusal(struct net_server *s, net_refusal_fn *fn,
    void *arg);
void net_server_refusal(const struct net_server *s, const char *kind,
    const char *proto, const char *peer, const char *why);
struct event_base *net_server_base(const struct net_server *s);
void net_server_set_conf(struct net_server *s, const struct conf *conf);
const struct conf *net_server_conf(const struct net_server *s);
void net_server_free_(struct net_server *s);
#define net_server_free(s) do { net_server_free_(s); (s) = NULL; } while (0)

/*
 * net_server_listen: bind and listen for one protocol per the listen
 * config. Returns 0, or -1 with a message in err (cap bytes).
 */
int net_server_listen(struct net_server *s, const struct conf_listen *lc,
    const struct net_proto_ops *ops, char *err, size_t cap);

/* Port actually bound by the listener for proto (0 if none). */
uint16_t net_server_port(const struct net_server *s, const char *proto);
const char *net_server_address(const struct net_server *s, const char *proto);

/*
 * net_server_resolve: look the host name up (in the background; an IP
 * address is left alone), so that net_server_host_check has an answer
 * when a peer calls. The daemon does it for every named peer at start
 * and on reload.
 * net_server_host_check: whether addr (an IP address as text) is one of
 * name's: 1 yes, 0 no, -1 not known yet (a lookup is under way), -2 the
 * name does not resolve. An answer older than 5 minutes (a failure: 30
 * seconds) is asked again in the background, and holds meanwhile.
 */
void net_server_resolve(struct net_server *s, const char *name);
int net_server_host_check(struct net_server *s, const char *name,
    const char *addr);

/*
 * net_server_connect: open an outbound connection for ops to host (an
 * IPv4 or IPv6 address, or a name looked up without blocking: evdns,
 * /etc/hosts then the resolv.conf name servers) and port, with
 * TLS when tls (an SSL_CTX *) is given; data is set before any callback.
 * ops->connected runs when it is up; a failure closes it (ops->closed
 * says why). Returns the connection, or NULL with err when it cannot
 * even be tried. timeout_ms bounds the connect (0: none).
 */
struct net_conn *net_server_connect(struct net_server *s,
    const struct net_proto_ops *ops, const char *host, uint16_t port,
    void *tls, void *data, uint64_t timeout_ms, char *err, size_t cap);

/*
 * net_client_tls: a client TLS context (TLS 1.2+, the server verified
 * against the peer's tls.ca or the system's CAs, our certificate when
 * tls.cert is set) for net_server_connect to peer; NULL with err.
 */
struct conf_peer;
void *net_client_tls(const struct conf_peer *p, char *err, size_t cap);

/*
 * net_server_wait_idle: for the command-line tools: run the loop until no
 * connection is left (a peer's association to our listener has ended),
 * at most ms; then close what remains. Returns how many were closed.
 */
unsigned net_server_wait_idle(struct net_server *s, uint64_t ms);

/* Stop accepting; ask every connection to finish (ops->drain). */
void net_server_drain(struct net_server *s);
/* Close every connection now (grace expired). Returns how many. */
unsigned net_server_close_all(struct net_server *s, const char *why);
unsigned net_server_nconns(const struct net_server *s);
/* Connections of one protocol, inbound (outbound 0) or ours (1). */
unsigned net_server_nconns_of(const struct net_server *s, const char *proto,
    int outbound);
/* Called when the connection count drops to zero while draining. */
void net_server_on_empty(struct net_server *s, void (*fn)(void *), void *arg);

/*
 * Metrics (the daemon's registry; the tools pass none): bytes per
 * connection go to vnamig_bytes_total{proto,direction,peer}, under the
 * label given by net_conn_set_label (a configured peer's name) once, or
 * "-" when the connection ends without one.
 */
struct metrics;
void net_server_set_metrics(struct net_server *s, struct metrics *m);
struct metrics *net_server_metrics(const struct net_server *s);
void net_conn_set_label(struct net_conn *c, const char *peer);

/* Time, for the timers of the network code: ms as a struct timeval; a
 * timer armed ms from now; the monotonic clock in ms. */
struct timeval net_tv_ms(uint64_t ms);
void net_timer_arm(struct event *ev, uint64_t ms);
uint64_t net_now_ms(void);

/* Per connection. */
struct bufferevent *net_conn_bev(struct net_conn *c);
/* Bytes queued for the peer, not yet written to the socket (a peer that
 * does not read makes them pile up: the protocols stop reading it). */
size_t net_conn_unsent(struct net_conn *c);
struct net_server *net_conn_server(struct net_conn *c);
uint64_t net_conn_id(const struct net_conn *c);
const char *net_conn_peer(const struct net_conn *c);	/* "addr:port" */
/* The peer's address bytes (4 or 16) and family (AF_INET/AF_INET6; 0 for
 * outbound connections). */
int net_conn_addr(const struct net_conn *c, uint8_t addr[16]);
void net_conn_set_data(struct net_conn *c, void *data);
void *net_conn_data(const struct net_conn *c);
int net_conn_draining(const struct net_conn *c);
/* Read timeout (idle/ARTIM) in ms; 0 = none. */
void net_conn_set_timeout(struct net_conn *c, uint64_t ms);

/*
 * net_conn_close: tear down now (why is logged). Safe to call from any of
 * the connection's callbacks, more than once. With flush set, pending
 * output is written first (bounded by the network timeout).
 */
void net_conn_close(struct net_conn *c, const char *why, int flush);
/* Queue DATA (drained) for sending; on a plain socket with nothing
 * queued, written at once without the bufferevent's write event. An
 * error is left for the bufferevent to find on its next write or read. */
void net_conn_send(struct net_conn *c, struct evbuffer *data);

#endif
