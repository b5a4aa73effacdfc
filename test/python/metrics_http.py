"""Helpers of the Prometheus endpoint tests: raw HTTP/1.1 over sockets
(so that a test says exactly which bytes go out), the text format read
back into samples, and a server configured with the endpoint on a free
port."""

import re
import socket
import time

from pgserver import free_port

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def metrics_conf(port, timeout_ms=None):
    conf = {"streamlog.metrics_listen": f"127.0.0.1:{port}"}
    if timeout_ms is not None:
        conf["streamlog.metrics_request_timeout"] = timeout_ms
    return conf


def start_with_endpoint(make_server, timeout_ms=None, conf=None):
    """A server with the endpoint on a free port; (server, port)"""
    port = free_port()
    c = metrics_conf(port, timeout_ms)
    c.update(conf or {})
    srv = make_server(conf=c)
    wait_listening(port)
    return srv, port


def wait_listening(port, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class Reader:
    """HTTP responses read one after the other from a socket, keeping what
    came after one for the next (pipelined answers arrive together)"""

    def __init__(self, sock, timeout=30):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    def _more(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def response(self, head_only=False):
        """(status, headers dict, body bytes); None if the server closed first"""
        while b"\r\n\r\n" not in self.buf:
            if not self._more():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            if not self._more():
                break
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body


def read_response(sock, timeout=30, head_only=False):
    """One HTTP response from sock (nothing must follow it)"""
    return Reader(sock, timeout).response(head_only)


def closed_by_server(sock, timeout=60):
    """Did the server close sock (EOF, or a reset for bytes it left unread)?"""
    sock.settimeout(timeout)
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def request(port, raw, timeout=30):
    """Send raw bytes on a new connection, read one response"""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(raw)
        return read_response(s, timeout)


def get(port, path="/metrics", accept=None, method="GET"):
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
    if accept:
        head += f"Accept: {accept}\r\n"
    return request(port, (head + "\r\n").encode())


def parse_samples(text):
    """{(name, frozenset(labels.items())): value} of an exposition"""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = dict((k, v) for k, v in LABEL_RE.findall(m.group(3) or ""))
        samples[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return samples


def value(samples, name, **labels):
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


def scrape(port, accept=None):
    status, headers, body = get(port, accept=accept)
    assert status == 200, (status, body[:200])
    return parse_samples(body.decode())
