/*
 * test_metrics.c: the metrics module's shared table and its text form,
 * without a gateway: label values escaped for the exposition format
 * (no route, upstream or method name can hold '"', '\' or a newline, so
 * this is where escaping is tested), one slot per key and the same slot
 * for the same key, histogram buckets at their bounds, and a full table
 * that drops updates (counted, logged once) instead of failing.
 */

#include <sys/mman.h>

#include "pt_core.h"
#include "pt_log.h"
#include "pt_metrics.h"
#include "pt_slab.h"
#include "pt_time.h"

#include "tap.h"
#include "tap_log.h"


#define ZONE_SIZE   (256 * 1024)


static int
escaped(const char *in, const char *want)
{
    char    buf[256];
    size_t  n, m;

    n = pt_metrics_escape(NULL, in, strlen(in));
    m = pt_metrics_escape(buf, in, strlen(in));
    buf[m] = '\0';

    if (n != m || strcmp(buf, want) != 0) {
        printf("# escape \"%s\": got \"%s\" (%zu, %zu), want \"%s\"\n",
               in, buf, n, m, want);
        return 0;
    }

    return 1;
}


static pt_str_t
str(const char *s)
{
    pt_str_t  v;

    v.data = (char *) s;
    v.len = strlen(s);

    return v;
}


int
main(void)
{
    char                name[32];
    void               *mem;
    size_t              i;
    uint64_t            n;
    pt_str_t            a, b, k;
    pt_shm_zone_t       zone;
    pt_metrics_root_t  *root;
    pt_metrics_slot_t  *s1, *s2, *s3, *s;

    tap_plan(22);

    if (tap_log_open("test_metrics") != 0) {
        return 1;
    }
    pt_time_update();

    /* Escaping: the three the format names, nothing else. */
    ok(escaped("plain-name_1/x:y", "plain-name_1/x:y"), "plain text as is");
    ok(escaped("a\\b", "a\\\\b"), "backslash doubled");
    ok(escaped("say \"hi\"", "say \\\"hi\\\""), "quotes escaped");
    ok(escaped("two\nlines", "two\\nlines"), "newline as \\n");
    ok(escaped("\\\"\n", "\\\\\\\"\\n"), "all three in a row");
    ok(escaped("", ""), "empty value");

    mem = mmap(NULL, ZONE_SIZE, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        return 1;
    }

    memset(&zone, 0, sizeof(zone));
    zone.slab = pt_slab_init(mem, ZONE_SIZE, "metrics");
    ok(zone.slab != NULL, "a slab pool");
    ok(pt_metrics_zone_init(&zone, NULL) == PT_OK, "the table is made");
    root = zone.slab->data;
    ok(root && root->nslots >= 64
       && (root->nslots & (root->nslots - 1)) == 0,
       "a power of two of slots (%llu)",
       root ? (unsigned long long) root->nslots : 0ULL);

    /* An adopted zone keeps its table. */
    ok(pt_metrics_zone_init(&zone, root) == PT_OK && zone.slab->data == root,
       "a reload keeps the table");

    a = str("users");
    b = str("orders");
    s1 = pt_metrics_slot(root, PT_METRICS_REQUESTS, &a, "GET", 200);
    s2 = pt_metrics_slot(root, PT_METRICS_REQUESTS, &a, "GET", 200);
    s3 = pt_metrics_slot(root, PT_METRICS_REQUESTS, &a, "GET", 404);
    ok(s1 && s1 == s2, "the same key, the same slot");
    ok(s3 && s3 != s1, "another status, another slot");
    ok(s1 && s1->ready && s1->status == 200 && s1->kind == PT_METRICS_REQUESTS
       && s1->name_len == 5 && memcmp(s1->name, "users", 5) == 0
       && strcmp(s1->label, "GET") == 0, "the slot holds its labels");

    s = pt_metrics_slot(root, PT_METRICS_REQUESTS, &b, "GET", 200);
    ok(s && s != s1, "another route, another slot");
    s = pt_metrics_slot(root, PT_METRICS_REJECTED, &a, "", 0);
    ok(s && s != s1 && s != s3, "another kind, another slot");

    /* Buckets: a value on a bound is in that bound's bucket. */
    s = pt_metrics_slot(root, PT_METRICS_ROUTE_DURATION, &a, "", 0);
    pt_metrics_observe(s, 0);
    pt_metrics_observe(s, 5000);
    pt_metrics_observe(s, 5001);
    pt_metrics_observe(s, 30000);
    pt_metrics_observe(s, 10000000);
    pt_metrics_observe(s, 10000001);
    ok(s->v[0] == 2 && s->v[1] == 1, "0 and 5 ms in le 0.005, 5.001 in 0.01");
    ok(s->v[3] == 1, "30 ms in le 0.05");
    ok(s->v[10] == 1 && s->v[11] == 1, "10 s in le 10, more in +Inf");
    ok(s->v[PT_METRICS_SUM] == 20040002, "the sum in microseconds");

    /* Fill the table: every update gets a slot or is dropped, none
     * fails, and the log has one line for all of them. */
    n = 0;
    for (i = 0; i < 4 * root->nslots; i++) {
        snprintf(name, sizeof(name), "route-%zu", i);
        k = str(name);
        if (pt_metrics_slot(root, PT_METRICS_REQUESTS, &k, "GET", 200)
            == NULL)
        {
            n++;
        }
    }
    ok(n > 0 && root->dropped == n, "a full table drops (%llu), counted",
       (unsigned long long) n);
    ok(pt_metrics_slot(root, PT_METRICS_REQUESTS, &a, "GET", 200) == s1,
       "a key already in keeps its slot");
    is_int(tap_log_count("zone is full"), 1, "one log line for all the drops");

    tap_log_close();

    return tap_failed ? 1 : 0;
}
