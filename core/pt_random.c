/*
 * pt_random.c: xoshiro256** (Blackman and Vigna), see pt_random.h.
 */

#include <sys/random.h>

#include "pt_random.h"
#include "pt_time.h"


static uint64_t  pt_rs[4];
static unsigned  pt_seeded;


static uint64_t
pt_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}


void
pt_random_seed(void)
{
    ssize_t  n;

    n = getrandom(pt_rs, sizeof(pt_rs), GRND_NONBLOCK);

    if (n != (ssize_t) sizeof(pt_rs)) {
        /* No entropy yet (early boot): still differ between processes. */
        pt_rs[0] = pt_monotonic_usec();
        pt_rs[1] = (uint64_t) getpid() * 0x9e3779b97f4a7c15ULL;
        pt_rs[2] = (uint64_t) (uintptr_t) &n;
        pt_rs[3] = 0x2545f4914f6cdd1dULL;
    }

    if ((pt_rs[0] | pt_rs[1] | pt_rs[2] | pt_rs[3]) == 0) {
        pt_rs[0] = 1;
    }

    pt_seeded = 1;
}


uint64_t
pt_random_u64(void)
{
    uint64_t  result, t;

    if (!pt_seeded) {
        pt_random_seed();
    }

    result = pt_rotl(pt_rs[1] * 5, 7) * 9;
    t = pt_rs[1] << 17;

    pt_rs[2] ^= pt_rs[0];
    pt_rs[3] ^= pt_rs[1];
    pt_rs[1] ^= pt_rs[2];
    pt_rs[0] ^= pt_rs[3];
    pt_rs[2] ^= t;
    pt_rs[3] = pt_rotl(pt_rs[3], 45);

    return result;
}
