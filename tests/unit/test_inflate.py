"""rootless.image.inflate: the child process and the thread that inflate a pulled gzip layer
give the same tar, the same digest and the same errors."""

import gzip
import hashlib
import os
import subprocess
import sys
import time
import zlib

import pytest

from rootless.errors import InvalidImage, SizeLimitExceeded
from rootless.image import inflate
from rootless.streams import Growing

KINDS = ["process", "thread"]


def make(kind, path, limit=None):
    return inflate.GunzipProcess(path, limit) if kind == "process" else inflate.GunzipThread(path, limit)


def feed_all(g, data, step=65536):
    for i in range(0, len(data), step):
        g.feed(data[i:i + step])


@pytest.fixture
def payload():
    # Compressible text and incompressible bytes: output chunks of every size.
    return (b"layer line\n" * 200000) + os.urandom(300000) + b"tail" * 1000


@pytest.mark.parametrize("kind", KINDS)
def test_output_digest_and_growth(tmp_path, payload, kind):
    path = str(tmp_path / "out.tar")
    g = make(kind, path)
    growing = Growing(path)
    g.growing = growing
    feed_all(g, gzip.compress(payload, 6))
    g.close()
    assert open(path, "rb").read() == payload
    assert g.digest == "sha256:" + hashlib.sha256(payload).hexdigest()
    assert growing.length == len(payload)  # the follower heard of every byte
    growing.close()


@pytest.mark.parametrize("kind", KINDS)
def test_multi_member_gzip(tmp_path, kind):
    path = str(tmp_path / "out.tar")
    g = make(kind, path)
    feed_all(g, gzip.compress(b"first " * 1000) + gzip.compress(b"second " * 1000), step=777)
    g.close()
    assert open(path, "rb").read() == b"first " * 1000 + b"second " * 1000


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_data(tmp_path, payload, kind):
    data = bytearray(gzip.compress(payload))
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    g = make(kind, str(tmp_path / "out.tar"))
    feed_all(g, bytes(data))
    with pytest.raises(InvalidImage, match="gzip"):
        g.close()


@pytest.mark.parametrize("kind", KINDS)
def test_truncated(tmp_path, payload, kind):
    g = make(kind, str(tmp_path / "out.tar"))
    feed_all(g, gzip.compress(payload)[:-100])
    with pytest.raises(InvalidImage, match="truncated"):
        g.close()


@pytest.mark.parametrize("kind", KINDS)
def test_bomb_stops_at_the_limit(tmp_path, kind):
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    data = bomb.compress(b"\0" * (64 << 20)) + bomb.flush()  # 64 MiB from ~64 KiB
    path = str(tmp_path / "out.tar")
    g = make(kind, path, limit=1 << 20)
    feed_all(g, data)
    with pytest.raises(SizeLimitExceeded):
        g.close()
    assert os.path.getsize(path) <= (1 << 20) + (4 << 20)  # stopped near the limit, not at 64 MiB


def test_abort_ends_the_child_and_the_input_counts_as_truncated(tmp_path):
    """abort() (a pull interrupted) ends the child: it exits, reaped, having written a
    prefix of the data, and the layer is reported truncated rather than complete."""
    payload = os.urandom(1 << 20).hex().encode()
    g = inflate.GunzipProcess(str(tmp_path / "out.tar"), None)
    g.feed(gzip.compress(payload)[:100000])
    g.abort()
    assert g.proc.returncode == 0 and not os.path.exists("/proc/%d" % g.proc.pid)
    written = (tmp_path / "out.tar").read_bytes()
    assert 0 < len(written) < len(payload) and payload.startswith(written)
    with pytest.raises(InvalidImage, match="truncated"):
        g.close()


KILLED_PARENT = """
import gzip, os, sys
from rootless.image import inflate
g = inflate.GunzipProcess(sys.argv[1], None)
g.feed(gzip.compress(os.urandom(1 << 20))[:100000])
print(g.proc.pid, flush=True)
sys.stdin.read()  # until killed
"""


def test_the_child_does_not_outlive_a_killed_parent(tmp_path):
    """A pull killed with SIGKILL cannot abort(): its child sees the end of its input and
    goes, so nothing is left running."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parent = subprocess.Popen([sys.executable, "-c", KILLED_PARENT, str(tmp_path / "out.tar")], cwd=repo,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        child = int(parent.stdout.readline())
        assert os.path.exists("/proc/%d" % child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while _alive(child):
        assert time.monotonic() < deadline, "the inflating child outlived its killed parent"
        time.sleep(0.01)


def _alive(pid):
    """Whether ``pid`` runs (a zombie waiting for init to reap it does not count)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_choice(tmp_path, monkeypatch):
    said, made = [], []

    def open_one(name, size):
        made.append(inflate.open_gunzip(str(tmp_path / name), None, said.append, size))
        return type(made[-1])
    monkeypatch.delenv("ROOTLESS_INFLATE", raising=False)
    big, small = 100 << 20, 1000
    assert open_one("a", big) is inflate.GunzipProcess
    assert open_one("b", small) is inflate.GunzipThread
    monkeypatch.setenv("ROOTLESS_INFLATE", "thread")
    assert open_one("c", big) is inflate.GunzipThread
    monkeypatch.setenv("ROOTLESS_INFLATE", "process")
    assert open_one("d", small) is inflate.GunzipProcess
    monkeypatch.delenv("ROOTLESS_INFLATE")
    monkeypatch.setattr(sys, "executable", "")
    assert open_one("e", big) is inflate.GunzipThread
    assert any("no usable sys.executable" in s for s in said)
    for g in made:
        g.abort()
    for name in "abcde":
        assert os.path.exists(str(tmp_path / name))


def test_spare_child_is_taken_once_and_renamed(tmp_path, monkeypatch):
    monkeypatch.delenv("ROOTLESS_INFLATE", raising=False)
    spare = inflate.Spare.start(str(tmp_path / "downloads"), None)
    assert spare is not None and os.path.exists(spare.path)
    target = str(tmp_path / "downloads" / "layer.tar.partial")
    g = inflate.open_gunzip(target, None, None, 100 << 20, spare)
    assert isinstance(g, inflate.GunzipProcess) and not os.path.exists(spare.path)
    again = inflate.open_gunzip(str(tmp_path / "downloads" / "other"), None, None, 100 << 20, spare)
    assert again is not g  # the spare went to the first taker only
    feed_all(g, gzip.compress(b"spare " * 1000))
    g.close()
    again.abort()
    assert open(target, "rb").read() == b"spare " * 1000
    spare.close()
    assert sorted(os.listdir(str(tmp_path / "downloads"))) == ["layer.tar.partial", "other"]


def test_unused_spare_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("ROOTLESS_INFLATE", raising=False)
    spare = inflate.Spare.start(str(tmp_path), None)
    child = spare._child
    spare.close()
    assert os.listdir(str(tmp_path)) == [] and child.proc.returncode == 0
    monkeypatch.setenv("ROOTLESS_INFLATE", "thread")
    assert inflate.Spare.start(str(tmp_path), None) is None
