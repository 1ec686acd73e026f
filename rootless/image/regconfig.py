"""Registry configuration, TLS and the one HTTP helper every registry request goes through.

The configuration file is ``$XDG_CONFIG_HOME/rootless/registries.json`` (default
``~/.config/rootless/registries.json``) and borrows its keys from Docker's daemon.json, so a
user can copy theirs (keys we do not know are ignored, as such a copy has many)::

    {
      "registry-mirrors": ["https://mirror.example.com"],
      "insecure-registries": ["myregistry:5000", "10.0.0.0/8"],
      "cert-dir": "~/.config/rootless/certs.d",
      "timeout": 30,
      "retries": 3
    }

A missing file means the defaults; a malformed one is an error naming the file (a typo
must not silently turn TLS verification back on or off).

``http_request``/``http_get`` never raise for an HTTP status: registries answer 401, 404
and 3xx as part of the protocol, and the caller decides. They raise ``ConnectionFailed`` when
no answer came. They refuse every URL scheme but http and https (urllib would otherwise open
``file://`` for a hostile token realm or redirect), and on redirects to another host they
drop the ``Authorization`` header: blob downloads are redirected to a CDN or an object
store, which must not see the registry's token (and S3 rejects a second auth mechanism).

Nothing here imports ssl or urllib at module level: ``auth`` imports this module for
``config_dir`` and ``normalize_host``, and the CLI should pay for TLS only when it talks to a
registry.
"""

import os
from typing import Dict, List, Optional, Tuple

from rootless import jsonfast
from rootless.errors import RootlessError, UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
# What http_get reads into memory at most: manifests are limited to 4 MiB by registries;
# a hostile or broken server must not make us allocate without bound.
MAX_BODY = 64 << 20


class ConnectionFailed(RootlessError):
    """No HTTP answer: DNS, refused connection, TLS failure, time-out, reset.

    ``certificate_error`` is true when the server's certificate did not verify, so that the
    caller can point at cert-dir or insecure-registries; ``tls_error`` when the TLS
    handshake failed otherwise (a server that speaks plain HTTP, say)."""

    def __init__(self, message: str, url: str = "", certificate_error: bool = False, tls_error: bool = False):
        super().__init__(message)
        self.url, self.certificate_error, self.tls_error = url, certificate_error, tls_error


# -- paths and names ----------------------------------------------------------------------------

def config_dir(env=None) -> str:
    """``$XDG_CONFIG_HOME/rootless`` (``~/.config/rootless``): the user's rootless settings."""
    env = os.environ if env is None else env
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"), "rootless")


def config_file(env=None) -> str:
    return os.path.join(config_dir(env), "registries.json")


def default_cert_dir(env=None) -> str:
    return os.path.join(config_dir(env), "certs.d")


def normalize_host(server: str) -> str:
    """A registry as the user may write it -> the host[:port] we key everything by.

    ``https://Registry.example.com/v2/`` -> ``registry.example.com``; the Docker Hub names
    (``docker.io``, ``index.docker.io``, ``registry-1.docker.io``, Docker's
    ``https://index.docker.io/v1/``) all become ``docker.io``, as in image references."""
    text = (server or "").strip()
    lowered = text.lower()
    for prefix in ("https://", "http://"):
        if lowered.startswith(prefix):
            text = text[len(prefix):]
            break
    host = text.split("/", 1)[0].lower()
    if not host or any(c.isspace() or ord(c) < 32 or c in "@?#\\\"'" for c in host) or len(host) > 255:
        raise UsageError("invalid registry server %r: expected a host name, host:port or URL" % server[:100])
    return DOCKER_HUB if host in DOCKER_HUB_ALIASES else host


def api_host(host: str) -> str:
    """The host that serves the registry API: Docker Hub's is ``registry-1.docker.io``."""
    host = normalize_host(host)
    return DOCKER_HUB_API if host == DOCKER_HUB else host


def split_port(host: str) -> Tuple[str, str]:
    """``h:5000`` -> (h, 5000); ``[::1]:5000`` -> (::1, 5000); a bare IPv6 address has no port."""
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return host, ""
        return host[1:end], host[end + 2:] if host[end + 1:end + 2] == ":" else ""
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, port
    return host, ""


# -- the configuration --------------------------------------------------------------------------

class RegistryConfig:
    """What registries.json says (or the defaults).

    Insecure registries: only what ``insecure-registries`` lists (``host[:port]``, matched
    exactly, port included, or a CIDR) may use plain HTTP or unverified HTTPS; ``--tls-verify``
    overrides the list for one command. Docker also treats ``localhost``, 127.0.0.0/8 and ::1
    as insecure without being told; we decided not to: on a shared machine (an HPC login
    node) a port on localhost can be opened by any user, so a registry there deserves the same
    verification as any other unless its owner lists it or passes ``--tls-verify=false``.

    A CIDR entry matches registries named by an IP address only. We do not resolve host
    names to match them (Docker does): a spoofed DNS answer could then turn TLS verification
    off for a public registry.

    A plain class, not a dataclass (start-up cost; see rootless.cli.Context).
    """

    __slots__ = ("path", "registry_mirrors", "insecure_registries", "cert_dir", "timeout",
                 "retries", "_contexts")

    def __init__(self, registry_mirrors=(), insecure_registries=(), cert_dir: Optional[str] = None,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 path: Optional[str] = None, env=None):
        self.path = path
        self.registry_mirrors = [_check_mirror(m, path or "registry-mirrors") for m in registry_mirrors]
        self.insecure_registries = [_check_insecure(e, path or "insecure-registries") for e in insecure_registries]
        self.cert_dir = cert_dir or default_cert_dir(env)
        self.timeout, self.retries = float(timeout), int(retries)
        self._contexts = {}

    def __repr__(self) -> str:
        return ("RegistryConfig(path=%r, registry_mirrors=%r, insecure_registries=%r, cert_dir=%r, "
                "timeout=%r, retries=%r)" % (self.path, self.registry_mirrors, self.insecure_registries,
                                             self.cert_dir, self.timeout, self.retries))

    @classmethod
    def load(cls, env=None, path: Optional[str] = None) -> "RegistryConfig":
        """Read ``path`` (default ``config_file(env)``); a missing file gives the defaults."""
        path = path or config_file(env)
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return cls(path=None, env=env)
        except OSError as e:
            raise UsageError("cannot read registry configuration %s: %s" % (path, e.strerror or e))
        try:
            data = jsonfast.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise UsageError("invalid registry configuration %s: not UTF-8 text" % path)
        except ValueError as e:
            raise UsageError("invalid JSON in registry configuration %s: %s" % (path, e))
        if not isinstance(data, dict):
            raise UsageError("invalid registry configuration %s: expected a JSON object" % path)
        mirrors = _string_list(data, "registry-mirrors", path)
        insecure = _string_list(data, "insecure-registries", path)
        cert_dir = data.get("cert-dir")
        if cert_dir is not None:
            if not isinstance(cert_dir, str) or not cert_dir:
                raise UsageError("invalid registry configuration %s: \"cert-dir\" must be a directory name" % path)
            cert_dir = _expand(cert_dir, os.path.dirname(os.path.abspath(path)), env)
        timeout = data.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 86400:
            raise UsageError("invalid registry configuration %s: \"timeout\" must be a number of "
                             "seconds above 0" % path)
        retries = data.get("retries", DEFAULT_RETRIES)
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
            raise UsageError("invalid registry configuration %s: \"retries\" must be a whole number "
                             "from 0 to 100" % path)
        return cls(mirrors, insecure, cert_dir, timeout, retries, path=path, env=env)

    def insecure(self, host: str) -> bool:
        """Whether ``host`` is listed in insecure-registries (see the class docstring)."""
        host = normalize_host(host)
        address = None
        for entry in self.insecure_registries:
            if "/" in entry:
                if address is None:
                    address = ip_address(split_port(host)[0]) or False
                if address and in_network(address, entry):
                    return True
            elif entry == host:
                return True
        return False

    def mirrors(self, host: str) -> List[str]:
        """Base URLs to try before the registry itself: Docker applies mirrors to Docker Hub only."""
        return list(self.registry_mirrors) if normalize_host(host) == DOCKER_HUB else []

    def ssl_context(self, host: str, cert_dir: Optional[str] = None, verify: bool = True):
        """An ``ssl.SSLContext`` for ``host``: the system CAs plus the host's own.

        The host's certificates come from ``<cert-dir>/<host[:port]>/`` as in Docker's
        certs.d: every ``*.crt`` is a CA, every ``X.cert`` with its ``X.key`` a client
        certificate. An explicit ``cert_dir`` (``--cert-dir``) may be laid out the same way or
        be the host's directory itself, as podman's ``--cert-dir`` is. ``verify=False`` turns
        off certificate and host name checks (a client certificate is still presented)."""
        key = (normalize_host(host), cert_dir, bool(verify))
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = self._contexts[key] = _make_context(self._host_dirs(host, cert_dir), verify)
        return ctx

    def endpoints(self, host: str, tls_verify: Optional[bool] = None, cert_dir: Optional[str] = None,
                  mirrors: bool = False) -> List[Tuple[str, object]]:
        """The base URLs (no trailing slash) to try in order, each with its SSL context
        (None for plain HTTP).

        A host that must be verified (``tls_verify`` true, or None and not listed insecure)
        gets HTTPS only. Otherwise: HTTPS without verification, then HTTP. ``mirrors=True``
        (for pulls; never for pushes) puts Docker Hub's mirrors first, each with its own
        scheme and its own insecure-registries entry."""
        result = []
        if mirrors:
            for url in self.mirrors(host):
                if url.startswith("http://"):
                    result.append((url, None))
                else:
                    mirror = normalize_host(url)
                    result.append((url, self.ssl_context(mirror, None, not self.insecure(mirror))))
        verify = (not self.insecure(host)) if tls_verify is None else bool(tls_verify)
        base = api_host(host)
        if verify:
            result.append(("https://" + base, self.ssl_context(host, cert_dir, True)))
        else:
            result.append(("https://" + base, self.ssl_context(host, cert_dir, False)))
            result.append(("http://" + base, None))
        return result

    def _host_dirs(self, host: str, cert_dir: Optional[str]) -> List[str]:
        host = normalize_host(host)
        names = []
        for name in (host, api_host(host)):
            if name not in names and name not in (".", "..") and "/" not in name and "\0" not in name:
                names.append(name)
        if cert_dir:
            nested = [os.path.join(cert_dir, n) for n in names if os.path.isdir(os.path.join(cert_dir, n))]
            return nested or [cert_dir]
        return [os.path.join(self.cert_dir, n) for n in names]


def _string_list(data: dict, key: str, path: str) -> List[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError("invalid registry configuration %s: %r must be a list of strings" % (path, key))
    return value


def _expand(name: str, base: str, env) -> str:
    env = os.environ if env is None else env
    if name == "~" or name.startswith("~/"):
        name = (env.get("HOME") or os.path.expanduser("~")) + name[1:]
    return os.path.normpath(os.path.join(base, name))


def _check_mirror(url: str, where: str) -> str:
    from urllib.parse import urlsplit
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        parts = None
    # The message never repeats the URL: it could hold a password (user:secret@host).
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("invalid registry mirror in %s: expected http(s)://host[:port][/path]" % where)
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise UsageError("invalid registry mirror in %s: a mirror URL may not contain credentials, "
                         "a query or a fragment (use rootless login for credentials)" % where)
    return "%s://%s%s" % (parts.scheme, parts.netloc.lower(), parts.path.rstrip("/"))


def _check_insecure(entry: str, where: str) -> str:
    entry = entry.strip()
    if "/" in entry and "://" not in entry:
        if _network(entry) is None:
            raise UsageError("invalid insecure registry %r in %s: not host[:port] or a CIDR" % (entry[:100], where))
        return entry
    try:
        return normalize_host(entry)
    except UsageError:
        raise UsageError("invalid insecure registry %r in %s: not host[:port] or a CIDR" % (entry[:100], where))


def ip_address(text: str):
    import ipaddress
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _network(text: str):
    import ipaddress
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def in_network(address, cidr: str) -> bool:
    network = _network(cidr)
    return network is not None and address.version == network.version and address in network


def _make_context(host_dirs: List[str], verify: bool):
    import ssl
    if verify:
        ctx = ssl.create_default_context()
    else:
        # Nothing is verified, so the system's CA bundle is not loaded: parsing it costs
        # about 50 ms, a quarter of a whole pull from a local insecure registry.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    for directory in host_dirs:
        try:
            names = sorted(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as e:
            raise UsageError("cannot read certificate directory %s: %s" % (directory, e.strerror or e))
        for name in names:
            path = os.path.join(directory, name)
            if name.endswith(".crt") and verify:
                try:
                    ctx.load_verify_locations(cafile=path)
                except (ssl.SSLError, OSError, ValueError) as e:
                    raise UsageError("cannot load CA certificate %s: %s" % (path, _ssl_reason(e)))
            elif name.endswith(".cert"):
                key = path[:-len(".cert")] + ".key"
                if not os.path.exists(key):
                    raise UsageError("client certificate %s has no key %s" % (path, os.path.basename(key)))
                try:
                    # An empty password: an encrypted key fails instead of prompting.
                    ctx.load_cert_chain(path, key, password=lambda: b"")
                except (ssl.SSLError, OSError, ValueError) as e:
                    raise UsageError("cannot load client certificate %s with %s: %s"
                                     % (path, os.path.basename(key), _ssl_reason(e)))
            elif name.endswith(".key") and not os.path.exists(path[:-len(".key")] + ".cert"):
                raise UsageError("client key %s has no certificate %s"
                                 % (path, os.path.basename(path[:-len(".key")] + ".cert")))
    return ctx


def _ssl_reason(e: Exception) -> str:
    return getattr(e, "reason", None) or getattr(e, "strerror", None) or str(e).split("\n")[0]


# -- HTTP ---------------------------------------------------------------------------------------

class Headers(dict):
    """Response headers with case-insensitive names (stored lower-case); a header sent more
    than once (``WWW-Authenticate``) has its values joined with ", ", as RFC 9110 allows."""

    def __init__(self, items=()):
        super().__init__()
        for name, value in (items.items() if isinstance(items, dict) else items):
            name = name.lower()
            super().__setitem__(name, dict.get(self, name) + ", " + value if name in self else value)

    def __getitem__(self, name):
        return super().__getitem__(name.lower())

    def __setitem__(self, name, value):
        super().__setitem__(name.lower(), value)

    def __contains__(self, name):
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name, default=None):
        return super().get(name.lower(), default)


class Response:
    """An HTTP answer of any status: ``status``, ``headers`` (Headers), ``url`` (after
    redirects), and ``read``/``close`` on the body. A context manager."""

    __slots__ = ("status", "headers", "url", "_fp")

    def __init__(self, status: int, headers: Headers, url: str, fp):
        self.status, self.headers, self.url, self._fp = status, headers, url, fp

    def read(self, n: int = -1) -> bytes:
        if self._fp is None:
            return b""
        import http.client
        try:
            return self._fp.read(n)
        except (OSError, http.client.HTTPException, ValueError) as e:  # time-out, reset, short read
            raise ConnectionFailed("error reading the answer of %s: %s" % (self.url, _reason(e)), self.url)

    def close(self) -> None:
        if self._fp is not None:
            self._fp.close()
            self._fp = None

    def __enter__(self) -> "Response":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return "Response(status=%d, url=%r)" % (self.status, self.url)


def http_request(url: str, headers: Optional[Dict[str, str]] = None, context=None,
                 timeout: float = DEFAULT_TIMEOUT, method: str = "GET",
                 data: Optional[bytes] = None) -> Response:
    """Send one request and return the Response whatever its HTTP status.

    ``context`` is the ``ssl.SSLContext`` for https (None: the system default). GET and HEAD
    follow redirects (301, 302, 303, 307, 308) to http(s) URLs only, keeping ``Authorization``
    for the same scheme, host and port (or an upgrade to https) and dropping it otherwise;
    other methods get the 3xx back. ``data`` may be bytes or a file object (then pass
    Content-Length in ``headers``). Raises ConnectionFailed when there is no answer."""
    import http.client
    import urllib.error
    import urllib.request
    from rootless.image import proxy
    scheme = url.split(":", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise UsageError("refusing to fetch %r: only http and https URLs are allowed" % url[:200])
    handlers = [_redirect_handler(), proxy.handler()]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    headers = dict(headers or {})
    if not any(k.lower() == "user-agent" for k in headers):
        from rootless import __version__
        headers["User-Agent"] = "rootless/" + __version__
    try:
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        fp = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        return Response(e.code, Headers((e.headers or {}).items()), e.geturl() or url, e)
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        import ssl
        reason = getattr(e, "reason", e)
        bad_cert = isinstance(reason, ssl.SSLCertVerificationError)
        if isinstance(e, ValueError) and not isinstance(e, http.client.InvalidURL):
            # e.g. "Invalid header value ...": the value may be a credential; do not repeat it.
            raise ConnectionFailed("cannot send the request to %s: invalid URL or header" % url, url)
        raise ConnectionFailed("cannot connect to %s: %s" % (url, _reason(e)), url, bad_cert,
                               isinstance(reason, ssl.SSLError) and not bad_cert)
    return Response(fp.status, Headers(fp.headers.items()), fp.geturl(), fp)


def http_get(url: str, headers: Optional[Dict[str, str]] = None, context=None,
             timeout: float = DEFAULT_TIMEOUT, max_body: Optional[int] = MAX_BODY) -> Tuple[int, Headers, bytes]:
    """GET ``url`` -> (status, headers, body), without raising for 4xx/5xx (see http_request).

    The body is read into memory, at most ``max_body`` bytes (None: no limit); stream large
    blobs with http_request instead. This is the ``opener`` an ``auth.Authenticator`` wants:
    ``lambda u, h: http_get(u, h, ctx, timeout)``."""
    with http_request(url, headers, context, timeout) as response:
        if max_body is None:
            body = response.read()
        else:
            body = response.read(max_body + 1)
            if len(body) > max_body:
                raise RootlessError("the answer of %s is larger than %d bytes" % (response.url, max_body))
        return response.status, response.headers, body


def _reason(e: BaseException) -> str:
    """One line saying why a request got no answer (never a header value: we send none here)."""
    import socket
    import ssl
    reason = getattr(e, "reason", None)
    if isinstance(reason, BaseException):
        e = reason
    elif isinstance(reason, str) and not isinstance(e, ssl.SSLError):
        return " ".join(reason.split())
    if isinstance(e, socket.timeout):
        return "timed out"
    if isinstance(e, ssl.SSLCertVerificationError):
        return "certificate verify failed: %s" % e.verify_message
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(str(text).split())


_redirect_class = None


def _redirect_handler():
    """A urllib redirect handler: GET/HEAD only, to http(s) only, and ``Authorization``
    kept only for the same scheme, host and port (or an upgrade of the same host to https).

    The class is made on first use so that importing this module does not import urllib."""
    global _redirect_class
    if _redirect_class is None:
        import urllib.request
        from urllib.parse import urlsplit

        class RedirectHandler(urllib.request.HTTPRedirectHandler):
            # Python 3.8 does not follow 308 (3.11 does); registries use it.
            http_error_308 = urllib.request.HTTPRedirectHandler.http_error_302

            def redirect_request(self, req, fp, code, msg, headers, newurl):
                if code not in (301, 302, 303, 307, 308) or req.get_method() not in ("GET", "HEAD"):
                    return None  # urllib then hands the 3xx to the caller as an answer
                new, old = urlsplit(newurl), urlsplit(req.full_url)
                if new.scheme not in ("http", "https") or not new.hostname:
                    return None
                same = (new.scheme, new.netloc.lower()) == (old.scheme, old.netloc.lower())
                upgrade = (old.scheme, new.scheme) == ("http", "https") and new.hostname == old.hostname
                kept = {k: v for k, v in req.headers.items()
                        if k.lower() not in ("content-length", "content-type")
                        and (same or upgrade or k.lower() != "authorization")}
                return urllib.request.Request(newurl.replace(" ", "%20"), headers=kept,
                                              origin_req_host=req.origin_req_host, unverifiable=True,
                                              method=req.get_method())

        _redirect_class = RedirectHandler
    return _redirect_class()
