"""rootless.streams: hashing, bounding, sniffing and decompressing readers."""

import bz2
import gzip
import hashlib
import io
import lzma
import tarfile

import pytest

from imagetools import tar_bytes
from rootless.errors import InvalidImage, SizeLimitExceeded, Unsupported, UsageError
from rootless.streams import (HashingReader, PeekReader, decompressing, human_size,
                                    parse_size, sniff)


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Trickle(io.RawIOBase):
    """A non-seekable stream that returns at most ``step`` bytes per read."""

    def __init__(self, data, step=3):
        self.data, self.pos, self.step = data, 0, step

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            n = len(self.data)
        n = min(n, self.step)
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def readinto(self, b):
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


DATA = b"".join(b"line %d of the stream\n" % i for i in range(5000))


def test_hashing_reader_digest_and_count():
    r = HashingReader(io.BytesIO(DATA))
    chunks = []
    while True:
        chunk = r.read(4096)
        if not chunk:
            break
        chunks.append(chunk)
    assert b"".join(chunks) == DATA
    assert r.count == len(DATA)
    assert r.digest == sha(DATA)


def test_hashing_reader_read_all_and_readinto():
    r = HashingReader(io.BytesIO(DATA))
    assert r.read() == DATA and r.digest == sha(DATA)
    r = HashingReader(io.BytesIO(b"abcdef"))
    buf = bytearray(4)
    assert r.readinto(buf) == 4 and bytes(buf) == b"abcd"
    assert r.readinto(buf) == 2 and bytes(buf[:2]) == b"ef"
    assert r.readinto(buf) == 0
    assert r.count == 6 and r.digest == sha(b"abcdef")


def test_hashing_reader_of_nothing():
    r = HashingReader(io.BytesIO(b""))
    assert r.read() == b"" and r.count == 0 and r.digest == sha(b"")


def test_hashing_reader_limit():
    r = HashingReader(io.BytesIO(b"x" * 100), limit=100)
    assert r.read() == b"x" * 100 and r.count == 100
    r = HashingReader(io.BytesIO(b"x" * 100), limit=99, what="layer sha256:abc")
    assert r.read(60) == b"x" * 60
    with pytest.raises(SizeLimitExceeded) as e:
        r.read(60)
    assert isinstance(e.value, InvalidImage)
    assert "layer sha256:abc" in str(e.value) and "99B" in str(e.value)


def test_hashing_reader_limit_through_buffered_reader():
    r = io.BufferedReader(HashingReader(io.BytesIO(bytes(10 << 20)), limit=1 << 20))
    with pytest.raises(SizeLimitExceeded):
        while r.read(65536):
            pass


def test_hashing_reader_sink_gets_a_copy():
    sink = io.BytesIO()
    r = HashingReader(Trickle(DATA, 1000), sink=sink)
    r.read(10)
    r.drain()
    assert sink.getvalue() == DATA and r.count == len(DATA) and r.digest == sha(DATA)


def test_drain_counts_tar_trailer():
    layer = tar_bytes([{"name": "f", "data": b"content"}])
    r = HashingReader(io.BytesIO(layer))
    with tarfile.open(fileobj=r, mode="r|") as tar:
        for m in tar:
            assert m.name == "f"
    r.drain()
    assert r.count == len(layer) and r.digest == sha(layer)


def test_pipeline_blob_digest_and_diff_id():
    layer = tar_bytes([{"name": "f", "data": DATA}])
    blob = gzip.compress(layer)
    outer = HashingReader(io.BytesIO(blob))
    peek = PeekReader(outer)
    assert sniff(peek.head) == "gzip"
    inner = HashingReader(decompressing(peek, sniff(peek.head)), limit=len(layer))
    with tarfile.open(fileobj=inner, mode="r|") as tar:
        names = [m.name for m in tar]
    inner.drain()
    outer.drain()
    assert names == ["f"]
    assert inner.digest == sha(layer) and inner.count == len(layer)
    assert outer.digest == sha(blob) and outer.count == len(blob)


@pytest.mark.parametrize("head, kind", [
    (gzip.compress(b"x"), "gzip"),
    (b"\x28\xb5\x2f\xfd\x00\x00", "zstd"),
    (bz2.compress(b"x"), "bzip2"),
    (lzma.compress(b"x"), "xz"),
    (tar_bytes([{"name": "a", "data": b"b"}]), ""),
    (b"", ""),
    (b"\x1f", ""),
    (b"BZ", ""),
])
def test_sniff(head, kind):
    assert sniff(head[:8]) == kind


@pytest.mark.parametrize("compress, kind", [
    (gzip.compress, "gzip"), (bz2.compress, "bzip2"), (lzma.compress, "xz"),
])
def test_decompressing_round_trip(compress, kind):
    blob = compress(DATA)
    assert sniff(blob[:8]) == kind
    reader = decompressing(io.BytesIO(blob), kind)
    out = b""
    while True:
        chunk = reader.read(7000)
        if not chunk:
            break
        out += chunk
    assert out == DATA


def test_decompressing_plain_returns_the_reader():
    raw = io.BytesIO(b"plain")
    assert decompressing(raw, "") is raw


def test_decompressing_zstd_needs_python_3_14():
    try:
        from compression import zstd
    except ImportError:
        with pytest.raises(Unsupported):
            decompressing(io.BytesIO(b""), "zstd")
    else:
        blob = zstd.compress(DATA)
        assert decompressing(io.BytesIO(blob), "zstd").read() == DATA


def test_decompressing_unknown():
    with pytest.raises(Unsupported):
        decompressing(io.BytesIO(b""), "lz4")


def test_corrupt_gzip_raises():
    blob = bytearray(gzip.compress(DATA))
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(InvalidImage, match="gzip data is damaged"):
        decompressing(io.BytesIO(bytes(blob)), "gzip").read()


def test_truncated_gzip_is_invalid_image_not_eoferror():
    blob = gzip.compress(DATA)[:-4]
    with pytest.raises(InvalidImage, match="damaged or truncated"):
        decompressing(io.BytesIO(blob), "gzip").read()


def test_peek_reader_on_a_trickling_stream():
    p = PeekReader(Trickle(DATA, 3), 8)
    assert p.head == DATA[:8]
    out = b""
    while True:
        chunk = p.read(5)
        if not chunk:
            break
        out += chunk
    assert out == DATA


def test_peek_reader_read_all_and_readinto():
    p = PeekReader(io.BytesIO(DATA), 8)
    assert p.read(2) == DATA[:2]
    assert p.read() == DATA[2:]
    assert p.read() == b""
    p = PeekReader(io.BytesIO(b"0123456789"), 4)
    buf = bytearray(6)
    assert p.readinto(buf) == 4 and bytes(buf[:4]) == b"0123"
    assert p.readinto(buf) == 6 and bytes(buf) == b"456789"


def test_peek_reader_short_stream():
    p = PeekReader(io.BytesIO(b"abc"), 8)
    assert p.head == b"abc"
    assert p.read(100) == b"abc" and p.read(100) == b""


def test_peek_reader_under_buffered_reader():
    p = io.BufferedReader(PeekReader(Trickle(DATA, 1000), 8))
    assert p.read() == DATA


@pytest.mark.parametrize("n, text", [
    (0, "0B"),
    (1, "1B"),
    (999, "999B"),
    (1000, "1kB"),
    (1500, "1.5kB"),
    (4260000, "4.26MB"),
    (5130000, "5.13MB"),
    (117000000, "117MB"),
    (1230000000, "1.23GB"),
    (2500000000000, "2.5TB"),
    (1e15, "1PB"),
    (7.2e18, "7.2EB"),
])
def test_human_size_matches_docker(n, text):
    assert human_size(n) == text


@pytest.mark.parametrize("text, n", [
    ("0", 0),
    ("1000000", 1000000),
    ("1k", 1024),
    ("1.5k", 1536),
    ("512m", 512 << 20),
    ("10g", 10 << 30),
    ("10G", 10 << 30),
    ("2t", 2 << 40),
    ("10mb", 10 << 20),
    ("100b", 100),
    (" 7 ", 7),
])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["512MiB", "1kib", "2GiB"])
def test_parse_size_accepts_docker_binary_suffixes(text):
    # Docker's --memory (go-units RAMInBytes) accepts KiB/MiB/GiB.
    expected = {"512MiB": 512 << 20, "1kib": 1 << 10, "2GiB": 2 << 30}[text]
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "10x", "k", "1.2.3m", "m10"])
def test_parse_size_refuses_garbage(text):
    with pytest.raises(UsageError):
        parse_size(text)


@pytest.mark.parametrize("text", ["-1", "-5m", "infk", "inf", "nan", "1e999k"])
def test_parse_size_refuses_negative_and_non_finite(text):
    with pytest.raises(UsageError):
        parse_size(text)


# -- Growing: a file another thread is still writing --------------------------------------

def growing_file(tmp_path):
    from rootless.streams import Growing
    path = tmp_path / "grow"
    out = open(str(path), "wb", buffering=0)
    return out, Growing(str(path))


def test_growing_wait_blocks_until_the_bytes_are_there(tmp_path):
    import threading
    import time
    out, g = growing_file(tmp_path)
    got = []
    reader = threading.Thread(target=lambda: got.append(g.wait(10)))
    reader.start()
    time.sleep(0.05)
    assert not got  # nothing written yet: still waiting
    out.write(b"12345")
    g.grew(5)
    time.sleep(0.05)
    assert not got  # 5 of 10
    out.write(b"67890abc")
    g.grew(8)
    reader.join(5)
    assert got == [10]
    assert __import__("os").pread(g.fd, 10, 0) == b"1234567890"
    g.finish(sha(b"1234567890abc"))
    assert g.wait(100) == 13  # done: as much as there is
    assert g.result() == (sha(b"1234567890abc"), 13)
    g.close()
    out.close()


def test_growing_the_writers_error_reaches_the_reader(tmp_path):
    import threading
    out, g = growing_file(tmp_path)
    errors = []

    def follow():
        try:
            g.wait(100)
        except InvalidImage as e:
            errors.append(str(e))
    reader = threading.Thread(target=follow)
    reader.start()
    g.grew(0)
    g.finish(error=InvalidImage("blob has the wrong digest"))
    reader.join(5)
    assert errors == ["blob has the wrong digest"]
    with pytest.raises(InvalidImage, match="wrong digest"):
        g.result()
    g.close()
    out.close()


def test_window_follows_a_growing_file(tmp_path):
    import threading
    from rootless.streams import Window
    out, g = growing_file(tmp_path)
    data = bytes(range(256)) * 40

    def write():
        for i in range(0, len(data), 333):
            out.write(data[i:i + 333])
            g.grew(len(data[i:i + 333]))
        g.finish(sha(data))
    w = Window(g.fd, 0, 1 << 40, g.wait)
    writer = threading.Thread(target=write)
    writer.start()
    got = io.BufferedReader(w, 1000).read()
    writer.join()
    assert got == data  # every byte, and the end where the writer ended, not at the bound
    g.close()
    out.close()
