/*
 * fuzz_seed.c — libFuzzer harness for the seed of a batch, the body of
 * POST /api/batches and of webhook intake (POST
 * /api/batch_sources/webhook[/CHANNEL]): the bytes parsed as both parse
 * a body (json_loadb with JSON_REJECT_DUPLICATES; anything but an object
 * is a 400 before any check), then api_seed_check (src/api/api_seed.c),
 * which both handlers call, against a configuration with a source peer
 * "pacs", a target "vna", "hub" for both, and api.max_batch_items 4.
 *
 * Plans are not read from a store: this harness's own lookup has plan 1
 * (pacs to vna, priority 3, newest_first), plan 2 (cancelled), plan 3
 * (values no seed may have), plan 4 (a read error) and no other.
 * Webhook authentication (keys, addresses, HMAC) happens before the body
 * is parsed and is not reached from here.
 *
 * Besides crashes and leaks it checks the contract: the same bytes parsed
 * again, and the checked seed (with what its plan gave it) checked again,
 * get the same verdict and message; a refusal names a member of a seed,
 * a member of its query as "query.NAME", or the unknown member it
 * refuses, and its 422 answer can be made (UTF-8, as JSON needs); an
 * accepted seed has only known members, its source and target peers in
 * those roles, at least one of accession_numbers, study_instance_uids,
 * patient_id or query, at most 4 of the first two, and study UIDs and
 * query dates that pass checks written here apart from the daemon's.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "conf/conf.h"
#include "src/api/api_seed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond) do { if (!(cond)) abort(); } while (0)

#define MAX_ITEMS	4

static const char yaml[] =
    "node:\n  ae_title: VNAMIG\n  data_dir: ./var\n"
    "listen:\n  dicom: { address: 127.0.0.1, port: 11112 }\n"
    "peers:\n"
    "  - { name: pacs, ae_title: PACS, host: 127.0.0.1, port: 11113, "
    "role: source }\n"
    "  - { name: vna, ae_title: VNA, host: 127.0.0.1, port: 11114, "
    "role: target }\n"
    "  - { name: hub, ae_title: HUB, host: 127.0.0.1, port: 11115, "
    "role: both }\n"
    "api:\n  max_batch_items: 4\n";

/* Loaded once and kept: the daemon's is as long-lived. */
static struct conf *
the_conf(void)
{
	static struct conf *cf;
	char *errs = NULL;

	if (cf == NULL && (cf = conf_load_buffer("fuzz_seed.yaml", yaml,
	    sizeof(yaml) - 1, &errs)) == NULL)
		abort();
	check(cf->api.max_batch_items == MAX_ITEMS);
	return cf;
}

static json_t *
plans(void *arg, uint64_t id, int *err)
{
	(void)arg;
	*err = 0;
	switch (id) {
	case 1:
		return json_pack("{s:s, s:s, s:i, s:s, s:s}", "source", "pacs",
		    "target", "vna", "priority", 3, "order", "newest_first",
		    "state", "running");
	case 2:
		return json_pack("{s:s, s:s, s:s}", "source", "pacs", "target",
		    "vna", "state", "cancelled");
	case 3:
		return json_pack("{s:i, s:n, s:i, s:s}", "source", 7, "target",
		    "priority", 12, "order", "sideways");
	case 4:
		*err = 1;
		return NULL;
	}
	return NULL;
}

static const char *const members[] = { "external_id", "batch_name",
	"source", "target", "accession_numbers", "study_instance_uids",
	"patient_id", "priority", "force_full_repull", "include_priors",
	"query", "order", "plan_id", NULL };

static int
member(const char *s)
{
	for (size_t i = 0; members[i] != NULL; i++)
		if (strcmp(s, members[i]) == 0)
			return 1;
	return 0;
}

/* A UID by its components: 1-64 bytes; each component a digit string,
 * not empty, "0" or not starting with 0. */
static int
uid_valid(const char *s)
{
	size_t len = strlen(s);
	const char *p = s;

	if (len == 0 || len > 64)
		return 0;
	for (;;) {
		size_t n = strspn(p, "0123456789");

		if (n == 0 || (n > 1 && p[0] == '0'))
			return 0;
		p += n;
		if (*p == '\0')
			return 1;
		if (*p++ != '.')
			return 0;
	}
}

/* 1-64 bytes, none below 0x20, no backslash, no DEL. */
static int
text_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > 64)
		return 0;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == '\\' || *s == 0x7f)
			return 0;
	return 1;
}

/* DA or a DA range: D, D-, -D, D-D with D eight digits. */
static int
date_valid(const char *s)
{
	size_t a = strspn(s, "0123456789"), b;

	if (s[a] == '\0')
		return a == 8;
	if (s[a] != '-' || (a != 0 && a != 8))
		return 0;
	b = strspn(s + a + 1, "0123456789");
	return s[a + 1 + b] == '\0' && (b == 0 || b == 8) && a + b > 0;
}

static void
check_accepted(json_t *seed)
{
	const struct conf_peer *src, *dst;
	const char *k, *pid;
	json_t *v, *q, *acc, *uids;
	size_t i, n = 0;

	json_object_foreach(seed, k, v)
		check(member(k));
	src = conf_peer_by_name(the_conf(), json_string_value(
	    json_object_get(seed, "source")) ?: "");
	dst = conf_peer_by_name(the_conf(), json_string_value(
	    json_object_get(seed, "target")) ?: "");
	check(src != NULL && (src->role & CONF_ROLE_SOURCE));
	check(dst != NULL && (dst->role & CONF_ROLE_TARGET));
	acc = json_object_get(seed, "accession_numbers");
	uids = json_object_get(seed, "study_instance_uids");
	check(acc == NULL || json_is_null(acc) || json_is_array(acc));
	check(uids == NULL || json_is_null(uids) || json_is_array(uids));
	json_array_foreach(acc, i, v)
		check(json_is_string(v) && text_valid(json_string_value(v)));
	json_array_foreach(uids, i, v)
		check(json_is_string(v) && uid_valid(json_string_value(v)));
	check(json_array_size(acc) + json_array_size(uids) <= MAX_ITEMS);
	v = json_object_get(seed, "priority");
	check(v == NULL || json_is_null(v) || (json_is_integer(v) &&
	    json_integer_value(v) >= 0 && json_integer_value(v) <= 9));
	pid = json_string_value(json_object_get(seed, "patient_id"));
	check(pid == NULL || pid[0] == '\0' || text_valid(pid));
	if (json_is_true(json_object_get(seed, "include_priors")))
		check(pid != NULL && pid[0] != '\0');
	q = json_object_get(seed, "query");
	check(q == NULL || json_is_null(q) || json_is_object(q));
	json_object_foreach(q, k, v) {
		const char *s = json_string_value(v);

		check(s != NULL);
		if (strcmp(k, "study_date") == 0)
			check(date_valid(s));
		else
			check((strcmp(k, "modality") == 0 ||
			    strcmp(k, "patient_id") == 0) && s[0] != '\0');
		n++;
	}
	check(q == NULL || json_is_null(q) || n > 0);
	check(json_array_size(acc) > 0 || json_array_size(uids) > 0 ||
	    (pid != NULL && pid[0] != '\0') || json_is_object(q));
}

static void
check_refused(json_t *seed, const struct api_seed_err *e)
{
	const char *f = e->field;
	json_t *j;

	check(f != NULL && e->msg[0] != '\0');
	if (!member(f) && strcmp(f, "query.study_date") != 0 &&
	    strcmp(f, "query.modality") != 0 &&
	    strcmp(f, "query.patient_id") != 0)
		check(json_object_get(seed, f) != NULL &&
		    strncmp(e->msg, "unknown field \"", 15) == 0);
	/* what api_error makes of it */
	check((j = json_pack("{s:{s:s, s:s, s:{s:s}}}", "error", "code",
	    "invalid_field", "message", e->msg, "detail", "field", f)) != NULL);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_seed_err e1, e2, e3;
	json_t *a, *b;
	int r1, r2, r3;

	if (size > 65536)
		return 0;
	a = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	b = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	check((a == NULL) == (b == NULL));
	if (a == NULL || !json_is_object(a)) {
		json_decref(a);
		json_decref(b);
		return 0;
	}
	memset(&e1, 0, sizeof(e1));
	memset(&e2, 0, sizeof(e2));
	memset(&e3, 0, sizeof(e3));
	r1 = api_seed_check(a, the_conf(), plans, NULL, &e1);
	r2 = api_seed_check(b, the_conf(), plans, NULL, &e2);
	check(r1 == 0 || r1 == -1);
	check(r1 == r2 && json_equal(a, b));
	if (r1 == 0)
		check_accepted(a);
	else {
		check(strcmp(e1.field, e2.field) == 0);
		check(strcmp(e1.msg, e2.msg) == 0);
		check_refused(a, &e1);
	}
	/* what the plan gave is final: checked again, the same */
	r3 = api_seed_check(a, the_conf(), plans, NULL, &e3);
	check(r3 == r1 && json_equal(a, b));
	if (r1 != 0)
		check(strcmp(e1.field, e3.field) == 0 &&
		    strcmp(e1.msg, e3.msg) == 0);
	json_decref(a);
	json_decref(b);
	return 0;
}
