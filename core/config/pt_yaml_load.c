/*
 * pt_yaml_load.c: libyaml events to a pt_yaml_node_t tree, with the limits
 * and checks pt_yaml.h promises.
 */

#include <fcntl.h>
#include <sys/stat.h>

#include <yaml.h>

#include "pt_yaml.h"
#include "pt_string.h"


#define PT_YAML_TAG          "tag:yaml.org,2002:"
#define PT_YAML_PRINT_MAX    64     /* bytes of a name quoted in messages */


/* A collection being built: its children are gathered in a malloc'd buffer
 * (reused by the next collection at the same depth) and copied into the
 * pool, at their final size, once the collection ends. */
typedef struct {
    pt_yaml_node_t    *node;
    void              *buf;
    size_t             cap;        /* bytes in buf                        */
    size_t             n;          /* children gathered                   */
    pt_yaml_node_t    *key;        /* MAP: a key waiting for its value    */
    pt_str_t           anchor;     /* registered when the node is done    */
    size_t             count;      /* nodes in the subtree, aliases expanded */
    unsigned           height;     /* collection levels in the subtree    */
} pt_yaml_frame_t;


typedef struct {
    pt_yaml_node_t    *node;
    size_t             count;
    unsigned           height;
} pt_yaml_anchor_t;


typedef struct {
    pt_pool_t         *pool;
    pt_pool_t         *temp;       /* anchors; gone after the load        */
    const char        *file;
    const char        *data;
    size_t             len;
    pt_str_t          *err;
    pt_yaml_node_t    *root;
    size_t             depth;      /* open collections                    */
    size_t             total;      /* nodes so far, aliases expanded      */
    pt_hash_t          anchors;    /* name -> pt_yaml_anchor_t, in temp   */
    pt_yaml_frame_t    frames[PT_YAML_MAX_DEPTH];
} pt_yaml_loader_t;


static int pt_yaml_parse(pt_yaml_loader_t *ld);
static int pt_yaml_event(pt_yaml_loader_t *ld, yaml_event_t *ev);
static int pt_yaml_scalar(pt_yaml_loader_t *ld, yaml_event_t *ev);
static int pt_yaml_start(pt_yaml_loader_t *ld, yaml_event_t *ev,
    pt_yaml_type_e type);
static int pt_yaml_end(pt_yaml_loader_t *ld);
static int pt_yaml_alias(pt_yaml_loader_t *ld, yaml_event_t *ev);
static int pt_yaml_add(pt_yaml_loader_t *ld, pt_yaml_node_t *node,
    size_t count, unsigned height);
static int pt_yaml_count(pt_yaml_loader_t *ld, size_t n,
    const yaml_mark_t *mark);
static int pt_yaml_check_tag(pt_yaml_loader_t *ld, const yaml_char_t *tag,
    pt_yaml_type_e type, const yaml_mark_t *mark, int *is_str);
static pt_yaml_node_t *pt_yaml_node_new(pt_yaml_loader_t *ld,
    pt_yaml_type_e type, const yaml_mark_t *mark);
static int pt_yaml_finish(pt_yaml_loader_t *ld);
static int pt_yaml_syntax_error(pt_yaml_loader_t *ld, yaml_parser_t *p);
static int pt_yaml_fail(pt_yaml_loader_t *ld, const yaml_mark_t *mark,
    const char *fmt, ...) PT_PRINTF(3, 4);
static unsigned pt_yaml_pos(size_t v);
static int pt_yaml_anchor_set(pt_yaml_loader_t *ld, const pt_str_t *name,
    pt_yaml_node_t *node, size_t count, unsigned height);


int
pt_yaml_load_file(pt_pool_t *pool, const char *path, pt_yaml_node_t **root,
    pt_str_t *err)
{
    int          fd, rc;
    char        *buf;
    size_t       len, size;
    ssize_t      r;
    struct stat  st;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        return pt_yaml_error_at(pool, err, path, 0, 0, "cannot open: %s",
                                strerror(errno));
    }

    buf = NULL;
    len = 0;
    size = 0;
    rc = PT_ERROR;

    if (fstat(fd, &st) == -1) {
        pt_yaml_error_at(pool, err, path, 0, 0, "cannot stat: %s",
                         strerror(errno));

    } else if (!S_ISREG(st.st_mode)) {
        pt_yaml_error_at(pool, err, path, 0, 0, "not a regular file");

    } else if (st.st_size > PT_YAML_MAX_FILE_SIZE) {
        pt_yaml_error_at(pool, err, path, 0, 0, "larger than %d bytes",
                         PT_YAML_MAX_FILE_SIZE);

    } else {
        size = (size_t) st.st_size;
        buf = malloc(size + 1);
        rc = buf ? PT_OK : pt_yaml_error_at(pool, err, path, 0, 0,
                                            "out of memory");
    }

    /* One byte more than the size is asked for: a file that grows while
     * it is read is refused rather than cut short. */
    while (rc == PT_OK && len <= size) {
        r = read(fd, buf + len, size + 1 - len);

        if (r > 0) {
            len += (size_t) r;

        } else if (r == 0) {
            break;

        } else if (errno != EINTR) {
            rc = pt_yaml_error_at(pool, err, path, 0, 0, "cannot read: %s",
                                  strerror(errno));
        }
    }

    close(fd);

    if (rc == PT_OK && len > size) {
        rc = pt_yaml_error_at(pool, err, path, 0, 0,
                              "changed while being read");
    }

    if (rc == PT_OK) {
        rc = pt_yaml_load_string(pool, path, buf, len, root, err);
    }

    free(buf);

    return rc;
}


int
pt_yaml_load_string(pt_pool_t *pool, const char *name, const char *data,
    size_t len, pt_yaml_node_t **root, pt_str_t *err)
{
    int                rc;
    size_t             i;
    pt_yaml_loader_t  *ld;

    if (name == NULL) {
        name = "(string)";
    }

    ld = calloc(1, sizeof(pt_yaml_loader_t));
    if (ld == NULL) {
        return pt_yaml_error_at(pool, err, name, 0, 0, "out of memory");
    }

    ld->pool = pool;
    ld->err = err;
    ld->data = data;
    ld->len = len;

    ld->file = pt_pstrndup(pool, name, strlen(name));
    ld->temp = pt_pool_create(PT_POOL_DEFAULT_SIZE);

    if (ld->file == NULL || ld->temp == NULL
        || pt_hash_init(&ld->anchors, ld->temp, 0, 0) != PT_OK)
    {
        rc = pt_yaml_error_at(pool, err, name, 0, 0, "out of memory");

    } else {
        rc = pt_yaml_parse(ld);
    }

    if (rc == PT_OK) {
        *root = ld->root;
    }

    for (i = 0; i < PT_YAML_MAX_DEPTH; i++) {
        free(ld->frames[i].buf);
    }

    pt_pool_destroy(ld->temp);
    free(ld);

    return rc;
}


static int
pt_yaml_parse(pt_yaml_loader_t *ld)
{
    int            rc, done;
    yaml_event_t   ev;
    yaml_parser_t  parser;

    if (!yaml_parser_initialize(&parser)) {
        return pt_yaml_error_at(ld->pool, ld->err, ld->file, 0, 0,
                                "out of memory");
    }

    yaml_parser_set_input_string(&parser, (const unsigned char *) ld->data,
                                 ld->len);

    rc = PT_OK;
    done = 0;

    while (!done && rc == PT_OK) {
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = pt_yaml_syntax_error(ld, &parser);
            break;
        }

        done = (ev.type == YAML_STREAM_END_EVENT);
        rc = pt_yaml_event(ld, &ev);

        yaml_event_delete(&ev);
    }

    yaml_parser_delete(&parser);

    if (rc != PT_OK) {
        return rc;
    }

    return pt_yaml_finish(ld);
}


static int
pt_yaml_event(pt_yaml_loader_t *ld, yaml_event_t *ev)
{
    switch (ev->type) {

    case YAML_DOCUMENT_START_EVENT:
        if (ld->root != NULL) {
            return pt_yaml_fail(ld, &ev->start_mark,
                                "only one document is allowed in a file");
        }

        return PT_OK;

    case YAML_SCALAR_EVENT:
        return pt_yaml_scalar(ld, ev);

    case YAML_SEQUENCE_START_EVENT:
        return pt_yaml_start(ld, ev, PT_YAML_SEQ);

    case YAML_MAPPING_START_EVENT:
        return pt_yaml_start(ld, ev, PT_YAML_MAP);

    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return pt_yaml_end(ld);

    case YAML_ALIAS_EVENT:
        return pt_yaml_alias(ld, ev);

    default:
        return PT_OK;
    }
}


static int
pt_yaml_scalar(pt_yaml_loader_t *ld, yaml_event_t *ev)
{
    int              is_str;
    size_t           len;
    pt_str_t         anchor;
    const char      *value;
    pt_yaml_node_t  *node;

    value = (const char *) ev->data.scalar.value;
    len = ev->data.scalar.length;

    if (pt_yaml_count(ld, 1, &ev->start_mark) != PT_OK) {
        return PT_ERROR;
    }

    if (pt_yaml_check_tag(ld, ev->data.scalar.tag, PT_YAML_SCALAR,
                          &ev->start_mark, &is_str)
        != PT_OK)
    {
        return PT_ERROR;
    }

    if (len && memchr(value, '\0', len) != NULL) {
        return pt_yaml_fail(ld, &ev->start_mark,
                            "a value must not contain a NUL character");
    }

    node = pt_yaml_node_new(ld, PT_YAML_SCALAR, &ev->start_mark);
    if (node == NULL) {
        return PT_ERROR;
    }

    if (pt_str_dup(ld->pool, &node->scalar, len ? value : "", len) == NULL) {
        return pt_yaml_fail(ld, &ev->start_mark, "out of memory");
    }

    node->quoted = (is_str
                    || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE);

    if (ev->data.scalar.anchor != NULL) {
        anchor.data = (char *) ev->data.scalar.anchor;
        anchor.len = strlen(anchor.data);

        if (pt_yaml_anchor_set(ld, &anchor, node, 1, 0) != PT_OK) {
            return PT_ERROR;
        }
    }

    return pt_yaml_add(ld, node, 1, 0);
}


static int
pt_yaml_start(pt_yaml_loader_t *ld, yaml_event_t *ev, pt_yaml_type_e type)
{
    int               is_str;
    yaml_char_t      *tag, *anchor;
    pt_yaml_node_t   *node;
    pt_yaml_frame_t  *f;

    if (type == PT_YAML_SEQ) {
        tag = ev->data.sequence_start.tag;
        anchor = ev->data.sequence_start.anchor;

    } else {
        tag = ev->data.mapping_start.tag;
        anchor = ev->data.mapping_start.anchor;
    }

    if (ld->depth == PT_YAML_MAX_DEPTH) {
        return pt_yaml_fail(ld, &ev->start_mark,
                            "nesting deeper than %d levels",
                            PT_YAML_MAX_DEPTH);
    }

    if (pt_yaml_count(ld, 1, &ev->start_mark) != PT_OK) {
        return PT_ERROR;
    }

    if (pt_yaml_check_tag(ld, tag, type, &ev->start_mark, &is_str)
        != PT_OK)
    {
        return PT_ERROR;
    }

    node = pt_yaml_node_new(ld, type, &ev->start_mark);
    if (node == NULL) {
        return PT_ERROR;
    }

    f = &ld->frames[ld->depth++];
    f->node = node;
    f->n = 0;
    f->key = NULL;
    f->count = 1;
    f->height = 1;
    pt_str_null(&f->anchor);

    if (anchor != NULL) {
        if (pt_str_dup(ld->temp, &f->anchor, (char *) anchor,
                       strlen((char *) anchor))
            == NULL)
        {
            return pt_yaml_fail(ld, &ev->start_mark, "out of memory");
        }
    }

    return PT_OK;
}


static int
pt_yaml_end(pt_yaml_loader_t *ld)
{
    void             *p;
    size_t            size, dup, first;
    pt_yaml_node_t   *node;
    pt_yaml_frame_t  *f;
    pt_yaml_keyset_t  ks;

    if (ld->depth == 0) {
        return PT_OK;
    }

    f = &ld->frames[--ld->depth];
    node = f->node;
    node->n = f->n;

    if (f->n > 0) {
        size = (node->type == PT_YAML_MAP) ? sizeof(pt_yaml_pair_t)
                                           : sizeof(pt_yaml_node_t *);

        /* f->n * size fits: it was allocated as f->buf */
        p = pt_palloc(ld->pool, f->n * size);
        if (p == NULL) {
            return pt_yaml_error(ld->pool, ld->err, node, "out of memory");
        }

        memcpy(p, f->buf, f->n * size);

        if (node->type == PT_YAML_SEQ) {
            node->items = p;

        } else {
            node->pairs = p;

            switch (pt_yaml_keyset_init(&ks, node->pairs, node->n, &dup,
                                        &first))
            {
            case PT_OK:
                pt_yaml_keyset_free(&ks);
                break;

            case PT_DECLINED:
                return pt_yaml_dup_error(ld->pool, ld->err,
                                         node->pairs[dup].key,
                                         node->pairs[first].key);

            default:
                return pt_yaml_error(ld->pool, ld->err, node,
                                     "out of memory");
            }
        }
    }

    if (f->anchor.data != NULL
        && pt_yaml_anchor_set(ld, &f->anchor, node, f->count, f->height)
           != PT_OK)
    {
        return PT_ERROR;
    }

    return pt_yaml_add(ld, node, f->count, f->height);
}


static int
pt_yaml_alias(pt_yaml_loader_t *ld, yaml_event_t *ev)
{
    const char        *name;
    pt_yaml_anchor_t  *a;

    name = (const char *) ev->data.alias.anchor;

    a = pt_hash_find(&ld->anchors, name, strlen(name));
    if (a == NULL) {
        return pt_yaml_fail(ld, &ev->start_mark,
                            "unknown alias \"%s\" (an alias must follow "
                            "its complete anchored node)",
                            pt_yaml_printable(ld->pool, name, strlen(name),
                                              PT_YAML_PRINT_MAX));
    }

    if (ld->depth + a->height > PT_YAML_MAX_DEPTH) {
        return pt_yaml_fail(ld, &ev->start_mark,
                            "alias \"%s\" nests deeper than %d levels",
                            pt_yaml_printable(ld->pool, name, strlen(name),
                                              PT_YAML_PRINT_MAX),
                            PT_YAML_MAX_DEPTH);
    }

    if (pt_yaml_count(ld, a->count, &ev->start_mark) != PT_OK) {
        return PT_ERROR;
    }

    return pt_yaml_add(ld, a->node, a->count, a->height);
}


/* Attach a finished node (count and height as if aliases were expanded)
 * to the open collection, or make it the root. */
static int
pt_yaml_add(pt_yaml_loader_t *ld, pt_yaml_node_t *node, size_t count,
    unsigned height)
{
    size_t            size, cap;
    void             *nb;
    pt_yaml_pair_t   *pair;
    pt_yaml_frame_t  *f;

    if (ld->depth == 0) {
        ld->root = node;
        return PT_OK;
    }

    f = &ld->frames[ld->depth - 1];
    f->count += count;
    f->height = pt_max(f->height, height + 1);

    if (f->node->type == PT_YAML_MAP && f->key == NULL) {
        if (node->type != PT_YAML_SCALAR) {
            return pt_yaml_error(ld->pool, ld->err, node,
                                 "a key must be a scalar, not a %s",
                                 pt_yaml_type_name(node));
        }

        f->key = node;
        return PT_OK;
    }

    size = (f->node->type == PT_YAML_MAP) ? sizeof(pt_yaml_pair_t)
                                          : sizeof(pt_yaml_node_t *);

    if ((f->n + 1) * size > f->cap) {
        /* f->n is bounded by PT_YAML_MAX_NODES: no overflow here */
        cap = pt_max(f->cap * 2, 16 * size);
        nb = realloc(f->buf, cap);
        if (nb == NULL) {
            return pt_yaml_error(ld->pool, ld->err, node, "out of memory");
        }

        f->buf = nb;
        f->cap = cap;
    }

    if (f->node->type == PT_YAML_MAP) {
        pair = (pt_yaml_pair_t *) f->buf + f->n;
        pair->key = f->key;
        pair->value = node;
        f->key = NULL;

    } else {
        ((pt_yaml_node_t **) f->buf)[f->n] = node;
    }

    f->n++;

    return PT_OK;
}


static int
pt_yaml_count(pt_yaml_loader_t *ld, size_t n, const yaml_mark_t *mark)
{
    if (n > PT_YAML_MAX_NODES - ld->total) {
        return pt_yaml_fail(ld, mark, "more than %d nodes (aliases "
                            "counted as expanded)", PT_YAML_MAX_NODES);
    }

    ld->total += n;

    return PT_OK;
}


static int
pt_yaml_check_tag(pt_yaml_loader_t *ld, const yaml_char_t *tag,
    pt_yaml_type_e type, const yaml_mark_t *mark, int *is_str)
{
    int              std;
    size_t           i;
    const char      *t;

    static const struct {
        const char      *name;
        pt_yaml_type_e   type;
    } tags[] = {
        { "str", PT_YAML_SCALAR },
        { "int", PT_YAML_SCALAR },
        { "float", PT_YAML_SCALAR },
        { "bool", PT_YAML_SCALAR },
        { "null", PT_YAML_SCALAR },
        { "seq", PT_YAML_SEQ },
        { "map", PT_YAML_MAP },
    };

    *is_str = 0;

    if (tag == NULL) {
        return PT_OK;
    }

    t = (const char *) tag;

    /* "!" is the non-specific tag: "a string" for a scalar, and nothing
     * more than its kind for a collection. */
    if (strcmp(t, "!") == 0) {
        *is_str = (type == PT_YAML_SCALAR);
        return PT_OK;
    }

    if (strncmp(t, PT_YAML_TAG, sizeof(PT_YAML_TAG) - 1) == 0) {
        for (i = 0; i < pt_nelems(tags); i++) {
            if (strcmp(t + sizeof(PT_YAML_TAG) - 1, tags[i].name) != 0) {
                continue;
            }

            if (tags[i].type != type) {
                break;
            }

            *is_str = (i == 0);
            return PT_OK;
        }
    }

    /* say "!!seq" as it was written, not libyaml's expansion */
    std = (strncmp(t, PT_YAML_TAG, sizeof(PT_YAML_TAG) - 1) == 0);
    if (std) {
        t += sizeof(PT_YAML_TAG) - 1;
    }

    return pt_yaml_fail(ld, mark, "unsupported tag \"%s%s\" on a %s",
                        std ? "!!" : "",
                        pt_yaml_printable(ld->pool, t, strlen(t),
                                          PT_YAML_PRINT_MAX),
                        type == PT_YAML_SCALAR ? "scalar"
                        : type == PT_YAML_SEQ ? "sequence" : "map");
}


static pt_yaml_node_t *
pt_yaml_node_new(pt_yaml_loader_t *ld, pt_yaml_type_e type,
    const yaml_mark_t *mark)
{
    pt_yaml_node_t  *node;

    node = pt_pcalloc(ld->pool, sizeof(pt_yaml_node_t));
    if (node == NULL) {
        pt_yaml_fail(ld, mark, "out of memory");
        return NULL;
    }

    node->type = type;
    node->file = ld->file;
    node->line = pt_yaml_pos(mark->line);
    node->col = pt_yaml_pos(mark->column);

    return node;
}


static int
pt_yaml_finish(pt_yaml_loader_t *ld)
{
    pt_yaml_node_t  *root;

    root = ld->root;

    if (root == NULL) {
        root = pt_pcalloc(ld->pool, sizeof(pt_yaml_node_t));
        if (root == NULL) {
            return pt_yaml_error_at(ld->pool, ld->err, ld->file, 0, 0,
                                    "out of memory");
        }

        root->type = PT_YAML_MAP;
        root->file = ld->file;
        root->line = 1;
        root->col = 1;
        ld->root = root;

        return PT_OK;
    }

    if (root->type == PT_YAML_SCALAR && !root->quoted
        && (root->scalar.len == 0 || pt_str_eq(&root->scalar, "~")
            || pt_str_eq(&root->scalar, "null")
            || pt_str_eq(&root->scalar, "Null")
            || pt_str_eq(&root->scalar, "NULL")))
    {
        root->type = PT_YAML_MAP;
        pt_str_null(&root->scalar);
        return PT_OK;
    }

    if (root->type != PT_YAML_MAP) {
        return pt_yaml_error(ld->pool, ld->err, root,
                             "the top level must be a map, not a %s",
                             pt_yaml_type_name(root));
    }

    return PT_OK;
}


static int
pt_yaml_syntax_error(pt_yaml_loader_t *ld, yaml_parser_t *p)
{
    size_t       i, end;
    unsigned     line, col;
    const char  *problem;

    problem = p->problem ? p->problem : "syntax error";

    switch (p->error) {

    case YAML_MEMORY_ERROR:
        return pt_yaml_error_at(ld->pool, ld->err, ld->file, 0, 0,
                                "out of memory");

    case YAML_READER_ERROR:
        /* The reader runs ahead of the scanner: find the offending byte's
         * position ourselves. Columns count characters, as libyaml's do. */
        line = 1;
        col = 1;
        end = pt_min(p->problem_offset, ld->len);

        for (i = 0; i < end; i++) {
            if (ld->data[i] == '\n') {
                line++;
                col = 1;

            } else if (((unsigned char) ld->data[i] & 0xc0) != 0x80) {
                col++;
            }
        }

        if (p->problem_value != -1) {
            return pt_yaml_error_at(ld->pool, ld->err, ld->file, line, col,
                                    "%s (#%X)", problem, p->problem_value);
        }

        return pt_yaml_error_at(ld->pool, ld->err, ld->file, line, col, "%s",
                                problem);

    default:
        if (p->context != NULL) {
            return pt_yaml_error_at(ld->pool, ld->err, ld->file,
                                    pt_yaml_pos(p->problem_mark.line),
                                    pt_yaml_pos(p->problem_mark.column),
                                    "%s (%s at %u:%u)", problem, p->context,
                                    pt_yaml_pos(p->context_mark.line),
                                    pt_yaml_pos(p->context_mark.column));
        }

        return pt_yaml_error_at(ld->pool, ld->err, ld->file,
                                pt_yaml_pos(p->problem_mark.line),
                                pt_yaml_pos(p->problem_mark.column),
                                "%s", problem);
    }
}


static int
pt_yaml_fail(pt_yaml_loader_t *ld, const yaml_mark_t *mark,
    const char *fmt, ...)
{
    char     msg[512];
    va_list  args;

    va_start(args, fmt);
    if (vsnprintf(msg, sizeof(msg), fmt, args) < 0) {
        msg[0] = '\0';
    }
    va_end(args);

    return pt_yaml_error_at(ld->pool, ld->err, ld->file,
                            pt_yaml_pos(mark->line),
                            pt_yaml_pos(mark->column), "%s", msg);
}


static unsigned
pt_yaml_pos(size_t v)
{
    return v >= UINT_MAX ? UINT_MAX : (unsigned) v + 1;
}


/* Anchors: a name may be redefined, an alias names the latest one. The
 * index keeps alias lookups O(1) whatever the number of anchors. */
static int
pt_yaml_anchor_set(pt_yaml_loader_t *ld, const pt_str_t *name,
    pt_yaml_node_t *node, size_t count, unsigned height)
{
    pt_yaml_anchor_t  *a;

    a = pt_hash_find(&ld->anchors, name->data, name->len);

    if (a == NULL) {
        a = pt_palloc(ld->temp, sizeof(pt_yaml_anchor_t));
        if (a == NULL
            || pt_hash_add(&ld->anchors, name->data, name->len, a, NULL)
               != PT_OK)
        {
            return pt_yaml_error(ld->pool, ld->err, node, "out of memory");
        }
    }

    a->node = node;
    a->count = count;
    a->height = height;

    return PT_OK;
}
