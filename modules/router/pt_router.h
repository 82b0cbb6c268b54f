/*
 * pt_router.h: the router module's shared types (module-internal).
 *
 * pt_router_module.c parses a route's match, rewrite, header edits and
 * actions; pt_router_table.c compiles all routes into the lookup table;
 * pt_router_rewrite.c applies rewrites and header edits and runs the
 * respond and redirect actions.
 */

#ifndef PT_ROUTER_H
#define PT_ROUTER_H

#include "pt_http.h"
#include "pt_regex.h"


enum {
    PT_ROUTER_PREFIX = 0,
    PT_ROUTER_EXACT,
    PT_ROUTER_REGEX
};

enum {
    PT_ROUTER_ANY_HOST = 0,
    PT_ROUTER_HOST,              /* "api.example.com"                  */
    PT_ROUTER_WILDCARD           /* "*.example.com", kept ".example.com" */
};

/* A header or query condition: exact value, or a regex when it began
 * with "~". */
typedef struct {
    pt_str_t          name;
    pt_str_t          value;
    pt_regex_t       *re;
} pt_router_cond_t;

/* One header edit: set/add carry a template, remove only a name. */
typedef struct {
    pt_str_t          name;
    pt_template_t    *value;
} pt_router_edit_t;

typedef struct {
    pt_array_t        set;       /* pt_router_edit_t */
    pt_array_t        add;
    pt_array_t        remove;
} pt_router_edits_t;

typedef struct {
    pt_route_t         *route;
    pt_yaml_node_t     *match;

    /* Match. */
    unsigned            host_kind;
    pt_str_t            host;          /* lower case                      */
    unsigned            path_kind;
    pt_str_t            path;          /* without "=" or "~"              */
    pt_regex_t         *path_re;
    unsigned            methods;       /* PT_HTTP_* bits, 0: any          */
    pt_array_t          other_methods; /* pt_str_t, methods without a bit */
    pt_array_t          headers;       /* pt_router_cond_t                */
    pt_array_t          query;         /* pt_router_cond_t                */
    unsigned            constraints;   /* host + methods + each condition */

    /* Rewrite and header edits. */
    pt_str_t            strip_prefix;
    pt_template_t      *rewrite_path;
    pt_yaml_node_t     *rewrite_node;
    pt_router_edits_t   request_headers;
    pt_router_edits_t   response_headers;
    unsigned            edits:1;       /* request or response edits set   */

    /* Actions. */
    unsigned            respond_status;
    pt_template_t      *respond_body;
    pt_array_t          respond_headers;   /* pt_router_edit_t            */
    unsigned            redirect_status;
    pt_template_t      *redirect_to;
} pt_router_conf_t;


typedef struct pt_router_table_s  pt_router_table_t;

/* What a 405 answer allows: the methods of every route that matched but
 * for the method (extension methods by name, from the first few). */
typedef struct {
    unsigned            methods;
    pt_router_conf_t   *confs[8];
    size_t              n;
} pt_router_allow_t;

extern pt_module_t  pt_router_module;

/* Build the lookup table from every route's match (postconfig). */
pt_router_table_t *pt_router_table_build(pt_conf_t *cf);

/* The route for r: PT_OK with *found, or 404, or 405 with *allow holding
 * the methods that would have matched. Regex captures land in r. */
int pt_router_lookup(pt_router_table_t *t, pt_http_request_t *r,
    pt_router_conf_t **found, pt_router_allow_t *allow);

/* The lookup table of the running cycle (for the micro-benchmark). */
pt_router_table_t *pt_router_table(pt_cycle_t *cycle);

/* Rewrite phase, response-header filter and the two actions
 * (pt_router_rewrite.c). */
int pt_router_rewrite_handler(pt_http_request_t *r);
int pt_router_headers_handler(pt_http_request_t *r);
int pt_router_header_filter(pt_http_request_t *r);
int pt_router_respond(pt_http_request_t *r);
int pt_router_redirect(pt_http_request_t *r);

/* The Allow field value, in the pool. */
int pt_router_allow_text(pt_http_request_t *r, pt_router_allow_t *allow,
    pt_str_t *text);


#endif /* PT_ROUTER_H */
