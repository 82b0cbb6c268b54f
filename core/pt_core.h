/*
 * pt_core.h: the one header every Portico source file includes first.
 *
 * It pulls in the system headers the core relies on, defines the return
 * codes shared by every layer, and declares the small value types (strings,
 * time) that everything else is written in terms of.
 */

#ifndef PT_CORE_H
#define PT_CORE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <unistd.h>


typedef intptr_t   pt_int_t;
typedef uintptr_t  pt_uint_t;
typedef uint64_t   pt_msec_t;       /* milliseconds, monotonic or epoch */


/* Return codes: every layer speaks these; HTTP handlers may also return a
 * status >= 100. */
#define PT_OK          0
#define PT_ERROR      -1
#define PT_AGAIN      -2
#define PT_BUSY       -3
#define PT_DONE       -4
#define PT_DECLINED   -5

#define PT_CONTINUE    PT_OK          /* phase handler: go on */


typedef struct pt_pool_s          pt_pool_t;
typedef struct pt_log_s           pt_log_t;
typedef struct pt_buf_s           pt_buf_t;
typedef struct pt_chain_s         pt_chain_t;
typedef struct pt_event_s         pt_event_t;
typedef struct pt_connection_s    pt_connection_t;
typedef struct pt_cycle_s         pt_cycle_t;
typedef struct pt_conf_s          pt_conf_t;
typedef struct pt_module_s        pt_module_t;
typedef struct pt_yaml_node_s     pt_yaml_node_t;
typedef struct pt_shm_zone_s      pt_shm_zone_t;
typedef struct pt_slab_pool_s     pt_slab_pool_t;
typedef struct pt_http_request_s  pt_http_request_t;
typedef struct pt_template_s      pt_template_t;


/* A counted string. It is not NUL-terminated unless its creator says so;
 * most point into a buffer they do not own. */
typedef struct {
    size_t   len;
    char    *data;
} pt_str_t;

#define pt_string(s)        { sizeof(s) - 1, (char *) (s) }
#define pt_null_string      { 0, NULL }
#define pt_str_set(str, s)  ((str)->len = sizeof(s) - 1, \
                             (str)->data = (char *) (s))
#define pt_str_null(str)    ((str)->len = 0, (str)->data = NULL)


#define pt_min(a, b)        ((a) < (b) ? (a) : (b))
#define pt_max(a, b)        ((a) > (b) ? (a) : (b))
#define pt_nelems(a)        (sizeof(a) / sizeof((a)[0]))
#define pt_align(d, a)      (((d) + ((a) - 1)) & ~((a) - 1))
#define pt_align_ptr(p, a)                                                  \
    (void *) (((uintptr_t) (p) + ((uintptr_t) (a) - 1))                     \
              & ~((uintptr_t) (a) - 1))

#define PT_ALIGNMENT        sizeof(void *)

/* memcpy that returns the end of what it wrote; pt_cpystr for literals. */
#define pt_cpymem(dst, src, n) \
    (((char *) memcpy((dst), (src), (n))) + (n))
#define pt_cpystr(dst, lit)    pt_cpymem((dst), (lit), sizeof(lit) - 1)

#define pt_unused(x)        (void) (x)

#if defined(__GNUC__)
#define pt_likely(x)        __builtin_expect(!!(x), 1)
#define pt_unlikely(x)      __builtin_expect(!!(x), 0)
#define PT_PRINTF(f, a)     __attribute__((format(printf, f, a)))
#else
#define pt_likely(x)        (x)
#define pt_unlikely(x)      (x)
#define PT_PRINTF(f, a)
#endif


#define PT_VERSION          "0.1.0"
#define PT_VER              "portico/" PT_VERSION


#endif /* PT_CORE_H */
