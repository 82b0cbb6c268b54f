#!/usr/bin/python3
# t/lib/h2raw.py: a raw HTTP/2 client for the http2_*.t tests, built from
# hand-made frames (hyperframe, hpack: Debian's python3-h2 brings them),
# so that it can send what a correct client never would.
#
#   /usr/bin/python3 t/lib/h2raw.py PORT SCENARIO [ARGS...]
#
# Every scenario prints one JSON object on stdout: what came back (status,
# headers, body length, RST_STREAM and GOAWAY codes, whether the server
# closed the connection...). Every wait is bounded; the script never runs
# longer than its --deadline (default 30 s).

import json
import select
import socket
import struct
import sys
import time

from hpack import Encoder, Decoder
from hyperframe.frame import (Frame, HeadersFrame, ContinuationFrame,
                              DataFrame, RstStreamFrame, SettingsFrame,
                              PingFrame, WindowUpdateFrame, GoAwayFrame,
                              PriorityFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR",
          3: "FLOW_CONTROL_ERROR", 4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED",
          6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL",
          9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR",
          11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY",
          13: "HTTP_1_1_REQUIRED"}


class Conn:
    def __init__(self, port, settings=None, window=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.setblocking(False)
        self.buf = b""
        self.enc = Encoder()
        self.dec = Decoder()
        self.dec.max_allowed_table_size = 65536
        self.closed = False
        self.goaway = None
        self.streams = {}
        self.pings = 0
        self.settings_acks = 0
        self.sent = 0
        sf = SettingsFrame(0)
        for k, v in (settings or {}).items():
            sf.settings[k] = v
        self.send(PREFACE + sf.serialize())
        if window:
            self.send(WindowUpdateFrame(0, window).serialize())

    def send(self, data, deadline=None):
        """Write all of data unless the server stops reading (returns the
        bytes written) or closes."""
        deadline = deadline or time.time() + 10
        view = memoryview(data)
        while view:
            if self.closed:
                break
            try:
                n = self.s.send(view)
                view = view[n:]
                self.sent += n
                continue
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                self.closed = True
                break
            left = deadline - time.time()
            if left <= 0:
                break
            r, w, _ = select.select([self.s], [self.s], [], min(left, 0.5))
            if r:
                self.read_some()
        return len(data) - len(view)

    def read_some(self):
        try:
            data = self.s.recv(1 << 20)
        except BlockingIOError:
            return
        except ConnectionResetError:
            self.closed = True
            return
        if not data:
            self.closed = True
            return
        self.buf += data
        self.parse()

    def stream(self, sid):
        return self.streams.setdefault(sid, {
            "status": None, "headers": [], "body": 0, "rst": None,
            "ended": False, "frames": []})

    def parse(self):
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                return
            f.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            self.on_frame(f)

    def on_frame(self, f):
        if isinstance(f, SettingsFrame):
            if "ACK" not in f.flags:
                self.send(SettingsFrame(0, flags=["ACK"]).serialize())
                if not hasattr(self, "server_settings"):
                    self.server_settings = dict(f.settings)
            else:
                self.settings_acks += 1
        elif isinstance(f, PingFrame):
            if "ACK" in f.flags:
                self.pings += 1
        elif isinstance(f, GoAwayFrame):
            self.goaway = {"code": ERRORS.get(f.error_code, f.error_code),
                           "last_stream_id": f.last_stream_id}
        elif isinstance(f, HeadersFrame):
            st = self.stream(f.stream_id)
            hdrs = self.dec.decode(f.data, raw=False)
            status = dict(hdrs).get(":status")
            if status and status.startswith("1"):
                st["interim"] = st.get("interim", []) + [int(status)]
            elif st["status"] is None:
                st["status"] = int(status) if status else None
                st["headers"] = hdrs
            else:
                st["trailers"] = hdrs
            st["frames"].append("HEADERS")
            if "END_STREAM" in f.flags:
                st["ended"] = True
        elif isinstance(f, DataFrame):
            st = self.stream(f.stream_id)
            st["body"] += len(f.data)
            st.setdefault("data", [])
            if st["body"] <= 1 << 16:
                st["data"].append(f.data.decode("latin-1"))
            st["frames"].append("DATA")
            if "END_STREAM" in f.flags:
                st["ended"] = True
            n = f.flow_controlled_length
            if self.auto_window and n:
                self.send(WindowUpdateFrame(0, n).serialize()
                          + WindowUpdateFrame(f.stream_id, n).serialize())
        elif isinstance(f, RstStreamFrame):
            st = self.stream(f.stream_id)
            st["rst"] = ERRORS.get(f.error_code, f.error_code)
            st["frames"].append("RST_STREAM")

    auto_window = True

    def wait(self, cond, timeout=10):
        deadline = time.time() + timeout
        while not cond() and not self.closed:
            left = deadline - time.time()
            if left <= 0:
                return False
            r, _, _ = select.select([self.s], [], [], min(left, 0.5))
            if r:
                self.read_some()
        return cond()

    def headers(self, sid, fields, end_stream=True, end_headers=True):
        block = self.enc.encode(fields)
        flags = []
        if end_stream:
            flags.append("END_STREAM")
        if end_headers:
            flags.append("END_HEADERS")
        return HeadersFrame(sid, data=block, flags=flags).serialize()

    def request(self, sid, method, path, extra=(), body=None,
                authority="localhost"):
        fields = [(":method", method), (":scheme", "http"),
                  (":path", path)]
        if authority is not None:
            fields.append((":authority", authority))
        fields += list(extra)
        self.send(self.headers(sid, fields, end_stream=body is None))
        if body is not None:
            self.send(DataFrame(sid, data=body,
                                flags=["END_STREAM"]).serialize())

    def done(self, sid):
        st = self.streams.get(sid)
        return st is not None and (st["ended"] or st["rst"] is not None)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def result(c, sids=()):
    out = {"closed": c.closed, "goaway": c.goaway, "sent": c.sent,
           "settings": {str(k): v for k, v in
                        getattr(c, "server_settings", {}).items()}}
    for sid in sids:
        st = c.streams.get(sid)
        if st:
            st = dict(st)
            st["headers"] = {k: v for k, v in st["headers"]}
            st["data"] = "".join(st.get("data", []))[:2000]
            out[str(sid)] = st
    return out


def parse_fields(args):
    """name=value arguments; \\r \\n \\0 escapes are expanded."""
    out = []
    for a in args:
        k, _, v = a.partition("=")
        v = (v.replace("\\r", "\r").replace("\\n", "\n")
             .replace("\\0", "\0"))
        out.append((k, v))
    return out


# ---- scenarios -------------------------------------------------------


def sc_request(port, method, path, *fields):
    """One request with the given fields (pseudo-headers included when
    given: then :method/:path/... are not added). Special arguments:
    @body=N sends N bytes of body after the head; @stall=N sends N bytes
    and never ends the stream; @wait100 waits for a 100 before the
    body."""
    c = Conn(port)
    body = stall = None
    wait100 = False
    plain = []
    for a in fields:
        if a.startswith("@body="):
            body = int(a[6:])
        elif a.startswith("@stall="):
            stall = int(a[7:])
        elif a == "@wait100":
            wait100 = True
        else:
            plain.append(a)
    f = parse_fields(plain)
    if not any(k.startswith(":") for k, _ in f):
        f = [(":method", method), (":scheme", "http"), (":path", path),
             (":authority", "localhost")] + f
    more = body if body is not None else stall
    c.send(c.headers(1, f, end_stream=more is None))
    if wait100:
        c.wait(lambda: 100 in c.stream(1).get("interim", []) or c.done(1))
    if more is not None:
        data = b"x" * more
        while data and not c.done(1) and not c.closed:
            piece, data = data[:16384], data[16384:]
            end = ["END_STREAM"] if not data and body is not None else []
            c.send(DataFrame(1, data=piece, flags=end).serialize())
            r, _, _ = select.select([c.s], [], [], 0)
            if r:
                c.read_some()
        if body is not None and more == 0:
            c.send(DataFrame(1, data=b"", flags=["END_STREAM"]).serialize())
    c.wait(lambda: c.done(1), 15)
    # a second, normal request on the same connection
    ok2 = None
    if not c.closed and c.goaway is None:
        c.request(3, "GET", "/hello")
        c.wait(lambda: c.done(3))
        ok2 = (c.streams.get(3) or {}).get("status")
    out = result(c, [1])
    out["next_status"] = ok2
    c.close()
    return out


def sc_rapid_reset(port, n):
    """n HEADERS each followed at once by RST_STREAM(CANCEL), sent in
    batches; reports the GOAWAY and how many pairs went out."""
    n = int(n)
    c = Conn(port)
    c.wait(lambda: c.settings_acks > 0, 5)
    sid = 1
    pairs = 0
    batch = 200
    while pairs < n and not c.closed and c.goaway is None:
        data = b""
        for _ in range(min(batch, n - pairs)):
            data += c.headers(sid, [(":method", "GET"), (":scheme", "http"),
                                    (":path", "/slow"),
                                    (":authority", "localhost")])
            data += RstStreamFrame(sid, error_code=8).serialize()
            sid += 2
            pairs += 1
        c.send(data, time.time() + 5)
        r, _, _ = select.select([c.s], [], [], 0)
        if r:
            c.read_some()
    c.wait(lambda: c.goaway is not None, 5)
    c.wait(lambda: False, 1) if not c.closed else None
    out = result(c)
    out["pairs"] = pairs
    c.close()
    return out


def sc_continuation(port, n):
    """HEADERS without END_HEADERS, then up to n CONTINUATION frames of 16
    KiB each, never ending the block."""
    n = int(n)
    c = Conn(port)
    c.wait(lambda: c.settings_acks > 0, 5)
    block = c.enc.encode([(":method", "GET"), (":scheme", "http"),
                          (":path", "/hello"), (":authority", "localhost")])
    c.send(HeadersFrame(1, data=block, flags=[]).serialize())
    frames = 0
    piece = c.enc.encode([("x-filler", "a" * 16000)])
    while frames < n and not c.closed and c.goaway is None:
        if c.send(ContinuationFrame(1, data=piece).serialize(),
                  time.time() + 2) == 0:
            break
        frames += 1
        r, _, _ = select.select([c.s], [], [], 0)
        if r:
            c.read_some()
    c.wait(lambda: c.closed, 5)
    out = result(c)
    out["frames"] = frames
    c.close()
    return out


def sc_hpack_bomb(port, refs):
    """A 4000-byte field put in the dynamic table, then one header block
    that names it `refs` times (one byte each): a small block that
    decodes to refs * 4 KiB."""
    refs = int(refs)
    c = Conn(port)
    c.wait(lambda: c.settings_acks > 0, 5)
    fields = [(":method", "GET"), (":scheme", "http"), (":path", "/hello"),
              (":authority", "localhost"), ("x-bomb", "b" * 4000)]
    c.send(c.headers(1, fields))
    c.wait(lambda: c.done(1))
    # x-bomb (4038 bytes with its overhead) evicted the other entries of
    # the 4 KiB table: it is dynamic index 62, 0x80 | 62 = 0xbe. The rest
    # of the head is coded without indexing, so that it stays so.
    base = (b"\x82\x86"                    # :method GET, :scheme http
            + b"\x04\x06/hello"            # :path, not indexed
            + b"\x01\x09localhost")        # :authority, not indexed
    block = base + b"\xbe" * refs
    frames = b""
    first = True
    while block:
        piece, block = block[:16384], block[16384:]
        flags = [] if block else ["END_HEADERS"]
        if first:
            frames += HeadersFrame(3, data=piece,
                                   flags=flags + ["END_STREAM"]).serialize()
            first = False
        else:
            frames += ContinuationFrame(3, data=piece,
                                        flags=flags).serialize()
    c.send(frames)
    c.wait(lambda: c.done(3))
    ok = None
    if not c.closed and c.goaway is None:
        c.request(5, "GET", "/hello")
        c.wait(lambda: c.done(5))
        ok = (c.streams.get(5) or {}).get("status")
    out = result(c, [1, 3])
    out["next_status"] = ok
    c.close()
    return out


def sc_flood(port, kind, n, read):
    """n SETTINGS or PING frames as fast as possible; read=1 reads the
    ACKs as they come, read=0 never reads."""
    n = int(n)
    read = read == "1"
    c = Conn(port)
    c.wait(lambda: c.settings_acks > 0, 5)
    if kind == "ping":
        frame = PingFrame(0, opaque_data=b"12345678").serialize()
    elif kind == "settings":
        frame = SettingsFrame(0).serialize()
    else:
        frame = PriorityFrame(1, depends_on=0, stream_weight=15).serialize()
    sent = 0
    deadline = time.time() + 20
    while sent < n and not c.closed and c.goaway is None \
            and time.time() < deadline:
        k = min(500, n - sent)
        w = c.send(frame * k, time.time() + (2 if read else 1))
        sent += w // len(frame)
        if w < len(frame) * k:
            if not read:
                break
        if read:
            r, _, _ = select.select([c.s], [], [], 0)
            if r:
                c.read_some()
    if read:
        c.wait(lambda: c.goaway is not None or c.closed, 5)
    else:
        # now read: either the server closed, or its ACKs are there
        c.wait(lambda: c.closed, 10)
    out = result(c)
    out["frames_sent"] = sent
    out["acks"] = c.pings if kind == "ping" else c.settings_acks
    c.close()
    return out


def sc_zero_window(port, path, hold):
    """A client that announces a window of 0 and never opens it: when do
    the stream and the connection end?"""
    hold = float(hold)
    c = Conn(port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    c.auto_window = False
    c.wait(lambda: c.settings_acks > 0, 5)
    start = time.time()
    c.request(1, "GET", path)
    c.wait(lambda: c.done(1), hold)
    t_stream = time.time() - start if c.done(1) else None
    c.wait(lambda: c.closed, hold)
    t_conn = time.time() - start if c.closed else None
    out = result(c, [1])
    out["stream_end_s"] = t_stream
    out["conn_end_s"] = t_conn
    c.close()
    return out


def sc_drain(port, path, ready_file, wait_s):
    """A request to a slow path; once its HEADERS are out, touch
    ready_file and read everything until the server closes: the GOAWAY
    and the stream's answer, in order."""
    c = Conn(port)
    c.wait(lambda: c.settings_acks > 0, 5)
    c.request(1, "GET", path)
    open(ready_file, "w").close()
    events = []
    seen_goaway = False
    deadline = time.time() + float(wait_s)
    while not c.closed and time.time() < deadline:
        r, _, _ = select.select([c.s], [], [], 0.2)
        if r:
            c.read_some()
        if c.goaway and not seen_goaway:
            seen_goaway = True
            events.append("GOAWAY")
            # a new stream after GOAWAY is not served
            c.request(3, "GET", "/hello")
        if c.done(1) and "END1" not in events:
            events.append("END1")
    out = result(c, [1, 3])
    out["events"] = events
    c.close()
    return out


def sc_idle(port, wait_s):
    """Connect, do nothing: when is the connection closed, with what?"""
    c = Conn(port)
    start = time.time()
    c.wait(lambda: c.closed, float(wait_s))
    out = result(c)
    out["closed_after_s"] = time.time() - start if c.closed else None
    c.close()
    return out


SCENARIOS = {
    "request": sc_request,
    "rapid_reset": sc_rapid_reset,
    "continuation": sc_continuation,
    "hpack_bomb": sc_hpack_bomb,
    "flood": sc_flood,
    "zero_window": sc_zero_window,
    "drain": sc_drain,
    "idle": sc_idle,
}


def main():
    port = int(sys.argv[1])
    name = sys.argv[2]
    out = SCENARIOS[name](port, *sys.argv[3:])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
