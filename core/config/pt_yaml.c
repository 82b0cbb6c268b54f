/*
 * pt_yaml.c: what consumers of the tree use: lookups, messages that carry
 * FILE:LINE:COL, and the key index (see pt_yaml.h). The loader is in
 * pt_yaml_load.c, include: processing in pt_yaml_include.c.
 */

#include <time.h>

#include "pt_yaml.h"
#include "pt_string.h"


#define PT_YAML_LINEAR_MAX   8      /* maps this small are searched linearly */
#define PT_YAML_MSG_MAX      1024


static int pt_yaml_verror(pt_pool_t *pool, pt_str_t *err, const char *file,
    unsigned line, unsigned col, const char *fmt, va_list args);
static size_t pt_yaml_keyset_slot(pt_yaml_keyset_t *ks, const pt_str_t *key,
    size_t *slot);


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
    size_t  i, j, size, slot;

    ks->pairs = pairs;
    ks->n = 0;
    ks->slots = NULL;
    ks->mask = 0;

    if (n > PT_YAML_LINEAR_MAX) {
        /* at least twice n slots keep probe sequences short */
        for (size = 16; size < n * 2; size *= 2) { /* void */ }

        ks->slots = calloc(size, sizeof(uint32_t));
        if (ks->slots == NULL) {
            return PT_ERROR;
        }

        ks->mask = size - 1;
    }

    for (i = 0; i < n; i++) {
        slot = 0;

        j = pt_yaml_keyset_slot(ks, &pairs[i].key->scalar, &slot);
        if (j != SIZE_MAX) {
            pt_yaml_keyset_free(ks);
            *dup = i;
            *first = j;
            return PT_DECLINED;
        }

        if (ks->slots) {
            ks->slots[slot] = (uint32_t) (i + 1);
        }

        ks->n = i + 1;
    }

    return PT_OK;
}


size_t
pt_yaml_keyset_find(pt_yaml_keyset_t *ks, const pt_str_t *key)
{
    size_t  slot;

    return pt_yaml_keyset_slot(ks, key, &slot);
}


/* The index of the pair with this key; or SIZE_MAX and, when indexed, the
 * free slot where it would go. */
static size_t
pt_yaml_keyset_slot(pt_yaml_keyset_t *ks, const pt_str_t *key, size_t *slot)
{
    size_t    i;
    uint32_t  s;

    if (ks->slots == NULL) {
        for (i = 0; i < ks->n; i++) {
            if (pt_str_equal(&ks->pairs[i].key->scalar, key)) {
                return i;
            }
        }

        return SIZE_MAX;
    }

    i = pt_yaml_hash(key->data, key->len) & ks->mask;

    for ( ;; ) {
        s = ks->slots[i];
        if (s == 0) {
            *slot = i;
            return SIZE_MAX;
        }

        if (pt_str_equal(&ks->pairs[s - 1].key->scalar, key)) {
            return s - 1;
        }

        i = (i + 1) & ks->mask;
    }
}


void
pt_yaml_keyset_free(pt_yaml_keyset_t *ks)
{
    free(ks->slots);
    ks->slots = NULL;
}


/* The keys come from whoever wrote the file: a per-process seed keeps
 * colliding keys from being prepared in advance. */
uint64_t
pt_yaml_hash(const char *data, size_t len)
{
    static uint64_t  seed;

    if (seed == 0) {
        seed = ((uint64_t) (uintptr_t) &seed << 16)
               ^ ((uint64_t) getpid() << 32) ^ (uint64_t) time(NULL)
               ^ 0x9e3779b97f4a7c15ULL;
    }

    return pt_hash_fnv1a(data, len, seed);
}
