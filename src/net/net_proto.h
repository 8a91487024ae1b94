/*
 * net_proto.h — the protocol handlers the daemon binds to its listeners.
 */
#ifndef VNAMIG_NET_PROTO_H
#define VNAMIG_NET_PROTO_H

#include "src/net/net.h"

struct daemon;

extern const struct net_proto_ops net_dicom_ops;
extern const struct net_proto_ops net_http_ops;
extern const struct net_proto_ops net_mllp_ops;

/*
 * net_conn_set_eof: for a protocol that may still owe its peer answers
 * when the peer stops sending (MLLP: the ACKs of pipelined messages, to
 * a sender that shut its sending side after the last one). On a clean
 * EOF of an open connection (no error, no timeout) fn runs instead of
 * the close: it returns 1 when it takes over (reading stopped; it closes
 * the connection itself, net_conn_close(c, why, 1), once its answers are
 * out), 0 to have it closed now. Unset (NULL, the default): closed now,
 * output flushed.
 */
typedef int net_eof_fn(struct net_conn *c);
void net_conn_set_eof(struct net_conn *c, net_eof_fn *fn);

#endif
