/*
 * pt_status_dashboard.c: GET (and HEAD) / on the admin listener, the
 * live dashboard.
 *
 * The page is modules/status/dashboard.html, compiled in by scripts/embed
 * (module.mk's pt_module_embed) as pt_status_dashboard_html. It holds its
 * own script and style and loads nothing else: it polls /status and
 * /metrics with relative URLs, so the Content-Security-Policy sent with it
 * allows the page's own origin and its inline script and style only.
 */

#include "pt_http.h"
#include "pt_status.h"


extern const unsigned char  pt_status_dashboard_html[];
extern const size_t  pt_status_dashboard_html_len;


#define PT_DASHBOARD_CSP                                                     \
    "default-src 'none'; script-src 'unsafe-inline'; "                       \
    "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; " \
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


static int pt_status_dashboard_handler(pt_http_request_t *r);


int
pt_status_dashboard_init(pt_conf_t *cf)
{
    if (pt_http_admin_route_add(cf, "/", pt_status_dashboard_handler)
        == NULL)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


static int
pt_status_dashboard_header(pt_http_request_t *r, const char *name,
    const char *value)
{
    return pt_http_header_out_set(r, name, strlen(name), value,
                                  strlen(value));
}


static int
pt_status_dashboard_handler(pt_http_request_t *r)
{
    if (!(r->method & (PT_HTTP_GET | PT_HTTP_HEAD))) {
        if (pt_status_dashboard_header(r, "Allow", "GET, HEAD") != PT_OK) {
            return PT_ERROR;
        }

        return 405;
    }

    if (pt_status_dashboard_header(r, "Cache-Control", "no-cache")
           != PT_OK
        || pt_status_dashboard_header(r, "Content-Security-Policy",
                                      PT_DASHBOARD_CSP) != PT_OK
        || pt_status_dashboard_header(r, "X-Content-Type-Options",
                                      "nosniff") != PT_OK
        || pt_status_dashboard_header(r, "Referrer-Policy", "no-referrer")
           != PT_OK)
    {
        return PT_ERROR;
    }

    pt_http_finalize(r, pt_http_send_response(r, 200,
                                              "text/html; charset=utf-8",
                                              (const char *)
                                                  pt_status_dashboard_html,
                                              pt_status_dashboard_html_len));

    return PT_DONE;
}
