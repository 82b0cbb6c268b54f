/*
 * test_yaml.c: the YAML tree (positions, types, quoting, limits, errors)
 * and include: resolution.
 */

#include <ftw.h>
#include <sys/stat.h>
#include <time.h>

#include "pt_core.h"
#include "pt_palloc.h"
#include "pt_yaml.h"

#include "tap.h"


static pt_pool_t  *pool;
static char        dir[] = "/tmp/pt_yaml_test.XXXXXX";
static char        path[1024];


static pt_yaml_node_t *
load(const char *text, pt_str_t *err)
{
    pt_yaml_node_t  *root;

    err->len = 0;
    err->data = NULL;

    if (pt_yaml_load_string(pool, "t.yaml", text, strlen(text), &root, err)
        != PT_OK)
    {
        return NULL;
    }

    return root;
}


static int
err_is(pt_str_t *err, const char *want)
{
    if (err->data && err->len == strlen(want)
        && memcmp(err->data, want, err->len) == 0)
    {
        return 1;
    }

    printf("#   error '%.*s'\n#   want  '%s'\n", (int) err->len,
           err->data ? err->data : "", want);
    return 0;
}


static int
err_has(pt_str_t *err, const char *want)
{
    if (err->data && strstr(err->data, want) != NULL) {
        return 1;
    }

    printf("#   error '%.*s'\n#   want  '...%s...'\n", (int) err->len,
           err->data ? err->data : "", want);
    return 0;
}


static const char *
at(const char *name)
{
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}


static void
put(const char *name, const char *text)
{
    FILE  *f;

    f = fopen(at(name), "w");
    if (f == NULL) {
        printf("# cannot write %s\n", path);
        return;
    }

    fputs(text, f);
    fclose(f);
}


/* Load a file of the temp dir and resolve its includes against the dir. */
static pt_yaml_node_t *
load_inc(const char *name, pt_str_t *err)
{
    pt_yaml_node_t  *root;

    err->len = 0;
    err->data = NULL;

    if (pt_yaml_load_file(pool, at(name), &root, err) != PT_OK) {
        return NULL;
    }

    if (pt_yaml_resolve_includes(pool, root, dir, err) != PT_OK) {
        return NULL;
    }

    return root;
}


static const char *
sval(pt_yaml_node_t *n)
{
    return (n && n->type == PT_YAML_SCALAR) ? n->scalar.data : "(none)";
}


static void
test_tree(void)
{
    pt_str_t         err;
    pt_yaml_node_t  *r, *n, *m;

    r = load("name: demo\n"
             "listen:\n"
             "  - address: 0.0.0.0:8080\n"
             "    http2: true\n"
             "upstreams:\n"
             "  users:\n"
             "    targets: [ \"a\", 'b', c ]\n"
             "    body: |\n"
             "      hi\n"
             "    n: !!str 5\n"
             "    z: ~\n"
             "    e:\n"
             "    nul: null\n", &err);

    ok(r != NULL, "a config loads");
    if (r == NULL) {
        printf("#   %.*s\n", (int) err.len, err.data);
        return;
    }

    is_int(r->type, PT_YAML_MAP, "root is a map");
    is_int(r->n, 3, "root has 3 pairs");
    is_str(r->pairs[0].key->scalar.data, r->pairs[0].key->scalar.len,
           "name", "pairs keep their order (1)");
    is_str(r->pairs[2].key->scalar.data, r->pairs[2].key->scalar.len,
           "upstreams", "pairs keep their order (3)");
    ok(strcmp(r->file, "t.yaml") == 0, "node file is the given name");

    n = pt_yaml_map_get(r, "name");
    is_str(sval(n), n ? n->scalar.len : 0, "demo", "scalar value");
    is_int(n->line, 1, "scalar line");
    is_int(n->col, 7, "scalar col");
    is_int(n->scalar.data[n->scalar.len], 0, "scalar NUL-terminated");

    n = pt_yaml_map_get(r, "listen");
    ok(n && n->type == PT_YAML_SEQ && n->n == 1, "listen is a sequence of 1");
    m = n->items[0];
    ok(m->type == PT_YAML_MAP && m->n == 2, "item is a map of 2");
    is_int(m->pairs[1].key->line, 4, "key http2 on line 4");
    is_int(m->pairs[1].key->col, 5, "key http2 at col 5");
    is_str(sval(m->pairs[1].value), 4, "true", "bool stays text");
    ok(m->pairs[1].value->quoted == 0, "plain scalar is not quoted");

    n = pt_yaml_map_get(pt_yaml_map_get(r, "upstreams"), "users");
    ok(n && n->type == PT_YAML_MAP && n->n == 6, "users is a map of 6");
    is_int(n->line, 7, "nested map starts at its first key's line");
    is_int(n->col, 5, "nested map starts at its first key's col");
    is_int(n->pairs[0].key->line, 7, "key targets line");
    is_int(n->pairs[0].key->col, 5, "key targets col");

    m = pt_yaml_map_get(n, "targets");
    ok(m && m->type == PT_YAML_SEQ && m->n == 3, "flow sequence of 3");
    is_int(m->col, 14, "flow sequence col");
    ok(m->items[0]->quoted == 1, "double quoted is quoted");
    ok(m->items[1]->quoted == 1, "single quoted is quoted");
    ok(m->items[2]->quoted == 0, "plain is not quoted");
    is_int(m->items[1]->col, 21, "col of 'b'");
    is_str(sval(m->items[1]), 1, "b", "quotes are not part of the value");

    m = pt_yaml_map_get(n, "body");
    is_str(sval(m), m->scalar.len, "hi\n", "literal block value");
    ok(m->quoted == 1, "literal block counts as quoted");

    m = pt_yaml_map_get(n, "n");
    ok(m->quoted == 1 && strcmp(sval(m), "5") == 0, "!!str is quoted");

    m = pt_yaml_map_get(n, "z");
    ok(m->type == PT_YAML_SCALAR && m->quoted == 0
       && strcmp(sval(m), "~") == 0, "~ stays a plain scalar with its text");
    m = pt_yaml_map_get(n, "e");
    ok(m->type == PT_YAML_SCALAR && m->quoted == 0 && m->scalar.len == 0
       && m->scalar.data != NULL, "empty value is an empty plain scalar");
    m = pt_yaml_map_get(n, "nul");
    ok(strcmp(sval(m), "null") == 0, "null keeps its text");

    ok(pt_yaml_map_get(r, "nope") == NULL, "absent key -> NULL");
    ok(pt_yaml_map_get(n->pairs[0].key, "x") == NULL, "get on scalar -> NULL");
    ok(strcmp(pt_yaml_type_name(r), "map") == 0
       && strcmp(pt_yaml_type_name(pt_yaml_map_get(r, "listen")),
                 "sequence") == 0
       && strcmp(pt_yaml_type_name(pt_yaml_map_get(r, "name")),
                 "scalar") == 0, "type names");

    r = load("a: &x {k: 1}\nb: *x\nc: &s v\nd: *s\n", &err);
    ok(r && pt_yaml_map_get(r, "a") == pt_yaml_map_get(r, "b"),
       "an alias shares the anchored map");
    ok(r && pt_yaml_map_get(r, "c") == pt_yaml_map_get(r, "d"),
       "an alias shares the anchored scalar");

    r = load("a: &x 1\na2: *x\nb: &x 2\nc: *x\n", &err);
    ok(r && strcmp(sval(pt_yaml_map_get(r, "c")), "2") == 0
       && strcmp(sval(pt_yaml_map_get(r, "a2")), "1") == 0,
       "an alias names the latest anchor of that name");

    r = load("a: !!map {b: !!seq [!!int 1, !!bool true, !!float 1.5]}\n",
             &err);
    ok(r != NULL, "standard tags are accepted");
}


static void
test_empty(void)
{
    pt_str_t         err;
    pt_yaml_node_t  *r;

    r = load("", &err);
    ok(r && r->type == PT_YAML_MAP && r->n == 0 && r->line == 1,
       "empty document -> empty map");
    r = load("# just a comment\n\n", &err);
    ok(r && r->type == PT_YAML_MAP && r->n == 0, "comments only -> empty map");
    r = load("---\n", &err);
    ok(r && r->type == PT_YAML_MAP && r->n == 0, "bare --- -> empty map");
    r = load("~\n", &err);
    ok(r && r->type == PT_YAML_MAP && r->n == 0, "null root -> empty map");
}


static void
test_errors(void)
{
    int              i;
    char             big[4096], *p;
    pt_str_t         err;
    pt_yaml_node_t  *r;

    r = load("a: 1\nb: [1, 2\nc: 3\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:3:2: did not find expected ',' or "
                           "']' (while parsing a flow sequence at 2:4)"),
       "syntax error carries FILE:LINE:COL and libyaml's text");

    r = load("a:\n  b: 1\n   c: 2\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:3:5: mapping values are not allowed "
                           "in this context"), "bad indentation");

    r = load("a: 'x\n", &err);
    ok(r == NULL && err_has(&err, "t.yaml:2:1: found unexpected end of stream"),
       "unterminated quote");

    r = load("a: 1\nb: 2\na: 3\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:3:1: duplicate key \"a\" "
                           "(first at 1:1)"), "duplicate key names both");

    r = load("m:\n  k1: 1\n  k2: 2\n  k3: 3\n  k4: 4\n  k5: 5\n  k6: 6\n"
             "  k7: 7\n  k8: 8\n  k9: 9\n  k10: 10\n  k3: x\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:12:3: duplicate key \"k3\" "
                           "(first at 4:3)"), "duplicate key in a big map");

    r = load("a: 1\n\"a\": 2\n", &err);
    ok(r == NULL && err_has(&err, "duplicate key \"a\""),
       "quoting does not make a different key");

    r = load("- a\n- b\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:1:1: the top level must be a map, "
                           "not a sequence"), "root sequence refused");
    r = load("hello\n", &err);
    ok(r == NULL && err_has(&err, "t.yaml:1:1: the top level must be a map"),
       "root scalar refused");
    r = load("\"\"\n", &err);
    ok(r == NULL, "quoted empty root is not a null");

    r = load("a: 1\n---\nb: 2\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:2:1: only one document is allowed "
                           "in a file"), "second document refused");

    r = load("? [a]\n: 1\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:1:3: a key must be a scalar, "
                           "not a sequence"), "non-scalar key refused");
    r = load("x: &m {a: 1}\n*m : 2\n", &err);
    ok(r == NULL && err_has(&err, "a key must be a scalar, not a map"),
       "alias of a map as key refused");

    r = load("a: !foo bar\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:1:4: unsupported tag \"!foo\" on a "
                           "scalar"), "custom tag refused");
    r = load("a: !!binary eA==\n", &err);
    ok(r == NULL && err_has(&err, "unsupported tag \"!!binary\""),
       "non-config standard tag refused");
    r = load("a: !!seq x\n", &err);
    ok(r == NULL && err_has(&err, "unsupported tag \"!!seq\" on a scalar"),
       "tag of the wrong kind refused");

    r = load("a: \"x\\0y\"\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:1:4: a value must not contain a NUL "
                           "character"), "NUL in a scalar refused");

    r = load("a: \xff\n", &err);
    ok(r == NULL && err_has(&err, "t.yaml:1:4: invalid leading UTF-8 octet"),
       "invalid UTF-8 reported at its position");
    r = load("a: 1\nb: 2\nc: x\xc3\n", &err);
    ok(r == NULL && err_is(&err, "t.yaml:3:6: invalid trailing UTF-8 "
                           "octet (#A)"),
       "truncated UTF-8 reported at its line");

    r = load("a: *nope\n", &err);
    ok(r == NULL && err_has(&err, "t.yaml:1:4: unknown alias \"nope\""),
       "undefined alias refused");
    r = load("a: &a [1, *a]\n", &err);
    ok(r == NULL && err_has(&err, "unknown alias \"a\""),
       "recursive alias refused");

    /* depth: the root map is level 1 */
    p = big;
    p += sprintf(p, "x: ");
    for (i = 0; i < 63; i++) {
        *p++ = '[';
    }
    for (i = 0; i < 63; i++) {
        *p++ = ']';
    }
    *p = '\0';
    r = load(big, &err);
    ok(r != NULL, "64 levels of nesting are fine");

    p = big;
    p += sprintf(p, "x: ");
    for (i = 0; i < 64; i++) {
        *p++ = '[';
    }
    for (i = 0; i < 64; i++) {
        *p++ = ']';
    }
    *p = '\0';
    r = load(big, &err);
    ok(r == NULL && err_is(&err, "t.yaml:1:67: nesting deeper than 64 "
                           "levels"), "65 levels refused");

    /* an alias counts at the depth where it is used */
    p = big;
    p += sprintf(p, "a: &deep ");
    for (i = 0; i < 40; i++) {
        *p++ = '[';
    }
    for (i = 0; i < 40; i++) {
        *p++ = ']';
    }
    p += sprintf(p, "\nb: ");
    for (i = 0; i < 30; i++) {
        *p++ = '[';
    }
    p += sprintf(p, "*deep");
    for (i = 0; i < 30; i++) {
        *p++ = ']';
    }
    *p = '\0';
    r = load(big, &err);
    ok(r == NULL && err_has(&err, "alias \"deep\" nests deeper than 64"),
       "alias of a deep node inside a deep node refused");
}


static void
test_bomb(void)
{
    int              i;
    char             text[4096], *p;
    clock_t          t0;
    pt_str_t         err;
    pt_yaml_node_t  *r;
    size_t           before;

    p = text;
    p += sprintf(p, "a0: &a0 [x, x, x, x, x, x, x, x, x]\n");
    for (i = 1; i < 12; i++) {
        p += sprintf(p, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, "
                     "*a%d, *a%d, *a%d]\n", i, i, i - 1, i - 1, i - 1, i - 1,
                     i - 1, i - 1, i - 1, i - 1, i - 1);
    }

    before = pt_pool_size(pool);
    t0 = clock();
    r = load(text, &err);

    ok(r == NULL && err_has(&err, "more than 1000000 nodes"),
       "billion laughs refused");
    ok(clock() - t0 < CLOCKS_PER_SEC / 2, "... quickly");
    ok(pt_pool_size(pool) - before < 1024 * 1024, "... in little memory");

    /* the same shape, small enough, is fine and shares nodes */
    p = text;
    p += sprintf(p, "a0: &a0 [x, x, x]\n");
    for (i = 1; i < 4; i++) {
        p += sprintf(p, "a%d: &a%d [*a%d, *a%d, *a%d]\n", i, i, i - 1,
                     i - 1, i - 1);
    }
    r = load(text, &err);
    ok(r && pt_yaml_map_get(r, "a3")->items[0] == pt_yaml_map_get(r, "a2"),
       "small alias tree loads, sharing nodes");
}


static void
test_files(void)
{
    pt_str_t         err;
    pt_yaml_node_t  *r;
    char             want[1200];

    put("plain.yaml", "a: 1\n");
    ok(pt_yaml_load_file(pool, at("plain.yaml"), &r, &err) == PT_OK
       && r->n == 1 && strcmp(r->file, path) == 0
       && strcmp(r->pairs[0].value->file, path) == 0,
       "load_file names nodes after the path");

    put("bad.yaml", "a: 1\n  b: 2\n");
    snprintf(want, sizeof(want), "%s:2:4: mapping values are not allowed "
             "in this context", at("bad.yaml"));
    ok(pt_yaml_load_file(pool, path, &r, &err) == PT_ERROR
       && err_is(&err, want), "load_file syntax error names the file");

    snprintf(want, sizeof(want), "%s: cannot open: No such file or "
             "directory", at("missing.yaml"));
    ok(pt_yaml_load_file(pool, path, &r, &err) == PT_ERROR
       && err_is(&err, want), "missing file");

    ok(pt_yaml_load_file(pool, dir, &r, &err) == PT_ERROR
       && err_has(&err, "not a regular file"), "directory refused");
}


static void
test_includes(void)
{
    size_t           i;
    pt_str_t         err;
    pt_yaml_node_t  *r, *n;
    char             want[1200], name[64], text[256];

    mkdir(at("conf.d"), 0700);
    mkdir(at("nested"), 0700);

    put("main.yaml",
        "log_level: info\n"
        "include: conf.d/*.yaml\n"
        "routes:\n"
        "  - name: r0\n"
        "upstreams:\n"
        "  u0: {port: 1}\n");
    /* written out of order: the merge order is the sorted one */
    put("conf.d/20-b.yaml",
        "include: [nested/c.yaml]\n"
        "routes:\n"
        "  - name: r2\n"
        "upstreams:\n"
        "  u2: {port: 2}\n");
    put("conf.d/10-a.yaml",
        "routes:\n"
        "  - name: r1\n"
        "upstreams:\n"
        "  u1: {port: 1}\n"
        "workers: 4\n");
    put("conf.d/notes.txt", "not: [yaml\n");
    put("nested/c.yaml",
        "routes: [{name: r3}]\n");

    r = load_inc("main.yaml", &err);
    ok(r != NULL, "includes resolve");
    if (r == NULL) {
        printf("#   %.*s\n", (int) err.len, err.data);
        return;
    }

    ok(pt_yaml_map_get(r, "include") == NULL, "include key removed");
    is_int(r->n, 4, "log_level routes upstreams workers");
    ok(strcmp(sval(pt_yaml_map_get(r, "workers")), "4") == 0,
       "new keys are added");

    n = pt_yaml_map_get(r, "routes");
    ok(n && n->type == PT_YAML_SEQ && n->n == 4, "routes appended: 4");
    for (i = 0; n && i < n->n && i < 4; i++) {
        snprintf(name, sizeof(name), "r%zu", i);
        ok(strcmp(sval(pt_yaml_map_get(n->items[i], "name")), name) == 0,
           "route %zu is %s", i, name);
    }
    ok(n && n->n == 4 && strstr(n->items[1]->file, "conf.d/10-a.yaml")
       && n->items[1]->line == 2 && n->items[1]->col == 5,
       "an included node keeps its own file and position");
    is_int(n->line, 4, "merged sequence keeps the main file's position");

    n = pt_yaml_map_get(r, "upstreams");
    ok(n && n->type == PT_YAML_MAP && n->n == 3
       && strcmp(n->pairs[0].key->scalar.data, "u0") == 0
       && strcmp(n->pairs[1].key->scalar.data, "u1") == 0
       && strcmp(n->pairs[2].key->scalar.data, "u2") == 0,
       "upstreams merged key by key, in order");

    /* a duplicate upstream across files */
    put("dup.yaml",
        "upstreams:\n"
        "  a: {}\n"
        "  users: {port: 1}\n"
        "include: dup.d/*.yaml\n");
    mkdir(at("dup.d"), 0700);
    put("dup.d/x.yaml",
        "upstreams:\n"
        "  users: {port: 2}\n");
    r = load_inc("dup.yaml", &err);
    snprintf(want, sizeof(want), "%s/dup.d/x.yaml:2:3: duplicate key "
             "\"users\" (first at %s/dup.yaml:3:3)", dir, dir);
    ok(r == NULL && err_is(&err, want),
       "duplicate upstream across files names both positions");

    put("dup2.yaml", "workers: 2\ninclude: dup2.d/w.yaml\n");
    mkdir(at("dup2.d"), 0700);
    put("dup2.d/w.yaml", "\n\nworkers: 4\n");
    r = load_inc("dup2.yaml", &err);
    snprintf(want, sizeof(want), "%s/dup2.d/w.yaml:3:1: duplicate key "
             "\"workers\" (first at %s/dup2.yaml:1:1)", dir, dir);
    ok(r == NULL && err_is(&err, want), "duplicate scalar key across files");

    put("dup3.yaml", "routes: {a: 1}\ninclude: dup2.d/r.yaml\n");
    put("dup2.d/r.yaml", "routes: [x]\n");
    r = load_inc("dup3.yaml", &err);
    ok(r == NULL && err_has(&err, "duplicate key \"routes\""),
       "map in one file and sequence in another");

    /* cycles and doubles */
    put("cyc-a.yaml", "include: cyc-b.yaml\n");
    put("cyc-b.yaml", "x: 1\ninclude: cyc-a.yaml\n");
    put("cyc.yaml", "include: [cyc-a.yaml]\n");
    r = load_inc("cyc.yaml", &err);
    snprintf(want, sizeof(want), "%s/cyc-b.yaml:2:10: include: \"%s/"
             "cyc-a.yaml\" is already included at %s/cyc.yaml:1:11",
             dir, dir, dir);
    ok(r == NULL && err_is(&err, want), "include cycle names both places");

    put("self.yaml", "a: 1\ninclude: self.yaml\n");
    r = load_inc("self.yaml", &err);
    ok(r == NULL && err_has(&err, "self.yaml:2:10: include: \"")
       && err_has(&err, "is the main configuration file"),
       "including the main file refused");

    put("twice.yaml", "include:\n  - plain.yaml\n  - ./plain.yaml\n");
    r = load_inc("twice.yaml", &err);
    snprintf(want, sizeof(want), "twice.yaml:3:5: include: \"%s/./plain.yaml\" "
             "is already included at %s/twice.yaml:2:5", dir, dir);
    ok(r == NULL && err_has(&err, want), "same file twice names both");

    /* missing and non-matching */
    put("miss.yaml", "a: 1\ninclude: [nope.yaml]\n");
    r = load_inc("miss.yaml", &err);
    snprintf(want, sizeof(want), "%s/miss.yaml:2:11: include: cannot open "
             "\"%s/nope.yaml\": No such file or directory", dir, dir);
    ok(r == NULL && err_is(&err, want), "missing literal path refused");

    put("glob0.yaml", "a: 1\ninclude: [nothing/*.yaml, conf.d/*.none]\n");
    r = load_inc("glob0.yaml", &err);
    ok(r && r->n == 1 && pt_yaml_map_get(r, "include") == NULL,
       "patterns matching nothing are fine");

    put("dirinc.yaml", "include: conf.d\n");
    r = load_inc("dirinc.yaml", &err);
    ok(r == NULL && err_has(&err, "dirinc.yaml:1:10: include: \"")
       && err_has(&err, "is not a regular file"), "directory refused");

    put("badtype.yaml", "include: {a: b}\n");
    r = load_inc("badtype.yaml", &err);
    ok(r == NULL && err_has(&err, "badtype.yaml:1:10: include: expected"),
       "include must be a path or a sequence");

    put("badsub.yaml", "include: [bad.yaml]\n");
    r = load_inc("badsub.yaml", &err);
    ok(r == NULL && err_has(&err, "/bad.yaml:2:4: mapping values"),
       "a syntax error in an included file names that file");

    /* absolute paths ignore the prefix */
    snprintf(text, sizeof(text), "include: %s/plain.yaml\n", dir);
    put("abs.yaml", text);
    r = load_inc("abs.yaml", &err);
    ok(r && strcmp(sval(pt_yaml_map_get(r, "a")), "1") == 0,
       "absolute include path");

    /* nesting: main -> d1 -> ... -> d8 is fine, -> d9 is not */
    for (i = 1; i <= 9; i++) {
        snprintf(name, sizeof(name), "deep%zu.yaml", i);
        snprintf(text, sizeof(text), "k%zu: 1\ninclude: deep%zu.yaml\n", i,
                 i + 1);
        put(name, i == 8 ? "k8: 1\n" : text);
    }
    put("deep0.yaml", "include: deep1.yaml\n");
    r = load_inc("deep0.yaml", &err);
    ok(r && r->n == 8 && pt_yaml_map_get(r, "k8") != NULL,
       "8 levels of includes are fine");

    put("deep8.yaml", "k8: 1\ninclude: deep9.yaml\n");
    put("deep9.yaml", "k9: 1\n");
    r = load_inc("deep0.yaml", &err);
    ok(r == NULL && err_has(&err, "deep8.yaml:2:10: include: nested deeper "
                            "than 8 files"), "9 levels refused");

    /* the prefix is a directory name, not a pattern */
    mkdir(at("p[1]"), 0700);
    snprintf(text, sizeof(text), "%s/p[1]/a.yaml", dir);
    put("p[1]/a.yaml", "pa: 1\n");
    put("p[1]/main.yaml", "include: '*.yaml'\n");
    snprintf(text, sizeof(text), "%s/p[1]", dir);
    ok(pt_yaml_load_file(pool, at("p[1]/main.yaml"), &r, &err) == PT_OK
       && pt_yaml_resolve_includes(pool, r, text, &err) == PT_ERROR
       && err_has(&err, "is the main configuration file"),
       "glob under a prefix with [ ] in its name finds the files");

    put("p[1]/main.yaml", "include: 'a*.yaml'\n");
    ok(pt_yaml_load_file(pool, at("p[1]/main.yaml"), &r, &err) == PT_OK
       && pt_yaml_resolve_includes(pool, r, text, &err) == PT_OK
       && pt_yaml_map_get(r, "pa") != NULL, "... and includes them");

    /* aliased nodes of root are not changed by merging */
    put("alias.yaml", "base: &b [1]\nroutes: *b\ninclude: alias2.yaml\n");
    put("alias2.yaml", "routes: [2]\n");
    r = load_inc("alias.yaml", &err);
    ok(r && pt_yaml_map_get(r, "routes")->n == 2
       && pt_yaml_map_get(r, "base")->n == 1,
       "merging never changes a shared node");
}


static int
rm_entry(const char *p, const struct stat *st, int type, struct FTW *ftw)
{
    return remove(p);
}


static void
cleanup(void)
{
    if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        printf("# could not remove %s\n", dir);
    }
}


int
main(void)
{
    tap_plan(105);

    pool = pt_pool_create(PT_POOL_DEFAULT_SIZE);
    if (pool == NULL || mkdtemp(dir) == NULL) {
        printf("Bail out! no pool or temp dir\n");
        return 1;
    }

    test_tree();
    test_empty();
    test_errors();
    test_bomb();
    test_files();
    test_includes();

    cleanup();
    pt_pool_destroy(pool);

    return tap_done();
}
