/*
 * pt_router_rewrite.c: what a route does to a request and its response:
 * path rewrites and request header edits (REWRITE phase), response header
 * edits (a header filter), and the respond and redirect actions.
 *
 * Edits run in the order remove, set, add, so `set` replaces whatever the
 * client (or upstream) sent and `add` appends another field.
 */

#include "pt_router.h"
#include "pt_http_path.h"
#include "pt_string.h"


static pt_router_conf_t *
pt_router_conf_of(pt_http_request_t *r)
{
    if (r->route == NULL || r->route->admin) {
        return NULL;
    }

    return r->route->conf[pt_router_module.index];
}


static int
pt_router_edit_request(pt_http_request_t *r, pt_router_edits_t *ed)
{
    size_t             i;
    pt_str_t           value;
    pt_router_edit_t  *e;

    e = ed->remove.elts;
    for (i = 0; i < ed->remove.nelts; i++) {
        pt_http_header_in_remove(r, e[i].name.data, e[i].name.len);
    }

    e = ed->set.elts;
    for (i = 0; i < ed->set.nelts; i++) {
        pt_http_header_in_remove(r, e[i].name.data, e[i].name.len);
    }

    for (i = 0; i < ed->set.nelts + ed->add.nelts; i++) {
        e = (i < ed->set.nelts) ? &((pt_router_edit_t *) ed->set.elts)[i]
            : &((pt_router_edit_t *) ed->add.elts)[i - ed->set.nelts];

        if (pt_template_eval(r, e->value, &value) != PT_OK) {
            return PT_ERROR;
        }

        if (pt_http_header_in_add(r, &e->name, &value) == NULL) {
            return PT_ERROR;
        }
    }

    return PT_OK;
}


int
pt_router_rewrite_handler(pt_http_request_t *r)
{
    char              *escaped;
    pt_str_t           path;
    pt_router_conf_t  *rcf;

    rcf = pt_router_conf_of(r);
    if (rcf == NULL) {
        return PT_CONTINUE;
    }

    if (rcf->strip_prefix.len
        && r->path.len >= rcf->strip_prefix.len
        && memcmp(r->path.data, rcf->strip_prefix.data,
                  rcf->strip_prefix.len) == 0)
    {
        path.data = r->path.data + rcf->strip_prefix.len;
        path.len = r->path.len - rcf->strip_prefix.len;

        if (path.len == 0 || path.data[0] != '/') {
            /* "/users" stripped from "/users/7" is "/7"; from "/users"
             * it is "/". */
            path.data = pt_psprintf(r->pool, &path.len, "/%.*s",
                                    (int) path.len, path.data);
            if (path.data == NULL) {
                return PT_ERROR;
            }
        }

        r->path = path;
    }

    if (rcf->rewrite_path) {
        if (pt_template_eval(r, rcf->rewrite_path, &path) != PT_OK) {
            return PT_ERROR;
        }

        /* Variables bring client text: whatever a path may not hold is
         * escaped, so it can never split the upstream request line. */
        escaped = pt_pnalloc(r->pool, 3 * path.len + 1);
        if (escaped == NULL) {
            return PT_ERROR;
        }

        path.len = pt_http_escape_path(path.data, path.len, escaped);
        path.data = escaped;

        if (path.len == 0 || path.data[0] != '/') {
            pt_http_log_request(r, PT_LOG_ERR,
                                "rewrite of route \"%s\" made \"%.*s\", not a path",
                                r->route->name.data, (int) path.len,
                                path.data);
            return 500;
        }

        r->path = path;
    }

    return PT_CONTINUE;
}


/* Request header edits run after ACCESS and LIMIT, so their templates
 * see what those phases learnt (${consumer}, ${claim.NAME}). */
int
pt_router_headers_handler(pt_http_request_t *r)
{
    pt_router_conf_t  *rcf;

    rcf = pt_router_conf_of(r);

    if (rcf == NULL || rcf->request_headers.set.elts == NULL) {
        return PT_CONTINUE;
    }

    return pt_router_edit_request(r, &rcf->request_headers) == PT_OK
           ? PT_CONTINUE : PT_ERROR;
}


int
pt_router_header_filter(pt_http_request_t *r)
{
    size_t              i;
    pt_str_t            value;
    pt_router_conf_t   *rcf;
    pt_router_edit_t   *e;
    pt_router_edits_t  *ed;

    rcf = pt_router_conf_of(r);
    if (rcf == NULL || rcf->response_headers.set.elts == NULL) {
        return PT_OK;
    }

    ed = &rcf->response_headers;

    e = ed->remove.elts;
    for (i = 0; i < ed->remove.nelts; i++) {
        pt_http_header_out_remove(r, e[i].name.data, e[i].name.len);
    }

    e = ed->set.elts;
    for (i = 0; i < ed->set.nelts; i++) {
        if (pt_template_eval(r, e[i].value, &value) != PT_OK
            || pt_http_header_out_set(r, e[i].name.data, e[i].name.len,
                                      value.data, value.len) != PT_OK)
        {
            return PT_ERROR;
        }
    }

    e = ed->add.elts;
    for (i = 0; i < ed->add.nelts; i++) {
        if (pt_template_eval(r, e[i].value, &value) != PT_OK
            || pt_http_header_out_add(r, e[i].name.data, e[i].name.len,
                                      value.data, value.len) != PT_OK)
        {
            return PT_ERROR;
        }
    }

    return PT_OK;
}


int
pt_router_respond(pt_http_request_t *r)
{
    size_t             i;
    pt_str_t           body, value;
    pt_router_conf_t  *rcf;
    pt_router_edit_t  *h;

    rcf = r->route->conf[pt_router_module.index];

    body.len = 0;
    body.data = "";

    if (rcf->respond_body
        && pt_template_eval(r, rcf->respond_body, &body) != PT_OK)
    {
        return PT_ERROR;
    }

    h = rcf->respond_headers.elts;

    for (i = 0; i < rcf->respond_headers.nelts; i++) {
        if (pt_template_eval(r, h[i].value, &value) != PT_OK
            || pt_http_header_out_add(r, h[i].name.data, h[i].name.len,
                                      value.data, value.len) != PT_OK)
        {
            return PT_ERROR;
        }
    }

    if (pt_http_header_find(&r->headers_out.headers, "Content-Type", 12)
        == NULL
        && pt_http_header_out_add(r, "Content-Type", 12,
                                  "text/plain; charset=utf-8", 25) != PT_OK)
    {
        return PT_ERROR;
    }

    pt_http_finalize(r, pt_http_send_response(r, rcf->respond_status, NULL,
                                              body.data, body.len));

    return PT_DONE;
}


int
pt_router_redirect(pt_http_request_t *r)
{
    pt_str_t           to;
    pt_router_conf_t  *rcf;

    rcf = r->route->conf[pt_router_module.index];

    if (pt_template_eval(r, rcf->redirect_to, &to) != PT_OK) {
        return PT_ERROR;
    }

    /* A Location with a CR or LF in it would split the response. */
    if (memchr(to.data, '\r', to.len) || memchr(to.data, '\n', to.len)) {
        return 500;
    }

    if (pt_http_header_out_set(r, "Location", 8, to.data, to.len) != PT_OK) {
        return PT_ERROR;
    }

    pt_http_finalize(r, pt_http_send_response(r, rcf->redirect_status, NULL,
                                              "", 0));

    return PT_DONE;
}
