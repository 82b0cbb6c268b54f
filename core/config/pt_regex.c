/*
 * pt_regex.c: PCRE2 wrapper (see pt_regex.h).
 */

#define PCRE2_CODE_UNIT_WIDTH  8
#include <pcre2.h>

#include "pt_regex.h"
#include "pt_log.h"


struct pt_regex_s {
    pcre2_code        *code;
    pcre2_match_data  *md;
    uint32_t           captures;
    unsigned           jit:1;
};


static void
pt_regex_cleanup(void *data)
{
    pt_regex_t  *re;

    re = data;

    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
}


pt_regex_t *
pt_regex_compile(pt_conf_t *cf, pt_yaml_node_t *node, const char *what,
    const char *pattern, size_t len)
{
    int          err;
    PCRE2_SIZE   off;
    PCRE2_UCHAR  msg[256];
    pt_regex_t  *re;

    re = pt_pcalloc(cf->pool, sizeof(pt_regex_t));
    if (re == NULL) {
        return NULL;
    }

    re->code = pcre2_compile((PCRE2_SPTR) pattern, len, 0, &err, &off, NULL);

    if (re->code == NULL) {
        pcre2_get_error_message(err, msg, sizeof(msg));
        (void) pt_conf_error(cf, node, "%s: %s at offset %zu of \"%.*s\"",
                             what, (char *) msg, (size_t) off, (int) len,
                             pattern);
        return NULL;
    }

    re->md = pcre2_match_data_create_from_pattern(re->code, NULL);

    if (re->md == NULL
        || pt_pool_cleanup_add(cf->pool, pt_regex_cleanup, re) == NULL)
    {
        pcre2_match_data_free(re->md);
        pcre2_code_free(re->code);
        return NULL;
    }

    /* JIT where the platform has it; the interpreter otherwise. */
    re->jit = pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE) == 0;

    (void) pcre2_pattern_info(re->code, PCRE2_INFO_CAPTURECOUNT,
                              &re->captures);

    return re;
}


uint32_t
pt_regex_captures(const pt_regex_t *re)
{
    return re->captures;
}


int
pt_regex_exec(pt_regex_t *re, const char *s, size_t len, int *caps,
    size_t ncaps)
{
    int          rc;
    size_t       i, n;
    PCRE2_SIZE  *ov;

    rc = pcre2_match(re->code, (PCRE2_SPTR) s, len, 0, 0, re->md, NULL);

    if (rc == PCRE2_ERROR_NOMATCH) {
        return 0;
    }

    if (rc < 0) {
        pt_log_error(PT_LOG_ERR, NULL, 0, "pcre2_match() failed: %d", rc);
        return PT_ERROR;
    }

    if (rc == 0) {
        rc = (int) pcre2_get_ovector_count(re->md);
    }

    ov = pcre2_get_ovector_pointer(re->md);
    n = pt_min((size_t) rc, ncaps);

    for (i = 0; i < n; i++) {
        caps[2 * i] = (ov[2 * i] == PCRE2_UNSET) ? -1 : (int) ov[2 * i];
        caps[2 * i + 1] = (ov[2 * i + 1] == PCRE2_UNSET)
                          ? -1 : (int) ov[2 * i + 1];
    }

    return (int) n;
}
