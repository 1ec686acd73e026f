"""Real local registries for the registry-client tests.

Each registry is Debian's ``docker-registry`` (distribution 2.8) listening on 127.0.0.1 at a
free port, with its configuration, certificates and storage in a work directory, run as the
current (unprivileged) user.  Kinds:

* ``http``:  plain HTTP, no authentication.
* ``tls``:   HTTPS with a certificate for IP 127.0.0.1 / DNS localhost signed by a CA made here
             with the ``openssl`` command line (``Registry.ca_file``).
* ``basic``: HTTPS like ``tls`` plus htpasswd (bcrypt) basic authentication.
* ``token``: HTTPS like ``tls`` plus bearer-token authentication; the token server is a small
             HTTPS server run in a thread of this process (same CA), which issues RS256 JWTs
             for ``tokenuser``/``tokenpass`` and, like Docker Hub, tokens without actions to
             anonymous clients (except pull on ``Registry.public_repos``).

Use the fixtures (import them into a test module, pytest then finds them)::

    from registries import make_registry, registry  # noqa: F401  (pytest fixtures)

    def test_x(registry): ...                       # runs once per kind
    def test_y(make_registry):
        reg = make_registry("token")

or ``start_registry(kind, workdir)`` directly (then call ``close()``).
"""

import atexit
import base64
import datetime
import hashlib
import http.client
import http.server
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from conftest import have, need

KINDS = ("http", "tls", "basic", "token")
REGISTRY_BIN = "docker-registry"
BASIC_USER, BASIC_PASSWORD = "testuser", "testpass"
TOKEN_USER, TOKEN_PASSWORD = "tokenuser", "tokenpass"
TOKEN_SERVICE = "rootless-test-registry"
TOKEN_ISSUER = "rootless-test-token-server"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_ACCEPT = ", ".join([
    MANIFEST_V2,
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])

# A line of distribution's access log (Apache's combined format), e.g.
# 127.0.0.1 - - [01/Dec/2025:22:50:45 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "rootless/0.1"
_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) \S+ '
                          r'"[^"]*" "(?P<agent>[^"]*)"')

_live = set()  # registries whose processes or token servers still run, for the atexit sweep


class RegistryError(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# certificates and keys, with the openssl command line

def _openssl(*args, cwd=None, input=None):
    proc = subprocess.run(["openssl"] + list(args), cwd=cwd, input=input,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    if proc.returncode != 0:
        raise RegistryError("openssl %s failed: %s" % (" ".join(args), proc.stderr.decode(errors="replace")))
    return proc.stdout


def _write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


_REQ_CONFIG = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = {cn}
"""

_CA_EXT = """[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

_SERVER_EXT = """[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_SIGNING_EXT = """[signing]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
"""


def _self_signed(d, name, cn, ext_text, ext_section, key_args):
    """A key ``name.key`` and a self-signed certificate ``name.crt`` in directory ``d``."""
    _write(os.path.join(d, name + ".req.cnf"), _REQ_CONFIG.format(cn=cn))
    _write(os.path.join(d, name + ".ext.cnf"), ext_text)
    _openssl("genpkey", *key_args, "-out", name + ".key", cwd=d)
    os.chmod(os.path.join(d, name + ".key"), 0o600)
    _openssl("req", "-new", "-config", name + ".req.cnf", "-key", name + ".key", "-out", name + ".csr", cwd=d)
    _openssl("x509", "-req", "-in", name + ".csr", "-signkey", name + ".key", "-days", "3",
             "-sha256", "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
             "-extfile", name + ".ext.cnf", "-extensions", ext_section, "-out", name + ".crt", cwd=d)


def make_ca_and_server_cert(d):
    """CA key+certificate (ca.key, ca.crt) and a server certificate signed by it for
    IP:127.0.0.1 and DNS:localhost (server.key, server.crt), in directory ``d``."""
    ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    _self_signed(d, "ca", "rootless test CA", _CA_EXT, "ca", ec)
    _write(os.path.join(d, "server.req.cnf"), _REQ_CONFIG.format(cn="127.0.0.1"))
    _write(os.path.join(d, "server.ext.cnf"), _SERVER_EXT)
    _openssl("genpkey", *ec, "-out", "server.key", cwd=d)
    os.chmod(os.path.join(d, "server.key"), 0o600)
    _openssl("req", "-new", "-config", "server.req.cnf", "-key", "server.key", "-out", "server.csr", cwd=d)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-days", "3",
             "-sha256", "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
             "-extfile", "server.ext.cnf", "-extensions", "server", "-out", "server.crt", cwd=d)
    return os.path.join(d, "ca.crt"), os.path.join(d, "server.crt"), os.path.join(d, "server.key")


def make_signing_cert(d):
    """An RSA key (token-signing.key) and its self-signed certificate (token-signing.crt): the
    certificate goes into the registry's ``rootcertbundle``."""
    _self_signed(d, "token-signing", "rootless test token signer", _SIGNING_EXT, "signing",
                 ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
    return os.path.join(d, "token-signing.crt"), os.path.join(d, "token-signing.key")


def cert_der(cert_file):
    return _openssl("x509", "-in", cert_file, "-outform", "DER")


def libtrust_key_id(cert_file):
    """The key ID distribution computes for a trusted key (libtrust fingerprint): SHA-256 of the
    DER SubjectPublicKeyInfo, first 240 bits, base32, in 12 groups of 4 joined by ':'."""
    spki = _openssl("x509", "-in", cert_file, "-noout", "-pubkey")
    der = _openssl("pkey", "-pubin", "-outform", "DER", input=spki)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def rs256_sign(key_file, data, use_cryptography=None):
    """RSASSA-PKCS1-v1_5 with SHA-256 over ``data``: the ``cryptography`` package when
    importable (or forced with use_cryptography=True), else ``openssl dgst -sha256 -sign``."""
    if use_cryptography is not False:
        try:
            from cryptography.hazmat.primitives import hashes, serialization
            from cryptography.hazmat.primitives.asymmetric import padding
        except ImportError:
            if use_cryptography:
                raise
        else:
            with open(key_file, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
            return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return _openssl("dgst", "-sha256", "-sign", key_file, input=data)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def bcrypt_htpasswd_line(user, password):
    """``user:$2…$…`` as the registry's htpasswd controller wants (bcrypt only): htpasswd -B
    (apache2-utils), else the bcrypt module, else the C library's crypt (libxcrypt has bcrypt)."""
    if have("htpasswd"):
        proc = subprocess.run(["htpasswd", "-Bbn", "-C", "5", user, password],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if proc.returncode == 0:
            return proc.stdout.decode().strip()
    try:
        import bcrypt
        return user + ":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()
    except ImportError:
        pass
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt  # deprecated since 3.11, gone in 3.13
    if crypt.METHOD_BLOWFISH not in crypt.methods:
        raise RegistryError("no way to make a bcrypt hash: install apache2-utils")
    return user + ":" + crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# token server

class TokenServer:
    """Docker-style token server (``GET /token?service=…&scope=…`` with optional basic
    credentials, and the OAuth2 ``POST /token`` password grant), over HTTPS on 127.0.0.1.

    Authenticated ``tokenuser`` gets every action it asks for; anonymous clients get "pull" on
    ``public_repos`` and empty action lists elsewhere (like Docker Hub on private repositories);
    wrong credentials get 401.  Every request is appended to ``requests`` (dicts with method,
    path, query, user, scopes, granted, status)."""

    def __init__(self, workdir, cert_file, key_file, signing_cert, signing_key,
                 users=None, service=TOKEN_SERVICE, issuer=TOKEN_ISSUER, header="x5c"):
        self.users = dict(users or {TOKEN_USER: TOKEN_PASSWORD})
        self.service, self.issuer = service, issuer
        self.signing_key = signing_key
        self.header_mode = header  # "x5c" (certificate chain) or "kid" (libtrust key ID)
        self.x5c = [base64.b64encode(cert_der(signing_cert)).decode()]
        self.kid = libtrust_key_id(signing_cert)
        self.expires_in = 300
        self.public_repos = set()
        self.requests = []
        self.fail_next = []  # HTTP statuses to answer to the next token requests, in order
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                with open(os.path.join(workdir, "token-server.log"), "a") as f:
                    f.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

            def do_GET(self):
                owner._handle(self, "GET")

            def do_POST(self):
                owner._handle(self, "POST")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert_file, key_file)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.realm = "https://127.0.0.1:%d/token" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="token-server", daemon=True)
        self.thread.start()

    def close(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join(10)
            self.httpd = None

    # -- tokens

    def grant(self, user, scopes):
        access = []
        for scope in scopes:
            try:
                rtype, rest = scope.split(":", 1)
                name, actions = rest.rsplit(":", 1)
            except ValueError:
                continue
            wanted = [a for a in actions.split(",") if a]
            if user is not None:
                allowed = wanted
            elif rtype == "repository" and name in self.public_repos:
                allowed = [a for a in wanted if a == "pull"]
            else:
                allowed = []
            access.append({"type": rtype, "name": name, "actions": allowed})
        return access

    def issue(self, user, access, audience=None, expires_in=None, now=None):
        """A signed JWT for ``user`` (None: anonymous) with these access entries."""
        now = int(time.time() if now is None else now)
        expires_in = self.expires_in if expires_in is None else expires_in
        header = {"typ": "JWT", "alg": "RS256"}
        if self.header_mode == "kid":
            header["kid"] = self.kid
        else:
            header["x5c"] = self.x5c
        claims = {"iss": self.issuer, "sub": user or "", "aud": audience or self.service,
                  "exp": now + expires_in, "nbf": now - 1, "iat": now,
                  "jti": uuid.uuid4().hex, "access": access}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        return signing_input + "." + b64url(rs256_sign(self.signing_key, signing_input.encode()))

    # -- HTTP

    def _handle(self, req, method):
        url = urllib.parse.urlsplit(req.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        form = {}
        if method == "POST":
            length = int(req.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(req.rfile.read(length).decode(), keep_blank_values=True)
        record = {"method": method, "path": url.path, "query": query, "form": form,
                  "authorization": req.headers.get("Authorization"), "user": None,
                  "scopes": [], "granted": [], "status": None}
        with self._lock:
            self.requests.append(record)
            forced = self.fail_next.pop(0) if self.fail_next else None

        def reply(status, body):
            record["status"] = status
            data = json.dumps(body).encode()
            req.send_response(status)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data)

        if url.path != "/token":
            return reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
        if forced is not None:
            return reply(forced, {"errors": [{"code": "UNAVAILABLE", "message": "forced failure"}]})

        if method == "GET":
            user, password = None, None
            auth = req.headers.get("Authorization") or ""
            if auth[:6].lower() == "basic ":
                try:
                    user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    return reply(400, {"errors": [{"code": "UNAUTHORIZED", "message": "bad basic header"}]})
            scopes = [s for v in query.get("scope", []) for s in v.split(" ") if s]
            service = (query.get("service") or [None])[0]
        elif (form.get("grant_type") or [""])[0] == "password":
            user = (form.get("username") or [""])[0]
            password = (form.get("password") or [""])[0]
            scopes = [s for v in form.get("scope", []) for s in v.split(" ") if s]
            service = (form.get("service") or [None])[0]
        else:
            return reply(400, {"error": "unsupported_grant_type"})

        record["scopes"] = scopes
        if user is not None and self.users.get(user) != password:
            return reply(401, {"errors": [{"code": "UNAUTHORIZED",
                                           "message": "incorrect username or password"}]})
        record["user"] = user
        access = self.grant(user, scopes)
        record["granted"] = access
        token = self.issue(user, access, audience=service)
        issued = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        if method == "GET":
            return reply(200, {"token": token, "access_token": token,
                               "expires_in": self.expires_in, "issued_at": issued})
        return reply(200, {"access_token": token, "expires_in": self.expires_in,
                           "scope": " ".join(scopes), "issued_at": issued})


# ---------------------------------------------------------------------------------------------
# the registry

class Registry:
    """A running docker-registry.  See the module docstring."""

    def __init__(self, kind, workdir, port=None, tls=None, log_level="warn", token_header="x5c",
                 access_log=False):
        if kind not in KINDS:
            raise ValueError("registry kind must be one of %s, not %r" % (KINDS, kind))
        self.kind = kind
        self.workdir = os.path.abspath(workdir)
        self.port = port or free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.tls = kind != "http" if tls is None else tls
        self.scheme = "https" if self.tls else "http"
        self.url = "%s://%s" % (self.scheme, self.host)
        self.storage = os.path.join(self.workdir, "storage")
        self.config_file = os.path.join(self.workdir, "config.yml")
        self.log_file = os.path.join(self.workdir, "registry.log")
        self.cert_dir = os.path.join(self.workdir, "certs")  # skopeo --dest-cert-dir: ca.crt only
        self.ca_file = None
        self.username = self.password = None
        self.token_server = None
        self.proc = None
        self.log_level = log_level
        self.token_header = token_header
        self.access_log = access_log  # log every request (see served()); off, the log stays short

        os.makedirs(self.storage, exist_ok=True)
        keys = os.path.join(self.workdir, "keys")
        os.makedirs(keys, exist_ok=True)
        os.chmod(keys, 0o700)
        server_cert = server_key = None
        if self.tls or kind == "token":
            ca, server_cert, server_key = make_ca_and_server_cert(keys)
            self.ca_file = os.path.join(self.cert_dir, "ca.crt")
            os.makedirs(self.cert_dir, exist_ok=True)
            with open(ca) as src:
                _write(self.ca_file, src.read())
        self._server_cert, self._server_key = server_cert, server_key
        if kind == "basic":
            self.username, self.password = BASIC_USER, BASIC_PASSWORD
            self.htpasswd_file = os.path.join(self.workdir, "htpasswd")
            _write(self.htpasswd_file, bcrypt_htpasswd_line(self.username, self.password) + "\n", 0o600)
        if kind == "token":
            self.username, self.password = TOKEN_USER, TOKEN_PASSWORD
            signing_cert, signing_key = make_signing_cert(keys)
            self.rootcertbundle = signing_cert
            self.token_server = TokenServer(self.workdir, server_cert, server_key, signing_cert,
                                            signing_key, header=token_header)
            _live.add(self)
        self._write_config()

    # -- configuration

    def _write_config(self):
        q = json.dumps  # a JSON string is a YAML string
        lines = [
            "version: 0.1",
            "log:",
            "  level: " + q(self.log_level),
            "  accesslog:",
            "    disabled: " + ("false" if self.access_log else "true"),
            "storage:",
            "  filesystem:",
            "    rootdirectory: " + q(self.storage),
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            "  addr: " + q(self.host),
            # a fixed secret: upload session URLs stay valid across stop()/start()
            "  secret: " + q(hashlib.sha256(self.workdir.encode()).hexdigest()),
        ]
        if self.tls:
            lines += ["  tls:",
                      "    certificate: " + q(self._server_cert),
                      "    key: " + q(self._server_key)]
        if self.kind == "basic":
            lines += ["auth:",
                      "  htpasswd:",
                      "    realm: " + q("rootless-test-basic"),
                      "    path: " + q(self.htpasswd_file)]
        elif self.kind == "token":
            lines += ["auth:",
                      "  token:",
                      "    realm: " + q(self.token_server.realm),
                      "    service: " + q(self.token_server.service),
                      "    issuer: " + q(self.token_server.issuer),
                      "    rootcertbundle: " + q(self.rootcertbundle)]
        _write(self.config_file, "\n".join(lines) + "\n")

    # -- process

    def start(self, timeout=20):
        """Start (or restart) the registry on the same port, storage and configuration, and
        wait until it answers GET /v2/."""
        if self.proc is not None and self.proc.poll() is None:
            raise RegistryError("registry %s is already running" % self.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with open(self.log_file, "ab") as log:
            log.write(("--- start %s\n" % time.strftime("%H:%M:%S")).encode())
            log.flush()
            self.proc = subprocess.Popen([REGISTRY_BIN, "serve", self.config_file], cwd=self.workdir,
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                         start_new_session=True, preexec_fn=_die_with_parent)
        _live.add(self)
        deadline = time.monotonic() + timeout
        last = None
        while True:
            if self.proc.poll() is not None:
                raise RegistryError("docker-registry exited with %d at start\n%s" % (
                    self.proc.returncode, self.log()))
            try:
                status = self.get("/v2/", auth=False)[0]
                if status in (200, 401):
                    return self
                last = "HTTP %d" % status
            except (OSError, http.client.HTTPException) as e:  # refused, reset, TLS not yet up
                last = repr(e)
            if time.monotonic() > deadline:
                self.stop()
                raise RegistryError("docker-registry did not answer GET %s/v2/ within %ds (%s)\n%s" % (
                    self.url, timeout, last, self.log()))
            time.sleep(0.05)

    def stop(self, sig=signal.SIGKILL, timeout=10):
        """Stop the registry process (SIGKILL by default: a crash, as in "killed mid-pull");
        storage, port and token server stay for start()."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)  # in case pause()d
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        if self.token_server is None:
            _live.discard(self)

    def pause(self):
        """SIGSTOP: connections are accepted by the kernel but nothing answers (for timeouts)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.proc.pid, signal.SIGCONT)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def close(self):
        """Stop the registry and the token server."""
        self.stop()
        if self.token_server is not None:
            self.token_server.close()
            self.token_server = None
        _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def log(self):
        try:
            with open(self.log_file, errors="replace") as f:
                return f.read()[-8000:]
        except OSError:
            return "(no log)"

    def served(self):
        """The requests this registry answered, oldest first, as (method, path, status,
        user agent) tuples, read from its access log (start it with access_log=True)."""
        if not self.access_log:
            raise RegistryError("served() needs a registry started with access_log=True")
        out = []
        with open(self.log_file, errors="replace") as f:
            for line in f:
                m = _ACCESS_LINE.search(line)
                if m:
                    out.append((m.group("method"), m.group("path"), int(m.group("status")), m.group("agent")))
        return out

    def wait_served(self, condition, what, timeout=30):
        """condition(served())'s first true value. The registry writes an access log line
        once it has sent its answer, so the client may be done before the line is there."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition(self.served())
            if value:
                return value
            if time.monotonic() > deadline:
                raise RegistryError("gave up waiting for %s in the access log of %s; it has:\n%s" % (
                    what, self.url, "\n".join("%s %s %d %s" % r for r in self.served()[-20:])))
            time.sleep(0.05)

    # -- token kind conveniences

    @property
    def public_repos(self):
        """Repositories anonymous clients may pull (token kind): a mutable set."""
        return self.token_server.public_repos

    @property
    def token_requests(self):
        return self.token_server.requests

    def token(self, scopes, user=TOKEN_USER, **kw):
        """A token as the token server would issue it to ``user`` (None: anonymous)."""
        scopes = [scopes] if isinstance(scopes, str) else scopes
        return self.token_server.issue(user, self.token_server.grant(user, scopes), **kw)

    # -- HTTP for tests (urllib; independent of rootless's client)

    def ssl_context(self):
        ctx = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else ssl.create_default_context()
        return ctx

    def auth_header(self, scope=None):
        """The Authorization header value a client would end up sending, or None."""
        if self.kind == "basic":
            return "Basic " + base64.b64encode(("%s:%s" % (self.username, self.password)).encode()).decode()
        if self.kind == "token":
            return "Bearer " + self.token(scope or [])
        return None

    def get(self, path, headers=None, method="GET", auth=True, scope=None, timeout=10):
        """(status, headers, body) of a request to the registry.  With auth, basic credentials
        or a token for ``scope`` (default: pull,push on the repository in ``path``)."""
        headers = dict(headers or {})
        if auth and self.kind in ("basic", "token") and "Authorization" not in headers:
            if scope is None and path.startswith("/v2/") and path.count("/") >= 4:
                repo = path[4:].split("/manifests/")[0].split("/blobs/")[0].split("/tags/")[0]
                scope = "repository:%s:pull,push" % repo
            headers["Authorization"] = self.auth_header(scope)
        req = urllib.request.Request(self.url + path, headers=headers, method=method)
        ctx = self.ssl_context() if self.tls else None
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=timeout) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            with e:
                return e.code, e.headers, e.read()

    # -- content

    def push_archive(self, archive_path, repo_tag, fmt=None):
        """Push a docker-archive (or oci-archive: name ends with -oci.tar) file with skopeo to
        ``repo_tag`` (e.g. "busybox:latest") and return the pushed manifest's digest."""
        need(have("skopeo"), "skopeo is not installed")
        if fmt is None:
            fmt = "oci-archive" if archive_path.endswith("-oci.tar") else "docker-archive"
        tmp = os.path.join(self.workdir, "skopeo-tmp")
        os.makedirs(tmp, exist_ok=True)
        regconf = os.path.join(self.workdir, "registries.conf")
        if not os.path.exists(regconf):
            _write(regconf, "unqualified-search-registries = []\n")
        digest_file = os.path.join(tmp, "digest")
        cmd = ["skopeo", "--insecure-policy", "--registries-conf", regconf, "copy", "-q",
               "--digestfile", digest_file]
        if self.tls:
            cmd += ["--dest-cert-dir", self.cert_dir, "--dest-tls-verify=true"]
        else:
            cmd += ["--dest-tls-verify=false"]
        if self.username:
            cmd += ["--dest-creds", "%s:%s" % (self.username, self.password)]
        cmd += ["%s:%s" % (fmt, archive_path), "docker://%s/%s" % (self.host, repo_tag)]
        env = dict(os.environ, TMPDIR=tmp, REGISTRY_AUTH_FILE=os.path.join(tmp, "auth.json"),
                   CONTAINERS_REGISTRIES_CONF=regconf)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=600)
        if proc.returncode != 0:
            raise RegistryError("skopeo push of %s to %s/%s failed (%d): %s\nregistry log:\n%s" % (
                archive_path, self.url, repo_tag, proc.returncode,
                proc.stderr.decode(errors="replace")[-3000:], self.log()))
        with open(digest_file) as f:
            return f.read().strip()

    def blob_path(self, digest):
        """Where the filesystem driver keeps a blob's bytes (tamper with it to test digests)."""
        algo, _, hexdigest = digest.partition(":")
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs", algo,
                            hexdigest[:2], hexdigest, "data")

    def __repr__(self):
        return "<Registry %s %s>" % (self.kind, self.url)


def _die_with_parent():
    """In the child: SIGKILL when the process that started the registry dies (Linux)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@atexit.register
def _sweep():
    for reg in list(_live):
        try:
            reg.close()
        except Exception:
            pass


def start_registry(kind, workdir, **options):
    """Start a registry of ``kind`` ("http", "tls", "basic" or "token") keeping everything under
    ``workdir`` and return it once it answers GET /v2/.  Options: ``port``, ``tls`` (basic or
    token over plain HTTP with tls=False), ``log_level``, ``token_header`` ("x5c" or "kid"),
    ``access_log`` (True: every request is logged, see ``Registry.served``)."""
    if not have(REGISTRY_BIN):
        raise RegistryError("%s is not installed (Debian package docker-registry)" % REGISTRY_BIN)
    reg = Registry(kind, workdir, **options)
    try:
        return reg.start()
    except BaseException:
        reg.close()
        raise


# ---------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture
def make_registry(tmp_path):
    """Factory: make_registry(kind="http", **options) -> a started Registry, closed at teardown."""
    need(have(REGISTRY_BIN), "docker-registry is not installed (Debian package docker-registry)")
    started = []

    def make(kind="http", **options):
        if kind != "http" or options.get("tls"):
            need(have("openssl"), "openssl is not installed")
        reg = start_registry(kind, str(tmp_path / ("registry%d-%s" % (len(started), kind))), **options)
        started.append(reg)
        return reg

    yield make
    for reg in started:
        reg.close()


@pytest.fixture(params=KINDS)
def registry(request, make_registry):
    """One registry of each kind in turn."""
    return make_registry(request.param)


@pytest.fixture
def http_registry(make_registry):
    return make_registry("http")


@pytest.fixture
def tls_registry(make_registry):
    return make_registry("tls")


@pytest.fixture
def basic_registry(make_registry):
    return make_registry("basic")


@pytest.fixture
def token_registry(make_registry):
    return make_registry("token")
