/*
 * api_seed.h — checking the seed of a batch (the JSON object of
 * POST /api/batches and of webhook intake) against the configuration,
 * without a request or a store: the handlers answer 422 with what it
 * says, and t/fuzz/fuzz_seed.c calls it as they do.
 */
#ifndef VNAMIG_API_SEED_H
#define VNAMIG_API_SEED_H

#include <stdint.h>

#include <jansson.h>

#include "conf/conf.h"

/* Why a seed was refused: the 422 answer's "field" and message. field is
 * a constant or a key of the seed (valid while the seed is). */
struct api_seed_err {
	const char	*field;
	char		 msg[512];
};

/* Plan id's record (the caller's reference), or NULL: no such plan
 * (*err 0) or it could not be read (*err 1). */
typedef json_t *api_seed_plan_fn(void *arg, uint64_t id, int *err);

/*
 * api_seed_check: check seed, a JSON object, against cf. A seed with a
 * plan_id takes the plan's source, target, priority and order where it
 * has none or null (written into seed); plan(arg, ...) finds the plan
 * (NULL: there are none). Returns 0, or -1 with *e filled.
 */
int api_seed_check(json_t *seed, const struct conf *cf,
    api_seed_plan_fn *plan, void *arg, struct api_seed_err *e);

#endif
