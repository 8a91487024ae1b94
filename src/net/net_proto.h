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

#endif
