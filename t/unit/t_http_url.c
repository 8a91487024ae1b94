/*
 * t_http_url.c — the pure parts of the HTTP client and of notifications:
 * URLs taken and refused (http_url_parse), Host header values,
 * Retry-After in its two forms (and the obsolete dates), the backoff
 * schedule with its jitter bounds, and event pattern matching.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"
#include "http/http_url.h"
#include "src/net/http_client.h"
#include "t/unit/tap.h"

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static const struct {
	const char	*url;
	int		 https;
	const char	*host;
	unsigned	 port;
	const char	*target;	/* "" means "/" */
	const char	*authority;
} good[] = {
	{ "http://example.org", 0, "example.org", 80, "", "example.org" },
	{ "https://Hooks.Example.ORG/a/b?x=1#frag", 1, "hooks.example.org",
	    443, "/a/b?x=1", "hooks.example.org" },
	{ "HTTP://127.0.0.1:8080/hook", 0, "127.0.0.1", 8080, "/hook",
	    "127.0.0.1:8080" },
	{ "https://[::1]:8443/x", 1, "::1", 8443, "/x", "[::1]:8443" },
	{ "https://[2001:db8::7]/", 1, "2001:db8::7", 443, "/",
	    "[2001:db8::7]" },
	{ "http://localhost:80?q", 0, "localhost", 80, "?q", "localhost" },
	{ "http://a-b.c_d.example.:1/", 0, "a-b.c_d.example.", 1, "/",
	    "a-b.c_d.example.:1" },
};

static const struct {
	const char	*url;
	const char	*why;		/* a word of the reason */
} bad[] = {
	{ "ftp://example.org/", "http://" },
	{ "example.org/hook", "http://" },
	{ "http://", "empty" },
	{ "http:///path", "empty" },
	{ "http://user:pw@example.org/", "credentials" },
	{ "http://example.org:0/", "port" },
	{ "http://example.org:65536/", "port" },
	{ "http://example.org:80x/", "port" },
	{ "http://example.org:/", "port" },
	{ "http://exa mple.org/", "space" },
	{ "http://example.org/a\tb", "control" },
	{ "http://[::1/", "unclosed" },
	{ "http://[::1]x/", "after" },
	{ "http://[nothex]/", "IPv6" },
	{ "http://-bad.example/", "host" },
	{ "http://bad-.example/", "host" },
	{ "http://a..b/", "host" },
	{ "http://ex%41mple.org/", "host" },
};

static void
urls(void)
{
	struct http_url u;
	char err[200], auth[300];

	for (size_t i = 0; i < NELEM(good); i++) {
		int rc = http_url_parse(good[i].url, &u, err, sizeof(err));
		char target[256];

		snprintf(target, sizeof(target), "%.*s", (int)u.target_len,
		    good[i].url + u.target_off);
		http_url_authority(&u, auth, sizeof(auth));
		ok(rc == 0 && u.https == good[i].https &&
		    strcmp(u.host, good[i].host) == 0 &&
		    u.port == good[i].port &&
		    strcmp(target, good[i].target) == 0 &&
		    strcmp(auth, good[i].authority) == 0,
		    "URL %s: %s host %s port %u target \"%s\" Host: %s",
		    good[i].url, u.https ? "https" : "http", u.host, u.port,
		    target, auth);
	}
	for (size_t i = 0; i < NELEM(bad); i++) {
		int rc = http_url_parse(bad[i].url, &u, err, sizeof(err));

		ok(rc == -1 && strstr(err, bad[i].why) != NULL,
		    "URL \"%s\" refused: %s", bad[i].url, rc ? err : "taken");
	}
	{
		char big[HTTP_URL_MAX + 32];

		memset(big, 'a', sizeof(big) - 1);
		memcpy(big, "http://x/", 9);
		big[sizeof(big) - 1] = '\0';
		ok(http_url_parse(big, &u, err, sizeof(err)) == -1 &&
		    strstr(err, "longer") != NULL, "a URL over %d bytes is "
		    "refused", HTTP_URL_MAX);
	}
}

static void
retry_after(void)
{
	/* 1994-11-06T08:49:37Z */
	const time_t t0 = 784111777;
	static const struct {
		const char	*v;
		time_t		 now;
		int		 rc;
		uint64_t	 ms;
	} t[] = {
		{ "120", 0, 0, 120000 },
		{ "  0 ", 0, 0, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 5, 0, 5000 },
		{ "Sunday, 06-Nov-94 08:49:37 GMT", 784111777 - 2, 0, 2000 },
		{ "Sun Nov  6 08:49:37 1994", 784111777 - 1, 0, 1000 },
		{ "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 60, 0, 0 },
		{ "-1", 0, -1, 0 },
		{ "12s", 0, -1, 0 },
		{ "soon", 0, -1, 0 },
		{ "Sun, 06 Nov 1994 08:49:37 UTC", 0, -1, 0 },
		{ "Sun, 32 Nov 1994 08:49:37 GMT", 0, -1, 0 },
		{ "Sun, 06 Foo 1994 08:49:37 GMT", 0, -1, 0 },
		{ "Sun, 06 Nov 1994 25:49:37 GMT", 0, -1, 0 },
		{ "", 0, -1, 0 },
	};
	uint64_t ms;

	(void)t0;
	for (size_t i = 0; i < NELEM(t); i++) {
		int rc;

		ms = 777;
		rc = http_retry_after(t[i].v, t[i].now, &ms);
		ok(rc == t[i].rc && (rc < 0 || ms == t[i].ms),
		    "Retry-After \"%s\": %s %llu ms", t[i].v, rc ? "refused" :
		    "taken", rc ? 0ULL : (unsigned long long)ms);
	}
	ok(http_retry_after("99999999999999999999999", 0, &ms) == 0 &&
	    ms > 0, "a huge Retry-After saturates instead of wrapping");
}

static void
backoff(void)
{
	int fine = 1;

	/* no jitter at rnd 0: half; all of it at the top */
	is_int(http_client_backoff(1, 1000, 60000, 0), 500,
	    "backoff after failure 1, rnd 0: 500 ms (half of 1 s)");
	is_int(http_client_backoff(1, 1000, 60000, UINT32_MAX), 999,
	    "  rnd at its top: just under 1 s");
	is_int(http_client_backoff(3, 1000, 60000, 0), 2000,
	    "after failure 3: half of 4 s");
	is_int(http_client_backoff(40, 1000, 60000, 0), 30000,
	    "after failure 40: capped at 60 s (half of it at rnd 0)");
	is_int(http_client_backoff(200, 1000, UINT64_MAX / 2, 0),
	    UINT64_MAX / 4, "no overflow when the cap is huge");
	for (unsigned f = 1; f < 30; f++)
		for (uint32_t r = 0; r < 10; r++) {
			uint64_t d = http_client_backoff(f, 200, 10000,
			    r * 429496729u);
			uint64_t full = 200ULL << (f - 1 < 20 ? f - 1 : 20);

			if (full > 10000)
				full = 10000;
			if (d < full / 2 || d > full)
				fine = 0;
		}
	ok(fine, "every wait is between half and all of min * 2^(n-1), "
	    "capped");
}

static void
patterns(void)
{
	static const struct {
		const char	*p, *ev;
		int		 m;
	} t[] = {
		{ "*", "batch.created", 1 },
		{ "*", "notify.failed", 1 },
		{ "batch.*", "batch.created", 1 },
		{ "batch.*", "batch.seed.repeat", 1 },
		{ "batch.*", "batch", 0 },
		{ "batch.*", "batches.x", 0 },
		{ "state.checkpoint", "state.checkpoint", 1 },
		{ "state.checkpoint", "state.checkpoints", 0 },
		{ "state.checkpoint", "state", 0 },
	};

	for (size_t i = 0; i < NELEM(t); i++)
		ok(conf_event_match(t[i].p, t[i].ev) == t[i].m,
		    "pattern %s %s %s", t[i].p, t[i].m ? "matches" :
		    "does not match", t[i].ev);
}

int
main(void)
{
	urls();
	retry_after();
	backoff();
	patterns();
	return done_testing();
}
