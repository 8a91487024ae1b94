/*
 * net_dicom.c — the DICOM listener until the Upper Layer (issue: DICOM
 * networking) is built: it answers an A-ASSOCIATE-RQ with an honest
 * A-ASSOCIATE-RJ (rejected-permanent, service-user, no-reason-given,
 * PS3.8 9.3.4) and anything else with an A-ABORT (service-provider,
 * PS3.8 9.3.8), then closes. The peer sees a clear refusal, never a fake
 * acceptance. ARTIM bounds how long a silent connection may stay.
 */
#include "config.h"

#include <stdint.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "conf/conf.h"
#include "src/net/net.h"
#include "src/net/net_proto.h"
#include "src/util/log.h"

static int
dicom_open(struct net_conn *c)
{
	net_conn_set_timeout(c,
	    net_server_conf(net_conn_server(c))->limits.artim_ms);
	return 0;
}

static void
dicom_read(struct net_conn *c, struct evbuffer *in)
{
	/* A-ASSOCIATE-RJ: type 3, reserved, length 4, reserved, result 1,
	 * source 1, reason 1. A-ABORT: type 7, length 4, reserved x2,
	 * source 2 (service-provider), reason 1 unrecognized / 2
	 * unexpected PDU. */
	uint8_t rj[10] = { 0x03, 0, 0, 0, 0, 4, 0, 1, 1, 1 };
	uint8_t ab[10] = { 0x07, 0, 0, 0, 0, 4, 0, 0, 2, 2 };
	uint8_t type;

	if (evbuffer_copyout(in, &type, 1) < 1)
		return;
	evbuffer_drain(in, evbuffer_get_length(in));
	if (type == 0x01) {
		log_info("assoc-rejected", "conn=%llu peer=%s reason=%s",
		    (unsigned long long)net_conn_id(c), net_conn_peer(c),
		    "dicom-services-not-built");
		bufferevent_write(net_conn_bev(c), rj, sizeof(rj));
	} else {
		if (type < 0x01 || type > 0x07)
			ab[9] = 1;
		log_warn("assoc-aborted", "conn=%llu peer=%s pdu_type=0x%02x "
		    "reason=%s", (unsigned long long)net_conn_id(c),
		    net_conn_peer(c), type, ab[9] == 1 ? "unrecognized-pdu" :
		    "unexpected-pdu");
		bufferevent_write(net_conn_bev(c), ab, sizeof(ab));
	}
	net_conn_close(c, "answered", 1);
}

const struct net_proto_ops net_dicom_ops = {
	.name = "dicom",
	.open = dicom_open,
	.read = dicom_read,
};
