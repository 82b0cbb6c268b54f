/*
 * pt_conf.c: key dispatch, error collection and generic setters (see
 * pt_conf.h).
 */

#include "pt_conf.h"
#include "pt_log.h"
#include "pt_string.h"


int
pt_conf_error(pt_conf_t *cf, pt_yaml_node_t *node, const char *fmt, ...)
{
    int        n;
    char       msg[1024];
    va_list    args;
    pt_str_t  *e;

    if (cf->errors.nelts >= PT_CONF_MAX_ERRORS) {
        return PT_ERROR;
    }

    va_start(args, fmt);
    n = vsnprintf(msg, sizeof(msg), fmt, args);
    va_end(args);

    if (n < 0) {
        msg[0] = '\0';
    }

    e = pt_array_push(&cf->errors);
    if (e == NULL) {
        return PT_ERROR;
    }

    if (node) {
        e->data = pt_psprintf(cf->pool, &e->len, "%s:%u:%u: %s", node->file,
                              node->line, node->col, msg);
    } else {
        e->data = pt_psprintf(cf->pool, &e->len, "%s: %s",
                              cf->conf_file.data, msg);
    }

    if (e->data == NULL) {
        cf->errors.nelts--;
    }

    return PT_ERROR;
}


void **
pt_conf_create_level(pt_conf_t *cf, pt_conf_level_e level)
{
    void        **ctx;
    pt_uint_t     i;
    pt_module_t  *m;

    ctx = pt_pcalloc(cf->pool, pt_modules_n * sizeof(void *));
    if (ctx == NULL) {
        return NULL;
    }

    for (i = 0; pt_modules[i]; i++) {
        m = pt_modules[i];

        if (m->create_conf == NULL) {
            continue;
        }

        ctx[m->index] = m->create_conf(cf, level);

        if (ctx[m->index] == PT_CONF_ERROR_PTR) {
            return NULL;     /* create_conf failed: out of memory */
        }
    }

    return ctx;
}


static unsigned
pt_conf_level_flag(pt_conf_level_e level)
{
    switch (level) {
    case PT_CONF_LEVEL_GLOBAL:   return PT_CONF_GLOBAL;
    case PT_CONF_LEVEL_UPSTREAM: return PT_CONF_UPSTREAM;
    case PT_CONF_LEVEL_ROUTE:    return PT_CONF_ROUTE;
    case PT_CONF_LEVEL_LISTEN:   return PT_CONF_LISTEN;
    default:                     return 0;
    }
}


static const char *
pt_conf_level_name(pt_conf_level_e level)
{
    static const char  *names[] = { "global", "upstream", "route", "listen" };

    return level < PT_CONF_NLEVELS ? names[level] : "?";
}


static int
pt_conf_type_ok(unsigned flags, pt_yaml_node_t *node)
{
    unsigned  types;

    types = flags & (PT_CONF_SCALAR | PT_CONF_SEQ | PT_CONF_MAP);

    if (types == 0) {
        return 1;
    }

    switch (node->type) {
    case PT_YAML_SCALAR: return (types & PT_CONF_SCALAR) != 0;
    case PT_YAML_SEQ:    return (types & PT_CONF_SEQ) != 0;
    case PT_YAML_MAP:    return (types & PT_CONF_MAP) != 0;
    }

    return 0;
}


static const char *
pt_conf_types_text(unsigned flags)
{
    switch (flags & (PT_CONF_SCALAR | PT_CONF_SEQ | PT_CONF_MAP)) {
    case PT_CONF_SCALAR:                return "a scalar";
    case PT_CONF_SEQ:                   return "a sequence";
    case PT_CONF_MAP:                   return "a map";
    case PT_CONF_SCALAR | PT_CONF_SEQ:  return "a scalar or a sequence";
    case PT_CONF_SCALAR | PT_CONF_MAP:  return "a scalar or a map";
    case PT_CONF_SEQ | PT_CONF_MAP:     return "a sequence or a map";
    default:                            return "a value";
    }
}


/* The command for `key` at a scope, and whether the key exists at all
 * (at another scope), for a helpful message. */
static const pt_command_t *
pt_conf_find_command(const pt_str_t *key, unsigned scope, pt_module_t **mod,
    int *elsewhere)
{
    pt_uint_t            i;
    const pt_command_t  *cmd;

    *elsewhere = 0;

    for (i = 0; pt_modules[i]; i++) {
        cmd = pt_modules[i]->commands;
        if (cmd == NULL) {
            continue;
        }

        for ( /* void */ ; cmd->name; cmd++) {
            if (strlen(cmd->name) != key->len
                || memcmp(cmd->name, key->data, key->len) != 0)
            {
                continue;
            }

            if (cmd->flags & scope) {
                *mod = pt_modules[i];
                return cmd;
            }

            *elsewhere = 1;
        }
    }

    return NULL;
}


/* Whether some command at `scope` is named "section.SUB": a map key
 * whose subkeys several modules own (health: { active, passive }). The
 * names found are listed in `names` for an error message. */
static int
pt_conf_is_section(const pt_str_t *section, unsigned scope, char *names,
    size_t size)
{
    int                  found;
    size_t               len;
    pt_uint_t            i;
    const pt_command_t  *cmd;

    found = 0;
    len = 0;
    names[0] = '\0';

    for (i = 0; pt_modules[i]; i++) {
        for (cmd = pt_modules[i]->commands; cmd && cmd->name; cmd++) {
            if (!(cmd->flags & scope)
                || strncmp(cmd->name, section->data, section->len) != 0
                || cmd->name[section->len] != '.')
            {
                continue;
            }

            len += (size_t) snprintf(names + len, size - pt_min(len, size),
                                     "%s%s", found ? ", " : "",
                                     cmd->name + section->len + 1);
            len = pt_min(len, size - 1);
            found = 1;
        }
    }

    return found;
}


static int
pt_conf_dispatch_key(pt_conf_t *cf, unsigned scope, pt_yaml_node_t *key,
    const pt_str_t *name, pt_yaml_node_t *value)
{
    int                  elsewhere;
    pt_module_t         *m;
    const pt_command_t  *cmd;

    cmd = pt_conf_find_command(name, scope, &m, &elsewhere);

    if (cmd == NULL) {
        return pt_conf_error(cf, key, elsewhere
                             ? "\"%s\" is not allowed in %s scope"
                             : "unknown key \"%s\" in %s scope",
                             name->data, pt_conf_level_name(cf->level));
    }

    if (!pt_conf_type_ok(cmd->flags, value)) {
        return pt_conf_error(cf, value, "%s: expected %s, got a %s",
                             name->data, pt_conf_types_text(cmd->flags),
                             pt_yaml_type_name(value));
    }

    return cmd->set(cf, cmd, value, cf->ctx[m->index]);
}


/* A section's subkeys go to the commands "section.SUB", which may belong
 * to different modules; the section itself belongs to none. */
static int
pt_conf_dispatch_section(pt_conf_t *cf, unsigned scope, pt_yaml_node_t *key,
    pt_yaml_node_t *value, const char *names)
{
    int              rc, elsewhere;
    char             buf[256];
    size_t           i, len;
    pt_str_t         name;
    pt_module_t     *m;
    pt_yaml_node_t  *sub;

    if (value->type != PT_YAML_MAP) {
        return pt_conf_error(cf, value, "%s: expected a map, got a %s",
                             key->scalar.data, pt_yaml_type_name(value));
    }

    rc = PT_OK;

    for (i = 0; i < value->n; i++) {
        sub = value->pairs[i].key;

        len = (size_t) snprintf(buf, sizeof(buf), "%s.%s", key->scalar.data,
                                sub->scalar.data);
        name.len = pt_min(len, sizeof(buf) - 1);
        name.data = buf;

        if (len >= sizeof(buf)
            || pt_conf_find_command(&name, scope, &m, &elsewhere) == NULL)
        {
            rc = pt_conf_error(cf, sub, "unknown key \"%s\" in %s (%s)",
                               sub->scalar.data, key->scalar.data, names);
            continue;
        }

        if (pt_conf_dispatch_key(cf, scope, sub, &name,
                                 value->pairs[i].value) != PT_OK)
        {
            rc = PT_ERROR;
        }
    }

    return rc;
}


int
pt_conf_dispatch(pt_conf_t *cf, pt_yaml_node_t *map, const char **skip)
{
    int               rc;
    char              names[256];
    size_t            i;
    unsigned          scope;
    const char      **s;
    pt_yaml_node_t   *key, *value;

    if (map->type != PT_YAML_MAP) {
        return pt_conf_error(cf, map, "expected a map, got a %s",
                             pt_yaml_type_name(map));
    }

    rc = PT_OK;
    scope = pt_conf_level_flag(cf->level);

    for (i = 0; i < map->n; i++) {
        key = map->pairs[i].key;
        value = map->pairs[i].value;

        for (s = skip; s && *s; s++) {
            if (strlen(*s) == key->scalar.len
                && memcmp(*s, key->scalar.data, key->scalar.len) == 0)
            {
                break;
            }
        }

        if (s && *s) {
            continue;
        }

        if (pt_conf_is_section(&key->scalar, scope, names, sizeof(names))) {
            if (pt_conf_dispatch_section(cf, scope, key, value, names)
                != PT_OK)
            {
                rc = PT_ERROR;
            }
            continue;
        }

        if (pt_conf_dispatch_key(cf, scope, key, &key->scalar, value)
            != PT_OK)
        {
            rc = PT_ERROR;
        }
    }

    return rc;
}


int
pt_conf_merge_level(pt_conf_t *cf, void **parent, void **child)
{
    int           rc;
    pt_uint_t     i;
    pt_module_t  *m;

    rc = PT_OK;

    for (i = 0; pt_modules[i]; i++) {
        m = pt_modules[i];

        if (m->merge_conf == NULL || child[m->index] == NULL) {
            continue;
        }

        if (m->merge_conf(cf, parent ? parent[m->index] : NULL,
                          child[m->index]) != PT_OK)
        {
            rc = PT_ERROR;
        }
    }

    return rc;
}


int
pt_conf_validate_level(pt_conf_t *cf, void **ctx)
{
    int           rc;
    pt_uint_t     i;
    pt_module_t  *m;

    rc = PT_OK;

    for (i = 0; pt_modules[i]; i++) {
        m = pt_modules[i];

        if (m->validate == NULL || ctx[m->index] == NULL) {
            continue;
        }

        if (m->validate(cf, ctx[m->index]) != PT_OK) {
            rc = PT_ERROR;
        }
    }

    return rc;
}


int
pt_conf_expect(pt_conf_t *cf, pt_yaml_node_t *node, int type,
    const char *what)
{
    static const char  *names[] = { "a scalar", "a sequence", "a map" };

    if ((int) node->type == type) {
        return PT_OK;
    }

    return pt_conf_error(cf, node, "%s: expected %s, got a %s", what,
                         names[type], pt_yaml_type_name(node));
}


int
pt_conf_full_path(pt_conf_t *cf, const pt_str_t *path, pt_str_t *full)
{
    pt_str_t  *prefix;

    if (path->len > 0 && path->data[0] == '/') {
        return pt_str_dup(cf->pool, full, path->data, path->len)
               ? PT_OK : PT_ERROR;
    }

    prefix = &cf->prefix;

    full->data = pt_psprintf(cf->pool, &full->len, "%.*s%.*s",
                             (int) prefix->len, prefix->data,
                             (int) path->len, path->data);

    return full->data ? PT_OK : PT_ERROR;
}


static int
pt_conf_scalar(pt_conf_t *cf, const pt_command_t *cmd, pt_yaml_node_t *node)
{
    if (node->type != PT_YAML_SCALAR) {
        return pt_conf_error(cf, node, "%s: expected a scalar, got a %s",
                             cmd->name, pt_yaml_type_name(node));
    }

    return PT_OK;
}


int
pt_conf_parse_flag(pt_conf_t *cf, pt_yaml_node_t *node, int *flag)
{
    const char  *reason;

    if (node->type != PT_YAML_SCALAR) {
        return pt_conf_error(cf, node, "expected true or false, got a %s",
                             pt_yaml_type_name(node));
    }

    if (pt_parse_bool(node->scalar.data, node->scalar.len, flag, &reason)
        != PT_OK)
    {
        return pt_conf_error(cf, node, "%s: \"%s\"", reason,
                             node->scalar.data);
    }

    return PT_OK;
}


int
pt_conf_parse_int(pt_conf_t *cf, pt_yaml_node_t *node, const char *what,
    int64_t min, int64_t max, int64_t *v)
{
    const char  *reason;

    if (node->type != PT_YAML_SCALAR
        || pt_parse_int(node->scalar.data, node->scalar.len, min, max, v,
                        &reason) != PT_OK)
    {
        return pt_conf_error(cf, node, "%s: a number from %lld to %lld",
                             what, (long long) min, (long long) max);
    }

    return PT_OK;
}


int
pt_conf_parse_msec(pt_conf_t *cf, pt_yaml_node_t *node, pt_msec_t *ms)
{
    const char  *reason;

    if (node->type != PT_YAML_SCALAR) {
        return pt_conf_error(cf, node, "expected a duration, got a %s",
                             pt_yaml_type_name(node));
    }

    if (pt_parse_duration(node->scalar.data, node->scalar.len, ms, &reason)
        != PT_OK)
    {
        return pt_conf_error(cf, node, "%s: \"%s\"", reason,
                             node->scalar.data);
    }

    return PT_OK;
}


int
pt_conf_parse_size(pt_conf_t *cf, pt_yaml_node_t *node, size_t *size)
{
    uint64_t     v;
    const char  *reason;

    if (node->type != PT_YAML_SCALAR) {
        return pt_conf_error(cf, node, "expected a size, got a %s",
                             pt_yaml_type_name(node));
    }

    if (pt_parse_size(node->scalar.data, node->scalar.len, &v, &reason)
        != PT_OK)
    {
        return pt_conf_error(cf, node, "%s: \"%s\"", reason,
                             node->scalar.data);
    }

    if (v > (uint64_t) SIZE_MAX / 2) {
        return pt_conf_error(cf, node, "size too large: \"%s\"",
                             node->scalar.data);
    }

    *size = (size_t) v;

    return PT_OK;
}


int
pt_conf_set_flag(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    return pt_conf_parse_flag(cf, node, (int *) ((char *) conf + cmd->offset));
}


int
pt_conf_set_num(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int64_t                  v;
    const char              *reason;
    const pt_conf_bounds_t  *b;

    if (pt_conf_scalar(cf, cmd, node) != PT_OK) {
        return PT_ERROR;
    }

    b = cmd->post;

    if (pt_parse_int(node->scalar.data, node->scalar.len,
                     b ? b->min : 0, b ? b->max : INT32_MAX, &v, &reason)
        != PT_OK)
    {
        return pt_conf_error(cf, node, "%s: %s: \"%s\"", cmd->name, reason,
                             node->scalar.data);
    }

    *(pt_int_t *) ((char *) conf + cmd->offset) = (pt_int_t) v;

    return PT_OK;
}


int
pt_conf_set_size(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    return pt_conf_parse_size(cf, node,
                              (size_t *) ((char *) conf + cmd->offset));
}


int
pt_conf_set_msec(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    return pt_conf_parse_msec(cf, node,
                              (pt_msec_t *) ((char *) conf + cmd->offset));
}


int
pt_conf_set_str(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    if (pt_conf_scalar(cf, cmd, node) != PT_OK) {
        return PT_ERROR;
    }

    /* Tree strings live in the cycle pool already, NUL-terminated. */
    *(pt_str_t *) ((char *) conf + cmd->offset) = node->scalar;

    return PT_OK;
}


int
pt_conf_set_path(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    if (pt_conf_scalar(cf, cmd, node) != PT_OK) {
        return PT_ERROR;
    }

    if (node->scalar.len == 0) {
        return pt_conf_error(cf, node, "%s: empty path", cmd->name);
    }

    return pt_conf_full_path(cf, &node->scalar,
                             (pt_str_t *) ((char *) conf + cmd->offset));
}


int
pt_conf_set_enum(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    char                   list[256];
    size_t                 n;
    const pt_conf_enum_t  *e;

    if (pt_conf_scalar(cf, cmd, node) != PT_OK) {
        return PT_ERROR;
    }

    for (e = cmd->post; e->name; e++) {
        if (strcmp(e->name, node->scalar.data) == 0) {
            *(pt_uint_t *) ((char *) conf + cmd->offset) = e->value;
            return PT_OK;
        }
    }

    list[0] = '\0';
    for (n = 0, e = cmd->post; e->name && n < sizeof(list) - 1; e++) {
        n += (size_t) snprintf(list + n, sizeof(list) - n, "%s%s",
                               n ? ", " : "", e->name);
    }

    return pt_conf_error(cf, node, "%s: \"%s\" is not one of: %s", cmd->name,
                         node->scalar.data, list);
}


int
pt_conf_set_addr(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    const char  *reason;

    if (pt_conf_scalar(cf, cmd, node) != PT_OK) {
        return PT_ERROR;
    }

    if (pt_parse_addr(node->scalar.data, node->scalar.len, 0,
                      (pt_addr_t *) ((char *) conf + cmd->offset), &reason)
        != PT_OK)
    {
        return pt_conf_error(cf, node, "%s: %s: \"%s\"", cmd->name, reason,
                             node->scalar.data);
    }

    return PT_OK;
}
