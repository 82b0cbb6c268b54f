/*
 * pt_websocket.h: the WebSocket opening handshake as a proxy sees it
 * (RFC 6455 4): which requests ask for an upgrade, whether one is valid,
 * and whether an upstream's 101 completes it.
 *
 * Only the handshake is checked here; after the 101 the bytes go through
 * a tunnel (pt_tunnel.h) unread, so frames are the two peers' business.
 * Nothing here reads a socket: the unit tests run it on parsed heads.
 */

#ifndef PT_WEBSOCKET_H
#define PT_WEBSOCKET_H

#include "pt_core.h"
#include "pt_http.h"


#define PT_WS_VERSION         "13"
#define PT_WS_KEY_LEN         24      /* base64 of 16 bytes              */
#define PT_WS_ACCEPT_LEN      28      /* base64 of a SHA-1 digest        */


/* Make the SHA-1 the accept needs ready (at config load, in the master,
 * so the workers inherit it). PT_OK or PT_ERROR. */
int pt_ws_init(void);

/* 1 when fields[0..n) ask for a WebSocket upgrade: an Upgrade field
 * listing "websocket" and a Connection field listing "upgrade" (RFC 9110
 * 7.8: Upgrade counts only when Connection names it). */
int pt_ws_wants_upgrade(const pt_http_header_t *fields, size_t n);

/* Check an upgrade request (RFC 6455 4.2.1): GET, HTTP/1.1, no body,
 * exactly one Sec-WebSocket-Key that is the base64 of 16 bytes, exactly
 * one Sec-WebSocket-Version. PT_OK; 400 with *why set; 426 with *why set
 * when the version is not 13, after adding Sec-WebSocket-Version: 13 and
 * Upgrade: websocket to r->headers_out (RFC 6455 4.4, RFC 9110 15.5.22).
 * PT_ERROR when memory is exhausted. */
int pt_ws_check_request(pt_http_request_t *r, const char **why);

/* A fresh Sec-WebSocket-Key, from pool: the upstream's handshake for an
 * extended CONNECT, which carries none. PT_OK or PT_ERROR. */
int pt_ws_make_key(pt_pool_t *pool, pt_str_t *key);

/* 1 when key is the base64 (with its "==" padding, canonical) of 16
 * bytes. */
int pt_ws_key_valid(const pt_str_t *key);

/* Sec-WebSocket-Accept for a key: base64(SHA-1(key + the RFC's GUID)),
 * PT_WS_ACCEPT_LEN characters written to out. PT_OK or PT_ERROR. */
int pt_ws_accept(const pt_str_t *key, char *out);

/* Does an upstream's 101 complete the handshake r started? NULL when it
 * does (Upgrade lists "websocket", and Sec-WebSocket-Accept answers the
 * key sent upstream: `sent`, or when NULL the client's), else why not. */
const char *pt_ws_check_response(pt_http_request_t *r, const pt_str_t *sent,
    const pt_http_header_t *fields, size_t n);


#endif /* PT_WEBSOCKET_H */
