#!/usr/bin/python3
# ws_client.py: WebSocket client scenarios for the Portico tests (python3-
# websockets 10.4, Debian's interpreter: /usr/bin/python3).
#
#   /usr/bin/python3 t/lib/ws_client.py SCENARIO URL [options]
#
# Prints one JSON object (the scenario's findings) on stdout; "hold" also
# prints a line when the connection is open. A failed handshake is
# reported as {"error": ..., "status": N, "headers": ...}, not raised.
#
# Scenarios:
#   echo     text messages, a 1 MiB binary message, a ping, then a close
#            with code 4001 and reason "bye"; reports what came back
#   closed   waits for the server to close; reports its code and reason
#   idle     sends nothing; reports how long until the gateway closed
#            (--wait bounds it)
#   busy     a message every --every seconds for --for seconds; reports
#            the echoes and whether the connection was still open
#   hold     prints {"open": time}, then a message every 0.2 s until the
#            connection closes (--wait bounds it); reports each echo's
#            time and when it closed
#   many     opens --count connections, sends a message of --size bytes
#            on each and reads its echo, prints {"open": count, "echoed":
#            n}, then holds them all (--wait seconds, or until killed)

import argparse
import asyncio
import json
import os
import sys
import time

import websockets


def out(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


def connect(args, **kw):
    headers = {}
    if args.request_id:
        headers["X-Request-ID"] = args.request_id
    opts = dict(extra_headers=headers, ping_interval=None, max_size=None,
                open_timeout=10, close_timeout=5)
    if args.subprotocol:
        opts["subprotocols"] = [args.subprotocol]
    if args.no_compression:
        opts["compression"] = None
    opts.update(kw)
    return websockets.connect(args.url, **opts)


def handshake_info(ws):
    return {
        "subprotocol": ws.subprotocol,
        "extensions": [type(e).__name__ for e in ws.extensions],
        "response_headers": [[k, v] for k, v in
                             ws.response_headers.raw_items()],
    }


async def echo(args):
    res = {}
    async with connect(args) as ws:
        res.update(handshake_info(ws))

        texts = ["hello", "h\u00e9llo \u2713", "x" * 70000]
        got = []
        for t in texts:
            await ws.send(t)
            got.append(await ws.recv())
        res["text_ok"] = got == texts

        blob = os.urandom(1024 * 1024)
        await ws.send(blob)
        back = await ws.recv()
        res["binary_ok"] = isinstance(back, bytes) and back == blob
        res["binary_len"] = len(back)

        start = time.time()
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        res["pong"] = True
        res["ping_ms"] = (time.time() - start) * 1000

        await ws.close(4001, "bye")
        res["close_code"] = ws.close_code
        res["close_reason"] = ws.close_reason
    return res


async def closed(args):
    async with connect(args) as ws:
        try:
            await asyncio.wait_for(ws.recv(), args.wait)
        except websockets.ConnectionClosed:
            pass
        await ws.wait_closed()
        return {"close_code": ws.close_code,
                "close_reason": ws.close_reason}


async def idle(args):
    async with connect(args) as ws:
        start = time.time()
        try:
            await asyncio.wait_for(ws.wait_closed(), args.wait)
        except asyncio.TimeoutError:
            return {"closed": False, "after": time.time() - start}
        return {"closed": True, "after": time.time() - start,
                "close_code": ws.close_code}


async def busy(args):
    echoes = 0
    async with connect(args) as ws:
        start = time.time()
        n = 0
        while time.time() - start < args.for_:
            msg = "tick %d" % n
            await ws.send(msg)
            if await asyncio.wait_for(ws.recv(), 5) == msg:
                echoes += 1
            n += 1
            await asyncio.sleep(args.every)
        still_open = ws.open
        await ws.close()
        return {"echoes": echoes, "sent": n, "open_at_end": still_open,
                "seconds": time.time() - start}


async def hold(args):
    times = []
    async with connect(args) as ws:
        out({"open": time.time()})
        start = time.time()
        n = 0
        try:
            while time.time() - start < args.wait:
                msg = "hold %d" % n
                await ws.send(msg)
                if await asyncio.wait_for(ws.recv(), 5) == msg:
                    times.append(time.time())
                n += 1
                await asyncio.sleep(0.2)
        except (websockets.ConnectionClosed, asyncio.TimeoutError):
            pass
        closed_at = time.time()
        return {"echo_times": times, "closed_at": closed_at,
                "close_code": ws.close_code, "open_at_end": ws.open}


async def many(args):
    conns = []
    echoed = 0
    for i in range(args.count):
        conns.append(await connect(args))
    msg = b"m" * args.size
    for ws in conns:
        await ws.send(msg)
    for ws in conns:
        if await asyncio.wait_for(ws.recv(), 10) == msg:
            echoed += 1
    out({"open": len(conns), "echoed": echoed})
    await asyncio.sleep(args.wait)
    for ws in conns:
        await ws.close()
    return {"closed": len(conns)}


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("url")
    ap.add_argument("--request-id")
    ap.add_argument("--subprotocol")
    ap.add_argument("--no-compression", action="store_true")
    ap.add_argument("--wait", type=float, default=10)
    ap.add_argument("--every", type=float, default=0.5)
    ap.add_argument("--for", dest="for_", type=float, default=3)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--size", type=int, default=65536)
    args = ap.parse_args()

    fn = {"echo": echo, "closed": closed, "idle": idle, "busy": busy,
          "hold": hold, "many": many}[args.scenario]
    try:
        res = await fn(args)
    except websockets.InvalidStatusCode as e:
        res = {"error": "status", "status": e.status_code,
               "headers": [[k, v] for k, v in e.headers.raw_items()]}
    except Exception as e:
        res = {"error": "%s: %s" % (type(e).__name__, e)}
    out(res)


if __name__ == "__main__":
    asyncio.run(main())
