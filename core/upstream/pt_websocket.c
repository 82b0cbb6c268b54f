/*
 * pt_websocket.c: the WebSocket opening handshake checks (see
 * pt_websocket.h).
 */

#include <openssl/evp.h>

#include "pt_websocket.h"
#include "pt_random.h"
#include "pt_string.h"


#define PT_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


/* Fetched once: an implicit fetch on every digest costs a lookup, and
 * the first one sets up OpenSSL's providers (2.3 MiB, measured), which is
 * better done once in the master than in every worker. */
static EVP_MD  *pt_ws_sha1;


int
pt_ws_init(void)
{
    if (pt_ws_sha1 == NULL) {
        pt_ws_sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
    }

    return pt_ws_sha1 ? PT_OK : PT_ERROR;
}


/* 1 when any field named `name` lists token. */
static int
pt_ws_fields_list(const pt_http_header_t *fields, size_t n,
    const char *name, size_t nlen, const char *token, size_t tlen)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (pt_strcaseeq(&fields[i].name, name, nlen)
            && pt_http_list_has(&fields[i].value, token, tlen))
        {
            return 1;
        }
    }

    return 0;
}


/* The only field named `name`: NULL when there is none, and *count says
 * how many there were. */
static const pt_http_header_t *
pt_ws_field(const pt_http_header_t *fields, size_t n, const char *name,
    size_t nlen, size_t *count)
{
    size_t                   i;
    const pt_http_header_t  *h;

    h = NULL;
    *count = 0;

    for (i = 0; i < n; i++) {
        if (pt_strcaseeq(&fields[i].name, name, nlen)) {
            h = &fields[i];
            (*count)++;
        }
    }

    return h;
}


int
pt_ws_wants_upgrade(const pt_http_header_t *fields, size_t n)
{
    return pt_ws_fields_list(fields, n, "upgrade", 7, "websocket", 9)
           && pt_ws_fields_list(fields, n, "connection", 10, "upgrade", 7);
}


static int
pt_ws_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '+') {
        return 62;
    }

    if (c == '/') {
        return 63;
    }

    return -1;
}


int
pt_ws_key_valid(const pt_str_t *key)
{
    int     v;
    size_t  i;

    v = 0;

    /* 16 bytes: 21 characters of 6 bits, one holding the last 2 bits
     * (its other 4 zero, or it is not how 16 bytes encode), "==". */
    if (key->len != PT_WS_KEY_LEN
        || key->data[22] != '=' || key->data[23] != '=')
    {
        return 0;
    }

    for (i = 0; i < 22; i++) {
        v = pt_ws_b64_value((unsigned char) key->data[i]);

        if (v < 0) {
            return 0;
        }
    }

    return (v & 0x0f) == 0;
}


int
pt_ws_make_key(pt_pool_t *pool, pt_str_t *key)
{
    char      *text;
    uint64_t   nonce[2];

    text = pt_pnalloc(pool, PT_WS_KEY_LEN + 1);
    if (text == NULL) {
        return PT_ERROR;
    }

    /* A nonce, not a secret (RFC 6455 4.1): the process's PRNG will do. */
    nonce[0] = pt_random_u64();
    nonce[1] = pt_random_u64();

    if (EVP_EncodeBlock((unsigned char *) text, (unsigned char *) nonce, 16)
        != PT_WS_KEY_LEN)
    {
        return PT_ERROR;
    }

    key->data = text;
    key->len = PT_WS_KEY_LEN;

    return PT_OK;
}


int
pt_ws_accept(const pt_str_t *key, char *out)
{
    char           text[PT_WS_ACCEPT_LEN + 1];
    unsigned int   len;
    unsigned char  in[PT_WS_KEY_LEN + sizeof(PT_WS_GUID) - 1];
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (key->len != PT_WS_KEY_LEN || pt_ws_init() != PT_OK) {
        return PT_ERROR;
    }

    memcpy(in, key->data, PT_WS_KEY_LEN);
    memcpy(in + PT_WS_KEY_LEN, PT_WS_GUID, sizeof(PT_WS_GUID) - 1);

    if (EVP_Digest(in, sizeof(in), md, &len, pt_ws_sha1, NULL) != 1
        || len != 20)
    {
        return PT_ERROR;
    }

    /* EVP_EncodeBlock writes a NUL after the 28 characters. */
    if (EVP_EncodeBlock((unsigned char *) text, md, 20) != PT_WS_ACCEPT_LEN)
    {
        return PT_ERROR;
    }

    memcpy(out, text, PT_WS_ACCEPT_LEN);

    return PT_OK;
}


int
pt_ws_check_request(pt_http_request_t *r, const char **why)
{
    size_t                   n, count;
    pt_http_header_t        *fields;
    const pt_http_header_t  *h;

    fields = r->headers_in.headers.elts;
    n = r->headers_in.headers.nelts;

    if (r->method != PT_HTTP_GET) {
        *why = "the method is not GET";
        return 400;
    }

    if (r->version != 11 && !r->ext_connect) {
        *why = "the version is not HTTP/1.1";
        return 400;
    }

    /* The bytes after the head belong to the tunnel: a body would leave
     * the two sides to disagree on where it ends. */
    if (r->headers_in.chunked || r->headers_in.content_length_n > 0) {
        *why = "it has a body";
        return 400;
    }

    h = pt_ws_field(fields, n, "sec-websocket-key", 17, &count);

    /* Over HTTP/2 there is no key (RFC 8441 5); the proxy makes one. */
    if (r->ext_connect) {
        if (count) {
            *why = "Sec-WebSocket-Key in an extended CONNECT";
            return 400;
        }

    } else if (count != 1 || !pt_ws_key_valid(&h->value)) {
        *why = count == 0 ? "no Sec-WebSocket-Key"
               : (count > 1 ? "more than one Sec-WebSocket-Key"
                            : "Sec-WebSocket-Key is not base64 of 16 bytes");
        return 400;
    }

    h = pt_ws_field(fields, n, "sec-websocket-version", 21, &count);

    if (count != 1) {
        *why = count ? "more than one Sec-WebSocket-Version"
                     : "no Sec-WebSocket-Version";
        return 400;
    }

    if (!pt_str_caseeq(&h->value, PT_WS_VERSION)) {
        *why = "Sec-WebSocket-Version is not 13";

        if (pt_http_header_out_set(r, "Sec-WebSocket-Version", 21,
                                   PT_WS_VERSION, 2) != PT_OK
            || pt_http_header_out_set(r, "Upgrade", 7, "websocket", 9)
               != PT_OK)
        {
            return PT_ERROR;
        }

        return 426;
    }

    return PT_OK;
}


const char *
pt_ws_check_response(pt_http_request_t *r, const pt_str_t *sent,
    const pt_http_header_t *fields, size_t n)
{
    char                     want[PT_WS_ACCEPT_LEN];
    size_t                   count;
    const pt_str_t          *key;
    const pt_http_header_t  *field, *accept;

    if (!pt_ws_fields_list(fields, n, "upgrade", 7, "websocket", 9)) {
        return "upstream switched to a protocol other than websocket";
    }

    key = sent;

    if (key == NULL) {
        field = pt_ws_field(r->headers_in.headers.elts,
                            r->headers_in.headers.nelts,
                            "sec-websocket-key", 17, &count);
        key = field ? &field->value : NULL;
    }

    accept = pt_ws_field(fields, n, "sec-websocket-accept", 20, &count);

    if (key == NULL || pt_ws_accept(key, want) != PT_OK) {
        return "the request has no valid Sec-WebSocket-Key";
    }

    if (count != 1 || accept->value.len != PT_WS_ACCEPT_LEN
        || memcmp(accept->value.data, want, PT_WS_ACCEPT_LEN) != 0)
    {
        return "upstream sent a wrong Sec-WebSocket-Accept";
    }

    return NULL;
}
