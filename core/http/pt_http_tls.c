/*
 * pt_http_tls.c: TLS termination for the http core: the `tls` key of a
 * listener, the CONNECT handler that runs the handshake, the answer to
 * plain HTTP sent to a TLS port, and the shared zones that let sessions
 * resume in any worker.
 *
 * The TLS machinery itself (contexts, SNI, tickets, the session cache)
 * is the event layer's (pt_ssl.h); this file turns config into it and
 * decides what a failure means for a client: a failed or timed-out
 * handshake is counted in the "tls" zone, logged at info (a scanner or
 * an old client is not the operator's problem), and closes the
 * connection.
 */

#include "pt_http.h"
#include "pt_string.h"


/* Registration priorities: per-address limits and the PROXY protocol
 * would come before the handshake; the plain-HTTP answer comes before
 * anything else looks at a request. */
#define PT_HTTP_TLS_CONNECT_PRIO    500
#define PT_HTTP_TLS_PLAIN_PRIO      10

/* The session cache: about 16,000 TLS 1.2 sessions. */
#define PT_HTTP_TLS_SESSIONS_SIZE   (4 * 1024 * 1024)


typedef struct {
    pt_ssl_shared_t   *shared;
    pt_shm_zone_t     *zone;       /* "tls": ticket keys, counters        */
    pt_shm_zone_t     *sessions;   /* "tls_sessions": the session cache   */
} pt_http_tls_t;


static pt_http_tls_t *pt_http_tls_main(pt_conf_t *cf);
static int pt_http_tls_certs(pt_conf_t *cf, pt_yaml_node_t *node,
    pt_ssl_server_conf_t *conf);
static int pt_http_tls_protocols(pt_conf_t *cf, pt_yaml_node_t *node,
    unsigned *protocols);
static int pt_http_tls_path(pt_conf_t *cf, pt_yaml_node_t *node,
    const char *what, pt_str_t *path);
static int pt_http_tls_zone_init(pt_shm_zone_t *zone, void *old_data);
static int pt_http_tls_sessions_init(pt_shm_zone_t *zone, void *old_data);
static int pt_http_tls_handshake(pt_connection_t *c);
static int pt_http_tls_plain(pt_http_request_t *r);


static const pt_conf_enum_t  pt_http_tls_verify[] = {
    { "required", PT_SSL_VERIFY_REQUIRED },
    { "optional", PT_SSL_VERIFY_OPTIONAL },
    { NULL, 0 }
};


/* listen[].tls: { certificates: [{cert, key}...], protocols: [...],
 * client_ca: FILE, client_verify: required|optional } */
int
pt_http_tls_set(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    int                    rc;
    size_t                 i;
    const char            *key;
    pt_http_tls_t         *tls;
    pt_yaml_node_t        *value, *verify_node;
    pt_http_listen_t      *hl;
    pt_ssl_server_conf_t   sc;
    const pt_conf_enum_t  *e;

    hl = cf->scope;
    rc = PT_OK;
    verify_node = NULL;

    memset(&sc, 0, sizeof(pt_ssl_server_conf_t));
    sc.node = node;
    sc.protocols = PT_SSL_TLSv1_2 | PT_SSL_TLSv1_3;

    for (i = 0; i < node->n; i++) {
        key = node->pairs[i].key->scalar.data;
        value = node->pairs[i].value;

        if (strcmp(key, "certificates") == 0) {
            if (pt_http_tls_certs(cf, value, &sc) != PT_OK) {
                rc = PT_ERROR;
            }

        } else if (strcmp(key, "protocols") == 0) {
            if (pt_http_tls_protocols(cf, value, &sc.protocols) != PT_OK) {
                rc = PT_ERROR;
            }

        } else if (strcmp(key, "client_ca") == 0) {
            if (pt_http_tls_path(cf, value, "tls: client_ca", &sc.client_ca)
                != PT_OK)
            {
                rc = PT_ERROR;
            }
            sc.client_ca_node = value;

        } else if (strcmp(key, "client_verify") == 0) {
            verify_node = value;

            for (e = pt_http_tls_verify; e->name; e++) {
                if (value->type == PT_YAML_SCALAR
                    && strcmp(value->scalar.data, e->name) == 0)
                {
                    break;
                }
            }

            if (e->name == NULL) {
                rc = pt_conf_error(cf, value,
                                   "tls: client_verify must be required or optional");
                continue;
            }

            sc.client_verify = (unsigned) e->value;

        } else {
            rc = pt_conf_error(cf, node->pairs[i].key,
                               "unknown key \"%s\" in tls (certificates, protocols, client_ca, client_verify)",
                               key);
        }
    }

    if (sc.ncerts == 0 && rc == PT_OK) {
        rc = pt_conf_error(cf, node, "tls: certificates is required");
    }

    if (verify_node && sc.client_ca.len == 0) {
        rc = pt_conf_error(cf, verify_node,
                           "tls: client_verify needs client_ca, the CAs client certificates are checked against");
    }

    /* client_ca alone asks for a certificate and requires it. */
    if (sc.client_ca.len && sc.client_verify == PT_SSL_VERIFY_OFF) {
        sc.client_verify = PT_SSL_VERIFY_REQUIRED;
    }

    if (rc != PT_OK) {
        return PT_ERROR;
    }

    tls = pt_http_tls_main(cf);
    if (tls == NULL) {
        return pt_conf_error(cf, node, "out of memory");
    }

    hl->ssl = pt_ssl_server_create(cf, &sc, tls->shared);

    return hl->ssl ? PT_OK : PT_ERROR;
}


static pt_http_tls_t *
pt_http_tls_main(pt_conf_t *cf)
{
    pt_http_tls_t        *tls;
    pt_http_main_conf_t  *hmcf;

    hmcf = pt_http_main_conf(cf->cycle);

    if (hmcf->tls) {
        return hmcf->tls;
    }

    tls = pt_pcalloc(cf->pool, sizeof(pt_http_tls_t));
    if (tls == NULL) {
        return NULL;
    }

    tls->shared = pt_ssl_shared_create(cf);
    if (tls->shared == NULL) {
        return NULL;
    }

    hmcf->tls = tls;

    return tls;
}


static int
pt_http_tls_certs(pt_conf_t *cf, pt_yaml_node_t *node,
    pt_ssl_server_conf_t *conf)
{
    int                  rc;
    size_t               i, k;
    const char          *key;
    pt_yaml_node_t      *item, *value;
    pt_ssl_cert_conf_t  *cc;

    if (pt_conf_expect(cf, node, PT_YAML_SEQ, "tls: certificates") != PT_OK)
    {
        return PT_ERROR;
    }

    if (node->n == 0) {
        return pt_conf_error(cf, node,
                             "tls: certificates must list at least one");
    }

    conf->certs = pt_pcalloc(cf->pool, node->n * sizeof(pt_ssl_cert_conf_t));
    if (conf->certs == NULL) {
        return PT_ERROR;
    }

    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        item = node->items[i];

        if (pt_conf_expect(cf, item, PT_YAML_MAP, "tls: certificates")
            != PT_OK)
        {
            rc = PT_ERROR;
            continue;
        }

        cc = &conf->certs[conf->ncerts];

        for (k = 0; k < item->n; k++) {
            key = item->pairs[k].key->scalar.data;
            value = item->pairs[k].value;

            if (strcmp(key, "cert") == 0) {
                cc->cert_node = value;
                if (pt_http_tls_path(cf, value, "cert", &cc->cert) != PT_OK) {
                    rc = PT_ERROR;
                }

            } else if (strcmp(key, "key") == 0) {
                cc->key_node = value;
                if (pt_http_tls_path(cf, value, "key", &cc->key) != PT_OK) {
                    rc = PT_ERROR;
                }

            } else {
                rc = pt_conf_error(cf, item->pairs[k].key,
                                   "unknown key \"%s\" in a certificate (cert, key)",
                                   key);
            }
        }

        if (cc->cert_node == NULL || cc->key_node == NULL) {
            rc = pt_conf_error(cf, item,
                               "tls: a certificate needs both cert and key");
            continue;
        }

        conf->ncerts++;
    }

    return rc;
}


static int
pt_http_tls_protocols(pt_conf_t *cf, pt_yaml_node_t *node,
    unsigned *protocols)
{
    int              rc;
    size_t           i;
    pt_yaml_node_t  *item;

    if (pt_conf_expect(cf, node, PT_YAML_SEQ, "tls: protocols") != PT_OK) {
        return PT_ERROR;
    }

    if (node->n == 0) {
        return pt_conf_error(cf, node,
                             "tls: protocols must list TLSv1.2, TLSv1.3 or both");
    }

    *protocols = 0;
    rc = PT_OK;

    for (i = 0; i < node->n; i++) {
        item = node->items[i];

        if (pt_conf_expect(cf, item, PT_YAML_SCALAR, "tls: protocols")
            != PT_OK)
        {
            rc = PT_ERROR;

        } else if (strcmp(item->scalar.data, "TLSv1.2") == 0) {
            *protocols |= PT_SSL_TLSv1_2;

        } else if (strcmp(item->scalar.data, "TLSv1.3") == 0) {
            *protocols |= PT_SSL_TLSv1_3;

        } else if (strcmp(item->scalar.data, "TLSv1") == 0
                   || strcmp(item->scalar.data, "TLSv1.0") == 0
                   || strcmp(item->scalar.data, "TLSv1.1") == 0
                   || strcmp(item->scalar.data, "SSLv3") == 0)
        {
            rc = pt_conf_error(cf, item,
                               "tls: protocols: \"%s\" is not supported (only TLSv1.2 and TLSv1.3 are)",
                               item->scalar.data);

        } else {
            rc = pt_conf_error(cf, item,
                               "tls: protocols: unknown protocol \"%s\" (TLSv1.2, TLSv1.3)",
                               item->scalar.data);
        }
    }

    return rc;
}


static int
pt_http_tls_path(pt_conf_t *cf, pt_yaml_node_t *node, const char *what,
    pt_str_t *path)
{
    if (pt_conf_expect(cf, node, PT_YAML_SCALAR, what) != PT_OK) {
        return PT_ERROR;
    }

    if (node->scalar.len == 0
        || memchr(node->scalar.data, '\0', node->scalar.len) != NULL)
    {
        return pt_conf_error(cf, node, "%s: a file name is required", what);
    }

    if (pt_conf_full_path(cf, &node->scalar, path) != PT_OK) {
        return pt_conf_error(cf, node, "out of memory");
    }

    return PT_OK;
}


/* After every listener is parsed: what each offers by ALPN, its session
 * context, and (when any has TLS) the handlers and the zones. */
int
pt_http_tls_postconfig(pt_conf_t *cf)
{
    size_t                i, n;
    pt_str_t              protos[2];
    pt_http_tls_t        *tls;
    pt_http_listen_t    **hl;
    pt_http_main_conf_t  *hmcf;

    hmcf = pt_http_main_conf(cf->cycle);
    tls = hmcf->tls;

    if (tls == NULL) {
        return PT_OK;
    }

    hl = hmcf->listens.elts;

    for (i = 0; i < hmcf->listens.nelts; i++) {
        if (hl[i]->ssl == NULL) {
            continue;
        }

        /* Most preferred first: "h2" when the listener has http2: true. */
        n = 0;

        if (hl[i]->http2) {
            pt_str_set(&protos[n], "h2");
            n++;
        }

        pt_str_set(&protos[n], "http/1.1");
        n++;

        if (pt_ssl_server_set_alpn(cf, hl[i]->ssl, protos, n) != PT_OK) {
            return PT_ERROR;
        }

        protos[0].data = hl[i]->addr.text;
        protos[0].len = strlen(hl[i]->addr.text);

        if (pt_ssl_server_set_id(cf, hl[i]->ssl, &protos[0]) != PT_OK) {
            return PT_ERROR;
        }
    }

    tls->zone = pt_shm_zone_add(cf, "tls", 0, 0, &pt_http_module,
                                pt_http_tls_zone_init);
    tls->sessions = pt_shm_zone_add(cf, "tls_sessions",
                                    PT_HTTP_TLS_SESSIONS_SIZE, 0,
                                    &pt_http_module,
                                    pt_http_tls_sessions_init);

    if (tls->zone == NULL || tls->sessions == NULL) {
        return PT_ERROR;
    }

    if (pt_http_connect_add(cf, pt_http_tls_handshake,
                            PT_HTTP_TLS_CONNECT_PRIO, &pt_http_module)
        != PT_OK
        || pt_http_phase_add(cf, PT_HTTP_POST_READ_PHASE, pt_http_tls_plain,
                             PT_HTTP_TLS_PLAIN_PRIO, &pt_http_module)
           != PT_OK)
    {
        return PT_ERROR;
    }

    return PT_OK;
}


static int
pt_http_tls_zone_init(pt_shm_zone_t *zone, void *old_data)
{
    return pt_ssl_tickets_zone_init(zone->slab, old_data);
}


static int
pt_http_tls_sessions_init(pt_shm_zone_t *zone, void *old_data)
{
    return pt_ssl_sessions_zone_init(zone->slab, old_data);
}


/* The zones are mapped: the listeners' TLS settings may use them. */
int
pt_http_tls_init_master(pt_cycle_t *cycle)
{
    pt_http_tls_t  *tls;

    tls = pt_http_main_conf(cycle)->tls;

    if (tls) {
        pt_ssl_shared_attach(tls->shared, tls->zone->slab,
                             tls->sessions->slab);
    }

    return PT_OK;
}


/* The master's periodic work: ticket keys rotate when due. */
void
pt_http_tls_tick_master(pt_cycle_t *cycle)
{
    pt_http_tls_t  *tls;

    tls = pt_http_main_conf(cycle)->tls;

    if (tls) {
        pt_ssl_shared_tick(tls->shared);
    }
}


int
pt_http_tls_stats(pt_cycle_t *cycle, pt_ssl_stats_t *st)
{
    pt_http_tls_t  *tls;

    tls = pt_http_main_conf(cycle)->tls;

    if (tls == NULL) {
        return PT_DECLINED;
    }

    pt_ssl_shared_stats(tls->shared, st);

    return PT_OK;
}


/* The CONNECT handler: a TLS handshake on a TLS listener. Plain HTTP on
 * it goes on in cleartext, to be answered by pt_http_tls_plain() once
 * its head is in. */
static int
pt_http_tls_handshake(pt_connection_t *c)
{
    int                    rc;
    const char            *reason;
    pt_str_t               proto, cipher;
    pt_ssl_server_t       *srv;
    pt_http_connection_t  *hc;

    hc = c->data;
    srv = hc->listen->ssl;

    if (srv == NULL) {
        return PT_OK;
    }

    if (c->timedout) {
        pt_ssl_server_count(srv, PT_SSL_STAT_TIMED_OUT);
        pt_log_error(PT_LOG_INFO, NULL, 0,
                     "TLS handshake timed out, client: %.*s",
                     (int) c->addr_text.len, c->addr_text.data);
        return PT_ERROR;
    }

    if (c->ssl == NULL) {
        rc = pt_ssl_server_accept(c, srv);

        if (rc == PT_DECLINED) {
            pt_ssl_server_count(srv, PT_SSL_STAT_PLAIN_HTTP);
            return PT_OK;
        }

        if (rc != PT_OK) {
            /* PT_AGAIN; or closed before its first byte, which is no
             * handshake at all (a port probe, a balancer's check). */
            return rc;
        }
    }

    rc = pt_ssl_handshake(c);

    if (rc == PT_AGAIN) {
        return PT_AGAIN;
    }

    if (rc != PT_OK) {
        pt_ssl_server_count(srv, PT_SSL_STAT_FAILED);
        pt_log_error(PT_LOG_INFO, NULL, 0,
                     "TLS handshake failed: %s, client: %.*s",
                     pt_ssl_error(c),
                     (int) c->addr_text.len, c->addr_text.data);
        return PT_ERROR;
    }

    pt_ssl_server_count(srv, PT_SSL_STAT_HANDSHAKES);

    if (pt_ssl_session_reused(c)) {
        pt_ssl_server_count(srv, PT_SSL_STAT_RESUMED);
    }

    if (pt_ssl_client_verified(c, &reason) == PT_ERROR
        && pt_log_enabled(NULL, PT_LOG_INFO))
    {
        pt_ssl_protocol(c, &proto);
        pt_ssl_cipher(c, &cipher);
        pt_log_error(PT_LOG_INFO, NULL, 0,
                     "client certificate not verified (client_verify: optional): %s, client: %.*s, %.*s %.*s",
                     reason, (int) c->addr_text.len, c->addr_text.data,
                     (int) proto.len, proto.data,
                     (int) cipher.len, cipher.data);
    }

    return PT_OK;
}


/* nginx's answer to plain HTTP on an HTTPS port: 400 with the reason,
 * then close; in cleartext, since that is what the client speaks. */
static int
pt_http_tls_plain(pt_http_request_t *r)
{
    char        *body;
    size_t       len;

    if (r->hc->listen->ssl == NULL || r->connection->ssl != NULL) {
        return PT_DECLINED;
    }

    if (pt_http_request_id(r) != PT_OK) {
        return PT_ERROR;
    }

    body = pt_psprintf(r->pool, &len,
                       "{\"error\":\"%s\",\"status\":400,"
                       "\"request_id\":\"%.*s\"}\n",
                       "plain HTTP request sent to HTTPS port",
                       (int) r->request_id.len, r->request_id.data);
    if (body == NULL) {
        return PT_ERROR;
    }

    r->keepalive = 0;

    pt_http_log_request(r, PT_LOG_INFO,
                        "plain HTTP request sent to HTTPS port");

    pt_http_finalize(r, pt_http_send_response(r, 400, "application/json",
                                               body, len));

    return PT_DONE;
}
