/*
 * bench_router.c: the router's lookup cost with 10 and with 10,000 prefix
 * routes (`make bench-router`).
 *
 * Each table is compiled from a generated config exactly as the gateway
 * does at load, then the lookup runs over a rotating set of request paths
 * that each hit a different route. The figure is the median over several
 * trials of the time per lookup; the ratio of the two is what matters
 * (the issue asks for at most 2x). Time is the thread's CPU time, so that
 * other processes on a busy machine do not count while they run.
 *
 *   objs/bench_router [LOOKUPS_PER_TRIAL]
 */

#include <time.h>

#include "pt_core.h"
#include "pt_cycle.h"
#include "pt_http.h"
#include "pt_module.h"
#include "pt_router.h"
#include "pt_time.h"


#define TRIALS      9
#define PATHS       1024


static double
now_ns(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);

    return (double) ts.tv_sec * 1e9 + (double) ts.tv_nsec;
}


static int
cmp_double(const void *a, const void *b)
{
    double  x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}


static pt_cycle_t *
load(unsigned nroutes, const char *dir)
{
    char        path[256];
    FILE       *f;
    unsigned    i;

    snprintf(path, sizeof(path), "%s/routes-%u.yaml", dir, nroutes);

    f = fopen(path, "w");
    if (f == NULL) {
        return NULL;
    }

    fprintf(f, "listen: [ { address: \"127.0.0.1:1\" } ]\nroutes:\n");

    for (i = 0; i < nroutes; i++) {
        fprintf(f, "  - { name: r%u, match: { path: /svc%05u/ }, "
                "respond: { body: x } }\n", i, i);
    }

    fclose(f);

    return pt_cycle_init(NULL, path, "/tmp/", 1);
}


/* Median ns per lookup over TRIALS runs of `lookups` lookups. */
static double
measure(pt_cycle_t *cycle, unsigned nroutes, unsigned long lookups,
    unsigned long *checksum)
{
    int                  rc;
    char                *p;
    double               t0, trials[TRIALS];
    unsigned             i, t;
    unsigned long        k;
    pt_pool_t           *pool;
    pt_router_conf_t    *found;
    pt_router_allow_t    allow;
    pt_router_table_t   *table;
    pt_http_request_t   *reqs;

    table = pt_router_table(cycle);
    pool = pt_pool_create(1 << 20);
    reqs = pt_pcalloc(pool, PATHS * sizeof(pt_http_request_t));

    if (pool == NULL || reqs == NULL) {
        return -1;
    }

    /* Paths of the same shape for both tables, each for its own route. */
    for (i = 0; i < PATHS; i++) {
        p = pt_pnalloc(pool, 64);
        reqs[i].path.len = (size_t) snprintf(p, 64, "/svc%05u/items/%u",
                                             (i * 7919u) % nroutes, i);
        reqs[i].path.data = p;
        pt_str_set(&reqs[i].host, "api.example.com");
        pt_str_set(&reqs[i].method_name, "GET");
        reqs[i].method = PT_HTTP_GET;
        reqs[i].pool = pool;
        reqs[i].hmcf = pt_http_main_conf(cycle);
    }

    for (t = 0; t < TRIALS; t++) {
        t0 = now_ns();

        for (k = 0; k < lookups; k++) {
            rc = pt_router_lookup(table, &reqs[k % PATHS], &found, &allow);
            *checksum += (rc == PT_OK) ? found->route->index : 1000000;
        }

        trials[t] = (now_ns() - t0) / (double) lookups;
    }

    qsort(trials, TRIALS, sizeof(double), cmp_double);

    pt_pool_destroy(pool);

    return trials[TRIALS / 2];
}


int
main(int argc, char **argv)
{
    char            dir[] = "/tmp/bench-router.XXXXXX";
    double          small, large;
    unsigned long   lookups, sum;
    pt_cycle_t     *c10, *c10k;

    lookups = (argc > 1) ? strtoul(argv[1], NULL, 10) : 2000000;

    pt_time_update();
    pt_log_default()->level = PT_LOG_ERR;

    if (pt_modules_init() != PT_OK || mkdtemp(dir) == NULL) {
        return 1;
    }

    c10 = load(10, dir);
    c10k = load(10000, dir);

    if (c10 == NULL || c10k == NULL) {
        fprintf(stderr, "bench_router: cannot load the generated configs\n");
        return 1;
    }

    sum = 0;

    pt_cycle = c10;
    small = measure(c10, 10, lookups, &sum);
    pt_cycle = c10k;
    large = measure(c10k, 10000, lookups, &sum);

    printf("router lookup, %d trials of %lu lookups, median CPU time per "
           "lookup:\n", TRIALS, lookups);
    printf("  10 prefix routes:      %8.1f ns\n", small);
    printf("  10,000 prefix routes:  %8.1f ns\n", large);
    printf("  ratio 10,000 / 10:     %8.2f (target: at most 2)\n",
           large / small);
    printf("(checksum %lu)\n", sum);

    pt_cycle_free(c10, NULL);
    pt_cycle_free(c10k, NULL);

    (void) unlink(dir);

    return 0;
}
