/*
 * pt_lb_hash.c: consistent hashing of an upstream's hash_key.
 *
 * Each peer owns 1000 points per unit of weight on a 64-bit ring, placed
 * by hashing its address; a key goes to the first point at or after its
 * own hash. Removing one of N peers moves only the keys that peer owned,
 * about 1/N of them, and adding it back restores them. An unusable peer
 * passes its keys to the next points on the ring, without moving anyone
 * else's. A request whose key is empty, and a call without a request,
 * are balanced round robin.
 */

#include "pt_lb.h"
#include "pt_string.h"


#define PT_LB_HASH_POINTS      1000
#define PT_LB_HASH_MAX_POINTS  (1 << 20)

typedef struct {
    uint64_t     hash;
    uint32_t     peer;           /* index in us->peers */
} pt_lb_point_t;

typedef struct {
    pt_lb_point_t  *points;
    size_t          n;
} pt_lb_ring_t;


/* FNV-1a with a final mix: points of similar addresses spread evenly. */
static uint64_t
pt_lb_hash64(const void *data, size_t len)
{
    uint64_t  h;

    h = pt_hash_fnv1a(data, len, 0);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;

    return h;
}


static int
pt_lb_point_cmp(const void *a, const void *b)
{
    const pt_lb_point_t  *x = a, *y = b;

    return (x->hash > y->hash) - (x->hash < y->hash);
}


static int
pt_lb_hash_update(pt_upstream_t *us)
{
    char           buf[96];
    size_t         i, j, n, len, points;
    pt_lb_ring_t  *ring;

    ring = us->balancer_data;

    if (ring == NULL) {
        ring = calloc(1, sizeof(pt_lb_ring_t));
        if (ring == NULL) {
            return PT_ERROR;
        }
        us->balancer_data = ring;
    }

    for (i = 0, n = 0; i < us->npeers; i++) {
        n += PT_LB_HASH_POINTS * (size_t) us->peers[i].shared->weight;
    }

    n = pt_min(n, (size_t) PT_LB_HASH_MAX_POINTS);

    free(ring->points);
    ring->points = calloc(n ? n : 1, sizeof(pt_lb_point_t));
    ring->n = 0;

    if (ring->points == NULL) {
        return PT_ERROR;
    }

    for (i = 0; i < us->npeers && ring->n < n; i++) {
        points = PT_LB_HASH_POINTS * (size_t) us->peers[i].shared->weight;

        for (j = 0; j < points && ring->n < n; j++) {
            len = (size_t) snprintf(buf, sizeof(buf), "%s-%zu",
                                    us->peers[i].shared->text, j);
            ring->points[ring->n].hash = pt_lb_hash64(buf,
                                                      pt_min(len,
                                                             sizeof(buf)));
            ring->points[ring->n].peer = (uint32_t) i;
            ring->n++;
        }
    }

    qsort(ring->points, ring->n, sizeof(pt_lb_point_t), pt_lb_point_cmp);

    return PT_OK;
}


static pt_upstream_peer_t *
pt_lb_hash_pick(pt_http_request_t *r, pt_upstream_t *us, uint64_t tried)
{
    size_t               lo, hi, mid, k;
    uint64_t             h;
    pt_str_t             key;
    pt_lb_ring_t        *ring;
    pt_upstream_peer_t  *p;

    ring = us->balancer_data;

    /* A call the gateway makes itself (r NULL: the helper process) has no
     * key to hash: it is balanced like a request with an empty key. */
    if (ring == NULL || ring->n == 0 || r == NULL
        || pt_template_eval(r, pt_lb_conf(us)->hash_key, &key) != PT_OK
        || key.len == 0)
    {
        return pt_upstream_round_robin.pick(r, us, tried);
    }

    h = pt_lb_hash64(key.data, key.len);

    lo = 0;
    hi = ring->n;

    while (lo < hi) {
        mid = (lo + hi) / 2;
        if (ring->points[mid].hash < h) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }

    /* Clockwise from the key's place to the first usable peer. */
    for (k = 0; k < ring->n; k++) {
        p = &us->peers[ring->points[(lo + k) % ring->n].peer];

        if (pt_upstream_peer_usable(p)
            && !(tried & pt_upstream_peer_bit(us, p)))
        {
            return p;
        }
    }

    return NULL;
}


const pt_upstream_balancer_t  pt_lb_hash = {
    "hash", NULL, pt_lb_hash_update, pt_lb_hash_pick
};
