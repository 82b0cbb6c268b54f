#!/usr/bin/python3
# ws_h2_client.py: WebSocket over HTTP/2 (RFC 8441 extended CONNECT) for
# the Portico tests. Frames are python3-websockets' (its sans-I/O
# Connection, client side, opened by the CONNECT instead of a handshake);
# HTTP/2 frames are python3-hyperframe's and python3-hpack's, so the
# client can send what it likes.
#
#   /usr/bin/python3 t/lib/ws_h2_client.py PORT PATH SCENARIO [options]
#
# Prints one JSON object: the server's SETTINGS, the response status and
# fields, and what the scenario found.
#
# Scenarios:
#   echo     text messages, a 1 MiB binary message, a ping, then a close
#            with code 4001 and reason "bye"; reports what came back and
#            how the stream ended
#   refused  reports the answer (status, fields, body) and its end
#   idle     sends nothing; reports the seconds until the stream ended
#            (--wait bounds it)
#   reset    sends a text message, reads its echo, then resets the stream
#            (CANCEL); reports whether the connection still serves a
#            second extended CONNECT's echo
#   stall    opens the tunnel and prints {"open": time}, then reads
#            frames but opens no window (so the server can send 64 KiB)
#            until a line arrives on stdin; then reads everything the
#            upstream sends (--bytes of payload in all), closes, and
#            reports the bytes and whether every message was whole
#   hold     prints {"open": time}, then a message every 0.2 s until the
#            stream ends (--wait bounds it); reports each echo's time,
#            when the stream ended, and the GOAWAY if one came

import argparse
import json
import os
import select
import socket
import ssl
import sys
import time

from hpack import Decoder, Encoder
from hyperframe.frame import (DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)
from websockets.connection import Connection, Side
from websockets.frames import Close, Opcode

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENABLE_CONNECT_PROTOCOL = 8
MAX_FRAME = 16384


class H2:
    def __init__(self, args):
        s = socket.create_connection(("127.0.0.1", args.port), timeout=10)
        if args.tls:
            ctx = ssl.create_default_context(cafile=args.tls)
            ctx.set_alpn_protocols(["h2"])
            s = ctx.wrap_socket(s, server_hostname=args.sni)
        self.s = s
        self.s.setblocking(False)
        self.buf = b""
        self.enc = Encoder()
        self.dec = Decoder()
        self.server_settings = {}
        self.closed = False
        self.goaway = None
        self.streams = {}
        self.conn_window = 65535
        self.initial_window = 65535
        self.auto_window = True     # WINDOW_UPDATE for every DATA frame
        self.send(PREFACE + SettingsFrame(0).serialize())
        # Our receive window for the connection: large, so only the
        # stream's window paces the server.
        self.send(WindowUpdateFrame(0, (1 << 30)).serialize())

    def send(self, data):
        view = memoryview(data)
        deadline = time.time() + 10
        while view and not self.closed and time.time() < deadline:
            try:
                n = self.s.send(view)
                view = view[n:]
                continue
            except (BlockingIOError, ssl.SSLWantWriteError,
                    ssl.SSLWantReadError):
                pass
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True
                break
            select.select([self.s], [self.s], [], 0.2)
            self.read_some(0)

    def read_some(self, timeout):
        if not (self.s.pending() if isinstance(self.s, ssl.SSLSocket)
                else 0):
            r, _, _ = select.select([self.s], [], [], timeout)
            if not r:
                return
        try:
            data = self.s.recv(1 << 20)
        except (BlockingIOError, ssl.SSLWantReadError):
            return
        except (ConnectionResetError, ssl.SSLError):
            self.closed = True
            return
        if not data:
            self.closed = True
            return
        self.buf += data
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            self.on_frame(f)

    def stream(self, sid):
        return self.streams.setdefault(sid, {
            "status": None, "headers": [], "data": b"", "ended": False,
            "rst": None, "window": self.initial_window})

    def on_frame(self, f):
        if isinstance(f, SettingsFrame):
            if "ACK" not in f.flags:
                for k, v in f.settings.items():
                    self.server_settings[int(k)] = v
                    if int(k) == 4:
                        for st in self.streams.values():
                            st["window"] += v - self.initial_window
                        self.initial_window = v
                self.send(SettingsFrame(0, flags=["ACK"]).serialize())
        elif isinstance(f, PingFrame):
            if "ACK" not in f.flags:
                self.send(PingFrame(0, f.opaque_data,
                                    flags=["ACK"]).serialize())
        elif isinstance(f, HeadersFrame):
            st = self.stream(f.stream_id)
            fields = self.dec.decode(f.data)
            for k, v in fields:
                k = k.decode() if isinstance(k, bytes) else k
                v = v.decode() if isinstance(v, bytes) else v
                if k == ":status":
                    if st["status"] is None or st["status"] < 200:
                        st["status"] = int(v)
                else:
                    st["headers"].append([k, v])
            if "END_STREAM" in f.flags:
                st["ended"] = True
        elif isinstance(f, DataFrame):
            st = self.stream(f.stream_id)
            st["data"] += f.data
            st.setdefault("held", 0)
            if not self.auto_window:
                st["held"] += f.flow_controlled_length
            elif f.flow_controlled_length:
                self.send(WindowUpdateFrame(
                    f.stream_id, f.flow_controlled_length).serialize())
            if "END_STREAM" in f.flags:
                st["ended"] = True
        elif isinstance(f, WindowUpdateFrame):
            if f.stream_id == 0:
                self.conn_window += f.window_increment
            else:
                self.stream(f.stream_id)["window"] += f.window_increment
        elif isinstance(f, RstStreamFrame):
            self.stream(f.stream_id)["rst"] = f.error_code
        elif isinstance(f, GoAwayFrame):
            self.goaway = f.error_code

    def wait(self, cond, timeout=10):
        deadline = time.time() + timeout
        while not cond() and not self.closed:
            left = deadline - time.time()
            if left <= 0:
                return False
            self.read_some(min(left, 0.5))
        return cond()

    def connect(self, sid, args):
        fields = [(":method", "CONNECT"), (":protocol", args.protocol),
                  (":scheme", "https" if args.tls else "http"),
                  (":path", args.path),
                  (":authority", "%s:%d" % (args.sni, args.port)),
                  ("sec-websocket-version", args.version)]
        if args.subprotocol:
            fields.append(("sec-websocket-protocol", args.subprotocol))
        if args.key:
            fields.append(("sec-websocket-key", args.key))
        hf = HeadersFrame(sid, self.enc.encode(fields))
        hf.flags.add("END_HEADERS")
        self.send(hf.serialize())
        self.stream(sid)

    def send_data(self, sid, data, end=False):
        """Within the stream's and the connection's windows."""
        st = self.stream(sid)
        view = memoryview(data)
        while view or end:
            if not self.wait(lambda: (min(st["window"], self.conn_window) > 0
                                      or not view or st["rst"] is not None),
                             10):
                return False
            if st["rst"] is not None:
                return False
            n = min(len(view), st["window"], self.conn_window, MAX_FRAME)
            df = DataFrame(sid, bytes(view[:n]))
            if end and n == len(view):
                df.flags.add("END_STREAM")
                end = False
            self.send(df.serialize())
            st["window"] -= n
            self.conn_window -= n
            view = view[n:]
        return True


def result(h2, sid, extra):
    st = h2.stream(sid)
    out = {"settings": {str(k): v for k, v in h2.server_settings.items()},
           "status": st["status"], "headers": st["headers"],
           "ended": st["ended"], "rst": st["rst"], "goaway": h2.goaway}
    out.update(extra)
    print(json.dumps(out, sort_keys=True), flush=True)


def ws_events(ws, st):
    """Feed what the stream brought to the WebSocket side."""
    if st["data"]:
        ws.receive_data(st["data"])
        st["data"] = b""
    return ws.events_received()


def echo_run(h2, sid, ws, frames_out, want, timeout=30):
    """Send, then gather frames until want(frames) or the end."""
    st = h2.stream(sid)
    if frames_out:
        h2.send_data(sid, frames_out)
    got = []
    deadline = time.time() + timeout
    while not want(got) and time.time() < deadline:
        got += ws_events(ws, st)
        if want(got) or st["ended"] or st["rst"] is not None or h2.closed:
            break
        h2.read_some(0.5)
    got += ws_events(ws, st)
    return got


def open_stream(h2, sid, args):
    h2.connect(sid, args)
    st = h2.stream(sid)
    h2.wait(lambda: st["status"] is not None or st["rst"] is not None, 10)
    return st


def sc_echo(h2, args):
    st = open_stream(h2, 1, args)
    if st["status"] != 200:
        return result(h2, 1, {"body": st["data"].decode("latin-1")})
    ws = Connection(Side.CLIENT, max_size=None)
    found = {"texts": [], "binary_ok": False, "pong": None}
    for text in ("hello", "h\u00e9llo over h2"):
        ws.send_text(text.encode())
        got = echo_run(h2, 1, ws, b"".join(ws.data_to_send()),
                       lambda g: any(f.opcode == Opcode.TEXT for f in g))
        found["texts"] += [f.data.decode() for f in got
                           if f.opcode == Opcode.TEXT]
    blob = os.urandom(1 << 20)
    ws.send_binary(blob)
    got = echo_run(h2, 1, ws, b"".join(ws.data_to_send()),
                   lambda g: any(f.opcode == Opcode.BINARY for f in g))
    found["binary_ok"] = any(f.opcode == Opcode.BINARY and f.data == blob
                             for f in got)
    ws.send_ping(b"p-1")
    got = echo_run(h2, 1, ws, b"".join(ws.data_to_send()),
                   lambda g: any(f.opcode == Opcode.PONG for f in g))
    pongs = [f.data.decode() for f in got if f.opcode == Opcode.PONG]
    found["pong"] = pongs[0] if pongs else None
    ws.send_close(4001, "bye")
    got = echo_run(h2, 1, ws, b"".join(ws.data_to_send()),
                   lambda g: any(f.opcode == Opcode.CLOSE for f in g))
    closes = [Close.parse(f.data) for f in got if f.opcode == Opcode.CLOSE]
    found["close_code"] = closes[0].code if closes else None
    found["close_reason"] = closes[0].reason if closes else None
    # The server's side ends once the upstream closes; then ours.
    h2.wait(lambda: st["ended"] or st["rst"] is not None, 10)
    found["server_ended_first"] = st["ended"]
    h2.send_data(1, b"", end=True)
    return result(h2, 1, found)


def sc_refused(h2, args):
    st = open_stream(h2, 1, args)
    h2.wait(lambda: st["ended"] or st["rst"] is not None, 10)
    return result(h2, 1, {"body": st["data"].decode("latin-1")})


def sc_idle(h2, args):
    st = open_stream(h2, 1, args)
    start = time.time()
    h2.wait(lambda: st["ended"] or st["rst"] is not None, args.wait)
    return result(h2, 1, {"seconds": round(time.time() - start, 3)})


def sc_reset(h2, args):
    st = open_stream(h2, 1, args)
    ws = Connection(Side.CLIENT, max_size=None)
    ws.send_text(b"first")
    got = echo_run(h2, 1, ws, b"".join(ws.data_to_send()),
                   lambda g: any(f.opcode == Opcode.TEXT for f in g))
    first = [f.data.decode() for f in got if f.opcode == Opcode.TEXT]
    h2.send(RstStreamFrame(1, 8).serialize())
    st3 = open_stream(h2, 3, args)
    ws3 = Connection(Side.CLIENT, max_size=None)
    ws3.send_text(b"second")
    got = echo_run(h2, 3, ws3, b"".join(ws3.data_to_send()),
                   lambda g: any(f.opcode == Opcode.TEXT for f in g))
    second = [f.data.decode() for f in got if f.opcode == Opcode.TEXT]
    return result(h2, 3, {"first": first, "second": second,
                          "second_status": st3["status"]})


def sc_hold(h2, args):
    st = open_stream(h2, 1, args)
    if st["status"] != 200:
        return result(h2, 1, {})
    print(json.dumps({"open": time.time()}), flush=True)
    ws = Connection(Side.CLIENT, max_size=None)
    times, goaway_at = [], None
    deadline = time.time() + args.wait
    while time.time() < deadline:
        ws.send_text(b"tick")
        got = echo_run(h2, 1, ws, b"".join(ws.data_to_send()),
                       lambda g: any(f.opcode == Opcode.TEXT for f in g), 5)
        if any(f.opcode == Opcode.TEXT for f in got):
            times.append(time.time())
        if h2.goaway is not None and goaway_at is None:
            goaway_at = time.time()
        if st["ended"] or st["rst"] is not None or h2.closed:
            break
        h2.read_some(0.2)
        if st["ended"] or st["rst"] is not None or h2.closed:
            break
    return result(h2, 1, {"echo_times": times, "goaway_at": goaway_at,
                          "ended_at": time.time()})


def sc_stall(h2, args):
    st = open_stream(h2, 1, args)
    if st["status"] != 200:
        return result(h2, 1, {})
    h2.auto_window = False
    print(json.dumps({"open": time.time()}), flush=True)
    while not select.select([sys.stdin], [], [], 0)[0]:
        h2.read_some(0.2)
        if h2.closed or st["rst"] is not None:
            return result(h2, 1, {"error": "ended while stalled"})
    sys.stdin.readline()
    stalled = len(st["data"])
    h2.auto_window = True
    if st.get("held"):
        h2.send(WindowUpdateFrame(1, st["held"]).serialize())
    ws = Connection(Side.CLIENT, max_size=None)
    got, whole, n = 0, True, 0
    deadline = time.time() + 60
    while got < args.bytes and time.time() < deadline:
        for f in ws_events(ws, st):
            if f.opcode == Opcode.BINARY:
                # message i is --size bytes of value i % 256
                if f.data != bytes([n % 256]) * len(f.data):
                    whole = False
                n += 1
                got += len(f.data)
        if st["ended"] or st["rst"] is not None or h2.closed:
            break
        h2.read_some(0.5)
    ws.send_close(1000, "done")
    h2.send_data(1, b"".join(ws.data_to_send()))
    return result(h2, 1, {"stalled_bytes": stalled, "bytes": got,
                          "messages": n, "whole": whole})


SCENARIOS = {"echo": sc_echo, "stall": sc_stall, "refused": sc_refused, "idle": sc_idle,
             "reset": sc_reset, "hold": sc_hold}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--tls", metavar="CAFILE")
    ap.add_argument("--sni", default="localhost")
    ap.add_argument("--protocol", default="websocket")
    ap.add_argument("--version", default="13")
    ap.add_argument("--subprotocol")
    ap.add_argument("--key", help="send a Sec-WebSocket-Key (not for h2)")
    ap.add_argument("--wait", type=float, default=10)
    ap.add_argument("--bytes", type=int, default=0)
    args = ap.parse_args()
    h2 = H2(args)
    h2.wait(lambda: h2.server_settings, 10)
    SCENARIOS[args.scenario](h2, args)


if __name__ == "__main__":
    sys.exit(main())
