/*
 * ctl_http.c — one request, one answer, over a fresh blocking
 * connection (plain TCP or TLS via OpenSSL with the server's certificate
 * verified against the system CAs or --cacert), read with the pure
 * response parser of http/http_resp.h. The connection closes after the
 * answer ("Connection: close"): a CLI makes few requests.
 *
 * Every wait (connect, each write, each read) is bounded by --timeout.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "http/http_resp.h"
#include "src/ctl/ctl.h"

#define BODY_MAX	(256u << 20)	/* bytes of one answer's body */
#define HEAD_MAX	(64u << 10)

struct conn {
	int	 fd;
	SSL	*ssl;
};

void
ctl_err(struct ctl *c, const char *method, const char *path,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->errbuf != NULL) {
		n = snprintf(c->errbuf, c->errlen, "%s %s%s: ", method,
		    c->base, path);
		if (n >= 0 && (size_t)n < c->errlen) {
			va_start(ap, fmt);
			vsnprintf(c->errbuf + n, c->errlen - (size_t)n, fmt,
			    ap);
			va_end(ap);
		}
		return;
	}
	fprintf(stderr, PROG ": %s %s%s: ", method, c->base, path);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ssl_reason: the first queued OpenSSL error, in words. */
static const char *
ssl_reason(char *buf, size_t n)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, n, "%s", errno ? strerror(errno) :
		    "connection closed");
	else
		ERR_error_string_n(e, buf, n);
	ERR_clear_error();
	return buf;
}

/* tls_ctx: the client context, made once. NULL after saying why. */
static SSL_CTX *
tls_ctx(struct ctl *c, const char *method, const char *path)
{
	SSL_CTX *ctx;
	char why[256];

	if (c->ssl_ctx != NULL)
		return c->ssl_ctx;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		ctl_err(c, method, path, "TLS: %s",
		    ssl_reason(why, sizeof(why)));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (c->insecure) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		fprintf(stderr, PROG ": WARNING: --insecure: the server's "
		    "certificate is NOT verified; anyone on the path can "
		    "pose as %s and read the API key\n", c->url.host);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (c->cacert != NULL) {
			if (SSL_CTX_load_verify_locations(ctx, c->cacert,
			    NULL) != 1) {
				ctl_err(c, method, path, "cannot load CA "
				    "certificates from %s: %s", c->cacert,
				    ssl_reason(why, sizeof(why)));
				SSL_CTX_free(ctx);
				return NULL;
			}
		} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
			ctl_err(c, method, path, "cannot load the system CA "
			    "certificates: %s", ssl_reason(why, sizeof(why)));
			SSL_CTX_free(ctx);
			return NULL;
		}
	}
	c->ssl_ctx = ctx;
	return ctx;
}

static void
set_timeouts(int fd, int secs)
{
	struct timeval tv = { .tv_sec = secs, .tv_usec = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* connect_one: a non-blocking connect bounded by the timeout; the fd
 * (blocking again), or -1 with errno. */
static int
connect_one(const struct addrinfo *ai, int secs)
{
	struct pollfd pfd;
	socklen_t sl;
	int fd, fl, err = 0, rc;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
	    ai->ai_protocol);
	if (fd < 0)
		return -1;
	fl = fcntl(fd, F_GETFL);
	(void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			rc = poll(&pfd, 1, secs * 1000);
		while (rc < 0 && errno == EINTR);
		if (rc == 0) {
			errno = ETIMEDOUT;
			goto fail;
		}
		sl = sizeof(err);
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
		    &sl) < 0)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	(void)fcntl(fd, F_SETFL, fl);
	set_timeouts(fd, secs);
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

/* tls_start: the handshake and the certificate check, on k->fd. */
static int
tls_start(struct ctl *c, struct conn *k, const char *method,
    const char *path)
{
	SSL_CTX *ctx;
	X509_VERIFY_PARAM *vp;
	long vr;
	char why[256];

	if ((ctx = tls_ctx(c, method, path)) == NULL)
		return -1;
	if ((k->ssl = SSL_new(ctx)) == NULL) {
		ctl_err(c, method, path, "TLS: %s",
		    ssl_reason(why, sizeof(why)));
		return -1;
	}
	SSL_set_fd(k->ssl, k->fd);
	vp = SSL_get0_param(k->ssl);
	/* The name checked is the one in the URL: an address or a host. */
	if (X509_VERIFY_PARAM_set1_ip_asc(vp, c->url.host) != 1) {
		(void)SSL_set_tlsext_host_name(k->ssl, c->url.host);
		if (SSL_set1_host(k->ssl, c->url.host) != 1) {
			ctl_err(c, method, path, "TLS: cannot check the "
			    "name %s", c->url.host);
			return -1;
		}
	}
	ERR_clear_error();
	errno = 0;
	if (SSL_connect(k->ssl) != 1) {
		vr = SSL_get_verify_result(k->ssl);
		if (vr != X509_V_OK)
			ctl_err(c, method, path, "TLS: the server's "
			    "certificate is not trusted: %s (give its CA with "
			    "--cacert FILE)", X509_verify_cert_error_string(vr));
		else
			ctl_err(c, method, path, "TLS handshake with %s port "
			    "%s failed: %s (is it an https:// server?)",
			    c->url.host, c->url.port,
			    ssl_reason(why, sizeof(why)));
		return -1;
	}
	return 0;
}

/* conn_open: connected (and TLS started) or -1 after saying why. */
static int
conn_open(struct ctl *c, struct conn *k, const char *method,
    const char *path)
{
	struct addrinfo hints, *res, *ai;
	int rc, err = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_ADDRCONFIG;
	k->fd = -1;
	k->ssl = NULL;
	if ((rc = getaddrinfo(c->url.host, c->url.port, &hints, &res)) != 0) {
		ctl_err(c, method, path, "cannot resolve %s: %s",
		    c->url.host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL && k->fd < 0; ai = ai->ai_next)
		if ((k->fd = connect_one(ai, c->timeout_s)) < 0)
			err = errno;
	freeaddrinfo(res);
	if (k->fd < 0) {
		ctl_err(c, method, path, "cannot connect to %s port %s: %s%s",
		    c->url.host, c->url.port, strerror(err), err == ECONNREFUSED
		    ? " (is vnamigd running and is this its http listener?)"
		    : "");
		return -1;
	}
	if (c->url.tls && tls_start(c, k, method, path) < 0)
		return -1;
	return 0;
}

static void
conn_close(struct conn *k)
{
	if (k->ssl != NULL) {
		(void)SSL_shutdown(k->ssl);
		SSL_free(k->ssl);
	}
	if (k->fd >= 0)
		close(k->fd);
}

/* conn_write: all of buf, or -1 with the reason in WHY. */
static int
conn_write(struct conn *k, const char *buf, size_t n, char *why,
    size_t wn)
{
	ssize_t w;
	int r;

	while (n > 0) {
		if (k->ssl != NULL) {
			r = SSL_write(k->ssl, buf, n > INT32_MAX ? INT32_MAX :
			    (int)n);
			if (r <= 0) {
				ssl_reason(why, wn);
				return -1;
			}
			w = r;
		} else {
			w = send(k->fd, buf, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				snprintf(why, wn, "%s", errno == EAGAIN ?
				    "timed out" : strerror(errno));
				return -1;
			}
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* conn_read: bytes read, 0 at the end, -1 with the reason in WHY. */
static ssize_t
conn_read(struct conn *k, char *buf, size_t n, char *why, size_t wn)
{
	ssize_t r;
	int e;

	for (;;) {
		if (k->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			r = SSL_read(k->ssl, buf, (int)n);
			if (r > 0)
				return r;
			e = SSL_get_error(k->ssl, (int)r);
			if (e == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (e == SSL_ERROR_SYSCALL && errno == 0)
				return 0;	/* closed without notify */
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				snprintf(why, wn, "timed out");
			else
				ssl_reason(why, wn);
			return -1;
		}
		r = recv(k->fd, buf, n, 0);
		if (r >= 0)
			return r;
		if (errno == EINTR)
			continue;
		snprintf(why, wn, "%s", errno == EAGAIN ||
		    errno == EWOULDBLOCK ? "timed out" : strerror(errno));
		return -1;
	}
}

/* build_request: the request head and body (malloc'd, *len bytes);
 * CTYPE is the body's Content-Type. */
static char *
build_request(struct ctl *c, const char *method, const char *path,
    const char *body, size_t blen, const char *ctype, int json, size_t *len)
{
	char *head = NULL, host[300];
	size_t hlen = 0;
	FILE *f;

	if (strchr(c->url.host, ':') != NULL)
		snprintf(host, sizeof(host), "[%s]", c->url.host);
	else
		snprintf(host, sizeof(host), "%s", c->url.host);
	if (strcmp(c->url.port, c->url.tls ? "443" : "80") != 0) {
		size_t hl = strlen(host);

		snprintf(host + hl, sizeof(host) - hl, ":%s", c->url.port);
	}
	if ((f = open_memstream(&head, &hlen)) == NULL)
		return NULL;
	fprintf(f, "%s %s%s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: " PROG "/%s\r\nAccept: %s\r\n", method,
	    c->url.prefix, path, host, PACKAGE_VERSION, json ?
	    "application/json" : "*/*");
	if (c->key != NULL)
		fprintf(f, "Authorization: Bearer %s\r\n", c->key);
	if (body != NULL)
		fprintf(f, "Content-Type: %s\r\n", ctype);
	if (body != NULL || strcmp(method, "POST") == 0 ||
	    strcmp(method, "PUT") == 0)
		fprintf(f, "Content-Length: %zu\r\n", blen);
	fprintf(f, "Connection: close\r\n\r\n");
	if (body != NULL)
		fwrite(body, 1, blen, f);
	if (fclose(f) != 0) {
		free(head);
		return NULL;
	}
	*len = hlen;
	return head;
}

/*
 * exchange: send the request, read the answer into A. 0, or -1 after
 * saying what went wrong (exit status CTL_CONN).
 */
static int
exchange(struct ctl *c, const char *method, const char *path,
    const char *body, size_t blen, const char *ctype, int json,
    struct ctl_answer *a)
{
	static const struct http_resp_limits lim = {
		.max_header_bytes = HEAD_MAX,
		.max_headers = 256,
		.max_body = BODY_MAX,
	};
	struct http_resp *r = NULL;
	enum http_resp_result rc = HTTP_RESP_NEED_MORE;
	struct conn k;
	char *req, buf[16384], why[256];
	const char *p, *ct;
	size_t len, used, off;
	ssize_t got;
	int ret = -1;

	if ((req = build_request(c, method, path, body, blen, ctype, json,
	    &len)) == NULL) {
		ctl_err(c, method, path, "out of memory");
		return -1;
	}
	if (conn_open(c, &k, method, path) < 0)
		goto out;
	if (conn_write(&k, req, len, why, sizeof(why)) < 0) {
		ctl_err(c, method, path, "cannot send the request: %s", why);
		goto out;
	}
	r = http_resp_new(&lim, method);
	while (rc != HTTP_RESP_DONE && rc != HTTP_RESP_ERROR) {
		got = conn_read(&k, buf, sizeof(buf), why, sizeof(why));
		if (got < 0) {
			ctl_err(c, method, path, "reading the answer: %s%s",
			    why, strcmp(why, "timed out") == 0 ?
			    " (see --timeout)" : "");
			goto out;
		}
		if (got == 0) {
			rc = http_resp_eof(r);
			break;
		}
		for (off = 0; off < (size_t)got; off += used) {
			rc = http_resp_feed(r, buf + off, (size_t)got - off,
			    &used);
			if (rc == HTTP_RESP_DONE || rc == HTTP_RESP_ERROR)
				break;
		}
	}
	if (rc != HTTP_RESP_DONE) {
		ctl_err(c, method, path, "not an HTTP answer: %s",
		    http_resp_error(r) ? http_resp_error(r) :
		    "the connection closed early");
		goto out;
	}
	a->status = http_resp_status(r);
	snprintf(a->reason, sizeof(a->reason), "%s", http_resp_reason(r));
	p = http_resp_body(r, &len);
	if ((a->body = malloc(len + 1)) == NULL) {
		ctl_err(c, method, path, "out of memory");
		goto out;
	}
	memcpy(a->body, p, len);
	a->body[len] = '\0';
	a->len = len;
	ct = http_resp_header(r, "content-type");
	a->content_type = ct != NULL ? strdup(ct) : NULL;
	ret = 0;
out:
	http_resp_free(r);
	conn_close(&k);
	free(req);
	return ret;
}

void
ctl_answer_free(struct ctl_answer *a)
{
	free(a->body);
	free(a->content_type);
	json_decref(a->json);
	memset(a, 0, sizeof(*a));
}

int
ctl_refusal(struct ctl *c, const char *method, const char *path,
    const struct ctl_answer *a)
{
	const char *code = NULL, *msg = NULL, *detail = NULL;
	json_t *j, *e;
	char first[200], hint[600] = "";
	int rc = a->status >= 500 ? CTL_SERVER : a->status >= 400 ?
	    CTL_REFUSED : CTL_CONN;

	j = json_loadb(a->body, a->len, 0, NULL);
	e = json_is_object(j) ? json_object_get(j, "error") : NULL;
	if (json_is_object(e)) {
		code = json_string_value(json_object_get(e, "code"));
		msg = json_string_value(json_object_get(e, "message"));
		/* A detail in words is shown; structured ones with --json. */
		detail = json_string_value(json_object_get(e, "detail"));
	}
	if (a->status == 401 && c->key == NULL)
		snprintf(hint, sizeof(hint), " (no API key was given: "
		    "--key-file, VNAMIG_KEY or key_file in ctl.yaml)");
	else if (a->status == 401)
		snprintf(hint, sizeof(hint), " (the key from %s)", c->key_from);
	if (code != NULL || msg != NULL) {
		ctl_err(c, method, path, "%d %s: %s%s%s%s%s", a->status,
		    code ? code : "error", msg ? msg : "", detail ? " (" : "",
		    detail ? detail : "", detail ? ")" : "", hint);
	} else {
		/* Not our error body: the status and the first line. */
		snprintf(first, sizeof(first), "%s", a->body);
		first[strcspn(first, "\r\n")] = '\0';
		ctl_err(c, method, path, "%d %s%s%s%s", a->status, a->reason,
		    first[0] ? ": " : "", first, hint);
	}
	/* --json: the server's error body too, for scripts. */
	if (c->json && j != NULL && c->errbuf == NULL)
		ctl_print_json(j);
	json_decref(j);
	return rc;
}

int
ctl_api(struct ctl *c, const char *method, const char *path,
    const json_t *body, unsigned flags, struct ctl_answer *a)
{
	char *text = NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		ctl_err(c, method, path, "out of memory");
		return CTL_CONN;
	}
	rc = ctl_api_body(c, method, path, "application/json", text, text ?
	    strlen(text) : 0, flags, a);
	free(text);
	return rc;
}

int
ctl_api_body(struct ctl *c, const char *method, const char *path,
    const char *ctype, const char *body, size_t blen, unsigned flags,
    struct ctl_answer *a)
{
	json_error_t jerr;

	memset(a, 0, sizeof(*a));
	if (exchange(c, method, path, body, blen, ctype, !(flags & CTL_RAW),
	    a) < 0)
		return CTL_CONN;
	if ((a->status < 200 || a->status > 299) &&
	    !(flags & CTL_ANY_STATUS))
		return ctl_refusal(c, method, path, a);
	if ((flags & CTL_RAW) || a->len == 0)
		return CTL_OK;
	if ((a->json = json_loadb(a->body, a->len, 0, &jerr)) == NULL) {
		if (flags & CTL_ANY_STATUS)
			return CTL_OK;
		ctl_err(c, method, path, "%d, but the answer is not JSON "
		    "(line %d: %s)", a->status, jerr.line, jerr.text);
		return CTL_CONN;
	}
	return CTL_OK;
}
