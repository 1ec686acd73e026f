"""Image references, parsed and normalised as Docker does (pure functions).

``busybox`` -> ``docker.io/library/busybox:latest``; ``host:5000/a/b@sha256:...`` keeps its
registry and digest. The store keeps full names; the CLI shows Docker's familiar form.
"""

from collections import namedtuple

from rootless.errors import UsageError
from rootless.patterns import ALNUM, LOWER_DIGITS, Pattern

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"


# Compiled when first used: compiling these six at import cost every command that names
# an image ~0.6 ms; and ``busybox``, ``latest`` or ``5000`` need none of them (patterns).
_COMPONENT = Pattern(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z", plain=LOWER_DIGITS)
_TAG = Pattern(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z", plain=ALNUM + "_", limit=128)
_DIGEST = Pattern(r"sha256:[0-9a-f]{64}\Z")
_LABEL = Pattern(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z", plain=ALNUM, limit=63)
_PORT = Pattern(r"[0-9]{1,5}\Z", plain="0123456789", limit=5)
_IPV6 = Pattern(r"\[[0-9a-fA-F:]+\]\Z")
MAX_NAME = 255


class Reference(namedtuple("Reference", "domain path tag digest", defaults=(None, None))):
    """domain, path, tag, digest (immutable; a namedtuple to keep start-up cheap)."""

    __slots__ = ()

    @property
    def repository(self) -> str:
        return "%s/%s" % (self.domain, self.path)

    @property
    def familiar_repository(self) -> str:
        """The repository as Docker prints it: ``busybox``, ``user/app``, ``host:5000/x``."""
        if self.domain == DEFAULT_DOMAIN:
            prefix = OFFICIAL_NAMESPACE + "/"
            return self.path[len(prefix):] if self.path.startswith(prefix) else self.path
        return self.repository

    def __str__(self) -> str:
        return self._with_suffixes(self.repository)

    def familiar(self) -> str:
        """As Docker prints it: ``busybox:latest``."""
        return self._with_suffixes(self.familiar_repository)

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.domain, self.path, tag, None)

    def _with_suffixes(self, repository: str) -> str:
        return repository + (":" + self.tag if self.tag else "") + ("@" + self.digest if self.digest else "")


def parse(text: str, default_tag: bool = True) -> Reference:
    """Parse an image reference, adding Docker Hub's defaults; raise UsageError if invalid."""
    if not text or len(text) > MAX_NAME * 2 or text != text.strip() or any(c in text for c in "\0\n\r\t "):
        raise UsageError("invalid reference format: %r" % text[:100])
    rest, digest = text, None
    if "@" in rest:
        rest, digest = rest.split("@", 1)
        if not _DIGEST.match(digest):
            raise UsageError("invalid reference format: bad digest in %r" % text)
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not _TAG.match(tag):
            raise UsageError("invalid reference format: bad tag %r in %r" % (tag, text))
    domain, path = _split_domain(rest)
    if len(domain) + 1 + len(path) > MAX_NAME:
        raise UsageError("invalid reference format: repository name longer than %d characters" % MAX_NAME)
    if not path or not all(_COMPONENT.match(c) for c in path.split("/")):
        raise UsageError("invalid reference format: repository name must be lowercase "
                         "letters, digits and separators: %r" % text)
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def _split_domain(name: str) -> "tuple[str, str]":
    first, sep, remainder = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _valid_host(first):
            raise UsageError("invalid reference format: bad registry host %r" % first)
        if first not in (DEFAULT_DOMAIN, "index.docker.io"):
            return first, remainder
        name = remainder
    if "/" not in name:
        name = OFFICIAL_NAMESPACE + "/" + name
    return DEFAULT_DOMAIN, name


def _valid_host(host: str) -> bool:
    """host[:port], host a DNS name or [IPv6]; checked piecewise (no backtracking regex)."""
    if host.startswith("["):
        end = host.find("]")
        addr, rest = host[: end + 1], host[end + 1:]
        if end < 0 or (rest and not (rest[0] == ":" and _PORT.match(rest[1:]))):
            return False
        return bool(_IPV6.match(addr))
    name, colon, port = host.partition(":")
    if colon and not _PORT.match(port):
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return len(name) <= 253 and all(_LABEL.match(l) for l in labels)


def familiar(full: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox:latest``."""
    return parse(full, default_tag=False).familiar()


def is_id_prefix(text: str) -> bool:
    """Whether ``text`` could be (a prefix of) an image ID rather than a name."""
    hexpart = text[7:] if text.startswith("sha256:") else text
    return 0 < len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart)
