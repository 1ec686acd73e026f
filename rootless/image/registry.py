"""A client of the registry HTTP API v2 (the OCI distribution spec), stdlib only.

One ``Client`` talks to one registry host for one command. Every request goes through
``request()``, which:

* tries the host's endpoints in order (HTTPS; for a registry configured as insecure, or
  with ``--tls-verify=false``, HTTPS without verification and then plain HTTP), and for
  docker.io the configured mirrors first (pulls only);
* answers a 401 by asking ``auth.Authenticator`` for an ``Authorization`` header for the
  request's scope and retrying once; the header is never sent on to a redirect target
  (blob downloads are redirected to storage hosts);
* retries connection failures and 5xx answers with exponential backoff, and honours
  ``Retry-After`` on 429;
* turns what is left into one-line errors that say what happened and what to do.
"""

import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, List, Optional, Tuple

from rootless import __version__, jsonfast
from rootless.errors import NotFound, RootlessError, Unsupported
from rootless.image import manifest as mf

ACCEPT_MANIFESTS = ", ".join([mf.OCI_INDEX, mf.DOCKER_LIST, mf.OCI_MANIFEST, mf.DOCKER_MANIFEST])
_USER_AGENT = "rootless/" + __version__
SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
           "application/vnd.docker.distribution.manifest.v1+prettyjws")


class RegistryError(RootlessError):
    """A registry answered, but not with what we asked for."""


class Response:
    """status, headers (lower-case keys) and the open body of one HTTP answer."""

    def __init__(self, status: int, headers: Dict[str, str], body, url: str):
        self.status, self.headers, self.body, self.url = status, headers, body, url

    def read(self, n: int = -1) -> bytes:
        return self.body.read(n)

    def close(self) -> None:
        self.body.close()


class _NoAuthOnRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects (blob downloads) without carrying our credentials along."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise RegistryError("%s redirected to %s, which is not HTTP(S); refusing it"
                                % (urllib.parse.urlsplit(req.full_url).netloc, newurl.split("?")[0]))
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None:
            new.remove_header("Authorization")
        return new


class Client:
    def __init__(self, host: str, config=None, tls_verify: Optional[bool] = None,
                 cert_dir: Optional[str] = None, credentials=None, debug=None, for_push: bool = False):
        from rootless.image import auth, regconfig
        self.host, self.tls_verify, self.cert_dir = host, tls_verify, cert_dir
        self.config = config or regconfig.RegistryConfig.load()
        self.debug = debug or (lambda msg: None)
        self.timeout = self.config.timeout
        self.retries = self.config.retries
        # Docker Hub's mirrors come first for pulls (never for pushes); the API host of
        # docker.io is registry-1.docker.io (regconfig knows both).
        self.endpoints: List[Tuple[str, Optional[ssl.SSLContext]]] = self.config.endpoints(
            host, tls_verify, cert_dir=cert_dir, mirrors=not for_push)
        self._good: Optional[int] = None  # index of the endpoint that answered
        creds = credentials if credentials is not None else auth.get_credentials(host)
        self.auth = auth.Authenticator(host, creds, self._plain_get)
        self._headers: Dict[str, str] = {}  # scope -> Authorization value
        self._openers: Dict[int, urllib.request.OpenerDirector] = {}

    # -- transport ----------------------------------------------------------------------

    def _opener(self, index: int) -> urllib.request.OpenerDirector:
        if index not in self._openers:
            ctx = self.endpoints[index][1]
            from rootless.image import proxy
            handlers = [_NoAuthOnRedirect(), proxy.handler()]
            if ctx is not None:
                handlers.append(urllib.request.HTTPSHandler(context=ctx))
            opener = urllib.request.build_opener(*handlers)
            # Registries, mirrors and their logs see who asks (regconfig's requests say so too),
            # on redirects as well: urllib's default would be "Python-urllib/3.x".
            opener.addheaders = [("User-Agent", _USER_AGENT)]
            self._openers[index] = opener
        return self._openers[index]

    def _plain_get(self, url: str, headers: Dict[str, str]):
        """GET an absolute URL (the token server); (status, headers, body bytes)."""
        parsed = urllib.parse.urlsplit(url)
        # The token server is trusted as the registry is, as podman does: the registry's
        # CAs (its certs.d entry or --cert-dir, plus the system's) and its verification
        # setting; host names are still checked against the token server's own name.
        verify = self.tls_verify if self.tls_verify is not None else not self.config.insecure(self.host)
        ctx = self.config.ssl_context(self.host, self.cert_dir, verify) if parsed.scheme == "https" else None
        from rootless.image.regconfig import http_get
        return http_get(url, headers, ctx, self.timeout, max_body=1 << 20)

    def request(self, method: str, path: str, scope: str, headers: Optional[Dict[str, str]] = None,
                data=None, ok=(200,), stream: bool = False) -> Response:
        """One API call (``path`` below /v2/, or an absolute upload URL)."""
        headers = dict(headers or {})
        attempt, authed = 0, False
        while True:
            try:
                resp = self._send(method, path, scope, headers, data)
            except _Unreachable as e:
                attempt += 1
                if attempt > self.retries:
                    raise e.error
                time.sleep(min(0.2 * 2 ** attempt, 5))
                continue
            if resp.status == 401 and not authed:
                challenge = resp.headers.get("www-authenticate", "")
                resp.close()
                value = self.auth.authorization(challenge, scope.split() if " " in scope else scope)
                if value is None:
                    raise _unauthorized(self.host, scope, bool(self.auth.credentials))
                self._headers[scope] = value
                authed = True
                continue
            if resp.status == 429 or resp.status >= 500:
                attempt += 1
                if attempt <= self.retries:
                    wait = _retry_after(resp.headers.get("retry-after"), 0.5 * 2 ** attempt)
                    resp.close()
                    self.debug("%s %s: %d, retrying in %.1fs" % (method, path, resp.status, wait))
                    time.sleep(wait)
                    continue
                if resp.status == 429:
                    resp.close()
                    raise RegistryError("rate limited by %s (429 Too Many Requests); wait and try again, "
                                        "or log in (rootless login %s)" % (self.host, self.host))
            if resp.status in ok:
                if not stream and method != "HEAD":
                    body = resp.read(mf.MAX_JSON + 1)
                    resp.close()
                    resp.body = _Bytes(body)
                return resp
            return self._fail(resp, method, path, scope)

    def _send(self, method, path, scope, headers, data) -> Response:
        order = [self._good] if self._good is not None else list(range(len(self.endpoints)))
        last: Optional[BaseException] = None
        for index in order:
            base = self.endpoints[index][0]
            url = path if path.startswith(("http://", "https://")) else base + "/v2/" + path
            req = urllib.request.Request(url, data=data, method=method, headers=headers)
            if scope in self._headers:
                req.add_unredirected_header("Authorization", self._headers[scope])
            try:
                r = self._opener(index).open(req, timeout=self.timeout)
                resp = Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r, r.geturl())
            except urllib.error.HTTPError as e:
                resp = Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e, url)
            except (urllib.error.URLError, OSError, ssl.SSLError) as e:
                last = e
                self.debug("%s %s: %s" % (method, url, _reason(e)))
                continue
            if self._good is None:
                self._good = index
                self.debug("using %s for %s" % (base, self.host))
            return resp
        raise _Unreachable(_connect_error(self.host, last))

    def _fail(self, resp: Response, method: str, path: str, scope: str):
        body = resp.read(1 << 16)
        resp.close()
        code = ""
        try:
            errors = jsonfast.loads(body.decode()).get("errors") or []
            code = errors[0].get("code", "") if errors else ""
            detail = errors[0].get("message", "") if errors else ""
        except (ValueError, AttributeError, UnicodeDecodeError):
            detail = ""
        if resp.status == 401 or code in ("UNAUTHORIZED", "DENIED") or resp.status == 403:
            raise _unauthorized(self.host, scope, bool(self.auth.credentials))
        if resp.status == 404:
            what = {"MANIFEST_UNKNOWN": "manifest unknown", "NAME_UNKNOWN": "repository name not known",
                    "BLOB_UNKNOWN": "blob unknown"}.get(code, "not found")
            raise NotFound("%s: %s %s (%s)" % (self.host, method, path.split("?")[0], what))
        raise RegistryError("%s: %s %s failed: %d %s" % (self.host, method, path.split("?")[0], resp.status,
                                                        detail or code or "unexpected answer"))

    # -- the API ------------------------------------------------------------------------

    def manifest(self, repo: str, ref: str) -> Tuple[bytes, str, str]:
        """(bytes, media type, digest) of a manifest or index, verified."""
        resp = self.request("GET", "%s/manifests/%s" % (repo, ref), _scope(repo, "pull"),
                            {"Accept": ACCEPT_MANIFESTS})
        data = resp.read()
        media = resp.headers.get("content-type", "").split(";")[0].strip()
        if media in SCHEMA1 or b'"schemaVersion": 1' in data[:200] or b'"schemaVersion":1' in data[:200]:
            raise Unsupported("%s/%s:%s uses the Docker image manifest schema 1, which is deprecated and "
                              "not supported; push the image again with a current tool" % (self.host, repo, ref))
        if len(data) > mf.MAX_JSON:
            raise RegistryError("manifest of %s is larger than %d bytes" % (repo, mf.MAX_JSON))
        digest = mf.sha256(data)
        expected = ref if ref.startswith("sha256:") else resp.headers.get("docker-content-digest")
        if expected and expected.startswith("sha256:") and expected != digest:
            from rootless.errors import DigestMismatch
            raise DigestMismatch("manifest of %s:%s is %s but the registry says %s; refusing it"
                                 % (repo, ref, digest, expected))
        if not media:
            media = jsonfast.loads(data.decode()).get("mediaType", "")
        return data, media, digest

    def blob(self, repo: str, digest: str, offset: int = 0) -> Response:
        """A streaming GET of a blob, from ``offset`` when the registry supports ranges
        (check ``status``: 206 resumed, 200 from the start)."""
        headers = {"Range": "bytes=%d-" % offset} if offset else {}
        return self.request("GET", "%s/blobs/%s" % (repo, digest), _scope(repo, "pull"), headers,
                            ok=(200, 206), stream=True)

    def blob_bytes(self, repo: str, digest: str, limit: int = mf.MAX_JSON) -> bytes:
        resp = self.blob(repo, digest)
        try:
            data = resp.read(limit + 1)
        finally:
            resp.close()
        if len(data) > limit:
            raise RegistryError("blob %s is larger than %d bytes" % (digest, limit))
        if mf.sha256(data) != digest:
            from rootless.errors import DigestMismatch
            raise DigestMismatch("blob %s of %s has the wrong content (digest %s); refusing it"
                                 % (digest, repo, mf.sha256(data)))
        return data

    def has_blob(self, repo: str, digest: str) -> bool:
        try:
            self.request("HEAD", "%s/blobs/%s" % (repo, digest), _scope(repo, "pull,push"), ok=(200,))
            return True
        except NotFound:
            return False


class _Bytes:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self.data) if n is None or n < 0 else self.pos + n
        chunk = self.data[self.pos:end]
        self.pos += len(chunk)
        return chunk

    def close(self) -> None:
        pass


class _Unreachable(Exception):
    def __init__(self, error: RootlessError):
        super().__init__(str(error))
        self.error = error


def _scope(repo: str, actions: str) -> str:
    return "repository:%s:%s" % (repo, actions)


def _unauthorized(host: str, scope: str, had_credentials: bool) -> RootlessError:
    from rootless.image.auth import Unauthorized
    what = scope.split(":")[1] if scope.count(":") >= 2 else host
    if had_credentials:
        return Unauthorized("unauthorized: %s refused access to %s with the stored credentials "
                            "(check the name, or log in again: rootless login %s)" % (host, what, host))
    return Unauthorized("unauthorized: %s requires authentication for %s, or the repository does not "
                        "exist (rootless login %s)" % (host, what, host))


def _retry_after(value: Optional[str], default: float) -> float:
    if value:
        try:
            return min(float(value), 60.0)
        except ValueError:
            pass
    return min(default, 10.0)


def _reason(e: BaseException) -> str:
    reason = getattr(e, "reason", None) or e
    return str(reason)


def _connect_error(host: str, e: Optional[BaseException]) -> RootlessError:
    reason = getattr(e, "reason", e)
    if isinstance(reason, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(reason):
        return RegistryError("TLS certificate of %s could not be verified (%s); put its CA certificate in "
                             "~/.config/rootless/certs.d/%s/ca.crt (or --cert-dir), or, for a test registry, "
                             "add it to insecure-registries or use --tls-verify=false"
                             % (host, getattr(reason, "verify_message", "") or reason, host))
    if isinstance(reason, ssl.SSLError):
        return RegistryError("TLS handshake with %s failed (%s); if it serves plain HTTP, add it to "
                             "insecure-registries in ~/.config/rootless/registries.json or use "
                             "--tls-verify=false" % (host, reason))
    if isinstance(reason, socket.gaierror):
        return RegistryError("cannot resolve the registry host %s (DNS: %s)" % (host.split(":")[0], reason.strerror))
    if isinstance(reason, socket.timeout) or "timed out" in str(reason):
        return RegistryError("connection to %s timed out" % host)
    return RegistryError("cannot connect to %s: %s" % (host, reason))
