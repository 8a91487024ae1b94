/*
 * hc-fetch — drives src/net/http_client for t/httpc.t: makes calls on a
 * loop of its own and prints what each came to, one line per call:
 *
 *   CALL_NO err=ok status=200 attempts=1 body=11 retry_after=0 error="..."
 *
 * and at the end "conns=N queued=N" (the client's own counts, after
 * every call ended; idle kept-alive connections included).
 *
 *   hc-fetch [-X METHOD] [-d BODY] [-H "Name: value"]... [-c CA]
 *	[-a ATTEMPTS] [-t TIMEOUT_MS] [-T CONNECT_MS] [-b MIN_MS] [-B MAX_MS]
 *	[-s (retry safe)] [-n CALLS one after another] [-p CALLS at once]
 *	[-P MAX_PER_HOST] [-q MAX_QUEUE] [-r MAX_RESPONSE] [-l LOG_LEVEL] URL
 *
 * A call the client refuses at once prints "CALL_NO refused error=...".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "src/net/http_client.h"
#include "src/net/net.h"
#include "src/util/log.h"

static struct http_client *hc;
static struct http_client_req rq;
static struct event_base *base;
static unsigned calls, made, done, serial = 1;
static char headers[4096];

static void start(void);

static void
on_result(void *arg, const struct http_client_result *r)
{
	unsigned no = (unsigned)(uintptr_t)arg;

	printf("%u err=%s status=%d attempts=%u body=%zu retry_after=%llu "
	    "error=\"%s\"\n", no, http_client_error_name(r->err), r->status,
	    r->attempts, r->body_len, (unsigned long long)r->retry_after_ms,
	    r->error);
	fflush(stdout);
	done++;
	if (made < calls)
		start();
	else if (done == calls)
		event_base_loopexit(base, NULL);
}

static void
start(void)
{
	char err[400];
	unsigned no = ++made;

	if (http_client_request(hc, &rq, on_result, (void *)(uintptr_t)no,
	    err, sizeof(err)) == NULL) {
		printf("%u refused error=\"%s\"\n", no, err);
		if (++done == calls)
			event_base_loopexit(base, NULL);
	}
}

int
main(int argc, char **argv)
{
	struct http_client_limits lim;
	struct net_server *s;
	struct conf *cf;
	char *errs = NULL;
	static const char yaml[] = "limits: { network_timeout: 30s }\n";
	int opt, level = LOG_LVL_WARN, parallel = 0;

	memset(&lim, 0, sizeof(lim));
	rq.method = "GET";
	while ((opt = getopt(argc, argv, "X:d:H:c:a:t:T:b:B:sn:p:P:q:r:l:")) !=
	    -1) {
		switch (opt) {
		case 'X': rq.method = optarg; break;
		case 'd': rq.body = optarg; rq.body_len = strlen(optarg); break;
		case 'H':
			snprintf(headers + strlen(headers), sizeof(headers) -
			    strlen(headers), "%s\r\n", optarg);
			rq.headers = headers;
			break;
		case 'c': rq.ca_file = optarg; break;
		case 'a': rq.max_attempts = (uint32_t)atoi(optarg); break;
		case 't': rq.timeout_ms = strtoull(optarg, NULL, 10); break;
		case 'T': rq.connect_timeout_ms = strtoull(optarg, NULL, 10);
			break;
		case 'b': rq.backoff_min_ms = strtoull(optarg, NULL, 10); break;
		case 'B': rq.backoff_max_ms = strtoull(optarg, NULL, 10); break;
		case 's': rq.retry_safe = 1; break;
		case 'n': serial = (unsigned)atoi(optarg); break;
		case 'p': parallel = atoi(optarg); break;
		case 'P': lim.max_per_host = (uint32_t)atoi(optarg); break;
		case 'q': lim.max_queue = (uint32_t)atoi(optarg); break;
		case 'r': lim.max_response = strtoull(optarg, NULL, 10); break;
		case 'l': level = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: see t/hc-fetch.c\n");
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: see t/hc-fetch.c\n");
		return 2;
	}
	rq.url = argv[optind];
	log_setup((enum log_level)level, 0, "hc-fetch", 0);
	if ((cf = conf_load_buffer("hc-fetch", yaml, sizeof(yaml) - 1,
	    &errs)) == NULL) {
		fprintf(stderr, "%s", errs);
		return 2;
	}
	if ((base = event_base_new()) == NULL)
		return 2;
	s = net_server_new(base, cf, NULL);
	hc = http_client_new(s, &lim);
	calls = parallel > 0 ? (unsigned)parallel : serial;
	if (parallel > 0)
		while (made < calls)
			start();
	else
		start();
	if (done < calls)
		event_base_dispatch(base);
	printf("conns=%u queued=%u\n", http_client_nconns(hc),
	    http_client_nqueued(hc));
	http_client_free(hc);
	net_server_free(s);
	event_base_free(base);
	conf_free(cf);
	return 0;
}
