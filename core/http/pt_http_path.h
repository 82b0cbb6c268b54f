/*
 * pt_http_path.h: request path normalization.
 *
 * Routing, access rules and the path sent upstream must all see the same
 * path, or "/admin" can be reached as "/public/../admin" or "/%61dmin".
 * This produces that one canonical form.
 */

#ifndef PT_HTTP_PATH_H
#define PT_HTTP_PATH_H

#include "pt_core.h"


/* Normalize an origin-form path (no query) for routing and forwarding,
 * writing into out (capacity >= len; the result is never longer; out may
 * be in itself):
 * - percent-encoded unreserved characters (ALPHA DIGIT - . _ ~) are
 *   decoded; other %XX keep their encoding, with hex digits upper-cased;
 * - "." and ".." segments are resolved (RFC 3986 5.2.4), also when written
 *   as %2E; ".." above the root is an error;
 * - %00, a raw NUL, '%' not followed by two hex digits -> error;
 * - the path must start with '/'.
 * Consecutive slashes are kept (they may be meaningful to a backend).
 * Returns PT_OK with *out_len set, or PT_ERROR (the caller answers 400). */
int pt_http_normalize_path(const char *in, size_t len, char *out,
    size_t *out_len);


/* Percent-encode what may not appear in a path (space, controls, bytes
 * >= 0x80, and " # < > ? [ \ ] ^ ` { | }; a '%' not starting an escape),
 * keeping existing %XX escapes, for paths built from templates. The
 * result is written to out (capacity >= 3 * len). Returns its length. */
size_t pt_http_escape_path(const char *in, size_t len, char *out);


#endif /* PT_HTTP_PATH_H */
