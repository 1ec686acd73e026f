"""Proxies on 127.0.0.1 for the tests that need to see where a client went, or to slow it.

``RecordingProxy`` speaks the two forms clients use through ``HTTP_PROXY``/``HTTPS_PROXY``:

* ``CONNECT host:port`` (HTTPS): a tunnel, the TLS session is the client's with the target;
* ``GET http://host:port/path`` (plain HTTP, absolute form): forwarded as ``GET /path``.

It only ever connects to loopback addresses: a request for any other host is answered
``403`` and recorded, so a test that sets the proxy variables also traps a client that tries
to leave the machine (Docker Hub, a real host name). ``names`` maps host names that only the
proxy knows to 127.0.0.1 (``{"registry.test": "127.0.0.1"}``): a client that reaches such a
name can only have come through the proxy.

Every request is appended to ``requests`` as ``(method, target, forwarded)``, e.g.
``("CONNECT", "127.0.0.1:5000", True)`` or ``("GET", "http://127.0.0.1:5000/v2/", True)``.
After its first request a connection is passed through as bytes (clients here send one
request per connection, urllib always does).

``ThrottlingProxy`` is a plain TCP relay in front of one loopback port that passes at most
``rate`` bytes a second back to the client, so that a test can stop a registry in the
middle of a layer; it records the request lines (and Range headers) clients sent.
"""

import ipaddress
import re
import socket
import threading
import time

IDLE_TIMEOUT = 60  # seconds a connection may stay silent before the proxy drops it


def set_proxy_env(monkeypatch, http=None, https=None, no_proxy=None):
    """Set (or, for None, remove) the proxy variables in both spellings, as clients read
    either (Python prefers the lower-case one, Go the upper-case one)."""
    for name, value in (("http_proxy", http), ("https_proxy", https), ("no_proxy", no_proxy)):
        for key in (name, name.upper()):
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)


class _Listener:
    """A listening socket on 127.0.0.1 whose connections ``_serve`` handles, a thread each."""

    def __init__(self):
        self.requests = []
        self._lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(32)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        raise NotImplementedError

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RecordingProxy(_Listener):
    def __init__(self, names=None):
        self.names = dict(names or {})
        super().__init__()

    # -- what the tests read

    def seen(self, method=None):
        """The targets of the requests so far (of ``method`` only, if given)."""
        with self._lock:
            return [t for m, t, _ in self.requests if method is None or m == method]

    def refused(self):
        with self._lock:
            return [(m, t) for m, t, ok in self.requests if not ok]

    # -- serving

    def _address(self, host):
        """127.0.0.1 for a loopback host or a name in ``names``; None for anything else."""
        host = self.names.get(host, host)
        if host == "localhost":
            return "127.0.0.1"
        try:
            return host if ipaddress.ip_address(host.strip("[]")).is_loopback else None
        except ValueError:
            return None

    def _serve(self, client):
        upstream = None
        try:
            client.settimeout(IDLE_TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head:
                data = client.recv(65536)
                if not data:
                    return
                head += data
                if len(head) > 1 << 16:
                    return
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.decode("latin-1").split(" ", 2)
            if method == "CONNECT":
                hostport = target
            elif target.startswith("http://"):
                hostport = target[len("http://"):].split("/", 1)[0]
            else:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            host, _, port = hostport.rpartition(":")
            address = self._address(host) if port.isdigit() else None
            with self._lock:
                self.requests.append((method, target, address is not None))
            if address is None:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            upstream = socket.create_connection((address, int(port)), timeout=IDLE_TIMEOUT)
            if method == "CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                first = rest.partition(b"\r\n\r\n")[2]  # anything the client sent after the head
            else:
                path = "/" + target[len("http://"):].partition("/")[2]
                first = ("%s %s %s\r\n" % (method, path, version)).encode("latin-1") + rest
            if first:
                upstream.sendall(first)
            back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
            back.start()
            self._pipe(client, upstream)
            back.join(IDLE_TIMEOUT)
        except (OSError, ValueError):
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass


class ThrottlingProxy(_Listener):
    """See the module docstring; ``requests`` holds strings such as ``"GET /v2/"`` and
    ``"Range: bytes=100-"``."""

    def __init__(self, target_port: int, rate: int):
        self.rate, self.target = rate, ("127.0.0.1", target_port)
        super().__init__()

    def _serve(self, client):
        try:
            upstream = socket.create_connection(self.target)
        except OSError:
            client.close()
            return
        threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
        self._pipe(upstream, client, self.rate)

    def _pipe(self, src, dst, rate):
        try:
            while True:
                data = src.recv(65536 if rate is None else max(1, rate // 20))
                if not data:
                    break
                if rate is None:  # client to registry: requests are small, one per recv
                    found = [m.decode() for m in re.findall(rb"(?:GET|HEAD) \S+|[Rr]ange: \S+", data)]
                    with self._lock:
                        self.requests += found
                dst.sendall(data)
                if rate:
                    time.sleep(len(data) / rate)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass
