/*
 * pt_random.h: a fast per-process PRNG (xoshiro256**), seeded from the
 * kernel after every fork so workers never share a sequence. For request
 * ids and load-balancing choices, not for secrets.
 */

#ifndef PT_RANDOM_H
#define PT_RANDOM_H

#include "pt_core.h"


void pt_random_seed(void);
uint64_t pt_random_u64(void);


#endif /* PT_RANDOM_H */
