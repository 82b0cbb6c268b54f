/*
 * pt_regex.h: PCRE2 regular expressions, compiled (and JIT-compiled) at
 * config load.
 *
 * Each regex owns a match-data block sized for its captures; workers get
 * their own copy by fork, so matching allocates nothing.
 */

#ifndef PT_REGEX_H
#define PT_REGEX_H

#include "pt_core.h"
#include "pt_conf.h"


typedef struct pt_regex_s  pt_regex_t;

/* Compile pattern; on error report "what: PCRE2 message at offset N" at
 * node's position and return NULL. The regex lives as long as the cycle. */
pt_regex_t *pt_regex_compile(pt_conf_t *cf, pt_yaml_node_t *node,
    const char *what, const char *pattern, size_t len);

/* Number of capturing groups in the pattern. */
uint32_t pt_regex_captures(const pt_regex_t *re);

/* Match s; on a match, caps (2 * ncaps ints) gets start/end offsets of
 * the whole match and each group (-1 for unset groups) and the number of
 * pairs filled is returned (>= 1). 0 when it does not match, PT_ERROR on
 * a matching error (logged). */
int pt_regex_exec(pt_regex_t *re, const char *s, size_t len, int *caps,
    size_t ncaps);


#endif /* PT_REGEX_H */
