/*
 * pt_log_module.c: the "log" module: the access log's config and lines.
 *
 * Each line is built in the request's pool and handed to the writer
 * (pt_log_writer.c), a thread per worker behind a bounded queue, so a
 * slow or full disk never stalls request handling: at worst lines are
 * dropped, counted, and the count logged once a second. The file is
 * O_APPEND and a line goes out in one writev(2): lines from different
 * workers never interleave inside a line.
 *
 *   access_log: { path: logs/access.log, format: json, buffer: 128k }
 *
 * format is json, combined, or a template ("${remote_addr} ${status}").
 * The queue is 8 chunks of `buffer` bytes. A route may set
 * `access_log: false`. Admin endpoints are not logged.
 */

#include "pt_http.h"
#include "pt_string.h"
#include "pt_time.h"
#include "pt_log_writer.h"


enum {
    PT_ACCESS_JSON = 0,
    PT_ACCESS_COMBINED,
    PT_ACCESS_TEMPLATE
};

typedef struct {
    pt_open_file_t   *file;       /* NULL: no access log */
    pt_uint_t         format;
    pt_template_t    *tpl;
    size_t            buffer;
} pt_log_main_conf_t;

typedef struct {
    int               enabled;    /* PT_CONF_UNSET, 0 or 1 */
} pt_log_route_conf_t;


static void *pt_log_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_log_merge_conf(pt_conf_t *cf, void *parent, void *child);
static int pt_log_postconfig(pt_conf_t *cf);
static int pt_log_init_worker(pt_cycle_t *cycle);
static void pt_log_exit_worker(pt_cycle_t *cycle);
static int pt_log_set_access_log(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_log_handler(pt_http_request_t *r);
static void pt_log_flush(pt_open_file_t *file, void *data);


static const pt_command_t  pt_log_commands[] = {

    { "access_log", PT_CONF_GLOBAL | PT_CONF_ROUTE, pt_log_set_access_log, 0,
      NULL },

    pt_null_command
};


pt_module_t  pt_log_module = {
    .name = "log",
    .abi = PT_MODULE_ABI,
    .commands = pt_log_commands,
    .create_conf = pt_log_create_conf,
    .merge_conf = pt_log_merge_conf,
    .postconfig = pt_log_postconfig,
    .init_worker = pt_log_init_worker,
    .exit_worker = pt_log_exit_worker,
};


/* Per worker: the writer's one-second tick. */
static pt_event_t      pt_log_timer;


static void *
pt_log_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_log_main_conf_t   *lmcf;
    pt_log_route_conf_t  *lrcf;

    if (level == PT_CONF_LEVEL_ROUTE) {
        lrcf = pt_pcalloc(cf->pool, sizeof(pt_log_route_conf_t));
        if (lrcf == NULL) {
            return PT_CONF_ERROR_PTR;
        }
        lrcf->enabled = PT_CONF_UNSET;
        return lrcf;
    }

    if (level != PT_CONF_LEVEL_GLOBAL) {
        return NULL;
    }

    lmcf = pt_pcalloc(cf->pool, sizeof(pt_log_main_conf_t));
    if (lmcf == NULL) {
        return PT_CONF_ERROR_PTR;
    }

    lmcf->buffer = 128 * 1024;

    return lmcf;
}


static int
pt_log_merge_conf(pt_conf_t *cf, void *parent, void *child)
{
    pt_route_t           *route;
    pt_log_route_conf_t  *lrcf;

    if (cf->level != PT_CONF_LEVEL_ROUTE) {
        return PT_OK;
    }

    lrcf = child;
    route = cf->scope;

    /* Operator endpoints (scrapes, probes) stay out of the access log. */
    pt_conf_merge_value(lrcf->enabled, PT_CONF_UNSET,
                        (route && route->admin) ? 0 : 1);

    return PT_OK;
}


static int
pt_log_set_access_log(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                   rc, on;
    size_t                i;
    pt_str_t              path;
    pt_yaml_node_t       *key, *value;
    pt_log_main_conf_t   *lmcf;
    pt_log_route_conf_t  *lrcf;

    if (cf->level == PT_CONF_LEVEL_ROUTE) {
        lrcf = conf;
        return pt_conf_parse_flag(cf, node, &lrcf->enabled);
    }

    lmcf = conf;

    if (node->type == PT_YAML_SCALAR) {
        if (pt_conf_parse_flag(cf, node, &on) != PT_OK) {
            return PT_ERROR;
        }

        if (on) {
            return pt_conf_error(cf, node,
                                 "access_log: give a map with a path, or false");
        }

        return PT_OK;
    }

    if (node->type != PT_YAML_MAP) {
        return pt_conf_error(cf, node, "access_log: expected a map, got a %s",
                             pt_yaml_type_name(node));
    }

    rc = PT_OK;
    path.len = 0;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key;
        value = node->pairs[i].value;

        if (strcmp(key->scalar.data, "path") == 0) {
            if (pt_conf_expect(cf, value, PT_YAML_SCALAR, "access_log: path")
                != PT_OK
                || pt_conf_full_path(cf, &value->scalar, &path) != PT_OK)
            {
                rc = PT_ERROR;
            }

        } else if (strcmp(key->scalar.data, "format") == 0) {
            if (pt_conf_expect(cf, value, PT_YAML_SCALAR,
                               "access_log: format") != PT_OK)
            {
                rc = PT_ERROR;

            } else if (strcmp(value->scalar.data, "json") == 0) {
                lmcf->format = PT_ACCESS_JSON;

            } else if (strcmp(value->scalar.data, "combined") == 0) {
                lmcf->format = PT_ACCESS_COMBINED;

            } else {
                lmcf->format = PT_ACCESS_TEMPLATE;
                lmcf->tpl = pt_template_compile(cf, value);
                if (lmcf->tpl == NULL) {
                    rc = PT_ERROR;
                }
            }

        } else if (strcmp(key->scalar.data, "buffer") == 0) {
            if (pt_conf_parse_size(cf, value, &lmcf->buffer) != PT_OK) {
                rc = PT_ERROR;
            } else if (lmcf->buffer > 16 * 1024 * 1024) {
                rc = pt_conf_error(cf, value,
                                   "access_log: buffer is at most 16m");
            }

        } else {
            rc = pt_conf_error(cf, key,
                               "unknown key \"%s\" in access_log (path, format, buffer)",
                               key->scalar.data);
        }
    }

    if (rc == PT_OK && path.len == 0) {
        return pt_conf_error(cf, node, "access_log: path is required");
    }

    if (rc == PT_OK) {
        lmcf->file = pt_conf_open_file(cf, &path);
        if (lmcf->file == NULL) {
            return PT_ERROR;
        }
    }

    return rc;
}


static int
pt_log_postconfig(pt_conf_t *cf)
{
    pt_log_main_conf_t  *lmcf;

    lmcf = cf->cycle->conf[pt_log_module.index];

    if (lmcf->file == NULL) {
        return PT_OK;
    }

    lmcf->file->flush = pt_log_flush;

    return pt_http_phase_add(cf, PT_HTTP_LOG_PHASE, pt_log_handler, 100,
                             &pt_log_module);
}


/* Called by the cycle before it reopens its files (USR1): the writer
 * switches files at this point of its queue. In the master and the
 * helper, which have no writer, nothing to do. */
static void
pt_log_flush(pt_open_file_t *file, void *data)
{
    (void) file;
    (void) data;

    pt_log_writer_reopen();
}


static void
pt_log_timer_handler(pt_event_t *ev)
{
    pt_log_writer_tick();
    pt_timer_add(ev, 1000);
}


static int
pt_log_init_worker(pt_cycle_t *cycle)
{
    pt_log_main_conf_t  *lmcf;

    lmcf = cycle->conf[pt_log_module.index];

    if (lmcf->file == NULL) {
        return PT_OK;
    }

    /* After fork, in the worker: a thread in the master would not
     * survive the fork. */
    if (pt_log_writer_start(lmcf->file->fd, lmcf->file->path.data,
                            pt_max(lmcf->buffer, (size_t) 4096))
        != PT_OK)
    {
        return PT_ERROR;
    }

    lmcf->file->data = NULL;

    pt_log_timer.handler = pt_log_timer_handler;
    pt_log_timer.cancelable = 1;
    pt_timer_add(&pt_log_timer, 1000);

    return PT_OK;
}


static void
pt_log_exit_worker(pt_cycle_t *cycle)
{
    (void) cycle;

    pt_log_writer_stop();
}


/* Append a JSON string (or null) to the line being built. */
static char *
pt_log_json(pt_pool_t *pool, char *p, const pt_str_t *s)
{
    if (s == NULL || s->data == NULL) {
        return pt_cpystr(p, "null");
    }

    *p++ = '"';
    p = pt_json_escape(p, s->data, s->len);
    *p++ = '"';

    return p;
}


static size_t
pt_log_json_len(const pt_str_t *s)
{
    return (s == NULL || s->data == NULL) ? 4
           : pt_json_escape_len(s->data, s->len) + 2;
}


static int
pt_log_line_json(pt_http_request_t *r, pt_str_t *line)
{
    char              *p;
    size_t             len, i;
    uint64_t           us, sent;
    pt_str_t           remote, *route, *ua, *up, *upaddr, *consumer, *cache,
                      *trace, s[16];
    pt_http_header_t  *h;

    (void) pt_http_remote_addr(r, &remote);

    route = r->route ? &r->route->name : NULL;
    h = r->headers_in.user_agent;
    ua = h ? &h->value : NULL;
    up = r->upstream_name.len ? &r->upstream_name : NULL;
    upaddr = r->upstream_addr.len ? &r->upstream_addr : NULL;
    consumer = r->consumer.len ? &r->consumer : NULL;
    cache = r->cache_status.len ? &r->cache_status : NULL;
    trace = r->trace_id.len ? &r->trace_id : NULL;

    s[0] = (pt_str_t) { strlen(pt_cached_iso8601_time),
                        pt_cached_iso8601_time };
    s[1] = r->request_id;
    s[2] = remote;
    s[3] = r->method_name;
    s[4] = r->host;
    s[5] = r->path.data ? r->path : r->line.target;

    len = 512;
    for (i = 0; i < 6; i++) {
        len += pt_log_json_len(&s[i]);
    }
    len += pt_log_json_len(route) + pt_log_json_len(ua)
           + pt_log_json_len(up) + pt_log_json_len(upaddr)
           + pt_log_json_len(consumer) + pt_log_json_len(cache)
           + pt_log_json_len(trace);

    p = pt_pnalloc(r->pool, len);
    if (p == NULL) {
        return PT_ERROR;
    }

    line->data = p;

    us = pt_monotonic_usec() - r->start_usec;
    sent = r->connection->sent - r->bytes_sent_start;

    p = pt_cpystr(p, "{\"time\":");
    p = pt_log_json(r->pool, p, &s[0]);
    p = pt_cpystr(p, ",\"request_id\":");
    p = pt_log_json(r->pool, p, &s[1]);
    p = pt_cpystr(p, ",\"remote_addr\":");
    p = pt_log_json(r->pool, p, &s[2]);
    p = pt_cpystr(p, ",\"method\":");
    p = pt_log_json(r->pool, p, &s[3]);
    p = pt_cpystr(p, ",\"host\":");
    p = pt_log_json(r->pool, p, &s[4]);
    p = pt_cpystr(p, ",\"path\":");
    p = pt_log_json(r->pool, p, &s[5]);
    p += sprintf(p, ",\"status\":%u,\"bytes_sent\":%llu,"
                 "\"duration_ms\":%llu.%03llu,\"upstream\":",
                 r->client_aborted && !r->header_sent ? 499 : r->status,
                 (unsigned long long) sent,
                 (unsigned long long) (us / 1000),
                 (unsigned long long) (us % 1000));
    p = pt_log_json(r->pool, p, up);
    p = pt_cpystr(p, ",\"upstream_addr\":");
    p = pt_log_json(r->pool, p, upaddr);

    if (r->upstream_usec >= 0) {
        p += sprintf(p, ",\"upstream_ms\":%llu.%03llu",
                     (unsigned long long) (r->upstream_usec / 1000),
                     (unsigned long long) (r->upstream_usec % 1000));
    } else {
        p = pt_cpystr(p, ",\"upstream_ms\":null");
    }

    p = pt_cpystr(p, ",\"route\":");
    p = pt_log_json(r->pool, p, route);
    p = pt_cpystr(p, ",\"consumer\":");
    p = pt_log_json(r->pool, p, consumer);
    p = pt_cpystr(p, ",\"cache\":");
    p = pt_log_json(r->pool, p, cache);
    p = pt_cpystr(p, ",\"user_agent\":");
    p = pt_log_json(r->pool, p, ua);
    p = pt_cpystr(p, ",\"trace_id\":");
    p = pt_log_json(r->pool, p, trace);
    p = pt_cpystr(p, "}\n");

    line->len = (size_t) (p - line->data);

    return PT_OK;
}


/* Client text inside the quotes of a combined line: '"', '\\', control
 * and non-ASCII bytes become \xHH (as nginx writes them), so a client
 * cannot forge fields. */
static pt_str_t
pt_log_clf_escape(pt_pool_t *pool, pt_str_t in)
{
    char                 *p;
    size_t                i, n;
    pt_str_t              out;
    unsigned char         c;
    static const char     hex[] = "0123456789ABCDEF";

    for (i = 0, n = 0; i < in.len; i++) {
        c = (unsigned char) in.data[i];
        n += (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) ? 4 : 1;
    }

    if (n == in.len) {
        return in;
    }

    p = pt_pnalloc(pool, n);
    if (p == NULL) {
        return (pt_str_t) pt_string("-");
    }

    out.data = p;
    out.len = n;

    for (i = 0; i < in.len; i++) {
        c = (unsigned char) in.data[i];

        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x7f) {
            *p++ = '\\';
            *p++ = 'x';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        } else {
            *p++ = (char) c;
        }
    }

    return out;
}


static int
pt_log_line_combined(pt_http_request_t *r, pt_str_t *line)
{
    pt_str_t           remote, referer, ua, target, user;
    pt_http_header_t  *h;

    (void) pt_http_remote_addr(r, &remote);

    h = r->headers_in.referer;
    referer = h ? pt_log_clf_escape(r->pool, h->value)
                : (pt_str_t) pt_string("-");
    h = r->headers_in.user_agent;
    ua = h ? pt_log_clf_escape(r->pool, h->value)
           : (pt_str_t) pt_string("-");
    target = pt_log_clf_escape(r->pool, r->line.target);
    user = r->consumer.len ? pt_log_clf_escape(r->pool, r->consumer)
                           : (pt_str_t) pt_string("-");

    line->data = pt_psprintf(r->pool, &line->len,
                    "%.*s - %.*s [%s] \"%.*s %.*s HTTP/%u.%u\" %u %llu "
                    "\"%.*s\" \"%.*s\"\n",
                    (int) remote.len, remote.data,
                    (int) user.len, user.data,
                    pt_cached_clf_time,
                    (int) r->method_name.len, r->method_name.data,
                    (int) target.len, target.data,
                    r->version / 10, r->version % 10,
                    r->client_aborted && !r->header_sent ? 499 : r->status,
                    (unsigned long long)
                        (r->connection->sent - r->bytes_sent_start),
                    (int) referer.len, referer.data,
                    (int) ua.len, ua.data);

    return line->data ? PT_OK : PT_ERROR;
}


/* A template's value with its "\n", so the line is queued whole. */
static int
pt_log_line_newline(pt_http_request_t *r, pt_str_t *line)
{
    char  *p;

    p = pt_pnalloc(r->pool, line->len + 1);
    if (p == NULL) {
        return PT_ERROR;
    }

    memcpy(p, line->data, line->len);
    p[line->len] = '\n';
    line->data = p;
    line->len++;

    return PT_OK;
}


static int
pt_log_handler(pt_http_request_t *r)
{
    int                   rc;
    pt_str_t              line;
    pt_log_main_conf_t   *lmcf;
    pt_log_route_conf_t  *lrcf;

    lmcf = pt_cycle->conf[pt_log_module.index];

    if (!pt_log_writer_running()) {
        return PT_OK;
    }

    if (r->route) {
        lrcf = r->route->conf[pt_log_module.index];
        if (!lrcf->enabled) {
            return PT_OK;
        }

    } else if (r->hc->listen->admin) {
        return PT_OK;
    }

    switch (lmcf->format) {

    case PT_ACCESS_COMBINED:
        rc = pt_log_line_combined(r, &line);
        break;

    case PT_ACCESS_TEMPLATE:
        rc = pt_template_eval(r, lmcf->tpl, &line);
        if (rc == PT_OK) {
            rc = pt_log_line_newline(r, &line);
        }
        break;

    default:
        rc = pt_log_line_json(r, &line);
    }

    if (rc == PT_OK) {
        pt_log_writer_append(line.data, line.len);
    }

    return PT_OK;
}
