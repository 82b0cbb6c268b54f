/*
 * pt_yaml.c: what consumers of the tree use: lookups, messages that carry
 * FILE:LINE:COL, and the key index (see pt_yaml.h). The loader is in
 * pt_yaml_load.c, include: processing in pt_yaml_include.c.
 */

#include "pt_yaml.h"
#include "pt_string.h"


#define PT_YAML_LINEAR_MAX   8      /* maps this small are searched linearly */
#define PT_YAML_MSG_MAX      1024


static int pt_yaml_verror(pt_pool_t *pool, pt_str_t *err, const char *file,
    unsigned line, unsigned col, const char *fmt, va_list args);


pt_yaml_node_t *
pt_yaml_map_get(pt_yaml_node_t *map, const char *key)
{
    size_t     i, len;
    pt_str_t  *k;

    if (map == NULL || map->type != PT_YAML_MAP) {
        return NULL;
    }

    len = strlen(key);

    for (i = 0; i < map->n; i++) {
        k = &map->pairs[i].key->scalar;

        if (k->len == len && memcmp(k->data, key, len) == 0) {
            return map->pairs[i].value;
        }
    }

    return NULL;
}


const char *
pt_yaml_type_name(pt_yaml_node_t *node)
{
    if (node == NULL) {
        return "nothing";
    }

    switch (node->type) {
    case PT_YAML_SCALAR:
        return "scalar";
    case PT_YAML_SEQ:
        return "sequence";
    default:
        return "map";
    }
}


int
pt_yaml_error(pt_pool_t *pool, pt_str_t *err, const pt_yaml_node_t *node,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    pt_yaml_verror(pool, err, node->file, node->line, node->col, fmt, args);
    va_end(args);

    return PT_ERROR;
}


int
pt_yaml_error_at(pt_pool_t *pool, pt_str_t *err, const char *file,
    unsigned line, unsigned col, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    pt_yaml_verror(pool, err, file, line, col, fmt, args);
    va_end(args);

    return PT_ERROR;
}


static int
pt_yaml_verror(pt_pool_t *pool, pt_str_t *err, const char *file,
    unsigned line, unsigned col, const char *fmt, va_list args)
{
    char    *p;
    char     msg[PT_YAML_MSG_MAX];
    size_t   len;

    if (vsnprintf(msg, sizeof(msg), fmt, args) < 0) {
        msg[0] = '\0';
    }

    if (file == NULL) {
        file = "(unknown)";
    }

    if (line == 0) {
        p = pt_psprintf(pool, &len, "%s: %s", file, msg);

    } else {
        p = pt_psprintf(pool, &len, "%s:%u:%u: %s", file, line, col, msg);
    }

    if (p == NULL) {
        pt_str_set(err, "out of memory while reporting a configuration "
                   "error");
        return PT_ERROR;
    }

    err->data = p;
    err->len = len;

    return PT_ERROR;
}


int
pt_yaml_dup_error(pt_pool_t *pool, pt_str_t *err, const pt_yaml_node_t *key,
    const pt_yaml_node_t *first)
{
    const char  *name;

    name = pt_yaml_printable(pool, key->scalar.data, key->scalar.len, 64);

    if (key->file == first->file || strcmp(key->file, first->file) == 0) {
        return pt_yaml_error(pool, err, key,
                             "duplicate key \"%s\" (first at %u:%u)", name,
                             first->line, first->col);
    }

    return pt_yaml_error(pool, err, key,
                         "duplicate key \"%s\" (first at %s:%u:%u)", name,
                         first->file, first->line, first->col);
}


const char *
pt_yaml_printable(pt_pool_t *pool, const char *s, size_t len, size_t max)
{
    char    *p;
    size_t   i, n;

    n = pt_min(len, max);

    p = pt_pnalloc(pool, n + sizeof("..."));
    if (p == NULL) {
        return "(out of memory)";
    }

    for (i = 0; i < n; i++) {
        p[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    }

    if (len > n) {
        memcpy(p + n, "...", 3);
        n += 3;
    }

    p[n] = '\0';

    return p;
}


int
pt_yaml_keyset_init(pt_yaml_keyset_t *ks, pt_yaml_pair_t *pairs, size_t n,
    size_t *dup, size_t *first)
{
    int              rc;
    void            *old;
    size_t           i, j;
    pt_str_t        *key;

    ks->pairs = pairs;
    ks->n = 0;
    ks->pool = NULL;

    if (n <= PT_YAML_LINEAR_MAX) {
        for (i = 0; i < n; i++) {
            j = pt_yaml_keyset_find(ks, &pairs[i].key->scalar);
            if (j != SIZE_MAX) {
                *dup = i;
                *first = j;
                return PT_DECLINED;
            }

            ks->n = i + 1;
        }

        return PT_OK;
    }

    ks->pool = pt_pool_create(PT_POOL_DEFAULT_SIZE);
    if (ks->pool == NULL || pt_hash_init(&ks->index, ks->pool, n, 0) != PT_OK)
    {
        pt_yaml_keyset_free(ks);
        return PT_ERROR;
    }

    for (i = 0; i < n; i++) {
        key = &pairs[i].key->scalar;
        rc = pt_hash_add(&ks->index, key->data, key->len, &pairs[i], &old);
        if (rc != PT_OK) {
            pt_yaml_keyset_free(ks);

            if (rc == PT_DECLINED) {
                *dup = i;
                *first = (size_t) ((pt_yaml_pair_t *) old - pairs);
            }

            return rc;
        }

        ks->n = i + 1;
    }

    return PT_OK;
}


size_t
pt_yaml_keyset_find(pt_yaml_keyset_t *ks, const pt_str_t *key)
{
    size_t           i;
    pt_yaml_pair_t  *p;

    if (ks->pool == NULL) {
        for (i = 0; i < ks->n; i++) {
            if (pt_str_equal(&ks->pairs[i].key->scalar, key)) {
                return i;
            }
        }

        return SIZE_MAX;
    }

    p = pt_hash_find(&ks->index, key->data, key->len);

    return p ? (size_t) (p - ks->pairs) : SIZE_MAX;
}


void
pt_yaml_keyset_free(pt_yaml_keyset_t *ks)
{
    pt_pool_destroy(ks->pool);
    ks->pool = NULL;
}
