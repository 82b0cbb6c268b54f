/*
 * tap.h: the smallest TAP producer, for the C unit tests in t/unit.
 *
 * Each test binary prints "1..N" and one "ok"/"not ok" line per check; the
 * harness t/00unit.t runs them under prove.
 */

#ifndef PT_TAP_H
#define PT_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int  tap_n;
static int  tap_failed;

#define tap_plan(n)  printf("1..%d\n", (int) (n))

#define ok(cond, ...)                                                      \
    do {                                                                   \
        int c_ = (cond) ? 1 : 0;                                           \
        tap_n++;                                                           \
        if (!c_) {                                                         \
            tap_failed++;                                                  \
        }                                                                  \
        printf("%sok %d - ", c_ ? "" : "not ", tap_n);                     \
        printf(__VA_ARGS__);                                               \
        printf("\n");                                                      \
        if (!c_) {                                                         \
            printf("#   failed at %s line %d\n", __FILE__, __LINE__);     \
        }                                                                  \
        fflush(stdout);                                                    \
    } while (0)

#define is_int(got, want, ...)                                             \
    do {                                                                   \
        long long g_ = (long long) (got), w_ = (long long) (want);         \
        ok(g_ == w_, __VA_ARGS__);                                         \
        if (g_ != w_) {                                                    \
            printf("#   got %lld, want %lld\n", g_, w_);                   \
        }                                                                  \
    } while (0)

#define is_str(got, glen, want, ...)                                       \
    do {                                                                   \
        size_t wl_ = strlen(want);                                         \
        int eq_ = ((size_t) (glen) == wl_                                  \
                   && memcmp((got), (want), wl_) == 0);                    \
        ok(eq_, __VA_ARGS__);                                              \
        if (!eq_) {                                                        \
            printf("#   got '%.*s', want '%s'\n", (int) (glen),            \
                   (const char *) (got), (want));                          \
        }                                                                  \
    } while (0)

#define tap_done()   (tap_failed ? 1 : 0)

#endif /* PT_TAP_H */
