"""rootless.image.reference: Docker's normalisation of image references."""

import os
import subprocess
import sys

import pytest

from rootless.errors import UsageError
from rootless.image.reference import Reference, familiar, is_id_prefix, parse

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("text, expected", [
    ("busybox", "docker.io/library/busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("user/app", "docker.io/user/app:latest"),
    ("user/app:v1.0-rc_1", "docker.io/user/app:v1.0-rc_1"),
    ("user/a.b-c_d__e---f", "docker.io/user/a.b-c_d__e---f:latest"),
    ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
    ("docker.io/user/app", "docker.io/user/app:latest"),
    ("localhost/a", "localhost/a:latest"),
    ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
    ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest"),
    ("quay.io/org/repo:1", "quay.io/org/repo:1"),
    ("[::1]:5000/x", "[::1]:5000/x:latest"),
    ("busybox@" + DIGEST, "docker.io/library/busybox@" + DIGEST),
    ("busybox:1@" + DIGEST, "docker.io/library/busybox:1@" + DIGEST),
    ("localhost:5000/a@" + DIGEST, "localhost:5000/a@" + DIGEST),
    # Docker folds the legacy index host into docker.io, and a one-component docker.io
    # name into library/ (distribution/reference splitDockerDomain).
    ("index.docker.io/busybox", "docker.io/library/busybox:latest"),
    ("index.docker.io/user/app:2", "docker.io/user/app:2"),
    ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest"),
])
def test_parse_normalises_like_docker(text, expected):
    assert str(parse(text)) == expected


def test_parse_fields():
    ref = parse("localhost:5000/a/b:tag")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "a/b", "tag", None)
    assert ref.repository == "localhost:5000/a/b"
    assert ref.familiar_repository == "localhost:5000/a/b"

    ref = parse("busybox@" + DIGEST)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("docker.io", "library/busybox", None, DIGEST)
    assert ref.familiar_repository == "busybox"

    assert parse("user/app").familiar_repository == "user/app"


def test_parse_without_default_tag():
    ref = parse("busybox", default_tag=False)
    assert ref.tag is None and ref.digest is None
    assert str(ref) == "docker.io/library/busybox"


def test_with_tag_drops_digest():
    ref = parse("busybox:1@" + DIGEST).with_tag("2")
    assert ref == Reference("docker.io", "library/busybox", "2", None)
    assert str(ref) == "docker.io/library/busybox:2"


def test_host_without_slash_is_a_name_with_a_tag():
    # As in Docker: "localhost:5000" alone is the image "localhost" with tag "5000".
    assert str(parse("localhost:5000")) == "docker.io/library/localhost:5000"


@pytest.mark.parametrize("text", [
    "",
    " busybox", "busybox ", "busy box", "busybox\n", "busybox\r", "bu\tsybox", "busy\0box",
    "Busybox", "user/App", "localhost:5000/A", "BUSYBOX:latest",
    "busybox:", "busybox:-x", "busybox:.x", "busybox:tag!", "busybox:t@g",
    pytest.param("busybox:" + "a" * 129, id="tag-129"),
    "a..b/x", "../x", "host..com/x", ".example.com/x", "-host.com/x", "host-.com/x",
    "localhost:123456/x", "localhost:port/x",
    "/busybox", "busybox/", "a//b", "-a", "a-", "a_", "_a", "a___b", "a..b",
    pytest.param("a" * 256, id="a*256"), pytest.param("user/" + "a" * 251, id="user/a*251"),
    pytest.param("x" * 600, id="x*600"),
    "busybox@", "busybox@sha256:abc", "busybox@sha256:" + "A" * 64, "busybox@md5:" + "a" * 32,
    "busybox@" + DIGEST + "0", "busybox@" + DIGEST[:-1] + "g", "@" + DIGEST, "busybox@@" + DIGEST,
])
def test_parse_refuses_invalid(text):
    with pytest.raises(UsageError):
        parse(text)


def test_parse_accepts_names_of_255_characters():
    # The limit counts the normalised name: docker.io/library/ + 237 = 255 characters.
    assert parse("a" * 237).path == "library/" + "a" * 237
    assert parse("registry.example.com/" + "a" * 234).path == "a" * 234


@pytest.mark.parametrize("text", [
    pytest.param("a" * 238, id="official-256"),                  # docker.io/library/ + 238
    pytest.param("user/" + "a" * 246, id="user-256"),             # docker.io/user/ + 246
    pytest.param("registry.example.com/" + "a" * 235, id="registry-256"),
    pytest.param("registry.example.com/" + "a" * 240, id="registry-261"),
])
def test_parse_refuses_names_over_255_characters_including_the_registry(text):
    # Docker's NameTotalLengthMax (255) applies to the whole normalised name, registry
    # included (distribution/reference Parse checks len(domain + "/" + path)).
    with pytest.raises(UsageError):
        parse(text)


def test_parse_of_hostile_registry_host_is_fast():
    """A long host that fails validation must be refused quickly (no regex backtracking)."""
    # In a child, timed there (not counting its start-up): a backtracking regex cannot be
    # interrupted in this process, and would run for hours; the timeout ends it.
    code = ("import time\n"
            "from rootless.image.reference import parse\n"
            "from rootless.errors import UsageError\n"
            "started = time.perf_counter()\n"
            "for text in ('A' * 40 + '!/x', 'a' * 40 + '.!/x', 'a-' * 30 + '!:1/x'):\n"
            "    try:\n"
            "        parse(text)\n"
            "    except UsageError:\n"
            "        pass\n"
            "    else:\n"
            "        raise SystemExit('accepted %r' % text)\n"
            "print(time.perf_counter() - started)\n")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        proc = subprocess.run([sys.executable, "-c", code], cwd=repo, timeout=60,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        pytest.fail("parse() of a 40-character invalid registry host ran for a minute "
                    "(catastrophic backtracking in reference.py's host patterns)")
    assert proc.returncode == 0, proc.stderr.decode()
    seconds = float(proc.stdout)
    assert seconds < 0.5, "three parses of invalid hosts took %.2f s (backtracking?)" % seconds


@pytest.mark.parametrize("full, short", [
    ("docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/library/busybox", "busybox"),
    ("docker.io/user/app:1", "user/app:1"),
    ("docker.io/library/busybox@" + DIGEST, "busybox@" + DIGEST),
    ("docker.io/library/busybox:1@" + DIGEST, "busybox:1@" + DIGEST),
    ("localhost:5000/a/b:tag", "localhost:5000/a/b:tag"),
    ("quay.io/library/x:1", "quay.io/library/x:1"),
    ("busybox:latest", "busybox:latest"),
])
def test_familiar(full, short):
    assert familiar(full) == short


def test_familiar_refuses_invalid():
    with pytest.raises(UsageError):
        familiar("Docker.io/Library/Busybox")


@pytest.mark.parametrize("text, expected", [
    ("abc123", True),
    ("a", True),
    ("sha256:abc", True),
    ("0" * 64, True),
    ("sha256:" + "f" * 64, True),
    ("0" * 65, False),
    ("", False),
    ("sha256:", False),
    ("ABC123", False),
    ("busybox", False),
    ("abcg", False),
    ("sha512:abc", False),
])
def test_is_id_prefix(text, expected):
    assert is_id_prefix(text) is expected
