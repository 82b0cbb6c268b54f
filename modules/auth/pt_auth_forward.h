/*
 * pt_auth_forward.h: forward auth, a route's `auth: { forward: {...} }`.
 *
 * Before a request goes on, the gateway asks an auth service (one of the
 * `upstreams:`) with `GET path` and the request's credentials; a 2xx lets
 * it through (with fields of the answer copied onto it), a 401 or 403 is
 * the client's answer as the service gave it, and anything else (the
 * service down, slow, answering too much or something else) is a 503.
 * Traefik's forwardAuth and nginx's auth_request work this way.
 *
 *   forward:
 *     upstream: authsvc        # required, an upstreams: name
 *     path: /check             # default "/"
 *     headers: [Authorization, Cookie]   # passed on (the default)
 *     copy_headers: [X-User]   # from a 2xx answer onto the request
 *     timeout: 2s              # the whole call (the default)
 *
 * The auth module owns the key and the ACCESS phase handler; this file is
 * the rest.
 */

#ifndef PT_AUTH_FORWARD_H
#define PT_AUTH_FORWARD_H

#include "pt_http.h"


typedef struct pt_auth_forward_s  pt_auth_forward_t;

/* `forward:` of a route's auth (a map); NULL after pt_conf_error().
 * Unknown keys, a missing upstream, a path that is not origin-form and
 * field names that are not tokens (or that the gateway writes itself) are
 * errors at their position. */
pt_auth_forward_t *pt_auth_forward_parse(pt_conf_t *cf,
    pt_yaml_node_t *node);

/* The upstream named, looked up once every upstream is known: call it
 * from the module's validate at route scope (routes may come before
 * `upstreams:` in the file). PT_OK, or PT_ERROR after pt_conf_error(). */
int pt_auth_forward_resolve(pt_conf_t *cf, pt_auth_forward_t *fw);

/* Run the check for r, from an ACCESS phase handler. state points to a
 * void * in the module's request context, NULL at first. Returns
 *   PT_AGAIN  while the service is asked; when it answered, the request
 *             is resumed with pt_http_run_phases(r), which calls the
 *             handler, which calls this again;
 *   PT_OK     the service allowed r: each copy_headers field replaced
 *             what the client sent of it in r->headers_in (removed when
 *             the service sent none);
 *   PT_DONE   the service's 401 or 403 went to the client as it was
 *             (status, body, WWW-Authenticate, Content-Type);
 *   503       the service failed, timed out, answered more than 64 KiB
 *             or another status (logged at error with the request id);
 *   PT_ERROR  out of memory. */
int pt_auth_forward_check(pt_http_request_t *r, pt_auth_forward_t *fw,
    void **state);


#endif /* PT_AUTH_FORWARD_H */
