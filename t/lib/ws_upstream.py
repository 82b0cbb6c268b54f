#!/usr/bin/python3
# ws_upstream.py: a WebSocket upstream for the Portico tests (python3-
# websockets 10.4, Debian's interpreter: /usr/bin/python3).
#
#   /usr/bin/python3 t/lib/ws_upstream.py --log FILE [--port N]
#                                         [--cert PEM --key PEM]
#
# Listens on 127.0.0.1 (port 0: the kernel chooses), over TLS with --cert
# and --key, and prints "PORT n" once it accepts. Every event is a JSON line appended to FILE: "open"
# (path and the request's header fields), "close" (the close code and
# reason it got), "sent" (bytes sent so far by /flood), "refused".
#
# Paths:
#   /echo...              echo every message, text or binary
#   /close?code=C&reason=R   close at once with that code and reason
#   /flood?bytes=N&size=S    send N bytes in binary messages of S bytes
#                         (message i is S bytes of value i % 256), then
#                         wait for the client to close
#   /refuse...            answer 403 with a body, no upgrade
#   anything else         the plain handshake, then like /echo
#
# Subprotocol "chat" is accepted when offered; permessage-deflate as
# websockets negotiates it by default. Keep-alive pings are off: a test of
# the idle timeout needs silence.

import argparse
import asyncio
import http
import json
import signal
import ssl
import sys
import urllib.parse

import websockets


log_file = None


def event(**kw):
    log_file.write(json.dumps(kw, sort_keys=True) + "\n")
    log_file.flush()


async def process_request(path, headers):
    if path.startswith("/refuse"):
        event(event="refused", path=path)
        return (http.HTTPStatus.FORBIDDEN, [("Content-Type", "text/plain"), ("X-Refused", "yes")],
                b"refused by upstream\n")
    return None


async def handler(ws, path):
    url = urllib.parse.urlsplit(path)
    query = dict(urllib.parse.parse_qsl(url.query))
    event(event="open", path=path,
          headers=[[k, v] for k, v in ws.request_headers.raw_items()],
          subprotocol=ws.subprotocol)

    try:
        if url.path == "/close":
            await ws.close(int(query.get("code", "1000")),
                           query.get("reason", ""))

        elif url.path == "/flood":
            total = int(query.get("bytes", "1048576"))
            size = int(query.get("size", "65536"))
            sent = 0
            i = 0
            while sent < total:
                n = min(size, total - sent)
                await ws.send(bytes([i % 256]) * n)
                sent += n
                i += 1
                event(event="sent", path=path, bytes=sent)
            await ws.wait_closed()

        else:
            async for msg in ws:
                await ws.send(msg)

    except websockets.ConnectionClosed:
        pass

    await ws.wait_closed()
    event(event="close", path=path, code=ws.close_code,
          reason=ws.close_reason)


async def main():
    global log_file

    ap = argparse.ArgumentParser()
    ap.add_argument("--log", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()

    tls = None
    if args.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)

    log_file = open(args.log, "a")

    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(
            sig, lambda: stop.done() or stop.set_result(None))

    async with websockets.serve(handler, "127.0.0.1", args.port,
                                process_request=process_request,
                                subprotocols=["chat"],
                                ping_interval=None, max_size=None,
                                max_queue=4, ssl=tls) as server:
        port = server.sockets[0].getsockname()[1]
        print("PORT %d" % port, flush=True)
        await stop


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
