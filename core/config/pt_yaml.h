/*
 * pt_yaml.h: the configuration as a typed tree that remembers where every
 * node was written, so that any consumer can report "FILE:LINE:COL: ...".
 *
 * The loader is built on libyaml's event API. It enforces what the rest of
 * the configuration code may then take for granted:
 *
 *   - the root is a map; an empty document is an empty map;
 *   - map keys are scalars and are unique within their map;
 *   - scalars never contain a NUL byte (they are used as C strings);
 *   - only the standard tags (!!str !!int !!float !!bool !!null !!seq !!map
 *     and the non-specific "!") appear, each on a node of its kind;
 *   - at most one document per file;
 *   - the tree is bounded: at most PT_YAML_MAX_NODES nodes and
 *     PT_YAML_MAX_DEPTH levels of nested collections, both counted as if
 *     every alias were expanded. An alias shares the anchored node (no
 *     copy is made), but it adds the anchored subtree's full node count
 *     and height to the document's totals, so a "billion laughs" document
 *     is refused after a few thousand events instead of handing the
 *     consumers a tree whose walk never ends.
 *
 * An alias may only name an anchor whose node is complete, so the tree is
 * always acyclic. YAML merge keys ("<<") are not interpreted: they reach the
 * consumers as an ordinary key.
 *
 * Sources: pt_yaml_load.c (the loader), pt_yaml_include.c (include:),
 * pt_yaml.c (lookups, messages and the key index, for every consumer).
 */

#ifndef PT_YAML_H
#define PT_YAML_H

#include "pt_core.h"
#include "pt_palloc.h"
#include "pt_hash.h"


#define PT_YAML_MAX_NODES      1000000
#define PT_YAML_MAX_DEPTH      64
#define PT_YAML_MAX_INCLUDE    8            /* nesting of include: files   */
#define PT_YAML_MAX_FILE_SIZE  (64 << 20)   /* bytes read from one file    */


typedef enum {
    PT_YAML_SCALAR,
    PT_YAML_SEQ,
    PT_YAML_MAP
} pt_yaml_type_e;


typedef struct {
    pt_yaml_node_t   *key;        /* always a scalar                       */
    pt_yaml_node_t   *value;
} pt_yaml_pair_t;


struct pt_yaml_node_s {
    pt_yaml_type_e    type;
    const char       *file;       /* path as given, shared by a file's nodes */
    unsigned          line;       /* 1-based                                */
    unsigned          col;        /* 1-based, in characters                 */
    unsigned          quoted:1;   /* SCALAR: not subject to implicit typing:
                                     written '' "" | or >, or tagged !!str
                                     or !                                  */
    pt_str_t          scalar;     /* SCALAR: the value, NUL-terminated      */
    pt_yaml_node_t  **items;      /* SEQ: n items                           */
    pt_yaml_pair_t   *pairs;      /* MAP: n pairs, in the order written     */
    size_t            n;
};


/* Load one file. On error returns PT_ERROR and sets *err (pool memory) to
 * "FILE:LINE:COL: message" (libyaml's problem text and mark for syntax
 * errors; "FILE: message" when the file cannot be read at all). An empty
 * file, or one whose only document is a null, yields an empty MAP. */
int pt_yaml_load_file(pt_pool_t *pool, const char *path,
    pt_yaml_node_t **root, pt_str_t *err);

/* The same from memory; `name` stands in for the file name. data need not
 * be NUL-terminated and is not referenced after the call. */
int pt_yaml_load_string(pt_pool_t *pool, const char *name, const char *data,
    size_t len, pt_yaml_node_t **root, pt_str_t *err);

/* Process the top-level `include:` key of root (a string or a sequence of
 * strings, each a path or glob(3) pattern; relative ones are relative to
 * `prefix`, or to the working directory when prefix is NULL or ""),
 * recursively: included files may include others, up to
 * PT_YAML_MAX_INCLUDE levels. Including a file twice (a cycle, a diamond,
 * or the main file itself) is an error naming both places.
 *
 * Each included file's root map is merged into root after root's own keys:
 * sequence values are appended, map values are merged key by key (a key in
 * both is an error naming both positions), any other key present in both
 * is an error naming both positions. Merged collections are new nodes, so
 * an aliased node of root is never changed behind its other users. The
 * include key itself is removed from root. A pattern with glob characters
 * matching nothing is fine; a literal path that does not exist, or that is
 * not a regular file, is an error at the include entry's position. Files
 * a pattern matches are merged in sorted (glob) order; an included file's
 * own includes are merged into it before it is merged into root. */
int pt_yaml_resolve_includes(pt_pool_t *pool, pt_yaml_node_t *root,
    const char *prefix, pt_str_t *err);

/* Map lookup by key (NULL if absent or node not a map). Linear: maps in a
 * configuration are small, and consumers walk them pair by pair anyway. */
pt_yaml_node_t *pt_yaml_map_get(pt_yaml_node_t *map, const char *key);

/* "scalar", "sequence", "map" (or "nothing" for NULL): for messages. */
const char *pt_yaml_type_name(pt_yaml_node_t *node);

/* Format "FILE:LINE:COL: message" about node into *err (pool memory) and
 * return PT_ERROR, so a consumer writes `return pt_yaml_error(...)`. When
 * the pool is exhausted *err is a static "out of memory" message. */
int pt_yaml_error(pt_pool_t *pool, pt_str_t *err, const pt_yaml_node_t *node,
    const char *fmt, ...) PT_PRINTF(4, 5);

/* The same at an explicit place; line 0 gives "FILE: message", for errors
 * about a whole file. */
int pt_yaml_error_at(pt_pool_t *pool, pt_str_t *err, const char *file,
    unsigned line, unsigned col, const char *fmt, ...) PT_PRINTF(6, 7);

/* "FILE:LINE:COL: duplicate key "K" (first at [FILE:]LINE:COL)" about two
 * equal keys; the file of the first is named only when it differs. */
int pt_yaml_dup_error(pt_pool_t *pool, pt_str_t *err,
    const pt_yaml_node_t *key, const pt_yaml_node_t *first);

/* A copy of s fit to quote in a message: at most max bytes (then "..."),
 * bytes outside printable ASCII shown as '?'. Never NULL. */
const char *pt_yaml_printable(pt_pool_t *pool, const char *s, size_t len,
    size_t max);


/* The keys of a pairs array, indexed so that lookups stay cheap however
 * large a hostile file makes a map (small maps are searched linearly).
 * The index is a pt_hash (seeded per process) in a pool of its own. */
typedef struct {
    pt_yaml_pair_t   *pairs;      /* the caller's, not copied              */
    size_t            n;          /* pairs indexed                         */
    pt_pool_t        *pool;       /* the index's memory; NULL: no index    */
    pt_hash_t         index;      /* key -> its pair                       */
} pt_yaml_keyset_t;

/* Index pairs[0..n). PT_OK; PT_DECLINED when two keys are equal (*dup is
 * the later pair, *first the earlier; nothing to free); PT_ERROR when out
 * of memory. */
int pt_yaml_keyset_init(pt_yaml_keyset_t *ks, pt_yaml_pair_t *pairs,
    size_t n, size_t *dup, size_t *first);

/* The index of the pair whose key is `key`, or SIZE_MAX. */
size_t pt_yaml_keyset_find(pt_yaml_keyset_t *ks, const pt_str_t *key);

/* Release the index (pairs are untouched). */
void pt_yaml_keyset_free(pt_yaml_keyset_t *ks);


#endif /* PT_YAML_H */
