/*
 * pt_ratelimit_redis.c: rate limits in cluster scope, counted in Redis.
 *
 * Each worker keeps one hiredis async connection, driven by the worker's
 * own event loop (a connection slot for the socket; hiredis's addRead,
 * addWrite... hooks only say what it wants), so nothing ever blocks. A
 * limit is one EVALSHA of the script below: the same GCRA and sliding
 * window as pt_ratelimit_shm.c, timed by Redis's TIME so every node
 * agrees, atomic because a script runs alone. The script is loaded at
 * connect (and sent whole with EVAL after a NOSCRIPT).
 *
 * A request waits with PT_AGAIN; the reply (or the redis_timeout timer)
 * posts its resume. A request that goes away first detaches itself from
 * the pending reply, which then only frees its own memory. A connection
 * that fails or times out is dropped and made again after 100 ms,
 * doubling up to 5 s; meanwhile cluster limits report PT_DECLINED and the
 * caller applies redis_failure.
 */

#include <sys/ioctl.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <openssl/sha.h>

#include "pt_ratelimit.h"
#include "pt_string.h"
#include "pt_time.h"


#define PT_RL_REDIS_TIMEOUT     100     /* ms, by default                */
#define PT_RL_REDIS_BACKOFF     100     /* ms, first reconnect           */
#define PT_RL_REDIS_BACKOFF_MAX 5000

#define PT_RL_WAITING           1
#define PT_RL_ANSWERED          2
#define PT_RL_FAILED            3


/* KEYS[1] the bucket; ARGV: algorithm (0 GCRA, 1 sliding window), count,
 * period (us), burst. Returns allowed, remaining, reset, retry_after and
 * delay (the request's turn at the rate, for mode: delay), the last three
 * in microseconds. */
static const char  pt_rl_redis_script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local count = tonumber(ARGV[2])\n"
    "local period = tonumber(ARGV[3])\n"
    "if ARGV[1] == '0' then\n"
    "  local t1 = math.max(math.floor(period / count), 1)\n"
    "  local tau = tonumber(ARGV[4]) * t1\n"
    "  local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now)\n"
    "  if tat - now > tau then\n"
    "    return {0, 0, tat - now, tat - now - tau, 0}\n"
    "  end\n"
    "  local new = tat + t1\n"
    "  redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX',\n"
    "             math.ceil((new - now) / 1000) + 1)\n"
    "  local rem = 0\n"
    "  if new - now <= tau then\n"
    "    rem = math.floor((tau - (new - now)) / t1) + 1\n"
    "  end\n"
    "  return {1, rem, new - now, 0, tat - now}\n"
    "end\n"
    "local w = math.floor(now / period)\n"
    "local e = (now % period) / period\n"
    "local s = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')\n"
    "local cur, prev = 0, 0\n"
    "if tonumber(s[1]) == w then\n"
    "  cur = tonumber(s[2]) or 0\n"
    "  prev = tonumber(s[3]) or 0\n"
    "elseif tonumber(s[1]) == w - 1 then\n"
    "  prev = tonumber(s[2]) or 0\n"
    "end\n"
    "local est = prev * (1 - e) + cur\n"
    "local left = (w + 1) * period - now\n"
    "if est + 1 > count then\n"
    "  return {0, 0, left, left, 0}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'w', string.format('%.0f', w),\n"
    "           'c', cur + 1, 'p', prev)\n"
    "redis.call('PEXPIRE', KEYS[1], math.ceil((left + period) / 1000) + 1)\n"
    "return {1, math.floor(count - est - 1), left, 0, 0}\n";


/* What a pending command needs, owned by hiredis's callback (malloc). */
typedef struct {
    pt_rl_redis_req_t   *rq;           /* NULL: nobody waits any more   */
    char                 args[4][24];
    size_t               keylen;
    char                 key[];
} pt_rl_redis_wait_t;

struct pt_rl_redis_req_s {
    pt_http_request_t   *r;
    pt_event_t           ev;           /* the timeout, then the resume  */
    pt_rl_redis_wait_t  *wait;
    pt_uint_t            limit;        /* the limit asked about         */
    unsigned             state;
    pt_rl_verdict_t      verdict;
};

/* The worker's connection. */
typedef struct {
    pt_rl_redis_conf_t  *conf;
    redisAsyncContext   *ac;
    pt_connection_t     *c;
    pt_event_t           reconnect;
    pt_msec_t            backoff;
    pt_msec_t            logged;       /* when an error was last logged */
    unsigned             want_read:1;
    unsigned             want_write:1;
    unsigned             exiting:1;
    char                 host[256];    /* conf->addr.host, NUL-terminated */
    char                 sha[2 * SHA_DIGEST_LENGTH + 1];
} pt_rl_redis_t;


static pt_rl_redis_t  pt_rl_redis;


static void pt_rl_redis_connect(pt_event_t *ev);


/* Errors at most once a second: a Redis outage must not flood the log. */
static void
pt_rl_redis_log(const char *what, const char *detail)
{
    if (pt_rl_redis.logged && pt_current_msec - pt_rl_redis.logged < 1000) {
        return;
    }

    pt_rl_redis.logged = pt_current_msec ? pt_current_msec : 1;
    pt_log_error(PT_LOG_ERR, NULL, 0,
                 "ratelimit: redis %s %s: %s (redis_failure applies)",
                 pt_rl_redis.conf->addr.text, what, detail);
}


static void
pt_rl_redis_schedule(void)
{
    if (pt_rl_redis.exiting || pt_rl_redis.reconnect.timer_set) {
        return;
    }

    pt_timer_add(&pt_rl_redis.reconnect, pt_rl_redis.backoff);
    pt_rl_redis.backoff = pt_min(2 * pt_rl_redis.backoff,
                                 PT_RL_REDIS_BACKOFF_MAX);
}


/* Drop the connection: hiredis calls every pending callback with no
 * reply, then our cleanup hook, which frees the slot. */
static void
pt_rl_redis_drop(void)
{
    redisAsyncContext  *ac;

    ac = pt_rl_redis.ac;
    if (ac != NULL) {
        redisAsyncFree(ac);
    }
}


/* hiredis's event hooks onto the connection slot. */

static void
pt_rl_redis_add_read(void *data)
{
    pt_rl_redis.want_read = 1;
}


static void
pt_rl_redis_del_read(void *data)
{
    pt_rl_redis.want_read = 0;
}


static void
pt_rl_redis_add_write(void *data)
{
    pt_rl_redis.want_write = 1;

    /* Edge-triggered: a writable socket says so only once; write from a
     * posted event, after the caller is done with hiredis. */
    if (pt_rl_redis.c && pt_rl_redis.c->write->ready) {
        pt_post_event(pt_rl_redis.c->write);
    }
}


static void
pt_rl_redis_del_write(void *data)
{
    pt_rl_redis.want_write = 0;
}


static void
pt_rl_redis_cleanup(void *data)
{
    redisAsyncContext  *ac;

    ac = pt_rl_redis.ac;
    pt_rl_redis.ac = NULL;
    pt_rl_redis.want_read = 0;
    pt_rl_redis.want_write = 0;

    if (pt_rl_redis.c) {
        /* The slot closes the socket; hiredis must not close it again. */
        pt_close_connection(pt_rl_redis.c);
        pt_rl_redis.c = NULL;
        if (ac) {
            ac->c.fd = -1;
        }
    }

    pt_rl_redis_schedule();
}


static void
pt_rl_redis_read_handler(pt_event_t *ev)
{
    int                 n;
    redisAsyncContext  *ac;

    ac = pt_rl_redis.ac;

    /* hiredis reads once per call; the socket is edge-triggered, so read
     * while bytes are waiting. */
    while (ac && pt_rl_redis.want_read) {
        redisAsyncHandleRead(ac);

        if (pt_rl_redis.ac != ac
            || ioctl(ac->c.fd, FIONREAD, &n) == -1 || n <= 0)
        {
            break;
        }
    }
}


static void
pt_rl_redis_write_handler(pt_event_t *ev)
{
    redisAsyncContext  *ac;

    ac = pt_rl_redis.ac;

    if (ac == NULL || !pt_rl_redis.want_write) {
        return;
    }

    redisAsyncHandleWrite(ac);

    /* Still wanting to write means the socket filled up (or the connect
     * is not done): wait for its next edge. */
    if (pt_rl_redis.ac == ac && pt_rl_redis.want_write) {
        ev->ready = 0;
    }
}


static void
pt_rl_redis_on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK) {
        pt_rl_redis_log("connect failed", ac->errstr);
        return;                  /* hiredis frees it: cleanup reconnects */
    }

    pt_rl_redis.backoff = PT_RL_REDIS_BACKOFF;
    pt_log_error(PT_LOG_NOTICE, NULL, 0, "ratelimit: redis %s connected",
                 pt_rl_redis.conf->addr.text);
}


static void
pt_rl_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK && !pt_rl_redis.exiting) {
        pt_rl_redis_log("connection lost", ac->errstr);
    }
}


static void
pt_rl_redis_connect(pt_event_t *ev)
{
    redisAsyncContext  *ac;
    pt_connection_t    *c;

    ac = redisAsyncConnect(pt_rl_redis.host, pt_rl_redis.conf->addr.port);
    if (ac == NULL) {
        pt_rl_redis_log("connect failed", "out of memory");
        pt_rl_redis_schedule();
        return;
    }

    if (ac->err) {
        pt_rl_redis_log("connect failed", ac->errstr);
        redisAsyncFree(ac);
        pt_rl_redis_schedule();
        return;
    }

    c = pt_get_connection(ac->c.fd);
    if (c == NULL) {
        redisAsyncFree(ac);
        pt_rl_redis_schedule();
        return;
    }

    c->data = &pt_rl_redis;
    c->read->handler = pt_rl_redis_read_handler;
    c->write->handler = pt_rl_redis_write_handler;

    if (pt_event_add_conn(c) != PT_OK) {
        pt_close_connection(c);
        ac->c.fd = -1;
        redisAsyncFree(ac);
        pt_rl_redis_schedule();
        return;
    }

    pt_rl_redis.ac = ac;
    pt_rl_redis.c = c;

    ac->ev.data = &pt_rl_redis;
    ac->ev.addRead = pt_rl_redis_add_read;
    ac->ev.delRead = pt_rl_redis_del_read;
    ac->ev.addWrite = pt_rl_redis_add_write;
    ac->ev.delWrite = pt_rl_redis_del_write;
    ac->ev.cleanup = pt_rl_redis_cleanup;

    redisAsyncSetConnectCallback(ac, pt_rl_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, pt_rl_redis_on_disconnect);

    /* Queued before any EVALSHA, so Redis knows the script by then. */
    redisAsyncCommand(ac, NULL, NULL, "SCRIPT LOAD %s", pt_rl_redis_script);
}


int
pt_rl_redis_init_worker(pt_rl_redis_conf_t *conf)
{
    size_t         i;
    unsigned char  md[SHA_DIGEST_LENGTH];

    if (!conf->used) {
        return PT_OK;
    }

    memset(&pt_rl_redis, 0, sizeof(pt_rl_redis));
    pt_rl_redis.conf = conf;
    pt_rl_redis.backoff = PT_RL_REDIS_BACKOFF;
    pt_rl_redis.reconnect.handler = pt_rl_redis_connect;
    pt_rl_redis.reconnect.data = &pt_rl_redis;
    pt_rl_redis.reconnect.cancelable = 1;
    snprintf(pt_rl_redis.host, sizeof(pt_rl_redis.host), "%.*s",
             (int) conf->addr.host.len, conf->addr.host.data);

    SHA1((const unsigned char *) pt_rl_redis_script,
         sizeof(pt_rl_redis_script) - 1, md);
    for (i = 0; i < SHA_DIGEST_LENGTH; i++) {
        snprintf(&pt_rl_redis.sha[2 * i], 3, "%02x", md[i]);
    }

    pt_rl_redis_connect(&pt_rl_redis.reconnect);

    return PT_OK;
}


void
pt_rl_redis_exit_worker(void)
{
    if (pt_rl_redis.conf == NULL) {
        return;
    }

    pt_rl_redis.exiting = 1;
    pt_timer_del(&pt_rl_redis.reconnect);
    pt_rl_redis_drop();
}


static uint64_t
pt_rl_redis_seconds(long long us)
{
    return us <= 0 ? 0 : ((uint64_t) us + 999999) / 1000000;
}


/* Read the script's answer into rq->verdict. */
static int
pt_rl_redis_verdict(redisReply *reply, pt_rl_redis_req_t *rq)
{
    size_t        i;
    redisReply  **e;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 5) {
        return PT_ERROR;
    }

    e = reply->element;
    for (i = 0; i < 5; i++) {
        if (e[i]->type != REDIS_REPLY_INTEGER || e[i]->integer < 0) {
            return PT_ERROR;
        }
    }

    rq->verdict.allowed = e[0]->integer != 0;
    rq->verdict.remaining = (uint64_t) e[1]->integer;
    rq->verdict.reset = pt_rl_redis_seconds(e[2]->integer);
    rq->verdict.retry_after = pt_rl_redis_seconds(e[3]->integer);
    rq->verdict.delay_us = (uint64_t) e[4]->integer;

    if (!rq->verdict.allowed && rq->verdict.retry_after == 0) {
        rq->verdict.retry_after = 1;
    }

    return PT_OK;
}


static void
pt_rl_redis_resume(pt_event_t *ev)
{
    pt_rl_redis_req_t  *rq;

    rq = ev->data;
    pt_http_run_phases(rq->r);
}


static int pt_rl_redis_send(pt_rl_redis_wait_t *w, int whole);


static void
pt_rl_redis_reply(redisAsyncContext *ac, void *data, void *privdata)
{
    redisReply          *reply;
    pt_rl_redis_req_t   *rq;
    pt_rl_redis_wait_t  *w;

    reply = data;
    w = privdata;
    rq = w->rq;

    if (rq == NULL) {
        free(w);                 /* the request went away, or gave up */
        return;
    }

    if (reply && reply->type == REDIS_REPLY_ERROR
        && strncmp(reply->str, "NOSCRIPT", 8) == 0
        && pt_rl_redis_send(w, 1) == PT_OK)
    {
        return;                  /* sent again, whole, with EVAL */
    }

    rq->wait = NULL;
    rq->state = PT_RL_FAILED;

    if (reply == NULL) {
        pt_rl_redis_log("no reply", ac->errstr[0] ? ac->errstr : "dropped");

    } else if (reply->type == REDIS_REPLY_ERROR) {
        pt_rl_redis_log("error", reply->str);

    } else if (pt_rl_redis_verdict(reply, rq) != PT_OK) {
        pt_rl_redis_log("error", "an unexpected reply to the script");

    } else {
        rq->state = PT_RL_ANSWERED;
    }

    free(w);

    /* Resume from a posted event, out of hiredis's callback. */
    pt_timer_del(&rq->ev);
    rq->ev.handler = pt_rl_redis_resume;
    pt_post_event(&rq->ev);
}


static int
pt_rl_redis_send(pt_rl_redis_wait_t *w, int whole)
{
    int  rc;

    if (pt_rl_redis.ac == NULL) {
        return PT_ERROR;
    }

    if (whole) {
        rc = redisAsyncCommand(pt_rl_redis.ac, pt_rl_redis_reply, w,
                               "EVAL %s 1 %b %s %s %s %s",
                               pt_rl_redis_script, w->key, w->keylen,
                               w->args[0], w->args[1], w->args[2],
                               w->args[3]);
    } else {
        rc = redisAsyncCommand(pt_rl_redis.ac, pt_rl_redis_reply, w,
                               "EVALSHA %s 1 %b %s %s %s %s",
                               pt_rl_redis.sha, w->key, w->keylen,
                               w->args[0], w->args[1], w->args[2],
                               w->args[3]);
    }

    return rc == REDIS_OK ? PT_OK : PT_ERROR;
}


/* No answer in time: Redis may hang, so the connection is dropped (and
 * made again); the request goes on as if Redis were down. */
static void
pt_rl_redis_timeout(pt_event_t *ev)
{
    pt_rl_redis_req_t  *rq;

    rq = ev->data;

    if (rq->wait) {
        rq->wait->rq = NULL;
        rq->wait = NULL;
    }

    rq->state = PT_RL_FAILED;
    pt_rl_redis_log("timed out", "no answer within redis_timeout");
    pt_rl_redis_drop();

    pt_http_run_phases(rq->r);
}


/* The request ends: a late reply must find nobody. */
static void
pt_rl_redis_req_cleanup(void *data)
{
    pt_rl_redis_req_t  *rq;

    rq = data;

    if (rq->wait) {
        rq->wait->rq = NULL;
        rq->wait = NULL;
    }

    pt_timer_del(&rq->ev);
    pt_delete_posted_event(&rq->ev);
}


int
pt_rl_redis_check(pt_http_request_t *r, pt_rl_redis_req_t **rqp,
    pt_uint_t i, pt_rl_limit_t *lim, const pt_str_t *key,
    pt_rl_verdict_t *v)
{
    pt_rl_redis_req_t   *rq;
    pt_rl_redis_wait_t  *w;

    rq = *rqp;

    if (rq && rq->limit == i && rq->state != 0) {
        if (rq->state == PT_RL_WAITING) {
            return PT_AGAIN;
        }

        if (rq->state == PT_RL_ANSWERED) {
            rq->state = 0;
            *v = rq->verdict;
            return PT_OK;
        }

        rq->state = 0;
        return PT_DECLINED;
    }

    if (pt_rl_redis.ac == NULL) {
        pt_rl_redis_log("unavailable", "not connected");
        return PT_DECLINED;
    }

    if (rq == NULL) {
        rq = pt_pcalloc(r->pool, sizeof(pt_rl_redis_req_t));
        if (rq == NULL
            || pt_pool_cleanup_add(r->pool, pt_rl_redis_req_cleanup, rq)
               == NULL)
        {
            return PT_ERROR;
        }
        rq->r = r;
        rq->ev.data = rq;
        *rqp = rq;
    }

    /* "portico:rl:{ROUTE.N}:KEY": the braces keep a route's limit on one
     * Redis Cluster slot. */
    w = malloc(sizeof(pt_rl_redis_wait_t) + lim->name.len + key->len + 16);
    if (w == NULL) {
        return PT_ERROR;
    }

    w->rq = rq;
    w->keylen = (size_t) sprintf(w->key, "portico:rl:{%s}:", lim->name.data);
    memcpy(w->key + w->keylen, key->data, key->len);
    w->keylen += key->len;
    snprintf(w->args[0], sizeof(w->args[0]), "%u", lim->algorithm);
    snprintf(w->args[1], sizeof(w->args[1]), "%llu",
             (unsigned long long) lim->count);
    snprintf(w->args[2], sizeof(w->args[2]), "%llu",
             (unsigned long long) lim->period_us);
    snprintf(w->args[3], sizeof(w->args[3]), "%llu",
             (unsigned long long) lim->burst);

    if (pt_rl_redis_send(w, 0) != PT_OK) {
        free(w);
        pt_rl_redis_log("unavailable", "the command was not queued");
        return PT_DECLINED;
    }

    rq->wait = w;
    rq->limit = i;
    rq->state = PT_RL_WAITING;
    rq->ev.handler = pt_rl_redis_timeout;
    pt_timer_add(&rq->ev, pt_rl_redis.conf->timeout
                          ? pt_rl_redis.conf->timeout : PT_RL_REDIS_TIMEOUT);

    return PT_AGAIN;
}
