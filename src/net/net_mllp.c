/*
 * net_mllp.c — the MLLP listener until HL7 (its own issue) is built: it
 * accepts, logs and closes without a reply. An ACK claims the message was
 * understood, so sending none is the honest answer: the sender keeps the
 * message and retries later.
 */
#include "config.h"

#include "src/net/net.h"
#include "src/net/net_proto.h"
#include "src/util/log.h"

static int
mllp_open(struct net_conn *c)
{
	log_info("mllp-refused", "conn=%llu peer=%s reason=%s",
	    (unsigned long long)net_conn_id(c), net_conn_peer(c),
	    "hl7-services-not-built");
	return -1;
}

const struct net_proto_ops net_mllp_ops = {
	.name = "mllp",
	.open = mllp_open,
};
