/*
 * api_keys.c — API keys: those of the configuration file (api.keys) and
 * those an admin creates over the API, kept in the store as the SHA-256 of
 * the token only (meta ("apikey", id) → JSON {id, role, sha256, created,
 * created_by}). A token is shown once, in the answer that creates it.
 *
 * Lookup hashes the bearer token and compares it with every key in
 * constant time, so the answer's timing says nothing about near misses.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "src/api/api.h"
#include "src/util/hex.h"
#include "src/util/log.h"
#include "store/store.h"
#include "store/store_key.h"

struct akey {
	char			 id[65];
	enum conf_api_role	 role;
	uint8_t			 sha[32];
	int64_t			 created;
	char			 by[65];
	int			 pending;	/* create not durable yet */
};

struct api_keys {
	struct akey	*v;
	size_t		 n, cap;
};

struct api_keys *
api_keys_new(void)
{
	struct api_keys *k = calloc(1, sizeof(*k));

	if (k == NULL)
		abort();
	return k;
}

void
api_keys_free_(struct api_keys *k)
{
	if (k == NULL)
		return;
	if (k->v != NULL)
		OPENSSL_cleanse(k->v, k->cap * sizeof(*k->v));
	free(k->v);
	free(k);
}

static void
key_of(struct store_key *sk, const char *id)
{
	store_key_init(sk);
	store_key_cstr(sk, "apikey");
	if (id != NULL)
		store_key_cstr(sk, id);
}

static struct akey *
add(struct api_keys *k)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 8;
		struct akey *v = realloc(k->v, cap * sizeof(*v));

		if (v == NULL)
			abort();
		k->v = v;
		k->cap = cap;
	}
	memset(&k->v[k->n], 0, sizeof(k->v[0]));
	return &k->v[k->n++];
}

static void
drop(struct api_keys *k, const char *id)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i].id, id) == 0) {
			k->v[i] = k->v[--k->n];
			return;
		}
}

static int
parse_role(const char *s, enum conf_api_role *r)
{
	for (int i = CONF_API_VIEWER; i <= CONF_API_ADMIN; i++)
		if (s != NULL && strcmp(s, conf_api_role_name(i)) == 0) {
			*r = i;
			return 0;
		}
	return -1;
}

static int
load_one(void *arg, const void *key, size_t klen, const void *val,
    size_t vlen)
{
	struct api_keys *k = arg;
	json_t *j = json_loadb(val, vlen, 0, NULL);
	const char *id = json_string_value(json_object_get(j, "id"));
	const char *sha = json_string_value(json_object_get(j, "sha256"));
	const char *by = json_string_value(json_object_get(j, "created_by"));
	struct akey *a;
	enum conf_api_role role;

	(void)key;
	(void)klen;
	if (id == NULL || sha == NULL || strlen(sha) != 64 ||
	    strlen(id) > 64 || parse_role(json_string_value(
	    json_object_get(j, "role")), &role) < 0) {
		log_err("api-key-unreadable", "detail=%s", log_q("a stored "
		    "API key record does not parse; it is ignored"));
		json_decref(j);
		return 0;
	}
	a = add(k);
	snprintf(a->id, sizeof(a->id), "%s", id);
	a->role = role;
	if (hex_decode(sha, a->sha, 32) < 0) {
		log_err("api-key-unreadable", "id=%s detail=%s", log_q(id),
		    log_q("its stored SHA-256 is not 64 hex digits; ignored"));
		k->n--;
		json_decref(j);
		return 0;
	}
	a->created = json_integer_value(json_object_get(j, "created"));
	snprintf(a->by, sizeof(a->by), "%s", by ? by : "");
	json_decref(j);
	return 0;
}

int
api_keys_load(struct api_keys *k, struct store *st)
{
	struct store_key sk;

	k->n = 0;
	key_of(&sk, NULL);
	return store_scan(st, STORE_CF_META, sk.b, sk.len, load_one, k);
}

int
api_keys_auth(struct api_keys *k, const struct conf *cf, const char *authz,
    struct api_who *who)
{
	uint8_t h[32];
	unsigned int hl = sizeof(h);
	const char *id = NULL;
	enum conf_api_role role = CONF_API_VIEWER;

	if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0)
		return -1;
	authz += 7;
	while (*authz == ' ')
		authz++;
	if (*authz == '\0' ||
	    !EVP_Digest(authz, strlen(authz), h, &hl, EVP_sha256(), NULL))
		return -1;
	/* every key is compared, found or not */
	for (size_t i = 0; i < cf->api.nkeys; i++)
		if (CRYPTO_memcmp(h, cf->api.keys[i].token_sha256, 32) == 0) {
			id = cf->api.keys[i].id;
			role = cf->api.keys[i].role;
		}
	for (size_t i = 0; i < k->n; i++)
		if (CRYPTO_memcmp(h, k->v[i].sha, 32) == 0 && !k->v[i].pending) {
			id = k->v[i].id;
			role = k->v[i].role;
		}
	if (id == NULL)
		return -1;
	snprintf(who->key, sizeof(who->key), "%s", id);
	who->role = role;
	who->authed = 1;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Routes. */

static const struct conf_api_key *
conf_key(const struct conf *cf, const char *id)
{
	for (size_t i = 0; i < cf->api.nkeys; i++)
		if (strcmp(cf->api.keys[i].id, id) == 0)
			return &cf->api.keys[i];
	return NULL;
}

static json_t *
key_json(const struct akey *a)
{
	char t[32];

	api_time(a->created, t);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", a->id, "role",
	    conf_api_role_name(a->role), "source", "api", "created", t,
	    "created_by", a->by);
}

void
api_keys_list(struct api_req *q)
{
	const struct conf *cf = api_conf(q);
	struct api_keys *k = api_keys_of(q);
	json_t *arr = json_array();

	for (size_t i = 0; i < cf->api.nkeys; i++)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:n}",
		    "id", cf->api.keys[i].id, "role",
		    conf_api_role_name(cf->api.keys[i].role), "source",
		    "config", "created"));
	for (size_t i = 0; i < k->n; i++)
		if (!k->v[i].pending)
			json_array_append_new(arr, key_json(&k->v[i]));
	api_reply(q, 200, json_pack("{s:o}", "keys", arr));
}

/* [A-Za-z0-9_.-]{1,64}, not starting with '.' or '-': like the
 * configuration's ids. */
static int
id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.' || s[0] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		    s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

struct created {
	char	id[65];
	char	token[64];
};

static void
create_done(struct api_req *q, int err)
{
	struct created *c = q->priv;
	struct api_keys *k = api_keys_of(q);

	q->priv = NULL;
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i].id, c->id) == 0) {
			if (err)
				drop(k, c->id);
			else {
				k->v[i].pending = 0;
				log_info("api-key-created", "id=%s role=%s by=%s",
				    log_q(c->id),
				    conf_api_role_name(k->v[i].role),
				    log_q(q->who.key));
				api_reply(q, 201, json_pack("{s:o, s:s}", "key",
				    key_json(&k->v[i]), "token", c->token));
				OPENSSL_cleanse(c, sizeof(*c));
				free(c);
				return;
			}
			break;
		}
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
	api_error(q, 503, "store_unavailable", NULL, "the key could not be "
	    "stored: %s; it was not created", store_error(api_store(q)));
}

void
api_keys_create(struct api_req *q)
{
	struct api_keys *k = api_keys_of(q);
	const struct conf *cf = api_conf(q);
	const char *id = json_string_value(json_object_get(q->body, "id"));
	const char *rs = json_string_value(json_object_get(q->body, "role"));
	enum conf_api_role role;
	uint8_t raw[32];
	unsigned int hl = 32;
	struct akey *a;
	struct created *c;
	struct store_key sk;
	struct store_batch *b;
	char sha[65], *val;
	json_t *rec;
	size_t live = 0;

	if (id == NULL || !id_ok(id)) {
		api_error(q, 422, "invalid_field", json_pack("{s:s}", "field",
		    "id"), "id must be 1-64 characters of A-Z a-z 0-9 _ . -");
		return;
	}
	if (parse_role(rs, &role) < 0) {
		api_error(q, 422, "invalid_field", json_pack("{s:s}", "field",
		    "role"), "role must be viewer, operator or admin");
		return;
	}
	if (conf_key(cf, id) != NULL) {
		api_error(q, 409, "exists", NULL, "API key \"%s\" is defined "
		    "in the configuration file", id);
		return;
	}
	for (size_t i = 0; i < k->n; i++) {
		if (strcmp(k->v[i].id, id) == 0) {
			api_error(q, 409, "exists", NULL, "API key \"%s\" "
			    "exists; delete it first to replace it", id);
			return;
		}
		live++;
	}
	if (live >= cf->api.max_keys) {
		api_error(q, 409, "limit", json_pack("{s:i}", "max_keys",
		    (int)cf->api.max_keys), "there are already %zu API keys "
		    "(api.max_keys); delete one first", live);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	snprintf(c->id, sizeof(c->id), "%s", id);
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		abort();
	/* "vnk_" + 43 base64url characters: 256 random bits */
	memcpy(c->token, "vnk_", 4);
	EVP_EncodeBlock((unsigned char *)c->token + 4, raw, sizeof(raw));
	for (char *p = c->token + 4; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	c->token[strcspn(c->token, "=")] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	if ((b = api_begin(q)) == NULL) {
		OPENSSL_cleanse(c, sizeof(*c));
		free(c);
		return;
	}
	a = add(k);
	snprintf(a->id, sizeof(a->id), "%s", id);
	a->role = role;
	a->created = (int64_t)time(NULL);
	snprintf(a->by, sizeof(a->by), "%s", q->who.key);
	a->pending = 1;
	EVP_Digest(c->token, strlen(c->token), a->sha, &hl, EVP_sha256(),
	    NULL);
	hex_encode(a->sha, 32, sha);
	rec = json_pack("{s:s, s:s, s:s, s:I, s:s}", "id", id, "role",
	    conf_api_role_name(role), "sha256", sha, "created",
	    (json_int_t)a->created, "created_by", q->who.key);
	val = json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(rec);
	key_of(&sk, id);
	store_put(b, STORE_CF_META, sk.b, sk.len, val, strlen(val));
	free(val);
	q->priv = c;
	api_commit(q, b, json_pack("{s:s, s:{s:s, s:s}, s:s}", "event",
	    "api.key.create", "object", "id", id, "role",
	    conf_api_role_name(role), "outcome", "ok"), create_done);
}

static void
delete_done(struct api_req *q, int err)
{
	char *id = q->priv;

	q->priv = NULL;
	if (err) {
		free(id);
		api_error(q, 503, "store_unavailable", NULL, "the key could "
		    "not be deleted: %s; it still works",
		    store_error(api_store(q)));
		return;
	}
	drop(api_keys_of(q), id);
	log_info("api-key-deleted", "id=%s by=%s", log_q(id),
	    log_q(q->who.key));
	free(id);
	api_reply_text(q, 204, "application/json", "", 0);
}

void
api_keys_delete(struct api_req *q)
{
	const char *id = http_match_param(&q->m, "id");
	struct api_keys *k = api_keys_of(q);
	struct store_key sk;
	struct store_batch *b;
	int found = 0;

	if (conf_key(api_conf(q), id) != NULL) {
		api_error(q, 409, "defined_in_config", NULL, "API key \"%s\" "
		    "comes from the configuration file; remove it there and "
		    "reload (SIGHUP)", id);
		return;
	}
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i].id, id) == 0 && !k->v[i].pending)
			found = 1;
	if (!found) {
		api_error(q, 404, "not_found", NULL, "no API key \"%s\"", id);
		return;
	}
	if ((b = api_begin(q)) == NULL)
		return;
	key_of(&sk, id);
	store_del(b, STORE_CF_META, sk.b, sk.len);
	if ((q->priv = strdup(id)) == NULL)
		abort();
	api_commit(q, b, json_pack("{s:s, s:{s:s}, s:s}", "event",
	    "api.key.delete", "object", "id", id, "outcome", "ok"),
	    delete_done);
}
