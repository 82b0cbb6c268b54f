/*
 * pt_cycle.c: build, share and drop configuration generations (see
 * pt_cycle.h).
 */

#include <fcntl.h>
#include <limits.h>

#include "pt_cycle.h"
#include "pt_core_module.h"
#include "pt_string.h"
#include "pt_time.h"


pt_cycle_t  *pt_cycle;
int          pt_cycle_fatal_level = PT_LOG_EMERG;

static int pt_cycle_parse(pt_conf_t *cf, const char *conf_file);
static int pt_cycle_open_files(pt_cycle_t *cycle);
static int pt_cycle_open_listeners(pt_cycle_t *cycle, pt_cycle_t *old);
static void pt_cycle_report(pt_conf_t *cf, int level);


pt_cycle_t *
pt_cycle_init(pt_cycle_t *old, const char *conf_file, const char *prefix,
    int test_only)
{
    pt_uint_t     m;
    pt_pool_t    *pool;
    pt_conf_t     cf;
    pt_cycle_t   *cycle;
    pt_core_conf_t  *ccf;

    /* A failing reload leaves the gateway serving: an error, not emerg. */
    pt_cycle_fatal_level = old ? PT_LOG_ERR : PT_LOG_EMERG;

    pool = pt_pool_create(16384);
    if (pool == NULL) {
        return NULL;
    }

    cycle = pt_pcalloc(pool, sizeof(pt_cycle_t));
    if (cycle == NULL) {
        goto failed;
    }

    cycle->pool = pool;
    cycle->log = pt_log_current;
    cycle->log_file.fd = -1;
    cycle->generation = old ? old->generation + 1 : 1;
    cycle->loaded_at = pt_current_epoch_msec;

    if (pt_array_init(&cycle->listening, pool, 4, sizeof(pt_listening_t))
        != PT_OK
        || pt_array_init(&cycle->shm_zones, pool, PT_SHM_MAX_ZONES,
                         sizeof(pt_shm_zone_t)) != PT_OK
        || pt_array_init(&cycle->open_files, pool, 4, sizeof(pt_open_file_t))
           != PT_OK
        || pt_array_init(&cycle->scopes, pool, 16, sizeof(pt_conf_scope_t))
           != PT_OK)
    {
        goto failed;
    }

    if (pt_str_dup(pool, &cycle->conf_file, conf_file, strlen(conf_file))
        == NULL
        || pt_str_dup(pool, &cycle->prefix, prefix, strlen(prefix)) == NULL)
    {
        goto failed;
    }

    memset(&cf, 0, sizeof(pt_conf_t));
    cf.cycle = cycle;
    cf.pool = pool;
    cf.conf_file = cycle->conf_file;
    cf.prefix = cycle->prefix;
    cf.test_only = test_only ? 1 : 0;

    if (pt_array_init(&cf.errors, pool, 4, sizeof(pt_str_t)) != PT_OK) {
        goto failed;
    }

    if (pt_cycle_parse(&cf, conf_file) != PT_OK || cf.errors.nelts) {
        /* A bad reload leaves the gateway running: an error, not emerg. */
        pt_cycle_report(&cf, pt_cycle_fatal_level);
        goto failed;
    }

    if (test_only) {
        return cycle;
    }

    ccf = pt_core_conf(cycle);

    cycle->log_file.fd = -1;
    cycle->log_file.level = (int) ccf->log_level;

    if (strcmp(ccf->error_log.data, "stderr") != 0) {
        cycle->log_file.path = ccf->error_log.data;
        cycle->log_file.fd = pt_log_open_file(ccf->error_log.data);
        if (cycle->log_file.fd < 0) {
            pt_log_error(pt_cycle_fatal_level, NULL, errno,
                         "cannot open error log \"%s\"", ccf->error_log.data);
            goto failed;
        }
    }

    cycle->log = &cycle->log_file;

    if (pt_cycle_open_files(cycle) != PT_OK
        || pt_shm_zones_create(cycle, old) != PT_OK
        || pt_cycle_open_listeners(cycle, old) != PT_OK)
    {
        goto rollback;
    }

    for (m = 0; pt_modules[m]; m++) {
        if (pt_modules[m]->init_master
            && pt_modules[m]->init_master(cycle) != PT_OK)
        {
            pt_log_error(pt_cycle_fatal_level, NULL, 0,
                         "module \"%s\" failed to initialise",
                         pt_modules[m]->name);
            goto rollback;
        }
    }

    return cycle;

rollback:

    pt_cycle_free(cycle, old);
    return NULL;

failed:

    pt_pool_destroy(pool);
    return NULL;
}


static int
pt_cycle_parse(pt_conf_t *cf, const char *conf_file)
{
    size_t            i;
    pt_uint_t         m;
    pt_str_t          err, *e;
    pt_cycle_t       *cycle;
    pt_yaml_node_t   *root;
    pt_conf_scope_t  *scope;

    cycle = cf->cycle;

    if (pt_yaml_load_file(cf->pool, conf_file, &root, &err) != PT_OK
        || pt_yaml_resolve_includes(cf->pool, root, cycle->prefix.data, &err)
           != PT_OK)
    {
        /* The loader's message already starts with FILE:LINE:COL. */
        e = pt_array_push(&cf->errors);
        if (e) {
            *e = err;
        }
        return PT_ERROR;
    }

    cf->level = PT_CONF_LEVEL_GLOBAL;

    for (m = 0; pt_modules[m]; m++) {
        if (pt_modules[m]->preconfig
            && pt_modules[m]->preconfig(cf) != PT_OK)
        {
            return pt_conf_error(cf, NULL, "module \"%s\" failed to prepare",
                                 pt_modules[m]->name);
        }
    }

    cycle->conf = pt_conf_create_level(cf, PT_CONF_LEVEL_GLOBAL);
    if (cycle->conf == NULL) {
        return PT_ERROR;
    }

    cf->ctx = cycle->conf;
    cf->scope = NULL;

    if (pt_conf_dispatch(cf, root, NULL) != PT_OK || cf->errors.nelts) {
        return PT_ERROR;
    }

    /* Global settings get their defaults first: the scopes inherit them. */
    if (pt_conf_merge_level(cf, NULL, cycle->conf) != PT_OK) {
        return PT_ERROR;
    }

    scope = cycle->scopes.elts;

    for (i = 0; i < cycle->scopes.nelts; i++) {
        cf->level = scope[i].level;
        cf->scope = scope[i].object;
        cf->ctx = scope[i].ctx;
        (void) pt_conf_merge_level(cf, cycle->conf, scope[i].ctx);
    }

    cf->level = PT_CONF_LEVEL_GLOBAL;
    cf->scope = NULL;
    cf->ctx = cycle->conf;
    (void) pt_conf_validate_level(cf, cycle->conf);

    for (i = 0; i < cycle->scopes.nelts; i++) {
        cf->level = scope[i].level;
        cf->scope = scope[i].object;
        cf->ctx = scope[i].ctx;
        (void) pt_conf_validate_level(cf, scope[i].ctx);
    }

    if (cf->errors.nelts) {
        return PT_ERROR;
    }

    cf->level = PT_CONF_LEVEL_GLOBAL;
    cf->scope = NULL;
    cf->ctx = cycle->conf;

    for (m = 0; pt_modules[m]; m++) {
        if (pt_modules[m]->postconfig
            && pt_modules[m]->postconfig(cf) != PT_OK
            && cf->errors.nelts == 0)
        {
            (void) pt_conf_error(cf, NULL, "module \"%s\" failed to set up",
                                 pt_modules[m]->name);
        }
    }

    if (cf->errors.nelts == 0) {
        (void) pt_shm_zones_size(cf);
    }

    for (m = 0; pt_modules[m] && cf->errors.nelts == 0; m++) {
        if (pt_modules[m]->init_conf
            && pt_modules[m]->init_conf(cf) != PT_OK
            && cf->errors.nelts == 0)
        {
            (void) pt_conf_error(cf, NULL,
                                 "module \"%s\" failed to finish its configuration",
                                 pt_modules[m]->name);
        }
    }

    return cf->errors.nelts ? PT_ERROR : PT_OK;
}


static void
pt_cycle_report(pt_conf_t *cf, int level)
{
    size_t     i;
    pt_str_t  *e;

    e = cf->errors.elts;

    if (cf->errors.nelts == 0) {
        pt_log_error(level, NULL, 0,
                     "%s: cannot load configuration (out of memory?)",
                     cf->cycle->conf_file.data);
        return;
    }

    for (i = 0; i < cf->errors.nelts; i++) {
        pt_log_error(level, NULL, 0, "%.*s", (int) e[i].len, e[i].data);
    }

    if (cf->errors.nelts >= PT_CONF_MAX_ERRORS) {
        pt_log_error(level, NULL, 0, "too many errors, stopped after %d",
                     PT_CONF_MAX_ERRORS);
    }
}


void
pt_cycle_request_helper(pt_conf_t *cf)
{
    cf->cycle->helper = 1;
}


int
pt_conf_scope_add(pt_conf_t *cf, pt_conf_level_e level, void *object,
    void **ctx)
{
    pt_conf_scope_t  *s;

    s = pt_array_push(&cf->cycle->scopes);
    if (s == NULL) {
        return PT_ERROR;
    }

    s->level = level;
    s->object = object;
    s->ctx = ctx;

    return PT_OK;
}


pt_open_file_t *
pt_conf_open_file(pt_conf_t *cf, const pt_str_t *path)
{
    size_t           i;
    pt_open_file_t  *f;

    f = cf->cycle->open_files.elts;

    for (i = 0; i < cf->cycle->open_files.nelts; i++) {
        if (pt_str_equal(&f[i].path, path)) {
            return &f[i];
        }
    }

    f = pt_array_push(&cf->cycle->open_files);
    if (f == NULL) {
        return NULL;
    }

    f->path = *path;
    f->fd = -1;
    f->flush = NULL;
    f->data = NULL;

    return f;
}


static int
pt_cycle_open_files(pt_cycle_t *cycle)
{
    size_t           i;
    pt_open_file_t  *f;

    f = cycle->open_files.elts;

    for (i = 0; i < cycle->open_files.nelts; i++) {
        f[i].fd = pt_log_open_file(f[i].path.data);
        if (f[i].fd < 0) {
            pt_log_error(pt_cycle_fatal_level, NULL, errno,
                         "cannot open \"%s\"", f[i].path.data);
            return PT_ERROR;
        }
    }

    return PT_OK;
}


void
pt_cycle_tick_master(pt_cycle_t *cycle)
{
    pt_uint_t  m;

    for (m = 0; m < pt_modules_n; m++) {
        if (pt_modules[m]->tick_master) {
            pt_modules[m]->tick_master(cycle);
        }
    }
}


void
pt_cycle_reopen_files(pt_cycle_t *cycle)
{
    int              fd;
    size_t           i;
    pt_open_file_t  *f;

    f = cycle->open_files.elts;

    for (i = 0; i < cycle->open_files.nelts; i++) {
        if (f[i].flush) {
            f[i].flush(&f[i], f[i].data);
        }

        fd = pt_log_open_file(f[i].path.data);
        if (fd < 0) {
            pt_log_error(PT_LOG_ALERT, NULL, errno, "cannot reopen \"%s\"",
                         f[i].path.data);
            continue;
        }

        /* Keep the number: buffered writers hold it. */
        if (dup3(fd, f[i].fd, O_CLOEXEC) < 0) {
            pt_log_error(PT_LOG_ALERT, NULL, errno, "dup3() for \"%s\" failed",
                         f[i].path.data);
        }
        close(fd);
    }

    (void) pt_log_reopen(&cycle->log_file);
}


pt_listening_t *
pt_cycle_find_listener(pt_cycle_t *cycle, const pt_listening_t *like)
{
    size_t           i;
    pt_listening_t  *ls;

    if (cycle == NULL) {
        return NULL;
    }

    ls = cycle->listening.elts;

    for (i = 0; i < cycle->listening.nelts; i++) {
        if (ls[i].addr.socklen == like->addr.socklen
            && memcmp(&ls[i].addr.sa, &like->addr.sa, like->addr.socklen)
               == 0)
        {
            return &ls[i];
        }
    }

    return NULL;
}


static int
pt_cycle_open_listeners(pt_cycle_t *cycle, pt_cycle_t *old)
{
    size_t           i;
    pt_listening_t  *ls, *ols;

    ls = cycle->listening.elts;

    for (i = 0; i < cycle->listening.nelts; i++) {
        ols = pt_cycle_find_listener(old, &ls[i]);

        if (ols && ols->fd != -1) {
            /* Same socket, new settings: its backlog is never dropped. */
            ls[i].fd = ols->fd;
            ls[i].reused = 1;

        } else if (pt_open_listening_socket(&ls[i], pt_cycle_fatal_level)
                   != PT_OK)
        {
            return PT_ERROR;
        }

        pt_listening_options(&ls[i]);
    }

    return PT_OK;
}


static int
pt_cycle_has_fd(pt_cycle_t *keep, int fd)
{
    size_t           i;
    pt_listening_t  *ls;

    if (keep == NULL) {
        return 0;
    }

    ls = keep->listening.elts;

    for (i = 0; i < keep->listening.nelts; i++) {
        if (ls[i].fd == fd) {
            return 1;
        }
    }

    return 0;
}


void
pt_cycle_close_listeners(pt_cycle_t *cycle, pt_cycle_t *keep)
{
    size_t           i;
    pt_listening_t  *ls;

    ls = cycle->listening.elts;

    for (i = 0; i < cycle->listening.nelts; i++) {
        if (ls[i].fd != -1 && !pt_cycle_has_fd(keep, ls[i].fd)) {
            close(ls[i].fd);
        }
        ls[i].fd = -1;
    }
}


void
pt_cycle_free(pt_cycle_t *cycle, pt_cycle_t *keep)
{
    size_t           i;
    pt_uint_t        m;
    pt_open_file_t  *f;

    if (cycle == NULL) {
        return;
    }

    for (m = 0; pt_modules[m]; m++) {
        if (pt_modules[m]->exit_master) {
            pt_modules[m]->exit_master(cycle);
        }
    }

    pt_cycle_close_listeners(cycle, keep);

    /* Zones are counted, not compared with keep: a retired generation
     * still draining may share a mapping that keep has replaced. */
    pt_shm_zones_release(cycle);

    f = cycle->open_files.elts;
    for (i = 0; i < cycle->open_files.nelts; i++) {
        if (f[i].fd != -1) {
            close(f[i].fd);
        }
    }

    if (pt_log_current == &cycle->log_file) {
        pt_log_current = keep ? keep->log : pt_log_default();
    }

    if (cycle->log_file.fd != -1 && cycle->log_file.path) {
        close(cycle->log_file.fd);
    }

    pt_pool_destroy(cycle->pool);
}
