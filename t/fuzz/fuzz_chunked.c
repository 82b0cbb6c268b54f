/*
 * fuzz_chunked.c: the chunked transfer-coding decoder (pt_http_chunked.c).
 *
 * The first input byte seeds how the rest, a chunked body as a client or
 * an upstream sends it, is cut into reads. The body is decoded three
 * times: in one piece, one byte at a time and in the seeded pieces. The
 * decoder promises that the split changes nothing: the same payload, the
 * same outcome, at the same offset. It also promises that payload runs
 * lie inside the input and are never empty, that the payload total is
 * counted, and that DONE and ERROR are sticky.
 */

#include "fuzz.h"
#include "pt_http_chunked.h"


typedef struct {
    int        rc;         /* PT_DONE, PT_ERROR or PT_AGAIN at the end */
    size_t     offset;     /* where DONE or ERROR left *pos            */
    uint8_t   *payload;
    size_t     len;
} pt_fuzz_result_t;


/* The next piece size: mostly small, sometimes large. */
static size_t
pt_fuzz_piece(uint32_t *state)
{
    uint32_t  x;

    x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;

    return (x & 3) ? 1 + (x >> 8) % 7 : 1 + (x >> 8) % 4096;
}


/* mode 0: one piece; 1: byte by byte; 2: seeded pieces. */
static void
pt_fuzz_decode(const char *in, size_t size, int mode, uint32_t seed,
    pt_fuzz_result_t *res)
{
    int                 rc;
    size_t              off, piece;
    pt_str_t            data;
    const char         *pos, *end, *again;
    pt_http_chunked_t   ch;

    memset(&ch, 0, sizeof(pt_http_chunked_t));
    res->len = 0;
    res->offset = 0;
    rc = PT_AGAIN;

    for (off = 0; off < size; /* void */ ) {
        piece = mode == 0 ? size : mode == 1 ? 1 : pt_fuzz_piece(&seed);
        piece = pt_min(piece, size - off);

        pos = in + off;
        end = pos + piece;

        for ( ;; ) {
            data.data = NULL;
            data.len = 0;

            rc = pt_http_chunked_parse(&ch, &pos, end, &data);

            pt_fuzz_check(pos >= in + off && pos <= end);

            if (rc != PT_OK) {
                break;
            }

            pt_fuzz_check(data.len > 0 && data.data >= in + off
                          && data.data + data.len <= end
                          && data.data + data.len == pos);

            memcpy(res->payload + res->len, data.data, data.len);
            res->len += data.len;
        }

        if (rc == PT_AGAIN) {
            pt_fuzz_check(pos == end);
            off += piece;
            continue;
        }

        pt_fuzz_check(rc == PT_DONE || rc == PT_ERROR);

        res->offset = (size_t) (pos - in);

        /* Sticky: nothing more is consumed. */
        again = pos;
        pt_fuzz_check(pt_http_chunked_parse(&ch, &again, end, &data) == rc);
        pt_fuzz_check(again == pos);
        break;
    }

    res->rc = rc;

    pt_fuzz_check(ch.total == res->len);
    pt_fuzz_check(rc == PT_ERROR || ch.extra <= PT_HTTP_CHUNKED_MAX_EXTRA);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                i;
    char              *in;
    uint32_t           seed;
    pt_fuzz_result_t   res[3];

    if (size < 1) {
        return 0;
    }

    seed = 0x9e3779b9u ^ data[0];
    data++;
    size--;

    in = malloc(size ? size : 1);
    if (in == NULL) {
        return 0;
    }

    memcpy(in, data, size);

    for (i = 0; i < 3; i++) {
        res[i].payload = malloc(size ? size : 1);
        if (res[i].payload == NULL) {
            goto done;
        }
        pt_fuzz_decode(in, size, i, seed, &res[i]);
    }

    for (i = 1; i < 3; i++) {
        pt_fuzz_check(res[i].rc == res[0].rc);
        pt_fuzz_check(res[i].offset == res[0].offset);
        pt_fuzz_check(res[i].len == res[0].len);
        pt_fuzz_check(memcmp(res[i].payload, res[0].payload, res[0].len)
                      == 0);
    }

done:

    for (i--; i >= 0; i--) {
        free(res[i].payload);
    }

    free(in);

    return 0;
}
