"""Registry credentials, and the challenge/token exchange that turns them into a header.

Where credentials come from, first found wins:

1. our store, ``$XDG_CONFIG_HOME/rootless/auth.json`` (``~/.config/rootless/auth.json``),
   written by ``rootless login``: ``{"auths": {"HOST": {"auth": base64("user:secret")}}}``
   (the format of Docker's config.json, so either file can be read by either tool), mode
   0600 in a 0700 directory; Docker Hub is keyed ``docker.io``;
2. Docker's ``$DOCKER_CONFIG/config.json`` (``~/.docker/config.json``), read only: the
   ``credHelpers`` entry for the host, then ``credsStore``, then ``auths`` (Docker Hub is
   keyed ``https://index.docker.io/v1/`` there). A helper NAME is the executable
   ``docker-credential-NAME``, run as ``NAME get`` with the server on stdin; it prints
   ``{"ServerURL", "Username", "Secret"}`` on stdout.

Docker's file is a guest here: if it is malformed, names a helper that is not installed
(a config.json copied from a desktop with ``"credsStore": "desktop"``), or a helper says
"credentials not found", we go on as if it had no entry, where Docker would stop. An
``identitytoken`` (OAuth refresh token, Docker's ``<token>`` user name) is not supported: the
token exchange here is the GET form of Docker's token protocol.

Secrets never appear in exception messages, debug output, ``repr()``, or the arguments of a
process: ``Credentials`` is a tuple whose repr hides the secret, helpers get the server on
stdin, and messages name the host and the user only.

The token exchange (``Authenticator``) knows nothing of HTTP libraries: the caller passes an
``opener(url, headers) -> (status, headers, body)``, ``regconfig.http_get`` with the
registry's TLS settings in practice, a fake in tests.
"""

import base64
import binascii
import os
import time
from typing import Callable, Dict, Optional, Sequence, Tuple, Union

from rootless import jsonfast
from rootless.errors import RootlessError, Unsupported, UsageError
from rootless.image.regconfig import DOCKER_HUB, config_dir, normalize_host

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
HELPER_TIMEOUT = 60.0
DEFAULT_TOKEN_LIFETIME = 60.0

__all__ = [
    "Authenticator", "Credentials", "Unauthorized", "auth_file", "docker_config_file",
    "docker_key", "erase_credentials", "get_credentials", "lookup_credentials",
    "normalize_host", "parse_challenge", "parse_challenges", "store_credentials",
]


class Unauthorized(RootlessError):
    """The registry or its token server refused us (wrong or missing credentials)."""

    exit_code = 125


class Credentials(tuple):
    """(username, secret): a tuple, so ``user, secret = creds`` works, whose repr and str
    hide the secret (pytest, tracebacks and debug prints show objects with repr)."""

    __slots__ = ()

    def __new__(cls, username: str, secret: str):
        return tuple.__new__(cls, (username, secret))

    def __getnewargs__(self):
        return tuple(self)

    @property
    def username(self) -> str:
        return self[0]

    @property
    def secret(self) -> str:
        return self[1]

    def __repr__(self) -> str:
        return "Credentials(username=%r, secret=<hidden>)" % (self[0],)

    __str__ = __repr__


# -- where credentials live ---------------------------------------------------------------------

def auth_file(env=None) -> str:
    """Our credential store: ``$XDG_CONFIG_HOME/rootless/auth.json``."""
    return os.path.join(config_dir(env), "auth.json")


def docker_config_file(env=None) -> str:
    """Docker's client configuration: ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    env = os.environ if env is None else env
    directory = env.get("DOCKER_CONFIG")
    if not directory:
        directory = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")
    return os.path.join(directory, "config.json")


def docker_key(host: str) -> str:
    """The key Docker uses for ``host`` in config.json and gives its credential helpers."""
    host = normalize_host(host)
    return DOCKER_HUB_KEY if host == DOCKER_HUB else host


def get_credentials(host: str, env=None) -> Optional[Tuple[str, str]]:
    """(username, secret) for registry ``host``, or None for anonymous access."""
    found = lookup_credentials(host, env)
    return Credentials(found[0], found[1]) if found else None


def lookup_credentials(host: str, env=None) -> Optional[Tuple[str, str, str]]:
    """Like get_credentials, plus where they came from (a file, or ``docker-credential-X``),
    for debug messages. Returns (username, secret, source) or None."""
    host = normalize_host(host)
    path = auth_file(env)
    entry = _find_entry(_read_ours(path).get("auths"), host)
    if isinstance(entry, dict) and entry.get("auth"):
        creds = _decode_entry(entry)
        if creds is None:
            raise UsageError("malformed credentials for %s in %s: run rootless login %s again"
                             % (host, path, host))
        return creds[0], creds[1], path
    docker_path = docker_config_file(env)
    config = _read_docker(docker_path)
    helpers = config.get("credHelpers")
    if isinstance(helpers, dict):
        name = _find_entry(helpers, host)
        if isinstance(name, str) and name:
            found = _run_helper(name, host, env, docker_path)
            if found:
                return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        found = _run_helper(store, host, env, docker_path)
        if found:
            return found
    entry = _find_entry(config.get("auths"), host)
    creds = _decode_entry(entry) if entry is not None else None
    if creds:
        return creds[0], creds[1], docker_path
    return None


def store_credentials(host: str, username: str, secret: str, env=None) -> str:
    """Save credentials for ``host`` in our store (atomically, 0600); returns the file name.

    Other entries and keys of the file are kept; concurrent logins are serialised by a lock
    on the directory."""
    host = normalize_host(host)
    if not username or ":" in username or any(ord(c) < 32 for c in username):
        raise UsageError("invalid user name for %s: it must be non-empty and contain no ':' or "
                         "control characters" % host)
    if not secret:
        raise UsageError("a password or token is required to log in to %s" % host)
    token = base64.b64encode(("%s:%s" % (username, secret)).encode("utf-8")).decode("ascii")

    def change(data):
        auths = data.get("auths")
        if not isinstance(auths, dict):
            auths = data["auths"] = {}
        for key in _matching_keys(auths, host):
            del auths[key]
        auths[host] = {"auth": token}
        return True

    return _update_ours(env, change)[0]


def erase_credentials(host: str, env=None) -> bool:
    """Remove ``host`` from our store; False if it had no entry. Docker's file is left alone."""
    host = normalize_host(host)

    def change(data):
        auths = data.get("auths")
        keys = _matching_keys(auths, host) if isinstance(auths, dict) else []
        for key in keys:
            del auths[key]
        return bool(keys)

    return _update_ours(env, change)[1]


def _read_ours(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = jsonfast.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise UsageError("cannot read credentials file %s: %s" % (path, e.strerror or e))
    except ValueError:
        # Not the decoder's message: it can quote the text around the error.
        raise UsageError("credentials file %s is not valid JSON: fix or remove it, then rootless login"
                         % path)
    if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
        raise UsageError("credentials file %s is malformed: expected {\"auths\": {...}}" % path)
    return data


def _read_docker(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = jsonfast.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _update_ours(env, change) -> Tuple[str, bool]:
    import fcntl
    from rootless.fsutil import atomic_write_json
    path = auth_file(env)
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.stat(directory)
        if st.st_uid == os.getuid() and st.st_mode & 0o777 != 0o700:
            os.chmod(directory, 0o700)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise UsageError("cannot use %s for credentials: %s" % (directory, e.strerror or e))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # NFS emulates flock with POSIX locks, which refuse a read-only descriptor
        data = _read_ours(path)
        changed = change(data)
        if changed:
            try:
                atomic_write_json(path, data, mode=0o600)
            except OSError as e:
                raise UsageError("cannot write credentials file %s: %s" % (path, e.strerror or e))
    finally:
        os.close(fd)
    return path, changed


def _same_host(key, host: str) -> bool:
    try:
        return isinstance(key, str) and normalize_host(key) == host
    except UsageError:
        return False


def _matching_keys(mapping, host: str):
    return [k for k in mapping if _same_host(k, host)] if isinstance(mapping, dict) else []


def _find_entry(mapping, host: str):
    """The value for ``host`` in a Docker-style map: the exact key first, then any key that
    normalises to the host (``https://host``, ``https://index.docker.io/v1/``...)."""
    if not isinstance(mapping, dict):
        return None
    for key in (host, docker_key(host)):
        if key in mapping:
            return mapping[key]
    keys = _matching_keys(mapping, host)
    return mapping[keys[0]] if keys else None


def _decode_entry(entry) -> Optional[Tuple[str, str]]:
    """``{"auth": base64("user:secret")}`` -> (user, secret); None if absent or malformed."""
    if not isinstance(entry, dict) or not isinstance(entry.get("auth"), str) or not entry["auth"]:
        return None
    try:
        text = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    username, sep, secret = text.partition(":")
    if not sep or not username or not secret:
        return None
    return username, secret


# -- credential helpers -------------------------------------------------------------------------

_HELPER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _run_helper(name: str, host: str, env, config_path: str) -> Optional[Tuple[str, str, str]]:
    """Ask ``docker-credential-NAME get`` for ``host``; None if it has nothing for it."""
    if not all(c in _HELPER_CHARS for c in name) or name[0] in ".-":
        raise UsageError("invalid credential helper name %r in %s" % (name[:100], config_path))
    program = "docker-credential-" + name
    env = os.environ if env is None else env
    executable = _which(program, env.get("PATH") or os.defpath)
    if executable is None:
        return None
    import subprocess
    try:
        proc = subprocess.run([executable, "get"], input=docker_key(host).encode(), env=dict(env),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=HELPER_TIMEOUT, close_fds=True)
    except subprocess.TimeoutExpired:
        raise RootlessError("credential helper %s did not answer within %d seconds"
                            % (program, HELPER_TIMEOUT))
    except OSError as e:
        raise RootlessError("cannot run credential helper %s: %s" % (executable, e.strerror or e))
    if proc.returncode != 0:
        return None  # "credentials not found in native keychain", or any failure
    try:
        answer = jsonfast.loads(proc.stdout.decode("utf-8"))
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("Username", ""), str) \
            or not isinstance(answer.get("Secret", ""), str):
        raise RootlessError("credential helper %s answered something that is not credentials for %s"
                            % (program, host))
    username, secret = answer.get("Username") or "", answer.get("Secret") or ""
    if not username or not secret or username == "<token>":
        return None
    return username, secret, program


def _which(program: str, path: str) -> Optional[str]:
    # Not shutil.which: shutil imports bz2 and lzma, and this is all we need.
    for directory in path.split(os.pathsep):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


# -- WWW-Authenticate ---------------------------------------------------------------------------

def parse_challenges(header: str):
    """Every challenge of a ``WWW-Authenticate`` value, as [(scheme, params)].

    Schemes and parameter names are lower-cased (they are case-insensitive); values keep
    their case. Quoted strings may hold commas, ``=`` and backslash escapes. Malformed input
    never raises: what cannot be understood is skipped."""
    challenges = []
    current = None
    text, i, n = header or "", 0, len(header or "")
    separators = " \t,=\""
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        start = i
        while i < n and text[i] not in separators:
            i += 1
        token = text[start:i]
        if not token:
            i += 1  # a stray '=' or '"'
            continue
        j = i
        while j < n and text[j] in " \t":
            j += 1
        is_param = j < n and text[j] == "=" and not (j + 1 < n and text[j + 1] == "=")
        if not is_param:
            if j < n and text[j] == "=":  # token68 (``Negotiate abc==``): no parameters
                while j < n and text[j] == "=":
                    j += 1
                i = j
                if current is not None:
                    continue
            current = (token.lower(), {})
            challenges.append(current)
            continue
        j += 1
        while j < n and text[j] in " \t":
            j += 1
        if j < n and text[j] == '"':
            j += 1
            value = []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                value.append(text[j])
                j += 1
            value = "".join(value)
            j += 1  # the closing quote (or the end)
        else:
            start = j
            while j < n and text[j] not in " \t,":
                j += 1
            value = text[start:j]
        if current is None:
            current = ("", {})
            challenges.append(current)
        current[1].setdefault(token.lower(), value)
        i = j
    return challenges


def parse_challenge(header: str) -> Tuple[str, Dict[str, str]]:
    """The challenge to answer in a ``WWW-Authenticate`` value: (scheme, params).

    ``Bearer realm="https://auth.docker.io/token",service="registry.docker.io"`` ->
    ``("bearer", {"realm": ..., "service": ...})``. The scheme is lower-cased. When a header
    offers several, Bearer is preferred, as Docker does; ("", {}) when there is none."""
    challenges = parse_challenges(header)
    for scheme, params in challenges:
        if scheme == "bearer":
            return scheme, params
    return challenges[0] if challenges else ("", {})


# -- the exchange -------------------------------------------------------------------------------

Opener = Callable[[str, Dict[str, str]], Tuple[int, Dict[str, str], bytes]]


class Authenticator:
    """Answers a registry's challenges for one host: ``authorization(challenge, scope)``
    gives the ``Authorization`` header value (or None: send none).

    Basic: the credentials themselves. Bearer: a token from the challenge's realm (GET
    ``realm?service=S&scope=A&scope=B``, with the credentials as Basic when we have some),
    cached per realm, service and scopes until ``expires_in`` (default 60 s) less a margin.
    Credentials are sent to a realm over plain HTTP only when ``insecure`` is true (the user
    listed the registry as insecure), and never to a scheme other than http(s).

    Safe to share between threads. ``debug`` (a callable taking a message) is told of token
    requests, never of secrets or tokens."""

    def __init__(self, host: str, credentials: Optional[Tuple[str, str]], opener: Opener,
                 insecure: bool = False, debug: Optional[Callable[[str], None]] = None,
                 clock: Callable[[], float] = time.monotonic):
        import threading
        self.host = normalize_host(host)  # registry-1.docker.io -> docker.io, for messages
        self._credentials = Credentials(*credentials) if credentials else None
        self._opener, self.insecure, self._debug, self._clock = opener, insecure, debug, clock
        self._tokens = {}
        self._lock = threading.Lock()

    @property
    def credentials(self) -> Optional[Credentials]:
        """The Credentials in use (their repr hides the secret), or None for anonymous."""
        return self._credentials

    @property
    def username(self) -> Optional[str]:
        return self._credentials[0] if self._credentials else None

    def __repr__(self) -> str:
        return "Authenticator(host=%r, username=%r)" % (self.host, self.username)

    def authorization(self, challenge_header: str, scope: Union[str, Sequence[str], None] = "") -> Optional[str]:
        """The Authorization value answering ``challenge_header`` for ``scope`` (one scope
        string such as ``repository:library/alpine:pull``, or several). With no scope, the
        challenge's own ``scope`` is used, if any."""
        scheme, params = parse_challenge(challenge_header)
        if not scheme:
            return None
        if scheme == "basic":
            return self.basic()
        if scheme != "bearer":
            raise Unsupported("the registry %s asks for %s authentication, which rootless does not "
                              "support" % (self.host, scheme.capitalize()))
        scopes = [scope] if isinstance(scope, str) else list(scope or [])
        scopes = [s for s in scopes if s]
        if not scopes and params.get("scope"):
            scopes = params["scope"].split()
        return "Bearer " + self._token(params.get("realm", ""), params.get("service", ""), scopes)

    def basic(self) -> Optional[str]:
        """``Basic base64(user:secret)``, or None without credentials."""
        if not self._credentials:
            return None
        pair = "%s:%s" % tuple(self._credentials)
        return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")

    def forget(self) -> None:
        """Drop cached tokens (after the registry refused one)."""
        with self._lock:
            self._tokens.clear()

    def unauthorized(self, what: str = "") -> Unauthorized:
        """The Unauthorized error to raise when the registry refuses us (``what``: what for)."""
        target = " to access %s" % what if what else ""
        if self._credentials:
            return Unauthorized("unauthorized: the registry %s refused the credentials for %s%s "
                                "(rootless login %s)" % (self.host, self.username, target, self.host))
        return Unauthorized("unauthorized: the registry %s requires a login%s (rootless login %s)"
                            % (self.host, target, self.host))

    def _token(self, realm: str, service: str, scopes) -> str:
        from urllib.parse import urlencode, urlsplit
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RootlessError("the registry %s named an invalid token server %r" % (self.host, realm[:200]))
        if parts.scheme == "http" and self._credentials and not self.insecure:
            raise RootlessError("refusing to send the credentials for %s to %s over plain HTTP: list "
                                "%s in insecure-registries or use --tls-verify=false to allow it"
                                % (self.host, realm, self.host))
        key = (realm, service, tuple(sorted(set(scopes))))
        with self._lock:
            cached = self._tokens.get(key)
            now = self._clock()
            if cached and cached[1] > now:
                return cached[0]
            query = ([("service", service)] if service else []) + [("scope", s) for s in key[2]]
            url = realm + (("&" if parts.query else "?") + urlencode(query) if query else "")
            headers = {}
            if self._credentials:
                headers["Authorization"] = self.basic()
            if self._debug:
                self._debug("token request %s as %s" % (url, self.username or "anonymous"))
            status, _, body = self._opener(url, headers)
            if status in (401, 403):
                raise self.unauthorized(" ".join(key[2]))
            if status != 200:
                raise RootlessError("the token server %s of registry %s answered HTTP %d"
                                    % (realm, self.host, status))
            token, lifetime = _parse_token(body)
            if token is None:
                raise RootlessError("the token server %s of registry %s did not return a token"
                                    % (realm, self.host))
            margin = min(10.0, lifetime / 2)
            self._tokens[key] = (token, now + lifetime - margin)
            return token


def _parse_token(body: bytes) -> Tuple[Optional[str], float]:
    try:
        answer = jsonfast.loads(body.decode("utf-8"))
    except (ValueError, AttributeError):
        return None, 0.0
    if not isinstance(answer, dict):
        return None, 0.0
    token = answer.get("token") or answer.get("access_token")
    # A token goes into a header: refuse anything that could break out of it.
    if not isinstance(token, str) or not token or not token.isascii() or not token.isprintable() \
            or " " in token:
        return None, 0.0
    lifetime = answer.get("expires_in")
    if isinstance(lifetime, bool) or not isinstance(lifetime, (int, float)) or lifetime <= 0:
        lifetime = DEFAULT_TOKEN_LIFETIME
    return token, float(lifetime)
