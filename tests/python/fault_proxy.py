"""A fault-injecting HTTP proxy for an S3 or WebDAV server (SeaweedFS, WsgiDAV): it forwards each
request as it came (Host header and signature untouched, so signed requests stay valid) and,
for a share of them, answers 500, resets the connection, or stalls before answering.

Which request gets which fault is a fixed function of (seed, method, path, how many times that
method and path came before), so a run is reproducible. A stall lasts `stall` seconds on a .npy
object (past the reader's deadline) and half a second elsewhere. `hard` names path fragments whose first
`hard_count` GETs (or `hard_methods`) all answer 500: a reader with fewer attempts fails that object, named.
`hard_query` does the same for requests whose decoded query string holds a fragment (an S3
listing names its folder only there: `GET /bucket?list-type=2&prefix=...`). Every
fault is logged as one JSON line (method, path, the request's number for that path, fault), so a
test can check each failure in a build's records against the faults that caused it.

`cut` = (FRAGMENT, K) cuts the K-th PUT (1-based) whose path holds FRAGMENT half-way through its
body: the headers go to the server as they came (Content-Length says the whole body), then half
the body, then the connection to the server is reset; `on_cut(record)` is called next (a test
kills the writer there, so that no retry hides what the cut left), and the client's connection
is reset last. The cut is logged with the bytes forwarded and the body's length.

Run on its own: python fault_proxy.py UPSTREAM_URL PORT LOG [--rate R] [--seed S] [--stall S]
[--hard FRAGMENT ...] [--hard-count K]."""

import argparse
import hashlib
import http.client
import http.server
import json
import socket
import struct
import subprocess
import threading
import time
import urllib.parse

FAULTS = ["500", "reset-before", "reset-after", "stall"]


class FaultProxy(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream, port, log_path, rate=0.1, seed=1, stall=6.0, hard=(),
                 hard_count=3, trace=False, hard_methods=("GET",), cut=None, on_cut=None,
                 hard_query=()):
        super().__init__(("127.0.0.1", port), _Handler)
        url = urllib.parse.urlsplit(upstream)
        self.upstream = (url.hostname, url.port)
        self.rate, self.seed, self.stall = rate, seed, stall
        self.hard, self.hard_count = list(hard), hard_count
        self.hard_query = list(hard_query)
        self.hard_methods = set(hard_methods)
        self.trace = trace
        self.cut, self.on_cut, self.cut_seen = cut, on_cut, 0
        self.counts = {}
        self.lock = threading.Lock()
        self.log = open(log_path, "a", buffering=1)

    def decide(self, method, path, query=""):
        """The fault for this request (or None) and its number for (method, path); `query` is
        the decoded query string."""
        with self.lock:
            n = self.counts.get((method, path), 0)
            self.counts[(method, path)] = n + 1
            if method == "PUT" and self.cut and self.cut[0] in path:
                self.cut_seen += 1
                if self.cut_seen == self.cut[1]:
                    return "cut-put", n
        hard = any(h in path for h in self.hard) or any(q in query for q in self.hard_query)
        if method in self.hard_methods and n < self.hard_count and hard:
            return "500", n
        digest = hashlib.sha256(f"{self.seed} {method} {path} {n}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        if u >= self.rate:
            return None, n
        return FAULTS[int(u / self.rate * len(FAULTS)) % len(FAULTS)], n

    def record(self, method, path, n, fault, client=None, **extra):
        line = json.dumps({"t": time.time(), "method": method, "path": path, "n": n,
                           "fault": fault, "client": client, **extra})
        with self.lock:
            self.log.write(line + "\n")

    def handle_error(self, request, client_address):
        pass  # a reset connection is the point, not an error to print


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _forward(self, body):
        host, port = self.server.upstream
        conn = http.client.HTTPConnection(host, port, timeout=600)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            conn.close()

    def _cut_put(self, body):
        """Forward the request line, the headers as they came and half of `body`, then reset
        the connection to the server. Returns the bytes of body forwarded."""
        part = body[:len(body) // 2]
        upstream = socket.create_connection(self.server.upstream, timeout=60)
        try:
            head = f"{self.command} {self.path} HTTP/1.1\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in self.headers.items()) + "\r\n"
            upstream.sendall(head.encode("latin-1") + part)
            time.sleep(0.5)  # the server has read what came, and waits for the rest
            upstream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        finally:
            upstream.close()
        return len(part)

    def _read_chunked(self):
        """A chunked body, de-chunked; None when the client went away mid-body."""
        parts = []
        while True:
            line = self.rfile.readline()
            if not line.endswith(b"\n"):
                return None
            size = int(line.split(b";")[0], 16)
            data = self.rfile.read(size + 2)  # the chunk and its CRLF
            if len(data) < size + 2:
                return None
            if size == 0:
                return b"".join(parts)
            parts.append(data[:size])

    def _handle(self):
        server = self.server
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            # object_store's HttpStore streams a PUT's body: forwarded with its length instead.
            body = self._read_chunked()
            if body is None:
                return self._reset()  # the client went away mid-body: forward nothing
            del self.headers["Transfer-Encoding"]
            self.headers["Content-Length"] = str(len(body))
            length = len(body)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if length and len(body) < length:
                return self._reset()  # the client went away mid-body: forward nothing
        target = urllib.parse.urlsplit(self.path)
        path, query = target.path, urllib.parse.unquote(target.query)
        fault, n = server.decide(self.command, path, query)
        if fault == "cut-put":
            forwarded = self._cut_put(body or b"")
            record = {"method": self.command, "path": path, "n": n, "fault": fault,
                      "forwarded": forwarded, "length": length}
            server.record(**record)
            if server.on_cut:
                server.on_cut(record)
            return self._reset()
        if fault or server.trace:
            server.record(self.command, path, n, fault, self.client_address[1], query=query)
        if fault == "500":
            msg = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
                   b"<Message>injected by fault_proxy</Message></Error>")
            self.send_response(500)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        if fault == "reset-before":
            return self._reset()
        if fault == "stall":
            # Long enough to pass a reader's deadline on tile reads (.npy), where a deadline is
            # what is tested; short elsewhere, where it would only make the run longer.
            time.sleep(server.stall if path.endswith(".npy") else 0.5)
        status, reason, headers, data = self._forward(body)
        if fault == "reset-after":  # the server did it, the client never hears
            return self._reset()
        self.send_response(status, reason)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        if self.command == "HEAD":
            cl = dict((k.lower(), v) for k, v in headers).get("content-length")
            if cl is not None:
                self.send_header("Content-Length", cl)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle
    # WebDAV (tests/python/webdav.py): the Destination of a MOVE or COPY names this proxy,
    # as does the Host header forwarded, so the server sees them agree.
    do_MKCOL = do_PROPFIND = do_MOVE = do_COPY = _handle


def start(upstream, port, log_path, **kw):
    """Start a proxy in a daemon thread; returns the server (call .shutdown() to stop)."""
    proxy = FaultProxy(upstream, port, log_path, **kw)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy


def read_log(log_path):
    with open(log_path) as f:
        return [json.loads(line) for line in f if line.strip()]


def build_killed_at_cut(cmd, upstream, port, log_path, fragment, env=None, **popen):
    """Run `cmd` (a build writing through a proxy on `port` in front of `upstream`) until the
    proxy cuts the 3rd PUT whose path holds `fragment` half-way, and SIGKILL it there, before
    its client can retry. Returns the cut's log record (the path, bytes forwarded, length)."""
    running = {}

    def kill_the_build(record):
        running["proc"].kill()
        running["proc"].wait()

    proxy = start(upstream, port, log_path, rate=0.0, cut=(fragment, 3), on_cut=kill_the_build)
    try:
        running["proc"] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True, **popen)
        out, err = running["proc"].communicate(timeout=600)
    finally:
        proxy.shutdown()
    cuts = [r for r in read_log(log_path) if r["fault"] == "cut-put"]
    assert len(cuts) == 1, (out, err)
    assert 0 < cuts[0]["forwarded"] < cuts[0]["length"], cuts
    assert running["proc"].returncode == -9, (out, err)  # killed at the cut, not finished
    return cuts[0]


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("upstream")
    p.add_argument("port", type=int)
    p.add_argument("log")
    p.add_argument("--rate", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--stall", type=float, default=6.0)
    p.add_argument("--hard", nargs="*", default=[])
    p.add_argument("--hard-count", type=int, default=3)
    a = p.parse_args()
    FaultProxy(a.upstream, a.port, a.log, rate=a.rate, seed=a.seed, stall=a.stall, hard=a.hard,
               hard_count=a.hard_count).serve_forever()
