/*
 * pt_yaml_include.c: the top-level include: key, resolved into one tree
 * (see pt_yaml_resolve_includes() in pt_yaml.h).
 */

#include <glob.h>
#include <sys/stat.h>

#include "pt_yaml.h"
#include "pt_string.h"


#define PT_YAML_PATH_MAX     256    /* bytes of a path quoted in messages */


typedef struct {
    dev_t                   dev;
    ino_t                   ino;
    const pt_yaml_node_t   *where;  /* the include entry; NULL: main file */
} pt_yaml_seen_t;


typedef struct {
    pt_pool_t         *pool;
    const char        *prefix;
    pt_str_t          *err;
    pt_yaml_seen_t    *seen;       /* every file loaded so far            */
    size_t             nseen;
    size_t             seen_cap;
} pt_yaml_inc_t;


static int pt_yaml_include(pt_yaml_inc_t *inc, pt_yaml_node_t *root,
    unsigned level);
static int pt_yaml_include_entry(pt_yaml_inc_t *inc, pt_yaml_node_t *root,
    pt_yaml_node_t *entry, unsigned level);
static int pt_yaml_glob_error(const char *path, int err);
static char *pt_yaml_glob_escape(pt_pool_t *pool, const char *s);
static int pt_yaml_include_file(pt_yaml_inc_t *inc, pt_yaml_node_t *root,
    pt_yaml_node_t *entry, const char *path, unsigned level);
static int pt_yaml_seen_add(pt_yaml_inc_t *inc, dev_t dev, ino_t ino,
    const pt_yaml_node_t *where);
static int pt_yaml_merge(pt_yaml_inc_t *inc, pt_yaml_node_t *root,
    pt_yaml_node_t *sub);
static pt_yaml_node_t *pt_yaml_concat(pt_yaml_inc_t *inc,
    pt_yaml_node_t *a, pt_yaml_node_t *b);


int
pt_yaml_resolve_includes(pt_pool_t *pool, pt_yaml_node_t *root,
    const char *prefix, pt_str_t *err)
{
    int            rc;
    struct stat    st;
    pt_yaml_inc_t  inc;

    if (root == NULL || root->type != PT_YAML_MAP) {
        pt_str_set(err, "include: the configuration root is not a map");
        return PT_ERROR;
    }

    inc.pool = pool;
    inc.prefix = (prefix && prefix[0]) ? prefix : NULL;
    inc.err = err;
    inc.seen = NULL;
    inc.nseen = 0;
    inc.seen_cap = 0;

    /* Including the main file again is a cycle like any other. It may not
     * be a file at all (loaded from a string): then there is nothing to
     * remember. */
    rc = PT_OK;

    if (root->file && stat(root->file, &st) == 0 && S_ISREG(st.st_mode)) {
        rc = pt_yaml_seen_add(&inc, st.st_dev, st.st_ino, NULL);
        if (rc != PT_OK) {
            pt_yaml_error(pool, err, root, "out of memory");
        }
    }

    if (rc == PT_OK) {
        rc = pt_yaml_include(&inc, root, 0);
    }

    free(inc.seen);

    return rc;
}


static int
pt_yaml_include(pt_yaml_inc_t *inc, pt_yaml_node_t *root, unsigned level)
{
    size_t           i;
    pt_yaml_node_t  *value;

    for (i = 0; i < root->n; i++) {
        if (pt_str_eq(&root->pairs[i].key->scalar, "include")) {
            break;
        }
    }

    if (i == root->n) {
        return PT_OK;
    }

    value = root->pairs[i].value;

    memmove(&root->pairs[i], &root->pairs[i + 1],
            (root->n - i - 1) * sizeof(pt_yaml_pair_t));
    root->n--;

    if (value->type == PT_YAML_SCALAR) {
        return pt_yaml_include_entry(inc, root, value, level);
    }

    if (value->type != PT_YAML_SEQ) {
        return pt_yaml_error(inc->pool, inc->err, value,
                             "include: expected a path or a sequence of paths, not a map");
    }

    for (i = 0; i < value->n; i++) {
        if (value->items[i]->type != PT_YAML_SCALAR) {
            return pt_yaml_error(inc->pool, inc->err, value->items[i],
                                 "include: expected a path, not a %s",
                                 pt_yaml_type_name(value->items[i]));
        }

        if (pt_yaml_include_entry(inc, root, value->items[i], level)
            != PT_OK)
        {
            return PT_ERROR;
        }
    }

    return PT_OK;
}


static int
pt_yaml_include_entry(pt_yaml_inc_t *inc, pt_yaml_node_t *root,
    pt_yaml_node_t *entry, unsigned level)
{
    int          rc, is_glob;
    char        *path, *prefix;
    size_t       i;
    glob_t       g;
    const char  *sep;
    pt_str_t    *e;

    if (entry->scalar.len == 0) {
        return pt_yaml_error(inc->pool, inc->err, entry,
                             "include: empty path");
    }

    if (level >= PT_YAML_MAX_INCLUDE) {
        return pt_yaml_error(inc->pool, inc->err, entry,
                             "include: nested deeper than %d files",
                             PT_YAML_MAX_INCLUDE);
    }

    e = &entry->scalar;
    is_glob = (strpbrk(e->data, "*?[") != NULL);

    if (e->data[0] == '/' || inc->prefix == NULL) {
        path = e->data;

    } else {
        /* The prefix is a directory name, never a pattern. */
        prefix = is_glob ? pt_yaml_glob_escape(inc->pool, inc->prefix)
                         : (char *) inc->prefix;
        sep = inc->prefix[strlen(inc->prefix) - 1] == '/' ? "" : "/";

        path = prefix ? pt_psprintf(inc->pool, NULL, "%s%s%s", prefix, sep,
                                    e->data)
                      : NULL;
        if (path == NULL) {
            return pt_yaml_error(inc->pool, inc->err, entry,
                                 "out of memory");
        }
    }

    if (!is_glob) {
        return pt_yaml_include_file(inc, root, entry, path, level);
    }

    rc = glob(path, 0, pt_yaml_glob_error, &g);

    if (rc == GLOB_NOMATCH) {
        return PT_OK;
    }

    if (rc != 0) {
        return pt_yaml_error(inc->pool, inc->err, entry,
                             "include: cannot expand \"%s\": %s",
                             pt_yaml_printable(inc->pool, path, strlen(path),
                                               PT_YAML_PATH_MAX),
                             rc == GLOB_NOSPACE ? "out of memory"
                                                : "a directory is unreadable");
    }

    rc = PT_OK;

    for (i = 0; i < g.gl_pathc && rc == PT_OK; i++) {
        path = pt_pstrndup(inc->pool, g.gl_pathv[i], strlen(g.gl_pathv[i]));
        if (path == NULL) {
            rc = pt_yaml_error(inc->pool, inc->err, entry, "out of memory");
            break;
        }

        rc = pt_yaml_include_file(inc, root, entry, path, level);
    }

    globfree(&g);

    return rc;
}


/* Missing directories just mean no match; anything else stops the glob. */
static int
pt_yaml_glob_error(const char *path, int err)
{
    return err != ENOENT && err != ENOTDIR;
}


static char *
pt_yaml_glob_escape(pt_pool_t *pool, const char *s)
{
    char    *p, *d;
    size_t   len;

    len = strlen(s);

    /* len is the length of a string in memory: 2 * len + 1 cannot wrap */
    p = pt_pnalloc(pool, 2 * len + 1);
    if (p == NULL) {
        return NULL;
    }

    for (d = p; *s; s++) {
        if (strchr("*?[]\\", *s) != NULL) {
            *d++ = '\\';
        }

        *d++ = *s;
    }

    *d = '\0';

    return p;
}


static int
pt_yaml_include_file(pt_yaml_inc_t *inc, pt_yaml_node_t *root,
    pt_yaml_node_t *entry, const char *path, unsigned level)
{
    size_t                 i;
    struct stat            st;
    pt_yaml_node_t        *sub;
    const char            *name;
    const pt_yaml_node_t  *w;

    name = pt_yaml_printable(inc->pool, path, strlen(path),
                             PT_YAML_PATH_MAX);

    if (stat(path, &st) == -1 || access(path, R_OK) == -1) {
        return pt_yaml_error(inc->pool, inc->err, entry,
                             "include: cannot open \"%s\": %s", name,
                             strerror(errno));
    }

    if (!S_ISREG(st.st_mode)) {
        return pt_yaml_error(inc->pool, inc->err, entry,
                             "include: \"%s\" is not a regular file", name);
    }

    for (i = 0; i < inc->nseen; i++) {
        if (inc->seen[i].dev != st.st_dev || inc->seen[i].ino != st.st_ino) {
            continue;
        }

        w = inc->seen[i].where;
        if (w == NULL) {
            return pt_yaml_error(inc->pool, inc->err, entry,
                                 "include: \"%s\" is the main configuration file",
                                 name);
        }

        return pt_yaml_error(inc->pool, inc->err, entry,
                             "include: \"%s\" is already included at %s:%u:%u",
                             name, w->file, w->line, w->col);
    }

    if (pt_yaml_seen_add(inc, st.st_dev, st.st_ino, entry) != PT_OK) {
        return pt_yaml_error(inc->pool, inc->err, entry, "out of memory");
    }

    if (pt_yaml_load_file(inc->pool, path, &sub, inc->err) != PT_OK) {
        return PT_ERROR;
    }

    if (pt_yaml_include(inc, sub, level + 1) != PT_OK) {
        return PT_ERROR;
    }

    return pt_yaml_merge(inc, root, sub);
}


static int
pt_yaml_seen_add(pt_yaml_inc_t *inc, dev_t dev, ino_t ino,
    const pt_yaml_node_t *where)
{
    size_t           cap;
    pt_yaml_seen_t  *ns;

    if (inc->nseen == inc->seen_cap) {
        cap = inc->seen_cap ? inc->seen_cap * 2 : 16;
        ns = realloc(inc->seen, cap * sizeof(pt_yaml_seen_t));
        if (ns == NULL) {
            return PT_ERROR;
        }

        inc->seen = ns;
        inc->seen_cap = cap;
    }

    inc->seen[inc->nseen].dev = dev;
    inc->seen[inc->nseen].ino = ino;
    inc->seen[inc->nseen].where = where;
    inc->nseen++;

    return PT_OK;
}


static int
pt_yaml_merge(pt_yaml_inc_t *inc, pt_yaml_node_t *root, pt_yaml_node_t *sub)
{
    int               rc;
    size_t            i, j, k, n, dup, first;
    pt_yaml_pair_t   *pairs, *s;
    pt_yaml_node_t   *a, *b;
    pt_yaml_keyset_t  ks, vks;

    if (sub->n == 0) {
        return PT_OK;
    }

    /* both counts are bounded by the node limit: no overflow */
    pairs = pt_palloc(inc->pool, (root->n + sub->n) * sizeof(pt_yaml_pair_t));
    if (pairs == NULL) {
        return pt_yaml_error(inc->pool, inc->err, sub, "out of memory");
    }

    if (root->n) {
        memcpy(pairs, root->pairs, root->n * sizeof(pt_yaml_pair_t));
    }

    n = root->n;

    /* root's keys are unique, and so are sub's: look sub's up in root's */
    if (pt_yaml_keyset_init(&ks, pairs, root->n, &dup, &first)
        != PT_OK)
    {
        return pt_yaml_error(inc->pool, inc->err, sub, "out of memory");
    }

    rc = PT_OK;

    for (i = 0; i < sub->n && rc == PT_OK; i++) {
        s = &sub->pairs[i];

        j = pt_yaml_keyset_find(&ks, &s->key->scalar);
        if (j == SIZE_MAX) {
            pairs[n++] = *s;
            continue;
        }

        a = pairs[j].value;
        b = s->value;

        if (a->type == PT_YAML_SEQ && b->type == PT_YAML_SEQ) {
            pairs[j].value = pt_yaml_concat(inc, a, b);
            if (pairs[j].value == NULL) {
                rc = PT_ERROR;
            }

            continue;
        }

        if (a->type != PT_YAML_MAP || b->type != PT_YAML_MAP) {
            rc = pt_yaml_dup_error(inc->pool, inc->err, s->key,
                                   pairs[j].key);
            break;
        }

        if (pt_yaml_keyset_init(&vks, a->pairs, a->n, &dup, &first)
            != PT_OK)
        {
            rc = pt_yaml_error(inc->pool, inc->err, b, "out of memory");
            break;
        }

        for (k = 0; k < b->n; k++) {
            dup = pt_yaml_keyset_find(&vks, &b->pairs[k].key->scalar);
            if (dup != SIZE_MAX) {
                rc = pt_yaml_dup_error(inc->pool, inc->err, b->pairs[k].key,
                                       a->pairs[dup].key);
                break;
            }
        }

        pt_yaml_keyset_free(&vks);

        if (rc == PT_OK) {
            pairs[j].value = pt_yaml_concat(inc, a, b);
            if (pairs[j].value == NULL) {
                rc = PT_ERROR;
            }
        }
    }

    pt_yaml_keyset_free(&ks);

    if (rc != PT_OK) {
        return rc;
    }

    root->pairs = pairs;
    root->n = n;

    return PT_OK;
}


/* A new node like a, holding a's children then b's (same kind). */
static pt_yaml_node_t *
pt_yaml_concat(pt_yaml_inc_t *inc, pt_yaml_node_t *a, pt_yaml_node_t *b)
{
    size_t           size;
    char            *p;
    pt_yaml_node_t  *node;

    size = (a->type == PT_YAML_MAP) ? sizeof(pt_yaml_pair_t)
                                    : sizeof(pt_yaml_node_t *);

    node = pt_palloc(inc->pool, sizeof(pt_yaml_node_t));
    p = pt_palloc(inc->pool, (a->n + b->n) * size + 1);

    if (node == NULL || p == NULL) {
        pt_yaml_error(inc->pool, inc->err, b, "out of memory");
        return NULL;
    }

    *node = *a;
    node->n = a->n + b->n;

    if (a->type == PT_YAML_MAP) {
        if (a->n) {
            memcpy(p, a->pairs, a->n * size);
        }

        if (b->n) {
            memcpy(p + a->n * size, b->pairs, b->n * size);
        }

        node->pairs = (pt_yaml_pair_t *) p;

    } else {
        if (a->n) {
            memcpy(p, a->items, a->n * size);
        }

        if (b->n) {
            memcpy(p + a->n * size, b->items, b->n * size);
        }

        node->items = (pt_yaml_node_t **) p;
    }

    return node;
}
